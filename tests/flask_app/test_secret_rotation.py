"""The app follows a rotated database secret: a refused login reads the secret again, once.

On a real MariaDB server (the session's, see ``tests/flask_app/mariadb.py``): the secret lives
in a moto server, as in ``test_aws.py``, and a rotation is played the way Secrets Manager's
single user rotation does it — the user changes its own password in the database, then the
secret gets the new value. Connections already open keep working after a password change, so
each test empties the pools (as ``APP_DB_POOL_RECYCLE`` or a new worker would) to make the app
log in again.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from flask import Flask

from flask_app import db
from flask_app.aws import Aws, DbSecret
from flask_app.logs import REDACTOR
from flask_app.state import get_state
from tests.flask_app.conftest import FAKE_CREDENTIALS, TEST_REGION
from tests.flask_app.mariadb import MariaDBServer, free_port


def _value(server: MariaDBServer, password: str, port: int | None = None) -> str:
    return json.dumps(
        {
            "engine": "mysql",
            "username": server.rotating_user,
            "password": password,
            "host": "127.0.0.1",
            "port": port or server.port,
            "dbname": server.database,
        }
    )


@pytest.fixture
def secrets_client(moto_endpoint: str) -> Any:
    return boto3.client("secretsmanager", region_name=TEST_REGION, endpoint_url=moto_endpoint, **FAKE_CREDENTIALS)


@pytest.fixture
def db_secret(secrets_client: Any, mariadb_migrated: MariaDBServer) -> Iterator[str]:
    """A secret holding the rotating user's current credentials; its ARN."""
    name = f"rotating-{secrets.token_hex(6)}"
    arn = secrets_client.create_secret(
        Name=name, SecretString=_value(mariadb_migrated, mariadb_migrated.rotating_password)
    )
    yield str(arn["ARN"])
    secrets_client.delete_secret(SecretId=arn["ARN"], ForceDeleteWithoutRecovery=True)


def _count_secret_reads(app: Flask, arn: str) -> list[str]:
    """The secret ARNs the app's Secrets Manager client reads from now on, one entry per GetSecretValue."""
    reads: list[str] = []
    client = get_state(app).aws.secretsmanager(TEST_REGION)
    client.meta.events.register(
        "provide-client-params.secrets-manager.GetSecretValue", lambda params, **_: reads.append(params["SecretId"])
    )
    return reads


def _log_in_again(app: Flask) -> None:
    """Close every pooled connection, so the next request opens (logs in) a new one."""
    get_state(app).dispose()


def _rotate(server: MariaDBServer) -> str:
    new_password = f"rotated-{secrets.token_urlsafe(12)}"
    server.rotate_password(new_password)
    return new_password


@pytest.mark.server
def test_a_login_refused_after_rotation_reads_the_secret_again_and_succeeds_with_the_new_password(
    make_app: Callable[..., Flask],
    moto_endpoint: str,
    db_secret: str,
    secrets_client: Any,
    mariadb_migrated: MariaDBServer,
) -> None:
    app = make_app(DB_SECRET_ARN=db_secret, AWS_ENDPOINT_URL=moto_endpoint)
    client = app.test_client()
    assert client.post("/api/notes", json={"title": "before rotation"}).status_code == 201
    reads = _count_secret_reads(app, db_secret)

    new_password = _rotate(mariadb_migrated)
    secrets_client.put_secret_value(SecretId=db_secret, SecretString=_value(mariadb_migrated, new_password))
    _log_in_again(app)

    assert client.post("/api/notes", json={"title": "after rotation"}).status_code == 201
    assert client.get("/ready").status_code == 200  # the readiness engine shares the fresh secret
    assert reads == [db_secret]  # one re-read for both engines
    assert new_password in REDACTOR._secrets


@pytest.mark.server
def test_a_secret_that_still_holds_the_refused_password_is_read_once_and_the_error_stands(
    make_app: Callable[..., Flask],
    moto_endpoint: str,
    db_secret: str,
    secrets_client: Any,
    mariadb_migrated: MariaDBServer,
) -> None:
    app = make_app(DB_SECRET_ARN=db_secret, AWS_ENDPOINT_URL=moto_endpoint)
    client = app.test_client()
    reads = _count_secret_reads(app, db_secret)
    new_password = _rotate(mariadb_migrated)  # the database changed, the secret not yet
    _log_in_again(app)

    response = client.get("/api/notes")

    assert response.status_code == 503  # the database is unusable, said as such
    assert reads == [db_secret]  # one retry's read, no loop
    secrets_client.put_secret_value(SecretId=db_secret, SecretString=_value(mariadb_migrated, new_password))
    assert client.get("/api/notes").status_code == 200  # the next login reads it again and heals


@pytest.mark.server
def test_a_login_that_fails_for_another_reason_does_not_read_the_secret_again(
    make_app: Callable[..., Flask], moto_endpoint: str, secrets_client: Any, mariadb_migrated: MariaDBServer
) -> None:
    nothing_listens = free_port()
    arn = secrets_client.create_secret(
        Name=f"unreachable-{secrets.token_hex(6)}",
        SecretString=_value(mariadb_migrated, mariadb_migrated.rotating_password, port=nothing_listens),
    )["ARN"]
    app = make_app(DB_SECRET_ARN=arn, AWS_ENDPOINT_URL=moto_endpoint, DB_CONNECT_TIMEOUT=1)
    reads = _count_secret_reads(app, arn)

    assert app.test_client().get("/api/notes").status_code == 503
    assert reads == []


def test_connections_refused_together_after_a_rotation_cost_one_read_of_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new = DbSecret("app", "pw-old-123456"), DbSecret("app", "pw-new-654321")
    reads: list[str] = []

    def fetch(_aws: Aws, arn: str) -> DbSecret:
        reads.append(arn)
        return new

    monkeypatch.setattr(db, "fetch_db_secret", fetch)
    credentials = db.SecretCredentials(Aws(), "arn:aws:secretsmanager:eu-west-1:1:secret:db", old)

    # Two logins were refused with the old password; the second asks after the first re-read it.
    assert credentials.refresh(old) == new
    assert credentials.refresh(old) == new
    assert reads == ["arn:aws:secretsmanager:eu-west-1:1:secret:db"]
    assert credentials.current == new
    # The new password is refused too (rotated again): that is a new read.
    assert credentials.refresh(new) == new
    assert len(reads) == 2
