"""Deploy outcomes that hold on AWS: a finished operation is reported finished; the outputs file is true.

What the emulator cannot play on demand — a stack-policy call refused after a successful update,
outputs of a stack whose create rolled back — is scripted with botocore's Stubber; the rest runs
on the emulator (moto in server mode).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from cfnbuild.deploy import changeset
from cfnbuild.deploy.engine import DeployedStack, FollowUpFailed, Prepared, Refused, Request
from cfnbuild.deploy.plan import build_plan
from cfnbuild.deploy.policy import stack_policy
from tests.cfnbuild.deploy.test_engine import _mini_project, _stack, _stubbed
from tests.faultproxy import EVERY, Fault, FaultProxy

STACK = "mini-dev-stub"
ROOT = Path(__file__).resolve().parents[3]


def _event(stack_id: str, n: int, status: str) -> dict:
    return {
        "EventId": f"e{n}",
        "StackId": stack_id,
        "StackName": STACK,
        "LogicalResourceId": STACK,
        "PhysicalResourceId": stack_id,
        "ResourceType": "AWS::CloudFormation::Stack",
        "Timestamp": datetime(2026, 1, 1, 12, 0, n, tzinfo=UTC),
        "ResourceStatus": status,
    }


def _successful_update(stubber, stack_id: str) -> None:
    stubber.add_response("describe_stack_events", {"StackEvents": [_event(stack_id, 0, "UPDATE_COMPLETE")]}, None)
    stubber.add_response("execute_change_set", {}, None)
    done = _stack(STACK, "UPDATE_COMPLETE", Outputs=[{"OutputKey": "TopicArn", "OutputValue": "arn:topic"}])
    stubber.add_response("describe_stacks", {"Stacks": [done]}, None)
    events = [_event(stack_id, 2, "UPDATE_COMPLETE"), _event(stack_id, 1, "UPDATE_IN_PROGRESS")]
    stubber.add_response("describe_stack_events", {"StackEvents": events}, None)


def _execute(engine, root: Path, *, policy: bool):
    template = json.loads((root / "output/dev/mini.json").read_text())
    plan = build_plan(
        stack_name=STACK, change_set={"Changes": []}, new_template=template, old_template=template,
        new_parameters={}, old_parameters={}, new_tags={}, old_tags={}, template_hash="h", stack_last_updated=None,
    )  # fmt: skip
    wanted = stack_policy(template) if policy else None
    prepared = Prepared(template, "{}", "h", {}, frozenset(), {}, [], False, wanted)
    stack_id = _stack(STACK, "UPDATE_COMPLETE")["StackId"]
    return engine._execute(
        request=Request("dev", "mini", yes=True),
        stack_name=STACK,
        deployed=DeployedStack.from_api(_stack(STACK, "UPDATE_COMPLETE")),
        prepared=prepared,
        plan=plan,
        created=changeset.ChangeSet("arn:cs", stack_id, {}),
    )


def test_a_stack_policy_refused_after_a_successful_update_is_a_follow_up_not_a_failed_deploy(tmp_path):
    root = _mini_project(tmp_path, "stub")
    engine, stubber = _stubbed(root, STACK)
    stack_id = _stack(STACK, "UPDATE_COMPLETE")["StackId"]
    _successful_update(stubber, stack_id)
    stubber.add_response("get_stack_policy", {}, {"StackName": stack_id})
    stubber.add_client_error(
        "set_stack_policy",
        "AccessDenied",
        "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: cloudformation:SetStackPolicy",
        403,
    )
    with stubber, pytest.raises(FollowUpFailed) as info:
        _execute(engine, root, policy=True)
    stubber.assert_no_pending_responses()
    assert info.value.exit_code == 3
    assert info.value.outputs == {"TopicArn": "arn:topic"}
    (line,) = str(info.value).splitlines()
    assert line.startswith(f"{STACK}: the stack policy was not done: CloudFormation SetStackPolicy for {STACK} in ")
    assert "the caller may not cloudformation:SetStackPolicy" in line
    assert line.endswith("; run 'cfnbuild deploy --env dev' again to set it")
    assert f"{STACK}: UPDATE_COMPLETE" in engine.out.export_text()  # reported as finished
    written = json.loads((root / "output/dev/mini.outputs.json").read_text())  # the later step still ran
    assert written["Outputs"] == {"TopicArn": "arn:topic"}


def test_an_update_that_wants_no_stack_policy_never_reads_one(tmp_path):
    root = _mini_project(tmp_path, "stub")
    engine, stubber = _stubbed(root, STACK)
    _successful_update(stubber, _stack(STACK, "UPDATE_COMPLETE")["StackId"])
    with stubber:  # no GetStackPolicy stubbed: a call to it would fail the test
        outputs = _execute(engine, root, policy=False)
    stubber.assert_no_pending_responses()
    assert outputs == {"TopicArn": "arn:topic"}


ROLLED_BACK = """<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">
<DescribeStacksResult><Stacks><member>
<StackId>arn:aws:cloudformation:eu-west-1:123456789012:stack/mini-dev-rolled-back/1</StackId>
<StackName>mini-dev-rolled-back</StackName><StackStatus>ROLLBACK_COMPLETE</StackStatus>
<CreationTime>2026-01-01T00:00:00Z</CreationTime>
</member></Stacks></DescribeStacksResult>
<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></DescribeStacksResponse>"""


def test_outputs_of_a_stack_whose_create_rolled_back_are_refused_and_the_file_is_kept(tmp_path, monkeypatch):
    # The proxy answers DescribeStacks as AWS does for such a stack; nothing else is called.
    root = _mini_project(tmp_path, "rolled-back")
    outputs_file = root / "output/dev/mini.outputs.json"
    outputs_file.write_text('{"kept": true}\n')
    with FaultProxy("http://127.0.0.1:9") as proxy:
        proxy.arm([Fault("DescribeStacks", "reply", on=EVERY, body=ROLLED_BACK)])
        result = _cli(root, monkeypatch, tmp_path, "outputs", "--endpoint-url", proxy.endpoint_url)
        assert proxy.counts() == {"DescribeStacks": 1}
    assert result.stderr.splitlines() == [
        "error: mini-dev-rolled-back is ROLLBACK_COMPLETE: its outputs are not a working stack's; nothing was "
        "written (see 'cfnbuild status --env dev')"
    ]
    assert result.returncode == 1
    assert outputs_file.read_text() == '{"kept": true}\n'


def _cli(root: Path, monkeypatch, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "emulator")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "emulator")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "300")
    command = [sys.executable, "-m", "cfnbuild", "--project", str(root), *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT, stdin=subprocess.DEVNULL)


@pytest.mark.server
def test_a_no_op_deploy_writes_the_outputs_file(tmp_path, emulator, monkeypatch):
    root = _mini_project(tmp_path, "noop-outputs")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return _cli(root, monkeypatch, tmp_path, *args, "--endpoint-url", emulator.endpoint_url)

    outputs_file = root / "output/dev/mini.outputs.json"
    assert run("deploy", "--yes").returncode == 0
    outputs_file.unlink()
    again = run("deploy", "--yes")
    assert again.returncode == 0, again.stderr
    assert "no changes" in again.stdout
    document = json.loads(outputs_file.read_text())
    assert document["StackName"] == "mini-dev-noop-outputs"
    assert set(document["Outputs"]) | set(document.get("NotReturned", [])) == {"TopicArn", "QueueUrl"}


def _rolled_back_with(stubber, resources: list[dict]) -> dict:
    stack = _stack(STACK, "ROLLBACK_COMPLETE", Tags=[{"Key": "ManagedBy", "Value": "cfnbuild"}])
    stubber.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": STACK})
    stubber.add_response("list_stack_resources", {"StackResourceSummaries": resources}, {"StackName": stack["StackId"]})
    return stack


def _summary(logical: str, kind: str, status: str, physical: str = "") -> dict:
    summary = {
        "LogicalResourceId": logical,
        "ResourceType": kind,
        "ResourceStatus": status,
        "LastUpdatedTimestamp": datetime(2026, 1, 1, tzinfo=UTC),
    }
    if physical:
        summary["PhysicalResourceId"] = physical
    return summary


def test_recreate_failed_refuses_a_stack_that_left_resources_outside_any_stack_naming_them(tmp_path):
    root = _mini_project(tmp_path, "stub")
    engine, stubber = _stubbed(root, STACK)
    _rolled_back_with(
        stubber,
        [
            _summary("Queue", "AWS::SQS::Queue", "DELETE_SKIPPED", "https://sqs/q1"),
            _summary("Topic", "AWS::SNS::Topic", "DELETE_COMPLETE"),
        ],
    )
    with stubber, pytest.raises(Refused) as info:
        engine.deploy(Request("dev", "mini", yes=True, recreate_failed=True))
    stubber.assert_no_pending_responses()  # no DeleteStack
    assert str(info.value) == (
        f"{STACK} is ROLLBACK_COMPLETE and left 1 resource(s) outside any stack: Queue (AWS::SQS::Queue, "
        "https://sqs/q1); recreating it leaves them there for good. Delete them yourself if they hold nothing, or "
        "run again with --recreate-failed --allow-orphans"
    )
    said = engine.err.export_text()
    assert f"{STACK} kept Queue (AWS::SQS::Queue, https://sqs/q1) outside any stack when it rolled back" in said
    assert "Topic" not in said  # deleted by the rollback: nothing to say


def test_recreate_failed_with_allow_orphans_says_what_stays_and_deletes_the_stack(tmp_path):
    root = _mini_project(tmp_path, "stub")
    engine, stubber = _stubbed(root, STACK)
    stack = _rolled_back_with(
        stubber,
        [
            _summary("Queue", "AWS::SQS::Queue", "DELETE_SKIPPED", "https://sqs/q1"),
            _summary("Topic", "AWS::SNS::Topic", "DELETE_FAILED", "arn:topic"),
        ],
    )
    stubber.add_response("delete_stack", {}, {"StackName": stack["StackId"]})
    stubber.add_client_error("describe_stacks", "StopHere", "the test ends after the delete was asked for", 400)
    with stubber, pytest.raises(ClientError, match="StopHere"):
        engine.deploy(Request("dev", "mini", yes=True, recreate_failed=True, allow_orphans=True))
    said = engine.err.export_text()
    assert f"{STACK} kept Queue (AWS::SQS::Queue, https://sqs/q1) outside any stack when it rolled back" in said
    assert f"{STACK} still holds Topic (AWS::SNS::Topic, arn:topic), DELETE_FAILED; the delete tries again" in said
    assert "deleting it to create it anew" in said


def test_a_rolled_back_first_create_of_retain_except_on_create_resources_leaves_nothing_to_orphan(tmp_path):
    # After the first create rolled back, RetainExceptOnCreate deleted what it made: every
    # resource is DELETE_COMPLETE, so --recreate-failed goes on without --allow-orphans.
    root = _mini_project(tmp_path, "stub")
    template = json.loads((root / "output/dev/mini.json").read_text())
    assert template["Resources"]["Queue"]["DeletionPolicy"] == "RetainExceptOnCreate"
    engine, stubber = _stubbed(root, STACK)
    stack = _rolled_back_with(
        stubber,
        [
            _summary("Queue", "AWS::SQS::Queue", "DELETE_COMPLETE", "https://sqs/q1"),
            _summary("Topic", "AWS::SNS::Topic", "DELETE_COMPLETE", "arn:topic"),
        ],
    )
    stubber.add_response("delete_stack", {}, {"StackName": stack["StackId"]})
    stubber.add_client_error("describe_stacks", "StopHere", "the test ends after the delete was asked for", 400)
    with stubber, pytest.raises(ClientError, match="StopHere"):
        engine.deploy(Request("dev", "mini", yes=True, recreate_failed=True))
    said = engine.err.export_text()
    assert "outside any stack" not in said
    assert "still holds" not in said
    assert "deleting it to create it anew" in said
