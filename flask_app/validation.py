"""Validation of request bodies and query parameters; failures name the field at fault."""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
from dataclasses import dataclass
from typing import Any

from flask import request
from werkzeug.exceptions import UnsupportedMediaType

from flask_app.errors import APIError, ValidationError
from flask_app.models import BODY_MAX_LENGTH, TITLE_MAX_LENGTH

DEFAULT_PAGE_LIMIT = 20
MAX_PAGE_LIMIT = 100
#: The largest id a ``BIGINT`` (and SQLite's ``INTEGER``) holds.
MAX_ID = 2**63 - 1

_CURSOR_PREFIX = "n1:"
_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
}


def json_body() -> dict[str, Any]:
    """Return the request's JSON object.

    415 when the body is not declared JSON, 400 when it does not parse or is not an
    object. (413 for a body over ``MAX_CONTENT_LENGTH`` is raised when it is read.)
    """
    if not request.is_json:
        raise UnsupportedMediaType("the request body must be JSON (Content-Type: application/json)")
    raw = request.get_data(cache=True)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise APIError("the request body is not valid JSON", code="invalid_json") from None
    if not isinstance(data, dict):
        raise APIError("the request body must be a JSON object", code="invalid_json")
    return data


def reject_unknown_fields(data: dict[str, Any], allowed: frozenset[str]) -> None:
    """Raise 400 naming the first field of ``data`` that is not in ``allowed``."""
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValidationError(unknown[0], f"unknown field; allowed fields are: {', '.join(sorted(allowed))}")


def _text(data: dict[str, Any], field: str, *, max_length: int, strip: bool) -> str:
    value = data[field]
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, not {_json_type(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(field, "must be valid Unicode text") from None
    if strip:
        value = value.strip()
    if len(value) > max_length:
        raise ValidationError(field, f"must be at most {max_length} characters")
    return value


def _title(data: dict[str, Any]) -> str:
    title = _text(data, "title", max_length=TITLE_MAX_LENGTH, strip=True)
    if not title:
        raise ValidationError("title", "must not be empty")
    return title


@dataclass(frozen=True, slots=True)
class NoteInput:
    """A validated new note."""

    title: str
    body: str


_NOTE_FIELDS = frozenset({"title", "body"})


def note_create(data: dict[str, Any]) -> NoteInput:
    """Validate a ``POST /api/notes`` body: title required, body optional."""
    reject_unknown_fields(data, _NOTE_FIELDS)
    if "title" not in data:
        raise ValidationError("title", "is required")
    title = _title(data)
    body = _text(data, "body", max_length=BODY_MAX_LENGTH, strip=False) if "body" in data else ""
    return NoteInput(title=title, body=body)


def note_update(data: dict[str, Any]) -> dict[str, str]:
    """Validate a ``PATCH /api/notes/<id>`` body: the fields to change (at least one)."""
    reject_unknown_fields(data, _NOTE_FIELDS)
    if not data:
        raise ValidationError(None, "nothing to change: give title and/or body")
    changes: dict[str, str] = {}
    if "title" in data:
        changes["title"] = _title(data)
    if "body" in data:
        changes["body"] = _text(data, "body", max_length=BODY_MAX_LENGTH, strip=False)
    return changes


def page_limit(raw: str | None) -> int:
    """Parse ``?limit=``: an integer in 1..100, default 20."""
    if raw is None:
        return DEFAULT_PAGE_LIMIT
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_LIMIT:
        raise ValidationError("limit", f"must be an integer from 1 to {MAX_PAGE_LIMIT}")
    return int(raw)


def encode_cursor(last_id: int) -> str:
    """Return the opaque cursor of the page after the note ``last_id``."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode_cursor(raw: str | None) -> int | None:
    """Parse ``?cursor=`` as :func:`encode_cursor` made it; ``None`` for the first page."""
    if raw is None:
        return None
    try:
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise ValidationError("cursor", "is not a cursor this API returned") from None
    number = decoded.removeprefix(_CURSOR_PREFIX)
    if not decoded.startswith(_CURSOR_PREFIX) or not number.isdigit() or not 0 < int(number) <= MAX_ID:
        raise ValidationError("cursor", "is not a cursor this API returned")
    return int(number)


@dataclass(frozen=True, slots=True)
class AssetInput:
    """A validated upload request: the content type (normalized) and the size in bytes."""

    content_type: str
    size: int

    @property
    def extension(self) -> str:
        """The extension of the generated key, from the content type."""
        return _EXTENSIONS.get(self.content_type) or mimetypes.guess_extension(self.content_type) or ""


_ASSET_FIELDS = frozenset({"content_type", "size"})


def asset_request(data: dict[str, Any], *, allowed_types: tuple[str, ...], max_bytes: int) -> AssetInput:
    """Validate a ``POST /api/assets`` body: an allowed ``content_type`` and a ``size``."""
    reject_unknown_fields(data, _ASSET_FIELDS)
    for field in ("content_type", "size"):
        if field not in data:
            raise ValidationError(field, "is required")
    content_type = data["content_type"]
    if not isinstance(content_type, str):
        raise ValidationError("content_type", f"must be a string, not {_json_type(content_type)}")
    content_type = content_type.strip().lower()
    if content_type not in allowed_types:
        raise ValidationError("content_type", f"is not allowed; allowed types are: {', '.join(allowed_types)}")
    size = data["size"]
    if isinstance(size, bool) or not isinstance(size, int):
        raise ValidationError("size", f"must be an integer, not {_json_type(size)}")
    if not 1 <= size <= max_bytes:
        raise ValidationError("size", f"must be from 1 to {max_bytes} bytes")
    return AssetInput(content_type=content_type, size=size)


def _json_type(value: object) -> str:
    """Name the JSON type of ``value`` for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a string"
