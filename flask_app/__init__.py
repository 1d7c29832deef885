"""The web application of cfnbuild's flagship stack: a notes API with S3 asset uploads.

Run it::

    flask --app flask_app run                 # a laptop: SQLite, zero set-up
    gunicorn flask_app.wsgi:app               # the instances
    python -m flask_app migrate               # once per deploy, before the new workers

Configuration (environment variables written by the instance bootstrap; the mapping
given to :func:`create_app` overrides them by the name without ``APP_``):

Database, the first that is set wins:

``APP_DATABASE_URL``
    A SQLAlchemy URL, for tests and local runs (``mysql://`` uses PyMySQL).
``APP_DB_SECRET_ARN``
    A Secrets Manager secret with the credentials, JSON as RDS makes it: ``username``,
    ``password``, ``host``, ``port``, ``dbname``. Read at start-up, and read again when
    the database refuses its password to a new connection (the secret rotated): the login
    is tried once more with what the secret holds then.
``APP_DB_HOST``, ``APP_DB_PORT``, ``APP_DB_NAME``
    Override the secret's ``host``, ``port`` (default 3306) and ``dbname``.
(neither)
    The embedded default: SQLite in ``<instance path>/flask_app.sqlite3``, migrated on
    start-up (the only case where the application migrates by itself).

``APP_DB_TLS_CA``
    Path of the CA bundle (e.g. the RDS global bundle): connect to MySQL with TLS,
    verifying the certificate and the host name.
``APP_DB_CONNECT_TIMEOUT`` / ``APP_DB_READ_TIMEOUT`` / ``APP_DB_WRITE_TIMEOUT``
    Seconds (5 / 30 / 30).
``APP_DB_POOL_SIZE`` / ``APP_DB_MAX_OVERFLOW`` / ``APP_DB_POOL_TIMEOUT`` / ``APP_DB_POOL_RECYCLE``
    Connection pool per worker: 5 / 5 / 10 s / 1800 s; connections are pre-pinged.
``APP_DB_MIGRATE_LOCK_TIMEOUT``
    Seconds ``migrate`` waits for another instance's migration (300).

Assets and AWS:

``APP_ASSETS_BUCKET``
    The S3 bucket of uploads; unset disables ``POST /api/assets`` and the ``/ready`` check.
``APP_ASSETS_PREFIX``
    Key prefix of uploads (``uploads/``).
``APP_ASSETS_MAX_BYTES``
    Largest upload (10 MiB).
``APP_ASSETS_ALLOWED_TYPES``
    Comma-separated content types (png, jpeg, gif, webp images, PDF, plain text).
``APP_ASSETS_URL_EXPIRES``
    Lifetime of a pre-signed URL in seconds (900).
``APP_AWS_ENDPOINT_URL``
    One endpoint for every AWS client: tests (moto) and local runs only.
``AWS_REGION`` / ``AWS_DEFAULT_REGION``
    The region; without them, the instance metadata service (IMDSv2) gives it.

Web and logs:

``APP_MAX_CONTENT_LENGTH``
    Largest request body in bytes (256 KiB); more is 413.
``APP_READY_TIMEOUT``
    Seconds for each ``/ready`` check (2).
``APP_LOG_LEVEL``
    ``DEBUG``, ``INFO`` (default), ``WARNING``, ... Logs are JSON lines on stderr.
``APP_INSTANCE_PATH``
    Flask's instance folder (holds the SQLite default).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from flask_app import api, cli, errors, migrate, ops, web
from flask_app.aws import Aws
from flask_app.config import Settings
from flask_app.db import close_db_session, create_db_engine, make_session_factory, resolve_database
from flask_app.logs import configure_logging
from flask_app.state import EXTENSION_KEY, AppState

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Create the application from the ``APP_*`` environment and ``config``.

    Keys of ``config`` that name a setting (``DATABASE_URL``, ``ASSETS_BUCKET``, ...)
    override the environment; other keys (``TESTING``, ...) go to ``app.config``.
    """
    config = dict(config or {})
    settings = Settings.load(os.environ, config)
    configure_logging(settings.log_level)

    instance_path = os.path.abspath(settings.instance_path) if settings.instance_path else None
    app = Flask(__name__, instance_path=instance_path)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    app.config.update({k: v for k, v in config.items() if k not in Settings.setting_keys()})

    aws = Aws(settings.aws_endpoint_url)
    target = resolve_database(settings, app.instance_path, aws)
    engine = create_db_engine(target, settings)
    ready_engine = engine if target.backend == "sqlite" else create_db_engine(target, settings, for_readiness=True)
    if target.embedded_default:
        migrate.upgrade(engine, lock_timeout=settings.db_migrate_lock_timeout)

    app.extensions[EXTENSION_KEY] = AppState(
        settings=settings,
        engine=engine,
        ready_engine=ready_engine,
        session_factory=make_session_factory(engine),
        aws=aws,
        database_description=target.describe(),
    )
    app.teardown_appcontext(close_db_session)
    web.register_request_hooks(app)
    errors.register_error_handlers(app)
    app.register_blueprint(ops.bp)
    app.register_blueprint(api.bp)
    cli.register_commands(app)
    log.info(
        "application configured",
        extra={
            "database": target.describe(),
            "database_tls": bool(settings.db_tls_ca) and target.is_mysql,
            "assets_bucket": settings.assets_bucket,
        },
    )
    return app
