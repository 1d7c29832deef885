"""A stack's whole life on one local session, each step a separate ``python -m cfnbuild`` process.

deploy → status → outputs → plan (no changes) → a config change → plan (changes) → plan --out →
deploy --plan → drift (the emulator cannot) → delete → status "not deployed"; on the small test
project, and on the flagship's dev environment.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cfnbuild.deploy.test_engine import _configure
from tests.cfnbuild.local.conftest import ROOT, LocalProject, local_project

pytestmark = pytest.mark.server

SESSION_LINE = "--local: the local session at {endpoint} (since "


def _ok(result, code: int = 0) -> None:
    assert result.returncode == code, result.stdout[-2000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr


def test_the_lifecycle_of_a_stack_across_separate_commands_on_one_session(mini_local: LocalProject, tmp_path: Path):
    _ok(mini_local.cli("local", "start"))
    endpoint = mini_local.session()["endpoint_url"]
    name = "mini-dev-local"

    deployed = mini_local.cli("deploy", "--local")
    _ok(deployed)
    assert SESSION_LINE.format(endpoint=endpoint) in deployed.stderr
    assert f"{name}: CREATE_COMPLETE" in deployed.stdout

    status = mini_local.cli("status", "--local")
    _ok(status)
    assert status.stdout.startswith(f"{name}: CREATE_COMPLETE (last change ")

    outputs_file = mini_local.root / "output/dev/mini.outputs.json"
    outputs_file.unlink()
    outputs = mini_local.cli("outputs", "--local")
    _ok(outputs)
    assert json.loads(outputs_file.read_text())["StackName"] == name

    unchanged = mini_local.cli("plan", "--local")
    _ok(unchanged, 0)
    assert f"No changes: stack {name} is up to date." in unchanged.stdout

    _configure(mini_local.root, "local", topic_label="v2")  # and builds
    changed = mini_local.cli("plan", "--local")
    _ok(changed, 2)
    assert '/Properties/DisplayName: "v1" → "v2"' in changed.stdout

    saved = tmp_path / "p.json"
    planned = mini_local.cli("plan", "--local", "--out", str(saved))
    _ok(planned, 2)
    executed = mini_local.cli("deploy", "--local", "--plan", str(saved))
    _ok(executed)
    assert f"{name} AWS::CloudFormation::Stack UPDATE_IN_PROGRESS" in executed.stdout
    assert f"{name}: UPDATE_COMPLETE" in executed.stdout

    drift = mini_local.cli("drift", "--local")
    _ok(drift, 1)
    assert drift.stderr.splitlines()[-1] == (
        f"error: {name}: the emulator cannot detect drift (it has no DetectStackDrift); run 'cfnbuild drift' "
        "against AWS"
    )

    deleted = mini_local.cli("delete", "--local")
    _ok(deleted)
    assert f"deleting {name} keeps Queue" in deleted.stdout
    assert deleted.stdout.rstrip().endswith(f"{name}: deleted")

    gone = mini_local.cli("status", "--local")
    _ok(gone)
    assert gone.stdout.strip() == f"{name}: not deployed"
    assert SESSION_LINE.format(endpoint=endpoint) in gone.stderr  # still the session, not a one-shot emulator


@pytest.fixture
def flagship_local(tmp_path: Path) -> Iterator[LocalProject]:
    """A copy of the flagship (its blueprints, configs and app sources), dev built."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    for folder in ("config", "blueprints", "flask_app"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    with local_project(root, tmp_path / "cache") as project:
        _ok(project.cli("build", "--env", "dev"))
        yield project


def test_the_flagship_dev_stack_lives_deploy_to_delete_on_one_session(flagship_local: LocalProject):
    project = flagship_local
    _ok(project.cli("local", "start"))
    _ok(project.cli("deploy", "--local"))
    again = project.cli("deploy", "--local")
    _ok(again)
    # network, data and webapp, in order; the web app's SSM-typed ImageId is answered by its name, as on
    # AWS, and each input is its upstream's output as deployed: nothing to send
    for stack in ("network", "data", "webapp"):
        assert re.search(rf"│ {stack}\s+│ no changes\s+│", again.stdout), again.stdout
    _ok(project.cli("plan", "--local"), 0)

    config = project.root / "config/dev.toml"
    config.write_text(config.read_text().replace('instance_type = "t3.small"', 'instance_type = "t3.medium"'))
    _ok(project.cli("build", "--env", "dev"))
    changed = project.cli("plan", "--local")
    _ok(changed, 2)
    assert '/Properties/LaunchTemplateData/InstanceType: "t3.small" → "t3.medium"' in changed.stdout
    assert "ImageId" not in changed.stdout

    deleted = project.cli("delete", "--local")
    _ok(deleted)  # the emulator deletes the stack's route tables, so its VPC and the stack go too
    # in the reverse order: what takes outputs goes before what gives them
    rows = [deleted.stdout.index(f"│ {stack} ") for stack in ("webapp", "data", "network")]
    assert rows == sorted(rows), deleted.stdout
    for stack in ("webapp", "data", "network"):
        assert re.search(rf"│ {stack}\s+│ deleted\s+│", deleted.stdout), deleted.stdout
    assert "deleting data-dev keeps AssetsBucket" in deleted.stdout, "the stateful resources are kept and said"
    status = project.cli("status", "--local").stdout
    for stack in ("network", "data", "webapp"):
        assert f"{stack}-dev: not deployed" in status, status
    status = project.cli("local", "status")
    assert "it holds no stacks (in " in status.stdout  # in any region the project's configs name


def test_a_command_that_changes_a_stack_on_the_session_holds_the_stack_lock(mini_local: LocalProject, monkeypatch):
    from cfnbuild.deploy.aws import Target
    from cfnbuild.deploy.lock import stack_lock

    monkeypatch.delenv("AWS_PROFILE", raising=False)  # the CLI runs without it too
    _ok(mini_local.cli("local", "start"))
    endpoint = mini_local.session()["endpoint_url"]
    target = Target("mini-dev-local", "eu-west-1", None, endpoint)
    # another command on this machine works on the same stack of the same session
    with stack_lock(target, "deploy", wait=False, say=print, directory=mini_local.cache / "cfnbuild/locks"):
        refused = mini_local.cli("deploy", "--local")
    assert refused.returncode == 1
    assert "is working on mini-dev-local in eu-west-1 on this machine" in refused.stderr.splitlines()[-1]
    _ok(mini_local.cli("deploy", "--local"))  # once it is done
