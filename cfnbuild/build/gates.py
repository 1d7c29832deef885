"""The gates side by side: cfn-lint over every template in a bounded pool of processes, checkov beside it.

cfn-lint is CPU-bound Python, so templates are linted in worker processes, as many at once as
the CPUs this process may run on (:func:`cpu_budget`) and never more than there are templates
to lint. Each worker lints one template after another (the longest first), reusing the rules it
loaded; the workers are forked from a server process (multiprocessing's ``forkserver``) that
imported cfn-lint and loaded its rules once, which :func:`warm_up` starts ahead of time so that
it loads while the caller renders. checkov, its own process already, takes one of the CPUs while it runs.

Whatever order the workers finish in, findings come back in the order of the jobs (each job's
sorted). A worker that raises, crashes or is killed is one line naming the template and what
happened; its job has no findings and is not cached, the other jobs go on in a new worker. On
any exception in the caller (Ctrl-C among them) every worker and checkov is stopped before it
propagates; workers write no file (the caller writes the cache entries, atomically).

As with any multiprocessing server start, each worker imports the caller's main module as
``__mp_main__`` when it is a script file: a script that calls :func:`run_gates` keeps its work
under ``if __name__ == "__main__":`` (``python -m cfnbuild``, the ``cfnbuild`` command and
``python -c`` need nothing).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from cfnbuild.build.lint import Finding, LintCache, cfn_lint, checkov_command, checkov_findings

# What the forkserver imports before it forks any worker: cfn-lint with its rules loaded.
PRELOAD = "cfnbuild.build.lint_preload"
_STOP_GRACE = 5.0  # seconds a stopped worker has to exit before it is killed


def cpu_budget() -> int:
    """How many CPUs this process may run on (its affinity mask, not the machine's count)."""
    counter = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if counter is not None:
        return max(1, counter() or 1)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity on this platform
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class LintJob:
    """One template to lint: its file (as shown), its text and the regions to lint it for."""

    file: str
    text: str
    regions: tuple[str, ...]


def lint_job(job: LintJob) -> list[Finding]:
    """What a worker does with one job: :func:`cfnbuild.build.lint.cfn_lint`."""
    return cfn_lint(job.text, job.regions, file=job.file)


@dataclass
class GateRun:
    """What the gates found: findings in job order, one line per job that did not finish, and counts."""

    findings: list[Finding] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    cached: int = 0
    linted: int = 0
    workers: int = 0


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def warm_up() -> None:
    """Start the server that workers are forked from, so that it loads cfn-lint while the caller works.

    Idempotent; the server lives until this process exits.
    """
    context = _context()
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload([PRELOAD])
        from multiprocessing import forkserver  # noqa: PLC0415  (only where it exists)

        forkserver.ensure_running()


def _serve(connection: Connection, work: Callable[[LintJob], list[Finding]]) -> None:
    """A worker's loop: lint each job it is sent until it is sent ``None``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops us
    from cfnbuild.build.forked import name_process  # noqa: PLC0415  (in the worker)

    name_process("cfnbuild-lint")
    while True:
        try:
            job = connection.recv()
        except (EOFError, OSError):
            return  # the parent has gone (or closed our pipe while it stopped): nothing more to do
        if job is None:
            return
        try:
            reply: tuple[str, Any] = ("ok", [asdict(f) for f in work(job)])
        except Exception as exc:  # a bug in cfn-lint on this template: the parent names it
            reply = ("error", f"{type(exc).__name__}: {exc}")
        connection.send(reply)


@dataclass
class _Worker:
    process: Any
    connection: Connection
    job: int | None = None


def _death(process: Any) -> str:
    from cfnbuild.build.forked import worker_ended  # noqa: PLC0415  (as in _pool)

    process.join(_STOP_GRACE)
    return worker_ended(process.exitcode)


class LintPool:
    """At most ``size`` worker processes linting :class:`LintJob` s, each with ``work``."""

    def __init__(self, size: int, work: Callable[[LintJob], list[Finding]] = lint_job) -> None:
        self.size = max(1, size)
        self.work = work
        self.started = 0
        self._context = _context()
        self._workers: list[_Worker] = []

    def _start(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(child, self.work), daemon=True, name="cfnbuild-lint")
        process.start()
        child.close()
        self.started += 1
        worker = _Worker(process, parent)
        self._workers.append(worker)
        return worker

    def run(self, jobs: Sequence[LintJob]) -> tuple[dict[int, list[Finding]], dict[int, str]]:
        """Lint every job; the findings by job index, and what happened to each job that did not finish."""
        results: dict[int, list[Finding]] = {}
        failures: dict[int, str] = {}
        queue = deque(range(len(jobs)))
        try:
            for _ in range(min(self.size, len(jobs))):
                self._give(self._start(), queue, jobs)
            while busy := [w for w in self._workers if w.job is not None]:
                ready = set(wait([w.connection for w in busy] + [w.process.sentinel for w in busy]))
                for worker in busy:
                    if worker.connection in ready or worker.process.sentinel in ready:
                        self._collect(worker, jobs, results, failures)
                        if worker.job is None and worker.process.is_alive():
                            self._give(worker, queue, jobs)
                        elif worker.job is None and queue:
                            self._give(self._start(), queue, jobs)  # in place of the one that died
        finally:
            self._stop()
        return results, failures

    def _give(self, worker: _Worker, queue: deque[int], jobs: Sequence[LintJob]) -> None:
        if queue:
            worker.job = queue.popleft()
            worker.connection.send(jobs[worker.job])

    def _collect(
        self, worker: _Worker, jobs: Sequence[LintJob], results: dict[int, list[Finding]], failures: dict[int, str]
    ) -> None:
        index = worker.job
        assert index is not None  # noqa: S101  (only busy workers are collected)
        worker.job = None
        try:
            kind, payload = worker.connection.recv()
        except (EOFError, OSError):  # it died without answering
            failures[index] = f"cfn-lint of {jobs[index].file} did not finish: {_death(worker.process)}"
            self._workers.remove(worker)
            worker.connection.close()
            return
        if kind == "ok":
            results[index] = [Finding(**item) for item in payload]
        else:
            failures[index] = f"cfn-lint of {jobs[index].file} failed: {payload}"

    def _stop(self) -> None:
        """Ask idle workers to exit, stop busy ones, and wait for all of them."""
        for worker in self._workers:
            try:
                if worker.job is None:
                    worker.connection.send(None)
                else:
                    worker.process.terminate()
            except OSError:
                worker.process.terminate()
        for worker in self._workers:
            worker.process.join(_STOP_GRACE)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.connection.close()
        self._workers.clear()


def _pending(
    jobs: Sequence[LintJob], cache: LintCache | None, run: GateRun
) -> tuple[dict[int, list[Finding]], list[int]]:
    cached: dict[int, list[Finding]] = {}
    pending = []
    for index, job in enumerate(jobs):
        found = cache.lookup(job.text, job.regions, file=job.file) if cache is not None else None
        if found is None:
            pending.append(index)
        else:
            cached[index] = found
    run.cached = len(cached)
    return cached, pending


def run_gates(
    jobs: Sequence[LintJob],
    *,
    cache: LintCache | None = None,
    checkov_files: Iterable[Path] = (),
    root: Path | None = None,
    size: int | None = None,
    work: Callable[[LintJob], list[Finding]] = lint_job,
    here: bool = False,
) -> GateRun:
    """cfn-lint over ``jobs`` (from ``cache`` where it can) in a pool, checkov over ``checkov_files`` beside it.

    ``size`` bounds the processes that lint (default: :func:`cpu_budget`, less one CPU while
    checkov runs). ``here``: this process has cfn-lint loaded (``build`` loaded it while its
    render ran in a child), so it lints too, with workers forked from it
    (:class:`cfnbuild.build.forked.ForkPool`) where the platform forks.
    """
    run = GateRun()
    files = [str(p) for p in checkov_files]
    cached, pending = _pending(jobs, cache, run)
    budget = size or max(1, cpu_budget() - (1 if files else 0))
    checkov = _Checkov(files, root or Path.cwd()) if files else None
    try:
        results: dict[int, list[Finding]] = {}
        failures: dict[int, str] = {}
        # The longest templates first (cfn-lint's time grows with a template's size), so that no
        # worker is left with a long one while the others are idle.
        order = sorted(pending, key=lambda i: -len(jobs[i].text))
        if order:
            pool = _pool(min(budget, len(order)), work, here=here)
            results, failures = pool.run([jobs[i] for i in order])
            run.workers = pool.started
        for position, index in sorted(enumerate(order), key=lambda item: item[1]):
            if position in results:
                cached[index] = results[position]
                if cache is not None:
                    cache.store(jobs[index].text, jobs[index].regions, results[position])
            else:
                run.failures.append(failures[position])
        run.linted = len(results)
        run.findings = [finding for index in sorted(cached) for finding in cached[index]]
        if checkov is not None:
            run.findings += checkov.finish()
    finally:
        if checkov is not None:
            checkov.stop()
    return run


def _pool(size: int, work: Callable[[LintJob], list[Finding]], *, here: bool) -> Any:
    from cfnbuild.build.forked import ForkPool, can_fork  # noqa: PLC0415  (only where it lints)

    if here and can_fork():
        return ForkPool(size, work)
    warm_up()  # workers forked from a server with cfn-lint loaded (started already if the caller did)
    return LintPool(size, work)


class _Checkov:
    """checkov running in the background over ``files``; its output goes to a temporary file, not a pipe."""

    def __init__(self, files: list[str], root: Path) -> None:
        import tempfile  # noqa: PLC0415  (only lint runs checkov)

        command, env = checkov_command(files)
        self.root = root
        self.stdout = tempfile.TemporaryFile()  # noqa: SIM115  (closed in stop)
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(command, stdout=self.stdout, stderr=self.stderr, env=env, cwd=root)  # noqa: S603  (our own interpreter running checkov)

    def finish(self) -> list[Finding]:
        code = self.process.wait()
        self.stdout.seek(0)
        self.stderr.seek(0)
        stdout = self.stdout.read().decode("utf-8", "replace")
        return checkov_findings(stdout, self.stderr.read().decode("utf-8", "replace"), code, self.root)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(_STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stdout.close()
        self.stderr.close()
