"""Operational endpoints: ``/health`` (liveness) and ``/ready`` (readiness).

``GET /health`` touches nothing and answers ``{"status": "ok"}``: the process serves.

``GET /ready`` checks what a request needs, each with the short ``APP_READY_TIMEOUT``:
the database (``SELECT 1``) and the assets bucket (S3 ``HeadBucket``; ``skipped`` when
``APP_ASSETS_BUCKET`` is unset). 200 when every check is ``ok`` or ``skipped``, else
503; the body has one entry per check. Error details go to the log, not the body.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from flask_app.aws import AwsConfigError
from flask_app.state import AppState, get_state

log = logging.getLogger(__name__)

bp = Blueprint("ops", __name__)


@bp.get("/health")
def health() -> Response:
    """Liveness: the process answers; no dependency is checked."""
    return jsonify(status="ok")


def check_database(state: AppState) -> dict[str, Any]:
    """Run ``SELECT 1`` on the readiness engine."""
    started = time.monotonic()
    try:
        with state.ready_engine.connect() as connection:
            connection.execute(text("SELECT 1")).scalar_one()
    except Exception as exc:
        log.warning(
            "readiness: database check failed",
            extra={"error_type": type(exc).__name__, "error": str(exc)},
        )
        return _result("error", started, error=type(exc).__name__)
    return _result("ok", started)


def check_assets_bucket(state: AppState) -> dict[str, Any]:
    """``HeadBucket`` the assets bucket, or skip when none is configured."""
    bucket = state.settings.assets_bucket
    if not bucket:
        return {"status": "skipped", "detail": "not configured"}
    started = time.monotonic()
    timeout = state.settings.ready_timeout
    try:
        state.aws.s3(timeout=timeout, retries=1).head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
        log.warning("readiness: bucket check failed", extra={"error_code": code})
        return _result("error", started, error=code)
    except (BotoCoreError, AwsConfigError) as exc:
        log.warning(
            "readiness: bucket check failed",
            extra={"error_type": type(exc).__name__, "error": str(exc)},
        )
        return _result("error", started, error=type(exc).__name__)
    return _result("ok", started)


def _result(status: str, started: float, **fields: Any) -> dict[str, Any]:
    return {
        "status": status,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
        **fields,
    }


@bp.get("/ready")
def ready() -> tuple[Response, int]:
    """Readiness: 200 when the database and the assets bucket answer, else 503."""
    state = get_state()
    checks = {"database": check_database(state), "assets_bucket": check_assets_bucket(state)}
    is_ready = all(check["status"] in ("ok", "skipped") for check in checks.values())
    body = {"status": "ready" if is_ready else "not_ready", "checks": checks}
    return jsonify(body), 200 if is_ready else 503
