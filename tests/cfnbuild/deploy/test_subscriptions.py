"""The deploy's last lines name every alert e-mail subscription still waiting for its owner's confirmation.

SNS delivers nothing to an e-mail endpoint until its owner confirms, and lists such a subscription
with the SubscriptionArn ``PendingConfirmation``. The emulator cannot play that: moto marks every
e-mail subscription confirmed at once (``PendingConfirmation: False``, a real subscription ARN), so
the pending answers and the refused listing are scripted with botocore's Stubber; the emulator
test proves only that the check runs there and, finding nothing pending, says nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from botocore.stub import Stubber
from rich.console import Console

from cfnbuild.deploy import changeset
from cfnbuild.deploy.aws import Aws, Target
from cfnbuild.deploy.engine import DeployedStack, Engine, Prepared, Request, Staged
from cfnbuild.deploy.events import PollSettings
from cfnbuild.deploy.plan import build_plan
from cfnbuild.local.emulator import THROWAWAY_CREDENTIALS
from cfnbuild.project.app import load_project
from tests.cfnbuild.deploy.test_engine import _stack
from tests.cfnbuild.deploy.test_outcomes import _successful_update
from tests.inprocess import build_here

STACK = "mini-dev-stub"
STACK_ID = f"arn:aws:cloudformation:eu-west-1:123456789012:stack/{STACK}/1"
TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:mini-dev-stub-Alerts-1"
FAST = PollSettings(min_seconds=0.01, max_seconds=0.02, timeout_seconds=60)
# Not an RFC 2606 example address: the emulator deploy below is checked as any deploy is.
ADDRESS = "oncall@ops.acme-widgets.net"

ALERTS_APP = """
from dataclasses import dataclass

from troposphere import Ref, sns

from cfnbuild import App, Blueprint, EnvironmentConfig, Stack, StackSpec, setting


class AlertsConfig(EnvironmentConfig):
    email: str = ""


@dataclass(frozen=True)
class Inputs:
    email: str = setting("", "Subscribed to the topic by e-mail; empty: none.")


class Alerts(Blueprint[Inputs]):
    def build(self) -> None:
        topic = self.add(sns.Topic("Alerts", DisplayName="Alerts"))
        self.output("TopicArn", Ref(topic), "The topic.")
        if self.inputs.email:
            address = self.inputs.email
            self.add(sns.SubscriptionResource("AlertsEmail", TopicArn=Ref(topic), Protocol="email", Endpoint=address))


def build(config: AlertsConfig) -> Stack:
    stack = Stack("mini", description="mini", project=config.project, environment=config.environment)
    Alerts(stack, Inputs(email=config.email))
    return stack


app = App(config_model=AlertsConfig, stacks=[StackSpec("mini", build)])
"""


def _project(tmp_path: Path, suffix: str, *, email: str = ADDRESS) -> Path:
    (tmp_path / "pyproject.toml").write_text('[tool.cfnbuild]\napp = "alerts_app:app"\ndefault_env = "dev"\n')
    (tmp_path / "alerts_app.py").write_text(ALERTS_APP)
    (tmp_path / "config").mkdir(exist_ok=True)
    lines = ['project = "mini"', 'regions = ["eu-west-1"]', f"email = {json.dumps(email)}"]
    lines += ["[deploy]", f'stack_name_suffix = "{suffix}"']
    (tmp_path / "config/dev.toml").write_text("\n".join(lines) + "\n")
    build_here(tmp_path)
    return tmp_path


def _stubbed(root: Path) -> tuple[Engine, Stubber, Stubber]:
    aws = Aws(Target(STACK, "eu-west-1", credentials=dict(THROWAWAY_CREDENTIALS)))
    engine = Engine(
        load_project(root),
        aws,
        Console(record=True, width=2000),
        Console(record=True, width=2000),
        poll=FAST,
        sleep=lambda _: None,
    )
    return engine, Stubber(aws.cloudformation), Stubber(aws.client("sns"))


def _template(root: Path) -> dict:
    return json.loads((root / "output/dev/mini.json").read_text())


def _unchanged(root: Path) -> Staged:
    template = _template(root)
    deployed = DeployedStack.from_api(
        _stack(STACK, "UPDATE_COMPLETE", Outputs=[{"OutputKey": "TopicArn", "OutputValue": TOPIC_ARN}])
    )
    prepared = Prepared(template, "{}", "h", {}, frozenset(), {}, [], False, None)
    return Staged(Request("dev", "mini", yes=True), STACK, deployed, prepared, None, None, deployed.outputs)


def _topic_resources(cloudformation: Stubber) -> None:
    summary = {
        "LogicalResourceId": "Alerts",
        "PhysicalResourceId": TOPIC_ARN,
        "ResourceType": "AWS::SNS::Topic",
        "LastUpdatedTimestamp": "2026-01-01T00:00:00Z",
        "ResourceStatus": "CREATE_COMPLETE",
    }
    queue = {**summary, "LogicalResourceId": "Queue", "PhysicalResourceId": "q", "ResourceType": "AWS::SQS::Queue"}
    cloudformation.add_response(
        "list_stack_resources", {"StackResourceSummaries": [summary, queue]}, {"StackName": STACK_ID}
    )


def _subscription(endpoint: str, protocol: str, arn: str) -> dict:
    return {
        "SubscriptionArn": arn,
        "Owner": "123456789012",
        "Protocol": protocol,
        "Endpoint": endpoint,
        "TopicArn": TOPIC_ARN,
    }


def _pending_subscriptions(sns: Stubber) -> None:
    """Two pages: a pending e-mail and a confirmed one, then a pending e-mail-json and a pending HTTPS endpoint."""
    first = [
        _subscription(ADDRESS, "email", "PendingConfirmation"),
        _subscription("lead@ops.acme-widgets.net", "email", f"{TOPIC_ARN}:0f1e"),
    ]
    second = [
        _subscription("bot@ops.acme-widgets.net", "email-json", "PendingConfirmation"),
        _subscription("https://hooks.acme-widgets.net/sns", "https", "PendingConfirmation"),
    ]
    sns.add_response(
        "list_subscriptions_by_topic", {"Subscriptions": first, "NextToken": "t2"}, {"TopicArn": TOPIC_ARN}
    )
    sns.add_response(
        "list_subscriptions_by_topic", {"Subscriptions": second}, {"TopicArn": TOPIC_ARN, "NextToken": "t2"}
    )


def _pending_lines(engine: Engine) -> list[str]:
    return [line for line in engine.err.export_text().splitlines() if "has not confirmed" in line]


def test_a_no_op_deploy_ends_with_one_line_per_unconfirmed_email_subscription(tmp_path):
    root = _project(tmp_path, "stub")
    engine, cloudformation, sns = _stubbed(root)
    _topic_resources(cloudformation)
    _pending_subscriptions(sns)
    with cloudformation, sns:
        outputs = engine.finish_unchanged(_unchanged(root))
    cloudformation.assert_no_pending_responses()
    sns.assert_no_pending_responses()
    assert outputs == {"TopicArn": TOPIC_ARN}
    assert _pending_lines(engine) == [
        f"{STACK}: {ADDRESS} has not confirmed the subscription to Alerts: no alert reaches that address until its "
        "owner opens the link in the 'AWS Notification - Subscription Confirmation' e-mail",
        f"{STACK}: bot@ops.acme-widgets.net has not confirmed the subscription to Alerts: no alert reaches that "
        "address until its owner opens the link in the 'AWS Notification - Subscription Confirmation' e-mail",
    ]  # the confirmed address and the HTTPS endpoint (no person's mail) are not named
    last = engine.err.export_text().strip().splitlines()[-2:]
    assert all("has not confirmed" in line for line in last)  # they are the deploy's last lines


def test_an_update_reports_finished_then_names_the_unconfirmed_subscriptions(tmp_path):
    root = _project(tmp_path, "stub")
    engine, cloudformation, sns = _stubbed(root)
    _successful_update(cloudformation, STACK_ID)
    _topic_resources(cloudformation)
    _pending_subscriptions(sns)
    template = _template(root)
    plan = build_plan(
        stack_name=STACK, change_set={"Changes": []}, new_template=template, old_template=template,
        new_parameters={}, old_parameters={}, new_tags={}, old_tags={}, template_hash="h", stack_last_updated=None,
    )  # fmt: skip
    with cloudformation, sns:
        outputs = engine._execute(
            request=Request("dev", "mini", yes=True),
            stack_name=STACK,
            deployed=DeployedStack.from_api(_stack(STACK, "UPDATE_COMPLETE")),
            prepared=Prepared(template, "{}", "h", {}, frozenset(), {}, [], False, None),
            plan=plan,
            created=changeset.ChangeSet("arn:cs", STACK_ID, {}),
        )
    cloudformation.assert_no_pending_responses()
    sns.assert_no_pending_responses()
    assert outputs == {"TopicArn": "arn:topic"}
    assert f"{STACK}: UPDATE_COMPLETE" in engine.out.export_text()
    assert [line.split(" has not")[0] for line in _pending_lines(engine)] == [
        f"{STACK}: {ADDRESS}",
        f"{STACK}: bot@ops.acme-widgets.net",
    ]


@pytest.mark.parametrize(
    ("code", "message", "status", "said"),
    [
        (
            "AuthorizationError",
            "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: SNS:ListSubscriptionsByTopic",
            403,
            "the caller may not SNS:ListSubscriptionsByTopic",
        ),
        ("Throttling", "Rate exceeded", 400, "Throttling: Rate exceeded"),
    ],
)
def test_a_listing_that_fails_is_one_line_and_the_deploy_still_succeeds(tmp_path, code, message, status, said):
    root = _project(tmp_path, "stub")
    engine, cloudformation, sns = _stubbed(root)
    _topic_resources(cloudformation)
    sns.add_client_error("list_subscriptions_by_topic", code, message, status)
    with cloudformation, sns:
        outputs = engine.finish_unchanged(_unchanged(root))  # no exception: the stack is deployed
    assert outputs == {"TopicArn": TOPIC_ARN}
    (line,) = [line for line in engine.err.export_text().splitlines() if "alert e-mail subscriptions" in line]
    assert line.startswith(f"{STACK}: could not check whether the alert e-mail subscriptions are confirmed: ")
    assert "SNS ListSubscriptionsByTopic" in line
    assert said in line
    assert line.endswith("an unconfirmed one receives nothing, see the topic's subscriptions in the SNS console")
    assert _pending_lines(engine) == []


def test_a_stack_listing_that_fails_is_the_same_one_line(tmp_path):
    root = _project(tmp_path, "stub")
    engine, cloudformation, sns = _stubbed(root)
    cloudformation.add_client_error("list_stack_resources", "AccessDenied", "not authorized", 403)
    with cloudformation, sns:
        engine.finish_unchanged(_unchanged(root))
    (line,) = [line for line in engine.err.export_text().splitlines() if "alert e-mail subscriptions" in line]
    assert "CloudFormation ListStackResources" in line


def test_a_template_that_subscribes_no_email_address_makes_no_call(tmp_path):
    root = _project(tmp_path, "stub", email="")
    engine, cloudformation, sns = _stubbed(root)
    with cloudformation, sns:  # nothing stubbed: a ListStackResources or ListSubscriptionsByTopic would fail here
        engine.finish_unchanged(_unchanged(root))
    assert "subscription" not in engine.err.export_text()


def test_on_the_emulator_the_check_runs_and_finds_nothing_pending(tmp_path, emulator, request):
    # moto leaves AWS::SNS::Subscription a placeholder (no subscription is made) and confirms an
    # e-mail subscription made through its Subscribe API at once: the address is subscribed here
    # by hand, and the deploy with nothing to do that follows lists it and names nothing.
    suffix = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[-30:].strip("-")
    root = _project(tmp_path, suffix)
    stack_name = f"mini-dev-{suffix}"
    target = Target(
        stack_name, "eu-west-1", endpoint_url=emulator.endpoint_url, credentials=dict(THROWAWAY_CREDENTIALS)
    )
    engine = Engine(
        load_project(root), Aws(target), Console(record=True, width=2000), Console(record=True, width=2000), poll=FAST
    )
    engine.deploy(Request("dev", "mini", yes=True))
    topic = emulator.client("cloudformation").describe_stack_resource(StackName=stack_name, LogicalResourceId="Alerts")
    arn = topic["StackResourceDetail"]["PhysicalResourceId"]
    sns = emulator.client("sns")
    sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=ADDRESS)
    (subscription,) = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert subscription["SubscriptionArn"] != "PendingConfirmation"  # what moto does, unlike SNS
    engine.deploy(Request("dev", "mini", yes=True))  # nothing to do
    text = engine.err.export_text()
    assert "has not confirmed" not in text
    assert "could not check" not in text
