import subprocess
import sys

from cfnbuild.build.graph import TYPICAL_SECONDS, critical_path, dependencies, to_dot

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
