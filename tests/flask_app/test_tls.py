"""TLS to the database when ``APP_DB_TLS_CA`` names a CA bundle (real MariaDB)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text

from flask_app.state import get_state
from tests.flask_app.conftest import mysql_url
from tests.flask_app.mariadb import MariaDBServer, TlsFiles

pytestmark = pytest.mark.server


@pytest.fixture
def tls_server(mariadb_migrated: MariaDBServer) -> MariaDBServer:
    assert mariadb_migrated.tls is not None
    return mariadb_migrated


def test_database_connections_use_verified_tls_when_a_ca_is_configured(
    make_app: Callable[..., Flask], tls_server: MariaDBServer
) -> None:
    assert tls_server.tls is not None
    app = make_app(DATABASE_URL=mysql_url(tls_server), DB_TLS_CA=str(tls_server.tls.ca))

    with get_state(app).engine.connect() as connection:
        cipher = connection.execute(text("SHOW SESSION STATUS LIKE 'Ssl_cipher'")).one()[1]
    client = app.test_client()

    assert cipher
    assert client.get("/ready").status_code == 200
    assert client.post("/api/notes", json={"title": "over TLS"}).status_code == 201


def test_a_server_certificate_from_another_ca_is_refused(
    make_app: Callable[..., Flask], tls_server: MariaDBServer, tmp_path: Path
) -> None:
    other_ca = TlsFiles.make(tmp_path).ca
    app = make_app(DATABASE_URL=mysql_url(tls_server), DB_TLS_CA=str(other_ca))
    client = app.test_client()

    ready = client.get("/ready")

    assert ready.status_code == 503
    assert ready.json is not None
    assert ready.json["checks"]["database"]["status"] == "error"
    assert client.get("/api/notes").status_code == 503
