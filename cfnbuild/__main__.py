"""``python -m cfnbuild`` runs the CLI."""

from cfnbuild.cli.main import run

run()
