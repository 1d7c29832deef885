"""A local session: the embedded emulator in the background, lasting across commands until stopped.

:func:`start` runs :mod:`cfnbuild.local.server` as a detached process (its own session, so a
Ctrl-C in the terminal that started it does not reach it) listening on 127.0.0.1 only, waits
until it answers as AWS does (a bounded wait), and records where it listens in
``.cfnbuild-cache/local/session.json`` (written atomically): its pid, port, endpoint, start time,
the token that tells it from any other process, and the region it was started for.

A record is never trusted as it stands: :func:`current` checks that the pid is alive and that
the process on the port answers the record's token and pid (``GET /__cfnbuild/session``). A
record whose process has ended, or whose port answers as something else (another program, or
the pid reused), is stale: said in one line and removed, and the process on that port is left
alone. :func:`stop` sends SIGTERM, waits, sends SIGKILL after a bound, and removes the record
and the server's log, so nothing of a session outlives it.

Only the CLI starts or uses a session; deploy code sees just an endpoint.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from cfnbuild.errors import CfnbuildError
from cfnbuild.files import os_reason, shape_problem, shown, write_atomic
from cfnbuild.local.emulator import Emulator
from cfnbuild.local.server import EXIT_CANNOT_LISTEN, IDENTITY_PATH, LOOPBACK

SESSION_DIR = Path(".cfnbuild-cache") / "local"  # in the project's cache (the CLI's CACHE_DIR; local may not import it)
START_SECONDS = 30.0  # importing moto and applying the corrections takes a few seconds on a slow machine
STOP_SECONDS = 10.0  # SIGTERM, then SIGKILL after this
_RECORD_SHAPE: dict[str, type] = {"pid": int, "port": int, "endpoint_url": str, "started_at": str, "token": str}
# Stack states that no longer hold anything: ListStacks keeps deleted stacks for a while.
_GONE = frozenset({"DELETE_COMPLETE"})


class SessionError(CfnbuildError):
    """A local session could not be started or stopped; the message says why and what to do."""


@dataclass(frozen=True)
class Session:
    """A running local session, as its record says and its server confirmed."""

    pid: int
    port: int
    endpoint_url: str
    started_at: str  # ISO 8601, UTC
    token: str
    region: str | None = None

    def emulator(self, region: str | None = None) -> Emulator:
        """The session's emulator for clients in ``region`` (default: the one it was started for)."""
        return Emulator(endpoint_url=self.endpoint_url, region=region or self.region or "us-east-1")

    def since(self) -> str:
        """When it started, as people read it: ``2026-12-03 13:40:12 UTC``."""
        try:
            return datetime.fromisoformat(self.started_at).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        except ValueError:
            return self.started_at

    def where(self) -> str:
        """``http://localhost:4566 (pid 1234, since 2026-12-03 13:40:12 UTC)``."""
        return f"{self.endpoint_url} (pid {self.pid}, since {self.since()})"


@dataclass(frozen=True)
class Found:
    """What the record says: the running session, or none; ``stale``: the line for a stale record, removed."""

    session: Session | None
    stale: str | None = None


@dataclass(frozen=True)
class HeldStack:
    """A stack the session's emulator holds."""

    region: str
    name: str
    status: str


def record_path(root: Path) -> Path:
    """Where the session of the project at ``root`` is recorded."""
    return root / SESSION_DIR / "session.json"


def log_path(root: Path) -> Path:
    """Where the session's server writes what it says on stderr (read when it does not start)."""
    return root / SESSION_DIR / "server.log"


# ----------------------------------------------------------------------------- the record
def _read_record(path: Path) -> tuple[Session | None, str | None]:
    """The session the record at ``path`` names, or ``None`` with why it cannot be used (``None`` when absent)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = os_reason(exc) if isinstance(exc, OSError) else str(exc)
        return None, f"cannot be read ({reason})"
    wrong = "not a JSON object" if not isinstance(data, dict) else shape_problem(data, _RECORD_SHAPE)
    if wrong is not None:
        return None, f"is not a session record ({wrong})"
    region = data.get("region")
    return Session(
        pid=data["pid"],
        port=data["port"],
        endpoint_url=data["endpoint_url"],
        started_at=data["started_at"],
        token=data["token"],
        region=region if isinstance(region, str) else None,
    ), None


def _remove(root: Path) -> None:
    for path in (record_path(root), log_path(root)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped by its parent, does not)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child (a test, or a failed start): reap it
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, and not ours (the identity check says so)
    try:  # Linux: an ended process whose parent has not reaped it yet still has a pid
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def identity(port: int, timeout: float = 5.0) -> dict[str, Any] | None:
    """What 127.0.0.1:``port`` answers to ``GET /__cfnbuild/session``; ``None`` when nothing answers it as JSON.

    Straight to the address (``http.client``), never through a proxy the environment names.
    """
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request("GET", IDENTITY_PATH)
        answer = connection.getresponse()
        data = json.loads(answer.read(4096)) if answer.status == 200 else None
    except (OSError, ValueError, http.client.HTTPException):  # refused, timed out, not HTTP, not JSON
        return None
    finally:
        connection.close()
    return data if isinstance(data, dict) else None


def _problem(session: Session) -> str | None:
    """Why ``session`` is not running as recorded, or ``None`` when its server answers as itself."""
    if not _alive(session.pid):
        return f"its process {session.pid} has ended"
    answer = identity(session.port)
    if answer == {"token": session.token, "pid": session.pid} or (answer is None and _runs_server(session)):
        return None  # it answers as itself, or it is busy but is the very server started with this token
    if answer is None and _port_free(session.port):
        return f"nothing listens on port {session.port} (process {session.pid} is another program now)"
    return (
        f"port {session.port} does not answer as the session's emulator (another program has it, or process "
        f"{session.pid} is another program now); that process was left alone"
    )


def _runs_server(session: Session) -> bool:
    """Whether process ``session.pid`` is the server started with the session's token (Linux: its command line)."""
    try:
        arguments = Path(f"/proc/{session.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False  # no /proc (or not allowed): only the server's answer can tell
    return b"cfnbuild.local.server" in arguments and session.token.encode() in arguments


def current(root: Path) -> Found:
    """The project's running session, checked; a stale record is removed and said in :attr:`Found.stale`."""
    path = record_path(root)
    session, unreadable = _read_record(path)
    if unreadable is not None:
        _remove(root)
        return Found(None, f"the local session record {shown(path)} {unreadable}; removed it")
    if session is None:
        return Found(None)
    problem = _problem(session)
    if problem is None:
        return Found(session)
    _remove(root)
    return Found(None, f"the local session recorded at {session.endpoint_url} is gone: {problem}; removed its record")


# ----------------------------------------------------------------------------- start
def _port_free(port: int) -> bool:
    """Whether 127.0.0.1:``port`` can be listened on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _port_in_use(port: int) -> SessionError:
    return SessionError(
        f"cannot start the local session: port {port} on {LOOPBACK} is in use by another program; choose a free one "
        "with --port N, or leave --port out to take any free port"
    )


@contextlib.contextmanager
def _exclusive(root: Path, what: str) -> Any:
    """Hold the project's session lock while ``what`` (start or stop) runs: two at once would race."""
    lock_file = record_path(root).with_suffix(".lock")
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(lock_file, timeout=START_SECONDS + STOP_SECONDS):
            yield
    except Timeout:
        raise SessionError(
            f"cannot {what} the local session: another 'cfnbuild local start' or 'stop' of this project "
            f"still holds {shown(lock_file)}; wait for it, then run this again"
        ) from None
    except OSError as exc:
        raise SessionError(f"cannot {what} the local session: {shown(lock_file)}: {os_reason(exc)}") from None


def start(root: Path, *, port: int | None = None, region: str | None = None) -> tuple[Session, bool, str | None]:
    """Start the project's session, or find the one running: (session, started now, stale line or None).

    Raises :class:`SessionError` when ``port`` is taken, when one runs on another port than the
    ``port`` asked for, or when the server does not come up within :data:`START_SECONDS` (with
    the last line it wrote on stderr). Two starts at once are one start: the second waits for the
    first and finds its session.
    """
    with _exclusive(root, "start"):
        return _start(root, port=port, region=region)


def _start(root: Path, *, port: int | None, region: str | None) -> tuple[Session, bool, str | None]:
    found = current(root)
    if found.session is not None:
        if port is not None and port != found.session.port:
            raise SessionError(
                f"a local session already runs at {found.session.where()}, not on port {port}; "
                "stop it with 'cfnbuild local stop' first"
            )
        return found.session, False, found.stale
    if port is not None and not _port_free(port):
        raise _port_in_use(port)
    token = secrets.token_hex(16)
    process = _spawn(root, port or 0, token)
    try:
        listening = _await_port(root, process, port)
        # "localhost" rather than the address: moto reads a TemplateURL path-style only then.
        session = Session(
            pid=process.pid,
            port=listening,
            endpoint_url=f"http://localhost:{listening}",
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            token=token,
            region=region,
        )
        _await_aws_answer(session)
        write_atomic(record_path(root), json.dumps(asdict(session), indent=2, sort_keys=True) + "\n")
    except BaseException:
        _end(process.pid)
        raise
    finally:
        if process.stdout is not None:
            process.stdout.close()
    process.returncode = 0  # detached on purpose: no "still running" warning when this object goes
    return session, True, found.stale


def _spawn(root: Path, port: int, token: str) -> subprocess.Popen[bytes]:
    """The server process, detached, its stderr in :func:`log_path`."""
    log = log_path(root)
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        stderr = log.open("wb")
    except OSError as exc:
        raise SessionError(f"cannot start the local session: cannot write {shown(log)} ({os_reason(exc)})") from None
    package_parent = str(Path(__file__).resolve().parents[2])  # so the server imports this very cfnbuild
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    with stderr:
        return subprocess.Popen(  # noqa: S603  (this interpreter and fixed arguments)
            [sys.executable, "-m", "cfnbuild.local.server", "--port", str(port), "--token", token],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=root,
            env=env,
            start_new_session=True,  # not in the terminal's process group: Ctrl-C there does not end it
            close_fds=True,
        )


def _await_port(root: Path, process: subprocess.Popen[bytes], asked: int | None) -> int:
    """The port the server says it listens on; :class:`SessionError` when it ends or says nothing in time."""
    assert process.stdout is not None  # noqa: S101  (made with stdout=PIPE)
    deadline = time.monotonic() + START_SECONDS
    line = b""
    while time.monotonic() < deadline and not line.endswith(b"\n"):
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(process.stdout.fileno(), 64)
        if not chunk:
            break  # the server ended
        line += chunk
    if line.strip().isdigit():
        return int(line)
    try:  # it closed stdout without a port: it is ending (or it said nothing in time: still running)
        code: int | None = process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        code = None
    said = _last_line(root)
    if code is None:
        raise SessionError(
            f"cannot start the local session: the emulator did not listen within {START_SECONDS:.0f} s"
            + (f" (it said: {said})" if said else "")
            + "; run 'cfnbuild local start' again"
        )
    if code == EXIT_CANNOT_LISTEN and asked is not None:
        raise _port_in_use(asked)
    if said:
        raise SessionError(f"cannot start the local session: the emulator ended at once (exit {code}), saying: {said}")
    raise SessionError(
        f"cannot start the local session: the emulator ended at once (exit {code}) without a word; run "
        "'python -m cfnbuild.local.server --token check' to see it fail"
    )


def _last_line(root: Path) -> str:
    """The last line the server wrote on stderr (its log), or nothing."""
    try:
        lines = [line.strip() for line in log_path(root).read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def _await_aws_answer(session: Session) -> None:
    """Wait (bounded) until the server answers an AWS call as the emulator."""
    from botocore.config import Config  # noqa: PLC0415  (boto3 only when a session starts)

    config = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1})
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            session.emulator().client("sts", config=config).get_caller_identity()
        except Exception as exc:  # any failure is "not yet"; the last one is said
            if time.monotonic() > deadline:
                raise SessionError(
                    f"cannot start the local session: the emulator at {session.endpoint_url} does not answer "
                    f"({type(exc).__name__}: {exc}); run 'cfnbuild local start' again"
                ) from None
            time.sleep(0.2)
        else:
            return


# ----------------------------------------------------------------------------- stop
def _end(pid: int, seconds: float = STOP_SECONDS) -> bool:
    """SIGTERM ``pid``, wait up to ``seconds``, then SIGKILL; whether it had to be killed."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if _gone_within(pid, seconds):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _gone_within(pid, 5.0)
    return True


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop(root: Path) -> tuple[Session | None, bool, str | None]:
    """Stop the project's session: (the session stopped or None, whether it had to be killed, stale line or None)."""
    with _exclusive(root, "stop"):
        return _stop(root)


def _stop(root: Path) -> tuple[Session | None, bool, str | None]:
    found = current(root)
    if found.session is None:
        return None, False, found.stale
    killed = _end(found.session.pid)
    if _alive(found.session.pid):
        raise SessionError(
            f"cannot stop the local session: process {found.session.pid} is still running after SIGKILL; "
            "end it yourself and run 'cfnbuild local stop' again"
        )
    _remove(root)
    return found.session, killed, None


# ----------------------------------------------------------------------------- what it holds
def held_stacks(session: Session, regions: list[str]) -> list[HeldStack]:
    """The stacks the session's emulator holds in each of ``regions`` (deleted ones left out)."""
    from botocore.config import Config  # noqa: PLC0415  (boto3 only when asked)

    config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2})  # loopback: no long waits
    held = []
    for region in regions:
        cloudformation = session.emulator(region).client("cloudformation", config=config)
        for page in cloudformation.get_paginator("list_stacks").paginate():
            for summary in page.get("StackSummaries", []):
                if summary["StackStatus"] not in _GONE:
                    held.append(HeldStack(region, summary["StackName"], summary["StackStatus"]))
    return sorted(held, key=lambda s: (s.region, s.name))
