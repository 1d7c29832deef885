"""A fault-injecting HTTP proxy of the tests' own, on loopback, in front of the emulator.

The deploy engine is pointed at the proxy instead of the emulator (moto in server mode). The
proxy forwards every request to the emulator unchanged, except where a scripted plan says to
misbehave for one AWS operation (the ``Action=`` of a query-protocol body, or the operation of
an ``X-Amz-Target`` header; :data:`ANY` for every operation) on given calls of it (1 = the first
call since :meth:`FaultProxy.arm`; :data:`EVERY` for all of them):

``throttle``
    HTTP 400 with the service's ``Throttling`` / "Rate exceeded" error; nothing is forwarded.
``500`` / ``503``
    HTTP 500 or 503 with an ``InternalFailure`` error; nothing is forwarded.
``drop``
    The connection is closed without an answer; nothing is forwarded.
``slow``
    The answer is delayed ``seconds`` (at most :data:`MAX_DELAY_SECONDS`) before forwarding.
``denied``
    HTTP 403 with the service's ``AccessDenied`` error naming the IAM action; nothing is forwarded.
``garbage``
    HTTP 200 with an HTML page, as a captive portal or a wrong endpoint answers; nothing is forwarded.
``reply``
    HTTP 200 with the fault's ``body`` (an answer AWS gives that the emulator cannot, such as a
    stack in ROLLBACK_COMPLETE); nothing is forwarded.
``drop_after`` / ``500_after``
    Forwarded, so the emulator *did* process the request, then the answer is replaced by a closed
    connection or a 500. Only for testing idempotency tokens (``ClientToken``,
    ``ClientRequestToken``): on a non-idempotent call, a retry would repeat the work.

Every request is counted per operation and every injected fault recorded
(:attr:`FaultProxy.injected`), so a test can assert that the faults it asked for really happened;
the form parameters of query-protocol requests are kept (:attr:`FaultProxy.seen`) so a test can
compare a retried request with the first attempt. The proxy listens on 127.0.0.1 only, forwards
only to the one upstream it was given, bounds every delay and stops cleanly (open connections
are shut down, handler threads joined).

    with FaultProxy(emulator.endpoint_url) as proxy:
        proxy.arm([Fault("DescribeStacks", "throttle", on=(1, 3))])
        ...  # point boto3 at proxy.endpoint_url
        assert proxy.injected_kinds("DescribeStacks") == ["throttle", "throttle"]
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Literal
from urllib.parse import parse_qs, urlsplit

FaultKind = Literal["throttle", "500", "503", "drop", "slow", "denied", "garbage", "reply", "drop_after", "500_after"]
KINDS: frozenset[str] = frozenset(
    {"throttle", "500", "503", "drop", "slow", "denied", "garbage", "reply", "drop_after", "500_after"}
)
ANY = "*"  # an operation that matches every operation
EVERY = range(1, 1_000_000)  # every call
MAX_DELAY_SECONDS = 5.0
UPSTREAM_TIMEOUT_SECONDS = 30.0
IDLE_CONNECTION_SECONDS = 30.0
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)


@dataclass(frozen=True)
class Fault:
    """Misbehave as ``kind`` on the ``on`` calls (1-based) of ``operation``."""

    operation: str
    kind: FaultKind
    on: Sequence[int] = (1,)
    seconds: float = 0.0  # for "slow"
    body: str = ""  # for "reply"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(KINDS)}")
        if not self.on or min(self.on) < 1:
            raise ValueError("calls are counted from 1")
        if self.kind == "slow" and not 0 < self.seconds <= MAX_DELAY_SECONDS:
            raise ValueError(f"a slow answer waits more than 0 and at most {MAX_DELAY_SECONDS}s")


@dataclass(frozen=True)
class Injection:
    """One fault the proxy injected."""

    operation: str
    call: int
    kind: FaultKind
    seconds: float  # the delay of a slow answer; 0 for the other kinds
    at: float  # when the request arrived (time.time())


@dataclass(frozen=True)
class Seen:
    """One request the proxy received, whatever happened to it."""

    operation: str
    call: int
    at: float  # when it arrived (time.time())
    params: dict[str, str] = field(default_factory=dict)  # query-protocol form fields (first values)


class FaultProxy:
    """A threaded loopback HTTP proxy to ``upstream`` that injects scripted faults."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname not in ("localhost", "127.0.0.1") or parts.port is None:
            raise ValueError(f"the fault proxy forwards only to plain HTTP on loopback, not {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._calls: Counter[str] = Counter()
        self.injected: list[Injection] = []
        self.seen: list[Seen] = []
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._handlers: set[threading.Thread] = set()
        self._every_handler: list[threading.Thread] = []
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-proxy", daemon=True
        )
        self._thread.start()

    # ------------------------------------------------------------------ the script
    @property
    def endpoint_url(self) -> str:
        """Where clients send requests ("localhost", like the emulator's own endpoint)."""
        return f"http://localhost:{self.port}"

    def arm(self, faults: Iterable[Fault]) -> None:
        """Start a new script: ``faults`` from now on, calls counted from 1, records emptied."""
        with self._lock:
            self._faults = list(faults)
            self._calls.clear()
            self.injected = []
            self.seen = []

    def disarm(self) -> None:
        """Forward everything from now on."""
        self.arm([])

    def calls(self, operation: str) -> int:
        """How many requests for ``operation`` arrived since the last :meth:`arm`."""
        with self._lock:
            return self._calls[operation]

    def counts(self) -> dict[str, int]:
        """Requests per operation since the last :meth:`arm`."""
        with self._lock:
            return dict(self._calls)

    def injected_kinds(self, operation: str | None = None) -> list[str]:
        """The kinds of the faults injected (for ``operation``), in order."""
        with self._lock:
            return [i.kind for i in self.injected if operation is None or i.operation == operation]

    def requests(self, operation: str) -> list[Seen]:
        """Every request received for ``operation``, in order."""
        with self._lock:
            return [s for s in self.seen if s.operation == operation]

    def _next(self, operation: str, params: dict[str, str]) -> Fault | None:
        """Count the request and decide its fault; the injection is recorded now, before it
        happens, so a client that gives up on a slow answer cannot outrun the record."""
        with self._lock:
            self._calls[operation] += 1
            call = self._calls[operation]
            now = time.time()
            self.seen.append(Seen(operation, call, now, params))
            fault = next(
                (f for f in self._faults if f.operation in (operation, ANY) and call in f.on),
                None,
            )
            if fault is not None:
                self.injected.append(Injection(operation, call, fault.kind, fault.seconds, now))
            return fault

    # ------------------------------------------------------------------ life cycle
    def stop(self) -> None:
        """Stop serving, shut open connections down and join every thread (bounded)."""
        if self._stopping.is_set():
            return
        self._stopping.set()  # wakes delayed answers
        self._server.shutdown()
        with self._lock:
            connections, handlers = list(self._connections), list(self._handlers)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self._thread.join(timeout=5)
        for handler in handlers:
            handler.join(timeout=5)

    def alive_threads(self) -> list[threading.Thread]:
        """The proxy's threads still running (none once :meth:`stop` returned)."""
        with self._lock:
            threads = [self._thread, *self._every_handler]
        return [thread for thread in threads if thread.is_alive()]

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # the proxy joins its handlers itself, after shutting their sockets down

    def __init__(self, address: tuple[str, int], handler: type[_Handler], proxy: FaultProxy) -> None:
        self.proxy = proxy
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool expects
    timeout = IDLE_CONNECTION_SECONDS
    server: _Server

    def setup(self) -> None:
        super().setup()
        proxy = self.server.proxy
        with proxy._lock:
            proxy._connections.add(self.connection)
            proxy._handlers.add(threading.current_thread())
            proxy._every_handler.append(threading.current_thread())

    def finish(self) -> None:
        proxy = self.server.proxy
        with proxy._lock:
            proxy._connections.discard(self.connection)
            proxy._handlers.discard(threading.current_thread())
        with contextlib.suppress(OSError):  # the client went away first
            super().finish()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the record is what tests read."""

    def do_GET(self) -> None:
        """Proxy a GET."""
        self._proxy()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET  # noqa: N815

    # ------------------------------------------------------------------ one request
    def _proxy(self) -> None:
        proxy = self.server.proxy
        body = self._body()
        operation, params, protocol = self._operation(body)
        fault = proxy._next(operation, params)
        kind = fault.kind if fault else None
        if fault is not None and kind == "reply":
            self._answer(200, [("Content-Type", "text/xml")], fault.body.encode())
            return
        if kind in ("throttle", "500", "503", "drop", "denied", "garbage"):
            self._misbehave(str(kind), protocol, operation)
            return
        if fault is not None and kind == "slow":
            proxy._stopping.wait(min(fault.seconds, MAX_DELAY_SECONDS))
        status, headers, payload = self._forward(body)
        if kind in ("drop_after", "500_after"):
            self._misbehave("drop" if kind == "drop_after" else "500", protocol, operation)
            return
        self._answer(status, headers, payload)

    def _body(self) -> bytes:
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)

    def _operation(self, body: bytes) -> tuple[str, dict[str, str], str]:
        """The operation's name, its form fields (query protocol) and the protocol's family."""
        target = self.headers.get("X-Amz-Target")
        if target:
            return target.rsplit(".", 1)[-1], {}, "json"
        query = urlsplit(self.path).query
        form = (
            body.decode("utf-8", "replace") if "x-www-form-urlencoded" in self.headers.get("Content-Type", "") else ""
        )
        fields = {k: v[0] for k, v in parse_qs("&".join(p for p in (query, form) if p)).items()}
        if "Action" in fields:
            return fields["Action"], fields, "query"
        return f"{self.command} {urlsplit(self.path).path}", {}, "rest"

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        proxy = self.server.proxy
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        # The client addressed the proxy; the emulator reads the bucket of a virtual-hosted S3
        # request from the Host header, so only the port changes.
        host = self.headers.get("Host", "")
        if host.endswith(f":{proxy.port}"):
            headers["Host"] = f"{host.rsplit(':', 1)[0]}:{proxy.upstream_port}"
        connection = http.client.HTTPConnection(
            proxy.upstream_host, proxy.upstream_port, timeout=UPSTREAM_TIMEOUT_SECONDS
        )
        try:
            connection.request(self.command, self.path, body=body or None, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            return response.status, response.getheaders(), payload
        except OSError as exc:
            message = f"fault proxy: the emulator did not answer ({exc})".encode()
            return 502, [("Content-Type", "text/plain")], message
        finally:
            connection.close()

    def _answer(self, status: int, headers: Sequence[tuple[str, str]], payload: bytes) -> None:
        try:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP and name.lower() not in ("server", "date"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except OSError:
            self.close_connection = True  # the client gave up (a read timeout); nothing to answer

    def _misbehave(self, kind: str, protocol: str, operation: str) -> None:
        if kind == "drop":
            self.close_connection = True  # the socket closes with no answer at all
            return
        if kind == "garbage":
            page = b"<html><head><title>Sign in to the network</title></head><body>Welcome</body></html>"
            self._answer(200, [("Content-Type", "text/html")], page)
            return
        if kind == "throttle":
            status, code, message, sender = 400, "Throttling", "Rate exceeded", True
        elif kind == "denied":
            status, code, sender = 403, "AccessDenied", True
            message = f"User: arn:aws:iam::123456789012:user/ci is not authorized to perform: svc:{operation}"
        else:
            status, code, message, sender = int(kind), "InternalFailure", "injected by the fault proxy", False
        request_id = str(uuid.uuid4())
        if protocol == "json":
            json_code = {"throttle": "ThrottlingException", "denied": "AccessDeniedException"}.get(kind, code)
            payload = f'{{"__type":"{json_code}","message":"{message}"}}'.encode()
            content_type = "application/x-amz-json-1.1"
        elif protocol == "query":
            payload = (
                '<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">'
                f"<Error><Type>{'Sender' if sender else 'Receiver'}</Type><Code>{code}</Code>"
                f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            ).encode()
            content_type = "text/xml"
        else:
            rest_code = {"throttle": "SlowDown", "denied": "AccessDenied"}.get(kind, "InternalError")
            payload = f"<Error><Code>{rest_code}</Code><Message>{message}</Message></Error>".encode()
            content_type = "application/xml"
        self._answer(status, [("Content-Type", content_type), ("x-amzn-RequestId", request_id)], payload)
