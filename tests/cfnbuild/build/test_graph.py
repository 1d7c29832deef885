import subprocess
import sys

from cfnbuild.build.graph import (
    TYPICAL_SECONDS,
    critical_path,
    dependencies,
    stacks_critical_path,
    stacks_to_dot,
    to_dot,
)
from tests.graph_projects import cfnbuild, graph_project

TEMPLATE = {
    "Resources": {
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/16"}},
        "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Vpc"}}},
        "Nat": {"Type": "AWS::EC2::NatGateway", "Properties": {"SubnetId": {"Ref": "Subnet"}}},
        "Route": {
            "Type": "AWS::EC2::Route",
            "Properties": {"NatGatewayId": {"Fn::Sub": "${Nat}"}, "RegionName": {"Fn::Sub": "${AWS::Region}"}},
        },
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"Name": {"Fn::GetAtt": ["Vpc", "CidrBlock"]}}},
        "Late": {"Type": "AWS::SNS::Topic", "DependsOn": "Role"},
        "Local": {"Type": "AWS::SNS::Topic", "Properties": {"X": {"Fn::Sub": ["${Vpc}-${Mine}", {"Mine": "m"}]}}},
    }
}


def test_dependencies_follow_ref_getatt_sub_and_depends_on_but_not_pseudo_parameters():
    graph = dependencies(TEMPLATE)
    assert graph == {
        "Vpc": set(),
        "Subnet": {"Vpc"},
        "Nat": {"Subnet"},
        "Route": {"Nat"},
        "Role": {"Vpc"},
        "Late": {"Role"},
        "Local": {"Vpc"},
    }


def test_critical_path_is_the_slowest_chain_weighted_by_typical_creation_times():
    steps = critical_path(TEMPLATE)
    assert [s.logical_id for s in steps] == ["Vpc", "Subnet", "Nat", "Route"]
    expected_total = sum(
        TYPICAL_SECONDS[t][0] for t in ("AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::NatGateway", "AWS::EC2::Route")
    )
    assert steps[-1].finished_at == expected_total


def test_every_typical_time_cites_its_basis():
    assert all(source for _, source in TYPICAL_SECONDS.values())


def test_dot_output_has_an_edge_per_dependency():
    dot = to_dot(TEMPLATE, name="t")
    assert '"Route" -> "Nat";' in dot
    assert '"Late" -> "Role";' in dot
    assert dot.startswith("digraph t {")


def test_graph_command_prints_the_critical_path_and_total(project_dir):
    run = [sys.executable, "-m", "cfnbuild", "--project", str(project_dir)]
    subprocess.run([*run, "build", "--env", "dev"], check=True, capture_output=True)
    result = subprocess.run(
        [*run, "graph", "--env", "dev"], capture_output=True, text=True, check=False, env={"COLUMNS": "200", "PATH": ""}
    )
    assert result.returncode == 0, result.stderr
    assert "critical path of output/dev/webapp.json" in result.stdout
    assert "to create" in result.stdout


def test_graph_before_build_says_to_build_first(project_dir):
    result = subprocess.run(
        [sys.executable, "-m", "cfnbuild", "--project", str(project_dir), "graph", "--env", "dev"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "run 'cfnbuild build --env dev' first" in result.stderr


def _stack(*types: str, uses: dict[str, tuple[str, str]] | None = None) -> dict:
    """A template of a chain of resources of ``types`` (each refers to the one before), using ``uses``."""
    resources: dict = {}
    for index, resource_type in enumerate(types):
        properties = {"After": {"Ref": f"R{index - 1}"}} if index else {}
        if index == 0 and uses:
            properties = {"Takes": [{"Ref": parameter} for parameter in uses]}
        resources[f"R{index}"] = {"Type": resource_type, "Properties": properties}
    inputs = {parameter: {"stack": s, "output": o} for parameter, (s, o) in (uses or {}).items()}
    return {
        "Metadata": {"cfnbuild": {"inputs": inputs}},
        "Resources": resources,
        "Outputs": {"Last": {"Value": {"Ref": f"R{len(types) - 1}"}}},
    }


# root → (slow | quick) → tail: the slow branch is on the path, the quick one overlaps it.
STACKS = {
    "root": _stack("AWS::EC2::VPC", "AWS::EC2::Subnet"),
    "quick": _stack("AWS::SNS::Topic", uses={"RootLast": ("root", "Last")}),
    "slow": _stack("AWS::EC2::NatGateway", "AWS::EC2::Route", uses={"RootLast": ("root", "Last")}),
    "tail": _stack("AWS::IAM::Role", uses={"QuickLast": ("quick", "Last"), "SlowLast": ("slow", "Last")}),
}
UPSTREAMS = {"root": (), "quick": ("root",), "slow": ("root",), "tail": ("quick", "slow")}


def test_critical_path_across_stacks_sums_each_stacks_own_path_and_lets_parallel_stacks_overlap():
    legs = stacks_critical_path(STACKS, UPSTREAMS)
    assert [leg.stack for leg in legs] == ["root", "slow", "tail"]
    assert [leg.seconds for leg in legs] == [15 + 10, 120 + 20, 20]
    assert [(leg.starts_at, leg.finished_at) for leg in legs] == [(0, 25), (25, 165), (165, 185)]
    assert [step.logical_id for step in legs[1].steps] == ["R0", "R1"]  # the slow stack's own resources
    everything = sum(leg.seconds for leg in legs) + critical_path(STACKS["quick"])[-1].finished_at
    assert legs[-1].finished_at < everything  # the quick stack does not count: it deploys beside the slow one


def test_critical_path_across_stacks_of_one_stack_is_its_own_path():
    (leg,) = stacks_critical_path({"root": STACKS["root"]}, {"root": ()})
    assert (leg.stack, leg.starts_at, leg.finished_at) == ("root", 0, 25)


def test_dot_of_several_stacks_has_a_cluster_per_stack_and_a_dashed_arrow_per_reference():
    dot = stacks_to_dot(STACKS, name="dev")
    assert dot.startswith("digraph dev {")
    assert all(f'subgraph "cluster_{stack}" {{' in dot for stack in STACKS)
    assert '"slow.R1" -> "slow.R0";' in dot
    assert '"slow.R0" -> "slow.RootLast";' in dot  # the resource that takes the parameter
    assert '"slow.RootLast" -> "root.R1" [style=dashed];' in dot  # root's output Last is R1
    assert '"tail.SlowLast" -> "slow.R1" [style=dashed];' in dot


def test_graph_command_of_several_stacks_prints_the_path_across_them(tmp_path):
    root = graph_project(tmp_path / "p", {"a": [], "b": [("a", "TopicArn")], "c": [("b", "TopicArn")], "d": []}, "g")
    result = cfnbuild(root, "graph", "--env", "dev")
    assert result.returncode == 0, result.stderr
    assert "critical path of output/dev/d.json" in result.stdout
    assert "critical path across the stacks of dev" in result.stdout
    summary = result.stdout.strip().splitlines()[-1]
    assert summary == (
        "critical path across 4 stacks: a (0m10s) → b (0m10s) → c (0m10s); 3 resources, about 0m30s to deploy "
        "(stacks side by side overlap)"
    )
    dot = cfnbuild(root, "graph", "--env", "dev", "--dot")
    assert dot.returncode == 0, dot.stderr
    assert dot.stdout.count("subgraph") == 4
    assert '"c.BTopicArn" -> "b.Topic" [style=dashed];' in dot.stdout
