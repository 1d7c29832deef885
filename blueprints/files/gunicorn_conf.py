"""gunicorn settings of the app: /etc/webapp/gunicorn.conf.py on the instances.

An Fn::Sub template like every instance file (blueprints/compute.py renders it; tests/e2e and
bench/app.py render it with a temporary socket): its one template value is the unix socket nginx
proxies to. The environment may override, for tests and tuning: ``GUNICORN_BIND``,
``GUNICORN_WORKERS`` (default: 2 x CPUs + 1), ``GUNICORN_THREADS`` (2), ``GUNICORN_WORKER_CLASS``
(``gthread``) and ``GUNICORN_LOG_LEVEL`` (``info``).

Both gunicorn logs are JSON lines on stdout/stderr, like the app's own log (flask_app.logs), so
the one file systemd appends them to is all JSON for CloudWatch.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from typing import Any

from gunicorn import glogging  # type: ignore[import-untyped]  # gunicorn ships no type information


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = [os.environ.get("GUNICORN_BIND") or "unix:${AppSocket}"]
# The socket is rw for the service's group, which nginx's user joins; nobody else may connect.
umask = 0o007
# nginx is the only client, on this host; a unix-socket peer is trusted by gunicorn anyway.
forwarded_allow_ips = "127.0.0.1,::1"

# Workers from the CPUs this process may use (respects affinity and cpusets), the usual 2n+1.
workers = _int("GUNICORN_WORKERS", 2 * len(os.sched_getaffinity(0)) + 1)
# Threads keep a worker serving while one request waits on the database, and let it keep
# nginx's upstream connections alive (a sync worker closes every connection).
worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or "gthread"
threads = _int("GUNICORN_THREADS", 2)
# The heartbeat file on tmpfs: no disk writes, and writable under ProtectSystem=strict.
worker_tmp_dir = "/dev/shm"  # noqa: S108 - gunicorn's documented choice; not a shared temp file
# A request running longer than this is killed (nginx's read timeout is a little longer).
timeout = 30
# On stop or reload, in-flight requests get this long; the unit's TimeoutStopSec is longer.
graceful_timeout = 30
# Above nginx's upstream keepalive_timeout (4 s), so nginx always closes an idle connection first.
keepalive = 5
# Recycle workers now and then (jittered so they do not restart together): bounds slow leaks.
max_requests = 10000
max_requests_jitter = 1000
# The app is created once, in the master, and the workers are forked from it (flask_app.wsgi gives
# each a fresh database pool and AWS clients). A worker recycled above or killed by the timeout
# serves again in milliseconds instead of importing the app anew (about 0.7 s of CPU, a secret
# read from Secrets Manager) while its share of requests waits; a configuration or secret error
# fails the start, not a later recycle (gunicorn halts when a worker cannot boot). New code needs
# a restart, not a reload (HUP): deploys replace the instances anyway.
preload_app = True
proc_name = "webapp"
# The control socket's default lives in the home directory, read-only under the unit's sandbox.
control_socket_disable = True

# Every request, /health included: nginx does not log the load balancer's polls, so this line is
# the log's proof that the app answered them (a few a minute).
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL") or "info"


def _now() -> str:
    return dt.datetime.now(tz=dt.UTC).isoformat(timespec="milliseconds")


class JsonErrorFormatter(logging.Formatter):
    """gunicorn's own messages as JSON objects with the keys of the app's log lines."""

    def format(self, record: logging.LogRecord) -> str:
        """One JSON line for ``record``."""
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class JsonLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger with a JSON access line per request and JSON error lines."""

    def setup(self, cfg: Any) -> None:
        """Set gunicorn's handlers up, then make the error log JSON."""
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonErrorFormatter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: dt.timedelta) -> None:
        """One JSON line per request, with what nginx passed on (client address, request id, scheme).

        Read straight from the WSGI environ: gunicorn's ``atoms()`` copies every header and environ
        entry on each request, which costs more than the rest of the line.
        """
        if not self.cfg.accesslog:
            return
        status = resp.status
        # The id the app answered with (it replaces a malformed one), else the one nginx sent.
        request_id = next((v for k, v in resp.headers if k.lower() == "x-request-id"), None)
        entry = {
            "time": _now(),
            "level": "INFO",
            "logger": "gunicorn.access",
            "message": "request",
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "query": environ.get("QUERY_STRING"),
            "status": int(status.split(None, 1)[0]) if isinstance(status, str) else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "request_id": request_id or environ.get("HTTP_X_REQUEST_ID"),
            "x_forwarded_for": environ.get("HTTP_X_FORWARDED_FOR"),
            "x_real_ip": environ.get("HTTP_X_REAL_IP"),
            "scheme": environ.get("wsgi.url_scheme"),
            "host": environ.get("HTTP_HOST"),
            "user_agent": environ.get("HTTP_USER_AGENT"),
            "pid": os.getpid(),
        }
        try:
            self.access_log.info(json.dumps(entry, default=str))
        except Exception:
            self.exception("access log line failed")


logger_class = JsonLogger
