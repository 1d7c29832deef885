"""The deploy survives a bad network: the engine against the emulator behind a fault proxy.

tests/faultproxy.py sits on loopback between the engine's real clients (botocore standard retry
mode, as cfnbuild ships them) and the emulator (moto in server mode), and injects scripted
faults per operation: throttling, 500/503 answers, dropped connections, slow answers, and
answers lost after the emulator already did the work. Every test deploys a small stack (an SNS
topic, an SQS queue and a stateful S3 bucket) through the proxy, then updates it, and asserts
both the outcome (CREATE_COMPLETE, then UPDATE_COMPLETE, read straight from the emulator) and
the proxy's record of the faults it really injected.

Fault counts are kept small on purpose: botocore's standard mode backs off ``random() * 2**n``
seconds (n = retries in a row, from 0), so each isolated fault costs at most one second and two
in a row at most three.

Known emulator limit, stated where it matters: moto 5 ignores ``ClientToken`` on
CreateChangeSet and ``ClientRequestToken`` on ExecuteChangeSet, so a retried request is done
twice there, where AWS would answer the retry with the first request's result.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from rich.console import Console

from cfnbuild.deploy.aws import RETRIES, Aws, Target
from cfnbuild.deploy.engine import Engine, Request
from cfnbuild.deploy.events import PollSettings
from cfnbuild.local.emulator import THROWAWAY_CREDENTIALS
from cfnbuild.project.app import load_project
from tests.faultproxy import Fault, FaultProxy, Injection, Seen

POLL = PollSettings(min_seconds=0.05, max_seconds=0.1, timeout_seconds=60)
POLLING = ("DescribeStacks", "DescribeStackEvents", "DescribeChangeSet")

APP = """
from dataclasses import dataclass

from troposphere import GetAtt, Ref, s3, sns, sqs

from cfnbuild import App, Blueprint, EnvironmentConfig, Stack, StackSpec, setting


class FaultyConfig(EnvironmentConfig):
    label: str = "v1"


@dataclass(frozen=True)
class Inputs:
    label: str = setting("v1", "The topic's display name; changing it is an in-place update.")


class Small(Blueprint[Inputs]):
    def build(self) -> None:
        topic = self.add(sns.Topic("Topic", DisplayName=self.inputs.label))
        self.output("TopicArn", Ref(topic), "The topic.")
        queue = self.add(sqs.Queue("Queue", SqsManagedSseEnabled=True, MessageRetentionPeriod=345600), stateful=True)
        self.output("QueueArn", GetAtt(queue, "Arn"), "The queue.")
        bucket = self.add(
            s3.Bucket(
                "Bucket",
                BucketEncryption=s3.BucketEncryption(
                    ServerSideEncryptionConfiguration=[
                        s3.ServerSideEncryptionRule(
                            ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(SSEAlgorithm="AES256")
                        )
                    ]
                ),
                PublicAccessBlockConfiguration=s3.PublicAccessBlockConfiguration(
                    BlockPublicAcls=True, BlockPublicPolicy=True, IgnorePublicAcls=True, RestrictPublicBuckets=True
                ),
                VersioningConfiguration=s3.VersioningConfiguration(Status="Enabled"),
            ),
            stateful=True,
        )
        self.output("BucketName", Ref(bucket), "The bucket.")


def build(config: FaultyConfig) -> Stack:
    stack = Stack("faulty", description="fault proxy test", project=config.project, environment=config.environment)
    Small(stack, Inputs(label=config.label))
    return stack


app = App(config_model=FaultyConfig, stacks=[StackSpec("faulty", build)])
"""


def _write_project(root: Path, suffix: str, label: str) -> None:
    (root / "pyproject.toml").write_text('[tool.cfnbuild]\napp = "faulty_app:app"\ndefault_env = "dev"\n')
    (root / "faulty_app.py").write_text(APP)
    (root / "config").mkdir(exist_ok=True)
    (root / "config/dev.toml").write_text(
        f'project = "faulty"\nregions = ["eu-west-1"]\nlabel = "{label}"\n[deploy]\nstack_name_suffix = "{suffix}"\n'
    )


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The project built once per label with the real CLI (cfn-lint gate included): label → JSON.

    The template does not depend on the stack-name suffix, so each test reuses these instead of
    linting again; the engine's own staleness check would refuse a template that did not match.
    """
    root = tmp_path_factory.mktemp("faulty-build")
    built = {}
    for label in ("v1", "v2"):
        _write_project(root, "build", label)
        result = subprocess.run(
            [sys.executable, "-m", "cfnbuild", "--project", str(root), "build"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        built[label] = (root / "output/dev/faulty.json").read_text()
    return built


@dataclass
class Small:
    """One test's copy of the project."""

    root: Path
    suffix: str
    templates: dict[str, str]

    @property
    def stack_name(self) -> str:
        """The deployed stack's name."""
        return f"faulty-dev-{self.suffix}"

    def use(self, label: str) -> None:
        """Configure ``label`` and put its built template in output/, as 'cfnbuild build' would."""
        _write_project(self.root, self.suffix, label)
        (self.root / "output/dev").mkdir(parents=True, exist_ok=True)
        (self.root / "output/dev/faulty.json").write_text(self.templates[label])


@pytest.fixture
def small(tmp_path: Path, request: pytest.FixtureRequest, templates: dict[str, str]) -> Small:
    suffix = request.node.name.removeprefix("test_").replace("_", "-")[:40].strip("-")
    project = Small(tmp_path, suffix, templates)
    project.use("v1")
    return project


@pytest.fixture
def proxy(emulator: Any) -> Iterator[FaultProxy]:
    with FaultProxy(emulator.endpoint_url) as running:
        yield running


def _deploy(small: Small, proxy: FaultProxy, config: Config = RETRIES) -> Console:
    """One deploy through the proxy with the engine's real client config (unless told otherwise)."""
    target = Target(
        small.stack_name, "eu-west-1", endpoint_url=proxy.endpoint_url, credentials=dict(THROWAWAY_CREDENTIALS)
    )
    out = Console(record=True, width=200, force_terminal=False)
    err = Console(record=True, width=200, force_terminal=False)
    engine = Engine(load_project(small.root), Aws(target, config=config), out, err, poll=POLL)
    engine.deploy(Request("dev", "faulty", yes=True))
    return out


def _status(emulator: Any, stack_name: str) -> str:
    """The stack's status as the emulator has it, asked directly (not through the proxy)."""
    return str(emulator.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"])


@dataclass(frozen=True)
class Phase:
    """What the proxy recorded during one deploy."""

    injected: list[Injection]
    seen: list[Seen]

    def after(self, operation: str, call: int) -> Seen:
        """The request for ``operation`` that followed its call number ``call``."""
        return next(s for s in self.seen if s.operation == operation and s.call == call + 1)


def _create_then_update(
    small: Small, proxy: FaultProxy, emulator: Any, faults: list[Fault], config: Config = RETRIES
) -> tuple[Phase, Phase]:
    """Deploy, then change the topic and deploy again, each under ``faults``; assert both outcomes
    and that every scripted fault was injected in each."""
    proxy.arm(faults)
    _deploy(small, proxy, config)
    assert _status(emulator, small.stack_name) == "CREATE_COMPLETE"
    created = Phase(list(proxy.injected), list(proxy.seen))
    small.use("v2")
    proxy.arm(faults)
    out = _deploy(small, proxy, config)
    assert _status(emulator, small.stack_name) == "UPDATE_COMPLETE"
    updated = Phase(list(proxy.injected), list(proxy.seen))
    assert "Modify" in out.export_text()
    cloudformation = emulator.client("cloudformation")
    topic = cloudformation.describe_stack_resource(StackName=small.stack_name, LogicalResourceId="Topic")
    arn = topic["StackResourceDetail"]["PhysicalResourceId"]
    assert emulator.client("sns").get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "v2"
    expected = sorted((f.operation, f.kind, call) for f in faults for call in f.on)
    for name, phase in (("create", created), ("update", updated)):
        assert sorted((i.operation, i.kind, i.call) for i in phase.injected) == expected, name
    return created, updated


def test_throttling_on_every_polling_call_is_retried_to_create_and_update_complete(
    small: Small, proxy: FaultProxy, emulator: Any
) -> None:
    # The 1st and 3rd DescribeStacks (the 2nd is the 1st's retry, the 3rd the watch loop's poll),
    # two DescribeStackEvents in a row (the first read and its retry: the watch loop's in a create,
    # the read of the last event before executing in an update), and two DescribeChangeSet in a
    # row (the change set wait's first poll and its retry).
    faults = [
        Fault("DescribeStacks", "throttle", on=(1, 3)),
        Fault("DescribeStackEvents", "throttle", on=(1, 2)),
        Fault("DescribeChangeSet", "throttle", on=(1, 2)),
    ]
    created, updated = _create_then_update(small, proxy, emulator, faults)
    assert [i.kind for i in created.injected + updated.injected] == ["throttle"] * 12


def test_500_and_503_on_polling_calls_are_retried_to_create_and_update_complete(
    small: Small, proxy: FaultProxy, emulator: Any
) -> None:
    faults = [
        Fault("DescribeStacks", "500", on=(1,)),
        Fault("DescribeStacks", "503", on=(3,)),
        Fault("DescribeStackEvents", "503", on=(1,)),  # the watch loop's in a create, the first read in an update
        Fault("DescribeChangeSet", "500", on=(1,)),
    ]
    created, updated = _create_then_update(small, proxy, emulator, faults)
    assert sorted(i.kind for i in created.injected + updated.injected) == ["500"] * 4 + ["503"] * 4


def test_dropped_connections_on_polling_calls_are_retried_to_create_and_update_complete(
    small: Small, proxy: FaultProxy, emulator: Any
) -> None:
    faults = [Fault(operation, "drop", on=(1,)) for operation in POLLING]
    faults.append(Fault("DescribeStacks", "drop", on=(3,)))  # the watch loop's poll
    created, updated = _create_then_update(small, proxy, emulator, faults)
    for phase in (created, updated):
        # Each dropped request was sent again, unchanged.
        for injection in phase.injected:
            dropped = next(s for s in phase.seen if (s.operation, s.call) == (injection.operation, injection.call))
            assert phase.after(injection.operation, injection.call).params == dropped.params


def test_a_dropped_connection_on_the_no_op_check_is_retried(small: Small, proxy: FaultProxy, emulator: Any) -> None:
    proxy.arm([])
    _deploy(small, proxy)
    small.use("v2")
    proxy.arm([Fault("GetTemplate", "drop", on=(1,)), Fault("GetStackPolicy", "drop", on=(1,))])
    _deploy(small, proxy)
    assert _status(emulator, small.stack_name) == "UPDATE_COMPLETE"
    assert [(i.operation, i.kind) for i in proxy.injected] == [("GetTemplate", "drop"), ("GetStackPolicy", "drop")]


def test_slow_answers_within_the_read_timeout_only_make_the_deploy_slower(
    small: Small, proxy: FaultProxy, emulator: Any
) -> None:
    faults = [
        Fault("DescribeStacks", "slow", on=(2,), seconds=1.0),  # the watch loop's poll
        Fault("DescribeChangeSet", "slow", on=(1,), seconds=1.0),
    ]
    created, updated = _create_then_update(small, proxy, emulator, faults)
    for phase in (created, updated):
        slow = next(i for i in phase.injected if i.operation == "DescribeStacks")
        # The client waited for the slow answer: the watch read the events only after it.
        events = next(s for s in phase.seen if s.operation == "DescribeStackEvents" and s.at > slow.at)
        assert events.at >= slow.at + slow.seconds
        # The emulator makes a change set at once, so the wait's first (slow) answer was enough.
        assert [s.call for s in phase.seen if s.operation == "DescribeChangeSet"] == [1]


def test_an_answer_slower_than_a_short_read_timeout_is_given_up_on_and_asked_again(
    small: Small, proxy: FaultProxy, emulator: Any
) -> None:
    # The engine's clients wait 30 s for an answer; with the read timeout cut to 1 s, a 2 s answer
    # times out in the client, which asks again before the slow answer would have come. (Not
    # shorter: a CreateChangeSet or ExecuteChangeSet timing out on a busy machine would be sent
    # again, and the emulator, ignoring the tokens, would do it twice.)
    short = RETRIES.merge(Config(read_timeout=1.0))
    faults = [Fault("DescribeStacks", "slow", on=(2,), seconds=2.0)]  # the watch loop's poll
    created, updated = _create_then_update(small, proxy, emulator, faults, config=short)
    for phase in (created, updated):
        (slow,) = phase.injected
        retry = phase.after("DescribeStacks", slow.call)
        assert retry.at < slow.at + slow.seconds
        assert (
            retry.params
            == next(s for s in phase.seen if s.call == slow.call and s.operation == "DescribeStacks").params
        )


def _change_sets(emulator: Any, stack_name: str) -> list[dict[str, Any]]:
    return list(emulator.client("cloudformation").list_change_sets(StackName=stack_name)["Summaries"])


def test_a_create_change_set_retried_after_the_emulator_made_it_carries_the_same_client_token(
    small: Small, proxy: FaultProxy, emulator: Any
) -> None:
    _deploy(small, proxy)
    small.use("v2")
    # The emulator makes the change set, then its answer is lost: botocore sends the request again.
    proxy.arm([Fault("CreateChangeSet", "drop_after", on=(1,))])
    _deploy(small, proxy)
    assert proxy.injected_kinds() == ["drop_after"]
    first, retry = (a.params for a in proxy.requests("CreateChangeSet"))
    assert first["ClientToken"] == first["ChangeSetName"]
    assert first == retry  # the very same request: on AWS the token makes the retry return the first change set
    assert _status(emulator, small.stack_name) == "UPDATE_COMPLETE"
    # moto ignores ClientToken, so it made a second change set of the same name; one was
    # executed and the other is left AVAILABLE (AWS would have made one, and deletes a stack's
    # other change sets when one is executed). If this ever finds one, moto learned idempotency:
    # tighten it to exactly one EXECUTE_COMPLETE change set.
    same_name = [c for c in _change_sets(emulator, small.stack_name) if c["ChangeSetName"] == first["ChangeSetName"]]
    assert sorted(c["ExecutionStatus"] for c in same_name) == ["AVAILABLE", "EXECUTE_COMPLETE"]


def test_an_execute_change_set_retried_after_the_emulator_ran_it_carries_the_same_request_token(
    small: Small, proxy: FaultProxy, emulator: Any
) -> None:
    proxy.arm([Fault("ExecuteChangeSet", "drop_after", on=(1,))])
    _deploy(small, proxy)
    assert proxy.injected_kinds() == ["drop_after"]
    first, retry = (a.params for a in proxy.requests("ExecuteChangeSet"))
    assert first["ClientRequestToken"].startswith("cfnbuild-")
    assert first == retry
    assert _status(emulator, small.stack_name) == "CREATE_COMPLETE"
    outputs = json.loads((small.root / "output/dev/faulty.outputs.json").read_text())
    assert outputs["StackName"] == small.stack_name


def test_after_a_lost_create_change_set_answer_the_stack_policy_lands_on_the_stack_that_was_executed(
    small: Small, proxy: FaultProxy, emulator: Any
) -> None:
    # On the first deploy the emulator makes the CREATE change set and, as it ignores
    # ClientToken, a second one with a second stack of the same name on the retry. The engine
    # executes the change set of the answer it got; the first stack stays REVIEW_IN_PROGRESS.
    # (On AWS the token makes the retry return the first change set, so there is one stack; the
    # engine should still read back the stack it executed by its ARN, as its watch does.)
    proxy.arm([Fault("CreateChangeSet", "drop_after", on=(1,))])
    _deploy(small, proxy)
    assert proxy.injected_kinds() == ["drop_after"]
    cloudformation = emulator.client("cloudformation")
    same_name = [s for s in cloudformation.list_stacks()["StackSummaries"] if s["StackName"] == small.stack_name]
    assert sorted(s["StackStatus"] for s in same_name) == ["CREATE_COMPLETE", "REVIEW_IN_PROGRESS"]
    executed = json.loads((small.root / "output/dev/faulty.outputs.json").read_text())["StackId"]
    assert cloudformation.describe_stacks(StackName=executed)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    policy = cloudformation.get_stack_policy(StackName=executed).get("StackPolicyBody")
    assert policy, "the created stack got no stack policy: Replace/Delete of Bucket and Queue are not denied"
    assert "LogicalResourceId/Bucket" in policy


def test_the_proxy_names_operations_of_every_protocol_counts_them_and_stops_cleanly(emulator: Any) -> None:
    import boto3

    with pytest.raises(ValueError, match="at most"):
        Fault("DescribeStacks", "slow", seconds=60)
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy("http://example.com:80")
    proxy = FaultProxy(emulator.endpoint_url)
    session = boto3.session.Session(
        THROWAWAY_CREDENTIALS["aws_access_key_id"],
        THROWAWAY_CREDENTIALS["aws_secret_access_key"],
        region_name="eu-west-1",
    )
    proxy.arm([Fault("ListStacks", "throttle", on=(2,)), Fault("GetCallerIdentity", "503")])
    cloudformation = session.client("cloudformation", endpoint_url=proxy.endpoint_url, config=RETRIES)
    cloudformation.list_stacks()  # query protocol: Action= in the form body
    assert cloudformation.list_stacks()["ResponseMetadata"]["RetryAttempts"] == 1
    session.client("sts", endpoint_url=proxy.endpoint_url, config=RETRIES).get_caller_identity()
    session.client("sqs", endpoint_url=proxy.endpoint_url).list_queues()  # X-Amz-Target (or Action=)
    session.client("s3", endpoint_url=proxy.endpoint_url).list_buckets()  # REST: method and path
    assert proxy.counts() == {"ListStacks": 3, "GetCallerIdentity": 2, "ListQueues": 1, "GET /": 1}
    assert [(i.operation, i.call, i.kind) for i in proxy.injected] == [
        ("ListStacks", 2, "throttle"),
        ("GetCallerIdentity", 1, "503"),
    ]
    assert proxy.alive_threads()  # the server and the handlers of the clients' keep-alive connections
    proxy.stop()  # with those connections still open
    assert proxy.alive_threads() == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1)


def test_a_create_reads_no_stack_policy_and_takes_its_outputs_from_the_watch(
    small: Small, proxy: FaultProxy, emulator: Any
) -> None:
    created, updated = _create_then_update(small, proxy, emulator, [])
    operations = [s.operation for s in created.seen]
    # A stack this deploy created has no policy to compare with: it is set, not read first.
    assert "GetStackPolicy" not in operations
    assert "SetStackPolicy" in operations
    # The watch's final DescribeStacks carries the outputs: nothing describes the stack after it.
    executed = operations.index("ExecuteChangeSet")
    assert operations[executed:].count("DescribeStacks") == operations[executed:].count("DescribeStackEvents")
    assert "GetStackPolicy" in [s.operation for s in updated.seen]
