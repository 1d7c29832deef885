"""What ``pip install cfnbuild`` installs: the engine and the CLI, never the flagship's project code.

setuptools' own ``build_py`` (what a wheel build runs to gather the pure-Python files) is run on a
copy of the sources, offline, into a directory of its own: what lands there is what the wheel
carries in site-packages.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_carries_cfnbuild_with_its_data_and_the_init_skeleton_but_not_blueprints_or_flask_app(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("cfnbuild", "blueprints", "flask_app", "tests", "config"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    lib = tmp_path / "lib"
    subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py", "--build-lib", str(lib)],
        cwd=source, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert sorted(p.name for p in lib.iterdir()) == ["cfnbuild"]
    installed = {p.relative_to(lib).as_posix() for p in lib.rglob("*") if p.is_file()}
    sources = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "cfnbuild").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert installed == sources  # every module, py.typed, the policy list and each skeleton file
    assert "cfnbuild/project/skeleton/files/stacks/app.py.tmpl" in installed
    assert "cfnbuild/data/aws_managed_policies.txt" in installed
