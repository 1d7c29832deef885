"""The plan: change sets merged with cfnbuild's stateful marks, widening checks and NoEcho masking.

Change-set responses are written as botocore returns them from AWS for DescribeChangeSet with
IncludePropertyValues=True (shapes from the CloudFormation API reference, "ResourceChange" and
"ResourceTargetDefinition"). moto 5 returns only Action, LogicalResourceId and ResourceType for
each change (no Replacement, PhysicalResourceId, PolicyAction or Details) and returns NoEcho
parameter values in clear; every field beyond those is hand-written here, and
test_plan_from_a_real_moto_change_set covers what moto itself returns.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from cfnbuild.deploy.plan import (
    FORMAT,
    Plan,
    build_plan,
    load_plan,
    render_json,
    render_markdown,
    render_text,
    save_plan,
)
from cfnbuild.errors import UsageError

ROOT = Path(__file__).resolve().parents[3]
STATEFUL = {"cfnbuild": {"stateful": True}}
STACK_ARN = "arn:aws:cloudformation:eu-west-1:123456789012:stack/webapp-dev/6e4b6a10-0d1f-11ef-9a0b-0a1b2c3d4e5f"
CHANGE_SET_ARN = (
    "arn:aws:cloudformation:eu-west-1:123456789012:changeSet/cfnbuild-1/0d9b2a54-7c1e-4d3f-8a55-5e0f1c2b3a4d"
)
SECRET = "s3cr3t-Pa55word"  # noqa: S105  (a made-up NoEcho value the plan must never show)


def detail(
    path: str,
    before: Any,
    after: Any,
    *,
    recreation: str = "Never",
    attribute: str = "Properties",
    change_type: str = "Modify",
    source: str = "DirectModification",
    causing: str | None = None,
    evaluation: str = "Static",
) -> dict[str, Any]:
    """One ResourceChangeDetail; Before/AfterValue are strings (JSON text for objects and arrays)."""
    target: dict[str, Any] = {
        "Attribute": attribute,
        "Name": path.split("/")[2] if path.count("/") >= 2 else path,
        "RequiresRecreation": recreation,
        "Path": path,
        "AttributeChangeType": change_type,
    }
    if before is not None:
        target["BeforeValue"] = before if isinstance(before, str) else json.dumps(before)
    if after is not None:
        target["AfterValue"] = after if isinstance(after, str) else json.dumps(after)
    result: dict[str, Any] = {"Target": target, "Evaluation": evaluation, "ChangeSource": source}
    if causing:
        result["CausingEntity"] = causing
    return result


def change(
    logical_id: str,
    resource_type: str,
    action: str,
    *,
    replacement: str | None = None,
    physical_id: str | None = None,
    policy_action: str | None = None,
    details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One Change as DescribeChangeSet returns it."""
    resource: dict[str, Any] = {"Action": action, "LogicalResourceId": logical_id, "ResourceType": resource_type}
    if physical_id:
        resource["PhysicalResourceId"] = physical_id
    if replacement:
        resource["Replacement"] = replacement
    if policy_action:
        resource["PolicyAction"] = policy_action
    if action in ("Modify", "Dynamic"):
        resource["Scope"] = sorted({d["Target"]["Attribute"] for d in details or []})
        resource["Details"] = details or []
    return {"Type": "Resource", "HookInvocationCount": 0, "ResourceChange": resource}


def change_set(changes: list[dict[str, Any]], parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """A DescribeChangeSet response with the Changes of all pages concatenated."""
    return {
        "ChangeSetName": "cfnbuild-1",
        "ChangeSetId": CHANGE_SET_ARN,
        "StackId": STACK_ARN,
        "StackName": "webapp-dev",
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
        "ExecutionStatus": "AVAILABLE",
        "Status": "CREATE_COMPLETE",
        "Capabilities": ["CAPABILITY_IAM"],
        "Changes": changes,
        "IncludeNestedStacks": False,
    }


def template(resources: dict[str, Any], parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"AWSTemplateFormatVersion": "2010-09-09", "Parameters": parameters or {}, "Resources": resources}


def plan_of(
    changes: list[dict[str, Any]] | None,
    new: dict[str, Any],
    old: dict[str, Any] | None,
    *,
    new_parameters: dict[str, str] | None = None,
    old_parameters: dict[str, str] | None = None,
    new_tags: dict[str, str] | None = None,
    old_tags: dict[str, str] | None = None,
    change_set_parameters: dict[str, str] | None = None,
) -> Plan:
    return build_plan(
        stack_name="webapp-dev",
        change_set=None if changes is None else change_set(changes, change_set_parameters),
        new_template=new,
        old_template=old,
        new_parameters=new_parameters or {},
        old_parameters=old_parameters or {},
        new_tags=new_tags or {},
        old_tags=old_tags or {},
        template_hash="9f2c" * 16,
        stack_last_updated="2024-05-02T10:11:12+00:00",
    )


def db_cluster(kms_key: str = "LogsKey") -> dict[str, Any]:
    return {
        "Type": "AWS::RDS::DBCluster",
        "DeletionPolicy": "Snapshot",
        "UpdateReplacePolicy": "Snapshot",
        "Metadata": STATEFUL,
        "Properties": {"Engine": "aurora-mysql", "StorageEncrypted": True, "KmsKeyId": {"Ref": kms_key}},
    }


def bucket(stateful: bool = True) -> dict[str, Any]:
    resource: dict[str, Any] = {"Type": "AWS::S3::Bucket", "Properties": {}}
    if stateful:
        resource.update(DeletionPolicy="Retain", UpdateReplacePolicy="Retain", Metadata=STATEFUL)
    return resource


def role(statements: list[dict[str, Any]], managed: list[Any] | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "GrantAssumeRole",
                    "Effect": "Allow",
                    "Principal": {"Service": ["ec2.amazonaws.com"]},
                    "Action": ["sts:AssumeRole"],
                }
            ],
        },
        "Policies": [{"PolicyName": "grants", "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}],
    }
    if managed is not None:
        properties["ManagedPolicyArns"] = managed
    return {"Type": "AWS::IAM::Role", "Properties": properties}


def objects(path: str) -> dict[str, Any]:
    return {"Fn::Sub": [f"arn:${{AWS::Partition}}:s3:::${{Bucket}}/{path}", {"Bucket": {"Ref": "AssetsBucket"}}]}


READ_RELEASES = {
    "Sid": "GrantReadObjectsAssetsBucketReleases",
    "Effect": "Allow",
    "Action": ["s3:GetObject", "s3:GetObjectVersion"],
    "Resource": [objects("releases/*")],
}


def security_group(ingress: list[dict[str, Any]], egress: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "GroupDescription": "Application Load Balancer: web traffic from the internet",
        "VpcId": {"Ref": "Vpc"},
        "SecurityGroupIngress": ingress,
    }
    properties["SecurityGroupEgress"] = (
        egress if egress is not None else [{"CidrIp": "127.0.0.1/32", "IpProtocol": "-1", "Description": "No egress"}]
    )
    return {"Type": "AWS::EC2::SecurityGroup", "Properties": properties}


HTTPS_IN = {"CidrIp": "0.0.0.0/0", "FromPort": 443, "ToPort": 443, "IpProtocol": "tcp", "Description": "HTTPS"}


# ---------------------------------------------------------------------------------------------
# Counts, replacement and DANGER
# ---------------------------------------------------------------------------------------------


def test_counts_add_modify_replace_remove_with_a_replacing_modify_counted_as_replace() -> None:
    old = template({"Topic": {"Type": "AWS::SNS::Topic"}, "Queue": {"Type": "AWS::SQS::Queue"}, "Old": bucket(False)})
    new = template({"Topic": {"Type": "AWS::SNS::Topic"}, "Queue": {"Type": "AWS::SQS::Queue"}, "Log": bucket(False)})
    plan = plan_of(
        [
            change("Log", "AWS::S3::Bucket", "Add"),
            change(
                "Topic",
                "AWS::SNS::Topic",
                "Modify",
                replacement="False",
                details=[detail("/Properties/DisplayName", "one", "two")],
            ),
            change(
                "Queue",
                "AWS::SQS::Queue",
                "Modify",
                replacement="True",
                policy_action="ReplaceAndDelete",
                details=[detail("/Properties/QueueName", "q1", "q2", recreation="Always")],
            ),
            change("Old", "AWS::S3::Bucket", "Remove", physical_id="webapp-dev-old-1x2y", policy_action="Delete"),
        ],
        new,
        old,
    )
    assert plan.counts() == {"add": 1, "modify": 1, "replace": 1, "remove": 1, "import": 0}
    assert plan.has_changes
    assert plan.destructive
    assert plan.dangers == ()  # nothing here is marked stateful
    assert plan.change_set_id == CHANGE_SET_ARN
    assert plan.change_set_type == "UPDATE"


def test_replacing_a_stateful_db_cluster_is_a_danger_naming_the_forcing_property_and_the_snapshot() -> None:
    old = template({"DbCluster": db_cluster("LogsKey")})
    new = template({"DbCluster": db_cluster("DataKey")})
    plan = plan_of(
        [
            change(
                "DbCluster",
                "AWS::RDS::DBCluster",
                "Modify",
                replacement="True",
                physical_id="webapp-dev-dbcluster-8k2m1x",
                policy_action="ReplaceAndSnapshot",
                details=[
                    detail(
                        "/Properties/KmsKeyId",
                        "arn:aws:kms:eu-west-1:123456789012:key/1111",
                        "arn:aws:kms:eu-west-1:123456789012:key/2222",
                        recreation="Always",
                    )
                ],
            )
        ],
        new,
        old,
    )
    (cluster,) = plan.dangers
    assert cluster.logical_id == "DbCluster"
    assert cluster.stateful
    assert cluster.kind == "replace"
    assert "will be REPLACED because /Properties/KmsKeyId changes" in cluster.danger_reason
    assert "snapshots the old one" in cluster.danger_reason


def test_conditional_replacement_of_a_stateful_resource_is_a_danger_too() -> None:
    plan = plan_of(
        [
            change(
                "DbCluster",
                "AWS::RDS::DBCluster",
                "Modify",
                replacement="Conditional",
                details=[detail("/Properties/DBClusterParameterGroupName", "a", "b", recreation="Conditionally")],
            )
        ],
        template({"DbCluster": db_cluster()}),
        template({"DbCluster": db_cluster()}),
    )
    assert [c.logical_id for c in plan.dangers] == ["DbCluster"]
    assert "may be REPLACED" in plan.dangers[0].danger_reason


def test_replacing_a_resource_without_the_stateful_mark_is_destructive_but_not_a_danger() -> None:
    old = template({"AppSecurityGroup": security_group([HTTPS_IN])})
    new_group = security_group([HTTPS_IN])
    new_group["Properties"]["GroupDescription"] = "App instances"
    plan = plan_of(
        [
            change(
                "AppSecurityGroup",
                "AWS::EC2::SecurityGroup",
                "Modify",
                replacement="True",
                details=[detail("/Properties/GroupDescription", "a", "b", recreation="Always")],
            )
        ],
        template({"AppSecurityGroup": new_group}),
        old,
    )
    assert plan.destructive
    assert plan.dangers == ()
    assert plan.resources[0].danger_reason == ""


def test_removing_a_bucket_marked_stateful_only_in_the_deployed_template_is_a_danger() -> None:
    plan = plan_of(
        [change("AssetsBucket", "AWS::S3::Bucket", "Remove", physical_id="webapp-dev-assetsbucket-1a2b3c")],
        template({}),
        template({"AssetsBucket": bucket()}),
    )
    (removed,) = plan.dangers
    assert removed.stateful
    assert removed.physical_id == "webapp-dev-assetsbucket-1a2b3c"
    # No PolicyAction in the response: the deployed template's DeletionPolicy says what happens.
    assert "REMOVED from the stack: AWS keeps it (DeletionPolicy Retain)" in removed.danger_reason


def test_removing_a_stateful_resource_while_adding_one_of_its_type_warns_that_a_rename_does_not_move_data() -> None:
    plan = plan_of(
        [
            change("AssetsBucket", "AWS::S3::Bucket", "Remove", policy_action="Delete"),
            change("UploadsBucket", "AWS::S3::Bucket", "Add"),
        ],
        template({"UploadsBucket": bucket()}),
        template({"AssetsBucket": bucket()}),
    )
    removed = plan.dangers[0]
    assert "it is DELETED with its data" in removed.danger_reason
    assert any("UploadsBucket" in note and "rename does not move data" in note for note in removed.notes)


def test_dropping_a_retain_policy_from_a_stateful_resource_is_noted() -> None:
    weakened = bucket()
    del weakened["DeletionPolicy"]
    plan = plan_of(
        [
            change(
                "AssetsBucket",
                "AWS::S3::Bucket",
                "Modify",
                replacement="False",
                details=[detail("DeletionPolicy", "Retain", None, attribute="DeletionPolicy", change_type="Remove")],
            )
        ],
        template({"AssetsBucket": weakened}),
        template({"AssetsBucket": bucket()}),
    )
    assert plan.dangers == ()
    assert any(note.startswith("DeletionPolicy Retain → Delete") for note in plan.resources[0].notes)


def test_dangers_come_first_then_logical_ids_in_order() -> None:
    plan = plan_of(
        [
            change("Zeta", "AWS::SNS::Topic", "Add"),
            change("Beta", "AWS::S3::Bucket", "Remove"),
            change("Alpha", "AWS::SNS::Topic", "Add"),
        ],
        template({"Alpha": {"Type": "AWS::SNS::Topic"}, "Zeta": {"Type": "AWS::SNS::Topic"}}),
        template({"Beta": bucket()}),
    )
    assert [c.logical_id for c in plan.resources] == ["Beta", "Alpha", "Zeta"]


def test_no_change_set_is_a_plan_without_changes() -> None:
    same = template({"Topic": {"Type": "AWS::SNS::Topic"}})
    plan = plan_of(None, same, same, new_tags={"Owner": "platform"}, old_tags={"Owner": "platform"})
    assert plan.change_set_id is None
    assert not plan.has_changes
    assert not plan.destructive
    assert plan.counts() == {"add": 0, "modify": 0, "replace": 0, "remove": 0, "import": 0}


def test_before_and_after_values_are_json_decoded_only_when_objects_or_arrays_and_duplicates_dropped() -> None:
    rules_before = [{"CidrIp": "10.0.0.0/8", "FromPort": 443, "IpProtocol": "tcp", "ToPort": 443}]
    plan = plan_of(
        [
            change(
                "Topic",
                "AWS::SNS::Topic",
                "Modify",
                replacement="False",
                details=[
                    detail("/Properties/DisplayName", "123", "true"),
                    detail("/Properties/DisplayName", "123", "true", evaluation="Dynamic"),
                    detail("/Properties/Subscription", rules_before, []),
                ],
            )
        ],
        template({"Topic": {"Type": "AWS::SNS::Topic"}}),
        template({"Topic": {"Type": "AWS::SNS::Topic"}}),
    )
    display, subscription = plan.resources[0].details
    assert (display.before, display.after) == ("123", "true")  # scalars stay as sent
    assert subscription.before == rules_before
    assert subscription.after == []


@pytest.mark.parametrize(
    "reported",
    [
        {"ParameterKey": "ImageId", "ParameterValue": "/custom/ami"},  # AWS (and moto) resolve it
        {"ParameterKey": "ImageId", "UsePreviousValue": True},
    ],
    ids=["resolved", "use-previous-value"],
)
def test_a_parameter_sent_with_use_previous_value_is_not_a_change_even_when_it_has_a_default(
    reported: dict[str, Any],
) -> None:
    parameters = {"ImageId": {"Type": "String", "Default": "/aws/default/ami"}, "Env": {"Type": "String"}}
    same = template({"Topic": {"Type": "AWS::SNS::Topic"}}, parameters)
    described = change_set([])
    described["Parameters"] = [reported, {"ParameterKey": "Env", "ParameterValue": "dev"}]
    plan = build_plan(
        stack_name="webapp-dev",
        change_set=described,
        new_template=same,
        old_template=same,
        new_parameters={"Env": "dev"},  # ImageId went with UsePreviousValue
        old_parameters={"ImageId": "/custom/ami", "Env": "dev"},
        new_tags={},
        old_tags={},
        template_hash="0" * 64,
        stack_last_updated=None,
    )
    assert plan.parameters == ()
    assert not plan.has_changes


# ---------------------------------------------------------------------------------------------
# NoEcho
# ---------------------------------------------------------------------------------------------

NO_ECHO_PARAMETERS = {
    "DbPassword": {"Type": "String", "NoEcho": True, "Description": "Master password"},
    "Env": {"Type": "String"},
}


def test_no_echo_parameter_is_masked_in_parameter_changes_and_parameter_values() -> None:
    resources = {"Topic": {"Type": "AWS::SNS::Topic"}}
    plan = plan_of(
        [],
        template(resources, NO_ECHO_PARAMETERS),
        template(resources, NO_ECHO_PARAMETERS),
        new_parameters={"DbPassword": SECRET, "Env": "prod"},
        old_parameters={"DbPassword": "old-Pa55word", "Env": "dev"},
        change_set_parameters={"DbPassword": SECRET, "Env": "prod"},  # moto returns NoEcho values in clear
    )
    by_name = {p.name: p for p in plan.parameters}
    assert by_name["DbPassword"].no_echo
    assert (by_name["DbPassword"].before, by_name["DbPassword"].after) == ("****", "****")
    assert (by_name["Env"].before, by_name["Env"].after) == ("dev", "prod")
    assert plan.parameter_values == {"DbPassword": "****", "Env": "prod"}
    assert SECRET not in render_json(plan)


def test_no_echo_parameter_read_back_as_stars_counts_as_changed_only_when_the_change_set_names_it() -> None:
    resources = {"DbCluster": db_cluster()}
    kwargs: dict[str, Any] = {
        "new_parameters": {"DbPassword": SECRET, "Env": "dev"},
        "old_parameters": {"DbPassword": "****", "Env": "dev"},  # DescribeStacks masks NoEcho values
    }
    unchanged = plan_of([], template(resources, NO_ECHO_PARAMETERS), template(resources, NO_ECHO_PARAMETERS), **kwargs)
    assert unchanged.parameters == ()
    rotated = plan_of(
        [
            change(
                "DbCluster",
                "AWS::RDS::DBCluster",
                "Modify",
                replacement="False",
                details=[
                    detail(
                        "/Properties/MasterUserPassword",
                        "****",
                        "****",
                        source="ParameterReference",
                        causing="DbPassword",
                    )
                ],
            )
        ],
        template(resources, NO_ECHO_PARAMETERS),
        template(resources, NO_ECHO_PARAMETERS),
        **kwargs,
    )
    assert [(p.name, p.before, p.after) for p in rotated.parameters] == [("DbPassword", "****", "****")]


def test_no_echo_value_is_masked_in_property_values_reported_whole_or_embedded() -> None:
    resources = {"DbUrl": {"Type": "AWS::SSM::Parameter", "Properties": {"Type": "String"}}}
    plan = plan_of(
        [
            change(
                "DbUrl",
                "AWS::SSM::Parameter",
                "Modify",
                replacement="False",
                details=[
                    detail(
                        "/Properties/Value", "old-Pa55word", SECRET, source="ParameterReference", causing="DbPassword"
                    ),
                    detail("/Properties/Tags", {"url": "mysql://old"}, {"url": f"mysql://app:{SECRET}@db:3306/app"}),
                    detail("/Properties/Description", "****", "****"),
                ],
            )
        ],
        template(resources, NO_ECHO_PARAMETERS),
        template(resources, NO_ECHO_PARAMETERS),
        new_parameters={"DbPassword": SECRET, "Env": "dev"},
        old_parameters={"DbPassword": "old-Pa55word", "Env": "dev"},
    )
    value, tags, description = plan.resources[0].details
    assert (value.before, value.after) == ("****", "****")
    assert tags.after == {"url": "mysql://app:****@db:3306/app"}
    assert (description.before, description.after) == ("****", "****")
    console = Console(record=True, width=120)
    render_text(plan, console)
    for rendered in (render_json(plan), render_markdown(plan), console.export_text()):
        assert SECRET not in rendered
        assert "old-Pa55word" not in rendered


# ---------------------------------------------------------------------------------------------
# Widening
# ---------------------------------------------------------------------------------------------


def _role_plan(old_statements: list[dict[str, Any]], new_statements: list[dict[str, Any]], **role_kwargs: Any) -> Plan:
    return plan_of(
        [change("InstanceRole", "AWS::IAM::Role", "Modify", replacement="False")],
        template({"InstanceRole": role(new_statements, **role_kwargs)}),
        template({"InstanceRole": role(old_statements)}),
    )


def test_iam_role_gaining_an_action_on_a_bucket_prefix_is_widening() -> None:
    write = {"Sid": "GrantWrite", "Effect": "Allow", "Action": ["s3:PutObject"], "Resource": [objects("uploads/*")]}
    plan = _role_plan([READ_RELEASES], [READ_RELEASES, write])
    assert plan.resources[0].widening == ("InstanceRole: grants s3:PutObject on AssetsBucket/uploads/* (new)",)


def test_iam_role_gaining_a_wildcard_action_on_any_resource_and_a_managed_policy_is_widening() -> None:
    admin = {"Sid": "GrantAll", "Effect": "Allow", "Action": "s3:*", "Resource": "*"}
    plan = _role_plan(
        [READ_RELEASES],
        [READ_RELEASES, admin],
        managed=[{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AdministratorAccess"}],
    )
    assert plan.resources[0].widening == (
        "InstanceRole: grants s3:* on * (new; wildcard action; any resource)",
        "InstanceRole: attaches managed policy iam::aws:policy/AdministratorAccess",
    )


def test_iam_narrowing_is_not_reported_as_widening() -> None:
    broad = {"Sid": "GrantRead", "Effect": "Allow", "Action": ["s3:Get*"], "Resource": [objects("*")]}
    narrow = {"Sid": "GrantRead", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [objects("releases/*")]}
    assert _role_plan([broad], [narrow]).resources[0].widening == ()
    assert _role_plan([broad, READ_RELEASES], [READ_RELEASES]).resources[0].widening == ()


def test_iam_grant_losing_its_condition_is_widening() -> None:
    conditioned = {
        "Sid": "GrantPutMetrics",
        "Effect": "Allow",
        "Action": ["cloudwatch:PutMetricData"],
        "Resource": ["*"],
        "Condition": {"StringEquals": {"cloudwatch:namespace": "WebApp"}},
    }
    unconditioned = {k: v for k, v in conditioned.items() if k != "Condition"}
    (sentence,) = _role_plan([conditioned], [unconditioned]).resources[0].widening
    assert sentence == "InstanceRole: grants cloudwatch:PutMetricData on * (condition changed; any resource)"


def test_bucket_policy_gaining_a_principal_or_losing_a_deny_is_widening() -> None:
    deny_insecure = {
        "Sid": "GrantDenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": ["s3:*"],
        "Resource": [objects("*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    public_read = {
        "Sid": "GrantPublicRead",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": ["s3:GetObject"],
        "Resource": [objects("*")],
    }

    def policy(statements: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": "AssetsBucket"},
                "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
            },
        }

    plan = plan_of(
        [change("AssetsBucketPolicy", "AWS::S3::BucketPolicy", "Modify", replacement="False")],
        template({"AssetsBucketPolicy": policy([public_read])}),
        template({"AssetsBucketPolicy": policy([deny_insecure])}),
    )
    assert plan.resources[0].widening == (
        "AssetsBucketPolicy: lets anyone (*) s3:GetObject on AssetsBucket/* (new)",
        "AssetsBucketPolicy: no longer denies s3:* on AssetsBucket/* to anyone (*) (Deny removed)",
    )


def test_security_group_opening_ssh_to_the_internet_is_widening() -> None:
    ssh = {"CidrIp": "0.0.0.0/0", "FromPort": 22, "ToPort": 22, "IpProtocol": "tcp", "Description": "SSH"}
    plan = plan_of(
        [
            change(
                "AlbSecurityGroup",
                "AWS::EC2::SecurityGroup",
                "Modify",
                replacement="False",
                details=[detail("/Properties/SecurityGroupIngress", [HTTPS_IN], [HTTPS_IN, ssh], change_type="Modify")],
            )
        ],
        template({"AlbSecurityGroup": security_group([HTTPS_IN, ssh])}),
        template({"AlbSecurityGroup": security_group([HTTPS_IN])}),
    )
    assert plan.resources[0].widening == ("AlbSecurityGroup: opens 22/tcp to 0.0.0.0/0 (anywhere)",)


def test_standalone_ingress_and_egress_rules_and_a_group_losing_its_egress_rules_are_widening() -> None:
    ingress = {
        "Type": "AWS::EC2::SecurityGroupIngress",
        "Properties": {
            "GroupId": {"Fn::GetAtt": ["DbSecurityGroup", "GroupId"]},
            "IpProtocol": "tcp",
            "FromPort": 3306,
            "ToPort": 3306,
            "CidrIpv6": "::/0",
        },
    }
    plan = plan_of(
        [
            change("DbFromAnywhere", "AWS::EC2::SecurityGroupIngress", "Add"),
            change("AppSecurityGroup", "AWS::EC2::SecurityGroup", "Modify", replacement="False"),
        ],
        template({"DbFromAnywhere": ingress, "AppSecurityGroup": security_group([], egress=[])}),
        template({"AppSecurityGroup": security_group([])}),
    )
    widening = {c.logical_id: c.widening for c in plan.resources}
    assert widening["DbFromAnywhere"] == ("DbFromAnywhere (DbSecurityGroup): opens 3306/tcp to ::/0 (anywhere)",)
    assert widening["AppSecurityGroup"] == (
        "AppSecurityGroup: allows all traffic out to 0.0.0.0/0 "
        "(anywhere; default egress rule: the group declares none)",
    )


def test_security_group_narrowing_is_not_reported_as_widening() -> None:
    web = {"CidrIp": "0.0.0.0/0", "FromPort": 80, "ToPort": 443, "IpProtocol": "tcp"}
    narrower = {"CidrIp": "10.0.0.0/8", "FromPort": 443, "ToPort": 443, "IpProtocol": "tcp"}
    plan = plan_of(
        [change("AlbSecurityGroup", "AWS::EC2::SecurityGroup", "Modify", replacement="False")],
        template({"AlbSecurityGroup": security_group([narrower])}),
        template({"AlbSecurityGroup": security_group([web])}),
    )
    assert plan.resources[0].widening == ()


def test_security_group_rule_from_a_parameter_is_judged_by_the_parameter_value() -> None:
    parameters = {"AdminCidr": {"Type": "String", "Default": "10.0.0.0/8"}}
    admin = {"CidrIp": {"Ref": "AdminCidr"}, "FromPort": 22, "ToPort": 22, "IpProtocol": "tcp"}
    group = template({"AlbSecurityGroup": security_group([admin])}, parameters)
    plan = plan_of(
        [change("AlbSecurityGroup", "AWS::EC2::SecurityGroup", "Modify", replacement="False")],
        group,
        copy.deepcopy(group),
        new_parameters={"AdminCidr": "0.0.0.0/0"},
        old_parameters={"AdminCidr": "10.0.0.0/8"},
    )
    assert plan.resources[0].widening == ("AlbSecurityGroup: opens 22/tcp to 0.0.0.0/0 (anywhere)",)
    assert [(p.name, p.before, p.after) for p in plan.parameters] == [("AdminCidr", "10.0.0.0/8", "0.0.0.0/0")]


def test_creating_the_real_network_stack_reports_the_public_alb_but_not_the_loopback_egress_placeholder() -> None:
    webapp = json.loads((ROOT / "output" / "dev" / "network.json").read_text())  # the security groups live there
    plan = plan_of(
        [change(name, resource["Type"], "Add") for name, resource in webapp["Resources"].items()], webapp, None
    )
    assert plan.change_set_type == "CREATE"
    assert plan.dangers == ()
    assert "AlbSecurityGroup: opens 443/tcp to 0.0.0.0/0 (anywhere)" in plan.widening
    assert not any("127.0.0.1" in sentence for sentence in plan.widening)


@pytest.mark.parametrize("stack", ["network", "data", "webapp"])
def test_an_unchanged_real_template_widens_nothing(stack: str) -> None:
    webapp = json.loads((ROOT / "output" / "dev" / f"{stack}.json").read_text())
    plan = plan_of(
        [
            change(name, resource["Type"], "Modify", replacement="False")
            for name, resource in webapp["Resources"].items()
        ],
        webapp,
        copy.deepcopy(webapp),
    )
    assert plan.widening == ()


# ---------------------------------------------------------------------------------------------
# Tags
# ---------------------------------------------------------------------------------------------


def test_stack_tag_changes_list_added_changed_and_removed_keys_and_skip_unchanged() -> None:
    same = template({"Topic": {"Type": "AWS::SNS::Topic"}})
    plan = plan_of(
        [],
        same,
        same,
        new_tags={"Owner": "data-team", "CostCenter": "dev-1001", "Project": "webapp"},
        old_tags={"Owner": "platform-team", "Environment": "dev", "Project": "webapp"},
    )
    assert [(t.key, t.before, t.after) for t in plan.tags] == [
        ("CostCenter", None, "dev-1001"),
        ("Environment", "dev", None),
        ("Owner", "platform-team", "data-team"),
    ]
    assert plan.has_changes


# ---------------------------------------------------------------------------------------------
# JSON, save and load
# ---------------------------------------------------------------------------------------------


def _full_plan() -> Plan:
    old = template(
        {"DbCluster": db_cluster("LogsKey"), "AssetsBucket": bucket(), "InstanceRole": role([READ_RELEASES])},
        NO_ECHO_PARAMETERS,
    )
    write = {"Sid": "GrantWrite", "Effect": "Allow", "Action": ["s3:PutObject"], "Resource": [objects("uploads/*")]}
    new = template(
        {
            "DbCluster": db_cluster("DataKey"),
            "InstanceRole": role([READ_RELEASES, write]),
            "Topic": {"Type": "AWS::SNS::Topic"},
        },
        NO_ECHO_PARAMETERS,
    )
    return plan_of(
        [
            change("Topic", "AWS::SNS::Topic", "Add"),
            change(
                "InstanceRole",
                "AWS::IAM::Role",
                "Modify",
                replacement="False",
                physical_id="webapp-dev-InstanceRole-1AB2CD",
                details=[detail("/Properties/Policies/0/PolicyDocument/Statement/1", None, write, change_type="Add")],
            ),
            change(
                "DbCluster",
                "AWS::RDS::DBCluster",
                "Modify",
                replacement="True",
                policy_action="ReplaceAndSnapshot",
                details=[detail("/Properties/KmsKeyId", "key/1111", "key/2222", recreation="Always")],
            ),
            change("AssetsBucket", "AWS::S3::Bucket", "Remove", policy_action="Retain"),
        ],
        new,
        old,
        new_parameters={"DbPassword": SECRET, "Env": "prod"},
        old_parameters={"DbPassword": "****", "Env": "dev"},
        new_tags={"Owner": "data-team"},
        old_tags={"Owner": "platform-team"},
    )


def test_plan_survives_a_json_round_trip_through_save_and_load(tmp_path: Path) -> None:
    plan = _full_plan()
    path = tmp_path / "plans" / "webapp-dev.plan.json"
    save_plan(plan, path)
    assert load_plan(path) == plan
    assert path.read_text() == render_json(plan)


def test_json_is_versioned_sorted_and_carries_the_summary() -> None:
    text = render_json(_full_plan())
    document = json.loads(text)
    assert document["format"] == FORMAT == "cfnbuild-plan/1"
    assert text == json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert document["summary"]["counts"] == {"add": 1, "modify": 1, "replace": 1, "remove": 1, "import": 0}
    assert document["summary"]["dangers"] == ["AssetsBucket", "DbCluster"]
    assert [r["logical_id"] for r in document["resources"]] == ["AssetsBucket", "DbCluster", "InstanceRole", "Topic"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such plan file"),
        ("{not json", "invalid JSON"),
        ('["a list"]', "no 'format' key"),
        ('{"format": "cfnbuild-plan/0"}', "'cfnbuild-plan/0' is not 'cfnbuild-plan/1'"),
        ('{"format": "cfnbuild-plan/1", "stack_name": "x"}', "corrupt plan file (missing key"),
    ],
    ids=["missing", "invalid-json", "not-an-object", "other-version", "missing-key"],
)
def test_unreadable_plan_file_is_a_usage_error_naming_the_file(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "webapp-dev.plan.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError) as raised:
        load_plan(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert problem in str(raised.value)


def test_a_plan_file_with_a_wrong_type_is_a_usage_error(tmp_path: Path) -> None:
    document = json.loads(render_json(_full_plan()))
    document["resources"][0]["widening"] = "not a list"
    path = tmp_path / "p.json"
    path.write_text(json.dumps(document))
    with pytest.raises(UsageError, match=r"corrupt plan file \(resources\[0\]\.widening is not a list\)"):
        load_plan(path)


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def test_markdown_puts_the_danger_section_first() -> None:
    markdown = render_markdown(_full_plan())
    danger = markdown.index("#### ⚠ DANGER")
    assert danger < markdown.index("1 to add, 1 to modify, 1 to replace, 1 to remove")
    assert danger < markdown.index("| Action | Logical ID | Type | Replacement |")
    assert "- DbCluster (AWS::RDS::DBCluster) holds data and will be REPLACED" in markdown
    assert "| ⚠ Remove | `AssetsBucket` | `AWS::S3::Bucket` | - |" in markdown
    assert "- InstanceRole: grants s3:PutObject on AssetsBucket/uploads/\\* (new)" in markdown  # * escaped
    assert "DbPassword" not in markdown  # read back as ****, and no change names it: not a change


def test_markdown_without_danger_has_no_danger_section_and_escapes_table_cells() -> None:
    same = template({"Topic": {"Type": "AWS::SNS::Topic"}})
    markdown = render_markdown(plan_of([], same, same, new_tags={"Team": "a|b <x> *y*"}, old_tags={}))
    assert "DANGER" not in markdown
    assert "| `Team` | (none) | a\\|b &lt;x&gt; \\*y\\* |" in markdown


def test_text_rendering_shows_summary_danger_table_widening_property_changes_parameters_and_tags() -> None:
    console = Console(record=True, width=120)
    render_text(_full_plan(), console)
    text = console.export_text()
    lines = text.splitlines()
    assert lines[0] == (
        "Plan to update stack webapp-dev: 1 to add, 1 to modify, 1 to replace, 1 to remove, "
        "1 parameter change, 1 tag change"
    )
    assert "DANGER  AssetsBucket (AWS::S3::Bucket) holds data and will be REMOVED from the stack" in text
    assert "DANGER  DbCluster (AWS::RDS::DBCluster) holds data and will be REPLACED" in text
    table = [line.split() for line in lines if line.split()[:2] in (["DANGER", "Remove"], ["DANGER", "Replace"])]
    assert table == [
        ["DANGER", "Remove", "AssetsBucket", "AWS::S3::Bucket", "-"],
        ["DANGER", "Replace", "DbCluster", "AWS::RDS::DBCluster", "True"],
    ]
    assert "  ! InstanceRole: grants s3:PutObject on AssetsBucket/uploads/* (new)" in lines
    assert '    /Properties/KmsKeyId: "key/1111" → "key/2222" (recreation: Always)' in lines
    assert "  Env: dev → prod" in lines
    assert "  Owner: platform-team → data-team" in lines
    assert SECRET not in text


def test_text_rendering_truncates_long_values() -> None:
    long_before, long_after = ["x" * 200], ["y" * 200]
    plan = plan_of(
        [
            change(
                "Topic",
                "AWS::SNS::Topic",
                "Modify",
                replacement="False",
                details=[detail("/Properties/Subscription", long_before, long_after)],
            )
        ],
        template({"Topic": {"Type": "AWS::SNS::Topic"}}),
        template({"Topic": {"Type": "AWS::SNS::Topic"}}),
    )
    console = Console(record=True, width=200)
    render_text(plan, console)
    (line,) = [line for line in console.export_text().splitlines() if "/Properties/Subscription" in line]
    assert "…" in line
    assert len(line) < 160


def test_text_rendering_of_a_plan_without_changes_says_so() -> None:
    same = template({"Topic": {"Type": "AWS::SNS::Topic"}})
    console = Console(record=True, width=120)
    render_text(plan_of(None, same, same), console)
    assert console.export_text() == "No changes: stack webapp-dev is up to date.\n"


# ---------------------------------------------------------------------------------------------
# A real change set from the emulator
# ---------------------------------------------------------------------------------------------


def test_plan_from_a_real_moto_change_set_derives_replacement_and_danger_from_the_templates(emulator: Any) -> None:
    # moto returns only Action, LogicalResourceId and ResourceType per change: the plan fills the
    # property changes from the templates and the replacement from the types' create-only
    # properties, so the emulator's plan still shows the replacement and the removed stateful bucket.
    cf = emulator.client("cloudformation")
    stack = f"plan-test-{uuid.uuid4().hex[:8]}"
    old = template(
        {
            "Data": bucket(),
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": "one"}},
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{stack}-q1"}},
        },
        NO_ECHO_PARAMETERS,
    )
    new = copy.deepcopy(old)
    del new["Resources"]["Data"]
    new["Resources"]["Topic"]["Properties"]["DisplayName"] = "two"
    new["Resources"]["Queue"]["Properties"]["QueueName"] = f"{stack}-q2"
    parameters = [
        {"ParameterKey": "DbPassword", "ParameterValue": SECRET},
        {"ParameterKey": "Env", "ParameterValue": "dev"},
    ]
    created = cf.create_change_set(
        StackName=stack,
        ChangeSetName="create",
        ChangeSetType="CREATE",
        TemplateBody=json.dumps(old),
        Parameters=parameters,
    )
    cf.get_waiter("change_set_create_complete").wait(ChangeSetName=created["Id"], WaiterConfig={"Delay": 1})
    cf.execute_change_set(ChangeSetName=created["Id"])
    for _ in range(30):
        if cf.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE":
            break
        time.sleep(0.2)
    update = cf.create_change_set(
        StackName=stack,
        ChangeSetName="update",
        ChangeSetType="UPDATE",
        TemplateBody=json.dumps(new),
        Parameters=parameters,
    )
    cf.get_waiter("change_set_create_complete").wait(ChangeSetName=update["Id"], WaiterConfig={"Delay": 1})
    described = cf.describe_change_set(ChangeSetName=update["Id"], IncludePropertyValues=True)

    plan = build_plan(
        stack_name=stack,
        change_set=described,
        new_template=new,
        old_template=old,
        new_parameters={"DbPassword": SECRET, "Env": "dev"},
        old_parameters={"DbPassword": "****", "Env": "dev"},
        new_tags={},
        old_tags={},
        template_hash="0" * 64,
        stack_last_updated=None,
    )
    assert plan.change_set_id == update["Id"]
    assert plan.counts() == {"add": 0, "modify": 1, "replace": 1, "remove": 1, "import": 0}
    assert [c.logical_id for c in plan.dangers] == ["Data"]
    queue = next(c for c in plan.resources if c.logical_id == "Queue")
    assert queue.replacement == "True"
    assert queue.details[0].path == "/Properties/QueueName"
    assert queue.details[0].change_source == "TemplateDiff"
    assert plan.parameter_values == {"DbPassword": "****", "Env": "dev"}
    assert SECRET not in render_json(plan)


def _launch_template(instance_type: str) -> dict[str, Any]:
    data = {
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"Encrypted": True, "VolumeSize": 20}}],
        "IamInstanceProfile": {"Arn": {"Fn::GetAtt": ["InstanceProfile", "Arn"]}},
        "ImageId": {"Ref": "ImageId"},
        "InstanceType": instance_type,
        "MetadataOptions": {"HttpPutResponseHopLimit": 1, "HttpTokens": "required"},
    }
    return {"LaunchTemplate": {"Type": "AWS::EC2::LaunchTemplate", "Properties": {"LaunchTemplateData": data}}}


def _rendered(plan: Plan) -> str:
    console = Console(record=True, width=200)
    render_text(plan, console)
    return console.export_text()


def test_a_long_value_with_no_change_set_details_shows_the_leaf_that_differs():
    # moto gives no property details: the plan compares the templates, and the long
    # LaunchTemplateData differs only deep inside; the line must show that part, not a prefix.
    plan = plan_of(
        [change("LaunchTemplate", "AWS::EC2::LaunchTemplate", "Modify")],
        template(_launch_template("t3.large")),
        template(_launch_template("t3.small")),
    )
    text = _rendered(plan)
    assert '/Properties/LaunchTemplateData/InstanceType: "t3.small" → "t3.large"' in text
    assert "LaunchTemplateData/ImageId" not in text  # only what differs
    assert text.count("LaunchTemplateData") == 1
    markdown = render_markdown(plan)
    assert '- **LaunchTemplate** /Properties/LaunchTemplateData/InstanceType: "t3.small" → "t3.large"' in markdown


def test_two_long_strings_show_the_stretch_where_they_differ():
    base = "#!/bin/bash\nset -euo pipefail\n" + "echo step\n" * 20
    old = template(
        {"Doc": {"Type": "AWS::SSM::Document", "Properties": {"Content": base + "VERSION=1\n" + "done\n" * 5}}}
    )
    new = template(
        {"Doc": {"Type": "AWS::SSM::Document", "Properties": {"Content": base + "VERSION=2\n" + "done\n" * 5}}}
    )
    text = _rendered(plan_of([change("Doc", "AWS::SSM::Document", "Modify")], new, old))
    (line,) = [line for line in text.splitlines() if line.strip().startswith("/Properties/Content:")]
    assert "VERSION=1" in line
    assert "VERSION=2" in line
    assert line.count("…") >= 2  # the same prefix and suffix are cut


def _budget(**budget: Any) -> dict[str, Any]:
    data = {"BudgetType": "COST", "TimeUnit": "MONTHLY", "BudgetLimit": {"Amount": 50, "Unit": "USD"}, **budget}
    return {"MonthlyBudget": {"Type": "AWS::Budgets::Budget", "Properties": {"Budget": data}}}


def test_a_change_beside_a_create_only_sub_property_is_not_called_a_replacement() -> None:
    # Budget/BudgetName is create-only; a new CostFilters next to it (the name absent before and
    # after) updates the budget in place. An emulator's change set gives no Replacement, so the
    # plan derives it from the template: it must not say "may be REPLACED".
    old = template(_budget())
    new = template(_budget(CostFilters={"TagKeyValue": ["user:Environment$dev"]}))
    plan = plan_of([change("MonthlyBudget", "AWS::Budgets::Budget", "Modify")], new, old)
    budget = plan.resources[0]
    assert (budget.replacement, budget.kind) == ("False", "modify")
    assert budget.details[0].requires_recreation == "Never"


def test_a_changed_create_only_sub_property_is_a_replacement() -> None:
    old = template(_budget(BudgetName="dev-monthly"))
    new = template(_budget(BudgetName="dev-monthly-cost"))
    plan = plan_of([change("MonthlyBudget", "AWS::Budgets::Budget", "Modify")], new, old)
    budget = plan.resources[0]
    assert (budget.replacement, budget.kind) == ("True", "replace")


def _subnet_templates() -> tuple[dict[str, Any], dict[str, Any]]:
    """A subnet before and after its zone moved from Fn::GetAZs to the AvailabilityZones parameter."""
    old = {
        "Resources": {
            "Subnet": {
                "Type": "AWS::EC2::Subnet",
                "Properties": {
                    "AvailabilityZone": {"Fn::Select": [1, {"Fn::GetAZs": ""}]},
                    "CidrBlock": "10.0.16.0/20",
                },
            }
        }
    }
    new = {
        "Parameters": {"AvailabilityZones": {"Type": "String", "Default": ""}},
        "Conditions": {"HasZones": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AvailabilityZones"}, ""]}]}},
        "Resources": {
            "Subnet": {
                "Type": "AWS::EC2::Subnet",
                "Properties": {
                    "AvailabilityZone": {
                        "Fn::If": [
                            "HasZones",
                            {"Fn::Select": [1, {"Fn::Split": [",", {"Ref": "AvailabilityZones"}]}]},
                            {"Fn::Select": [1, {"Fn::GetAZs": ""}]},
                        ]
                    },
                    "CidrBlock": "10.0.16.0/20",
                },
            }
        },
    }
    return old, new


def _subnet_plan(zones: str) -> Any:
    old, new = _subnet_templates()
    return build_plan(
        stack_name="webapp-dev",
        change_set=change_set([change("Subnet", "AWS::EC2::Subnet", "Modify")]),
        new_template=new,
        old_template=old,
        new_parameters={"AvailabilityZones": zones},
        old_parameters={},
        new_tags={},
        old_tags={},
        template_hash="0" * 64,
        stack_last_updated=None,
    )


def test_a_zone_written_another_way_that_evaluates_the_same_is_no_replacement():
    (subnet,) = _subnet_plan("").resources
    assert subnet.details == ()
    assert subnet.kind != "replace"


def test_a_zone_the_parameters_change_is_a_replacement():
    (subnet,) = _subnet_plan("eu-west-1a,eu-west-1b").resources
    assert subnet.kind == "replace"
    assert [(d.path, d.after) for d in subnet.details] == [("/Properties/AvailabilityZone", "eu-west-1b")]


def test_a_rule_whose_peer_an_upstream_stack_gives_later_names_it_as_a_group_or_range() -> None:
    egress = {
        "Type": "AWS::EC2::SecurityGroupEgress",
        "Properties": {
            "GroupId": {"Fn::GetAtt": ["DbRotationSecurityGroup", "GroupId"]},
            "IpProtocol": "tcp",
            "FromPort": 3306,
            "ToPort": 3306,
            "DestinationSecurityGroupId": "from stack network (not deployed yet)",
        },
    }
    plan = plan_of(
        [change("RotationToDb", "AWS::EC2::SecurityGroupEgress", "Add")],
        template({"RotationToDb": egress}),
        template({}),
    )
    assert plan.resources[0].widening == (
        "RotationToDb (DbRotationSecurityGroup): allows 3306/tcp out to the group or range from stack network "
        "(not deployed yet)",
    )
