"""Database access: where the database is, engines with timeouts and TLS, sessions.

One of, in this order:

1. ``APP_DATABASE_URL`` (tests, local): any SQLAlchemy URL; ``mysql://`` and
   ``mariadb://`` use PyMySQL.
2. ``APP_DB_SECRET_ARN``: the credentials (and usually host, port and database name)
   from Secrets Manager; ``APP_DB_HOST`` / ``APP_DB_PORT`` / ``APP_DB_NAME`` override
   those fields of the secret. The secret rotates: when the database refuses a new
   login (access denied, MySQL error 1045), the secret is read once more and the login
   tried once with what it holds now (:class:`SecretCredentials`).
3. Nothing: the embedded default, SQLite in ``<instance path>/flask_app.sqlite3``.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pymysql  # type: ignore[import-untyped]  # PyMySQL ships no type information
from botocore.exceptions import BotoCoreError, ClientError
from flask import g
from pymysql.constants import ER  # type: ignore[import-untyped]  # as above
from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, sessionmaker

from flask_app.aws import Aws, AwsConfigError, DbSecret, fetch_db_secret
from flask_app.config import ENV_PREFIX, ConfigError, Settings
from flask_app.logs import register_secret
from flask_app.state import get_state

log = logging.getLogger(__name__)

SQLITE_DEFAULT_FILENAME = "flask_app.sqlite3"
MYSQL_DEFAULT_PORT = 3306
MYSQL_BACKENDS = frozenset({"mysql", "mariadb"})


class SecretCredentials:
    """The database credentials of a Secrets Manager secret that rotates, shared by the engines.

    Secrets Manager's single user rotation changes the password in the database, then makes
    the new secret version current; open connections are not dropped, a new login with the
    old password is refused (access denied), and AWS says to meet that with a retry
    (https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotation-strategy.html,
    "Rotation strategy: single user"). :meth:`refresh` reads the secret again for a refused
    login, unless another connection has read a different password since, so connections
    refused together after a rotation cost one read. In the short window between the change
    in the database and the new version becoming current, the re-read still returns the
    refused password: that login fails, and the next one reads the secret again.
    """

    def __init__(self, aws: Aws, secret_arn: str, secret: DbSecret) -> None:
        self.aws = aws
        self.secret_arn = secret_arn
        self._secret = secret
        self._lock = threading.Lock()

    @property
    def current(self) -> DbSecret:
        """The credentials last read from the secret."""
        with self._lock:
            return self._secret

    def refresh(self, refused: DbSecret) -> DbSecret:
        """Read the secret again after the database refused ``refused``; return what it holds now.

        When another connection already read a newer value, that one is returned without a
        call. Raises :class:`AwsConfigError`, or botocore's error, when it cannot be read.
        """
        with self._lock:
            if self._secret.password != refused.password or self._secret.username != refused.username:
                return self._secret
            fresh = fetch_db_secret(self.aws, self.secret_arn)
            register_secret(fresh.password)
            self._secret = fresh
            return fresh


def is_access_denied(error: BaseException) -> bool:
    """Whether a DB-API error is MySQL's "access denied" for a login (error 1045)."""
    return (
        isinstance(error, pymysql.err.OperationalError)
        and bool(error.args)
        and error.args[0] == (ER.ACCESS_DENIED_ERROR)
    )


@dataclasses.dataclass(frozen=True, slots=True)
class DatabaseTarget:
    """The database to use: its URL, whether it is the embedded SQLite default, its rotating secret."""

    url: URL
    embedded_default: bool = False
    credentials: SecretCredentials | None = None

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
        return DatabaseTarget(url, credentials=SecretCredentials(aws, settings.db_secret_arn, secret))
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
    engine = create_engine(target.url, connect_args=connect_args, **kwargs)
    if target.credentials is not None:
        _log_in_with_the_secret(engine, target.credentials)
    return engine


def _log_in_with_the_secret(engine: Engine, credentials: SecretCredentials) -> None:
    """Every new connection logs in with the secret's current credentials; once more after a refusal.

    SQLAlchemy's ``do_connect`` event may change the connect arguments and make the
    connection itself (https://docs.sqlalchemy.org/en/20/core/engines.html, "Generating
    dynamic authentication tokens"). An access-denied refusal re-reads the secret and tries
    once with a password that differs from the refused one; any other error, a secret that
    still holds the refused password, or one that cannot be read raises the refusal.
    """

    @event.listens_for(engine, "do_connect")
    def _connect(dialect: Dialect, _record: object, cargs: list[Any], cparams: dict[str, Any]) -> Any:
        secret = credentials.current
        cparams.update(user=secret.username, password=secret.password)
        try:
            return dialect.connect(*cargs, **cparams)
        except pymysql.err.OperationalError as refused:
            if not is_access_denied(refused):
                raise
            try:
                fresh = credentials.refresh(secret)
            except (AwsConfigError, BotoCoreError, ClientError) as error:
                log.error(
                    "the database refused the secret's password and the secret could not be read again",
                    extra={"secret_arn": credentials.secret_arn, "error": f"{type(error).__name__}: {error}"},
                )
                raise refused from error
            if fresh.password == secret.password and fresh.username == secret.username:
                log.error(
                    "the database refused the secret's password and the secret still holds it",
                    extra={"secret_arn": credentials.secret_arn},
                )
                raise
            log.warning(
                "the database refused the secret's password; logging in with the secret read again",
                extra={"secret_arn": credentials.secret_arn},
            )
            cparams.update(user=fresh.username, password=fresh.password)
            return dialect.connect(*cargs, **cparams)


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
