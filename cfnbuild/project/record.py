"""Build records: proof, checkable without rendering, that a written template is current.

``cfnbuild deploy`` ships only a template that is exactly what ``build`` would write now (what
was linted is what ships). Proving that by rendering the stack again costs every deploy the
import of the project's blueprints, troposphere, awacs, cfn-lint and pydantic, and the render
itself. A build record proves it instead, the way a build system's dependency files do:

- While the project's app is imported and its stacks render (inside :func:`recording`), an
  audit hook (:func:`sys.addaudithook`) notes every file the process opens and every directory
  it lists, except the import system's own listings of where modules may be.
- When templates are written (``build``), found current (``build --check``) or rendered and
  found current by a deploy, ``.cfnbuild-cache/build/<env>.json`` records each template with
  its SHA-256, the settings a deploy reads of the config, and every input of the render with
  its fingerprint: the environment's config file, ``pyproject.toml``, every file the process
  opened while recording, every Python module it loaded and every file under the app's package.
  Project files are fingerprinted by content (SHA-256); installed files (the interpreter's and
  its environment's) by size and modification time, as Python's own bytecode cache does, so
  installing another version of a package invalidates the record. A listed directory is
  fingerprinted by its sorted names, so a file added where the render looks is seen.
- :func:`verified` answers a deploy, and a build with nothing to do
  (:func:`cfnbuild.project.writer.unchanged`): the record when every input still has its
  fingerprint and every template its hash (same project directory, same interpreter and
  environment, same copy of cfnbuild); ``None`` otherwise, and the deploy renders and compares
  as without a record.

The same fingerprints (:func:`fingerprint_inputs`, :func:`inputs_hold`) let a deploy reuse an
artifact built from unchanged inputs (:mod:`cfnbuild.deploy.artifacts`).

What a record cannot see: a render that reads environment variables, the clock or the network.
cfnbuild's renders read none of them (``build --check`` in CI proves the same inputs give the
same bytes on another machine); a project's blueprints should not either.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import types
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnbuild.files import json_kind, read_cache_entry, shape_problem, write_cache_entry

FORMAT = 2  # 2: the interpreter and the cfnbuild that wrote the record are part of it
RECORD_DIR = Path(".cfnbuild-cache") / "build"
_SKIPPED_SUFFIXES = (".pyc",)  # bytecode caches are derived from a source that is fingerprinted
_SKIPPED_DIRECTORIES = frozenset({"__pycache__"})

Fingerprint = list[Any]


@dataclass
class Inputs:
    """What a process opened and listed while recording."""

    files: set[str] = field(default_factory=set)
    directories: set[str] = field(default_factory=set)


# Everything opened and listed while anything recorded in this process. One set for the process,
# not one per render: what a render read may be cached in memory and not read by the next one
# (cfn-lint's schemas, say), so each record names the union, a safe superset.
PROCESS_INPUTS = Inputs()
_depth = 0
_hooked = False


def _path(value: Any) -> str | None:
    if isinstance(value, str | bytes | os.PathLike):
        return os.path.abspath(os.fsdecode(value))
    return None  # a file descriptor: its path was recorded when it was opened


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """The audit hook: note opened files and listed directories while recording."""
    if not _depth or event not in ("open", "os.listdir", "os.scandir"):
        return
    try:
        path = _path(args[0]) if args else None
        if path is None:
            return
        if event != "open":
            caller = sys._getframe(1).f_code  # the Python code that listed it
            if not _looks_for_installed_code(caller):
                PROCESS_INPUTS.directories.add(path)
        elif not path.endswith(_SKIPPED_SUFFIXES):
            PROCESS_INPUTS.files.add(path)
    except Exception:  # noqa: S110  (an exception in an audit hook would fail the open itself)
        pass


def _looks_for_installed_code(code: types.CodeType) -> bool:
    """Whether a listing is the import system or ``importlib.metadata`` searching ``sys.path``.

    Such listings find modules and installed distributions, which are fingerprinted as files;
    counting the directories too would make every file added beside the project (the project
    root is on ``sys.path``) invalidate the record — networkx 3, which cfn-lint loads, reads its
    backends' entry points on import.
    """
    if code.co_name == "_fill_cache" and code.co_filename.startswith("<frozen importlib"):
        return True
    return code.co_name == "children" and "metadata" in code.co_filename and "importlib" in code.co_filename


@contextmanager
def recording() -> Iterator[Inputs]:
    """Add every file opened and directory listed in this process to :data:`PROCESS_INPUTS` for the block."""
    global _hooked, _depth  # noqa: PLW0603  (an audit hook cannot be removed, so it is added once per process)
    if not _hooked:
        sys.addaudithook(_audit)
        _hooked = True
    _depth += 1
    try:
        yield PROCESS_INPUTS
    finally:
        _depth -= 1


# ----------------------------------------------------------------------------- fingerprints
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file(path: str, content: bool) -> Fingerprint:
    """The content hash (``content``) or the size and mtime of a file; ``["absent"]`` if it is not a file."""
    try:
        if content:
            with open(path, "rb") as handle:
                return ["sha256", _sha256(handle.read())]
        status = os.stat(path)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return ["absent"]
    except OSError as exc:
        return ["unreadable", exc.errno]
    return ["stat", status.st_size, status.st_mtime_ns]


def _listing(path: str) -> Fingerprint:
    try:
        names = sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return ["absent"]
    except OSError as exc:
        return ["unreadable", exc.errno]
    return ["names", _sha256("\0".join(names).encode())]


def _tree(path: str) -> Fingerprint:
    """Every file under ``path`` (bytecode caches aside) by name and content."""
    digest = hashlib.sha256()
    if not os.path.isdir(path):
        return ["absent"]
    for directory, subdirectories, files in os.walk(path):
        subdirectories[:] = sorted(d for d in subdirectories if d not in _SKIPPED_DIRECTORIES)
        for name in sorted(files):
            if name.endswith(_SKIPPED_SUFFIXES):
                continue
            full = os.path.join(directory, name)
            digest.update(os.path.relpath(full, path).encode() + b"\0")
            with open(full, "rb") as handle:
                digest.update(hashlib.sha256(handle.read()).digest())
    return ["tree", digest.hexdigest()]


def _interpreter() -> list[str]:
    """The interpreter, its environment and the cfnbuild package this process runs.

    Part of every record: a record written by another environment or another copy of cfnbuild
    (whose files may all still be there, unchanged) does not hold for this one.
    """
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # cfnbuild/, holding project/record.py
    return [sys.version, os.path.abspath(sys.executable), os.path.abspath(sys.prefix), package]


def _module_files() -> set[str]:
    files = set()
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if isinstance(name, str) and not name.endswith(_SKIPPED_SUFFIXES):
            files.add(os.path.abspath(name))
    return files


class _Root:
    """How paths are keyed and fingerprinted.

    Keys are relative inside the project root (a record does not hold for a moved project),
    absolute outside. Project files are fingerprinted by content; installed files (the
    interpreter's and its environment's, even in a virtual environment inside the project) by
    size and mtime.
    """

    def __init__(self, root: Path) -> None:
        self.root = os.path.abspath(root)
        self.prefix = self.root.rstrip(os.sep) + os.sep
        prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
        self.installed = tuple(os.path.abspath(p).rstrip(os.sep) + os.sep for p in prefixes)

    def key(self, path: str) -> str:
        return path[len(self.prefix) :] if path.startswith(self.prefix) else path

    def path(self, key: str) -> str:
        return key if os.path.isabs(key) else self.prefix + key

    def by_content(self, path: str) -> bool:
        return path.startswith(self.prefix) and not path.startswith(self.installed)

    def fingerprint(self, path: str) -> Fingerprint:
        return _file(path, self.by_content(path))


def _still(path: str, expected: Any) -> bool:
    """Whether the file at ``path`` still has the ``expected`` fingerprint, taken the same way."""
    kind = expected[0] if isinstance(expected, list) and expected else None
    found = _file(path, content=kind == "sha256")
    if kind in ("sha256", "stat"):
        return bool(found == expected)
    return bool(found[0] == kind)  # absent, or unreadable, as it was


# ----------------------------------------------------------------------------- inputs, generically
def fingerprint_inputs(root: Path, *, files: Iterable[Path] = (), trees: Iterable[Path] = ()) -> dict[str, Any]:
    """Fingerprints of every input this process recorded, every module it loaded, ``files`` and ``trees``.

    ``root`` is the project: files inside it are keyed relative to it and fingerprinted by content.
    """
    paths = _Root(root)
    everything = set(PROCESS_INPUTS.files) | _module_files() | {os.path.abspath(f) for f in files}
    return {
        "format": FORMAT,
        "root": paths.root,
        "python": _interpreter(),
        "files": {paths.key(p): paths.fingerprint(p) for p in sorted(everything)},
        "directories": {paths.key(d): _listing(d) for d in sorted(PROCESS_INPUTS.directories)},
        "trees": {paths.key(os.path.abspath(t)): _tree(os.path.abspath(t)) for t in trees},
    }


def inputs_hold(data: Mapping[str, Any], root: Path) -> bool:
    """Whether every input :func:`fingerprint_inputs` wrote into ``data`` still has its fingerprint."""
    paths = _Root(root)
    try:
        if (data.get("format"), data.get("root"), data.get("python")) != (FORMAT, paths.root, _interpreter()):
            return False
        if not all(_still(paths.path(key), expected) for key, expected in data["files"].items()):
            return False
        if any(_listing(paths.path(key)) != expected for key, expected in data["directories"].items()):
            return False
        return all(_tree(paths.path(key)) == expected for key, expected in data["trees"].items())
    except (KeyError, TypeError, AttributeError):
        return False  # not written by this version


_INPUTS_SHAPE: dict[str, type] = {"root": str, "python": list, "files": dict, "directories": dict, "trees": dict}


def inputs_problem(data: Any) -> str | None:
    """What keeps ``data`` from being what :func:`fingerprint_inputs` writes; ``None`` when nothing does.

    Data of another ``format`` has no problem: another version of cfnbuild wrote it, and
    :func:`inputs_hold` finds it does not hold (a plain miss, not a damaged file).
    """
    if not isinstance(data, dict):
        return f"{json_kind(data)}, not an object"
    if "format" not in data:
        return "no 'format'"
    if data["format"] != FORMAT:
        return None
    return shape_problem(data, _INPUTS_SHAPE)


def file_sha256(path: Path) -> str | None:
    """The SHA-256 of the file at ``path``; ``None`` if there is none."""
    found = _file(str(path), content=True)
    return str(found[1]) if found[0] == "sha256" else None


# ----------------------------------------------------------------------------- build records
@dataclass(frozen=True)
class Built:
    """One template a record vouches for."""

    environment: str
    stack: str
    path: Path
    text: str


def record_path(root: Path, environment: str) -> Path:
    """Where the build record of ``environment`` is kept."""
    return root / RECORD_DIR / f"{environment}.json"


def write_records(
    root: Path,
    built: Sequence[Built],
    *,
    config_files: Mapping[str, Path],
    settings: Mapping[str, Mapping[str, Any]],
    inputs: Mapping[str, Any],
) -> list[Path]:
    """Record each environment's templates in ``built`` with every input of their render.

    ``inputs`` is what :func:`fingerprint_inputs` answered in the process that rendered (it
    imports the app and renders inside :func:`recording`; a forked child, see
    :func:`cfnbuild.build.forked.render_beside`, or this one); ``config_files`` maps each
    environment to its config file and ``settings`` to what a deploy reads of it (carried so
    that a deploy need not load the config model).
    """
    paths = _Root(root)
    written = []
    for environment in sorted({item.environment for item in built}):
        config = os.path.abspath(config_files[environment])  # this environment's only: editing another's
        record = {  # config leaves this record holding
            **inputs,
            "files": {**inputs["files"], paths.key(config): paths.fingerprint(config)},
            "environment": environment,
            "settings": settings[environment],
            "stacks": [  # in the app's order
                {
                    "stack": item.stack,
                    "template": paths.key(os.path.abspath(item.path)),
                    "sha256": _sha256(item.text.encode()),
                }
                for item in built
                if item.environment == environment
            ],
        }
        target = record_path(root, environment)
        if write_cache_entry(target, json.dumps(record, sort_keys=True, indent=0)):
            written.append(target)
    return written


@dataclass(frozen=True)
class Record:
    """A build record that holds: each stack's template path and the SHA-256 it must have."""

    environment: str
    templates: dict[str, tuple[Path, str]]
    settings: Mapping[str, Any]

    @property
    def stacks(self) -> list[str]:
        """The stacks the app built for this environment, in the app's order."""
        return list(self.templates)

    def vouches_for(self, stack: str, text: str) -> bool:
        """Whether ``text`` is the recorded template of ``stack``."""
        entry = self.templates.get(stack)
        return entry is not None and entry[1] == _sha256(text.encode())


_STACK_SHAPE: dict[str, type] = {"stack": str, "template": str, "sha256": str}


def _record_problem(data: Any) -> str | None:
    """What keeps ``data`` from being a build record this version wrote; ``None`` when nothing does."""
    problem = inputs_problem(data)
    if problem is not None or data["format"] != FORMAT:
        return problem
    problem = shape_problem(data, {"environment": str, "settings": dict, "stacks": list})
    if problem is not None:
        return problem
    for index, entry in enumerate(data["stacks"]):
        problem = (
            shape_problem(entry, _STACK_SHAPE) if isinstance(entry, dict) else f"{json_kind(entry)}, not an object"
        )
        if problem is not None:
            return f"stacks item {index}: {problem}"
    return None


def verified(root: Path, environment: str) -> Record | None:
    """The record of ``environment`` if it still holds, else ``None`` (then render and compare).

    A record that cannot be read or is not one cfnbuild wrote is warned about once and is no
    record: the deploy renders and compares, and writes it again when the templates are current.
    """
    path = record_path(root, environment)
    data = read_cache_entry(path, _record_problem)
    if data is None:
        return None
    if data.get("environment") != environment or not inputs_hold(data, root):
        return None
    paths = _Root(root)
    templates = {entry["stack"]: (Path(paths.path(entry["template"])), entry["sha256"]) for entry in data["stacks"]}
    if any(file_sha256(path) != digest for path, digest in templates.values()):
        return None
    return Record(environment, templates, data["settings"])
