"""Run the Alembic migrations shipped in ``flask_app/migrations``, one instance at a time.

Run once per deploy, not at worker start-up::

    python -m flask_app migrate          # or: flask --app flask_app db-upgrade

On MySQL/MariaDB the upgrade holds the advisory lock ``GET_LOCK('flask_app.migrate:
<database>')`` on its own connection, so instances deploying at once run the
migrations one after the other (the later ones find the schema up to date). On SQLite
a lock file next to the database does the same between processes.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
LOCK_PREFIX = "flask_app.migrate"
#: MySQL and MariaDB refuse lock names longer than 64 characters.
LOCK_NAME_MAX = 64

try:  # POSIX; elsewhere SQLite migrations run unlocked (a laptop, one process).
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]  # the module is optional


class MigrationLockTimeoutError(RuntimeError):
    """Another process held the migration lock for longer than the timeout."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Return the Alembic configuration of the shipped migrations (no ini file).

    ``connection`` is handed to ``env.py``, which runs the migrations on it.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """Return the newest revision the package ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database is at (``None`` before the first migration)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head", *, lock_timeout: int = 300) -> str | None:
    """Upgrade the database of ``engine`` to ``revision`` under the migration lock.

    Returns the revision the database is at afterwards. Raises
    :class:`MigrationLockTimeoutError` when the lock is not had within ``lock_timeout`` seconds.
    """
    started = time.monotonic()
    with engine.connect() as connection, _migration_lock(connection, lock_timeout):
        before = MigrationContext.configure(connection).get_current_revision()
        connection.commit()  # alembic begins its own transaction
        command.upgrade(alembic_config(connection), revision)
        connection.commit()
        after = MigrationContext.configure(connection).get_current_revision()
        connection.commit()
    log.info(
        "database schema upgraded" if before != after else "database schema already current",
        extra={
            "revision_before": before,
            "revision_after": after,
            "duration_ms": round((time.monotonic() - started) * 1000),
        },
    )
    return after


@contextlib.contextmanager
def _migration_lock(connection: Connection, timeout: int) -> Iterator[None]:
    """Hold the migration lock of the database of ``connection`` for the block."""
    backend = connection.dialect.name
    if backend in ("mysql", "mariadb"):
        with _mysql_lock(connection, timeout):
            yield
    elif backend == "sqlite":
        with _file_lock(connection.engine.url.database, timeout):
            yield
    else:
        yield


@contextlib.contextmanager
def _mysql_lock(connection: Connection, timeout: int) -> Iterator[None]:
    """``GET_LOCK`` / ``RELEASE_LOCK``: a named lock held by this connection's session."""
    database = connection.exec_driver_sql("SELECT DATABASE()").scalar() or ""
    name = f"{LOCK_PREFIX}:{database}"[:LOCK_NAME_MAX]
    log.info("waiting for the migration lock", extra={"lock": name, "timeout_s": timeout})
    got = connection.execute(text("SELECT GET_LOCK(:name, :timeout)"), {"name": name, "timeout": timeout}).scalar()
    connection.commit()
    if got != 1:
        raise MigrationLockTimeoutError(f"another process held the migration lock {name!r} for over {timeout} s")
    try:
        yield
    finally:
        try:
            connection.rollback()
            connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
            connection.commit()
        except Exception:  # the server frees the lock when the session ends anyway
            log.warning("could not release the migration lock", exc_info=True)


@contextlib.contextmanager
def _file_lock(database: str | None, timeout: int) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<database>.migrate-lock`` (file databases only)."""
    if fcntl is None or not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    lock_path = Path(f"{database}.migrate-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    with lock_path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise MigrationLockTimeoutError(f"another process held {lock_path} for over {timeout} s") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
