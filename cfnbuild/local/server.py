"""A local session's emulator process: ``python -m cfnbuild.local.server --port N --token T``.

It applies cfnbuild's emulator corrections (:func:`cfnbuild.local.emulator.prepare_emulator`),
listens on 127.0.0.1 only, prints the port it listens on as one line on stdout (then nothing
more there), and serves moto until SIGTERM or SIGINT. :mod:`cfnbuild.local.session` starts it
detached and records where it listens.

The server is moto's own (``ThreadedMotoServer``'s WSGI application and request handler, made
with werkzeug's ``make_server`` as it does), with one addition: ``GET`` :data:`IDENTITY_PATH`
answers the token it was started with and its pid, so a session record is trusted only while the
process on its port is that very server. The server is made here rather than through
``ThreadedMotoServer.start``, which waits for ever when the port cannot be bound.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from cfnbuild.errors import CfnbuildError

IDENTITY_PATH = "/__cfnbuild/session"
LOOPBACK = "127.0.0.1"
EXIT_CANNOT_LISTEN = 3


def identified(app: Callable[..., Iterable[bytes]], token: str) -> Callable[..., Iterable[bytes]]:
    """``app`` (moto's WSGI application) answering :data:`IDENTITY_PATH` with ``token`` and this pid."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == IDENTITY_PATH:
            body = json.dumps({"token": token, "pid": os.getpid()}).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)

    return wsgi


def serve(port: int, token: str) -> int:
    """Listen on 127.0.0.1:``port`` (0: a free one), say the port on stdout, serve until SIGTERM; the exit code."""
    from cfnbuild.local.emulator import prepare_emulator  # noqa: PLC0415  (imports moto)

    prepare_emulator()
    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415  (optional dependency)
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server  # noqa: PLC0415  (comes with moto)

    app = identified(DomainDispatcherApplication(create_backend_app), token)
    try:
        server = make_server(LOOPBACK, port, app, threaded=True, request_handler=MotoRequestHandler)
    except OSError as exc:
        print(f"cannot listen on {LOOPBACK}:{port}: {exc.strerror or exc}", file=sys.stderr, flush=True)
        return EXIT_CANNOT_LISTEN
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(server.server_port, flush=True)
    # Nothing more goes to stdout: the starter reads one line and closes its end.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    while not stopping.wait(1.0):
        pass
    server.shutdown()
    thread.join(timeout=5)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and :func:`serve`."""
    parser = argparse.ArgumentParser(
        prog="python -m cfnbuild.local.server", description="The emulator of a local session."
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--token", required=True, help="what GET /__cfnbuild/session answers, to tell this server")
    args = parser.parse_args(argv)
    try:
        return serve(args.port, args.token)
    except CfnbuildError as exc:  # moto missing: the one line the starter shows
        print(exc, file=sys.stderr, flush=True)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
