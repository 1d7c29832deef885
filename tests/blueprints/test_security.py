"""The security-groups blueprint: each tier open only to the tier in front of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from troposphere import Ref

from blueprints.encryption import Keys, KeysInputs
from blueprints.network import Network, NetworkInputs
from blueprints.security import SecurityGroups, SecurityGroupsInputs
from cfnbuild import InputError, Stack
from cfnbuild.build.lint import cfn_lint, checkov
from tests.assertions import Match, TemplateAssert, matches

GROUPS = ("AlbSecurityGroup", "AppSecurityGroup", "DbSecurityGroup")
LOOPBACK_RULE = {
    "IpProtocol": "-1",
    "CidrIp": "127.0.0.1/32",
    "Description": Match.any(),
}


def _group_id(name: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [name, "GroupId"]}


def _groups(**inputs: Any) -> TemplateAssert:
    stack = Stack("sg", description="d", project="p", environment="dev")
    SecurityGroups(stack, SecurityGroupsInputs(vpc_id=Ref("Vpc"), **inputs))
    return TemplateAssert(stack.to_dict())


def _rules(t: TemplateAssert, group: str, kind: str) -> list[dict[str, Any]]:
    """Every rule of ``kind`` ("Ingress"/"Egress") on ``group``: inline ones and separate resources."""
    inline = t.resources[group]["Properties"].get(f"SecurityGroup{kind}", [])
    separate = [
        {k: v for k, v in r["Properties"].items() if k != "GroupId"}
        for r in t.of_type(f"AWS::EC2::SecurityGroup{kind}").values()
        if r["Properties"]["GroupId"] == _group_id(group)
    ]
    return [*inline, *separate]


def _without_description(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(({k: v for k, v in r.items() if k != "Description"} for r in rules), key=repr)


def test_three_groups_in_the_vpc_each_with_a_description_and_a_name_tag():
    t = _groups()
    t.resource_count_is("AWS::EC2::SecurityGroup", 3)
    for name in GROUPS:
        props = t.resources[name]["Properties"]
        assert props["VpcId"] == {"Ref": "Vpc"}
        assert len(props["GroupDescription"]) > 10
        assert "GroupName" not in props  # named by CloudFormation, never collides
        assert [tag["Key"] for tag in props["Tags"]].count("Name") == 1


def test_every_rule_inline_or_separate_has_a_description():
    t = _groups()
    for name in GROUPS:
        for rule in _rules(t, name, "Ingress") + _rules(t, name, "Egress"):
            assert len(rule.get("Description", "")) > 5, (name, rule)


def test_alb_accepts_https_and_http_from_the_internet_and_reaches_only_the_app_port():
    t = _groups(app_port=8080)
    assert _without_description(_rules(t, "AlbSecurityGroup", "Ingress")) == _without_description(
        [
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"},
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "0.0.0.0/0"},
        ]
    )
    assert _without_description(_rules(t, "AlbSecurityGroup", "Egress")) == _without_description(
        [
            {"IpProtocol": "-1", "CidrIp": "127.0.0.1/32"},
            {
                "IpProtocol": "tcp",
                "FromPort": 8080,
                "ToPort": 8080,
                "DestinationSecurityGroupId": _group_id("AppSecurityGroup"),
            },
        ]
    )


def test_without_https_the_alb_opens_only_port_80():
    t = _groups(https=False)
    ports = [r["FromPort"] for r in _rules(t, "AlbSecurityGroup", "Ingress")]
    assert ports == [80]


def test_app_accepts_only_the_alb_and_reaches_https_and_the_database_port():
    t = _groups(app_port=8080, db_port=3307)
    assert _without_description(_rules(t, "AppSecurityGroup", "Ingress")) == [
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "SourceSecurityGroupId": _group_id("AlbSecurityGroup")}
    ]
    assert _without_description(_rules(t, "AppSecurityGroup", "Egress")) == _without_description(
        [
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"},
            {
                "IpProtocol": "tcp",
                "FromPort": 3307,
                "ToPort": 3307,
                "DestinationSecurityGroupId": _group_id("DbSecurityGroup"),
            },
        ]
    )


def test_database_accepts_only_the_app_on_the_database_port_and_reaches_nothing():
    t = _groups(db_port=5432)
    assert _without_description(_rules(t, "DbSecurityGroup", "Ingress")) == [
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "SourceSecurityGroupId": _group_id("AppSecurityGroup")}
    ]
    assert _without_description(_rules(t, "DbSecurityGroup", "Egress")) == [
        {"IpProtocol": "-1", "CidrIp": "127.0.0.1/32"}
    ]


def test_seed_05_every_group_declares_scoped_egress_and_none_keeps_the_default_allow_all():
    t = _groups()
    for name in GROUPS:
        inline = t.resources[name]["Properties"].get("SecurityGroupEgress")
        # Only inline egress removes AWS's default allow-all rule; a separate resource does not.
        assert inline, f"{name} has no inline egress, so AWS adds allow-all egress"
        for rule in _rules(t, name, "Egress"):
            assert rule.get("Description"), (name, rule)
            if rule["IpProtocol"] == "-1":
                assert rule.get("CidrIp") == "127.0.0.1/32", f"{name} allows all protocols out: {rule}"
            if rule.get("CidrIp") == "0.0.0.0/0":
                assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 443, 443), (name, rule)
            assert "CidrIpv6" not in rule
    # The ALB and the database reach nowhere by CIDR except the loopback placeholder.
    for name in ("AlbSecurityGroup", "DbSecurityGroup"):
        assert matches([LOOPBACK_RULE], t.resources[name]["Properties"]["SecurityGroupEgress"]), name
        cidr_rules = [r for r in _rules(t, name, "Egress") if "CidrIp" in r]
        assert [r["CidrIp"] for r in cidr_rules] == ["127.0.0.1/32"], name


def test_cross_group_rules_are_separate_resources_so_no_group_references_another():
    t = _groups()
    for name in GROUPS:
        props = t.resources[name]["Properties"]
        for rule in props.get("SecurityGroupIngress", []) + props.get("SecurityGroupEgress", []):
            assert "SourceSecurityGroupId" not in rule
            assert "DestinationSecurityGroupId" not in rule
    t.resource_count_is("AWS::EC2::SecurityGroupIngress", 2)
    t.resource_count_is("AWS::EC2::SecurityGroupEgress", 2)
    # CloudFormation infers every order from GetAtt; nothing needs DependsOn.
    assert not [k for k, v in t.resources.items() if "DependsOn" in v]


def test_only_the_alb_group_skips_the_public_port_80_check_with_a_reason():
    t = _groups()
    skipped = {
        name: [s["id"] for s in r.get("Metadata", {}).get("checkov", {}).get("skip", [])]
        for name, r in t.resources.items()
    }
    assert skipped == {
        "AlbSecurityGroup": ["CKV_AWS_260"],
        "AppSecurityGroup": [],
        "DbSecurityGroup": [],
        "AlbToAppEgress": [],
        "AppFromAlbIngress": [],
        "AppToDbEgress": [],
        "DbFromAppIngress": [],
    }
    (skip,) = t.resources["AlbSecurityGroup"]["Metadata"]["checkov"]["skip"]
    assert "public entry point" in skip["comment"]


def test_outputs_are_the_group_ids_for_the_next_stack_with_no_export():
    t = _groups()
    for output, group in (
        ("AlbSecurityGroupId", "AlbSecurityGroup"),
        ("AppSecurityGroupId", "AppSecurityGroup"),
        ("DbSecurityGroupId", "DbSecurityGroup"),
    ):
        t.has_output(
            output,
            {
                "Value": _group_id(group),
                "Export": Match.absent(),
                "Description": Match.any(),
            },
        )


def test_typed_attributes_hold_the_group_ids():
    stack = Stack("sg", description="d", project="p", environment="dev")
    groups = SecurityGroups(stack, SecurityGroupsInputs(vpc_id=Ref("Vpc")))
    assert groups.alb_group_id.to_dict() == _group_id("AlbSecurityGroup")
    assert groups.app_group_id.to_dict() == _group_id("AppSecurityGroup")
    assert groups.db_group_id.to_dict() == _group_id("DbSecurityGroup")
    assert groups.db_group.title == "DbSecurityGroup"


def test_a_prefix_lets_the_blueprint_be_used_twice():
    stack = Stack("sg", description="d", project="p", environment="dev")
    SecurityGroups(stack, SecurityGroupsInputs(vpc_id=Ref("Vpc")))
    SecurityGroups(stack, SecurityGroupsInputs(vpc_id=Ref("Vpc")), prefix="Admin")
    t = TemplateAssert(stack.to_dict())
    t.resource_count_is("AWS::EC2::SecurityGroup", 6)
    assert t.resources["AdminAppFromAlbIngress"]["Properties"]["SourceSecurityGroupId"] == _group_id(
        "AdminAlbSecurityGroup"
    )


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"app_port": 0}, "SecurityGroups input 'app_port': is 0; use a TCP port from 1 to 65535"),
        ({"db_port": 70000}, "SecurityGroups input 'db_port': is 70000; use a TCP port from 1 to 65535"),
        ({"app_port": True}, "SecurityGroups input 'app_port': expected int, got bool True; pass a whole number"),
    ],
)
def test_incompatible_inputs_are_rejected_when_the_blueprint_is_made(inputs, message):
    with pytest.raises(InputError, match=message):
        _groups(**inputs)


def test_gate_zero_cfn_lint_and_checkov_findings(tmp_path: Path):
    stack = Stack("sg", description="Security groups gate", project="p", environment="dev")
    keys = Keys(stack, KeysInputs())
    net = Network(stack, NetworkInputs(flow_log_key_arn=keys.logs_key_arn))
    SecurityGroups(stack, SecurityGroupsInputs(vpc_id=net.vpc_id))
    text = stack.to_json()
    findings = cfn_lint(text, ["eu-west-1", "eu-central-1", "us-east-1"], file="t.json")
    assert not findings, "\n".join(map(str, findings))
    path = tmp_path / "t.json"
    path.write_text(text)
    findings = checkov([path], root=tmp_path)
    assert not findings, "\n".join(map(str, findings))
