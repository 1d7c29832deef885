"""Shared fixtures: a throwaway copy of the project for CLI and config tests, and of the app's sources."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# How many xdist workers ``-n auto`` starts per CPU. Most of the suite's time is waiting, not
# computing: botocore's retry backoff against the fault proxy, servers starting and stopping, and
# the CLI's own processes. test_boundary's commands, for one, spend about 85% of their time asleep
# (22 of them: 128 s elapsed, 22 s of CPU), so one worker per CPU leaves the CPUs idle most of the time.
WORKERS_PER_CPU = 2


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: :data:`WORKERS_PER_CPU` workers per usable CPU (``PYTEST_XDIST_AUTO_NUM_WORKERS`` still wins)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    return WORKERS_PER_CPU * len(os.sched_getaffinity(0))


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A copy of this project's cfnbuild settings, configs and blueprints, with an empty output/.

    The blueprints are copied because the CLI imports a project's app from the project
    directory: they are project code, not part of the installed cfnbuild.
    """
    settings = ['app = "blueprints.app:app"', 'config_dir = "config"', 'output_dir = "output"', 'default_env = "dev"']
    (tmp_path / "pyproject.toml").write_text("[tool.cfnbuild]\n" + "\n".join(settings) + "\n")
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(ROOT / "blueprints", tmp_path / "blueprints", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


@pytest.fixture
def app_sources(tmp_path: Path) -> Path:
    """A copy of what the app artifact is built from (pyproject.toml and flask_app/), so a test may change it."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    shutil.copytree(ROOT / "flask_app", project / "flask_app", ignore=shutil.ignore_patterns("__pycache__"))
    return project


@pytest.fixture(scope="session")
def emulator():
    """moto in server mode on loopback: a real HTTP endpoint boto3 talks to."""
    from cfnbuild.local.emulator import run_emulator

    with run_emulator("eu-west-1") as running:
        yield running
