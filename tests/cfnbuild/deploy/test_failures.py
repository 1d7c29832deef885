"""A deploy that fails inside a nested stack names the nested stack's own first failure.

The emulator cannot fail a deploy, let alone a nested one, so AWS's answers are scripted with
botocore's Stubber (the same scripted-answers approach as the other failure-state tests).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from botocore.stub import ANY

from cfnbuild.deploy import changeset
from cfnbuild.deploy.engine import DeployedStack, DeployFailed, Prepared, Request
from cfnbuild.deploy.plan import build_plan
from tests.cfnbuild.deploy.test_engine import _mini_project, _stack, _stubbed

WHEN = datetime(2026, 1, 1, 12, tzinfo=UTC)
PARENT = _stack("mini-dev-stub", "UPDATE_COMPLETE")["StackId"]
NESTED = "arn:aws:cloudformation:eu-west-1:123456789012:stack/mini-dev-stub-Data-ABC/2"


def _event(  # noqa: PLR0917  (an event's fields in the order AWS lists them)
    n: int,
    stack_id: str,
    logical: str,
    status: str,
    reason: str = "",
    kind: str = "AWS::SQS::Queue",
    physical: str = "",
) -> dict:
    return {
        "EventId": f"{stack_id[-1]}-{n}", "StackId": stack_id, "StackName": stack_id.split("/")[1],
        "LogicalResourceId": logical, "PhysicalResourceId": physical or logical, "ResourceType": kind,
        "Timestamp": WHEN.replace(second=n), "ResourceStatus": status, "ResourceStatusReason": reason,
    }  # fmt: skip


def test_a_failure_in_a_nested_stack_is_reported_from_inside_it(tmp_path):
    root = _mini_project(tmp_path, "stub")
    engine, stubber = _stubbed(root, "mini-dev-stub")
    marker = _event(0, PARENT, "mini-dev-stub", "UPDATE_COMPLETE", kind="AWS::CloudFormation::Stack", physical=PARENT)
    parent_events = [
        _event(
            4, PARENT, "mini-dev-stub", "UPDATE_ROLLBACK_COMPLETE", kind="AWS::CloudFormation::Stack", physical=PARENT
        ),
        _event(3, PARENT, "Data", "UPDATE_FAILED", "Embedded stack failed", "AWS::CloudFormation::Stack", NESTED),
        _event(2, PARENT, "Data", "UPDATE_IN_PROGRESS", "", "AWS::CloudFormation::Stack", NESTED),
        _event(
            1, PARENT, "mini-dev-stub", "UPDATE_IN_PROGRESS", "User Initiated", "AWS::CloudFormation::Stack", PARENT
        ),
        marker,
    ]
    nested_events = [
        _event(3, NESTED, "Table", "UPDATE_FAILED", "Resource update cancelled", "AWS::DynamoDB::Table"),
        _event(2, NESTED, "Queue", "UPDATE_FAILED", "Access denied for sqs:SetQueueAttributes"),
        _event(1, NESTED, "mini-dev-stub-Data-ABC", "UPDATE_IN_PROGRESS", "", "AWS::CloudFormation::Stack", NESTED),
        _event(0, NESTED, "mini-dev-stub-Data-ABC", "UPDATE_COMPLETE", "", "AWS::CloudFormation::Stack", NESTED),
    ]
    stubber.add_response("describe_stack_events", {"StackEvents": [marker]}, {"StackName": PARENT})
    stubber.add_response(
        "execute_change_set", {}, {"ChangeSetName": "arn:cs", "ClientRequestToken": ANY, "RetainExceptOnCreate": True}
    )
    stubber.add_response(
        "describe_stacks", {"Stacks": [_stack("mini-dev-stub", "UPDATE_ROLLBACK_COMPLETE")]}, {"StackName": PARENT}
    )
    stubber.add_response("describe_stack_events", {"StackEvents": parent_events}, {"StackName": PARENT})
    stubber.add_response("describe_stack_events", {"StackEvents": nested_events}, {"StackName": NESTED})
    template = json.loads((root / "output/dev/mini.json").read_text())
    plan = build_plan(
        stack_name="mini-dev-stub", change_set={"Changes": []}, new_template=template, old_template=template,
        new_parameters={}, old_parameters={}, new_tags={}, old_tags={}, template_hash="h", stack_last_updated=None,
    )  # fmt: skip
    prepared = Prepared(template, "{}", "h", {}, frozenset(), {}, [], False, None)
    with stubber, pytest.raises(DeployFailed) as info:
        engine._execute(
            request=Request("dev", "mini", yes=True), stack_name="mini-dev-stub",
            deployed=DeployedStack.from_api(_stack("mini-dev-stub", "UPDATE_COMPLETE")),
            prepared=prepared, plan=plan, created=changeset.ChangeSet("arn:cs", PARENT, {}),
        )  # fmt: skip
    message = str(info.value)
    assert "root cause in nested stack mini-dev-stub-Data-ABC" in message
    assert "Queue (AWS::SQS::Queue) UPDATE_FAILED: Access denied for sqs:SetQueueAttributes" in message
    assert info.value.exit_code == 1
