"""The files cfnbuild writes and reads back: outputs, templates and cache entries.

- :func:`write_atomic` writes through a temporary file and a rename, so a reader sees the old
  file or the new one, never a part; a write that fails is one line (:class:`WriteFailed`)
  naming the path, the operating system's reason and the fix, with the old file intact.
- :func:`read_json` reads a template ``build`` wrote; a missing, unreadable or damaged one is
  one line (:class:`ReadFailed`) naming the file, and where it is damaged, and saying to build.
- A cache entry (:func:`read_cache_entry`, :func:`write_cache_entry`) is an optimisation: one
  that cannot be read or is not what cfnbuild writes is a miss, and a cache that cannot be
  written is done without; each is said once, as a ``warning:`` line on stderr.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cfnbuild.errors import ReadFailed, WriteFailed

# What has been warned about in this process: a warning repeated for every entry or every
# stack of a build would bury the one line that matters.
_warned: set[str] = set()
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_NOT_ALLOWED = (errno.EACCES, errno.EPERM, errno.EROFS)


def warn(text: str, *, key: str | None = None) -> None:
    """Print ``warning: <text>`` on stderr, once per process for each ``key`` (default: the text).

    Plain ``sys.stderr``, not a console of its own: the CLI's status spinner redirects
    ``sys.stderr`` while it runs, so the line is printed above the spinner, not through it.
    """
    once = text if key is None else key
    if once in _warned:
        return
    _warned.add(once)
    print(f"warning: {text}", file=sys.stderr, flush=True)


def shown(path: Path) -> str:
    """``path`` as a message names it: relative to the current directory when inside it, else absolute."""
    try:
        cwd = Path.cwd()
    except OSError:  # the current directory is gone
        return str(path)
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(cwd))
    except ValueError:
        return str(absolute)


def os_reason(exc: OSError) -> str:
    """The operating system's reason for ``exc`` without the path (the message names it): ``[Errno 28] No ...``."""
    if exc.errno:
        return f"[Errno {exc.errno}] {os.strerror(exc.errno)}"
    return str(exc) or type(exc).__name__


def json_kind(value: Any) -> str:
    """What JSON calls ``value``'s type, with its article, for messages: "an object", "a string"."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"


_KIND_NAMES: dict[type, str] = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    bool: "a boolean",
}


def shape_problem(data: Mapping[str, Any], expected: Mapping[str, type]) -> str | None:
    """What keeps the JSON object ``data`` from having each key of ``expected`` with a value of its type.

    ``None`` when it has them all: ``"no 'sha256'"``, ``"'files' is an array, not an object"``.
    """
    for key, kind in expected.items():
        if key not in data:
            return f"no {key!r}"
        value = data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return f"{key!r} is {json_kind(value)}, not {_KIND_NAMES.get(kind, kind.__name__)}"
    return None


def _json_reason(exc: json.JSONDecodeError) -> str:
    return f"{exc.msg}: line {exc.lineno} column {exc.colno}"


# ----------------------------------------------------------------------------- writing
def _blocking_file(directory: Path) -> Path | None:
    """The nearest of ``directory`` and its parents that exists and is not a directory, if any."""
    for candidate in (directory, *directory.parents):
        try:
            mode = candidate.stat().st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError:
            return None  # cannot tell; the OS reason is the best there is
        return None if stat.S_ISDIR(mode) else candidate
    return None


def _write_failed(path: Path, exc: OSError, *, existed: bool) -> WriteFailed:
    """The one-line error for a failed write of ``path``: the path, the OS reason and the fix."""
    reason = os_reason(exc)
    blocker = _blocking_file(path.parent)
    if blocker is not None:
        reason = f"{shown(blocker)} is a file, not a directory"
        fix = "move it away and run again"
    elif os.path.isdir(path):  # os.path's, which says False where pathlib's raises (no permission)
        reason = f"{shown(path)} is a directory"
        fix = "move it away and run again"
    elif exc.errno in _NO_SPACE:
        fix = "free some space and run again"
    elif exc.errno in _NOT_ALLOWED:
        fix = f"make {shown(path.parent)} writable and run again"
    else:
        fix = "fix that and run again"
    kept = "the old file is unchanged" if existed else "nothing was written"
    return WriteFailed(f"cannot write {shown(path)}: {reason}; {fix} ({kept})", path=path, reason=reason)


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd``: ``os.write`` may write fewer than it was given."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_atomic(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` through a temporary file and a rename; return whether it changed.

    Raises :class:`WriteFailed` when the directory cannot be made, the temporary file cannot be
    created or written (a read-only directory, a full disk) or cannot replace ``path``; the old
    file is then as it was, and no temporary file is left.
    """
    data = text.encode("utf-8")
    try:
        existed = path.is_file()
        if existed and path.read_bytes() == data:
            return False
    except OSError:
        existed = True  # there, but unreadable: write it anyway, and say it is kept if that fails
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _write_failed(path, exc, existed=existed) from None
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)  # a full disk or quota may only show here, before the rename makes it final
        finally:
            os.close(fd)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _write_failed(path, exc, existed=existed) from None
        raise
    return True


# ----------------------------------------------------------------------------- templates
def read_json_text(
    path: Path, *, root: Path | None = None, environment: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The text of the JSON object in ``path`` (a template ``build`` wrote) and the object.

    Raises :class:`ReadFailed` naming the file (relative to ``root`` when it is inside) when it
    does not exist, cannot be read, is not valid JSON (with the line and column) or is not a
    JSON object; each says to build (``environment``: the one ``cfnbuild build --env`` names).
    """
    build = f"cfnbuild build --env {environment}" if environment else "cfnbuild build"
    name = _relative(path, root) if root is not None else shown(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        raise ReadFailed(f"{name} does not exist; run '{build}' first") from None
    except OSError as exc:
        raise ReadFailed(f"cannot read {name}: {os_reason(exc)}; run '{build}' to write it again") from None
    except UnicodeDecodeError as exc:
        raise ReadFailed(f"{name}: not UTF-8 text ({exc.reason}); run '{build}' to write it again") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReadFailed(
            f"{name}: not valid JSON at line {exc.lineno} column {exc.colno} ({exc.msg}); "
            f"run '{build}' to write it again"
        ) from None
    if not isinstance(document, dict):
        raise ReadFailed(f"{name}: {json_kind(document)}, not a JSON object; run '{build}' to write it again")
    return text, document


def read_json(path: Path, *, root: Path | None = None, environment: str | None = None) -> dict[str, Any]:
    """The JSON object in ``path``: :func:`read_json_text` without the text."""
    return read_json_text(path, root=root, environment=environment)[1]


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------- cache entries
def invalid_cache_entry(path: Path, reason: str) -> None:
    """Warn (once for ``path``) that the cache entry there is not one cfnbuild wrote; the caller recomputes it."""
    warn(f"{shown(path)} is not a valid cache entry ({reason}); recomputing it", key=f"read {path}")


def read_cache_entry(path: Path, problem: Callable[[Any], str | None] | None = None) -> Any:
    """The JSON in the cache entry at ``path``; ``None`` when there is none.

    An entry that cannot be read, is not JSON, or of which ``problem`` (the caller's check of
    its shape) says what is wrong, is a miss too (``None``), warned about once. Either way the
    caller recomputes and overwrites the entry with :func:`write_cache_entry`.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        warn(f"{shown(path)} cannot be read ({os_reason(exc)}); recomputing it", key=f"read {path}")
        return None
    except UnicodeDecodeError as exc:
        invalid_cache_entry(path, f"not UTF-8: {exc.reason}")
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        invalid_cache_entry(path, _json_reason(exc))
        return None
    # null is not silently a miss (None is what "no entry" returns); then the caller's check.
    wrong = "null" if data is None else problem(data) if problem is not None else None
    if wrong is not None:
        invalid_cache_entry(path, wrong)
        return None
    return data


def write_cache_entry(path: Path, text: str) -> bool:
    """:func:`write_atomic` for a cache entry; whether the entry holds ``text`` now (written, or already).

    A write that fails is warned about once per cache directory and returns ``False``: a cache
    only saves time, so the command goes on without it.
    """
    try:
        write_atomic(path, text)
    except WriteFailed as exc:
        warn(
            f"cannot write to the cache {shown(path.parent)}/ ({exc.reason}); carrying on without caching",
            key=f"write {path.parent}",
        )
        return False
    return True
