"""One environment to several regions, on the emulator (one moto server plays every region)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from rich.console import Console

from cfnbuild.deliver.multiregion import deploy_regions
from cfnbuild.deploy.aws import Aws, Target
from cfnbuild.deploy.engine import DeployFailed, Engine, Refused, Request
from cfnbuild.deploy.events import PollSettings
from cfnbuild.local.emulator import THROWAWAY_CREDENTIALS
from cfnbuild.project.app import load_project
from tests.cfnbuild.deploy.test_engine import MINI_APP
from tests.inprocess import build_here

REGIONS = ["eu-west-1", "eu-central-1", "us-east-1"]
FAST = PollSettings(min_seconds=0.01, max_seconds=0.02, timeout_seconds=60)


def _project(root: Path, suffix: str, **config: object) -> Path:
    (root / "pyproject.toml").write_text('[tool.cfnbuild]\napp = "mini_app:app"\ndefault_env = "dev"\n')
    (root / "mini_app.py").write_text(MINI_APP)
    (root / "config").mkdir(exist_ok=True)
    lines = ['project = "mini"', f"regions = {json.dumps(REGIONS)}"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in config.items()]
    lines += ["[deploy]", f'stack_name_suffix = "{suffix}"']
    (root / "config/dev.toml").write_text("\n".join(lines) + "\n")
    build_here(root)
    return root


def _factory(root: Path, emulator, suffix: str, fail_in: str | None = None):
    project = load_project(root)

    def make(region: str) -> Engine:
        target = Target(
            f"mini-dev-{suffix}", region, endpoint_url=emulator.endpoint_url, credentials=dict(THROWAWAY_CREDENTIALS)
        )
        engine = Engine(
            project, Aws(target), Console(record=True, width=200), Console(record=True, width=200), poll=FAST
        )
        if region == fail_in:

            def failing(staged):
                raise DeployFailed(f"{staged.stack_name} ended UPDATE_ROLLBACK_COMPLETE; root cause: scripted")

            engine.execute = failing  # the emulator cannot make a deploy fail; the failure is scripted
        return engine

    return make


def _status(emulator, region: str, stack_name: str) -> str | None:
    cf = boto3.session.Session(region_name=region, **THROWAWAY_CREDENTIALS).client(
        "cloudformation", endpoint_url=emulator.endpoint_url
    )
    try:
        return str(cf.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"])
    except cf.exceptions.ClientError:
        return None


def test_every_region_is_planned_then_deployed_with_a_summary(tmp_path, emulator):
    root = _project(tmp_path, "all")
    out = Console(record=True, width=200)
    results = deploy_regions(
        _factory(root, emulator, "all"),
        Request("dev", "mini", yes=True),
        REGIONS,
        max_parallel=2,
        continue_on_error=False,
        out=out,
        confirm=None,
    )
    assert [(r.region, r.result) for r in results] == [(region, "deployed") for region in REGIONS]
    for region in REGIONS:
        assert _status(emulator, region, "mini-dev-all") == "CREATE_COMPLETE"
        assert (root / f"output/dev/mini.{region}.outputs.json").is_file()
    text = out.export_text()
    assert text.index("plan for us-east-1") < text.index("[eu-west-1] executing")
    assert "mini-dev-all (dev) by region" in text


def test_a_failure_stops_the_regions_not_started_and_deletes_their_change_sets(tmp_path, emulator):
    root = _project(tmp_path, "stop")
    out = Console(record=True, width=200)
    results = deploy_regions(
        _factory(root, emulator, "stop", fail_in="eu-west-1"),
        Request("dev", "mini", yes=True),
        REGIONS,
        max_parallel=1,
        continue_on_error=False,
        out=out,
        confirm=None,
    )
    assert [(r.region, r.result) for r in results] == [
        ("eu-west-1", "failed"),
        ("eu-central-1", "not started"),
        ("us-east-1", "not started"),
    ]
    assert "root cause: scripted" in results[0].detail
    assert _status(emulator, "eu-central-1", "mini-dev-stop") is None  # its CREATE change set and empty stack are gone
    assert _status(emulator, "us-east-1", "mini-dev-stop") is None


def test_continue_on_error_deploys_the_other_regions(tmp_path, emulator):
    root = _project(tmp_path, "cont")
    out = Console(record=True, width=200)
    results = deploy_regions(
        _factory(root, emulator, "cont", fail_in="eu-central-1"),
        Request("dev", "mini", yes=True),
        REGIONS,
        max_parallel=1,
        continue_on_error=True,
        out=out,
        confirm=None,
    )
    assert [(r.region, r.result) for r in results] == [
        ("eu-west-1", "deployed"),
        ("eu-central-1", "failed"),
        ("us-east-1", "deployed"),
    ]


def test_without_yes_or_a_terminal_no_region_is_touched(tmp_path, emulator):
    root = _project(tmp_path, "ask")
    with pytest.raises(Refused, match="pass --yes"):
        deploy_regions(
            _factory(root, emulator, "ask"),
            Request("dev", "mini"),
            REGIONS,
            max_parallel=2,
            continue_on_error=False,
            out=Console(record=True),
            confirm=None,
        )
    assert all(_status(emulator, region, "mini-dev-ask") is None for region in REGIONS)


def test_a_region_outside_the_config_is_refused(tmp_path, emulator):
    root = _project(tmp_path, "cfg")
    command = [sys.executable, "-m", "cfnbuild", "--project", str(root), "deploy", "--yes"]
    command += ["--regions", "eu-west-1,ap-south-1", "--endpoint-url", emulator.endpoint_url]
    credentials = {"AWS_ACCESS_KEY_ID": "emulator", "AWS_SECRET_ACCESS_KEY": "emulator", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=credentials)
    assert result.returncode == 2
    assert "ap-south-1 not in config/dev.toml regions" in result.stderr
