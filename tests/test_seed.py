"""The 18 ways generated infrastructure for this stack failed (../shared/seed/failure-analysis.md).

Each item has at least one test named ``test_seed_NN_...`` that fails if the mistake comes back;
this file proves that, and holds the items that concern the whole stack rather than one blueprint.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from cfnbuild.build.graph import dependencies
from cfnbuild.project.app import load_project
from cfnbuild.project.writer import render

ROOT = Path(__file__).resolve().parent.parent
PROJECT = load_project(ROOT)
# Every stack of every environment, by "<env>/<stack>": the flagship is three stacks, network → data → webapp.
TEMPLATES = {f"{r.environment}/{r.stack}": json.loads(r.text) for r in render(PROJECT, PROJECT.environments())}
ENVIRONMENTS = sorted({key.split("/")[0] for key in TEMPLATES})


def _seed_tests() -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for path in (ROOT / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and (match := re.match(r"test_seed_(\d\d)_", node.name)):
                found.setdefault(int(match.group(1)), []).append(f"{path.relative_to(ROOT)}::{node.name}")
    return found


def test_every_seed_item_has_a_test_named_after_it():
    found = _seed_tests()
    missing = [n for n in range(1, 19) if n not in found]
    assert not missing, f"seed items without a test_seed_NN_ test: {missing}"


def test_seed_15_every_blueprint_has_its_test_file_with_a_lint_and_checkov_gate():
    modules = [p.stem for p in (ROOT / "blueprints").glob("*.py") if p.stem not in ("__init__", "app", "webapp")]
    assert len(modules) >= 10
    for module in modules:
        test_file = ROOT / "tests/blueprints" / f"test_{module}.py"
        assert test_file.is_file(), f"blueprints/{module}.py has no tests/blueprints/test_{module}.py"
    for module in ("network", "security", "storage", "database", "compute", "loadbalancer", "observability", "budget"):
        text = (ROOT / "tests/blueprints" / f"test_{module}.py").read_text()
        if module == "network":
            continue  # the network's gates run over the whole stack in tests/test_output.py
        assert "cfn_lint" in text, f"test_{module}.py has no cfn-lint gate test"
        assert "checkov" in text, f"test_{module}.py has no checkov gate test"


# What an integration test or an operator needs from the stack, by output name (item 16).
REQUIRED_OUTPUTS = {
    "VpcId", "PublicSubnetIds", "AppSubnetIds", "DataSubnetIds",
    "AlbDnsName", "AppUrl", "AlbArn", "TargetGroupArn",
    "AutoScalingGroupName", "LaunchTemplateId", "InstanceRoleArn",
    "DbClusterEndpoint", "DbReaderEndpoint", "DbPort", "DbSecretArn",
    "AssetsBucketName", "AssetsBucketArn", "LogBucketName", "LogBucketArn",
    "AppLogGroupName", "NginxAccessLogGroupName", "NginxErrorLogGroupName", "BootstrapLogGroupName",
    "FlowLogGroupName", "AlarmTopicArn",
}  # fmt: skip


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_seed_16_outputs_cover_ids_endpoints_and_arns_each_described_and_none_exported(environment):
    stacks = {key: template for key, template in TEMPLATES.items() if key.startswith(environment + "/")}
    assert len(stacks) == 3, f"{environment}: the network, data and webapp stacks"
    outputs = {name: output for template in stacks.values() for name, output in template["Outputs"].items()}
    assert sum(len(template["Outputs"]) for template in stacks.values()) == len(outputs), "one name, one output"
    missing = REQUIRED_OUTPUTS - set(outputs)
    assert not missing, f"{environment}: missing outputs {sorted(missing)}"
    for name, output in outputs.items():
        assert output.get("Description"), f"{environment}: output {name} has no description"
        assert "Export" not in output, f"{environment}: output {name} is exported; stacks take it with stack.use"
        assert "resolve:secretsmanager" not in json.dumps(output), f"{environment}: output {name} leaks a secret"


@pytest.mark.parametrize("environment", sorted(TEMPLATES))
def test_seed_18_no_depends_on_repeats_what_a_reference_already_implies(environment):
    template = TEMPLATES[environment]
    implied = {
        logical_id: dependencies({"Resources": {logical_id: {**resource, "DependsOn": []}, **{
            other: r for other, r in template["Resources"].items() if other != logical_id}}})[logical_id]
        for logical_id, resource in template["Resources"].items()
    }  # fmt: skip
    for logical_id, resource in template["Resources"].items():
        depends = resource.get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else depends
        redundant = set(depends) & implied[logical_id]
        assert not redundant, f"{environment}: {logical_id} DependsOn {sorted(redundant)}, which it references already"


# Properties that set a resource's physical name (a literal one collides between two stacks).
PHYSICAL_NAME_PROPERTIES = {
    "AlarmName", "AssociationName", "AutoScalingGroupName", "BucketName", "BudgetName", "DBClusterIdentifier",
    "DBClusterParameterGroupName", "DBInstanceIdentifier", "DBSubnetGroupName", "GroupName",
    "InstanceProfileName", "LaunchTemplateName", "LogGroupName", "ManagedPolicyName", "Name",
    "QueueName", "RoleName", "TopicName",
}  # fmt: skip
# Where one of those properties names something else: an association's Name is the SSM document
# it runs (AWS's own runbook); the association's name is AssociationName.
NOT_A_PHYSICAL_NAME = {("AWS::SSM::Association", "Name")}


@pytest.mark.parametrize("environment", sorted(TEMPLATES))
def test_seed_07_no_physical_name_is_a_bare_literal(environment):
    for logical_id, resource in TEMPLATES[environment]["Resources"].items():
        for key, value in resource.get("Properties", {}).items():
            if (resource["Type"], key) in NOT_A_PHYSICAL_NAME:
                continue
            if key in PHYSICAL_NAME_PROPERTIES and isinstance(value, str):
                pytest.fail(f"{environment}: {logical_id}.{key} is the literal {value!r}")
