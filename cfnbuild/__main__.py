"""``python -m cfnbuild`` runs the CLI."""

from cfnbuild.cli import run

run()
