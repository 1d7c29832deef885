"""A project with a local session, driven through separate ``python -m cfnbuild`` processes.

The fixture stops the session in ``finally`` and then kills, by pid, every server process a test
started (each pid read from the session record after every command), so no test leaves a
process behind, whatever it asserted.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cfnbuild.local.session import record_path, stop
from tests.cfnbuild.deploy.test_engine import _mini_project

ROOT = Path(__file__).resolve().parents[3]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def wait_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@dataclass
class LocalProject:
    """A project directory and the CLI run on it as a user would, one process per command."""

    root: Path
    cache: Path
    pids: set[int] = field(default_factory=set)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_EC2_METADATA_DISABLED="true",
            XDG_CACHE_HOME=str(self.cache),  # the stack locks, away from the user's
            COLUMNS="200",
            PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        )
        return env

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """``python -m cfnbuild --project ROOT ARGS`` in a process of its own."""
        command = [sys.executable, "-m", "cfnbuild", "--project", str(self.root), *args]
        try:
            return subprocess.run(
                command,
                capture_output=True,
                text=True,
                check=False,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                env=env or self.env(),
                timeout=180,
            )
        finally:
            self.note_pid()

    def note_pid(self) -> None:
        """Remember the pid the session record names, to kill it at the end if it still runs."""
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            self.pids.add(int(json.loads(self.record.read_text())["pid"]))

    @property
    def record(self) -> Path:
        return record_path(self.root)

    def session(self) -> dict:
        return json.loads(self.record.read_text())


@contextlib.contextmanager
def local_project(root: Path, cache: Path) -> Iterator[LocalProject]:
    project = LocalProject(root, cache)
    try:
        yield project
    finally:
        try:
            stop(root)
        finally:
            for pid in project.pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                wait_gone(pid)


@pytest.fixture
def mini_local(tmp_path: Path) -> Iterator[LocalProject]:
    """The small test project (a topic and a stateful queue), built, with nothing running yet."""
    (tmp_path / "project").mkdir()
    root = _mini_project(tmp_path / "project", "local")
    with local_project(root, tmp_path / "cache") as project:
        yield project
