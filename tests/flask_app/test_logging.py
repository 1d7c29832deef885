"""JSON log lines, the request id, and the redaction of secrets from every log line."""

from __future__ import annotations

import io
import json
import logging
import secrets
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from flask_app.logs import REDACTED, SecretRedactor, make_handler, register_secret


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """What the JSON handler (formatter + redactor, as installed) writes for the app."""
    stream = io.StringIO()
    handler = make_handler(stream)
    logger = logging.getLogger("flask_app")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def format_with_redactor(redactor: SecretRedactor, message: str, *args: object) -> str:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, message, args or None, None)
    redactor.filter(record)
    return record.getMessage()


def test_every_log_line_is_one_json_object_with_the_request_id(
    make_app: Callable[..., Flask], log_stream: io.StringIO
) -> None:
    client = make_app().test_client()

    response = client.post("/api/notes", json={"title": "t"})

    request_id = response.headers["X-Request-Id"]
    records = lines(log_stream)
    assert records, "nothing was logged"
    access = next(r for r in records if r["message"] == "request")
    assert access["request_id"] == request_id
    assert access["method"] == "POST"
    assert access["path"] == "/api/notes"
    assert access["status"] == 201
    assert access["level"] == "INFO"
    assert isinstance(access["duration_ms"], float)
    created = next(r for r in records if r["message"] == "note created")
    assert created["request_id"] == request_id
    assert created["note_id"] == response.json["id"]  # type: ignore[index]


def test_a_sane_request_id_from_the_caller_is_kept_and_echoed(
    make_app: Callable[..., Flask], log_stream: io.StringIO
) -> None:
    client = make_app().test_client()

    response = client.get("/api/notes", headers={"X-Request-Id": "abc-123.DEF:4"})

    assert response.headers["X-Request-Id"] == "abc-123.DEF:4"
    assert lines(log_stream)[-1]["request_id"] == "abc-123.DEF:4"


@pytest.mark.parametrize("incoming", ["", "has space", "x" * 200, 'quote"d', "semi;colon", "-leading-dash", "é"])
def test_an_insane_request_id_is_replaced_by_a_generated_one(make_app: Callable[..., Flask], incoming: str) -> None:
    response = make_app().test_client().get("/health", headers={"X-Request-Id": incoming})

    generated = response.headers["X-Request-Id"]
    assert generated != incoming
    assert len(generated) == 32
    assert int(generated, 16) >= 0


def test_redactor_removes_registered_secret_values_wherever_they_appear() -> None:
    redactor = SecretRedactor()
    redactor.add_secret("Sup3r-S3cret-Value")

    text = format_with_redactor(redactor, "connect %s failed: %r", "x", "Sup3r-S3cret-Value!")

    assert "Sup3r-S3cret-Value" not in text
    assert text == f"connect x failed: '{REDACTED}!'"


def test_redactor_ignores_values_too_short_to_be_secrets() -> None:
    redactor = SecretRedactor()
    redactor.add_secret("ab")
    redactor.add_secret("")
    redactor.add_secret(None)

    assert format_with_redactor(redactor, "about a cab") == "about a cab"


@pytest.mark.parametrize(
    ("message", "leak"),
    [
        ("password=hunter2 user=app", "hunter2"),
        ("PASSWORD: hunter2", "hunter2"),
        ("db_password='hunter2'", "hunter2"),
        ('{"password": "hunter 2 with spaces", "user": "app"}', "hunter 2"),
        ("aws_secret_access_key=AKIAxyzSECRET", "AKIAxyzSECRET"),
        ("X-Auth-Token: tok_abcdef", "tok_abcdef"),
        ("Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi"),
        ("url mysql+pymysql://app:hunter2@db.internal:3306/app", "hunter2"),
        ("api_key=k-123456", "k-123456"),
    ],
)
def test_redactor_removes_password_like_patterns(message: str, leak: str) -> None:
    text = format_with_redactor(SecretRedactor(), message)

    assert leak not in text
    assert REDACTED in text


def test_redactor_keeps_ordinary_text() -> None:
    message = "note 5 created; token bucket refilled; passwords table ok"
    assert format_with_redactor(SecretRedactor(), message) == message


def test_redactor_redacts_tracebacks_and_extra_fields() -> None:
    redactor = SecretRedactor()
    redactor.add_secret("tb-secret-9876")
    try:
        raise ValueError("failed with tb-secret-9876")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "oops", None, exc_info)
    record.detail = "value tb-secret-9876"

    redactor.filter(record)

    assert record.exc_text is not None
    assert "ValueError" in record.exc_text
    assert "tb-secret-9876" not in record.exc_text
    assert record.detail == f"value {REDACTED}"


def test_database_password_never_reaches_a_log_line(
    make_app: Callable[..., Flask], log_stream: io.StringIO, tmp_path: Any
) -> None:
    password = f"pw-{secrets.token_hex(8)}"
    # A SQLite URL cannot carry a password; a MySQL one to nowhere is enough here.
    app = make_app(DATABASE_URL=f"mysql+pymysql://app:{password}@127.0.0.1:9/app")
    logging.getLogger("flask_app.test").warning("connecting with %s", password)
    app.test_client().get("/ready")

    output = log_stream.getvalue()
    assert output
    assert password not in output
    configured = next(r for r in lines(log_stream) if r["message"] == "application configured")
    assert configured["database"] == "mysql+pymysql://app:***@127.0.0.1:9/app"


def test_registered_secrets_are_redacted_by_the_installed_handler(
    log_stream: io.StringIO,
) -> None:
    register_secret("registered-secret-4242")

    logging.getLogger("flask_app.test").error("leak? registered-secret-4242")

    assert "registered-secret-4242" not in log_stream.getvalue()
    assert lines(log_stream)[-1]["message"] == f"leak? {REDACTED}"
