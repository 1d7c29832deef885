"""One cfnbuild at a time per stack on this machine: a lock file per (account view, region, stack).

Two cfnbuild processes on one machine that change the same stack (deploy, delete, recover, a
plan that makes a change set) would race each other's change sets; the second is refused, naming
the first (its pid, command and start), or with ``--wait`` waits for it. The lock is an OS file
lock (``filelock``), so a process that dies releases it; the lock files live in the user's cache
directory (``$XDG_CACHE_HOME/cfnbuild/locks``), so two checkouts of one project share them.
Across machines the stack's own state in CloudFormation tells (the engine reads it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from cfnbuild.deploy.aws import Target
from cfnbuild.deploy.engine import StackBusy


def lock_dir() -> Path:
    """Where the lock files are: ``$XDG_CACHE_HOME/cfnbuild/locks`` (default ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cfnbuild" / "locks"


def _key(target: Target) -> str:
    where = {
        "stack": target.stack_name,
        "region": target.region,
        "endpoint": target.endpoint_url or "",
        "profile": target.profile or os.environ.get("AWS_PROFILE", ""),
    }
    return hashlib.sha256(json.dumps(where, sort_keys=True).encode()).hexdigest()[:24]


@contextmanager
def stack_lock(
    target: Target, command: str, *, wait: bool, say: Callable[[str], None], directory: Path | None = None
) -> Iterator[None]:
    """Hold the stack's lock for ``command``; refuse (or with ``wait``, wait) while another process holds it.

    A lock directory that cannot be written is said once and the command goes on unlocked: the
    stack's state in CloudFormation still guards it.
    """
    folder = directory or lock_dir()
    path = folder / f"{_key(target)}.lock"
    info = path.with_suffix(".json")
    lock, locked = FileLock(path), True
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=0)
    except Timeout:
        holder = _holder(info)
        who = f"another cfnbuild ({holder})" if holder else "another cfnbuild process"
        if not wait:
            raise StackBusy(
                f"{who} is working on {target.stack_name} in {target.region} on this machine; let it finish, "
                "or run again with --wait to wait for it"
            ) from None
        say(f"waiting for {who} to finish with {target.stack_name}…")
        lock.acquire()
    except OSError as exc:
        say(f"warning: cannot lock {target.stack_name} in {path.parent} ({exc.strerror or exc}); going on unlocked")
        locked = False
    if not locked:
        yield  # outside the except clause: a failure of the command is not chained to the OSError
        return
    try:
        _write_holder(info, command)
        yield
    finally:
        info.unlink(missing_ok=True)
        lock.release()


def _holder(info: Path) -> str:
    try:
        data = json.loads(info.read_text(encoding="utf-8"))
        started = time.strftime("%H:%M:%S", time.localtime(float(data["started"])))
        return f"pid {int(data['pid'])}, '{data['command']}', since {started}"
    except (OSError, ValueError, KeyError, TypeError):
        return ""  # written a moment later, or by a process that died: the lock itself is what counts


def _write_holder(info: Path, command: str) -> None:
    with contextlib.suppress(OSError):  # only the refusal's wording needs it
        info.write_text(json.dumps({"pid": os.getpid(), "command": command, "started": time.time()}), encoding="utf-8")
