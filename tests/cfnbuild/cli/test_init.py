"""``cfnbuild init``: a project of one's own, which builds, passes the gates and deploys as written.

Every command runs as a user would run it, ``python -m cfnbuild`` in a process of its own, with
this checkout first on ``PYTHONPATH``: the generated project imports nothing of it but cfnbuild.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def env() -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        "COLUMNS": "200",
    }


def cfnbuild(*args: str, cwd: Path, environment: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cfnbuild", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=environment or env(),
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_init_writes_every_part_of_a_project_with_its_name(tmp_path):
    result = cfnbuild("init", "tmp/orders", cwd=tmp_path)
    project = tmp_path / "tmp/orders"
    assert ok(result).startswith("created project orders in tmp/orders: 11 files; next: cd tmp/orders && ")
    written = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file())
    assert written == [
        ".gitignore",
        "README.md",
        "config/dev.toml",
        "pyproject.toml",
        "stacks/__init__.py",
        "stacks/app.py",
        "stacks/config.py",
        "stacks/monitoring.py",
        "stacks/queue.py",
        "tests/test_stacks.py",
        "tox.ini",
    ]
    import tomllib

    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["tool"]["cfnbuild"] == {
        "app": "stacks.app:app",
        "config_dir": "config",
        "output_dir": "output",
        "default_env": "dev",
    }
    assert pyproject["project"]["name"] == "orders"
    assert tomllib.loads((project / "config/dev.toml").read_text())["project"] == "orders"
    assert not any("{{" in p.read_text() for p in project.rglob("*") if p.is_file())
    assert not [p.name for p in tmp_path.joinpath("tmp").iterdir() if p.name != "orders"]  # no staging left


def _tox_config(project: Path) -> str:
    """What tox reads of the project's tox.ini: each env's commands and whether it installs the project."""
    result = subprocess.run(
        [sys.executable, "-m", "tox", "config", "-e", "lint,unit", "-k", "commands", "skip_install"],
        cwd=project, env=env(), capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return result.stdout


@pytest.mark.server
def test_the_generated_project_builds_passes_the_gates_and_its_tests_and_deploys_to_the_emulator(tmp_path):
    ok(cfnbuild("init", "orders", cwd=tmp_path))
    project = tmp_path / "orders"
    # What its tox.ini runs, each run below as tox would run it (tox itself would install from an index).
    assert _tox_config(project) == (
        "[testenv:lint]\ncommands =\n  cfnbuild build --all --check\n  cfnbuild lint --all\nskip_install = True\n\n"
        "[testenv:unit]\ncommands = pytest\nskip_install = True\n"
    )
    assert "built 2 template(s) for dev: 2 written" in ok(cfnbuild("build", cwd=project))
    assert "output/ is up to date: 2 template(s)" in ok(cfnbuild("build", "--all", "--check", cwd=project))
    assert "2 template(s) pass cfn-lint and checkov" in ok(cfnbuild("lint", "--all", cwd=project))
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project, env=env(), capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "\n5 passed" in tests.stdout
    for command in (["check"], ["format", "--check"]):  # the project's own ruff settings
        lint = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--no-cache", "."],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr
    # One deploy of the environment: the queue stack first, as the monitoring stack uses its
    # QueueName output; a local session holds the emulator for the status after it.
    session = project / ".cfnbuild-cache/local/session.json"
    try:
        ok(cfnbuild("local", "start", cwd=project))
        pid = json.loads(session.read_text())["pid"]
        both = ok(cfnbuild("deploy", "--local", "--yes", cwd=project))  # the whole graph, queue first
        # the monitoring stack starts once the queue stack is complete
        queue_complete = both.index("orders-queue-dev AWS::CloudFormation::Stack CREATE_COMPLETE")
        assert queue_complete < both.index("[orders-monitoring] deploying")
        assert re.search(r"orders-queue +│ deployed", both)
        assert re.search(r"orders-monitoring +│ deployed", both)
        outputs = json.loads((project / "output/dev/orders-queue.outputs.json").read_text())
        assert outputs["Outputs"]["QueueName"].startswith("orders-queue-dev-Queue-")
        status = ok(cfnbuild("local", "status", cwd=project))
        assert "orders-queue-dev" in status
        assert "orders-monitoring-dev" in status
    finally:
        cfnbuild("local", "stop", cwd=project)
        if "pid" in locals():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_init_refuses_a_directory_that_is_not_empty_and_leaves_it_as_it_was(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me\n")
    result = cfnbuild("init", "mine", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "error: mine: not empty; cfnbuild init writes a new project only into a new or empty directory "
        "(give another DIR, or empty this one)\n"
    )
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_init_refuses_a_file_in_one_line(tmp_path):
    (tmp_path / "orders").write_text("a file\n")
    result = cfnbuild("init", "orders", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "error: orders: is a file, not a directory; give a new or empty directory to cfnbuild init\n"
    )
    assert (tmp_path / "orders").read_text() == "a file\n"


def test_init_writes_into_an_empty_directory(tmp_path):
    (tmp_path / "orders").mkdir()
    ok(cfnbuild("init", "orders", cwd=tmp_path))
    assert (tmp_path / "orders/stacks/app.py").is_file()


def test_init_refuses_a_name_the_config_would_refuse_and_takes_one_with_name(tmp_path):
    result = cfnbuild("init", "X", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "error: X: the directory name 'X' cannot name a project (2 to 31 lower-case letters, digits and "
        "dashes, starting with a letter); pass --name NAME\n"
    )
    assert not (tmp_path / "X").exists()
    ok(cfnbuild("init", "X", "--name", "billing", cwd=tmp_path))
    assert 'project = "billing"' in (tmp_path / "X/config/dev.toml").read_text()


def test_init_that_fails_half_way_writes_nothing(tmp_path):
    # Files over 700 bytes cannot be written (RLIMIT_FSIZE): .gitignore is, README.md is not.
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (700, 700))\n"
        "from cfnbuild.cli.main import main\n"
        "main(['init', 'orders'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env(), capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: orders: cannot write the project (File too large); nothing was written")
    assert list(tmp_path.iterdir()) == []


def test_the_project_directory_wins_over_a_package_of_the_same_name_on_the_path(tmp_path):
    ok(cfnbuild("init", "orders", cwd=tmp_path))
    decoy = tmp_path / "decoy/stacks"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('the decoy stacks package was imported')\n")
    project = tmp_path / "orders"
    environment = env()
    # The project's root on the path too, but after the decoy: the root must still come first.
    environment["PYTHONPATH"] = os.pathsep.join([str(decoy.parent), str(project), environment["PYTHONPATH"]])
    result = cfnbuild("--project", str(project), "build", cwd=tmp_path, environment=environment)
    assert "built 2 template(s) for dev" in ok(result)


@pytest.mark.server
def test_the_flagship_builds_and_deploys_with_its_code_imported_from_the_project_directory(tmp_path):
    # cfnbuild from the checkout; on the path before the project (and before anything installed)
    # a blueprints package that fails when imported: the app and the artifact builder must come
    # from the project directory all the same, as with an installed wheel, which carries neither.
    engine = tmp_path / "engine"
    (engine / "blueprints").mkdir(parents=True)
    (engine / "cfnbuild").symlink_to(ROOT / "cfnbuild")
    (engine / "blueprints/__init__.py").write_text(
        "raise ImportError('blueprints imported from outside the project')\n"
    )
    project = tmp_path / "webapp"
    project.mkdir()
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    for folder in ("config", "blueprints", "flask_app"):
        shutil.copytree(ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    environment = {**env(), "PYTHONPATH": str(engine)}
    ok(cfnbuild("--project", str(project), "build", "--env", "dev", cwd=tmp_path, environment=environment))
    # A second process, which the build record spares the app's import: the artifact builder's is its own.
    result = cfnbuild("--project", str(project), "deploy", "--local", "--yes", cwd=tmp_path, environment=environment)
    said = ok(result)
    for stack in ("network", "data", "webapp"):  # the web app last: its artifact was built and uploaded for it
        assert re.search(rf"│ {stack}\s+│ deployed\s+│", said), said
