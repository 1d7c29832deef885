"""StackSets delivery against the emulator (moto in server mode, over HTTP), and, for what the
emulator cannot play, against botocore's Stubber.

What moto 5.2 plays, tested here on it: CreateStackSet (also from a staged TemplateURL),
CreateStackInstances in two accounts x two regions (each instance's stack is really created in
that account's and region's backend), UpdateStackSet for named accounts and regions (an UPDATE
operation with a result per instance), DescribeStackSetOperation, ListStackSetOperationResults,
ListStackSetOperations and ListStackInstances. It names each instance's stack ``StackSet:<name>``,
an invalid name that breaks the SNS topic in it; :mod:`cfnbuild.local.emulator` renames it the AWS way.

What it cannot play: every operation ends SUCCEEDED at once, so a RUNNING, FAILED or STOPPED
operation, a failed instance and a failure tolerance exceeded are scripted with Stubber; each such
test says so.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from rich.console import Console

from cfnbuild.deliver.stacksets import (
    Delivery,
    OperationTimeout,
    Preferences,
    StackSetDelivery,
    parse_delivery,
    rectangles,
)
from cfnbuild.deploy import staging
from cfnbuild.deploy.aws import Aws, Target
from cfnbuild.deploy.engine import DeployFailed, Engine, Refused, Request
from cfnbuild.deploy.events import PollSettings
from cfnbuild.errors import UsageError
from cfnbuild.local.emulator import THROWAWAY_CREDENTIALS
from cfnbuild.project.app import load_project
from cfnbuild.project.writer import render, write_atomic

FAST = PollSettings(min_seconds=0.01, max_seconds=0.02, timeout_seconds=60)
A, B = "111111111111", "222222222222"
WEST, CENTRAL = "eu-west-1", "eu-central-1"
ADMIN = "123456789012"  # the emulator's own account

# Its own module name: the deploy engine's tests import a "mini_app" of another shape.
APP = """
from dataclasses import dataclass

from troposphere import Join, Ref, sns

from cfnbuild import App, Blueprint, EnvironmentConfig, Stack, StackSpec, setting


class SetConfig(EnvironmentConfig):
    topic_label: str = "v1"


@dataclass(frozen=True)
class Inputs:
    topic_label: str = setting("v1", "The first part of the topic's display name.")


class Topic(Blueprint[Inputs]):
    def build(self) -> None:
        greeting = self.parameter("Greeting", Type="String", Default="hello", AllowedPattern="^[a-z]+$")
        self.add(sns.Topic("Topic", DisplayName=Join("-", [self.inputs.topic_label, Ref(greeting)])))


def build(config: SetConfig) -> Stack:
    stack = Stack("mini", description="stack set test", project=config.project, environment=config.environment)
    Topic(stack, Inputs(topic_label=config.topic_label))
    return stack


app = App(config_model=SetConfig, stacks=[StackSpec("mini", build)])
"""


def _configure(root: Path, suffix: str, *, parameters: dict[str, str] | None = None, **config: object) -> None:
    lines = ['project = "mini"', 'regions = ["eu-west-1"]']
    lines += [f"{k} = {json.dumps(v)}" for k, v in config.items()]
    lines += ["[deploy]", f'stack_name_suffix = "{suffix}"']
    if parameters:
        lines.append("parameters = { " + ", ".join(f'{k} = "{v}"' for k, v in parameters.items()) + " }")
    (root / "config/dev.toml").write_text("\n".join(lines) + "\n")
    project = load_project(root)
    for item in render(project, ["dev"]):
        write_atomic(item.path, item.text)


def _project(root: Path, suffix: str, **config: Any) -> Path:
    (root / "pyproject.toml").write_text('[tool.cfnbuild]\napp = "stackset_app:app"\ndefault_env = "dev"\n')
    (root / "stackset_app.py").write_text(APP)
    (root / "config").mkdir(exist_ok=True)
    _configure(root, suffix, **config)
    return root


@pytest.fixture
def mini(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, str]:
    suffix = request.node.name.replace("_", "-")[-30:].strip("-[]").replace("[", "-")
    return _project(tmp_path, suffix), f"mini-dev-{suffix}"


def _delivery(
    root: Path,
    emulator: Any,
    delivery: Delivery,
    *,
    params: dict[str, str] | None = None,
    yes: bool = True,
    confirm: Any = None,
) -> tuple[StackSetDelivery, Console]:
    project = load_project(root)
    name = project.config("dev").stack_name("mini")
    target = Target(name, WEST, endpoint_url=emulator.endpoint_url, credentials=dict(THROWAWAY_CREDENTIALS))
    out = Console(record=True, width=200)
    engine = Engine(project, Aws(target), out, Console(record=True, width=200), poll=FAST, confirm=confirm)
    return StackSetDelivery(engine, Request("dev", "mini", param_overrides=params or {}, yes=yes), delivery), out


def _grid(
    accounts: tuple[str, ...] = (A, B), regions: tuple[str, ...] = (WEST, CENTRAL), **preferences: Any
) -> Delivery:
    return Delivery(accounts, regions, Preferences(**preferences))


def _operations(emulator: Any, name: str) -> list[dict[str, Any]]:
    summaries: list[dict[str, Any]] = emulator.client("cloudformation").list_stack_set_operations(StackSetName=name)[
        "Summaries"
    ]
    return summaries


def _instances(emulator: Any, name: str) -> dict[tuple[str, str], str]:
    summaries = emulator.client("cloudformation").list_stack_instances(StackSetName=name)["Summaries"]
    return {(s["Account"], s["Region"]): s["Status"] for s in summaries}


# ---------------------------------------------------------------- the emulator: the real path


def test_a_stack_set_with_instances_in_two_accounts_and_two_regions_is_created(mini, emulator):
    from moto.cloudformation.models import cloudformation_backends

    root, name = mini
    runner, out = _delivery(root, emulator, _grid())
    outcomes = runner.deploy()

    cloudformation = emulator.client("cloudformation")
    stack_set = cloudformation.describe_stack_set(StackSetName=name)["StackSet"]
    assert json.loads(stack_set["TemplateBody"]) == json.loads((root / "output/dev/mini.json").read_text())
    assert stack_set["PermissionModel"] == "SELF_MANAGED"
    assert {t["Key"]: t["Value"] for t in stack_set["Tags"]} == {
        "Environment": "dev",
        "ManagedBy": "cfnbuild",
        "Project": "mini",
    }
    assert _instances(emulator, name) == {(a, r): "CURRENT" for a in (A, B) for r in (WEST, CENTRAL)}
    assert [(o.step.api, o.status) for o in outcomes] == [("CreateStackInstances", "SUCCEEDED")]
    assert [r.status for r in outcomes[0].results] == ["SUCCEEDED"] * 4
    # Each instance's stack exists in its own account and region, holding the topic.
    for account in (A, B):
        for region in (WEST, CENTRAL):
            stacks = [s for s in cloudformation_backends[account][region].stacks.values() if name in s.name]
            assert len(stacks) == 1, (account, region)
            assert stacks[0].name.startswith(f"StackSet-{name}-")
            assert "Topic" in stacks[0].resource_map
    text = out.export_text()
    assert "does not exist; it will be created with SELF_MANAGED permissions" in text
    assert f"CreateStackInstances in {A}, {B} x {WEST}, {CENTRAL}" in text
    assert f"{B} {CENTRAL} SUCCEEDED" in text
    assert "CURRENT (SUCCEEDED)" in text


def test_a_template_change_is_one_update_operation_over_the_named_instances(mini, emulator):
    root, name = mini
    _delivery(root, emulator, _grid())[0].deploy()
    _configure(root, name.removeprefix("mini-dev-"), topic_label="v2")

    runner, out = _delivery(root, emulator, _grid())
    plan, _ = runner.plan()
    assert plan.template_changed
    assert plan.resource_changes == {"modified": ["Topic"]}
    assert {row.action for row in plan.rows} == {"update"}
    assert [str(step) for step in plan.steps] == [f"UpdateStackSet in {A}, {B} x {WEST}, {CENTRAL}"]

    outcomes = runner.deploy()
    assert [(o.step.api, o.status) for o in outcomes] == [("UpdateStackSet", "SUCCEEDED")]
    assert outcomes[0].operation_id.startswith("cfnbuild-")  # our idempotency token
    update = next(o for o in _operations(emulator, name) if o["OperationId"] == outcomes[0].operation_id)
    assert update["Action"] == "UPDATE"
    assert update["Status"] == "SUCCEEDED"
    assert {(r.account, r.region, r.status) for r in outcomes[0].results} == {
        (a, r, "SUCCEEDED") for a in (A, B) for r in (WEST, CENTRAL)
    }
    body = emulator.client("cloudformation").describe_stack_set(StackSetName=name)["StackSet"]["TemplateBody"]
    assert json.loads(body)["Resources"]["Topic"]["Properties"]["DisplayName"] == {
        "Fn::Join": ["-", ["v2", {"Ref": "Greeting"}]]
    }
    assert "template: changed (modified: Topic)" in out.export_text()


def test_a_redeploy_with_nothing_changed_starts_no_operation(mini, emulator):
    root, name = mini
    _delivery(root, emulator, _grid())[0].deploy()
    before = _operations(emulator, name)

    runner, out = _delivery(root, emulator, _grid())
    assert runner.deploy() == []
    assert _operations(emulator, name) == before
    text = out.export_text()
    assert f"{name}: no changes; no operation started" in text
    assert "template: unchanged" in text


def test_a_new_region_creates_only_the_missing_instances(mini, emulator):
    root, name = mini
    _delivery(root, emulator, _grid(regions=(WEST,)))[0].deploy()

    runner, _ = _delivery(root, emulator, _grid())
    plan, _ = runner.plan()
    actions = {(row.account, row.region): row.action for row in plan.rows}
    assert actions == {(A, WEST): "unchanged", (B, WEST): "unchanged", (A, CENTRAL): "create", (B, CENTRAL): "create"}
    assert [str(step) for step in plan.steps] == [f"CreateStackInstances in {A}, {B} x {CENTRAL}"]
    runner.deploy()
    assert set(_instances(emulator, name)) == {(a, r) for a in (A, B) for r in (WEST, CENTRAL)}


def test_instances_not_named_are_shown_and_left_as_they_are(mini, emulator):
    root, name = mini
    _delivery(root, emulator, _grid())[0].deploy()
    _configure(root, name.removeprefix("mini-dev-"), topic_label="v3")

    runner, out = _delivery(root, emulator, _grid(accounts=(A,)))
    plan, _ = runner.plan()
    unnamed = [row for row in plan.rows if row.action == "not named"]
    assert {(row.account, row.region) for row in unnamed} == {(B, WEST), (B, CENTRAL)}
    assert all("left as it is, never deleted implicitly" in row.note for row in unnamed)
    assert all("AWS marks it OUTDATED" in row.note for row in unnamed)
    assert [str(step) for step in plan.steps] == [f"UpdateStackSet in {A} x {WEST}, {CENTRAL}"]
    runner.deploy()
    assert set(_instances(emulator, name)) == {(a, r) for a in (A, B) for r in (WEST, CENTRAL)}
    assert "2 not named (left as they are; cfnbuild never deletes stack instances implicitly)" in out.export_text()


def test_a_change_that_would_reach_only_unnamed_instances_is_refused_and_changes_nothing(mini, emulator):
    root, name = mini
    _delivery(root, emulator, _grid(accounts=(A,)))[0].deploy()
    _configure(root, name.removeprefix("mini-dev-"), topic_label="v4")
    before = _operations(emulator, name)

    runner, _ = _delivery(root, emulator, _grid(accounts=(B,)))
    with pytest.raises(Refused, match=r"none of the named instances exists yet.*including those not named"):
        runner.deploy()
    assert _operations(emulator, name) == before
    assert set(_instances(emulator, name)) == {(A, WEST), (A, CENTRAL)}


def test_a_service_managed_stack_set_of_that_name_is_refused(mini, emulator):
    root, name = mini
    template = (root / "output/dev/mini.json").read_text()
    emulator.client("cloudformation").create_stack_set(
        StackSetName=name, TemplateBody=template, PermissionModel="SERVICE_MANAGED"
    )
    runner, _ = _delivery(root, emulator, _grid())
    with pytest.raises(Refused, match=r"uses SERVICE_MANAGED permissions .*SELF_MANAGED stack sets to named accounts"):
        runner.deploy()
    assert _operations(emulator, name) == []


def test_parameters_come_from_the_config_and_param_and_their_change_is_planned(mini, emulator):
    root, name = mini
    _configure(root, name.removeprefix("mini-dev-"), parameters={"Greeting": "config"})
    _delivery(root, emulator, _grid(regions=(WEST,)))[0].deploy()
    cloudformation = emulator.client("cloudformation")
    parameters = cloudformation.describe_stack_set(StackSetName=name)["StackSet"]["Parameters"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in parameters} == {"Greeting": "config"}

    runner, out = _delivery(root, emulator, _grid(regions=(WEST,)), params={"Greeting": "flag"})
    plan, _ = runner.plan()
    assert [(c.name, c.old, c.new) for c in plan.parameter_changes] == [("Greeting", "config", "flag")]
    assert not plan.template_changed
    assert {row.action for row in plan.rows} == {"update"}
    runner.deploy()
    parameters = cloudformation.describe_stack_set(StackSetName=name)["StackSet"]["Parameters"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in parameters} == {"Greeting": "flag"}
    assert "parameters: 1 changed" in out.export_text()


def test_a_parameter_value_is_checked_against_the_template_like_deploy(mini, emulator):
    root, _ = mini
    runner, _ = _delivery(root, emulator, _grid(), params={"Greeting": "Not Lower"})
    with pytest.raises(UsageError, match=r"--param Greeting: 'Not Lower' does not match Greeting's pattern"):
        runner.plan()


def test_a_template_over_51200_bytes_goes_through_the_staging_bucket(mini, emulator, monkeypatch):
    root, name = mini
    monkeypatch.setattr(staging, "INLINE_TEMPLATE_LIMIT", 100)  # the mini template is ~1 kB
    runner, _ = _delivery(root, emulator, _grid(accounts=(A,), regions=(WEST,)))
    runner.deploy()
    s3 = emulator.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=f"cfnbuild-staging-{ADMIN}-{WEST}")["Contents"]]
    assert any(key.startswith("templates/") for key in keys)
    assert "staged as s3://cfnbuild-staging-" in runner.engine.err.export_text()
    body = emulator.client("cloudformation").describe_stack_set(StackSetName=name)["StackSet"]["TemplateBody"]
    assert json.loads(body) == json.loads((root / "output/dev/mini.json").read_text())


def test_without_a_terminal_and_without_yes_the_deploy_is_refused_and_nothing_is_made(mini, emulator):
    root, name = mini
    runner, _ = _delivery(root, emulator, _grid(), yes=False, confirm=None)
    with pytest.raises(Refused, match="not a terminal, so nobody can confirm; review the plan and pass --yes"):
        runner.deploy()
    cloudformation = emulator.client("cloudformation")
    with pytest.raises(cloudformation.exceptions.StackSetNotFoundException):
        cloudformation.describe_stack_set(StackSetName=name)


def test_an_answer_other_than_yes_changes_nothing(mini, emulator):
    root, name = mini
    runner, _ = _delivery(root, emulator, _grid(), yes=False, confirm=lambda _question: "no")
    with pytest.raises(Refused, match="not confirmed; nothing was changed"):
        runner.deploy()
    cloudformation = emulator.client("cloudformation")
    with pytest.raises(cloudformation.exceptions.StackSetNotFoundException):
        cloudformation.describe_stack_set(StackSetName=name)


# ---------------------------------------------------------------- the command line


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from cfnbuild import cli

    try:
        cli.main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "emulator")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "emulator")


def test_plan_exit_codes_0_no_change_2_changes(mini, emulator, capsys, aws_env):
    root, name = mini
    where = ["--project", str(root), "stackset"]
    grid = ["--accounts", f"{A},{B}", "--regions", WEST, "--endpoint-url", emulator.endpoint_url]
    code, out, err = _main(capsys, *where, "plan", *grid)
    assert code == 2, err
    assert f"stack set {name} (in {WEST}, administrator account {ADMIN}): does not exist" in out
    assert out.count(" create ") == 2
    assert f"{name}: changes: 2 to create, 0 to update, 0 unchanged" in out

    code, out, err = _main(capsys, *where, "deploy", *grid, "--yes")
    assert code == 0, err
    code, out, err = _main(capsys, *where, "plan", *grid)
    assert code == 0, err
    assert f"{name}: no changes: 0 to create, 0 to update, 2 unchanged" in out

    code, out, _ = _main(capsys, *where, "plan", "--accounts", f"{A},{B}", "--regions", f"{WEST},{CENTRAL}",
                         "--endpoint-url", emulator.endpoint_url)  # fmt: skip
    assert code == 2
    assert f"{name}: changes: 2 to create, 0 to update, 2 unchanged" in out


def test_deploy_without_yes_outside_a_terminal_exits_1(mini, emulator, capsys, aws_env):
    root, _ = mini
    code, _, err = _main(
        capsys, "--project", str(root), "stackset", "deploy", "--accounts", A, "--regions", WEST,
        "--endpoint-url", emulator.endpoint_url,
    )  # fmt: skip
    assert code == 1
    assert "error: not a terminal, so nobody can confirm; review the plan and pass --yes" in err


def test_deploy_local_runs_on_the_embedded_emulator(mini, capsys):
    root, name = mini
    code, out, err = _main(
        capsys, "--project", str(root), "stackset", "deploy", "--local", "--accounts", f"{A},{B}",
        "--regions", f"{WEST},{CENTRAL}", "--region-order", "parallel", "--max-concurrent-percent", "100",
        "--failure-tolerance-percent", "50",
    )  # fmt: skip
    assert code == 0, err
    assert "the embedded AWS emulator (moto)" in err
    assert f"{name}: stack set created" in out
    assert "regions parallel" in out


@pytest.mark.parametrize("command", ["plan", "deploy"])
def test_each_stackset_command_help_shows_an_example(command, capsys):
    code, out, _ = _main(capsys, "stackset", command, "--help")
    assert code == 0
    assert "Example:" in out
    assert f"cfnbuild stackset {command} --env prod --accounts 111111111111,222222222222" in out


BAD_INPUT = [
    (["--accounts", "1234", "--regions", WEST], "--accounts 1234: not an AWS account id; write 12 digits"),
    (["--regions", WEST], "--accounts is missing; name the target accounts"),
    (["--accounts", A], "--regions is missing; name the target regions"),
    (["--accounts", A, "--regions", "eu-wset-1"], "--regions eu-wset-1: not an AWS region; did you mean eu-west-1?"),
    (["--accounts", A, "--regions", WEST, "--region", "mars-1"], "--region mars-1: not an AWS region"),
    (["--accounts", A, "--regions", WEST, "--max-concurrent", "0"], "--max-concurrent 0: out of range; give 1 or more"),
    (["--accounts", A, "--regions", WEST, "--max-concurrent", "two"], "--max-concurrent two: not a whole number"),
    (
        ["--accounts", A, "--regions", WEST, "--max-concurrent-percent", "101"],
        "--max-concurrent-percent 101: out of range; give 1 to 100",
    ),
    (["--accounts", A, "--regions", WEST, "--failure-tolerance", "-1"], "--failure-tolerance -1: out of range"),
    (
        ["--accounts", A, "--regions", WEST, "--failure-tolerance-percent", "120"],
        "--failure-tolerance-percent 120: out of range; give 0 to 100",
    ),
    (
        ["--accounts", A, "--regions", WEST, "--max-concurrent", "1", "--max-concurrent-percent", "10"],
        "--max-concurrent and --max-concurrent-percent: give one of them, not both",
    ),
    (
        ["--accounts", A, "--regions", WEST, "--failure-tolerance", "1", "--failure-tolerance-percent", "10"],
        "--failure-tolerance and --failure-tolerance-percent: give one of them, not both",
    ),
    (
        ["--accounts", A, "--regions", WEST, "--max-concurrent", "3", "--failure-tolerance", "1"],
        "--max-concurrent 3: CloudFormation runs at most failure tolerance + 1 accounts at once; "
        "add --failure-tolerance 2 or lower --max-concurrent to 2",
    ),
    (["--accounts", A, "--regions", WEST, "--region-order", "random"], "--region-order random: give parallel or"),
    (
        ["--accounts", A, "--regions", WEST, "--administration-role-arn", "AdminRole"],
        "--administration-role-arn AdminRole: not an IAM role ARN",
    ),
    (
        ["--accounts", A, "--regions", WEST, "--execution-role-name", "arn:aws:iam::111111111111:role/x"],
        "--execution-role-name arn:aws:iam::111111111111:role/x: not an IAM role name",
    ),
    (["--accounts", A, "--regions", WEST, "--param", "Greeting"], "--param Greeting: write it as KEY=VALUE"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=[m.split(":")[0] for _, m in BAD_INPUT])
def test_bad_input_is_one_line_naming_the_option_and_the_fix_before_any_call(tmp_path, capsys, args, message):
    root = _project(tmp_path, "bad")
    # Nothing listens there: a call would fail with a connection error, not with this message.
    nowhere = ["--endpoint-url", "http://127.0.0.1:9"]
    code, _, err = _main(capsys, "--project", str(root), "stackset", "deploy", *args, *nowhere)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {message}"), lines[0]


def test_bad_input_to_plan_exits_1_because_2_means_changes(tmp_path, capsys):
    root = _project(tmp_path, "bad")
    code, _, err = _main(
        capsys, "--project", str(root), "stackset", "plan", "--accounts", "1", "--regions", WEST,
        "--endpoint-url", "http://127.0.0.1:9",
    )  # fmt: skip
    assert code == 1
    assert "error: --accounts 1: not an AWS account id" in err


def test_every_problem_is_reported_at_once_one_line_each():
    with pytest.raises(UsageError) as caught:
        parse_delivery(accounts="1,2", regions="nowhere", max_concurrent="0")
    assert len(str(caught.value).splitlines()) == 4


def test_a_stale_template_is_refused_like_deploy(mini, emulator, capsys, aws_env):
    root, _ = mini
    config = root / "config/dev.toml"
    config.write_text(
        config.read_text().replace('regions = ["eu-west-1"]', 'regions = ["eu-west-1"]\ntopic_label = "x"')
    )
    code, _, err = _main(
        capsys, "--project", str(root), "stackset", "deploy", "--accounts", A, "--regions", WEST, "--yes",
        "--endpoint-url", emulator.endpoint_url,
    )  # fmt: skip
    assert code == 2
    assert "output/dev/mini.json is stale; run 'cfnbuild build --env dev'" in err


# ---------------------------------------------------------------- pure parts


def test_rectangles_cut_pairs_into_exact_account_by_region_groups():
    pairs = [(A, WEST), (A, CENTRAL), (B, CENTRAL), ("333333333333", WEST), ("333333333333", CENTRAL)]
    steps = rectangles("CreateStackInstances", pairs, [A, B, "333333333333"], [WEST, CENTRAL])
    assert [(s.accounts, s.regions) for s in steps] == [
        ((A, "333333333333"), (WEST, CENTRAL)),
        ((B,), (CENTRAL,)),
    ]
    covered = {(a, r) for s in steps for a in s.accounts for r in s.regions}
    assert covered == set(pairs)


def test_operation_preferences_send_only_what_was_given():
    assert Preferences().to_api([WEST, CENTRAL]) == {
        "RegionConcurrencyType": "SEQUENTIAL",
        "RegionOrder": [WEST, CENTRAL],
    }
    assert Preferences(max_concurrent_percent=50, failure_tolerance_percent=10, region_order="parallel").to_api(
        [WEST]
    ) == {
        "RegionConcurrencyType": "PARALLEL",
        "MaxConcurrentPercentage": 50,
        "FailureTolerancePercentage": 10,
    }


# ---------------------------------------------------------------- what the emulator cannot play (Stubber)


def _stubbed(
    root: Path, delivery: Delivery, *, poll: PollSettings = FAST
) -> tuple[StackSetDelivery, Stubber, list[float]]:
    project = load_project(root)
    name = project.config("dev").stack_name("mini")
    session = boto3.session.Session(region_name=WEST, **THROWAWAY_CREDENTIALS)
    cloudformation, sts = session.client("cloudformation"), session.client("sts")
    aws = Aws(Target(name, WEST, credentials=dict(THROWAWAY_CREDENTIALS)))
    aws._clients.update(cloudformation=cloudformation, sts=sts)
    sts_stub = Stubber(sts)
    identity = {"Account": ADMIN, "Arn": f"arn:aws:iam::{ADMIN}:user/ci", "UserId": "AIDACI"}
    sts_stub.add_response("get_caller_identity", identity)
    sts_stub.activate()
    sleeps: list[float] = []
    engine = Engine(
        project, aws, Console(record=True, width=200), Console(record=True, width=200), poll=poll, sleep=sleeps.append
    )
    return StackSetDelivery(engine, Request("dev", "mini", yes=True), delivery), Stubber(cloudformation), sleeps


def _deployed(
    root: Path,
    stub: Stubber,
    name: str,
    instances: list[dict[str, Any]],
    *,
    operations: list[dict[str, Any]] | None = None,
    template: dict[str, Any] | None = None,
) -> None:
    """Script an existing stack set (by default with the template as built) and its instances."""
    tags = {"Environment": "dev", "ManagedBy": "cfnbuild", "Project": "mini"}
    stack_set = {
        "StackSetName": name,
        "StackSetId": f"{name}:1",
        "Status": "ACTIVE",
        "TemplateBody": json.dumps(template or json.loads((root / "output/dev/mini.json").read_text())),
        "Parameters": [],
        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
        "AdministrationRoleARN": f"arn:aws:iam::{ADMIN}:role/AWSCloudFormationStackSetAdministrationRole",
        "ExecutionRoleName": "AWSCloudFormationStackSetExecutionRole",
    }
    stub.add_response("describe_stack_set", {"StackSet": stack_set}, {"StackSetName": name})
    stub.add_response("list_stack_instances", {"Summaries": instances})
    stub.add_response("list_stack_set_operations", {"Summaries": operations or []})


def _instance(
    account: str, region: str, status: str = "CURRENT", detailed: str = "SUCCEEDED", reason: str = ""
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "Account": account,
        "Region": region,
        "Status": status,
        "StackInstanceStatus": {"DetailedStatus": detailed},
    }
    if reason:
        summary["StatusReason"] = reason
    return summary


def _operation(name: str, status: str, reason: str = "") -> dict[str, Any]:
    operation: dict[str, Any] = {
        "OperationId": "op-1",
        "Action": "CREATE",
        "Status": status,
        "CreationTimestamp": datetime(2026, 1, 1, tzinfo=UTC),
    }
    if reason:
        operation["StatusReason"] = reason
    return {"StackSetOperation": operation}


def _results(*results: tuple[str, str, str, str]) -> dict[str, Any]:
    return {
        "Summaries": [
            {"Account": a, "Region": r, "Status": s, **({"StatusReason": why} if why else {})}
            for a, r, s, why in results
        ]
    }


DENIED = "ResourceLogicalId:Topic, ResourceType:AWS::SNS::Topic, ResourceStatusReason:Access denied (SNS:CreateTopic)"


def test_stubbed_failure_beyond_the_tolerance_fails_naming_each_instance_and_its_reason(mini):
    # The emulator ends every operation SUCCEEDED at once: a RUNNING operation, a failed instance and
    # an operation FAILED beyond its tolerance are scripted.
    root, name = mini
    runner, stub, sleeps = _stubbed(root, _grid(regions=(WEST, CENTRAL), failure_tolerance_count=0))
    _deployed(root, stub, name, [_instance(A, WEST), _instance(B, WEST)])
    stub.add_response(
        "create_stack_instances",
        {"OperationId": "op-1"},
        {
            "StackSetName": name,
            "Accounts": [A, B],
            "Regions": [CENTRAL],
            "OperationPreferences": {
                "RegionConcurrencyType": "SEQUENTIAL",
                "RegionOrder": [CENTRAL],
                "FailureToleranceCount": 0,
            },
            "OperationId": ANY,
        },
    )
    stub.add_response("describe_stack_set_operation", _operation(name, "RUNNING"))
    stub.add_response("list_stack_set_operation_results", _results((A, CENTRAL, "RUNNING", "")))
    stub.add_response(
        "describe_stack_set_operation", _operation(name, "FAILED", "The operation failed in 1 of 2 accounts")
    )
    stub.add_response(
        "list_stack_set_operation_results",
        _results(
            (A, CENTRAL, "FAILED", DENIED), (B, CENTRAL, "CANCELLED", "Cancelled since failure tolerance has exceeded")
        ),
    )
    stub.add_response(
        "list_stack_instances",
        {
            "Summaries": [
                _instance(A, WEST), _instance(B, WEST),
                _instance(A, CENTRAL, "OUTDATED", "FAILED", DENIED), _instance(B, CENTRAL, "OUTDATED", "CANCELLED"),
            ]
        },
    )  # fmt: skip
    with stub, pytest.raises(DeployFailed) as failed:
        runner.deploy()
    stub.assert_no_pending_responses()
    message = str(failed.value)
    assert "CreateStackInstances operation op-1 ended FAILED (The operation failed in 1 of 2 accounts)" in message
    assert f"failed beyond the failure tolerance (0 failure(s) tolerated) in {A} {CENTRAL}: {DENIED}" in message
    assert f"not attempted: {B} {CENTRAL}" in message
    text = runner.engine.out.export_text()
    assert f"{A} {CENTRAL} RUNNING" in text
    assert f"{A} {CENTRAL} FAILED: {DENIED}" in text
    assert "operation op-1: FAILED" in text
    assert "OUTDATED (FAILED)" in text  # the closing table: status and reason per instance
    assert len(sleeps) == 1
    assert FAST.min_seconds <= sleeps[0] <= FAST.max_seconds  # jittered, within the poll settings


def test_stubbed_failures_within_the_tolerance_warn_and_succeed(mini):
    # Scripted: the emulator has no failed instance.
    root, name = mini
    runner, stub, _ = _stubbed(
        root, _grid(regions=(CENTRAL,), max_concurrent_count=2, failure_tolerance_count=1, region_order="parallel")
    )
    _deployed(root, stub, name, [])
    preferences = {"RegionConcurrencyType": "PARALLEL", "MaxConcurrentCount": 2, "FailureToleranceCount": 1}
    stub.add_response(
        "create_stack_instances",
        {"OperationId": "op-1"},
        {
            "StackSetName": name,
            "Accounts": [A, B],
            "Regions": [CENTRAL],
            "OperationPreferences": preferences,
            "OperationId": ANY,
        },
    )
    stub.add_response("describe_stack_set_operation", _operation(name, "SUCCEEDED"))
    stub.add_response(
        "list_stack_set_operation_results", _results((A, CENTRAL, "FAILED", DENIED), (B, CENTRAL, "SUCCEEDED", ""))
    )
    stub.add_response(
        "list_stack_instances",
        {"Summaries": [_instance(A, CENTRAL, "OUTDATED", "FAILED", DENIED), _instance(B, CENTRAL)]},
    )
    with stub:
        outcomes = runner.deploy()
    stub.assert_no_pending_responses()
    assert [o.status for o in outcomes] == ["SUCCEEDED"]
    warning = runner.engine.err.export_text()
    assert f"failed within the failure tolerance (1 failure(s) tolerated) in {A} {CENTRAL}: {DENIED}" in warning
    assert "the next deploy updates them again" in warning


def test_stubbed_outdated_named_instances_are_updated_again(mini):
    # Scripted: the emulator never leaves an instance OUTDATED.
    root, name = mini
    runner, stub, _ = _stubbed(root, _grid(accounts=(A,), regions=(CENTRAL,)))
    _deployed(root, stub, name, [_instance(A, CENTRAL, "OUTDATED", "FAILED", DENIED)])
    with stub:
        plan, _ = runner.plan()
    assert [(row.action, row.note) for row in plan.rows] == [("update", DENIED)]
    assert [str(step) for step in plan.steps] == [f"UpdateStackInstances in {A} x {CENTRAL}"]


def test_stubbed_a_stopped_operation_fails_and_later_steps_are_not_started(mini):
    # Scripted: the emulator's operations cannot be caught running, so none can be stopped.
    root, name = mini
    runner, stub, _ = _stubbed(root, _grid(accounts=(A,), regions=(WEST, CENTRAL)))
    deployed = json.loads((root / "output/dev/mini.json").read_text())
    deployed["Resources"]["Topic"]["Properties"]["DisplayName"] = "an older label"
    _deployed(root, stub, name, [_instance(A, WEST)], template=deployed)
    stub.add_response("update_stack_set", {"OperationId": "op-1"})
    stub.add_response("describe_stack_set_operation", _operation(name, "STOPPED", "stopped by a user"))
    stub.add_response("list_stack_set_operation_results", _results((A, WEST, "CANCELLED", "")))
    stub.add_response("list_stack_instances", {"Summaries": [_instance(A, WEST, "OUTDATED", "CANCELLED")]})
    with stub, pytest.raises(DeployFailed) as failed:
        runner.deploy()
    stub.assert_no_pending_responses()  # CreateStackInstances was never called
    assert "UpdateStackSet operation op-1 ended STOPPED (stopped by a user)" in str(failed.value)
    assert f"not started: CreateStackInstances in {A} x {CENTRAL}" in str(failed.value)


def test_stubbed_a_busy_stack_set_is_refused_before_any_change(mini):
    # Scripted: the emulator's operations end before anyone can see them running.
    root, name = mini
    runner, stub, _ = _stubbed(root, _grid(accounts=(A,), regions=(WEST, CENTRAL)))
    running = {
        "OperationId": "op-0",
        "Action": "UPDATE",
        "Status": "RUNNING",
        "CreationTimestamp": datetime(2026, 1, 1, tzinfo=UTC),
    }
    _deployed(root, stub, name, [_instance(A, WEST)], operations=[running])
    with stub, pytest.raises(Refused, match="is busy: operation op-0 \\(UPDATE\\) is RUNNING; wait for it to end"):
        runner.deploy()
    stub.assert_no_pending_responses()


def test_stubbed_an_operation_still_running_at_the_timeout_says_aws_carries_on(mini):
    # Scripted: the emulator's operations are never RUNNING.
    root, name = mini
    runner, stub, _ = _stubbed(root, _grid(accounts=(A,), regions=(WEST,)), poll=PollSettings(0.01, 0.02, 0))
    _deployed(root, stub, name, [])
    stub.add_response("create_stack_instances", {"OperationId": "op-1"})
    stub.add_response("describe_stack_set_operation", _operation(name, "RUNNING"))
    stub.add_response("list_stack_set_operation_results", _results((A, WEST, "RUNNING", "")))
    with (
        stub,
        pytest.raises(OperationTimeout, match="operation op-1 is still RUNNING after 0s; CloudFormation carries on"),
    ):
        runner.deploy()


def test_stubbed_throttling_while_polling_is_retried_with_backoff(mini):
    # Scripted: the emulator does not throttle.
    root, name = mini
    runner, stub, sleeps = _stubbed(root, _grid(accounts=(A,), regions=(WEST,)))
    _deployed(root, stub, name, [])
    stub.add_response("create_stack_instances", {"OperationId": "op-1"})
    stub.add_client_error("describe_stack_set_operation", "Throttling", "Rate exceeded", http_status_code=400)
    stub.add_response("describe_stack_set_operation", _operation(name, "SUCCEEDED"))
    stub.add_response("list_stack_set_operation_results", _results((A, WEST, "SUCCEEDED", "")))
    stub.add_response("list_stack_instances", {"Summaries": [_instance(A, WEST)]})
    with stub:
        runner.deploy()
    stub.assert_no_pending_responses()
    assert len(sleeps) == 1
    assert "lost contact with CloudFormation" in runner.engine.out.export_text()


def test_stubbed_another_operation_starting_first_is_refused_as_busy(mini):
    # Scripted: the emulator never answers OperationInProgressException.
    root, name = mini
    runner, stub, _ = _stubbed(root, _grid(accounts=(A,), regions=(WEST,)))
    _deployed(root, stub, name, [])
    stub.add_client_error("create_stack_instances", "OperationInProgressException", "Another Operation is in progress")
    with stub, pytest.raises(Refused, match="is busy with another operation \\(Another Operation is in progress\\)"):
        runner.deploy()
