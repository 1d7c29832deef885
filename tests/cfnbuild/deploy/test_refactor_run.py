"""``cfnbuild refactor`` against CloudFormation's answers: the whole sequence, its failures, a re-run.

The emulator (moto) has no stack refactoring, so AWS's answers are scripted with botocore's
Stubber on cfnbuild's own client. The installed botocore may be older than the refactoring API
(it came in botocore 1.36.15), so the tests' sessions load the CloudFormation service model of
a newer botocore from tests/data/botocore-models — botocore's documented ``data_path``
mechanism (``AWS_DATA_PATH``: the loader searches those directories before its own) — and
one test runs without it, where the command must refuse in one line.

The project is three small stacks (network → data → webapp, each taking an output of the one
before with ``stack.use``) that were deployed before as one stack, ``webapp-dev-t``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.stub import ANY, Stubber
from rich.console import Console

from cfnbuild.deploy.aws import Aws, Target, explain
from cfnbuild.deploy.engine import Engine, Refused
from cfnbuild.deploy.events import PollSettings
from cfnbuild.deploy.model import Interrupted
from cfnbuild.deploy.refactor.aws_refactor import RefactorFailed, Waiting
from cfnbuild.deploy.refactor.finish import FinishFailed
from cfnbuild.deploy.refactor.run import Refactor
from cfnbuild.errors import UsageError
from cfnbuild.local.emulator import THROWAWAY_CREDENTIALS
from cfnbuild.project.app import load_project
from tests.inprocess import build_here

MODELS = Path(__file__).resolve().parents[2] / "data" / "botocore-models"
WHEN = datetime(2026, 1, 1, tzinfo=UTC)
ARN = "arn:aws:cloudformation:eu-west-1:123456789012:stack/{}/1"
REFACTOR_ID = "9c384f70-4e07-4ed7-a65d-fee5eb430841"
APP = """
from troposphere import GetAtt, Ref, Tags, sns, sqs

from cfnbuild import App, EnvironmentConfig, Stack, StackSpec


def network(config):
    stack = Stack("network", description="network", project=config.project, environment=config.environment)
    key = stack.add_resource(sns.Topic("KeyTopic", DisplayName="key"), owner="test")
    stack.add_output("KeyArn", Ref(key), "The key topic.", owner="test", export=False)
    return stack


def data(config):
    stack = Stack("data", description="data", project=config.project, environment=config.environment)
    queue = sqs.Queue("Store", SqsManagedSseEnabled=True, MessageRetentionPeriod=345600,
                      Tags=Tags(key=stack.use("network", "KeyArn")))
    stack.add_resource(queue, owner="test", stateful=True)
    stack.add_output("StoreName", GetAtt("Store", "QueueName"), "The store.", owner="test", export=False)
    return stack


def webapp(config):
    stack = Stack("webapp", description="webapp", project=config.project, environment=config.environment)
    stack.add_resource(sns.Topic("AppTopic", DisplayName=stack.use("data", "StoreName")), owner="test")
    return stack


app = App(config_model=EnvironmentConfig, stacks=[StackSpec(n, globals()[n]) for n in ("network", "data", "webapp")])
"""
# The previous release, deployed as the single stack webapp-dev-t.
PREVIOUS = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Parameters": {"Label": {"Type": "String", "Default": "v1"}},
    "Resources": {
        "KeyTopic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"DisplayName": {"Fn::Sub": "${AWS::StackName}-${Label}"}},
        },
        "Store": {
            "Type": "AWS::SQS::Queue",
            "DeletionPolicy": "RetainExceptOnCreate",
            "Properties": {"MessageRetentionPeriod": 345600, "Tags": [{"Key": "key", "Value": {"Ref": "KeyTopic"}}]},
        },
        "AppTopic": {
            "Type": "AWS::SNS::Topic",
            "DependsOn": "Store",
            "Properties": {"DisplayName": {"Fn::GetAtt": ["Store", "QueueName"]}},
        },
    },
}
STATES = "network-dev-t not created, data-dev-t not created, webapp-dev-t UPDATE_COMPLETE"
NAMES = {"network": "network-dev-t", "data": "data-dev-t", "webapp": "webapp-dev-t"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("split")
    (root / "pyproject.toml").write_text('[tool.cfnbuild]\napp = "split_app:app"\ndefault_env = "dev"\n')
    (root / "split_app.py").write_text(APP)
    (root / "config").mkdir()
    (root / "config/dev.toml").write_text(
        'project = "split"\nregions = ["eu-west-1"]\n[deploy]\nstack_name_suffix = "t"\nprotect_stateful = false\n'
    )
    build_here(root)
    return root


@pytest.fixture
def models(monkeypatch):
    """The newer CloudFormation model, found through AWS_DATA_PATH before botocore's own."""
    monkeypatch.setenv("AWS_DATA_PATH", str(MODELS))


class Run:
    """A Refactor on a stubbed client, the calls it made in order, and what was printed before each."""

    def __init__(self, root: Path, *, yes: bool = True, confirm=None) -> None:
        self.project = load_project(root)
        self.aws = Aws(Target("webapp-dev-t", "eu-west-1", credentials=dict(THROWAWAY_CREDENTIALS)))
        self.client = self.aws.cloudformation
        self.stubber = Stubber(self.client)
        self.out = Console(record=True, width=250)
        self.err = Console(record=True, width=250)
        self.calls: list[tuple[str, dict[str, Any], str]] = []

        def record(model: Any, params: dict[str, Any], **_: Any) -> None:
            self.calls.append((model.name, params, self.out.export_text(clear=False)))

        self.client.meta.events.register("before-parameter-build.cloudformation", record)
        self.refactor = Refactor(
            project=self.project, environment="dev", aws=self.aws, make_engine=self.engine, out=self.out,
            err=self.err, confirm=confirm, yes=yes, waiting=Waiting(first=0.01, longest=0.01), sleep=lambda _: None,
        )  # fmt: skip

    def engine(self, stack: str) -> Engine:
        """A deploy engine for ``stack`` on the same stubbed client (the finishing deploys)."""
        self.aws.target = Target(NAMES[stack], "eu-west-1", credentials=dict(THROWAWAY_CREDENTIALS))
        return Engine(self.project, self.aws, self.out, self.err, poll=PollSettings(), sleep=lambda _: None)

    def operations(self) -> list[str]:
        return [name for name, _, _ in self.calls]

    def go(self) -> None:
        with self.stubber:
            self.refactor.run()
        self.stubber.assert_no_pending_responses()


def _stack(name: str, status: str = "UPDATE_COMPLETE", **extra: Any) -> dict[str, Any]:
    return {
        "StackId": ARN.format(name),
        "StackName": name,
        "StackStatus": status,
        "CreationTime": "2026-01-01T00:00:00Z",
        **extra,
    }


def _absent(run: Run, name: str) -> None:
    run.stubber.add_client_error(
        "describe_stacks",
        "ValidationError",
        f"Stack with id {name} does not exist",
        400,
        expected_params={"StackName": name},
    )


def _read_source(run: Run, template: dict[str, Any] = PREVIOUS, policy: str | None = None) -> None:
    """The reads of the deployed single stack: DescribeStacks, GetTemplate, ListStackResources, GetStackPolicy."""
    name = "webapp-dev-t"
    run.stubber.add_response(
        "describe_stacks",
        {"Stacks": [_stack(name, Parameters=[{"ParameterKey": "Label", "ParameterValue": "blue"}])]},
        {"StackName": name},
    )
    run.stubber.add_response(
        "get_template",
        {"TemplateBody": json.dumps(template)},
        {"StackName": ARN.format(name), "TemplateStage": "Original"},
    )
    summaries = [
        {
            "LogicalResourceId": lid,
            "PhysicalResourceId": f"phys-{lid}",
            "ResourceType": r["Type"],
            "ResourceStatus": "UPDATE_COMPLETE",
            "LastUpdatedTimestamp": "2026-01-01T00:00:00Z",
        }
        for lid, r in template["Resources"].items()
    ]
    run.stubber.add_response(
        "list_stack_resources", {"StackResourceSummaries": summaries}, {"StackName": ARN.format(name)}
    )
    run.stubber.add_response(
        "get_stack_policy", {"StackPolicyBody": policy} if policy else {}, {"StackName": ARN.format(name)}
    )


def _reads(run: Run, summaries: tuple[dict[str, Any], ...] = (), **source: Any) -> None:
    """ListStackRefactors (an earlier run's refactors), then the reads of the stacks before the move."""
    run.stubber.add_response("list_stack_refactors", {"StackRefactorSummaries": list(summaries)})
    _absent(run, "network-dev-t")
    _absent(run, "data-dev-t")
    _read_source(run, **source)


def _refactor_state(status: str, execution: str, **extra: Any) -> dict[str, Any]:
    return {"StackRefactorId": REFACTOR_ID, "Status": status, "ExecutionStatus": execution, **extra}


ACTIONS = [
    {"Action": "CREATE", "Entity": "STACK", "Description": "network-dev-t"},
    {"Action": "CREATE", "Entity": "STACK", "Description": "data-dev-t"},
    {"Action": "MOVE", "Entity": "RESOURCE", "PhysicalResourceId": "phys-KeyTopic", "Detection": "MANUAL",
     "ResourceMapping": {"Source": {"StackName": "webapp-dev-t", "LogicalResourceId": "KeyTopic"},
                         "Destination": {"StackName": "network-dev-t", "LogicalResourceId": "KeyTopic"}}},
    {"Action": "MOVE", "Entity": "RESOURCE", "PhysicalResourceId": "phys-Store", "Detection": "MANUAL",
     "ResourceMapping": {"Source": {"StackName": "webapp-dev-t", "LogicalResourceId": "Store"},
                         "Destination": {"StackName": "data-dev-t", "LogicalResourceId": "Store"}}},
]  # fmt: skip


def _create_and_validate(run: Run) -> None:
    run.stubber.add_response("create_stack_refactor", {"StackRefactorId": REFACTOR_ID}, {
        "Description": ANY, "EnableStackCreation": True, "ResourceMappings": ANY, "StackDefinitions": ANY})  # fmt: skip
    run.stubber.add_response("describe_stack_refactor", _refactor_state("CREATE_IN_PROGRESS", "UNAVAILABLE"))
    run.stubber.add_response("describe_stack_refactor", _refactor_state("CREATE_COMPLETE", "AVAILABLE"))


def _plan_and_execute(run: Run, *, end: str = "EXECUTE_COMPLETE", **reason: Any) -> None:
    run.stubber.add_response("describe_stack_refactor", _refactor_state("CREATE_COMPLETE", "AVAILABLE"))
    run.stubber.add_response(
        "list_stack_refactor_actions", {"StackRefactorActions": ACTIONS}, {"StackRefactorId": REFACTOR_ID}
    )
    run.stubber.add_response("execute_stack_refactor", {}, {"StackRefactorId": REFACTOR_ID})
    run.stubber.add_response("describe_stack_refactor", _refactor_state("CREATE_COMPLETE", "EXECUTE_IN_PROGRESS"))
    run.stubber.add_response("describe_stack_refactor", _refactor_state("CREATE_COMPLETE", end, **reason))


def _finished(run: Run, root: Path, stack: str, upstream: str | None) -> None:
    """A finishing deploy that finds the stack as the project's template has it (the local no-op check)."""
    template = json.loads((root / f"output/dev/{stack}.json").read_text())
    name = NAMES[stack]
    tags = [
        {"Key": k, "Value": v} for k, v in {"Project": "split", "Environment": "dev", "ManagedBy": "cfnbuild"}.items()
    ]
    parameters = [{"ParameterKey": p, "ParameterValue": "value"} for p in template.get("Parameters", {})]
    run.stubber.add_response(
        "describe_stacks", {"Stacks": [_stack(name, Tags=tags, Parameters=parameters)]}, {"StackName": name}
    )
    if upstream is not None:
        outputs = [{"OutputKey": k, "OutputValue": "value"} for k in ("KeyArn", "StoreName")]
        run.stubber.add_response(
            "describe_stacks", {"Stacks": [_stack(NAMES[upstream], Outputs=outputs)]}, {"StackName": NAMES[upstream]}
        )
    run.stubber.add_response(
        "get_template", {"TemplateBody": json.dumps(template)}, {"StackName": name, "TemplateStage": "Original"}
    )


def _updated(run: Run, root: Path) -> None:
    """The finishing deploy of webapp: its stack holds the refactor's template, so a change set takes the import out."""
    name, stack_id = "webapp-dev-t", ARN.format("webapp-dev-t")
    tags = [
        {"Key": k, "Value": v} for k, v in {"Project": "split", "Environment": "dev", "ManagedBy": "cfnbuild"}.items()
    ]
    run.stubber.add_response("describe_stacks", {"Stacks": [_stack(name, Tags=tags)]}, {"StackName": name})
    outputs = [{"OutputKey": "StoreName", "OutputValue": "webapp-dev-t-Store-ABC"}]
    run.stubber.add_response(
        "describe_stacks", {"Stacks": [_stack("data-dev-t", Outputs=outputs)]}, {"StackName": "data-dev-t"}
    )
    after_refactor = {
        "Resources": {
            "AppTopic": {
                "Type": "AWS::SNS::Topic",
                "Properties": {"DisplayName": {"Fn::ImportValue": "data-dev-t-Store-QueueName"}},
            }
        }
    }
    run.stubber.add_response(
        "get_template", {"TemplateBody": json.dumps(after_refactor)}, {"StackName": name, "TemplateStage": "Original"}
    )
    change_set = "arn:aws:cloudformation:eu-west-1:123456789012:changeSet/cfnbuild-x/1"
    run.stubber.add_response("create_change_set", {"Id": change_set, "StackId": stack_id})
    change = {
        "Action": "Modify",
        "LogicalResourceId": "AppTopic",
        "ResourceType": "AWS::SNS::Topic",
        "Replacement": "False",
    }
    description = {
        "ChangeSetId": change_set,
        "ChangeSetName": "cfnbuild-x",
        "StackId": stack_id,
        "StackName": name,
        "ExecutionStatus": "AVAILABLE",
        "Status": "CREATE_COMPLETE",
        "Changes": [{"Type": "Resource", "ResourceChange": change}],
    }
    run.stubber.add_response("describe_change_set", description)
    event = {
        "EventId": "e-1",
        "StackId": stack_id,
        "StackName": name,
        "LogicalResourceId": name,
        "Timestamp": WHEN,
        "ResourceType": "AWS::CloudFormation::Stack",
        "ResourceStatus": "UPDATE_COMPLETE",
    }
    run.stubber.add_response("describe_stack_events", {"StackEvents": [event]}, {"StackName": stack_id})
    run.stubber.add_response(
        "execute_change_set", {}, {"ChangeSetName": change_set, "ClientRequestToken": ANY, "RetainExceptOnCreate": True}
    )
    run.stubber.add_response("describe_stacks", {"Stacks": [_stack(name, Tags=tags)]}, {"StackName": stack_id})
    done = {**event, "EventId": "e-2", "Timestamp": WHEN.replace(minute=1)}
    run.stubber.add_response("describe_stack_events", {"StackEvents": [done, event]}, {"StackName": stack_id})


def _finishing(run: Run, root: Path) -> None:
    _updated(run, root)
    _finished(run, root, "data", "network")
    _finished(run, root, "network", None)


def test_the_whole_refactor_creates_validates_shows_the_plan_executes_and_finishes_consumers_first(built, models):
    run = Run(built)
    _reads(run)
    _create_and_validate(run)
    _plan_and_execute(run)
    _finishing(run, built)
    run.go()
    operations = run.operations()
    assert operations[:13] == [
        "ListStackRefactors", "DescribeStacks", "DescribeStacks", "DescribeStacks", "GetTemplate",
        "ListStackResources", "GetStackPolicy", "CreateStackRefactor", "DescribeStackRefactor", "DescribeStackRefactor",
        "DescribeStackRefactor", "ListStackRefactorActions", "ExecuteStackRefactor",
    ]  # fmt: skip
    printed_before_execute = next(text for name, _, text in run.calls if name == "ExecuteStackRefactor")
    assert "stack refactor: what CloudFormation will do" in printed_before_execute
    assert "webapp-dev-t.Store" in printed_before_execute
    assert "data-dev-t.Store" in printed_before_execute
    assert "creates stack network-dev-t with 1 resources" in printed_before_execute
    # the finishing deploys, consumers first: webapp, then data, then network
    finishing = [params["StackName"] for name, params, _ in run.calls[13:] if name == "GetTemplate"]
    assert finishing == ["webapp-dev-t", "data-dev-t", "network-dev-t"]
    assert operations.index("ExecuteChangeSet") > operations.index("ExecuteStackRefactor")
    out = run.out.export_text()
    assert "EXECUTE_COMPLETE; every resource is in its new stack" in out
    # webapp's deploy replaced the import by its parameter, through a change set whose plan was shown
    assert (
        '/Properties/DisplayName: {"Fn::ImportValue": "data-dev-t-Store-QueueName"} → "webapp-dev-t-Store-ABC"' in out
    )
    assert "webapp-dev-t: UPDATE_COMPLETE" in out
    assert "dev: 2 resources moved, none created, replaced or deleted; webapp, data, network deployed" in out
    assert out.index("finishing: webapp") < out.index("finishing: data") < out.index("finishing: network")


def test_the_refactor_is_created_with_the_deployed_definitions_the_mappings_and_stack_creation(built, models):
    run = Run(built)
    _reads(run)
    _create_and_validate(run)
    _plan_and_execute(run)
    _finishing(run, built)
    run.go()
    create = next(params for name, params, _ in run.calls if name == "CreateStackRefactor")
    assert create["EnableStackCreation"] is True
    assert create["Description"].startswith("cfnbuild refactor split/dev ")
    moved = sorted(
        (m["Source"]["LogicalResourceId"], m["Destination"]["StackName"]) for m in create["ResourceMappings"]
    )
    assert moved == [("KeyTopic", "network-dev-t"), ("Store", "data-dev-t")]
    bodies = {d["StackName"]: json.loads(d["TemplateBody"]) for d in create["StackDefinitions"]}
    assert set(bodies) == {"network-dev-t", "data-dev-t", "webapp-dev-t"}
    assert bodies["network-dev-t"]["Resources"]["KeyTopic"]["Properties"]["DisplayName"] == "webapp-dev-t-blue"
    assert bodies["data-dev-t"]["Resources"]["Store"]["Properties"]["Tags"] == [
        {"Key": "key", "Value": {"Fn::ImportValue": "network-dev-t-KeyTopic"}}]  # fmt: skip
    imported = {"DisplayName": {"Fn::ImportValue": "data-dev-t-Store-QueueName"}}
    assert bodies["webapp-dev-t"]["Resources"]["AppTopic"] == {"Type": "AWS::SNS::Topic", "Properties": imported}
    assert bodies["network-dev-t"]["Outputs"]["KeyArn"] == {
        "Value": {"Ref": "KeyTopic"},
        "Description": "The key topic.",
    }
    assert bodies["webapp-dev-t"]["Parameters"] == PREVIOUS["Parameters"]


# -- failures: one line each, and nothing called after them ----------------------------------------------


def test_an_old_botocore_is_refused_in_one_line_naming_the_boto3_needed_once_the_refactor_path_is_chosen(
    built, monkeypatch
):
    """The stacks are read first (retain-and-import needs no new operation); the refactor path then refuses."""
    monkeypatch.delenv("AWS_DATA_PATH", raising=False)
    run = Run(built)
    client_ops = run.client.meta.service_model.operation_names
    if "CreateStackRefactor" in client_ops:
        pytest.skip("the installed botocore has stack refactoring already")
    _absent(run, "network-dev-t")
    _absent(run, "data-dev-t")
    _read_source(run)
    with pytest.raises(UsageError) as info:
        run.go()
    message = str(info.value)
    assert "stack refactoring needs boto3 and botocore 1.36.15 or later" in message
    assert "pip install 'boto3>=1.36.15'" in message
    assert "\n" not in message
    assert "ListStackRefactors" not in run.operations()
    assert run.operations()[-1] == "GetStackPolicy"  # nothing changed
    assert "stack refactoring: every stack taking part allows it" in run.out.export_text()


def test_a_validation_that_fails_says_why_and_executes_nothing(built, models):
    run = Run(built)
    _reads(run)
    run.stubber.add_response("create_stack_refactor", {"StackRefactorId": REFACTOR_ID})
    reason = "Found an action type that is not permitted during refactor operations: Modify"
    run.stubber.add_response(
        "describe_stack_refactor", _refactor_state("CREATE_FAILED", "UNAVAILABLE", StatusReason=reason)
    )
    with pytest.raises(RefactorFailed) as info:
        run.go()
    message = str(info.value)
    assert (
        f"CloudFormation refused stack refactor {REFACTOR_ID} of network-dev-t, data-dev-t, webapp-dev-t "
        "(CREATE_FAILED)" in message
    )
    assert reason in message
    assert "nothing was moved" in message
    assert "\n" not in message
    assert "ExecuteStackRefactor" not in run.operations()


@pytest.mark.parametrize(
    ("end", "said"),
    [
        ("ROLLBACK_COMPLETE", f"it was rolled back, every resource is where it was ({STATES})"),
        ("EXECUTE_FAILED", f"the stacks may be partly moved ({STATES})"),
    ],
)  # fmt: skip
def test_an_execution_that_fails_says_where_the_stacks_are_and_the_next_command_and_deploys_nothing(
    built, models, end, said
):
    run = Run(built)
    _reads(run)
    _create_and_validate(run)
    _plan_and_execute(run, end=end, ExecutionStatusReason="Resource handler returned message: AccessDenied")
    _absent(run, "network-dev-t")
    _absent(run, "data-dev-t")
    run.stubber.add_response("describe_stacks", {"Stacks": [_stack("webapp-dev-t")]}, {"StackName": "webapp-dev-t"})
    with pytest.raises(RefactorFailed) as info:
        run.go()
    message = str(info.value)
    assert message.startswith(
        f"stack refactor {REFACTOR_ID} ended {end}: Resource handler returned message: AccessDenied; "
    )
    assert said in message
    assert "run 'cfnbuild refactor --env dev' again" in message
    assert "\n" not in message
    assert "GetTemplate" not in run.operations()[6:]  # no finishing deploy


def test_access_denied_names_the_iam_action_and_nothing_is_created(built, models):
    run = Run(built)
    _reads(run)
    run.stubber.add_client_error(
        "create_stack_refactor", "AccessDenied",
        "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: cloudformation:CreateStackRefactor", 403,
    )  # fmt: skip
    with pytest.raises(Exception) as info:  # noqa: PT011  (botocore's ClientError, worded by explain below)
        run.go()
    message = str(explain(info.value))
    assert "CloudFormation CreateStackRefactor for webapp-dev-t in eu-west-1: AccessDenied" in message
    assert "the caller may not cloudformation:CreateStackRefactor; grant it to the role or user that deploys" in message
    assert run.operations()[-1] == "CreateStackRefactor"


def test_a_refactor_another_client_runs_is_answered_in_one_line(built, models):
    run = Run(built)
    _reads(run)
    run.stubber.add_client_error(
        "create_stack_refactor", "ValidationError", "Stack [webapp-dev-t] already has a stack refactor in progress", 400
    )
    with pytest.raises(Exception) as info:  # noqa: PT011  (as above)
        run.go()
    assert str(explain(info.value)).endswith(
        "ValidationError: Stack [webapp-dev-t] already has a stack refactor in progress"
    )


def test_without_a_terminal_or_yes_the_plan_is_shown_and_nothing_is_executed(built, models):
    run = Run(built, yes=False, confirm=None)
    _reads(run)
    _create_and_validate(run)
    run.stubber.add_response("describe_stack_refactor", _refactor_state("CREATE_COMPLETE", "AVAILABLE"))
    run.stubber.add_response(
        "list_stack_refactor_actions", {"StackRefactorActions": ACTIONS}, {"StackRefactorId": REFACTOR_ID}
    )
    with pytest.raises(Refused, match="not a terminal, so nobody can confirm; review the plan and pass --yes"):
        run.go()
    assert "stack refactor: what CloudFormation will do" in run.out.export_text()
    assert "ExecuteStackRefactor" not in run.operations()


def test_a_plan_not_confirmed_moves_nothing_and_says_a_later_run_picks_it_up(built, models):
    run = Run(built, yes=False, confirm=lambda _question: "no")
    _reads(run)
    _create_and_validate(run)
    run.stubber.add_response("describe_stack_refactor", _refactor_state("CREATE_COMPLETE", "AVAILABLE"))
    run.stubber.add_response(
        "list_stack_refactor_actions", {"StackRefactorActions": ACTIONS}, {"StackRefactorId": REFACTOR_ID}
    )
    with pytest.raises(Refused, match=f"not confirmed; nothing was moved \\(stack refactor {REFACTOR_ID} is validated"):
        run.go()
    assert "ExecuteStackRefactor" not in run.operations()


def test_a_validation_that_never_ends_times_out_with_how_to_pick_it_up(built, models):
    run = Run(built)
    ticks = iter(range(100))  # the clock: one second a poll
    run.refactor.waiting = Waiting(first=1, factor=1, longest=1, validation_timeout=3)
    run.refactor.clock = lambda: float(next(ticks))
    _reads(run)
    run.stubber.add_response("create_stack_refactor", {"StackRefactorId": REFACTOR_ID})
    for _ in range(3):
        run.stubber.add_response("describe_stack_refactor", _refactor_state("CREATE_IN_PROGRESS", "UNAVAILABLE"))
    with pytest.raises(RefactorFailed) as info:
        run.go()
    assert str(info.value) == (
        f"stack refactor {REFACTOR_ID} is still CREATE_IN_PROGRESS after 3s of validating; it goes on in AWS: run "
        "'cfnbuild refactor --env dev' again later to pick it up"
    )
    assert "ExecuteStackRefactor" not in run.operations()


def test_ctrl_c_while_waiting_says_the_refactor_goes_on_and_how_to_pick_it_up(built, models):
    run = Run(built)
    _reads(run)
    run.stubber.add_response("create_stack_refactor", {"StackRefactorId": REFACTOR_ID})
    run.stubber.add_response("describe_stack_refactor", _refactor_state("CREATE_IN_PROGRESS", "UNAVAILABLE"))

    def interrupt(_seconds: float) -> None:
        raise KeyboardInterrupt

    run.refactor.sleep = interrupt
    with pytest.raises(Interrupted) as info:
        run.go()
    assert str(info.value) == (
        f"stopped watching; stack refactor {REFACTOR_ID} goes on in AWS; run 'cfnbuild refactor --env dev' again to "
        "pick it up "
        "where it is"
    )


# -- re-runs ----------------------------------------------------------------------------------------------


def _reads_after_the_move(run: Run, root: Path) -> None:
    """The reads of the stacks once every resource is in the stack the project's templates put it in."""
    for stack in ("network", "data", "webapp"):
        template = json.loads((root / f"output/dev/{stack}.json").read_text())
        name = NAMES[stack]
        run.stubber.add_response("describe_stacks", {"Stacks": [_stack(name)]}, {"StackName": name})
        run.stubber.add_response("get_template", {"TemplateBody": json.dumps(template)})
        summaries = [
            {"LogicalResourceId": lid, "ResourceType": r["Type"], "ResourceStatus": "UPDATE_COMPLETE",
             "LastUpdatedTimestamp": WHEN}
            for lid, r in template["Resources"].items()
        ]  # fmt: skip
        run.stubber.add_response("list_stack_resources", {"StackResourceSummaries": summaries})
        run.stubber.add_response("get_stack_policy", {})


def _description_of_a_first_run(built: Path) -> str:
    """The Description a first run gave its refactor (it ran to the end here, to learn it)."""
    first = Run(built)
    _reads(first)
    _create_and_validate(first)
    _plan_and_execute(first)
    _finishing(first, built)
    first.go()
    return str(next(p for n, p, _ in first.calls if n == "CreateStackRefactor")["Description"])


def test_a_rerun_waits_for_the_refactor_an_interrupted_run_left_executing_then_finishes(built, models):
    description = _description_of_a_first_run(built)
    run = Run(built)
    summary = {**_refactor_state("CREATE_COMPLETE", "EXECUTE_IN_PROGRESS"), "Description": description}
    run.stubber.add_response("list_stack_refactors", {"StackRefactorSummaries": [summary]})
    run.stubber.add_response("describe_stack_refactor", _refactor_state("CREATE_COMPLETE", "EXECUTE_IN_PROGRESS"))
    run.stubber.add_response("describe_stack_refactor", _refactor_state("CREATE_COMPLETE", "EXECUTE_COMPLETE"))
    _reads_after_the_move(run, built)
    _finished(run, built, "webapp", "data")
    _finished(run, built, "data", "network")
    _finished(run, built, "network", None)
    run.go()
    assert "CreateStackRefactor" not in run.operations()
    assert "ExecuteStackRefactor" not in run.operations()
    assert f"picking up stack refactor {REFACTOR_ID} of an earlier run, executing" in run.err.export_text()
    assert "nothing to move" in run.out.export_text()


def test_a_rerun_after_a_declined_plan_executes_the_validated_refactor_without_creating_another(built, models):
    description = _description_of_a_first_run(built)
    run = Run(built)
    summary = {**_refactor_state("CREATE_COMPLETE", "AVAILABLE"), "Description": description}
    _reads(run, summaries=(summary,))
    run.stubber.add_response("describe_stack_refactor", _refactor_state("CREATE_COMPLETE", "AVAILABLE"))
    _plan_and_execute(run)
    _finishing(run, built)
    run.go()
    assert "CreateStackRefactor" not in run.operations()
    assert run.operations().count("ExecuteStackRefactor") == 1
    assert f"picking up stack refactor {REFACTOR_ID} of an earlier run (CREATE_COMPLETE)" in run.err.export_text()


def test_a_rerun_after_the_move_only_finishes(built, models):
    run = Run(built)
    run.stubber.add_response("list_stack_refactors", {"StackRefactorSummaries": []})
    _reads_after_the_move(run, built)
    _finished(run, built, "webapp", "data")
    _finished(run, built, "data", "network")
    _finished(run, built, "network", None)
    run.go()
    assert [op for op in run.operations() if "Refactor" in op] == ["ListStackRefactors"]
    assert "nothing to move" in run.out.export_text()


def test_a_finishing_deploy_that_fails_says_the_move_is_done_and_how_to_finish(built, models):
    run = Run(built)
    _reads(run)
    _create_and_validate(run)
    _plan_and_execute(run)
    run.stubber.add_response(
        "describe_stacks", {"Stacks": [_stack("webapp-dev-t", "UPDATE_ROLLBACK_FAILED")]}, {"StackName": "webapp-dev-t"}
    )
    with pytest.raises(FinishFailed) as info:
        run.go()
    message = str(info.value)
    assert message.startswith(
        "the resources are in their new stacks, but the deploy of webapp with the project's template failed: "
    )
    assert "UPDATE_ROLLBACK_FAILED" in message
    assert message.endswith("run 'cfnbuild refactor --env dev' again (it finishes webapp, data, network)")


# -- the command ------------------------------------------------------------------------------------------


def _command(root: Path, *args: str, data_path: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "COLUMNS": "250"}
    if data_path:
        env["AWS_DATA_PATH"] = str(MODELS)
    command = [sys.executable, "-m", "cfnbuild", "--project", str(root), "refactor", "--env", "dev", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


def test_the_command_with_an_old_botocore_reads_the_stacks_first_and_words_an_unreachable_endpoint_in_one_line(
    built,
):
    """The botocore is checked once the path is known (retain-and-import needs none of the new operations)."""
    if "CreateStackRefactor" in botocore.session.Session().get_service_model("cloudformation").operation_names:
        pytest.skip("the installed botocore has stack refactoring already")
    result = _command(built, "--endpoint-url", "http://127.0.0.1:9", data_path=False)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: CloudFormation DescribeStacks in eu-west-1 at http://127.0.0.1:9: ")
    assert "Traceback" not in result.stderr


def test_the_command_words_an_unreachable_endpoint_in_one_line(built):
    result = _command(built, "--endpoint-url", "http://127.0.0.1:9", "--yes", data_path=True)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: CloudFormation ListStackRefactors in eu-west-1 at http://127.0.0.1:9: ")
    assert "could not reach http://127.0.0.1:9" in last
    assert "Traceback" not in result.stderr
