"""Build in as few processes as it needs: the render in a forked child, cfn-lint here and in forked workers.

A build holds two large things: what renders the stacks (the app, troposphere, awacs, pydantic)
and cfn-lint with its rules and schemas (about 100 MiB, most of it in every process that lints).
Where the platform forks (Linux), ``build`` keeps them apart and shares what it can:

- :func:`render_beside` forks a child that renders while this process imports cfn-lint; the
  child sends back what it rendered (and the inputs its build record names) and exits, so no
  process holds both.
- :class:`ForkPool` lints in this process and in workers forked from it once cfn-lint is
  loaded, so the workers share its memory (frozen out of the garbage collector, see
  :func:`gc.freeze`) instead of loading their own. The workers take the longest templates
  first, this process the shortest; a worker that raises, crashes or is killed is one line
  naming its template, and the jobs it did not take are linted here.

Anything else (another platform, ``CFNBUILD_FORK=0``, a child that fails) takes the ordinary
path: rendering here, and the pool of :mod:`cfnbuild.build.gates`.
"""

from __future__ import annotations

import contextlib
import gc
import mmap
import os
import pickle
import signal
import struct
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from multiprocessing.connection import Connection, Pipe, wait
from typing import Any, TypeVar

from cfnbuild.build.lint import Finding

T = TypeVar("T")
FORK_VARIABLE = "CFNBUILD_FORK"
_GRACE = 5.0  # seconds a stopped worker has to exit before it is killed


def can_fork() -> bool:
    """Whether build may fork here: on Linux, unless ``CFNBUILD_FORK=0`` says not to."""
    wanted = os.environ.get(FORK_VARIABLE, "1").strip().lower() not in {"0", "false", "no", "off"}
    return wanted and sys.platform == "linux" and hasattr(os, "fork")


def name_process(name: str) -> None:
    """Show ``name`` for this process in ps and top (Linux's /proc/self/comm; elsewhere nothing)."""
    try:
        with open("/proc/self/comm", "w", encoding="ascii") as handle:
            handle.write(name[:15])
    except OSError:
        pass  # no /proc, or not writable here: the name is a courtesy


def _exit_child(code: int, *, flush: bool) -> None:
    """End a forked child at once: no atexit handler or buffered output of the parent's runs twice.

    ``flush`` writes out what the child itself printed; only a child forked while this process
    had one thread may take the streams' locks (another thread may have held them at the fork).
    """
    if flush:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    os._exit(code)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def render_beside(produce: Callable[[], T], meanwhile: Callable[[], None]) -> T | None:
    """``produce()`` in a forked child while ``meanwhile()`` runs here; what it produced, or ``None``.

    ``None`` when the child could not fork, raised, was killed or sent nothing that unpickles:
    the caller produces it here instead, which gives the error, if any, with its own message.
    What the child prints goes where this process's output goes.
    """
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:  # out of processes or memory: do it here
        os.close(read_end)
        os.close(write_end)
        meanwhile()
        return None
    if pid == 0:  # the child
        code = 1
        try:
            os.close(read_end)
            name_process("cfnbuild-render")
            data = pickle.dumps(produce(), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write_end, "wb") as handle:
                handle.write(data)
            code = 0
        except BaseException:  # noqa: S110  (the parent renders again and reports it)
            pass
        finally:
            _exit_child(code, flush=True)
    os.close(write_end)
    try:
        meanwhile()
        data = _read_all(read_end)
    except BaseException:
        _stop(pid)
        raise
    finally:
        os.close(read_end)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not data:
        return None
    try:
        result: T = pickle.loads(data)  # noqa: S301  (our own child's pickle, through a pipe it shares with nobody)
    except Exception:
        return None
    return result


def _stop(pid: int) -> None:
    """Kill a child and reap it."""
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def worker_ended(code: int | None) -> str:
    """How a worker that did not answer ended, from its exit code (negative: the signal that killed it)."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"its worker process was killed by {name}"
    return f"its worker process exited with code {code} before answering"


def _death(status: int) -> str:
    return worker_ended(os.waitstatus_to_exitcode(status))


class _Queue:
    """Job indices shared by forked processes: workers take from the front, this process from the back.

    Two counters in shared memory, guarded by a one-token pipe (taking the token is the lock).
    """

    def __init__(self, count: int) -> None:
        self.memory = mmap.mmap(-1, 8)
        struct.pack_into("<ii", self.memory, 0, 0, count - 1)
        self.lock_read, self.lock_write = os.pipe()
        os.write(self.lock_write, b"t")

    def take(self, *, front: bool) -> int | None:
        os.read(self.lock_read, 1)
        try:
            head, tail = (int(n) for n in struct.unpack_from("<ii", self.memory, 0))
            if head > tail:
                return None
            if front:
                struct.pack_into("<i", self.memory, 0, head + 1)
                return head
            struct.pack_into("<i", self.memory, 4, tail - 1)
            return tail
        finally:
            os.write(self.lock_write, b"t")

    def close(self) -> None:
        os.close(self.lock_read)
        os.close(self.lock_write)
        self.memory.close()


class ForkPool:
    """Lint ``jobs`` (longest first) in this process and ``size - 1`` workers forked from it."""

    def __init__(self, size: int, work: Callable[[Any], list[Finding]]) -> None:
        self.size = max(1, size)
        self.work = work
        self.started = 0

    def run(self, jobs: Sequence[Any]) -> tuple[dict[int, list[Finding]], dict[int, str]]:
        """Every job's findings by index, and what happened to each job that did not finish."""
        results: dict[int, list[Finding]] = {}
        failures: dict[int, str] = {}
        if not jobs:
            return results, failures
        queue = _Queue(len(jobs))
        workers: list[tuple[int, Connection]] = []
        frozen = gc.get_freeze_count()
        gc.freeze()  # what is loaded now is shared with the workers; a collection there must not copy it
        try:
            for _ in range(min(self.size, len(jobs)) - 1):
                workers.append(self._fork(queue, jobs))
            # Until each worker has taken its first job (or ended), the longest are theirs.
            pending: dict[Connection, list[int]] = {conn: [] for _, conn in workers}
            for conn in list(pending):
                self._receive(conn, pending, jobs, results, failures, first=True)
            while (index := queue.take(front=False)) is not None:
                self._lint_here(index, jobs, results, failures)
            for pid, conn in workers:
                while self._receive(conn, pending, jobs, results, failures):
                    pass
                _, status = os.waitpid(pid, 0)
                for index in pending[conn]:  # taken, never answered
                    failures[index] = f"cfn-lint of {jobs[index].file} did not finish: {_death(status)}"
                conn.close()
            workers.clear()
        finally:
            for pid, conn in workers:  # interrupted: no worker outlives this
                _stop(pid)
                conn.close()
            queue.close()
            if not frozen:  # as it was: nothing was frozen before (whatever was, stays so)
                gc.unfreeze()
        return results, failures

    def _fork(self, queue: _Queue, jobs: Sequence[Any]) -> tuple[int, Connection]:
        here, there = Pipe(duplex=False)
        pid = os.fork()
        if pid == 0:  # a worker: lint from the front of the queue until it is empty
            code = 0
            try:
                here.close()
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops us
                name_process("cfnbuild-lint")
                while (index := queue.take(front=True)) is not None:
                    there.send(("taken", index, None))
                    try:
                        reply: tuple[str, int, Any] = ("ok", index, [asdict(f) for f in self.work(jobs[index])])
                    except Exception as exc:  # a bug in cfn-lint on this template: the parent names it
                        reply = ("error", index, f"{type(exc).__name__}: {exc}")
                    there.send(reply)
                there.send(("done", -1, None))
            except BaseException:
                code = 1
            finally:
                _exit_child(code, flush=False)
        there.close()
        self.started += 1
        return pid, here

    def _lint_here(
        self, index: int, jobs: Sequence[Any], results: dict[int, list[Finding]], failures: dict[int, str]
    ) -> None:
        try:
            results[index] = self.work(jobs[index])
        except Exception as exc:  # as in a worker: one line, and the other jobs go on
            failures[index] = f"cfn-lint of {jobs[index].file} failed: {type(exc).__name__}: {exc}"

    @staticmethod
    def _receive(
        conn: Connection,
        pending: dict[Connection, list[int]],
        jobs: Sequence[Any],
        results: dict[int, list[Finding]],
        failures: dict[int, str],
        *,
        first: bool = False,
    ) -> bool:
        """Read one message of a worker; ``False`` once it has no more to say (done, or gone)."""
        if first:
            wait([conn])
        try:
            kind, index, payload = conn.recv()
            kind, index = str(kind), int(index)
        except (EOFError, OSError):
            return False
        if kind == "taken":
            pending[conn].append(index)
        elif kind in ("ok", "error"):
            pending[conn].remove(index)
            if kind == "ok":
                results[index] = [Finding(**item) for item in payload]
            else:
                failures[index] = f"cfn-lint of {jobs[index].file} failed: {payload}"
        return kind != "done"
