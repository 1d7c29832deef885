"""A stack's Availability Zones never move: the network deployed to the emulator, then planned again
after the region's answer changed.

The emulator (moto, in this process) answers DescribeAvailabilityZones from its own table of
zones; a test changes that table the way an account's answer can change, and the deployed
stack must keep its zones.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
import pytest
from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend, Zone
from rich.console import Console

from cfnbuild.deploy.aws import Aws, Target
from cfnbuild.deploy.engine import Engine, Request
from cfnbuild.deploy.events import PollSettings
from cfnbuild.deploy.lookups import resolve_lookups
from cfnbuild.local.emulator import THROWAWAY_CREDENTIALS
from cfnbuild.project.app import load_project
from tests.inprocess import build_here

FAST = PollSettings(min_seconds=0.01, max_seconds=0.02, timeout_seconds=60)
REGION = "eu-west-1"
NET_APP = """
from blueprints.network import Network, NetworkInputs
from cfnbuild import App, EnvironmentConfig, Stack, StackSpec


class NetConfig(EnvironmentConfig):
    pass


def build(config: NetConfig) -> Stack:
    stack = Stack("net", description="net", project=config.project, environment=config.environment)
    Network(stack, NetworkInputs(az_count=2))
    return stack


app = App(config_model=NetConfig, stacks=[StackSpec("net", build)])
"""


@pytest.fixture
def net(tmp_path, emulator, request) -> tuple[Path, str]:
    suffix = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[-30:].strip("-")
    (tmp_path / "pyproject.toml").write_text('[tool.cfnbuild]\napp = "net_app:app"\ndefault_env = "dev"\n')
    (tmp_path / "net_app.py").write_text(NET_APP)
    (tmp_path / "config").mkdir()
    lines = ['project = "net"', f'regions = ["{REGION}"]', "[deploy]", f'stack_name_suffix = "{suffix}"']
    (tmp_path / "config/dev.toml").write_text("\n".join(lines) + "\n")
    build_here(tmp_path)
    return tmp_path, f"net-dev-{suffix}"


def _engine(root: Path, emulator, stack_name: str) -> tuple[Engine, Console]:
    target = Target(stack_name, REGION, endpoint_url=emulator.endpoint_url, credentials=dict(THROWAWAY_CREDENTIALS))
    err = Console(record=True, width=300)
    return Engine(load_project(root), Aws(target), Console(record=True, width=200), err, poll=FAST), err


def _subnets(emulator, stack_name: str) -> dict[str, tuple[str, str]]:
    """Each subnet of the stack: logical ID → (subnet ID, zone)."""
    cloudformation, ec2 = emulator.client("cloudformation"), emulator.client("ec2")
    resources = cloudformation.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
    subnets = {}
    for resource in resources:
        if resource["ResourceType"] == "AWS::EC2::Subnet":
            (subnet,) = ec2.describe_subnets(SubnetIds=[resource["PhysicalResourceId"]])["Subnets"]
            subnets[resource["LogicalResourceId"]] = (subnet["SubnetId"], subnet["AvailabilityZone"])
    return subnets


def _deployed_zones(emulator, stack_name: str) -> str:
    stack = emulator.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    return {p["ParameterKey"]: p.get("ParameterValue") for p in stack["Parameters"]}["AvailabilityZones"]


def _renumber_zones(monkeypatch) -> None:
    """The region's answer changes: the same names now map to other zone IDs (a=az1, b=az2, c=az3)."""
    zones = [
        Zone(region_name=REGION, name=f"{REGION}{letter}", zone_id=f"euw1-az{n}") for n, letter in enumerate("abc", 1)
    ]
    monkeypatch.setitem(RegionsAndZonesBackend.zones, REGION, zones)


def test_a_changed_zone_answer_cannot_move_or_replace_a_deployed_subnet(net, emulator, monkeypatch):
    root, stack_name = net
    engine, err = _engine(root, emulator, stack_name)
    engine.deploy(Request("dev", "net", yes=True))
    # The emulator maps eu-west-1a/b/c to az3/az1/az2: by zone ID the first two are b and c.
    assert _deployed_zones(emulator, stack_name) == "eu-west-1b,eu-west-1c"
    first = _subnets(emulator, stack_name)
    assert sorted({zone for _, zone in first.values()}) == ["eu-west-1b", "eu-west-1c"]
    assert "looked up now" in err.export_text()

    _renumber_zones(monkeypatch)
    (root / ".cfnbuild-cache" / "lookups").rename(root / "old-lookups")  # nothing cached: AWS would be asked
    engine, err = _engine(root, emulator, stack_name)
    plan, _ = engine.plan(Request("dev", "net"), keep=False)
    assert "AvailabilityZones: eu-west-1b,eu-west-1c kept as the stack has it" in err.export_text()
    assert not [r.logical_id for r in plan.resources if r.resource_type == "AWS::EC2::Subnet"]
    assert not [r.logical_id for r in plan.resources if r.kind == "replace"]

    # A new stack would now get other zones: what the kept value protects the deployed one from.
    fresh = resolve_lookups(
        json.loads((root / "output/dev/net.json").read_text()),
        region=REGION,
        session=boto3.Session(**THROWAWAY_CREDENTIALS),
        cache_dir=root / "fresh",
        endpoint_url=emulator.endpoint_url,
    )
    assert fresh["AvailabilityZones"].value == "eu-west-1a,eu-west-1b"

    engine, _ = _engine(root, emulator, stack_name)
    engine.deploy(Request("dev", "net", yes=True))
    # The emulator's change set lists no resource for a changed parameter; what was deployed shows it.
    assert _subnets(emulator, stack_name) == first, "a subnet was replaced or moved"
    assert _deployed_zones(emulator, stack_name) == "eu-west-1b,eu-west-1c"


def test_zones_given_explicitly_win_over_the_kept_ones(net, emulator):
    root, stack_name = net
    engine, _ = _engine(root, emulator, stack_name)
    engine.deploy(Request("dev", "net", yes=True))
    engine, err = _engine(root, emulator, stack_name)
    request = Request("dev", "net", param_overrides={"AvailabilityZones": "eu-west-1a,eu-west-1b"})
    prepared = engine.prepare(request, engine.describe(stack_name))
    assert prepared.parameters["AvailabilityZones"] == "eu-west-1a,eu-west-1b"
    assert "AvailabilityZones" not in prepared.previous
    assert "eu-west-1a,eu-west-1b given explicitly" in err.export_text()


def test_the_template_falls_back_to_getazs_when_the_zones_are_empty(net, emulator):
    root, stack_name = net
    template = json.loads((root / "output/dev/net.json").read_text())
    engine, _ = _engine(root, emulator, stack_name)
    engine.deploy(Request("dev", "net", yes=True, param_overrides={"AvailabilityZones": ""}))
    assert template["Resources"]["PublicSubnet1"]["Properties"]["AvailabilityZone"] == {
        "Fn::If": [
            "HasZones",
            {"Fn::Select": [0, {"Fn::Split": [",", {"Ref": "AvailabilityZones"}]}]},
            {"Fn::Select": [0, {"Fn::GetAZs": ""}]},
        ]
    }
    # The emulator's Fn::GetAZs lists the region's zones a, b, ...: not the zone-ID choice b, c.
    subnets = _subnets(emulator, stack_name)
    assert (subnets["PublicSubnet1"][1], subnets["PublicSubnet2"][1]) == ("eu-west-1a", "eu-west-1b")
