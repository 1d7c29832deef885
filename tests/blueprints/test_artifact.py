"""The release artifact: deterministic, content-addressed, pinned, and installable into a fresh venv."""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import importlib.metadata
import io
import json
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from blueprints.artifact import (
    ARTIFACT_NAME,
    FIXED_TIME,
    KEY_DIGEST_CHARS,
    REQUIREMENTS_NAME,
    TARGET_PYTHON,
    ArtifactError,
    build_artifact,
    pinned_closure,
)
from blueprints.compute import ComputeInputs
from blueprints.instance_files import render_user_data
from tests.blueprints.test_compute import _stack

ROOT = Path(__file__).resolve().parents[2]


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers()}  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return build_artifact(ROOT, tmp_path_factory.mktemp("artifact"))


def test_two_builds_of_the_same_sources_are_byte_identical(tmp_path, artifact, app_sources):
    again = build_artifact(ROOT, tmp_path / "again")
    assert again.path.read_bytes() == artifact.path.read_bytes()
    assert again.sha256 == artifact.sha256
    # Even from a copy made at another time (other mtimes, other directory).
    copy = build_artifact(app_sources, tmp_path / "copy")
    assert copy.sha256 == artifact.sha256


def test_the_archive_has_sorted_members_fixed_times_root_owner_and_no_gzip_name_or_time(artifact):
    data = artifact.path.read_bytes()
    assert data[4:8] == b"\0\0\0\0"  # gzip MTIME
    assert data[3] & 0x08 == 0  # no FNAME flag
    with tarfile.open(artifact.path, "r:gz") as archive:
        members = archive.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert [m.name for m in members] == [artifact.wheel, REQUIREMENTS_NAME]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {
        (FIXED_TIME, 0, 0, "root", "root", 0o644)
    }
    with zipfile.ZipFile(io.BytesIO(_members(artifact.path)[artifact.wheel])) as wheel:
        assert {info.date_time for info in wheel.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_the_key_is_content_addressed_under_the_releases_prefix(artifact):
    assert artifact.sha256 == hashlib.sha256(artifact.path.read_bytes()).hexdigest()
    assert artifact.key == f"releases/{artifact.sha256[:16]}/{ARTIFACT_NAME}"
    assert artifact.key.startswith(ComputeInputs.__dataclass_fields__["artifact_prefix"].default)
    stack, _, _ = _stack()
    stack_dict = stack.to_dict()
    assert re.fullmatch(stack_dict["Parameters"]["AppArtifactKey"]["AllowedPattern"], artifact.key)


def test_a_changed_source_gives_another_artifact_and_key(tmp_path, artifact, app_sources):
    project = app_sources
    api = project / "flask_app" / "api.py"
    api.write_text(api.read_text() + "\n# changed\n")
    changed = build_artifact(project, tmp_path / "out")
    assert changed.sha256 != artifact.sha256
    assert changed.key != artifact.key


def test_requirements_pin_the_app_extras_whole_closure_to_the_installed_versions(artifact):
    lines = _members(artifact.path)[REQUIREMENTS_NAME].decode().splitlines()
    assert lines == list(artifact.requirements)
    pins = dict(line.split("==") for line in lines)
    for name in ("flask", "werkzeug", "jinja2", "sqlalchemy", "pymysql", "alembic", "mako", "gunicorn", "boto3"):
        assert pins[name] == importlib.metadata.version(name)
    assert {"botocore", "s3transfer", "jmespath", "click", "itsdangerous", "markupsafe"} <= set(pins)
    # Nothing of the dev tooling and no optional extras (pymysql[rsa] would bring cryptography).
    assert not {"pytest", "moto", "cfn-lint", "troposphere", "cryptography", "gevent"} & set(pins)


def test_the_wheel_holds_the_package_and_migrations_with_pinned_requires_and_a_valid_record(artifact):
    wheel_bytes = _members(artifact.path)[artifact.wheel]
    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as wheel:
        names = wheel.namelist()
        files = {name: wheel.read(name) for name in names}
    assert artifact.wheel == "flask_app-0.1.0-py3-none-any.whl"
    assert {"flask_app/__init__.py", "flask_app/wsgi.py", "flask_app/py.typed"} <= set(names)
    assert "flask_app/migrations/script.py.mako" in names
    assert "flask_app/migrations/versions/v0001_create_notes.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert names[-1] == "flask_app-0.1.0.dist-info/RECORD"
    metadata = files["flask_app-0.1.0.dist-info/METADATA"].decode()
    requires = [line.split(": ", 1)[1] for line in metadata.splitlines() if line.startswith("Requires-Dist: ")]
    assert sorted(r.split("==")[0] for r in requires) == [
        "alembic",
        "boto3",
        "flask",
        "gunicorn",
        "pymysql",
        "sqlalchemy",
    ]
    assert all("==" in r for r in requires)
    assert f"Requires-Python: >={TARGET_PYTHON}" in metadata
    for name, digest, size in csv.reader(files["flask_app-0.1.0.dist-info/RECORD"].decode().splitlines()):
        if name.endswith("RECORD"):
            continue
        expected = base64.urlsafe_b64encode(hashlib.sha256(files[name]).digest()).rstrip(b"=").decode()
        assert (digest, int(size)) == (f"sha256={expected}", len(files[name]))


def test_the_artifact_installs_into_a_fresh_venv_and_the_app_migrates_from_it(tmp_path, artifact):
    release = tmp_path / "release"
    with tarfile.open(artifact.path, "r:gz") as archive:
        archive.extractall(release, filter="data")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # The wheel itself, with pip, as the bootstrap installs it (offline: no index, no dependencies)...
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-index", "--no-deps",
         "--disable-pip-version-check", str(release / artifact.wheel)],
        check=True, timeout=120,
    )  # fmt: skip
    # ... and the pinned dependencies from this environment (the versions requirements.txt names),
    # added after the venv's own site-packages, so flask_app can only come from the wheel.
    site_packages = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True
        ).strip()
    )
    (site_packages / "zz-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "APP_DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}"}
    where = subprocess.run(
        [python, "-c", "import flask_app; print(flask_app.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert where.stdout.strip() == str(site_packages / "flask_app" / "__init__.py")
    help_text = subprocess.run(
        [python, "-m", "flask_app", "--help"],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert help_text.returncode == 0, help_text.stderr
    assert "migrate" in help_text.stdout
    migrated = subprocess.run(
        [python, "-m", "flask_app", "migrate"],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert json.loads(migrated.stdout) == {"revision": "0001"}


def test_the_user_data_installs_the_artifacts_layout_with_the_targets_python():
    script = render_user_data()
    assert f'python{TARGET_PYTHON} -m venv "$APP_HOME/venv"' in script
    assert f'-r "$release/{REQUIREMENTS_NAME}" "$release"/*.whl' in script
    assert 'aws s3 cp --only-show-errors --region "${AWS::Region}" "s3://$ARTIFACT_BUCKET/$ARTIFACT_KEY"' in script
    # The bootstrap checks the fetched file against the digest its key names.
    assert f'sha256sum "$APP_HOME/{ARTIFACT_NAME}" | cut -c1-{KEY_DIGEST_CHARS})' in script


def test_a_requirement_not_installed_or_of_another_version_is_refused_with_what_to_do():
    with pytest.raises(ArtifactError, match=r"not-a-real-package .*is not installed here; install the project"):
        pinned_closure([Requirement("not-a-real-package>=1")])
    with pytest.raises(ArtifactError, match=r"flask \S+ is installed but flask<1 is required"):
        pinned_closure([Requirement("flask<1")])


def test_markers_are_evaluated_for_the_instances_python_not_this_one():
    pins = pinned_closure([Requirement("alembic")])
    assert "tomli" not in pins  # alembic needs it only below Python 3.11


def test_a_project_without_the_app_package_or_extra_is_refused(tmp_path, app_sources):
    with pytest.raises(ArtifactError, match="no flask_app/ package"):
        build_artifact(tmp_path, tmp_path / "out")
    project = app_sources
    (project / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1"\n')
    with pytest.raises(ArtifactError, match=r"no \[project\.optional-dependencies\] 'app'"):
        build_artifact(project, tmp_path / "out")
    with pytest.raises(ArtifactError, match="folder-like key prefix"):
        build_artifact(ROOT, tmp_path / "out", prefix="/releases")


def test_gzip_stream_is_valid_and_fully_readable(artifact):
    assert gzip.decompress(artifact.path.read_bytes())
