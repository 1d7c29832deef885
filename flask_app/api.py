"""The resource API under ``/api``: notes (CRUD, keyset pagination) and asset uploads.

Note endpoints:
    ``POST /api/notes`` ``{"title": str 1..200, "body": str <= 10000}`` -> 201 + Location;
    ``GET /api/notes?limit=1..100&cursor=...`` -> ``{"items": [...], "next_cursor": ...}``,
    newest first; ``GET``/``PATCH``/``DELETE /api/notes/<id>``.

Asset endpoint:
    ``POST /api/assets`` ``{"content_type": allowed type, "size": bytes}`` -> 201 with a
    pre-signed S3 ``PUT`` URL for a generated key under ``APP_ASSETS_PREFIX``; the
    content type and length are signed, so S3 rejects any other upload.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from flask import Blueprint, Response, jsonify, request, url_for
from sqlalchemy import select

from flask_app.aws import AwsConfigError
from flask_app.db import db_session
from flask_app.errors import APIError
from flask_app.models import Note, utcnow
from flask_app.state import get_state
from flask_app.validation import (
    MAX_ID,
    asset_request,
    decode_cursor,
    encode_cursor,
    json_body,
    note_create,
    note_update,
    page_limit,
)

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api")

_NOTE_ID = f"<int(max={MAX_ID}):note_id>"


def _note_or_404(note_id: int) -> Note:
    note = db_session().get(Note, note_id)
    if note is None:
        raise APIError(f"note {note_id} not found", status=404, code="not_found")
    return note


@bp.post("/notes")
def create_note() -> tuple[Response, int, dict[str, str]]:
    """Create a note."""
    fields = note_create(json_body())
    session = db_session()
    now = utcnow()
    note = Note(title=fields.title, body=fields.body, created_at=now, updated_at=now)
    session.add(note)
    session.commit()
    log.info("note created", extra={"note_id": note.id})
    return jsonify(note.to_json()), 201, {"Location": url_for(".get_note", note_id=note.id)}


@bp.get("/notes")
def list_notes() -> Response:
    """List notes, newest first, a page at a time (keyset pagination on the id)."""
    limit = page_limit(request.args.get("limit"))
    before_id = decode_cursor(request.args.get("cursor"))
    statement = select(Note).order_by(Note.id.desc()).limit(limit + 1)
    if before_id is not None:
        statement = statement.where(Note.id < before_id)
    notes = list(db_session().scalars(statement))
    next_cursor = encode_cursor(notes[limit - 1].id) if len(notes) > limit else None
    return jsonify(items=[note.to_json() for note in notes[:limit]], next_cursor=next_cursor)


@bp.get(f"/notes/{_NOTE_ID}")
def get_note(note_id: int) -> Response:
    """Return one note."""
    return jsonify(_note_or_404(note_id).to_json())


@bp.patch(f"/notes/{_NOTE_ID}")
def update_note(note_id: int) -> Response:
    """Change the title and/or the body of a note."""
    changes = note_update(json_body())
    note = _note_or_404(note_id)
    for name, value in changes.items():
        setattr(note, name, value)
    note.updated_at = utcnow()
    db_session().commit()
    log.info("note updated", extra={"note_id": note_id, "fields": sorted(changes)})
    return jsonify(note.to_json())


@bp.delete(f"/notes/{_NOTE_ID}")
def delete_note(note_id: int) -> tuple[str, int]:
    """Delete a note."""
    session = db_session()
    session.delete(_note_or_404(note_id))
    session.commit()
    log.info("note deleted", extra={"note_id": note_id})
    return "", 204


@bp.post("/assets")
def create_asset_upload() -> tuple[Response, int]:
    """Return a pre-signed S3 PUT URL for a new asset of the given type and size."""
    settings = get_state().settings
    asset = asset_request(
        json_body(),
        allowed_types=settings.assets_allowed_types,
        max_bytes=settings.assets_max_bytes,
    )
    if not settings.assets_bucket:
        raise APIError(
            "asset uploads are not configured (no APP_ASSETS_BUCKET)",
            status=503,
            code="assets_not_configured",
        )
    key = f"{settings.normalized_assets_prefix}{dt.datetime.now(dt.UTC):%Y/%m/%d}/{uuid.uuid4().hex}{asset.extension}"
    params: dict[str, Any] = {
        "Bucket": settings.assets_bucket,
        "Key": key,
        "ContentType": asset.content_type,
        "ContentLength": asset.size,
    }
    try:
        url = (
            get_state()
            .aws.s3()
            .generate_presigned_url("put_object", Params=params, ExpiresIn=settings.assets_url_expires)
        )
    except (BotoCoreError, ClientError, AwsConfigError) as exc:
        log.warning(
            "could not pre-sign an upload",
            extra={"error_type": type(exc).__name__, "error": str(exc)},
        )
        raise APIError(
            "asset storage is unavailable; retry later",
            status=503,
            code="storage_unavailable",
        ) from None
    log.info("asset upload pre-signed", extra={"key": key, "size": asset.size})
    body = {
        "key": key,
        "method": "PUT",
        "url": url,
        "headers": {"Content-Type": asset.content_type, "Content-Length": str(asset.size)},
        "expires_in": settings.assets_url_expires,
    }
    return jsonify(body), 201
