"""Per-request plumbing: the request id and the access log line."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
#: A caller's request id is kept when it looks like an id (no spaces, quotes, CR/LF).
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,127}")
#: Paths polled by load balancers, logged at DEBUG so they do not drown the log.
QUIET_PATHS = frozenset({"/health", "/ready"})


def incoming_request_id(value: str | None) -> str:
    """Return ``value`` when it is a sane request id, else a new random one."""
    if value and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def _before_request() -> None:
    g.request_id = incoming_request_id(request.headers.get(REQUEST_ID_HEADER))
    g.request_started = time.perf_counter()


def _after_request(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    started = g.get("request_started")
    duration_ms = round((time.perf_counter() - started) * 1000, 1) if started else None
    level = logging.DEBUG if request.path in QUIET_PATHS and response.status_code < 400 else (logging.INFO)
    log.log(
        level,
        "request",
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": duration_ms,
        },
    )
    return response


def register_request_hooks(app: Flask) -> None:
    """Give every request an id (echoed in ``X-Request-Id``) and an access log line."""
    app.before_request(_before_request)
    app.after_request(_after_request)
