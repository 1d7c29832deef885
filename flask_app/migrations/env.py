"""Alembic environment of flask_app: runs the migrations on the connection it is given.

:func:`flask_app.migrate.upgrade` (``python -m flask_app migrate``) opens the connection,
takes the migration lock on it and passes it in ``config.attributes["connection"]``.
Offline mode (``--sql``) renders the SQL for ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from flask_app.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    """Emit the migrations as SQL for the URL in the configuration."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the connection given by :mod:`flask_app.migrate`."""
    connection = config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "run the migrations with `python -m flask_app migrate`, which gives them a "
            "connection and holds the migration lock"
        )
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: let future revisions use batch mode there.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
