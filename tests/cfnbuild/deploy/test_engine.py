"""The deploy engine against the emulator (moto in server mode, over HTTP), and, for the stack
states the emulator cannot produce (ROLLBACK_COMPLETE, busy stacks, UPDATE_ROLLBACK_FAILED, a
failed update), against botocore's Stubber.

Known emulator limits these tests respect rather than hide: after ExecuteChangeSet moto emits
only stack-level events (its Outputs are the executed template's: :mod:`cfnbuild.local.emulator`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from botocore.stub import Stubber
from rich.console import Console

from cfnbuild.deploy.aws import Aws, Target
from cfnbuild.deploy.engine import DeployedStack, DeployFailed, Engine, Refused, Request, StackBusy
from cfnbuild.deploy.events import PollSettings
from cfnbuild.local.emulator import THROWAWAY_CREDENTIALS
from cfnbuild.project.app import load_project
from tests.inprocess import build_here

FAST = PollSettings(min_seconds=0.01, max_seconds=0.02, timeout_seconds=60)

MINI_APP = """
from dataclasses import dataclass

from troposphere import Ref, sns, sqs

from cfnbuild import App, Blueprint, EnvironmentConfig, Stack, StackSpec, setting


class MiniConfig(EnvironmentConfig):
    keep_queue: bool = True
    topic_label: str = "v1"


@dataclass(frozen=True)
class Inputs:
    keep_queue: bool = setting(True, "Keep the stateful queue.")
    topic_label: str = setting("v1", "The topic's display name.")


class Mini(Blueprint[Inputs]):
    def build(self) -> None:
        topic = self.add(sns.Topic("Topic", DisplayName=self.inputs.topic_label))
        self.output("TopicArn", Ref(topic), "The topic.")
        if self.inputs.keep_queue:
            queue = sqs.Queue("Queue", SqsManagedSseEnabled=True, MessageRetentionPeriod=345600)
            self.add(queue, stateful=True)
            self.output("QueueUrl", Ref(queue), "The queue.")


def build(config: MiniConfig) -> Stack:
    stack = Stack("mini", description="mini", project=config.project, environment=config.environment)
    Mini(stack, Inputs(keep_queue=config.keep_queue, topic_label=config.topic_label))
    return stack


app = App(config_model=MiniConfig, stacks=[StackSpec("mini", build)])
"""


def _mini_project(tmp_path: Path, suffix: str, **config: object) -> Path:
    (tmp_path / "pyproject.toml").write_text('[tool.cfnbuild]\napp = "mini_app:app"\ndefault_env = "dev"\n')
    (tmp_path / "mini_app.py").write_text(MINI_APP)
    (tmp_path / "config").mkdir(exist_ok=True)
    _configure(tmp_path, suffix, **config)
    return tmp_path


def _configure(root: Path, suffix: str, **config: object) -> None:
    lines = ['project = "mini"', 'regions = ["eu-west-1"]']
    lines += [f"{k} = {json.dumps(v)}" for k, v in config.items()]
    lines += ["[deploy]", f'stack_name_suffix = "{suffix}"']
    (root / "config/dev.toml").write_text("\n".join(lines) + "\n")
    build_here(root)


def _engine(root: Path, emulator, stack_name: str, *, confirm=None) -> tuple[Engine, Console]:
    project = load_project(root)
    target = Target(
        stack_name, "eu-west-1", endpoint_url=emulator.endpoint_url, credentials=dict(THROWAWAY_CREDENTIALS)
    )
    out = Console(record=True, width=200, force_terminal=False)
    return Engine(project, Aws(target), out, Console(record=True, width=200), poll=FAST, confirm=confirm), out


@pytest.fixture
def mini(tmp_path, emulator, request):
    suffix = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[-30:].strip("-")
    root = _mini_project(tmp_path, suffix)
    stack_name = f"mini-dev-{suffix}"
    return root, stack_name


def _change_sets(emulator, stack_name: str) -> list:
    """Change sets of this stack still waiting to be executed (strays). The emulator lists every
    stack's change sets and keeps executed ones, which AWS removes; both are filtered out here."""
    cloudformation = emulator.client("cloudformation")
    try:
        summaries = cloudformation.list_change_sets(StackName=stack_name)["Summaries"]
    except cloudformation.exceptions.ClientError:
        return []
    return [
        s
        for s in summaries
        if s["StackName"] == stack_name and s.get("ExecutionStatus") not in ("EXECUTE_COMPLETE", "OBSOLETE")
    ]


def test_deploy_creates_the_stack_and_writes_the_outputs_the_stack_returns_to_the_outputs_file(mini, emulator):
    root, stack_name = mini
    engine, out = _engine(root, emulator, stack_name)
    engine.deploy(Request("dev", "mini", yes=True))
    stack = emulator.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {t["Key"]: t["Value"] for t in stack["Tags"]}["ManagedBy"] == "cfnbuild"
    written = json.loads((root / "output/dev/mini.outputs.json").read_text())
    assert written["StackName"] == stack_name
    assert written["Outputs"]["TopicArn"].startswith("arn:aws:sns:eu-west-1:"), written
    assert f"{stack_name}-Queue-" in written["Outputs"]["QueueUrl"], written
    assert "NotReturned" not in written, "every output is of a resource the emulator models"
    assert "Add" in out.export_text()


def test_second_deploy_with_nothing_changed_creates_no_change_set(mini, emulator):
    root, stack_name = mini
    engine, _ = _engine(root, emulator, stack_name)
    engine.deploy(Request("dev", "mini", yes=True))
    before = emulator.client("cloudformation").describe_stack_events(StackName=stack_name)["StackEvents"]
    engine, out = _engine(root, emulator, stack_name)
    engine.deploy(Request("dev", "mini", yes=True))
    assert f"{stack_name}: no changes" in out.export_text()
    assert _change_sets(emulator, stack_name) == []
    after = emulator.client("cloudformation").describe_stack_events(StackName=stack_name)["StackEvents"]
    assert len(after) == len(before)


def test_update_reaches_update_complete(mini, emulator):
    root, stack_name = mini
    _engine(root, emulator, stack_name)[0].deploy(Request("dev", "mini", yes=True))
    _configure(root, stack_name.removeprefix("mini-dev-"), topic_label="v2")
    engine, out = _engine(root, emulator, stack_name)
    engine.deploy(Request("dev", "mini", yes=True))
    cloudformation = emulator.client("cloudformation")
    assert cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    assert "Modify" in out.export_text()
    assert _change_sets(emulator, stack_name) == []


def test_removing_a_stateful_resource_is_refused_without_allow_replace_and_changes_nothing(mini, emulator):
    root, stack_name = mini
    _engine(root, emulator, stack_name)[0].deploy(Request("dev", "mini", yes=True))
    cloudformation = emulator.client("cloudformation")
    status_before = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"]
    _configure(root, stack_name.removeprefix("mini-dev-"), keep_queue=False)
    engine, out = _engine(root, emulator, stack_name)
    with pytest.raises(Refused, match=r"stateful resource\(s\) Queue.*--allow-replace Queue"):
        engine.deploy(Request("dev", "mini", yes=True))
    assert "DANGER" in out.export_text()
    assert _change_sets(emulator, stack_name) == []
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    assert stack["StackStatus"] == status_before
    resources = {
        r["LogicalResourceId"]
        for r in cloudformation.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
    }
    assert "Queue" in resources


def test_allow_replace_lets_the_named_removal_through_and_puts_the_stack_policy_back(mini, emulator):
    root, stack_name = mini
    _engine(root, emulator, stack_name)[0].deploy(Request("dev", "mini", yes=True))
    cloudformation = emulator.client("cloudformation")
    policy = json.loads(cloudformation.get_stack_policy(StackName=stack_name)["StackPolicyBody"])
    assert policy["Statement"][1]["Resource"] == ["LogicalResourceId/Queue"]
    _configure(root, stack_name.removeprefix("mini-dev-"), keep_queue=False)
    engine, _ = _engine(root, emulator, stack_name)
    engine.deploy(Request("dev", "mini", yes=True, allow_replace=("Queue",)))
    assert cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    policy = json.loads(cloudformation.get_stack_policy(StackName=stack_name)["StackPolicyBody"])
    assert len(policy["Statement"]) == 1  # nothing stateful is left to protect


def test_a_destructive_plan_needs_the_stack_name_typed(mini, emulator):
    root, stack_name = mini
    _engine(root, emulator, stack_name)[0].deploy(Request("dev", "mini", yes=True))
    _configure(root, stack_name.removeprefix("mini-dev-"), keep_queue=False)
    asked: list[str] = []
    engine, _ = _engine(root, emulator, stack_name, confirm=lambda question: asked.append(question) or "nope")
    with pytest.raises(Refused, match="not confirmed"):
        engine.deploy(Request("dev", "mini", allow_replace=("Queue",)))
    assert f"Type the stack name ({stack_name})" in asked[0]
    assert _change_sets(emulator, stack_name) == []


def test_without_a_terminal_or_yes_nothing_is_deployed(mini, emulator):
    root, stack_name = mini
    engine, _ = _engine(root, emulator, stack_name)
    with pytest.raises(Refused, match="pass --yes"):
        engine.deploy(Request("dev", "mini"))
    with pytest.raises(emulator.client("cloudformation").exceptions.ClientError, match="does not exist"):
        emulator.client("cloudformation").describe_stacks(StackName=stack_name)


def test_plan_of_a_new_stack_leaves_nothing_behind(mini, emulator):
    root, stack_name = mini
    engine, _ = _engine(root, emulator, stack_name)
    plan, _ = engine.plan(Request("dev", "mini"), keep=False)
    assert plan.counts()["add"] == 2
    assert plan.change_set_type == "CREATE"
    with pytest.raises(emulator.client("cloudformation").exceptions.ClientError, match="does not exist"):
        emulator.client("cloudformation").describe_stacks(StackName=stack_name)


def test_saved_plan_executes_exactly_that_change_set(mini, emulator, tmp_path):
    from cfnbuild.deploy.plan import save_plan

    root, stack_name = mini
    _engine(root, emulator, stack_name)[0].deploy(Request("dev", "mini", yes=True))
    _configure(root, stack_name.removeprefix("mini-dev-"), topic_label="v3")
    engine, _ = _engine(root, emulator, stack_name)
    plan, created = engine.plan(Request("dev", "mini"), keep=True)
    saved = tmp_path / "dev.plan"
    save_plan(plan, saved)
    engine, _ = _engine(root, emulator, stack_name)
    engine.deploy(Request("dev", "mini", yes=True, plan_file=saved))
    cloudformation = emulator.client("cloudformation")
    assert cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    assert created is not None
    assert plan.change_set_id == created.id


def test_saved_plan_is_refused_when_the_template_changed_since(mini, emulator, tmp_path):
    from cfnbuild.deploy.plan import save_plan

    root, stack_name = mini
    _engine(root, emulator, stack_name)[0].deploy(Request("dev", "mini", yes=True))
    suffix = stack_name.removeprefix("mini-dev-")
    _configure(root, suffix, topic_label="v4")
    engine, _ = _engine(root, emulator, stack_name)
    plan, _ = engine.plan(Request("dev", "mini"), keep=True)
    saved = tmp_path / "dev.plan"
    save_plan(plan, saved)
    _configure(root, suffix, topic_label="v5")
    engine, _ = _engine(root, emulator, stack_name)
    with pytest.raises(Refused, match="was made from another template"):
        engine.deploy(Request("dev", "mini", yes=True, plan_file=saved))


def test_saved_plan_is_refused_when_the_stack_changed_since(mini, emulator, tmp_path):
    from cfnbuild.deploy.plan import save_plan

    root, stack_name = mini
    _engine(root, emulator, stack_name)[0].deploy(Request("dev", "mini", yes=True))
    suffix = stack_name.removeprefix("mini-dev-")
    _configure(root, suffix, topic_label="v6")
    engine, _ = _engine(root, emulator, stack_name)
    plan, _ = engine.plan(Request("dev", "mini"), keep=True)
    saved = tmp_path / "dev.plan"
    save_plan(plan, saved)
    _engine(root, emulator, stack_name)[0].deploy(Request("dev", "mini", yes=True))  # someone deploys meanwhile
    engine, _ = _engine(root, emulator, stack_name)
    with pytest.raises(Refused, match="changed since the plan was made"):
        engine.deploy(Request("dev", "mini", yes=True, plan_file=saved))


def test_a_stale_template_is_refused_before_anything_is_sent(mini, emulator):
    root, stack_name = mini
    config = root / "config/dev.toml"
    config.write_text(
        config.read_text().replace('regions = ["eu-west-1"]', 'regions = ["eu-west-1"]\ntopic_label = "x"')
    )
    engine, _ = _engine(root, emulator, stack_name)
    with pytest.raises(Exception, match="is stale; run 'cfnbuild build --env dev'"):
        engine.deploy(Request("dev", "mini", yes=True))


def test_an_unknown_parameter_override_names_the_option(mini, emulator):
    root, stack_name = mini
    engine, _ = _engine(root, emulator, stack_name)
    with pytest.raises(Exception, match=r"--param Nope: the template has no parameter 'Nope'"):
        engine.deploy(Request("dev", "mini", yes=True, param_overrides={"Nope": "1"}))


def _cli(root: Path, emulator, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "emulator",
        "AWS_SECRET_ACCESS_KEY": "emulator",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "cfnbuild", "--project", str(root), *args, "--endpoint-url", emulator.endpoint_url],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_plan_exit_codes_and_json_and_markdown_output(mini, emulator):
    root, stack_name = mini
    result = _cli(root, emulator, "plan", "--json")
    assert result.returncode == 2, result.stderr
    document = json.loads(result.stdout)
    assert document["format"] == "cfnbuild-plan/1"
    assert document["stack_name"] == stack_name
    markdown = _cli(root, emulator, "plan", "--markdown")
    assert markdown.returncode == 2
    assert "| Add |" in markdown.stdout or "| add |" in markdown.stdout.lower()
    assert _cli(root, emulator, "deploy", "--yes").returncode == 0
    unchanged = _cli(root, emulator, "plan")
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr


def test_delete_says_what_it_keeps_and_removes_the_stack(mini, emulator):
    root, stack_name = mini
    assert _cli(root, emulator, "deploy", "--yes").returncode == 0
    result = _cli(root, emulator, "delete", "--yes")
    assert result.returncode == 0, result.stderr
    assert f"deleting {stack_name} keeps Queue" in result.stdout
    status = emulator.client("cloudformation").list_stacks()["StackSummaries"]
    assert all(s["StackStatus"] == "DELETE_COMPLETE" for s in status if s["StackName"] == stack_name)


def test_main_job_deploy_local_creates_the_webapp_stack(project_dir):
    root = Path(__file__).resolve().parents[3]
    shutil.copy(root / "pyproject.toml", project_dir / "pyproject.toml")  # the artifact is built from it
    shutil.copytree(root / "flask_app", project_dir / "flask_app")
    subprocess.run(
        [sys.executable, "-m", "cfnbuild", "--project", str(project_dir), "build", "--env", "dev"],
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        [sys.executable, "-m", "cfnbuild", "--project", str(project_dir), "deploy", "--local"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the embedded AWS emulator (moto)" in result.stderr
    # the three stacks, in the order of their references (the README's main job)
    done = [result.stdout.index(f"{name}-dev AWS::CloudFormation::Stack CREATE_COMPLETE") for name in STACKS]
    assert done == sorted(done), result.stdout
    outputs = json.loads((project_dir / "output/dev/webapp.outputs.json").read_text())
    assert outputs["StackName"] == "webapp-dev"
    assert "parameter AppArtifactKey: releases/" in result.stderr


STACKS = ("network", "data", "webapp")  # the flagship's, in deploy order

# Modules a deploy of a built, unchanged checkout has no use for: rendering needs them (and the
# artifact builder, in blueprints, its own), a build record (cfnbuild/project/record.py) stands in for
# rendering and an artifact record for building.
RENDER_ONLY_MODULES = ("blueprints", "troposphere", "awacs", "cfnlint", "pydantic")


def _imported(stderr: str) -> set[str]:
    """Top-level modules named by ``python -X importtime`` on stderr."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_a_deploy_of_the_built_webapp_checkout_renders_nothing_and_imports_no_render_module(project_dir, emulator):
    root = Path(__file__).resolve().parents[3]
    shutil.copy(root / "pyproject.toml", project_dir / "pyproject.toml")
    shutil.copytree(root / "flask_app", project_dir / "flask_app")
    config = project_dir / "config/dev.toml"
    config.write_text(config.read_text() + '\n[deploy]\nstack_name_suffix = "no-render"\n')
    subprocess.run(
        [sys.executable, "-m", "cfnbuild", "--project", str(project_dir), "build", "--env", "dev"],
        check=True,
        capture_output=True,
    )
    # The emulator keeps the secret a placeholder, so the data stack returns no DbSecretArn here: it is given.
    secret = ["--param", "DataDbSecretArn=arn:aws:secretsmanager:eu-west-1:123456789012:secret:db"]
    first = _cli(project_dir, emulator, "deploy", "--env", "dev", "--yes", *secret)  # builds and records the artifact
    assert first.returncode == 0, first.stderr[-3000:]
    # The artifact went to the data stack's assets bucket, whose name the web app took as a parameter.
    data = emulator.client("cloudformation").describe_stacks(StackName="data-dev-no-render")["Stacks"][0]
    bucket = {o["OutputKey"]: o["OutputValue"] for o in data["Outputs"]}["AssetsBucketName"]
    keys = [o["Key"] for o in emulator.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]
    (key,) = keys
    assert key.startswith("releases/"), keys
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "emulator", "AWS_SECRET_ACCESS_KEY": "emulator", "COLUMNS": "200"}
    command = ["-m", "cfnbuild", "--project", str(project_dir), "deploy", "--env", "dev", "--yes", *secret]
    second = subprocess.run(
        [sys.executable, "-X", "importtime", *command, "--endpoint-url", emulator.endpoint_url],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert second.returncode == 0, second.stderr[-3000:]
    assert "no changes" in (second.stdout + second.stderr).lower()
    assert "no build record vouches" not in second.stderr
    assert "boto3" in _imported(second.stderr)  # the check itself reads importtime's lines
    assert sorted(_imported(second.stderr) & set(RENDER_ONLY_MODULES)) == []


def test_a_blueprint_edited_after_build_is_refused_as_stale_by_the_command(mini, emulator):
    root, _ = mini
    source = root / "mini_app.py"
    source.write_text(source.read_text().replace('sns.Topic("Topic", ', 'sns.Topic("Topic", FifoTopic=False, '))
    result = _cli(root, emulator, "deploy", "--yes")
    assert result.returncode == 2, result.stderr
    assert "no build record vouches for output/dev/mini.json (an input changed since build)" in result.stderr
    assert "output/dev/mini.json is stale; run 'cfnbuild build --env dev'" in result.stderr


def test_a_deploy_that_had_to_render_records_it_so_the_next_need_not(mini, emulator):
    from cfnbuild.project.record import record_path, verified

    root, stack_name = mini
    record_path(root, "dev").unlink()
    assert verified(root, "dev") is None
    engine, _ = _engine(root, emulator, stack_name)
    engine.deploy(Request("dev", "mini", yes=True))
    assert "no build record vouches for output/dev/mini.json (none written yet)" in engine.err.export_text()
    assert verified(root, "dev") is not None


# ---------------------------------------------------------------- states the emulator cannot produce


def _stubbed(root: Path, stack_name: str) -> tuple[Engine, Stubber]:
    project = load_project(root)
    aws = Aws(Target(stack_name, "eu-west-1", credentials=dict(THROWAWAY_CREDENTIALS)))
    client = aws.cloudformation  # cfnbuild's own client, its call notes included; Stubber answers for AWS
    engine = Engine(
        project, aws, Console(record=True, width=200), Console(record=True, width=200), poll=FAST, sleep=lambda _: None
    )
    return engine, Stubber(client)


def _stack(name: str, status: str, **extra: object) -> dict:
    return {
        "StackId": f"arn:aws:cloudformation:eu-west-1:123456789012:stack/{name}/1",
        "StackName": name,
        "StackStatus": status,
        "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
        **extra,
    }


@pytest.mark.parametrize(
    ("status", "explained"),
    [
        ("ROLLBACK_COMPLETE", "its creation failed and was rolled back; it can only be deleted"),
        ("REVIEW_IN_PROGRESS", "it was made for a change set that was never executed"),
    ],
)
def test_a_failed_create_is_explained_and_refused_without_recreate_failed(tmp_path, status, explained):
    root = _mini_project(tmp_path, "stub")
    engine, stubber = _stubbed(root, "mini-dev-stub")
    stubber.add_response(
        "describe_stacks", {"Stacks": [_stack("mini-dev-stub", status)]}, {"StackName": "mini-dev-stub"}
    )
    if status == "REVIEW_IN_PROGRESS":  # no change set of another client is alive: abandoned
        stubber.add_response(
            "list_change_sets", {"Summaries": []}, {"StackName": _stack("mini-dev-stub", status)["StackId"]}
        )
        # read again (another client may have executed its change set meanwhile): still in review
        stubber.add_response(
            "describe_stacks", {"Stacks": [_stack("mini-dev-stub", status)]}, {"StackName": "mini-dev-stub"}
        )
    with stubber, pytest.raises(Refused, match=f"{status}: {explained}.*--recreate-failed"):
        engine.deploy(Request("dev", "mini", yes=True))
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("change_set", "said"),
    [
        ({"Status": "CREATE_IN_PROGRESS", "ExecutionStatus": "UNAVAILABLE"}, "being made"),
        ({"Status": "CREATE_COMPLETE", "ExecutionStatus": "EXECUTE_IN_PROGRESS"}, "executing"),
        ({"Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE"}, "ready to execute"),
    ],
)
def test_a_stack_in_review_with_another_clients_live_change_set_is_busy_not_abandoned(tmp_path, change_set, said):
    root = _mini_project(tmp_path, "stub")
    engine, stubber = _stubbed(root, "mini-dev-stub")
    stack = _stack("mini-dev-stub", "REVIEW_IN_PROGRESS")
    stubber.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "mini-dev-stub"})
    summary = {
        "StackId": stack["StackId"],
        "StackName": "mini-dev-stub",
        "ChangeSetName": "cfnbuild-20261203-other",
        "CreationTime": datetime.now(UTC),
        **change_set,
    }
    stubber.add_response("list_change_sets", {"Summaries": [summary]}, {"StackName": stack["StackId"]})
    with stubber, pytest.raises(StackBusy) as info:
        engine.deploy(Request("dev", "mini", yes=True, recreate_failed=True))
    message = str(info.value)
    assert f"mini-dev-stub is busy: REVIEW_IN_PROGRESS, change set cfnbuild-20261203-other {said}" in message
    assert "run again with --wait" in message
    assert "--recreate-failed" not in message
    stubber.assert_no_pending_responses()  # nothing deleted, nothing created


def test_a_stack_in_review_whose_change_set_is_old_is_abandoned_and_may_be_recreated(tmp_path):
    root = _mini_project(tmp_path, "stub")
    engine, stubber = _stubbed(root, "mini-dev-stub")
    stack = _stack("mini-dev-stub", "REVIEW_IN_PROGRESS")
    stubber.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "mini-dev-stub"})
    old = {
        "StackId": stack["StackId"],
        "ChangeSetName": "cfnbuild-20260101-old",
        "Status": "CREATE_COMPLETE",
        "ExecutionStatus": "AVAILABLE",
        "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
    }
    stubber.add_response("list_change_sets", {"Summaries": [old]}, {"StackName": stack["StackId"]})
    stubber.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "mini-dev-stub"})  # read again
    with stubber, pytest.raises(Refused, match=r"never executed.*Run again with --recreate-failed"):
        engine.deploy(Request("dev", "mini", yes=True))


def test_recreate_failed_refuses_a_stack_cfnbuild_did_not_make(tmp_path):
    root = _mini_project(tmp_path, "stub")
    engine, stubber = _stubbed(root, "mini-dev-stub")
    stack = _stack("mini-dev-stub", "ROLLBACK_COMPLETE", Tags=[{"Key": "ManagedBy", "Value": "someone-else"}])
    stubber.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "mini-dev-stub"})
    with stubber, pytest.raises(Refused, match="does not carry the tag ManagedBy=cfnbuild"):
        engine.deploy(Request("dev", "mini", yes=True, recreate_failed=True))


def test_a_busy_stack_is_refused_without_wait(tmp_path):
    root = _mini_project(tmp_path, "stub")
    engine, stubber = _stubbed(root, "mini-dev-stub")
    stubber.add_response(
        "describe_stacks", {"Stacks": [_stack("mini-dev-stub", "UPDATE_IN_PROGRESS")]}, {"StackName": "mini-dev-stub"}
    )
    with stubber, pytest.raises(Refused, match=r"busy: UPDATE_IN_PROGRESS; run again with --wait"):
        engine.deploy(Request("dev", "mini", yes=True))


def test_update_rollback_failed_points_to_recover(tmp_path):
    root = _mini_project(tmp_path, "stub")
    engine, stubber = _stubbed(root, "mini-dev-stub")
    stubber.add_response(
        "describe_stacks",
        {"Stacks": [_stack("mini-dev-stub", "UPDATE_ROLLBACK_FAILED")]},
        {"StackName": "mini-dev-stub"},
    )
    with stubber, pytest.raises(Refused, match="cfnbuild recover --env dev"):
        engine.deploy(Request("dev", "mini", yes=True))


def test_a_failed_update_prints_the_root_cause_and_fails(tmp_path):
    from cfnbuild.deploy import changeset
    from cfnbuild.deploy.engine import Prepared
    from cfnbuild.deploy.plan import build_plan

    root = _mini_project(tmp_path, "stub")
    engine, stubber = _stubbed(root, "mini-dev-stub")
    stack_id = _stack("mini-dev-stub", "UPDATE_COMPLETE")["StackId"]
    when = datetime(2026, 1, 1, 12, tzinfo=UTC)
    marker = {
        "EventId": "e0",
        "StackId": stack_id,
        "StackName": "mini-dev-stub",
        "LogicalResourceId": "mini-dev-stub",
        "Timestamp": when,
    }

    def event(n: int, logical: str, status: str, reason: str = "", kind: str = "AWS::SQS::Queue") -> dict:
        return {
            "EventId": f"e{n}", "StackId": stack_id, "StackName": "mini-dev-stub", "LogicalResourceId": logical,
            "PhysicalResourceId": stack_id if kind == "AWS::CloudFormation::Stack" else logical, "ResourceType": kind,
            "Timestamp": when.replace(second=n), "ResourceStatus": status, "ResourceStatusReason": reason,
        }  # fmt: skip

    stubber.add_response("describe_stack_events", {"StackEvents": [marker]}, {"StackName": stack_id})
    stubber.add_response("execute_change_set", {}, None)
    stubber.add_response("describe_stacks", {"Stacks": [_stack("mini-dev-stub", "UPDATE_ROLLBACK_COMPLETE")]}, None)
    events = [
        event(4, "mini-dev-stub", "UPDATE_ROLLBACK_COMPLETE", kind="AWS::CloudFormation::Stack"),
        event(3, "Topic", "UPDATE_FAILED", "Resource update cancelled", "AWS::SNS::Topic"),
        event(2, "Queue", "UPDATE_FAILED", "Queue name already exists"),
        event(1, "mini-dev-stub", "UPDATE_IN_PROGRESS", "User Initiated", "AWS::CloudFormation::Stack"),
        marker,
    ]
    stubber.add_response("describe_stack_events", {"StackEvents": events}, None)
    for _ in range(3):  # root cause reading back the events (as many pages as it asks for)
        stubber.add_response("describe_stack_events", {"StackEvents": events}, None)
    template = json.loads((root / "output/dev/mini.json").read_text())
    plan = build_plan(
        stack_name="mini-dev-stub", change_set={"Changes": []}, new_template=template, old_template=template,
        new_parameters={}, old_parameters={}, new_tags={}, old_tags={}, template_hash="h", stack_last_updated=None,
    )  # fmt: skip
    prepared = Prepared(template, "{}", "h", {}, frozenset(), {}, [], False, None)
    created = changeset.ChangeSet("arn:cs", stack_id, {})
    with stubber, pytest.raises(DeployFailed) as info:
        engine._execute(  # the path after confirmation, with AWS's answers scripted
            request=Request("dev", "mini", yes=True), stack_name="mini-dev-stub",
            deployed=DeployedStack.from_api(_stack("mini-dev-stub", "UPDATE_COMPLETE")),
            prepared=prepared, plan=plan, created=created,
        )  # fmt: skip
    expected = (
        "ended UPDATE_ROLLBACK_COMPLETE; root cause: Queue (AWS::SQS::Queue) UPDATE_FAILED: Queue name already exists"
    )
    assert f"mini-dev-stub {expected}" in str(info.value)
    assert info.value.exit_code == 1


@pytest.mark.parametrize(
    ("local", "said"),
    [
        (
            False,
            r"stopped watching; the create of .* goes on in AWS\. Follow it with: cfnbuild status --env dev --follow",
        ),
        (True, r"stopped; the create of .* ends with the embedded emulator, which stops with this command"),
    ],
    ids=["aws", "local"],
)
def test_ctrl_c_while_watching_says_how_to_resume(mini, emulator, monkeypatch, local, said):
    from cfnbuild.deploy import engine as engine_module
    from cfnbuild.deploy.engine import Interrupted

    root, stack_name = mini

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine_module, "watch", interrupted)
    engine, _ = _engine(root, emulator, stack_name)
    if not local:  # the same endpoint, reached as AWS is: credentials from the environment
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "emulator")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "emulator")
        engine.aws = Aws(Target(stack_name, "eu-west-1", endpoint_url=emulator.endpoint_url))
    with pytest.raises(Interrupted, match=said) as info:
        engine.deploy(Request("dev", "mini", yes=True))
    assert info.value.exit_code == 130


def test_mini_app_source_is_valid_python():
    compile(textwrap.dedent(MINI_APP), "mini_app.py", "exec")
