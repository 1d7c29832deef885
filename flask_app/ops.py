"""Operational endpoints: ``/health`` (liveness) and ``/ready`` (readiness).

``GET /health`` touches nothing and answers ``{"status": "ok"}``: the process serves.
Under gunicorn (``flask_app.wsgi``) a ``GET``/``HEAD`` of ``/health`` is answered by
:class:`HealthFastPath`, a small WSGI layer in front of Flask's routing and request hooks, with
the same status, body and headers (``X-Request-Id`` included); the load balancer polls it, and
still reaches the app's own process through nginx and gunicorn. Other methods, and every other
path, go to Flask as before.

``GET /ready`` checks what a request needs, each with the short ``APP_READY_TIMEOUT``:
the database (``SELECT 1``) and the assets bucket (S3 ``HeadBucket``; ``skipped`` when
``APP_ASSETS_BUCKET`` is unset). 200 when every check is ``ok`` or ``skipped``, else
503; the body has one entry per check. Error details go to the log, not the body.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from flask_app import web
from flask_app.aws import AwsConfigError
from flask_app.state import AppState, get_state

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

log = logging.getLogger(__name__)

bp = Blueprint("ops", __name__)

HEALTH_PATH = "/health"
#: The liveness body, for the Flask route and the fast path alike.
HEALTH_BODY = {"status": "ok"}
#: Methods the fast path answers; Flask gives the rest their 405 or ``OPTIONS`` answer.
_FAST_METHODS = frozenset({"GET", "HEAD"})


@bp.get(HEALTH_PATH)
def health() -> Response:
    """Liveness: the process answers; no dependency is checked."""
    return jsonify(HEALTH_BODY)


class HealthFastPath:
    """WSGI middleware: ``GET``/``HEAD /health`` answered without Flask's routing and hooks.

    Liveness needs neither a database session nor the request hooks, yet through Flask a poll
    costs some 70 times what it costs here (about 150 µs against 2). The answer is the route's
    own: body and content type rendered once by ``jsonify``; the caller's request id when sane,
    else a new one (:func:`flask_app.web.incoming_request_id`), in ``X-Request-Id``; the hooks'
    DEBUG ``request`` log line when that level is on. Anything else, including other methods on
    ``/health`` (405, ``OPTIONS``), goes to the app's own WSGI callable unchanged.
    """

    def __init__(self, app: Flask) -> None:
        self.wrapped: WSGIApplication = app.wsgi_app
        with app.app_context():  # jsonify renders with the app's JSON provider, as in the route
            rendered = jsonify(HEALTH_BODY)
        self.body = rendered.get_data()
        self.content_type = rendered.content_type or "application/json"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer a liveness probe here; pass every other request on."""
        method = environ.get("REQUEST_METHOD")
        if environ.get("PATH_INFO") != HEALTH_PATH or method not in _FAST_METHODS:
            return self.wrapped(environ, start_response)
        started = time.perf_counter()
        request_id = web.incoming_request_id(environ.get("HTTP_X_REQUEST_ID"))
        start_response(
            "200 OK",
            [
                ("Content-Type", self.content_type),
                ("Content-Length", str(len(self.body))),
                (web.REQUEST_ID_HEADER, request_id),
            ],
        )
        if web.log.isEnabledFor(logging.DEBUG):
            web.log.debug(
                "request",
                extra={
                    "method": method,
                    "path": HEALTH_PATH,
                    "status": 200,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "request_id": request_id,
                },
            )
        return [b""] if method == "HEAD" else [self.body]


def install_health_fast_path(app: Flask) -> Flask:
    """Put :class:`HealthFastPath` in front of ``app``'s WSGI callable (Flask's middleware idiom)."""
    app.wsgi_app = HealthFastPath(app)  # type: ignore[method-assign]
    return app


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
