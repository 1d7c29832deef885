"""Two deploys at once, and refusals that leave nothing behind.

Concurrent deploys run as real processes against the emulator (moto in server mode): from one
machine (they share the stack lock) and as if from two machines (each its own lock directory, so
only the stack's state in CloudFormation can tell them apart). What the emulator cannot answer on
demand — ExecuteChangeSet refused, a change set that FAILED — is scripted with botocore's Stubber.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from botocore.stub import Stubber
from rich.console import Console

from cfnbuild.deploy.aws import Aws, Target
from cfnbuild.deploy.changeset import ChangeSetFailed
from cfnbuild.deploy.engine import Engine, Request
from cfnbuild.deploy.lock import stack_lock
from cfnbuild.local.emulator import THROWAWAY_CREDENTIALS
from cfnbuild.project.app import load_project
from tests.cfnbuild.deploy.test_engine import FAST, _mini_project, _stack

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[3]


def _dir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="emulator",
        AWS_SECRET_ACCESS_KEY="emulator",  # noqa: S106  (the emulator's throwaway credentials)
        AWS_EC2_METADATA_DISABLED="true",
        XDG_CACHE_HOME=str(cache),
        COLUMNS="300",
    )
    return env


def _deploy(root: Path, endpoint: str, cache: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cfnbuild",
            "--project",
            str(root),
            "deploy",
            "--yes",
            "--endpoint-url",
            endpoint,
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=_env(cache),
        cwd=ROOT,
    )


def _finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=120)
    assert "Traceback" not in stderr, stderr
    return process.returncode, stderr


def _status(emulator, name: str) -> str:
    return str(emulator.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]["StackStatus"])


def test_a_second_deploy_from_this_machine_is_refused_naming_the_first_while_it_holds_the_stack(tmp_path, emulator):
    root = _mini_project(_dir(tmp_path / "p"), "lock-held")
    cache = tmp_path / "cache"
    holder = subprocess.Popen(  # another cfnbuild process holding the stack's lock, as a deploy does
        [
            sys.executable,
            "-c",
            "import sys, time; from cfnbuild.deploy.aws import Target; from cfnbuild.deploy.lock import stack_lock\n"
            f"with stack_lock(Target('mini-dev-lock-held', 'eu-west-1', None, {emulator.endpoint_url!r}), 'deploy', "
            "wait=False, say=print):\n    print('held', flush=True); sys.stdin.readline()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=_env(cache),
        cwd=ROOT,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        code, stderr = _finish(_deploy(root, emulator.endpoint_url, cache))
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert code == 1
        assert len(errors) == 1
        assert errors[0].startswith(f"error: another cfnbuild (pid {holder.pid}, 'deploy', since ")
        assert errors[0].endswith(
            "is working on mini-dev-lock-held in eu-west-1 on this machine; let it finish, or run again with --wait "
            "to wait for it"
        )
        stacks = emulator.client("cloudformation").list_stacks()["StackSummaries"]
        assert "mini-dev-lock-held" not in {s["StackName"] for s in stacks}  # nothing was called
        waiting = _deploy(root, emulator.endpoint_url, cache, "--wait")
        lines: queue.Queue[str] = queue.Queue()
        stream = waiting.stderr
        assert stream is not None
        reader = threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True)
        reader.start()
        said = [lines.get(timeout=120)]
        while "waiting for another cfnbuild" not in said[-1]:  # it says so before it waits
            said.append(lines.get(timeout=120))
        time.sleep(0.5)
        assert waiting.poll() is None  # and waits for the holder
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert waiting.wait(timeout=120) == 0, "".join(said)
        reader.join(timeout=10)
        said.extend(lines.queue)
        assert "Traceback" not in "".join(said), "".join(said)
    finally:
        holder.kill()
        holder.wait()
    assert _status(emulator, "mini-dev-lock-held") == "CREATE_COMPLETE"


def test_two_deploys_from_this_machine_at_once_are_serialized_with_wait(tmp_path, emulator):
    root = _mini_project(_dir(tmp_path / "p"), "two-here")
    cache = tmp_path / "cache"
    first, second = (_deploy(root, emulator.endpoint_url, cache, "--wait") for _ in range(2))
    results = [_finish(first), _finish(second)]
    assert [code for code, _ in results] == [0, 0], results
    assert _status(emulator, "mini-dev-two-here") == "CREATE_COMPLETE"
    assert sum("no changes" in stderr for _, stderr in results) <= 1


def test_two_deploys_from_two_machines_at_once_end_busy_or_done_never_advising_to_delete(tmp_path, emulator):
    root_a = _mini_project(_dir(tmp_path / "a"), "two-machines")
    root_b = _mini_project(_dir(tmp_path / "b"), "two-machines")
    first = _deploy(root_a, emulator.endpoint_url, tmp_path / "cache-a")
    second = _deploy(root_b, emulator.endpoint_url, tmp_path / "cache-b")
    results = [_finish(first), _finish(second)]
    for code, stderr in results:
        assert "--recreate-failed" not in stderr, stderr
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        if code:
            assert code == 1
            assert len(errors) == 1, stderr
            assert "busy" in errors[0] or "created by another client a moment ago" in errors[0], errors[0]
    assert 0 in [code for code, _ in results]
    assert _status(emulator, "mini-dev-two-machines") == "CREATE_COMPLETE"


def test_the_stack_lock_is_released_when_its_holder_ends(tmp_path):
    target = Target("any-stack", "eu-west-1")
    with stack_lock(target, "deploy", wait=False, say=print, directory=tmp_path):
        pass
    with stack_lock(target, "deploy", wait=False, say=print, directory=tmp_path):
        pass  # taken again: nothing was left held


def test_an_unwritable_lock_directory_is_said_and_the_command_goes_on(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    said: list[str] = []
    with stack_lock(Target("any-stack", "eu-west-1"), "deploy", wait=False, say=said.append, directory=blocker):
        pass
    assert len(said) == 1
    assert said[0].startswith(f"warning: cannot lock any-stack in {blocker} (")
    assert said[0].endswith("); going on unlocked")


# -- refusals that leave nothing behind (Stubber: the emulator cannot refuse on demand) --------


def _stubbed_engine(root: Path, stack_name: str) -> tuple[Engine, Stubber, Console]:
    project = load_project(root)
    aws = Aws(Target(stack_name, "eu-west-1", credentials=dict(THROWAWAY_CREDENTIALS)))
    client = aws.cloudformation
    err = Console(record=True, width=300)
    engine = Engine(project, aws, Console(record=True, width=300), err, poll=FAST, sleep=lambda _: None)
    return engine, Stubber(client), err


CHANGE_SET = "arn:aws:cloudformation:eu-west-1:123456789012:changeSet/cfnbuild-x/1"


def _create_flow(stubber: Stubber, stack: dict) -> None:
    stubber.add_client_error(
        "describe_stacks", "ValidationError", f"Stack with id {stack['StackName']} does not exist", 400
    )
    stubber.add_response("create_change_set", {"Id": CHANGE_SET, "StackId": stack["StackId"]})


def _description(stack: dict, **extra: object) -> dict:
    return {
        "ChangeSetId": CHANGE_SET,
        "ChangeSetName": "cfnbuild-x",
        "StackId": stack["StackId"],
        "StackName": stack["StackName"],
        "ExecutionStatus": "AVAILABLE",
        "Status": "CREATE_COMPLETE",
        "Changes": [
            {
                "Type": "Resource",
                "ResourceChange": {"Action": "Add", "LogicalResourceId": "Topic", "ResourceType": "AWS::SNS::Topic"},
            }
        ],
        **extra,
    }


def test_a_refused_execute_of_a_first_create_removes_its_change_set_and_the_empty_stack(tmp_path):
    root = _mini_project(tmp_path, "stub")
    engine, stubber, _ = _stubbed_engine(root, "mini-dev-stub")
    stack = _stack("mini-dev-stub", "REVIEW_IN_PROGRESS")
    _create_flow(stubber, stack)
    stubber.add_response("describe_change_set", _description(stack))
    stubber.add_client_error(
        "execute_change_set", "InsufficientCapabilitiesException", "Requires capabilities : [CAPABILITY_IAM]", 400
    )
    stubber.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET})
    stubber.add_response("delete_stack", {}, {"StackName": stack["StackId"]})
    from cfnbuild.deploy.aws import explain

    with stubber, pytest.raises(Exception) as info:  # noqa: PT011  (a botocore ClientError, mapped below)
        engine.deploy(Request("dev", "mini", yes=True))
    stubber.assert_no_pending_responses()  # the change set and the empty stack were deleted
    assert str(explain(info.value)).endswith(
        "InsufficientCapabilitiesException: Requires capabilities : [CAPABILITY_IAM]; removed change set cfnbuild-x "
        "and the empty stack mini-dev-stub this run made"
    )


def test_a_refused_execute_of_an_update_removes_its_change_set_and_leaves_the_stack_as_it_was(tmp_path):
    root = _mini_project(tmp_path, "stub")
    engine, stubber, _ = _stubbed_engine(root, "mini-dev-stub")
    stack = _stack("mini-dev-stub", "UPDATE_COMPLETE")
    stubber.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "mini-dev-stub"})
    stubber.add_response("get_template", {"TemplateBody": "{}"})
    stubber.add_response("create_change_set", {"Id": CHANGE_SET, "StackId": stack["StackId"]})
    stubber.add_response("describe_change_set", _description(stack))
    stubber.add_response("describe_stack_events", {"StackEvents": []})
    stubber.add_client_error("execute_change_set", "InvalidChangeSetStatus", "ChangeSet is in OBSOLETE state", 400)
    stubber.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET})
    from cfnbuild.deploy.aws import explain

    with stubber, pytest.raises(Exception) as info:  # noqa: PT011  (as above)
        engine.deploy(Request("dev", "mini", yes=True))
    stubber.assert_no_pending_responses()  # no delete_stack: the stack is as it was
    assert str(explain(info.value)).endswith(
        "InvalidChangeSetStatus: ChangeSet is in OBSOLETE state; removed change set cfnbuild-x; the stack is as it was"
    )


def test_a_change_set_that_failed_for_a_first_create_is_removed_with_its_empty_stack(tmp_path):
    root = _mini_project(tmp_path, "stub")
    engine, stubber, _ = _stubbed_engine(root, "mini-dev-stub")
    stack = _stack("mini-dev-stub", "REVIEW_IN_PROGRESS")
    _create_flow(stubber, stack)
    failed = _description(stack, Status="FAILED", StatusReason="Template error: unresolved resource dependencies")
    stubber.add_response("describe_change_set", failed)
    stubber.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET})
    stubber.add_response("delete_stack", {}, {"StackName": stack["StackId"]})
    with stubber, pytest.raises(ChangeSetFailed) as info:
        engine.plan(Request("dev", "mini"), keep=True)
    stubber.assert_no_pending_responses()
    assert str(info.value) == (
        "CloudFormation could not create change set cfnbuild-x: Template error: unresolved resource dependencies; "
        "removed change set cfnbuild-x and the empty stack mini-dev-stub this run made"
    )


def test_a_create_racing_another_clients_create_is_busy(tmp_path):
    root = _mini_project(tmp_path, "stub")
    engine, stubber, _ = _stubbed_engine(root, "mini-dev-stub")
    stubber.add_client_error("describe_stacks", "ValidationError", "Stack with id mini-dev-stub does not exist", 400)
    stubber.add_client_error(
        "create_change_set",
        "AlreadyExistsException",
        "Stack [mini-dev-stub] already exists and cannot be created again with the changeSet [cfnbuild-x].",
        400,
    )
    from cfnbuild.deploy.engine import StackBusy

    with stubber, pytest.raises(StackBusy, match="was created by another client a moment ago"):
        engine.deploy(Request("dev", "mini", yes=True))
    stubber.assert_no_pending_responses()


def test_a_live_change_set_is_judged_by_its_age(tmp_path):
    root = _mini_project(tmp_path, "stub")
    engine, stubber, _ = _stubbed_engine(root, "mini-dev-stub")
    stack = _stack("mini-dev-stub", "REVIEW_IN_PROGRESS")
    fresh = {"StackId": stack["StackId"], "ChangeSetName": "c", "Status": "CREATE_COMPLETE"}
    stubber.add_response(
        "list_change_sets",
        {"Summaries": [{**fresh, "ExecutionStatus": "AVAILABLE", "CreationTime": datetime.now(UTC)}]},
    )
    with stubber:
        live = engine._live_change_set(stack["StackId"])
    assert live is not None
    assert live[:2] == ("c", "ready to execute")


def test_a_create_another_client_executes_between_two_reads_is_busy_not_abandoned(tmp_path):
    # DescribeStacks says REVIEW_IN_PROGRESS; by the time ListChangeSets answers, the other
    # client has executed its change set. The stack is being created, not abandoned: busy, and
    # never the advice to delete it with --recreate-failed.
    root = _mini_project(tmp_path, "stub")
    engine, stubber, _ = _stubbed_engine(root, "mini-dev-stub")
    review = _stack("mini-dev-stub", "REVIEW_IN_PROGRESS")
    stubber.add_response("describe_stacks", {"Stacks": [review]})
    executed = {"StackId": review["StackId"], "ChangeSetName": "theirs", "Status": "CREATE_COMPLETE"}
    stubber.add_response(
        "list_change_sets",
        {"Summaries": [{**executed, "ExecutionStatus": "EXECUTE_COMPLETE", "CreationTime": datetime.now(UTC)}]},
    )
    stubber.add_response("describe_stacks", {"Stacks": [_stack("mini-dev-stub", "CREATE_IN_PROGRESS")]})
    stubber.add_response("describe_stacks", {"Stacks": [_stack("mini-dev-stub", "CREATE_IN_PROGRESS")]})
    from cfnbuild.deploy.engine import StackBusy

    with stubber, pytest.raises(StackBusy, match="is busy: CREATE_IN_PROGRESS") as raised:
        engine.deploy(Request("dev", "mini", yes=True))
    assert "--recreate-failed" not in str(raised.value)
    stubber.assert_no_pending_responses()
