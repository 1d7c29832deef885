"""Benchmark: the app through nginx → gunicorn → flask_app, against a bare gunicorn hello world.

One run, all on 127.0.0.1, every server configured from the instance files (blueprints/files/,
rendered by tests/e2e/local_stack.py as on an instance, only with a free port and temporary
paths): nginx with ``worker_processes`` = CPUs (the distro's ``auto``), gunicorn with the
production settings (2 x CPUs + 1 workers, gthread, app preloaded in the master, JSON access log
to a file as systemd does).
The database is MariaDB when ``mariadbd`` is installed, else SQLite; 20 notes are seeded.

Cases, all servers started up front, each measured for ``--duration`` seconds (after a short
warm-up in the first round):

- ``hello``: gunicorn alone, same settings, serving a three-line WSGI app (the baseline);
- ``hello via nginx``: the same app behind the rendered nginx site (what the nginx hop costs);
- ``/health via nginx``: the app's liveness endpoint as the instances serve it
  (``flask_app.wsgi:app``, where :class:`flask_app.ops.HealthFastPath` answers it);
- ``/health, Flask route``: the same request to the app without the fast path
  (``flask_app:create_app()``), i.e. through Flask's routing and request hooks;
- ``/api/notes via nginx``: the notes list (a database query and JSON).

The cases run in ``--rounds`` rounds, one after the other within a round, so each round's ratios
compare measurements seconds apart: on a shared machine the throughput drifts by tens of per cent
over a minute, which a single hello measurement at the start would put into every ratio. Prints
every round's figures, then per case the median requests per second, p50 and p99 latency, and
the median (min-max) of the per-round ratios to hello. Uses ``wrk --latency`` when installed
(Debian: ``apt-get install wrk``), else a Python load generator (threads and keep-alive
``http.client`` connections, a fixed request budget and time limit).

    python bench/app.py [--duration 10] [--rounds 3] [--connections 32]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e import local_stack  # noqa: E402 - the project root is put on the path just above
from tests.flask_app.mariadb import MariaDBServer  # noqa: E402

HELLO = """def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass(frozen=True)
class Result:
    """One case's throughput and latency."""

    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    tool: str


def _wrk(url: str, duration: int, connections: int, threads: int) -> tuple[float, float, float, int]:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 30,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def percentile(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * _UNITS[unit]

    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|Socket errors:.*?timeout)\s*:?\s*(\d+)", out))
    return rps, percentile("50"), percentile("99"), errors


def _python_load(port: int, path: str, duration: int, connections: int) -> tuple[float, float, float, int]:
    """Keep-alive connections in threads, each sending requests until the time or the budget runs out."""
    budget = 200_000
    deadline = time.monotonic() + duration
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal budget, errors
        mine: list[float] = []
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < deadline:
            with lock:
                if budget <= 0:
                    break
                budget -= 1
            started = time.perf_counter()
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            mine.append((time.perf_counter() - started) * 1000)
            if not ok:
                with lock:
                    errors += 1
        connection.close()
        with lock:
            latencies.extend(mine)

    started = time.monotonic()
    workers = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.monotonic() - started
    cuts = statistics.quantiles(latencies, n=100)
    return len(latencies) / elapsed, cuts[49], cuts[98], errors


def measure(name: str, port: int, path: str, args: argparse.Namespace, *, warm_up: bool) -> Result:
    """Load ``path`` on ``port`` for ``args.duration`` seconds (after 2 s of warm-up if asked)."""
    url = f"http://127.0.0.1:{port}{path}"
    use_wrk = shutil.which("wrk") is not None and not args.python_load

    def run(seconds: int) -> tuple[float, float, float, int]:
        if use_wrk:
            return _wrk(url, seconds, args.connections, args.threads)
        return _python_load(port, path, seconds, args.connections)

    if warm_up:
        run(2)
    rps, p50, p99, errors = run(args.duration)
    return Result(name, rps, p50, p99, errors, "wrk" if use_wrk else "python")


@contextlib.contextmanager
def database() -> Iterator[tuple[str, str | None]]:
    """(URL, TLS CA) of MariaDB when installed (a throwaway server), else of a SQLite file."""
    if shutil.which("mariadbd") or Path("/usr/sbin/mariadbd").exists():
        server = MariaDBServer.create()
        try:
            yield server.url().render_as_string(hide_password=False), str(server.tls.ca) if server.tls else None
        finally:
            server.destroy()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.sqlite3", None


@contextlib.contextmanager
def hello_world(workers: int) -> Iterator[int]:
    """A gunicorn with the instance settings (rendered gunicorn.conf.py) serving ``HELLO`` on a TCP port."""
    with tempfile.TemporaryDirectory(prefix="hello-") as tmp:
        base = Path(tmp)
        (base / "hello.py").write_text(HELLO)
        config = base / "gunicorn.conf.py"
        config.write_text(local_stack.render("gunicorn_conf.py", {"AppSocket": str(base / "unused.sock")}))
        port = local_stack.free_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": str(workers),
        }
        with (base / "hello.log").open("ab") as log:
            process = subprocess.Popen(
                [str(local_stack.VENV_BIN / "gunicorn"), "--config", str(config), "--chdir", tmp, "hello:app"],
                env=env,
                stdout=log,
                stderr=log,
            )
        try:
            deadline = time.monotonic() + 20
            while True:
                with contextlib.suppress(OSError):
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    connection.request("GET", "/")
                    if connection.getresponse().status == 200:
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"hello world did not start:\n{(base / 'hello.log').read_text()[-2000:]}")
                time.sleep(0.05)
            yield port
        finally:
            process.terminate()
            process.wait(10)


@dataclass(frozen=True)
class Case:
    """What one case loads: a name, the port of its server and the path."""

    name: str
    port: int
    path: str


@contextlib.contextmanager
def app_stack(nginx: str, url: str, tls_ca: str | None, workers: int, cpus: int, **options: Any) -> Iterator[int]:
    """Run nginx and gunicorn from the instance files (local_stack); yield nginx's port, stop both on exit."""
    stack = local_stack.start(nginx, database_url=url, tls_ca=tls_ca, workers=workers, nginx_workers=cpus, **options)
    try:
        yield stack.http_port
    finally:
        stack.stop()
        shutil.rmtree(stack.base, ignore_errors=True)


def _seed_notes(port: int) -> None:
    for index in range(20):
        body = json.dumps({"title": f"note {index}", "body": "bench " * 20}).encode()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("POST", "/api/notes", body=body, headers={"Content-Type": "application/json"})
            if connection.getresponse().status != 201:
                raise RuntimeError("seeding a note failed")
        finally:
            connection.close()


def _ratios(rounds: list[list[Result]], index: int) -> list[float]:
    return [results[index].rps / results[0].rps for results in rounds]


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    """Start every server, run the cases in rounds and print the figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per case and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all cases (ratios are per round)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--python-load", action="store_true", help="use the Python load generator even with wrk")
    args = parser.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    cpus = len(os.sched_getaffinity(0))
    workers = 2 * cpus + 1
    rounds: list[list[Result]] = []
    with database() as (url, tls_ca), contextlib.ExitStack() as servers:
        environment = {
            **local_stack.parse_environment_file(local_stack.render("app.env", local_stack.local_values(ROOT, 80))),
            "PATH": str(local_stack.VENV_BIN),
            "APP_DATABASE_URL": url,
            "APP_DB_TLS_CA": tls_ca or "",
            "APP_DB_SECRET_ARN": "",
            "APP_ASSETS_BUCKET": "",
        }
        local_stack.migrate(environment)
        hello_dir = Path(servers.enter_context(tempfile.TemporaryDirectory(prefix="hello-")))
        (hello_dir / "hello.py").write_text(HELLO)
        hello_port = servers.enter_context(hello_world(workers))
        hello_nginx_port = servers.enter_context(
            app_stack(nginx, url, None, workers, cpus, wsgi_app="hello:app", python_path=hello_dir)
        )
        app_port = servers.enter_context(app_stack(nginx, url, tls_ca, workers, cpus))
        # The factory skips flask_app.wsgi's fork hook: fine for /health, which touches no pool.
        route_port = servers.enter_context(
            app_stack(nginx, url, tls_ca, workers, cpus, wsgi_app="flask_app:create_app()")
        )
        _seed_notes(app_port)
        cases = [
            Case("hello (gunicorn alone)", hello_port, "/"),
            Case("hello via nginx", hello_nginx_port, "/"),
            Case("/health via nginx", app_port, "/health"),
            Case("/health, Flask route", route_port, "/health"),
            Case("/api/notes via nginx", app_port, "/api/notes?limit=20"),
        ]
        for number in range(args.rounds):
            rounds.append([measure(c.name, c.port, c.path, args, warm_up=number == 0) for c in cases])
            print(
                f"round {number + 1}: "
                + ", ".join(f"{r.name} {r.rps:.0f}" for r in rounds[-1])
                + f"; /health : hello = {rounds[-1][2].rps / rounds[-1][0].rps:.2f}",
                flush=True,
            )
    database_kind = "MariaDB" if url.startswith("mysql") else "SQLite"
    print(
        f"{cpus} CPUs; gunicorn {workers} gthread workers x 2 threads; nginx {cpus} workers; {database_kind}; "
        f"{args.connections} connections, {args.rounds} rounds of {args.duration} s per case ({rounds[0][0].tool})"
    )
    print(f"{'case (median of rounds)':<24} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for index, case in enumerate(cases):
        per_round = [results[index] for results in rounds]
        print(
            f"{case.name:<24} {statistics.median(r.rps for r in per_round):>10.1f} "
            f"{statistics.median(r.p50_ms for r in per_round):>8.2f} "
            f"{statistics.median(r.p99_ms for r in per_round):>8.2f} {sum(r.errors for r in per_round):>7}"
        )
    print("ratios to hello, per round: median (min-max)")
    print(f"ratio hello via nginx : hello = {_summary(_ratios(rounds, 1))}")
    print(f"ratio /health via nginx : hello = {_summary(_ratios(rounds, 2))} (target >= 0.80)")
    print(f"ratio /health, Flask route : hello = {_summary(_ratios(rounds, 3))} (without the fast path)")
    print(f"ratio /api/notes via nginx : hello = {_summary(_ratios(rounds, 4))}")


if __name__ == "__main__":
    main()
