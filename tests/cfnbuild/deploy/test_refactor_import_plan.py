"""The retain-and-import plan and templates for the flagship's real upgrade: the previous release to the split.

The previous release (tests/data/previous-release/dev/webapp.json, deployed as ``webapp-dev``
with a stack policy and ``Transform: AWS::SecretsManager-2024-09-16``) goes to the split's
templates: output/dev/{network,data,webapp}.json, as the checkout builds them.
Which types can be imported comes from the registry schemas cfn-lint ships.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber
from rich.console import Console

from cfnbuild.build.stateful import is_stateful
from cfnbuild.deploy.aws import Aws, Target
from cfnbuild.deploy.policy import policy_body, stack_policy
from cfnbuild.deploy.refactor.import_run import ImportFailed, RetainAndImport
from cfnbuild.deploy.refactor.moves import DeployedStack, RefactorRefused, compute_moves, refactor_blockers
from cfnbuild.deploy.refactor.retain import (
    ImportPlan,
    import_template,
    not_retained,
    phase_a_done,
    plan_import,
    reads,
    references,
    removal_template,
    retain_template,
    temporary_policy,
)
from cfnbuild.local.emulator import THROWAWAY_CREDENTIALS

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests/data"
PREVIOUS = json.loads((DATA / "previous-release/dev/webapp.json").read_text())
SPLIT = {f"{s}-dev": json.loads((ROOT / f"output/dev/{s}.json").read_text()) for s in ("network", "data", "webapp")}
ARN = "arn:aws:cloudformation:eu-west-1:123456789012:stack/webapp-dev/1"
VALUES = {
    "NatMode": "single", "AvailabilityZones": "eu-west-1a,eu-west-1b", "DomainName": "", "HostedZoneId": "",
    "MonthlyBudgetUsd": "0", "DbEngineVersion": "", "AppArtifactBucket": "", "AppArtifactKey": "",
    "BudgetRegion": "us-east-1", "ImageId": "ami-0123456789abcdef0",
}  # fmt: skip


def _source() -> DeployedStack:
    live = {lid: r["Type"] for lid, r in PREVIOUS["Resources"].items() if "Condition" not in r}  # dev: no domain
    return DeployedStack(
        "webapp-dev", ARN, "UPDATE_COMPLETE", PREVIOUS, VALUES, live, policy_body(stack_policy(PREVIOUS))
    )


def _physical(source: DeployedStack) -> dict[str, str]:
    ids = {lid: f"phys-{lid}" for lid in source.resources}
    ids["InternetGatewayAttachment"] = "IGW|phys-Vpc"  # a gateway attachment's Ref
    return ids


@pytest.fixture(scope="module")
def planned() -> tuple[DeployedStack, ImportPlan]:
    source = _source()
    layout = compute_moves({"network-dev": None, "data-dev": None, "webapp-dev": source}, SPLIT, refactor=False)
    return source, plan_import(layout, source, _physical(source), SPLIT, "eu-west-1")


def test_the_flagship_cannot_be_refactored_for_its_stack_policy_and_its_transform():
    source = _source()
    layout = compute_moves({"network-dev": None, "data-dev": None, "webapp-dev": source}, SPLIT, refactor=False)
    said = refactor_blockers({"webapp-dev": source}, layout.moves)
    assert said[0].startswith("webapp-dev is deployed with Transform AWS::SecretsManager-2024-09-16")
    assert said[1].startswith("webapp-dev has a stack policy")


def test_every_stateful_resource_of_the_flagship_is_imported_and_only_stateless_ones_are_created_again(planned):
    source, plan = planned
    stateful = {lid for lid, r in PREVIOUS["Resources"].items() if is_stateful(r) and lid in source.resources}
    assert stateful  # the database, the buckets, the key, the secret, the log groups
    assert stateful <= set(plan.imported)
    assert not stateful & set(plan.recreated)
    assert plan.recreated == {
        "AlarmTopicPolicy": "AWS::SNS::TopicPolicy cannot be imported (its registry schema has no read handler)",
        "DbSecretRotation": "Transform AWS::SecretsManager-2024-09-16 makes what it needs, and an import takes no "
        "transform",
    }
    assert {"NatAddress1", "NatGateway1", "PrivateDefaultRoute1", "InternetGatewayAttachment"} <= set(plan.imported)
    assert "DbWriter" in plan.imports["data-dev"]  # the database instance (DeletionPolicy Delete as deployed)
    assert set(plan.imports) == {"network-dev", "data-dev"}


def test_composite_identifiers_come_from_the_deployed_definition_or_are_read_back_by_phase_a(planned):
    _, plan = planned
    network = plan.imports["network-dev"]
    route = network["PublicDefaultRoute"]["Identifier"]
    assert route == {
        "RouteTableId": "phys-PublicRouteTable",
        "CidrBlock": {"Fn::GetAtt": ["PublicDefaultRoute", "CidrBlock"]},
    }
    address = network["NatAddress1"]["Identifier"]
    assert address["AllocationId"] == {"Fn::GetAtt": ["NatAddress1", "AllocationId"]}  # read-only: read back
    assert plan.imports["data-dev"]["DbCluster"]["Identifier"] == {"DBClusterIdentifier": "phys-DbCluster"}
    retained = retain_template(PREVIOUS, plan)
    assert retained["Outputs"]["CfnbuildReadNatAddress1AttrAllocationId"] == {
        "Value": {"Fn::GetAtt": ["NatAddress1", "AllocationId"]}
    }
    outputs = {key: f"read-{key}" for key in retained["Outputs"]}
    read_back = plan.with_identifiers(outputs).imports["network-dev"]
    assert read_back["NatAddress1"]["Identifier"] == {
        "PublicIp": "read-CfnbuildReadNatAddress1AttrPublicIp",
        "AllocationId": "read-CfnbuildReadNatAddress1AttrAllocationId",
    }
    assert read_back["InternetGatewayAttachment"]["Identifier"] == {
        "AttachmentType": "read-CfnbuildReadInternetGatewayAttachmentAttrAttachmentType",
        "VpcId": "phys-Vpc",
    }
    with pytest.raises(RefactorRefused, match=r"webapp-dev returns no output for .*NatAddress1.AllocationId"):
        plan.with_identifiers({})


def test_phase_a_retains_every_imported_resource_and_outputs_every_value_the_staying_ones_take(planned):
    _, plan = planned
    retained = retain_template(PREVIOUS, plan)
    for lid in plan.imported:
        assert retained["Resources"][lid]["DeletionPolicy"] == "Retain", lid
        assert retained["Resources"][lid]["UpdateReplacePolicy"] == "Retain", lid
    assert PREVIOUS["Resources"]["DbCluster"]["DeletionPolicy"] == "Snapshot"  # would delete it after a snapshot
    assert retained["Transform"] == PREVIOUS["Transform"]
    assert phase_a_done(retained, plan)
    assert not not_retained(retained, plan)
    assert not phase_a_done(PREVIOUS, plan)
    read = reads(PREVIOUS, plan.leaving)
    assert read["CfnbuildReadDbClusterAttrEndpointAddress"] == ("DbCluster", "Endpoint.Address")
    assert set(read) <= set(retained["Outputs"])
    assert len(retained["Outputs"]) <= 200  # CloudFormation's outputs per template


def test_phase_b_leaves_no_reference_to_a_leaving_resource_and_records_the_imports(planned):
    _, plan = planned
    retained = retain_template(PREVIOUS, plan)
    values = {key: f"value-of-{key}" for key in retained["Outputs"] if key.startswith("CfnbuildRead")}
    removed = removal_template(retained, plan, values)
    assert not set(plan.leaving) & set(removed["Resources"])
    used = set()
    for resource in removed["Resources"].values():
        used |= {lid for lid, _ in references(resource)} | set(_depends(resource))
    assert not used & set(plan.leaving)
    for output in removed["Outputs"].values():
        assert not {lid for lid, _ in references(output)} & set(plan.leaving)
    endpoint = removed["Outputs"]["DbClusterEndpoint"]["Value"]
    assert endpoint == "value-of-CfnbuildReadDbClusterAttrEndpointAddress"  # as deployed, its export kept
    assert not [k for k in removed["Outputs"] if k.startswith("CfnbuildRead")]  # phase A's reads are gone
    assert set(removed["Resources"]) == set(PREVIOUS["Resources"]) - set(plan.leaving)  # undeployed ones too
    record = removed["Metadata"]["CfnbuildRetainAndImport"]
    assert ImportPlan.from_record("webapp-dev", record) == plan.with_identifiers(values)


def test_phase_b_without_phase_a_outputs_is_refused_naming_what_is_missing(planned):
    _, plan = planned
    with pytest.raises(RefactorRefused, match=r"webapp-dev returns no output for .*DbCluster.Endpoint.Address"):
        removal_template(retain_template(PREVIOUS, plan), plan, {})


def test_each_import_template_holds_only_its_imported_resources_each_with_a_deletion_policy(planned):
    _, plan = planned
    for stack, ids in plan.imports.items():
        template = import_template(SPLIT[stack], ids)
        assert set(template["Resources"]) == set(ids)
        assert all("DeletionPolicy" in r for r in template["Resources"].values())
        assert "Outputs" not in template
        assert "Transform" not in template
        declared = set(template["Resources"]) | set(template.get("Parameters") or {})
        for resource in template["Resources"].values():
            named = {lid for lid, _ in references(resource)} | set(_depends(resource))
            assert named <= declared, named - declared  # nothing it names is missing from the import


def test_the_temporary_policy_takes_the_leaving_resources_out_of_the_deny_and_allows_their_delete(planned):
    _, plan = planned
    deployed = policy_body(stack_policy(PREVIOUS))
    relaxed = json.loads(temporary_policy(deployed, plan.imported) or "")
    denied = [r for s in relaxed["Statement"] if s["Effect"] == "Deny" for r in s["Resource"]]
    assert not {f"LogicalResourceId/{lid}" for lid in plan.imported} & set(denied)
    assert relaxed["Statement"][-1]["Action"] == "Update:Delete"
    assert relaxed["Statement"][-1]["Resource"] == sorted(f"LogicalResourceId/{lid}" for lid in plan.imported)
    assert temporary_policy(None, plan.imported) is None


def test_a_stateful_resource_that_cannot_be_imported_is_refused_naming_it_and_why():
    template = {"Resources": {
        "Policy": {"Type": "AWS::SNS::TopicPolicy", "Metadata": {"cfnbuild": {"stateful": True}},
                   "Properties": {"Topics": ["t"], "PolicyDocument": {}}},
        "Stay": {"Type": "AWS::SNS::Topic"},
    }}  # fmt: skip
    source = DeployedStack("app-dev", ARN, "UPDATE_COMPLETE", template, {}, {"Policy": "AWS::SNS::TopicPolicy",
                           "Stay": "AWS::SNS::Topic"}, "{}")  # fmt: skip
    wanted = {"base-dev": {"Resources": {"Policy": template["Resources"]["Policy"]}},
              "app-dev": {"Resources": {"Stay": template["Resources"]["Stay"]}}}  # fmt: skip
    layout = compute_moves({"base-dev": None, "app-dev": source}, wanted, refactor=False)
    with pytest.raises(RefactorRefused) as info:
        plan_import(layout, source, {"Policy": "p", "Stay": "s"}, wanted, "eu-west-1")
    assert str(info.value).startswith(
        "stateful Policy (AWS::SNS::TopicPolicy cannot be imported (its registry schema has no read handler)) would "
        "have to be deleted and created again"
    )


def _depends(resource: dict[str, Any]) -> list[str]:
    depends = resource.get("DependsOn") or []
    return [depends] if isinstance(depends, str) else list(depends)


# -- the flagship's phases A and B against CloudFormation's answers ---------------------------------------


class _Recorded:
    """Every call the stubbed clients make, in order: (service, operation, parameters)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def watch(self, client: Any, service: str) -> None:
        def record(model: Any, params: dict[str, Any], **_: Any) -> None:
            self.calls.append((service, model.name, params))

        client.meta.events.register(f"before-parameter-build.{service}", record)

    def sent(self, operation: str) -> list[dict[str, Any]]:
        return [params for _, name, params in self.calls if name == operation]


def _staged(s3: Stubber, sts: Stubber) -> None:
    """A template staged in the account's staging bucket: not there yet, then put."""
    sts.add_response("get_caller_identity", {"Account": "123456789012", "Arn": "arn:aws:iam::123456789012:root",
                                             "UserId": "AIDA"})  # fmt: skip
    s3.add_client_error("head_object", "404", "Not Found", 404)
    s3.add_response("put_object", {})


def _executed(cf: Stubber, end: str = "UPDATE_COMPLETE") -> None:
    change_set = "arn:aws:cloudformation:eu-west-1:123456789012:changeSet/cfnbuild-refactor/1"
    cf.add_response("create_change_set", {"Id": change_set, "StackId": ARN})
    cf.add_response("describe_change_set", {"ChangeSetId": change_set, "Status": "CREATE_COMPLETE", "Changes": [
        {"Type": "Resource", "ResourceChange": {"Action": "Modify", "LogicalResourceId": "Vpc"}}]})  # fmt: skip
    cf.add_response("execute_change_set", {}, {"ChangeSetName": change_set})
    cf.add_response("describe_stacks", {"Stacks": [{"StackName": "webapp-dev", "StackId": ARN,
                    "StackStatus": end, "CreationTime": "2026-01-01T00:00:00Z"}]})  # fmt: skip


def test_the_flagship_phases_a_and_b_retain_then_remove_under_a_temporary_policy_restored_after(planned):
    """Stubber (the emulator has no resource import): phases A and B on the flagship; phase C's first answer fails."""
    source, plan = planned
    aws = Aws(Target("", "eu-west-1", credentials=dict(THROWAWAY_CREDENTIALS)))  # as the command: no one stack
    recorded = _Recorded()
    stubs = {}
    for service in ("cloudformation", "s3", "sts"):
        recorded.watch(aws.client(service), service)
        stubs[service] = Stubber(aws.client(service))
    cf, s3, sts = stubs["cloudformation"], stubs["s3"], stubs["sts"]
    after_a = retain_template(PREVIOUS, plan)
    values = {key: f"value-of-{key}" for key in after_a["Outputs"] if key.startswith("CfnbuildRead")}
    _staged(s3, sts)
    _executed(cf)  # phase A
    cf.add_response(
        "get_template", {"TemplateBody": json.dumps(after_a)}, {"StackName": ARN, "TemplateStage": "Original"}
    )
    outputs = [{"OutputKey": k, "OutputValue": v} for k, v in values.items()]
    cf.add_response("describe_stacks", {"Stacks": [{"StackName": "webapp-dev", "StackId": ARN, "Outputs": outputs,
                    "StackStatus": "UPDATE_COMPLETE", "CreationTime": "2026-01-01T00:00:00Z"}]})  # fmt: skip
    cf.add_response("get_stack_policy", {"StackPolicyBody": source.policy})
    cf.add_response("set_stack_policy", {})
    _staged(s3, sts)
    _executed(cf)  # phase B
    cf.add_response("set_stack_policy", {}, {"StackName": ARN, "StackPolicyBody": source.policy})
    cf.add_client_error("describe_stacks", "Throttling", "Rate exceeded", 400)  # phase C: is network-dev there?
    cf.add_client_error("describe_stacks", "Throttling", "Rate exceeded", 400)
    order = [("network", "network-dev"), ("data", "data-dev"), ("webapp", "webapp-dev")]
    out, err = Console(record=True, width=200), Console(record=True)
    importer = RetainAndImport(aws, "dev", _no_engine, out, err, "cfnbuild refactor --env dev", yes=True)
    importer.sleep = lambda _: None
    for stub in stubs.values():
        stub.activate()
    with pytest.raises(ImportFailed) as info:
        importer.run(plan, source, SPLIT, order)
    phase_a, phase_b = (json.loads(_bytes(p["Body"])) for p in recorded.sent("PutObject"))
    assert phase_a == after_a
    stateful = {lid for lid, r in PREVIOUS["Resources"].items() if is_stateful(r) and lid in source.resources}
    for lid in stateful:  # Retain before it leaves
        assert phase_a["Resources"][lid]["DeletionPolicy"] == "Retain", lid
    assert not stateful & set(phase_b["Resources"])
    assert set(phase_b["Metadata"]["CfnbuildRetainAndImport"]["Imports"]["data-dev"]) >= {"DbCluster", "DbSecret"}
    relaxed, restored = (p["StackPolicyBody"] for p in recorded.sent("SetStackPolicy"))
    assert restored == source.policy
    assert "Deny" not in relaxed  # every stateful resource of the flagship leaves the source
    assert [p["ChangeSetType"] for p in recorded.sent("CreateChangeSet")] == ["UPDATE", "UPDATE"]
    assert all("TemplateURL" in p for p in recorded.sent("CreateChangeSet"))  # 111 KB: staged
    assert set(recorded.sent("CreateChangeSet")[0]["Capabilities"]) >= {"CAPABILITY_AUTO_EXPAND"}  # the Transform
    message = str(info.value)
    assert message.startswith("phase C (network-dev): CloudFormation DescribeStacks in eu-west-1: Throttling")
    assert message.endswith(
        "network-dev is in a state that could not be read, the resources to import are Retain and out of any stack, "
        "recorded in the source; run 'cfnbuild refactor --env dev' again to resume"
    )
    assert "\n" not in message
    assert "DeleteStack" not in [name for _, name, _ in recorded.calls]


def _no_engine(stack: str) -> Any:
    raise AssertionError(f"no deploy engine is needed before phase C ({stack})")


def _bytes(body: Any) -> bytes:
    """A PutObject body as sent (botocore may have wrapped the bytes in a stream)."""
    return bytes(body.getvalue()) if hasattr(body, "getvalue") else bytes(body)
