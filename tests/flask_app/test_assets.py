"""``POST /api/assets``: pre-signed S3 PUT URLs that really upload (moto server)."""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.server

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 56


@pytest.fixture
def assets_client(make_app: Callable[..., Flask], moto_endpoint: str, assets_bucket: str) -> FlaskClient:
    app = make_app(
        ASSETS_BUCKET=assets_bucket,
        AWS_ENDPOINT_URL=moto_endpoint,
        ASSETS_PREFIX="/user-uploads",
        ASSETS_MAX_BYTES=1024,
    )
    return app.test_client()


def put(url: str, data: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=data, method="PUT", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_presigned_put_really_uploads_the_file(assets_client: FlaskClient, s3: S3Client, assets_bucket: str) -> None:
    response = assets_client.post("/api/assets", json={"content_type": "image/png", "size": 64})

    assert response.status_code == 201
    upload = response.json
    assert upload is not None
    assert upload["method"] == "PUT"
    assert put(upload["url"], PNG, upload["headers"]) == 200
    stored = s3.get_object(Bucket=assets_bucket, Key=upload["key"])
    assert stored["Body"].read() == PNG
    assert stored["ContentType"] == "image/png"


def test_asset_key_is_generated_under_the_prefix(assets_client: FlaskClient) -> None:
    keys = {
        assets_client.post("/api/assets", json={"content_type": "image/jpeg", "size": 10}).json["key"] for _ in range(3)
    }

    assert len(keys) == 3
    for key in keys:
        assert re.fullmatch(r"user-uploads/\d{4}/\d{2}/\d{2}/[0-9a-f]{32}\.jpg", key)


def test_presigned_url_signs_content_type_and_length_and_expires(
    assets_client: FlaskClient,
) -> None:
    upload = assets_client.post("/api/assets", json={"content_type": "Image/PNG", "size": 64}).json

    assert upload is not None
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(upload["url"]).query)
    assert query["X-Amz-SignedHeaders"] == ["content-length;content-type;host"]
    assert query["X-Amz-Expires"] == ["900"]
    assert upload["expires_in"] == 900
    assert upload["headers"] == {"Content-Type": "image/png", "Content-Length": "64"}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"size": 10}, "content_type"),
        ({"content_type": "image/png"}, "size"),
        ({"content_type": "text/html", "size": 10}, "content_type"),
        ({"content_type": "image/svg+xml", "size": 10}, "content_type"),
        ({"content_type": "image/png; charset=x", "size": 10}, "content_type"),
        ({"content_type": 5, "size": 10}, "content_type"),
        ({"content_type": "image/png", "size": 1025}, "size"),
        ({"content_type": "image/png", "size": 0}, "size"),
        ({"content_type": "image/png", "size": "10"}, "size"),
        ({"content_type": "image/png", "size": 1.5}, "size"),
        ({"content_type": "image/png", "size": True}, "size"),
        ({"content_type": "image/png", "size": 10, "key": "../etc"}, "key"),
    ],
)
def test_asset_request_with_bad_input_is_400_naming_the_field(
    assets_client: FlaskClient, payload: dict[str, Any], field: str
) -> None:
    response = assets_client.post("/api/assets", json=payload)

    assert response.status_code == 400
    assert response.json is not None
    assert response.json["field"] == field


def test_asset_request_that_is_not_json_is_415(assets_client: FlaskClient) -> None:
    assert assets_client.post("/api/assets", data="content_type=image/png").status_code == 415


def test_assets_without_a_bucket_are_503_not_configured(make_app: Callable[..., Flask]) -> None:
    response = make_app().test_client().post("/api/assets", json={"content_type": "image/png", "size": 10})

    assert response.status_code == 503
    assert response.json is not None
    assert response.json["error"] == "assets_not_configured"
