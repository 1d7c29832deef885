"""Command-line entry points: ``python -m flask_app ...`` and ``flask --app flask_app ...``.

``migrate`` / ``db-upgrade``
    Upgrade the database schema to the newest revision, under the migration lock. Run it
    once per deploy (e.g. from the bootstrap of one instance, or of each: the lock makes
    that safe), never from the web workers.
``current`` / ``db-current``
    Print the revision the database is at and the newest one shipped.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

import click
from flask import Flask

from flask_app import migrate
from flask_app.state import get_state

log = logging.getLogger(__name__)


def run_migrations(app: Flask, revision: str = "head") -> str | None:
    """Upgrade the database of ``app`` to ``revision``; return the revision reached."""
    state = get_state(app)
    return migrate.upgrade(state.engine, revision, lock_timeout=state.settings.db_migrate_lock_timeout)


def revisions(app: Flask) -> dict[str, str | None]:
    """Return the database's revision and the newest shipped revision."""
    return {
        "current": migrate.current_revision(get_state(app).engine),
        "head": migrate.head_revision(),
    }


def register_commands(app: Flask) -> None:
    """Add ``db-upgrade`` and ``db-current`` to ``flask --app flask_app``."""

    @app.cli.command("db-upgrade")
    @click.option("--revision", default="head", show_default=True, help="Target revision.")
    def db_upgrade(revision: str) -> None:
        """Upgrade the database schema (once per deploy)."""
        click.echo(json.dumps({"revision": run_migrations(app, revision)}))

    @app.cli.command("db-current")
    def db_current() -> None:
        """Print the database's schema revision and the newest shipped one."""
        click.echo(json.dumps(revisions(app)))


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m flask_app``; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m flask_app", description="Operate the flask_app application.")
    commands = parser.add_subparsers(dest="command", required=True)
    upgrade = commands.add_parser(
        "migrate", help="upgrade the database schema to the newest revision (once per deploy)"
    )
    upgrade.add_argument("--revision", default="head", help="target revision (default: head)")
    commands.add_parser("current", help="print the database's schema revision")
    args = parser.parse_args(argv)

    from flask_app import create_app  # noqa: PLC0415 - flask_app imports this module

    try:
        app = create_app()
        if args.command == "migrate":
            result: dict[str, str | None] = {"revision": run_migrations(app, args.revision)}
        else:
            result = revisions(app)
    except Exception:
        log.exception("%s failed", args.command)
        return 1
    sys.stdout.write(json.dumps(result) + "\n")
    return 0
