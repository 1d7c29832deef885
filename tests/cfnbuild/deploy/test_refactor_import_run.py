"""``cfnbuild refactor`` by retain and import, against CloudFormation's answers: the whole sequence, a failure, re-runs.

The emulator (moto) plays neither resource import (IMPORT change sets) nor stack policies on
updates, so CloudFormation's answers are scripted with botocore's Stubber on cfnbuild's own
client. The installed botocore's own model is used (no AWS_DATA_PATH): this path needs none of
the stack refactoring operations.

The project is test_refactor_run's three small stacks (network → data → webapp) deployed before
as the single stack ``webapp-dev-t``, now with a stack policy that denies Update:Delete of the
stateful queue ``Store`` — which makes a stack refactor impossible.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY

from cfnbuild.deploy.model import Refused
from cfnbuild.deploy.policy import policy_body, stack_policy
from cfnbuild.deploy.refactor.import_run import ImportFailed
from cfnbuild.deploy.refactor.moves import RefactorRefused
from tests.cfnbuild.deploy.test_refactor_run import APP, ARN, Run, _absent, _finished, _stack
from tests.inprocess import build_here

SOURCE = "webapp-dev-t"
SOURCE_ID = ARN.format(SOURCE)
STATEFUL = {"cfnbuild": {"stateful": True}}
# The previous release as deployed: the queue is stateful (its mark, its policies).
PREVIOUS = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Parameters": {"Label": {"Type": "String", "Default": "v1"}},
    "Resources": {
        "KeyTopic": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": {"Fn::Sub": "key-${Label}"}}},
        "Store": {
            "Type": "AWS::SQS::Queue",
            "DeletionPolicy": "RetainExceptOnCreate",
            "UpdateReplacePolicy": "Retain",
            "Metadata": STATEFUL,
            "Properties": {"MessageRetentionPeriod": 345600, "Tags": [{"Key": "key", "Value": {"Ref": "KeyTopic"}}]},
        },
        "AppTopic": {
            "Type": "AWS::SNS::Topic",
            "DependsOn": "Store",
            "Properties": {"DisplayName": {"Fn::GetAtt": ["Store", "QueueName"]}},
        },
    },
}
POLICY = policy_body(stack_policy(PREVIOUS))
QUEUE_NAME = "webapp-dev-t-Store-ABC"
QUEUE_URL = f"https://sqs.eu-west-1.amazonaws.com/123456789012/{QUEUE_NAME}"
TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:webapp-dev-t-KeyTopic-XYZ"
PHYSICAL = {"KeyTopic": TOPIC_ARN, "Store": QUEUE_URL, "AppTopic": "arn:aws:sns:eu-west-1:123456789012:app"}
# What phase A leaves deployed: the deployed template, both leaving resources Retain, the value AppTopic takes.
AFTER_A = {
    **PREVIOUS,
    "Resources": {
        "KeyTopic": {**PREVIOUS["Resources"]["KeyTopic"], "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"},
        "Store": {**PREVIOUS["Resources"]["Store"], "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"},
        "AppTopic": PREVIOUS["Resources"]["AppTopic"],
    },
    "Outputs": {"CfnbuildReadStoreAttrQueueName": {"Value": {"Fn::GetAtt": ["Store", "QueueName"]}}},
}
COMMAND = "cfnbuild refactor --env dev"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """test_refactor_run's project, built (its config: protect_stateful off for the finishing deploys' no-op)."""
    root = tmp_path_factory.mktemp("split-import")
    (root / "pyproject.toml").write_text('[tool.cfnbuild]\napp = "split_app:app"\ndefault_env = "dev"\n')
    (root / "split_app.py").write_text(APP)
    (root / "config").mkdir()
    (root / "config/dev.toml").write_text(
        'project = "split"\nregions = ["eu-west-1"]\n[deploy]\nstack_name_suffix = "t"\nprotect_stateful = false\n'
    )
    build_here(root)
    return root


def _source(run: Run, template: dict[str, Any], *, outputs: dict[str, str] | None = None) -> None:
    """The reads of the deployed source: DescribeStacks, GetTemplate, ListStackResources, GetStackPolicy."""
    described = _stack(SOURCE, Parameters=[{"ParameterKey": "Label", "ParameterValue": "blue"}])
    if outputs:
        described["Outputs"] = [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]
    run.stubber.add_response("describe_stacks", {"Stacks": [described]}, {"StackName": SOURCE})
    run.stubber.add_response(
        "get_template", {"TemplateBody": json.dumps(template)}, {"StackName": SOURCE_ID, "TemplateStage": "Original"}
    )
    summaries = [
        {"LogicalResourceId": lid, "PhysicalResourceId": PHYSICAL[lid], "ResourceType": r["Type"],
         "ResourceStatus": "UPDATE_COMPLETE", "LastUpdatedTimestamp": "2026-01-01T00:00:00Z"}
        for lid, r in template["Resources"].items()
    ]  # fmt: skip
    run.stubber.add_response("list_stack_resources", {"StackResourceSummaries": summaries}, {"StackName": SOURCE_ID})
    run.stubber.add_response("get_stack_policy", {"StackPolicyBody": POLICY}, {"StackName": SOURCE_ID})


def _reads(run: Run, template: dict[str, Any] = PREVIOUS) -> None:
    _absent(run, "network-dev-t")
    _absent(run, "data-dev-t")
    _source(run, template)


def _physical(run: Run, template: dict[str, Any]) -> None:
    """The physical IDs, read on two pages of ListStackResources."""
    summaries = [
        {"LogicalResourceId": lid, "PhysicalResourceId": PHYSICAL[lid], "ResourceType": r["Type"],
         "ResourceStatus": "UPDATE_COMPLETE", "LastUpdatedTimestamp": "2026-01-01T00:00:00Z"}
        for lid, r in template["Resources"].items()
    ]  # fmt: skip
    run.stubber.add_response(
        "list_stack_resources", {"StackResourceSummaries": summaries[:1], "NextToken": "2"}, {"StackName": SOURCE_ID}
    )
    run.stubber.add_response(
        "list_stack_resources", {"StackResourceSummaries": summaries[1:]}, {"StackName": SOURCE_ID, "NextToken": "2"}
    )


def _change_set(run: Run, name: str, *, kind: str, end: str | None, reason: str = "") -> None:
    """One change set of a phase: created, described ready, executed, the stack waited for until ``end``."""
    stack_id = ARN.format(name)
    change_set = f"arn:aws:cloudformation:eu-west-1:123456789012:changeSet/cfnbuild-refactor/{kind}"
    run.stubber.add_response("create_change_set", {"Id": change_set, "StackId": stack_id})
    change = {"Action": "Import" if kind == "IMPORT" else "Modify", "LogicalResourceId": "X", "ResourceType": "T"}
    run.stubber.add_response(
        "describe_change_set",
        {"ChangeSetId": change_set, "StackId": stack_id, "StackName": name, "Status": "CREATE_COMPLETE",
         "ExecutionStatus": "AVAILABLE", "Changes": [{"Type": "Resource", "ResourceChange": change}]},
    )  # fmt: skip
    run.stubber.add_response("execute_change_set", {}, {"ChangeSetName": change_set})
    run.stubber.add_response("describe_stacks", {"Stacks": [_stack(name, f"{kind}_IN_PROGRESS")]})
    if end is not None:  # None: the wait is stopped before the stack settles
        run.stubber.add_response("describe_stacks", {"Stacks": [_stack(name, end, StackStatusReason=reason)]})


def _phase_b(run: Run, *, end: str | None = "UPDATE_COMPLETE", reason: str = "") -> None:
    run.stubber.add_response(
        "get_template", {"TemplateBody": json.dumps(AFTER_A)}, {"StackName": SOURCE_ID, "TemplateStage": "Original"}
    )
    outputs = [{"OutputKey": "CfnbuildReadStoreAttrQueueName", "OutputValue": QUEUE_NAME}]
    run.stubber.add_response("describe_stacks", {"Stacks": [_stack(SOURCE, Outputs=outputs)]}, {"StackName": SOURCE_ID})
    run.stubber.add_response("get_stack_policy", {"StackPolicyBody": POLICY}, {"StackName": SOURCE_ID})
    run.stubber.add_response("set_stack_policy", {}, {"StackName": SOURCE_ID, "StackPolicyBody": ANY})
    _change_set(run, SOURCE, kind="UPDATE", end=end, reason=reason)
    run.stubber.add_response("set_stack_policy", {}, {"StackName": SOURCE_ID, "StackPolicyBody": POLICY})


def _import(run: Run, name: str, upstream: str | None) -> None:
    """Phase C of ``name``: not there yet, its parameters (an upstream's output), the IMPORT change set."""
    _absent(run, name)
    if upstream is not None:
        outputs = [{"OutputKey": "KeyArn", "OutputValue": TOPIC_ARN}]
        run.stubber.add_response("describe_stacks", {"Stacks": [_stack(upstream, Outputs=outputs)]})
    _change_set(run, name, kind="IMPORT", end="IMPORT_COMPLETE")


def _c_and_d(run: Run, root: Path) -> None:
    """Phases C and D of network and data, then D of webapp (each deploy finds the project's template deployed)."""
    _import(run, "network-dev-t", None)
    _finished(run, root, "network", None)
    _import(run, "data-dev-t", "network-dev-t")
    _finished(run, root, "data", "network")
    _finished(run, root, "webapp", "data")


def _whole(run: Run, root: Path) -> None:
    _reads(run)
    _physical(run, PREVIOUS)
    _change_set(run, SOURCE, kind="UPDATE", end="UPDATE_COMPLETE")  # phase A
    _phase_b(run)
    _c_and_d(run, root)


def _sent(run: Run, operation: str) -> list[dict[str, Any]]:
    return [params for name, params, _ in run.calls if name == operation]


def _body(params: dict[str, Any]) -> dict[str, Any]:
    return json.loads(params["TemplateBody"])


def test_the_whole_sequence_says_why_shows_every_phase_first_then_retains_removes_imports_and_deploys(project):
    run = Run(project)
    _whole(run, project)
    run.go()
    first_change = next(text for name, _, text in run.calls if name in ("CreateChangeSet", "SetStackPolicy"))
    assert "retain-and-import, not stack refactoring: webapp-dev-t has a stack policy" in first_change
    assert "retain and import: what each phase does" in first_change
    rows = [line.split("│")[1:3] for line in first_change.splitlines() if line.startswith("│")]
    assert [(phase.strip(), stack.strip()) for phase, stack in rows] == [
        ("A", SOURCE), ("B", SOURCE), ("C", "network-dev-t"), ("C", "data-dev-t"),
        ("D", "network-dev-t"), ("D", "data-dev-t"), ("D", SOURCE),
    ]  # fmt: skip
    kinds = [(p["StackName"], p["ChangeSetType"]) for p in _sent(run, "CreateChangeSet")]
    assert kinds == [(SOURCE, "UPDATE"), (SOURCE, "UPDATE"), ("network-dev-t", "IMPORT"), ("data-dev-t", "IMPORT")]
    finished = [p["StackName"] for n, p, _ in run.calls if n == "GetTemplate" and "TemplateStage" in p]
    assert finished[-3:] == ["network-dev-t", "data-dev-t", "webapp-dev-t"]  # phase D in graph order, source last
    out = run.out.export_text()
    assert out.rstrip().splitlines()[-1] == (
        "dev: 2 resources imported into network-dev-t, data-dev-t, none deleted; network-dev-t, data-dev-t, "
        "webapp-dev-t deployed with the project's templates"
    )


def test_no_stateful_resource_is_ever_deleted_it_is_retain_before_it_leaves_and_imported_after(project):
    run = Run(project)
    _whole(run, project)
    run.go()
    phase_a, phase_b, network, data = _sent(run, "CreateChangeSet")
    retained = _body(phase_a)["Resources"]
    assert retained["Store"]["DeletionPolicy"] == "Retain"  # was RetainExceptOnCreate
    assert retained["Store"]["UpdateReplacePolicy"] == "Retain"
    assert retained["KeyTopic"]["DeletionPolicy"] == "Retain"
    assert "DeletionPolicy" not in retained["AppTopic"]  # it stays
    assert _body(phase_a)["Outputs"] == AFTER_A["Outputs"]
    assert {p["ParameterKey"]: p.get("UsePreviousValue") for p in phase_a["Parameters"]} == {"Label": True}
    removed = _body(phase_b)
    assert set(removed["Resources"]) == {"AppTopic"}
    assert removed["Resources"]["AppTopic"] == {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": QUEUE_NAME}}
    assert "Outputs" not in removed
    record = removed["Metadata"]["CfnbuildRetainAndImport"]
    assert record["Imports"]["data-dev-t"]["Store"] == {
        "Type": "AWS::SQS::Queue",
        "Identifier": {"QueueUrl": QUEUE_URL},
    }
    topic = {"ResourceType": "AWS::SNS::Topic", "LogicalResourceId": "KeyTopic"}
    assert network["ResourcesToImport"] == [{**topic, "ResourceIdentifier": {"TopicArn": TOPIC_ARN}}]
    assert [r["LogicalResourceId"] for r in data["ResourcesToImport"]] == ["Store"]
    imported = _body(data)
    assert set(imported["Resources"]) == {"Store"}
    assert all("DeletionPolicy" in r for r in [*imported["Resources"].values(), *_body(network)["Resources"].values()])
    assert "Outputs" not in imported
    assert {p["ParameterKey"]: p["ParameterValue"] for p in data["Parameters"]} == {"NetworkKeyArn": TOPIC_ARN}
    assert "Tags" not in data  # an import changes nothing else; the deploy after it tags the stack
    assert "DeleteStack" not in run.operations()


def test_the_stack_policy_allows_deleting_exactly_the_retained_resources_meanwhile_and_is_restored(project):
    run = Run(project)
    _whole(run, project)
    run.go()
    relaxed, restored = (json.loads(p["StackPolicyBody"]) for p in _sent(run, "SetStackPolicy"))
    assert json.loads(POLICY)["Statement"][1]["Resource"] == ["LogicalResourceId/Store"]  # the deployed Deny
    assert all(s["Effect"] == "Allow" for s in relaxed["Statement"])  # Store out of the Deny (a Deny wins)
    leaving = ["LogicalResourceId/KeyTopic", "LogicalResourceId/Store"]
    assert relaxed["Statement"][-1] == {
        "Effect": "Allow",
        "Action": "Update:Delete",
        "Principal": "*",
        "Resource": leaving,
    }
    assert restored == json.loads(POLICY)
    operations = run.operations()
    executes = [i for i, name in enumerate(operations) if name == "ExecuteChangeSet"]
    policies = [i for i, name in enumerate(operations) if name == "SetStackPolicy"]
    assert executes[0] < policies[0] < executes[1] < policies[1] < executes[2]  # around phase B only


def test_a_phase_b_that_rolls_back_is_one_line_the_policy_is_restored_and_the_rerun_resumes_from_phase_b(project):
    run = Run(project)
    _reads(run)
    _physical(run, PREVIOUS)
    _change_set(run, SOURCE, kind="UPDATE", end="UPDATE_COMPLETE")
    _phase_b(run, end="UPDATE_ROLLBACK_COMPLETE", reason="The following resource(s) failed to delete: [KeyTopic]")
    run.stubber.add_response("describe_stacks", {"Stacks": [_stack(SOURCE, "UPDATE_ROLLBACK_COMPLETE")]})
    with pytest.raises(ImportFailed) as info:
        run.go()
    message = str(info.value)
    assert message.startswith(
        "phase B (webapp-dev-t): webapp-dev-t ended UPDATE_ROLLBACK_COMPLETE: The following resource(s) failed to "
        "delete: [KeyTopic]; webapp-dev-t is UPDATE_ROLLBACK_COMPLETE, its stack policy is restored; "
    )
    assert message.endswith(f"run '{COMMAND}' again to resume")
    assert "\n" not in message
    assert json.loads(_sent(run, "SetStackPolicy")[-1]["StackPolicyBody"]) == json.loads(POLICY)
    assert "IMPORT" not in [p["ChangeSetType"] for p in _sent(run, "CreateChangeSet")]

    again = Run(project)  # phase A is deployed: the re-run goes straight to phase B
    _reads(again, AFTER_A)
    _physical(again, AFTER_A)
    _phase_b(again)
    _c_and_d(again, project)
    again.go()
    kinds = [(p["StackName"], p["ChangeSetType"]) for p in _sent(again, "CreateChangeSet")]
    assert kinds == [(SOURCE, "UPDATE"), ("network-dev-t", "IMPORT"), ("data-dev-t", "IMPORT")]
    assert "done already" in again.out.export_text()


def test_a_rerun_after_phase_b_resumes_from_the_record_and_imports_what_is_not_imported_yet(project):
    first = Run(project)
    _whole(first, project)
    first.go()
    after_b = _body(_sent(first, "CreateChangeSet")[1])
    run = Run(project)  # network was imported and deployed, data is not there: phase C of data goes on
    run.stubber.add_response("describe_stacks", {"Stacks": [_stack("network-dev-t", "UPDATE_COMPLETE")]})
    run.stubber.add_response("get_template", {"TemplateBody": json.dumps({"Resources": {"KeyTopic": {
        "Type": "AWS::SNS::Topic"}}})})  # fmt: skip
    run.stubber.add_response("list_stack_resources", {"StackResourceSummaries": []})
    run.stubber.add_response("get_stack_policy", {})
    _absent(run, "data-dev-t")
    _source(run, after_b)
    run.stubber.add_response("describe_stacks", {"Stacks": [_stack("network-dev-t", "UPDATE_COMPLETE")]})
    _finished(run, project, "network", None)
    _import(run, "data-dev-t", "network-dev-t")
    _finished(run, project, "data", "network")
    _finished(run, project, "webapp", "data")
    run.go()
    assert [(p["StackName"], p["ChangeSetType"]) for p in _sent(run, "CreateChangeSet")] == [("data-dev-t", "IMPORT")]
    assert "retain-and-import, resumed: webapp-dev-t carries the record" in run.out.export_text()


def test_an_import_that_fails_is_one_line_keeping_the_resources_and_saying_how_to_resume(project):
    run = Run(project)
    _reads(run)
    _physical(run, PREVIOUS)
    _change_set(run, SOURCE, kind="UPDATE", end="UPDATE_COMPLETE")
    _phase_b(run)
    _absent(run, "network-dev-t")
    change_set = "arn:aws:cloudformation:eu-west-1:123456789012:changeSet/cfnbuild-refactor/IMPORT"
    run.stubber.add_response("create_change_set", {"Id": change_set, "StackId": ARN.format("network-dev-t")})
    reason = "The following resource types are not supported for resource import: AWS::SNS::Topic"
    run.stubber.add_response(
        "describe_change_set", {"ChangeSetId": change_set, "Status": "FAILED", "StatusReason": reason,
                                "ChangeSetName": "cfnbuild-refactor-c"},
    )  # fmt: skip
    run.stubber.add_response("describe_stacks", {"Stacks": [_stack("network-dev-t", "REVIEW_IN_PROGRESS")]})
    with pytest.raises(ImportFailed) as info:
        run.go()
    message = str(info.value)
    assert message.startswith(
        f"phase C (network-dev-t): CloudFormation could not create change set cfnbuild-refactor-c: {reason}"
    )
    assert "network-dev-t is REVIEW_IN_PROGRESS, the resources to import are Retain and out of any stack" in message
    assert message.endswith(f"run '{COMMAND}' again to resume")
    assert "\n" not in message


def test_a_plan_not_confirmed_changes_nothing(project):
    run = Run(project, yes=False, confirm=lambda _question: "no")
    _reads(run)
    _physical(run, PREVIOUS)
    with pytest.raises(Refused, match="not confirmed; nothing was changed"):
        run.go()
    assert "retain and import: what each phase does" in run.out.export_text()
    assert not {"CreateChangeSet", "SetStackPolicy"} & set(run.operations())


def test_a_phase_a_that_fails_is_one_line_saying_nothing_was_removed(project):
    run = Run(project)
    _reads(run)
    _physical(run, PREVIOUS)
    run.stubber.add_client_error(
        "create_change_set", "InsufficientCapabilitiesException", "Requires capabilities : [CAPABILITY_IAM]", 400
    )
    run.stubber.add_response("describe_stacks", {"Stacks": [_stack(SOURCE)]})
    with pytest.raises(ImportFailed) as info:
        run.go()
    message = str(info.value)
    assert message.startswith("phase A (webapp-dev-t): CloudFormation CreateChangeSet")
    assert "InsufficientCapabilitiesException" in message
    assert message.endswith(f"webapp-dev-t is UPDATE_COMPLETE, nothing was removed; run '{COMMAND}' again to resume")
    assert "\n" not in message


def test_phase_b_refuses_to_remove_a_resource_the_deployed_template_does_not_retain(project):
    run = Run(project)
    _reads(run, AFTER_A)
    _physical(run, AFTER_A)
    run.stubber.add_response(  # someone deployed the old template again in between
        "get_template", {"TemplateBody": json.dumps(PREVIOUS)}, {"StackName": SOURCE_ID, "TemplateStage": "Original"}
    )
    run.stubber.add_response("describe_stacks", {"Stacks": [_stack(SOURCE)]}, {"StackName": SOURCE_ID})
    run.stubber.add_response("get_stack_policy", {"StackPolicyBody": POLICY}, {"StackName": SOURCE_ID})
    with pytest.raises(RefactorRefused) as info:
        run.go()
    assert str(info.value).startswith(
        "phase B (webapp-dev-t): KeyTopic, Store is not DeletionPolicy Retain in the deployed template, so removing it "
        "would delete it; nothing was removed"
    )
    assert not {"CreateChangeSet", "SetStackPolicy"} & set(run.operations())


def test_a_rerun_while_phase_b_still_runs_waits_for_it_instead_of_importing(project):
    first = Run(project)
    _whole(first, project)
    first.go()
    after_b = _body(_sent(first, "CreateChangeSet")[1])
    run = Run(project)
    _absent(run, "network-dev-t")
    _absent(run, "data-dev-t")
    described = _stack(SOURCE, "UPDATE_IN_PROGRESS")
    run.stubber.add_response("describe_stacks", {"Stacks": [described]}, {"StackName": SOURCE})
    run.stubber.add_response("get_template", {"TemplateBody": json.dumps(after_b)})
    run.stubber.add_response("list_stack_resources", {"StackResourceSummaries": []})
    run.stubber.add_response("get_stack_policy", {"StackPolicyBody": POLICY})
    with pytest.raises(RefactorRefused, match="webapp-dev-t is busy \\(UPDATE_IN_PROGRESS\\) with phase B"):
        run.go()
    assert "CreateChangeSet" not in run.operations()


def test_ctrl_c_while_phase_b_runs_restores_the_policy_and_says_how_to_resume(project):
    run = Run(project)
    _reads(run)
    _physical(run, PREVIOUS)
    _change_set(run, SOURCE, kind="UPDATE", end="UPDATE_COMPLETE")
    _phase_b(run, end=None)
    sleeps = iter([None])  # phase A's one wait passes; the next (phase B's) is Ctrl-C

    def sleep(_seconds: float) -> None:
        if next(sleeps, KeyboardInterrupt) is KeyboardInterrupt:
            raise KeyboardInterrupt

    run.refactor.sleep = sleep
    run.stubber.add_response("describe_stacks", {"Stacks": [_stack(SOURCE, "UPDATE_IN_PROGRESS")]})
    with pytest.raises(ImportFailed) as info:
        run.go()
    message = str(info.value)
    assert message.startswith(
        "phase B (webapp-dev-t): stopped watching webapp-dev-t (UPDATE_IN_PROGRESS): its operation"
    )
    assert (
        "webapp-dev-t is UPDATE_IN_PROGRESS, its stack policy is restored; run 'cfnbuild refactor --env dev'" in message
    )
    assert json.loads(_sent(run, "SetStackPolicy")[-1]["StackPolicyBody"]) == json.loads(POLICY)
