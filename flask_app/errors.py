"""JSON errors: every error response is ``{"error": code, "message": ..., ...}``.

- :class:`APIError` (and :class:`ValidationError`, with the ``field`` at fault): its status.
- Werkzeug HTTP errors (404, 405, 413, 415, ...): their status and headers (``Allow``).
- A database that is down or unreachable (SQLAlchemy ``OperationalError``,
  ``InterfaceError``, a lost connection, a pool timeout): 503 with ``Retry-After``.
- Anything else: 500 with a fixed message; the exception is only logged (redacted),
  never sent.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from flask_app.logs import current_request_id

log = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_SECONDS = 5


class APIError(Exception):
    """An error the client is told about: status, code, message, optional field."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        code: str = "bad_request",
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.field = field
        self.headers = headers or {}


class ValidationError(APIError):
    """A request value is missing or wrong: 400 naming the field."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message, status=400, code="validation_error", field=field)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Return the JSON error response (with the request id in the body)."""
    body: dict[str, Any] = {"error": code, "message": message}
    if field is not None:
        body["field"] = field
    request_id = current_request_id()
    if request_id is not None:
        body["request_id"] = request_id
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def is_database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database cannot be reached (so 503, not 500)."""
    if isinstance(
        error,
        sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.DisconnectionError | sa_exc.TimeoutError,
    ):
        return True
    return isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated


def _handle_api_error(error: APIError) -> Response:
    return error_response(error.status, error.code, error.message, field=error.field, headers=error.headers)


def _handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    code = (error.name or "error").lower().replace(" ", "_").replace("-", "_")
    headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
    return error_response(status, code, error.description or error.name, headers=headers)


def _handle_exception(error: Exception) -> Response:
    if is_database_unavailable(error):
        # The message of a connection error can name hosts; it goes to the log only.
        log.warning(
            "database unavailable",
            extra={"error_type": type(error).__name__, "error": str(error)},
        )
        return error_response(
            503,
            "database_unavailable",
            "the database is unavailable; retry later",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )
    log.error("unhandled exception", exc_info=error)
    return error_response(500, "internal_error", "internal server error")


def register_error_handlers(app: Flask) -> None:
    """Make every error of ``app`` a JSON response."""
    app.register_error_handler(APIError, _handle_api_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_exception)
