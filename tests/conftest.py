"""Shared fixtures: a throwaway copy of the project for CLI and config tests, and of the app's sources."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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
