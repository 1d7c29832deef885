"""Error responses: 500 leaks nothing, a database that is down is 503 and recovers."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from flask_app.logs import make_handler
from tests.flask_app.conftest import mysql_url
from tests.flask_app.mariadb import MariaDBServer, free_port

SECRET_TEXT = f"db-secret-{secrets.token_hex(8)}"


@contextlib.contextmanager
def captured_log() -> Iterator[io.StringIO]:
    """Capture what the app's JSON handler (with the redactor) writes."""
    stream = io.StringIO()
    handler = make_handler(stream)
    logger = logging.getLogger("flask_app")
    logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


def test_unhandled_exception_is_500_without_the_exception_text(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app()

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError(f"password={SECRET_TEXT}")

    with captured_log() as log:
        response = app.test_client().get("/boom")

    assert response.status_code == 500
    assert response.json == {
        "error": "internal_error",
        "message": "internal server error",
        "request_id": response.headers["X-Request-Id"],
    }
    assert SECRET_TEXT not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    # The traceback is logged, for the operators, with the secret redacted.
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    error = next(line for line in lines if line["message"] == "unhandled exception")
    assert "RuntimeError" in error["exception"]
    assert "password=***" in error["exception"]
    assert SECRET_TEXT not in log.getvalue()


def test_api_returns_503_when_the_sqlite_database_cannot_be_opened(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    # A directory is not a database file: every connection attempt fails.
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path}")
    client = app.test_client()

    response = client.get("/api/notes")

    assert response.status_code == 503
    assert response.json is not None
    assert response.json["error"] == "database_unavailable"
    assert response.headers["Retry-After"] == "5"
    assert str(tmp_path) not in response.text
    assert client.post("/api/notes", json={"title": "t"}).status_code == 503
    assert client.get("/health").status_code == 200


def test_api_returns_503_when_nothing_listens_on_the_mysql_port(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(DATABASE_URL=f"mysql+pymysql://app:pw@127.0.0.1:{free_port()}/app")

    response = app.test_client().get("/api/notes/1")

    assert response.status_code == 503
    assert response.json is not None
    assert response.json["error"] == "database_unavailable"
    assert "127.0.0.1" not in response.text


@pytest.mark.server
def test_api_returns_503_while_mariadb_is_down_and_recovers_when_it_is_back(
    make_app: Callable[..., Flask], mariadb_migrated: MariaDBServer
) -> None:
    app = make_app(DATABASE_URL=mysql_url(mariadb_migrated))
    client = app.test_client()
    note = client.post("/api/notes", json={"title": "before"}).json
    assert note is not None

    mariadb_migrated.stop()
    try:
        down = client.get(f"/api/notes/{note['id']}")
        ready = client.get("/ready")
        health = client.get("/health")
    finally:
        mariadb_migrated.start()

    assert down.status_code == 503
    assert down.json is not None
    assert down.json["error"] == "database_unavailable"
    assert ready.status_code == 503
    assert ready.json is not None
    assert ready.json["checks"]["database"]["status"] == "error"
    assert health.status_code == 200
    # The pool's pre-ping replaces the dead connections: no restart of the app needed.
    again = client.get(f"/api/notes/{note['id']}")
    assert again.status_code == 200
    assert again.json == note
    assert client.get("/ready").status_code == 200
