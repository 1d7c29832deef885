"""``/health`` (liveness, no dependencies) and ``/ready`` (database and S3 checks)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.flask_app.mariadb import free_port


def test_health_is_200_and_tiny(client: FlaskClient) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_health_does_not_touch_the_database(make_app: Callable[..., Flask]) -> None:
    app = make_app(DATABASE_URL=f"mysql+pymysql://app:pw@127.0.0.1:{free_port()}/app")

    started = time.monotonic()
    response = app.test_client().get("/health")

    assert response.status_code == 200
    assert time.monotonic() - started < 0.5


def test_ready_is_200_with_the_bucket_check_skipped_when_not_configured(
    client: FlaskClient,
) -> None:
    response = client.get("/ready")

    assert response.status_code == 200
    assert response.json is not None
    assert response.json["status"] == "ready"
    assert response.json["checks"]["database"]["status"] == "ok"
    assert response.json["checks"]["assets_bucket"] == {
        "status": "skipped",
        "detail": "not configured",
    }


def test_ready_returns_503_when_database_is_down(make_app: Callable[..., Flask]) -> None:
    app = make_app(DATABASE_URL=f"mysql+pymysql://app:pw@127.0.0.1:{free_port()}/app")

    response = app.test_client().get("/ready")

    assert response.status_code == 503
    assert response.json is not None
    assert response.json["status"] == "not_ready"
    assert response.json["checks"]["database"]["status"] == "error"
    assert response.json["checks"]["database"]["error"] == "OperationalError"


@pytest.mark.server
def test_ready_checks_the_assets_bucket(make_app: Callable[..., Flask], moto_endpoint: str, assets_bucket: str) -> None:
    app = make_app(ASSETS_BUCKET=assets_bucket, AWS_ENDPOINT_URL=moto_endpoint)

    response = app.test_client().get("/ready")

    assert response.status_code == 200
    assert response.json is not None
    assert response.json["checks"]["assets_bucket"]["status"] == "ok"


@pytest.mark.server
def test_ready_returns_503_when_the_assets_bucket_does_not_exist(
    make_app: Callable[..., Flask], moto_endpoint: str
) -> None:
    app = make_app(ASSETS_BUCKET="no-such-bucket-here", AWS_ENDPOINT_URL=moto_endpoint)

    response = app.test_client().get("/ready")

    assert response.status_code == 503
    assert response.json is not None
    bucket = response.json["checks"]["assets_bucket"]
    assert bucket["status"] == "error"
    assert bucket["error"] in ("404", "NoSuchBucket")
    assert response.json["checks"]["database"]["status"] == "ok"


def test_ready_returns_503_quickly_when_s3_is_unreachable(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(
        ASSETS_BUCKET="assets",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
        READY_TIMEOUT=1,
    )

    started = time.monotonic()
    response = app.test_client().get("/ready")

    assert response.status_code == 503
    assert response.json is not None
    assert response.json["checks"]["assets_bucket"]["status"] == "error"
    assert time.monotonic() - started < 5
