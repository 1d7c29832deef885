"""Fixtures of the flask_app tests.

- Every test runs with no ``APP_*``/``AWS_*`` variable of the caller, fake AWS
  credentials, a test region and the instance metadata service disabled.
- ``client`` is parametrized over the backends: ``sqlite`` (the embedded default, in
  the test's own instance folder) and ``mariadb`` (a real server the session starts:
  see :mod:`tests.flask_app.mariadb`; skipped on a laptop without it, failing in CI).
- ``moto_endpoint`` is a moto server (``ThreadedMotoServer``) on 127.0.0.1, which the
  app reaches through ``APP_AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine

from flask_app import create_app
from flask_app.logs import JsonLineHandler
from flask_app.migrate import upgrade
from flask_app.state import get_state
from tests.flask_app.mariadb import MariaDBServer
from tests.servers import missing_server

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

TEST_REGION = "eu-west-1"
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REPO_ROOT = Path(__file__).resolve().parents[2]

BACKENDS = ["sqlite", pytest.param("mariadb", marks=pytest.mark.server)]


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("APP_", "AWS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_REGION", TEST_REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Create apps (``TESTING``, instance folder in ``tmp_path``); dispose their pools."""
    apps: list[Flask] = []

    def make(**config: Any) -> Flask:
        base = {"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance")}
        app = create_app({**base, **config})
        apps.append(app)
        return app

    root = logging.getLogger()
    root_level = root.level
    yield make
    for app in apps:
        get_state(app).dispose()
    # create_app installs the JSON handler on the root logger: leave no trace for others.
    for handler in list(root.handlers):
        if isinstance(handler, JsonLineHandler):
            root.removeHandler(handler)
    root.setLevel(root_level)


# --- MariaDB -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDBServer]:
    """A throwaway MariaDB server for the session (see ``tests/flask_app/mariadb.py``)."""
    server = MariaDBServer.create()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def mariadb_migrated(mariadb_server: MariaDBServer) -> MariaDBServer:
    """The server with its main database migrated once for the session."""
    engine = create_engine(mariadb_server.url())
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return mariadb_server


@pytest.fixture
def mariadb_database(mariadb_server: MariaDBServer) -> Iterator[str]:
    """A fresh, empty database on the server, dropped after the test."""
    name = mariadb_server.create_database()
    yield name
    mariadb_server.drop_database(name)


def mysql_url(server: MariaDBServer, database: str | None = None) -> str:
    """The URL of ``database`` as ``APP_DATABASE_URL`` takes it (password included)."""
    return server.url(database).render_as_string(hide_password=False)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend of the test: ``sqlite`` or ``mariadb``."""
    return str(request.param)


@pytest.fixture
def database_config(backend: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The app config for ``backend``, with an empty ``notes`` table."""
    if backend == "sqlite":
        return {}  # the embedded default, in the test's own instance folder
    server: MariaDBServer = request.getfixturevalue("mariadb_migrated")
    with contextlib.closing(server.connect()) as connection, connection.cursor() as cursor:
        cursor.execute("TRUNCATE TABLE notes")
    return {"DATABASE_URL": mysql_url(server)}


@pytest.fixture
def app(make_app: Callable[..., Flask], database_config: dict[str, Any]) -> Flask:
    """The app on the test's backend."""
    return make_app(**database_config)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of ``app``."""
    return app.test_client()


# --- S3 / Secrets Manager (moto server) ---------------------------------------------


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The URL of a moto server on 127.0.0.1 (a free port) for the session."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        missing_server("moto server not installed: pip install 'moto[server]'")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(moto_endpoint: str) -> S3Client:
    """An S3 client of the moto server."""
    client: S3Client = boto3.client("s3", region_name=TEST_REGION, endpoint_url=moto_endpoint, **FAKE_CREDENTIALS)
    return client


@pytest.fixture
def assets_bucket(s3: S3Client) -> str:
    """A new, empty bucket on the moto server."""
    name = f"assets-{secrets.token_hex(6)}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": TEST_REGION})
    return name
