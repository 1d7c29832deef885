"""The app's release artifact: a deterministic ``app.tar.gz`` that the instances install with pip.

:func:`build_artifact` packs, from the project at ``project_root``:

``flask_app-<version>-py3-none-any.whl``
    A wheel of ``flask_app/`` (its modules, the Alembic migrations, ``py.typed``), built here
    without a build backend so that its bytes depend only on the sources. Its ``Requires-Dist``
    are the ``app`` extra of ``pyproject.toml``, each pinned (``==``) to the version installed in
    the environment that builds it: the one the tests ran against.
``requirements.txt``
    The whole dependency closure of that extra, pinned the same way, as seen by Amazon Linux
    2023's CPython 3.11 (:data:`TARGET_ENVIRONMENT` evaluates the markers).

The bootstrap (``blueprints/files/user-data.sh``) unpacks it and runs
``pip install --only-binary=:all: -r requirements.txt *.whl`` in a fresh virtual environment.

Identical input gives identical bytes: members sorted, fixed times (1980-01-01, the earliest a
zip can hold), owner root, fixed modes, no name or time in the gzip header. The S3 key is
content-addressed (``releases/<first 16 hex digits of the sha256>/app.tar.gz``), so deploying
unchanged code uploads nothing new and a changed artifact never overwrites a running release.
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import importlib.metadata
import io
import re
import tarfile
import tomllib
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ARTIFACT_NAME = "app.tar.gz"
REQUIREMENTS_NAME = "requirements.txt"
PACKAGE = "flask_app"
DISTRIBUTION = "flask-app"
EXTRA = "app"
DEFAULT_PREFIX = "releases/"
KEY_DIGEST_CHARS = 16
# 1980-01-01T00:00:00Z: the earliest time a zip entry can hold, used for every member.
FIXED_TIME = 315532800
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
# The instances' interpreter: Amazon Linux 2023's python3.11 package (see user-data.sh).
TARGET_PYTHON = "3.11"
TARGET_ENVIRONMENT: Mapping[str, str] = {
    "implementation_name": "cpython",
    "os_name": "posix",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_version": TARGET_PYTHON,
    "sys_platform": "linux",
}
_SKIPPED_PARTS = frozenset({"__pycache__"})
_SKIPPED_SUFFIXES = frozenset({".pyc", ".pyo"})


class ArtifactError(Exception):
    """The artifact cannot be built from this project or environment; the message says what to change."""


@dataclass(frozen=True)
class Artifact:
    """A built release: the file, its sha256 (hex) and the S3 key it belongs at."""

    path: Path
    sha256: str
    key: str
    wheel: str
    requirements: tuple[str, ...]


def build_artifact(project_root: Path, out_dir: Path, *, prefix: str = DEFAULT_PREFIX) -> Artifact:
    """Build ``out_dir/app.tar.gz`` from ``project_root`` and return what it is and where it goes.

    Raises :class:`ArtifactError` when the project has no ``flask_app`` package or ``app`` extra,
    or when a requirement is not installed in this environment (install the ``app`` extra first).
    """
    if not re.fullmatch(r"([A-Za-z0-9._-]+/)+", prefix):
        raise ArtifactError(f"prefix {prefix!r}: give a folder-like key prefix such as 'releases/'")
    project = _read_project(project_root)
    version = str(project.get("version", ""))
    if not version:
        raise ArtifactError(f"{project_root / 'pyproject.toml'}: [project] has no version")
    extras = project.get("optional-dependencies", {})
    if not isinstance(extras, dict) or EXTRA not in extras:
        raise ArtifactError(f"{project_root / 'pyproject.toml'}: no [project.optional-dependencies] {EXTRA!r}")
    direct = [Requirement(text) for text in extras[EXTRA]]
    pins = pinned_closure(direct)
    wheel_name = f"{PACKAGE}-{version}-py3-none-any.whl"
    wheel = build_wheel(project_root / PACKAGE, version, [pins[canonicalize_name(r.name)] for r in direct])
    requirements = "".join(f"{pin}\n" for pin in sorted(pins.values(), key=str.lower)).encode()

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ARTIFACT_NAME
    data = _tar_gz({wheel_name: wheel, REQUIREMENTS_NAME: requirements})
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    return Artifact(
        path=path,
        sha256=digest,
        key=f"{prefix}{digest[:KEY_DIGEST_CHARS]}/{ARTIFACT_NAME}",
        wheel=wheel_name,
        requirements=tuple(sorted(pins.values(), key=str.lower)),
    )


def _read_project(project_root: Path) -> dict[str, object]:
    pyproject = project_root / "pyproject.toml"
    if not (project_root / PACKAGE / "__init__.py").is_file():
        raise ArtifactError(f"{project_root}: no {PACKAGE}/ package to build; give the project's root")
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise ArtifactError(f"{pyproject}: cannot read [project] ({exc})") from None
    if not isinstance(project, dict):
        raise ArtifactError(f"{pyproject}: [project] is not a table")
    return project


def pinned_closure(requirements: Iterable[Requirement]) -> dict[str, str]:
    """``name==version`` for each requirement and what it needs, by canonical name, as installed here.

    Markers are evaluated for :data:`TARGET_ENVIRONMENT` (the instances), not for this machine.
    """
    pins: dict[str, str] = {}
    versions: dict[str, str] = {}
    pending: list[tuple[Requirement, str]] = [(r, "") for r in requirements]
    seen: set[tuple[str, str]] = set()
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate(_environment(extra)):
            continue
        name = canonicalize_name(requirement.name)
        if name not in versions:
            try:
                versions[name] = importlib.metadata.distribution(requirement.name).version
            except importlib.metadata.PackageNotFoundError:
                raise ArtifactError(
                    f"{requirement.name} (needed by the {EXTRA!r} extra) is not installed here; install the "
                    f"project with its {EXTRA!r} extra, whose installed versions the artifact pins"
                ) from None
        version = versions[name]
        # Every requirement on a package is checked, not only the first one met.
        if not requirement.specifier.contains(version, prereleases=True):
            raise ArtifactError(
                f"{requirement.name} {version} is installed but {requirement} is required; install a matching version"
            )
        pins[name] = f"{name}=={version}"
        todo = ({(name, "")} | {(name, canonicalize_name(e)) for e in requirement.extras}) - seen
        seen |= todo
        requires = importlib.metadata.distribution(requirement.name).requires or [] if todo else []
        for text in requires:
            for _, wanted_extra in sorted(todo):
                pending.append((Requirement(text), wanted_extra))
    return pins


def _environment(extra: str) -> dict[str, str]:
    environment = dict(default_environment())
    environment.update(TARGET_ENVIRONMENT)
    environment["python_full_version"] = TARGET_PYTHON + ".0"
    environment["extra"] = extra
    return environment


def build_wheel(package_dir: Path, version: str, requires: Iterable[str]) -> bytes:
    """The bytes of a pure-Python wheel of ``package_dir`` (its files, sorted) with the given ``Requires-Dist``."""
    files: dict[str, bytes] = {}
    for path in sorted(package_dir.rglob("*")):
        relative = path.relative_to(package_dir.parent)
        if not path.is_file() or _SKIPPED_PARTS & set(relative.parts) or path.suffix in _SKIPPED_SUFFIXES:
            continue
        files[relative.as_posix()] = path.read_bytes()
    dist_info = f"{PACKAGE}-{version}.dist-info"
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {DISTRIBUTION}",
        f"Version: {version}",
        "Summary: The web application of cfnbuild's flagship stack (built by cfnbuild.artifact).",
        f"Requires-Python: >={TARGET_PYTHON}",
        *(f"Requires-Dist: {requirement}" for requirement in requires),
    ]
    files[f"{dist_info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: cfnbuild.artifact\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record_name = f"{dist_info}/RECORD"
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        writer.writerow([name, f"sha256={digest}", len(data)])
    writer.writerow([record_name, "", ""])
    files[record_name] = record.getvalue().encode()

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        # The package first, sorted, then the .dist-info with RECORD last, as the wheel spec advises.
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
            info.create_system = 3  # unix, so the mode below is read
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(info, data, compresslevel=9)
    return buffer.getvalue()


def _tar_gz(members: Mapping[str, bytes]) -> bytes:
    """A gzip'd ustar archive of ``members`` (sorted), with fixed times, modes and owner."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size = len(members[name])
            info.mtime = FIXED_TIME
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            archive.addfile(info, io.BytesIO(members[name]))
    compressed = io.BytesIO()
    # mtime=0 and no file name: the gzip header then holds nothing that varies between builds.
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=9) as stream:
        stream.write(raw.getvalue())
    return compressed.getvalue()
