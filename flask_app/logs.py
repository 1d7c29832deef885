"""Structured logging: one JSON object per line, with the request id and secrets redacted.

:func:`configure_logging` installs a single handler on the root logger whose
:class:`JsonFormatter` writes one JSON object per line and whose :class:`SecretRedactor`
filter removes known secret values (registered with :func:`register_secret`) and
``password=...``-like patterns from every record before it is written.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import threading
import traceback
from typing import Any, TextIO

from flask import g, has_request_context

REDACTED = "***"

#: Attributes every ``LogRecord`` has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys() | {"message", "asctime", "taskName"}
)

# ``password=...``, ``"db_password": "..."``, ``token: ...`` and the like.
_KEY_VALUE = re.compile(
    r"""(?ix)
    (?P<key>[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|credential)[\w.-]*)
    (?P<sep>["']?\s*[:=]\s*)
    (?P<quote>["'])?
    (?P<value>(?(quote)[^"'\n]*|[^\s"',;&)}\]]+))
    """
)
# ``Authorization: Bearer abc`` / ``Basic abc``.
_AUTHORIZATION = re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(\w+\s+)?[^\s\"',;]+")
# ``scheme://user:password@host``.
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@")


class SecretRedactor(logging.Filter):
    """A logging filter that redacts known secret values and secret-looking patterns.

    It rewrites the record in place: the formatted message, the formatted traceback,
    the stack and string ``extra`` values, so that every handler sees the redacted text.
    """

    #: Values shorter than this are not registered: redacting them would mangle text.
    MIN_SECRET_LENGTH = 4

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()

    def add_secret(self, value: str | None) -> None:
        """Redact ``value`` wherever it appears in a log record from now on."""
        if not value or len(value) < self.MIN_SECRET_LENGTH:
            return
        with self._lock:
            if value not in self._secrets:
                # Longest first, so a secret containing another is redacted whole.
                self._secrets = tuple(sorted({*self._secrets, value}, key=len, reverse=True))

    def redact(self, text: str) -> str:
        """Return ``text`` with the known secrets and secret-looking values replaced."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _URL_CREDENTIALS.sub(rf"\1{REDACTED}@", text)
        text = _AUTHORIZATION.sub(rf"\1{REDACTED}", text)
        return _KEY_VALUE.sub(_redact_key_value, text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; never drop it."""
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, self.redact(value))
        return True


def _redact_key_value(match: re.Match[str]) -> str:
    """Keep the key and separator of a ``key=value`` match; replace the value."""
    if not match.group("value"):
        return match.group(0)
    return f"{match.group('key')}{match.group('sep')}{match.group('quote') or ''}{REDACTED}"


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object on one line.

    Keys: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``request_id``
    when logged during a request, ``exception`` and ``stack`` when present, and every
    ``extra=`` field of the record.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Return the JSON line for ``record`` (without the newline)."""
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


class JsonLineHandler(logging.Handler):
    """Write formatted records, one per line, to a stream (``sys.stderr`` at write time).

    Looking ``sys.stderr`` up at each write, rather than once, keeps the handler working
    when a test runner or a process manager swaps the stream.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self._stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record`` as one line and flush."""
        try:
            line = self.format(record)
            stream = self._stream if self._stream is not None else sys.stderr
            stream.write(line + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


#: The process-wide redactor: secrets registered here are redacted from every handler
#: that :func:`configure_logging` installs.
REDACTOR = SecretRedactor()


def register_secret(value: str | None) -> None:
    """Redact ``value`` from every log line from now on."""
    REDACTOR.add_secret(value)


def make_handler(stream: TextIO | None = None) -> JsonLineHandler:
    """Return a JSON-lines handler with the redacting filter, writing to ``stream``."""
    handler = JsonLineHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(REDACTOR)
    return handler


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> JsonLineHandler:
    """Install the JSON handler on the root logger (replacing one installed before).

    Idempotent: creating several applications in one process keeps a single handler.
    """
    root = logging.getLogger()
    for existing in list(root.handlers):
        if isinstance(existing, JsonLineHandler):
            root.removeHandler(existing)
    handler = make_handler(stream)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


def current_request_id() -> str | None:
    """Return the id of the request being handled, or ``None`` outside a request."""
    if not has_request_context():
        return None
    value = g.get("request_id")
    return value if isinstance(value, str) else None
