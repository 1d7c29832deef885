"""A new project, as ``cfnbuild init DIR`` writes it: the skeleton in ``files/``, rendered with its name.

Each ``files/<path>.tmpl`` becomes ``DIR/<path>`` (``dot-<name>`` becomes ``.<name>``), with
``{{project}}`` replaced by the project's name and ``{{cfnbuild_requirement}}`` by a requirement on the
cfnbuild that writes it (that version or later). :func:`write_project` writes every file or none: the project is made
in a new directory beside ``DIR`` and renamed into place when it is whole.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from importlib import metadata, resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath

from cfnbuild.errors import UsageError

SUFFIX = ".tmpl"
DOT_PREFIX = "dot-"
# The config's `project` key (cfnbuild.project.config.Name): tags and the stacks' names use it.
_NAME = re.compile(r"^[a-z][a-z0-9-]{1,30}$")
_TOKEN = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def project_name(directory: Path, name: str | None) -> str:
    """The project's name: ``name``, or the directory's; refused unless the config accepts it."""
    candidate = name if name is not None else directory.resolve().name
    if not _NAME.match(candidate):
        given = "--name" if name is not None else f"the directory name {candidate!r}"
        raise UsageError(
            f"{directory}: {given} {'' if name is None else repr(candidate) + ' '}cannot name a project "
            "(2 to 31 lower-case letters, digits and dashes, starting with a letter); pass --name NAME"
        )
    return candidate


def render(name: str) -> dict[PurePosixPath, str]:
    """Every file of a new project called ``name``, by its path in the project."""
    values = {"project": name, "cfnbuild_requirement": _requirement()}
    rendered: dict[PurePosixPath, str] = {}
    for relative, source in _templates(resources.files(__name__) / "files", PurePosixPath()):
        target = PurePosixPath(
            *("." + p.removeprefix(DOT_PREFIX) if p.startswith(DOT_PREFIX) else p for p in relative.parts)
        )
        rendered[target.with_name(target.name.removesuffix(SUFFIX))] = _substitute(source.read_text("utf-8"), values)
    return rendered


def _requirement() -> str:
    """What the project needs of cfnbuild: this version or a later one, with the emulator."""
    try:
        return f"cfnbuild[local]>={metadata.version('cfnbuild')}"
    except metadata.PackageNotFoundError:  # run from a checkout that is not installed
        return "cfnbuild[local]"


def _templates(directory: Traversable, prefix: PurePosixPath) -> Iterator[tuple[PurePosixPath, Traversable]]:
    for entry in sorted(directory.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            yield from _templates(entry, prefix / entry.name)
        elif entry.name.endswith(SUFFIX):
            yield prefix / entry.name, entry


def _substitute(text: str, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        return values[match.group(1)]  # a token the skeleton does not define is a bug: KeyError

    return _TOKEN.sub(value, text)


def check_target(directory: Path) -> None:
    """Refuse a ``directory`` that is a file or holds anything, naming it and the fix."""
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        what = "a symbolic link" if directory.is_symlink() else "a file"
        raise UsageError(f"{directory}: is {what}, not a directory; give a new or empty directory to cfnbuild init")
    if directory.is_dir() and any(directory.iterdir()):
        raise UsageError(
            f"{directory}: not empty; cfnbuild init writes a new project only into a new or empty directory "
            "(give another DIR, or empty this one)"
        )


def write_project(directory: Path, name: str | None = None) -> tuple[str, list[PurePosixPath]]:
    """Write a new project into ``directory`` (new or empty); return its name and the files written.

    The files are written into a temporary directory beside ``directory`` and renamed into place
    once all are there, so a failure leaves ``directory`` as it was.
    """
    check_target(directory)
    name = project_name(directory, name)
    files = render(name)
    parent = directory.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.init-", dir=parent))
    except OSError as exc:
        raise UsageError(f"{directory}: cannot write the project there ({exc.strerror}); give another DIR") from None
    try:
        for relative, text in files.items():
            path = staging.joinpath(*relative.parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        staging.chmod(0o777 & ~_umask())  # mkdtemp's 0700 would make the project private
        check_target(directory)  # it may have been filled meanwhile
        # rename(2) replaces an empty directory and refuses a non-empty one: never a half-done project.
        os.replace(staging, directory)
    except OSError as exc:
        raise UsageError(f"{directory}: cannot write the project ({exc.strerror}); nothing was written") from None
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
    return name, sorted(files)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
