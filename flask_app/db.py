"""Database access: where the database is, engines with timeouts and TLS, sessions.

One of, in this order:

1. ``APP_DATABASE_URL`` (tests, local): any SQLAlchemy URL; ``mysql://`` and
   ``mariadb://`` use PyMySQL.
2. ``APP_DB_SECRET_ARN``: the credentials (and usually host, port and database name)
   from Secrets Manager; ``APP_DB_HOST`` / ``APP_DB_PORT`` / ``APP_DB_NAME`` override
   those fields of the secret.
3. Nothing: the embedded default, SQLite in ``<instance path>/flask_app.sqlite3``.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from pathlib import Path
from typing import Any

from flask import g
from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from flask_app.aws import Aws, fetch_db_secret
from flask_app.config import ENV_PREFIX, ConfigError, Settings
from flask_app.logs import register_secret
from flask_app.state import get_state

log = logging.getLogger(__name__)

SQLITE_DEFAULT_FILENAME = "flask_app.sqlite3"
MYSQL_DEFAULT_PORT = 3306
MYSQL_BACKENDS = frozenset({"mysql", "mariadb"})


@dataclasses.dataclass(frozen=True, slots=True)
class DatabaseTarget:
    """The database to use: its URL and whether it is the embedded SQLite default."""

    url: URL
    embedded_default: bool = False

    @property
    def backend(self) -> str:
        """The backend name: ``sqlite``, ``mysql``, ``mariadb``, ..."""
        return self.url.get_backend_name()

    @property
    def is_mysql(self) -> bool:
        """Whether the database is MySQL or MariaDB (Aurora MySQL included)."""
        return self.backend in MYSQL_BACKENDS

    def describe(self) -> str:
        """Return the URL with the password hidden, for logs."""
        return self.url.render_as_string(hide_password=True)


def resolve_database(settings: Settings, instance_path: str, aws: Aws) -> DatabaseTarget:
    """Return the database the settings name; fetch the secret when there is one.

    The password is registered with the log redactor before anything can log it.
    """
    if settings.database_url:
        try:
            url = make_url(settings.database_url)
        except Exception:
            raise ConfigError(f"{ENV_PREFIX}DATABASE_URL is not a database URL") from None
        register_secret(url.password if isinstance(url.password, str) else None)
        if url.get_backend_name() in MYSQL_BACKENDS and url.get_driver_name() != "pymysql":
            url = url.set(drivername=f"{url.get_backend_name()}+pymysql")
        return DatabaseTarget(url)
    if settings.db_secret_arn:
        secret = fetch_db_secret(aws, settings.db_secret_arn)
        register_secret(secret.password)
        host = settings.db_host or secret.host
        dbname = settings.db_name or secret.dbname
        if not host:
            raise ConfigError(f"the database secret has no 'host': set {ENV_PREFIX}DB_HOST to the endpoint")
        if not dbname:
            raise ConfigError(f"the database secret has no 'dbname': set {ENV_PREFIX}DB_NAME to the database")
        url = URL.create(
            "mysql+pymysql",
            username=secret.username,
            password=secret.password,
            host=host,
            port=settings.db_port or secret.port or MYSQL_DEFAULT_PORT,
            database=dbname,
        )
        return DatabaseTarget(url)
    path = Path(instance_path) / SQLITE_DEFAULT_FILENAME
    return DatabaseTarget(URL.create("sqlite", database=str(path)), embedded_default=True)


def create_db_engine(target: DatabaseTarget, settings: Settings, *, for_readiness: bool = False) -> Engine:
    """Create the engine for ``target``: pool pre-ping and recycle, timeouts, TLS.

    ``for_readiness`` makes a one-connection engine with the short ``APP_READY_TIMEOUT``
    for every timeout, for the ``/ready`` check.
    """
    if target.backend == "sqlite":
        return _create_sqlite_engine(target.url, settings)
    kwargs: dict[str, Any] = {
        "pool_pre_ping": True,
        "pool_recycle": settings.db_pool_recycle,
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout,
    }
    connect_args: dict[str, Any] = {}
    if target.is_mysql:
        connect_args = {
            "charset": "utf8mb4",
            "connect_timeout": settings.db_connect_timeout,
            "read_timeout": settings.db_read_timeout,
            "write_timeout": settings.db_write_timeout,
        }
        if settings.db_tls_ca:
            if not Path(settings.db_tls_ca).is_file():
                raise ConfigError(f"{ENV_PREFIX}DB_TLS_CA is not a file: {settings.db_tls_ca!r}")
            connect_args |= {
                "ssl_ca": settings.db_tls_ca,
                "ssl_verify_cert": True,
                "ssl_verify_identity": True,
            }
    if for_readiness:
        kwargs |= {"pool_size": 1, "max_overflow": 0, "pool_timeout": settings.ready_timeout}
        if target.is_mysql:
            connect_args |= {
                "connect_timeout": settings.ready_timeout,
                "read_timeout": settings.ready_timeout,
                "write_timeout": settings.ready_timeout,
            }
    return create_engine(target.url, connect_args=connect_args, **kwargs)


def _create_sqlite_engine(url: URL, settings: Settings) -> Engine:
    """Create a SQLite engine: busy timeout, WAL journal (file databases), foreign keys."""
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": settings.db_connect_timeout})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            if database and database != ":memory:":
                cursor.execute("PRAGMA journal_mode=WAL")
        finally:
            cursor.close()

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return the session factory: objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def db_session() -> Session:
    """Return the session of the current request, creating it on first use.

    It is closed (and any open transaction rolled back) when the app context ends.
    """
    session: Session | None = g.get("db_session")
    if session is None:
        session = get_state().session_factory()
        g.db_session = session
    return session


def close_db_session(_exc: BaseException | None = None) -> None:
    """Close the request's session, if one was opened (an app-context teardown)."""
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()
