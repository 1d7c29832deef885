"""Watching a stack operation: new events only, durations, outcomes, root causes, reporters.

The emulator (moto 5) emits only stack-level events after ExecuteChangeSet (no per-resource
IN_PROGRESS/COMPLETE/FAILED, no rollbacks, no nested stacks), so every test but the last scripts
the CloudFormation answers with botocore's Stubber on a real client: the requests and the answers
are checked against the service model. The last test watches a real create on the emulator.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber
from rich.console import Console

from cfnbuild.deploy.events import (
    AFTER_REVIEW,
    TERMINAL_FAILED,
    TERMINAL_OK,
    Failure,
    LiveReporter,
    PlainReporter,
    PollSettings,
    WatchTimeout,
    known_fix,
    make_reporter,
    root_cause,
    stack_events_since,
    watch,
)

ACCOUNT = "123456789012"
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def arn(name: str, suffix: str = "1f2e3d4c") -> str:
    return f"arn:aws:cloudformation:eu-west-1:{ACCOUNT}:stack/{name}/{suffix}-0000-4000-8000-000000000000"


STACK = "app"
STACK_ARN = arn(STACK)
CREATE = frozenset({"CREATE_COMPLETE"})
UPDATE = frozenset({"UPDATE_COMPLETE"})
DELETE = frozenset({"DELETE_COMPLETE"})


def event(  # noqa: PLR0917  (positional, so the scripted histories read as tables)
    event_id: str,
    logical_id: str,
    status: str,
    seconds: float,
    resource_type: str = "AWS::SNS::Topic",
    reason: str | None = None,
    *,
    stack_name: str = STACK,
    stack_id: str = STACK_ARN,
    physical_id: str | None = None,
) -> dict[str, Any]:
    """One StackEvent as DescribeStackEvents returns it; ``seconds`` after T0."""
    is_stack = logical_id == stack_name
    answer: dict[str, Any] = {
        "StackId": stack_id,
        "EventId": event_id,
        "StackName": stack_name,
        "LogicalResourceId": logical_id,
        "PhysicalResourceId": stack_id if is_stack else (physical_id or f"{logical_id.lower()}-phys"),
        "ResourceType": "AWS::CloudFormation::Stack" if is_stack else resource_type,
        "Timestamp": T0 + timedelta(seconds=seconds),
        "ResourceStatus": status,
    }
    if reason is not None:
        answer["ResourceStatusReason"] = reason
    return answer


def newest_first(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda e: e["Timestamp"], reverse=True)


@dataclass
class Script:
    """A Stubber on a real cloudformation client, with helpers to queue one poll's answers."""

    client: Any
    stubber: Stubber

    def stack(self, status: str, stack_id: str = STACK_ARN) -> None:
        self.stubber.add_response(
            "describe_stacks",
            {"Stacks": [{"StackName": STACK, "StackId": stack_id, "CreationTime": T0, "StackStatus": status}]},
            {"StackName": stack_id},
        )

    def gone(self, stack_id: str = STACK_ARN) -> None:
        self.stubber.add_client_error(
            "describe_stacks",
            "ValidationError",
            f"Stack with id {stack_id} does not exist",
            400,
            {"StackName": stack_id},
        )

    def events(
        self,
        history: list[dict[str, Any]],
        stack_id: str = STACK_ARN,
        token: str | None = None,
        next_token: str | None = None,
    ) -> None:
        """Queue one DescribeStackEvents page: ``history`` in any order, answered newest first."""
        expected = {"StackName": stack_id} | ({"NextToken": token} if token else {})
        answer: dict[str, Any] = {"StackEvents": newest_first(history)}
        if next_token:
            answer["NextToken"] = next_token
        self.stubber.add_response("describe_stack_events", answer, expected)

    def poll(self, status: str, history: list[dict[str, Any]]) -> None:
        self.stack(status)
        self.events(history)


@pytest.fixture
def script():
    client = boto3.client(
        "cloudformation",
        region_name="eu-west-1",
        aws_access_key_id="stub",
        aws_secret_access_key="stub",  # noqa: S106  (the Stubber answers; nothing is sent)
    )
    with Stubber(client) as stubber:
        yield Script(client, stubber)
        stubber.assert_no_pending_responses()


@dataclass
class FakeTime:
    """A monotonic clock that moves only when slept on (or by ``tick`` per reading)."""

    now: float = 1000.0
    tick: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        self.now += self.tick
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Recorder:
    """A reporter that keeps what it was told."""

    events: list[tuple[str, str, float | None]] = field(default_factory=list)
    heartbeats: list[tuple[str, float]] = field(default_factory=list)
    retries: list[tuple[str, int]] = field(default_factory=list)
    closed: bool = False

    def event(self, event: Any, duration: float | None) -> None:
        self.events.append((event["LogicalResourceId"], event["ResourceStatus"], duration))

    def waiting(self, status: str, elapsed: float) -> None:
        self.heartbeats.append((status, elapsed))

    def retrying(self, error: BaseException, attempt: int) -> None:
        self.retries.append((type(error).__name__, attempt))

    def close(self) -> None:
        self.closed = True


def run(script: Script, reporter: Any = None, *, since: Any = T0, success=CREATE, **kwargs: Any):
    time = kwargs.pop("time", FakeTime())
    outcome = watch(
        script.client,
        STACK_ARN,
        since=since,
        success=success,
        reporter=reporter if reporter is not None else Recorder(),
        sleep=time.sleep,
        clock=time.clock,
        rng=random.Random(7),  # noqa: S311  (seeded jitter, not cryptography)
        **kwargs,
    )
    return outcome, time


# An earlier operation on the same stack, all before T0: never reported.
EARLIER = [
    event("old-1", STACK, "CREATE_IN_PROGRESS", -3600, reason="User Initiated"),
    event("old-2", "Topic", "CREATE_FAILED", -3590, reason="an old failure of an earlier operation"),
    event("old-3", STACK, "UPDATE_COMPLETE", -3500),
]


def test_the_status_sets_partition_terminal_states():
    assert not TERMINAL_OK & TERMINAL_FAILED
    assert all(not status.endswith("_IN_PROGRESS") for status in TERMINAL_OK | TERMINAL_FAILED)


@pytest.mark.parametrize(("since"), [T0, "old-3"], ids=["since a datetime", "since the last EventId before"])
def test_only_events_newer_than_since_are_reported_each_once_oldest_first(script, since):
    first = [
        event("e1", STACK, "UPDATE_IN_PROGRESS", 1, reason="User Initiated"),
        event("e2", "Topic", "UPDATE_IN_PROGRESS", 2),
    ]
    second = [event("e3", "Topic", "UPDATE_COMPLETE", 5), event("e4", STACK, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", 6)]
    third = [event("e5", STACK, "UPDATE_COMPLETE", 7)]
    script.poll("UPDATE_IN_PROGRESS", EARLIER + first)
    script.poll("UPDATE_IN_PROGRESS", EARLIER + first + second)
    script.poll("UPDATE_COMPLETE", EARLIER + first + second + third)
    reporter = Recorder()

    outcome, _ = run(script, reporter, since=since, success=UPDATE)

    assert [status for _, status, _ in reporter.events] == [
        "UPDATE_IN_PROGRESS",
        "UPDATE_IN_PROGRESS",
        "UPDATE_COMPLETE",
        "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
        "UPDATE_COMPLETE",
    ]
    assert outcome.events_seen == 5
    assert outcome.ok
    assert outcome.status == "UPDATE_COMPLETE"


def test_after_review_reports_everything_after_the_review_in_progress_of_a_created_stack(script):
    # A CREATE change set made the stack: its only earlier event is REVIEW_IN_PROGRESS (an event
    # of a deleted namesake would have another stack id). Nothing is asked before the execution.
    review = [event("r1", STACK, "REVIEW_IN_PROGRESS", 0, reason="User Initiated")]
    created = [
        event("c1", STACK, "CREATE_IN_PROGRESS", 1, reason="User Initiated"),
        event("c2", "Topic", "CREATE_IN_PROGRESS", 2),
        event("c3", "Topic", "CREATE_COMPLETE", 4),
        event("c4", STACK, "CREATE_COMPLETE", 5),
    ]
    script.poll("CREATE_COMPLETE", review + created)
    reporter = Recorder()

    outcome, _ = run(script, reporter, since=AFTER_REVIEW, success=CREATE)

    assert [status for _, status, _ in reporter.events] == [
        "CREATE_IN_PROGRESS",
        "CREATE_IN_PROGRESS",
        "CREATE_COMPLETE",
        "CREATE_COMPLETE",
    ]
    assert outcome.ok


def test_event_pages_are_read_only_back_to_since(script):
    # Two pages of new events; the second ends in events from before the operation, so there is
    # no third request (the Stubber would reject one).
    new = [event(f"n{i}", f"Topic{i}", "CREATE_IN_PROGRESS", i) for i in range(1, 5)]
    script.stack("CREATE_COMPLETE")
    page_2, page_3 = "page-2", "page-3"
    script.events(new[2:], next_token=page_2)
    script.events(new[:2] + EARLIER, token=page_2, next_token=page_3)

    outcome, _ = run(script)

    assert outcome.events_seen == 4


def test_stack_events_since_returns_the_operation_oldest_first(script):
    new = [event("n1", STACK, "DELETE_IN_PROGRESS", 1), event("n2", STACK, "DELETE_COMPLETE", 9)]
    script.events(EARLIER + new)
    assert [e["EventId"] for e in stack_events_since(script.client, STACK_ARN, T0)] == ["n1", "n2"]


def test_each_resource_is_timed_from_its_first_in_progress_to_its_completion(script):
    script.poll(
        "CREATE_IN_PROGRESS",
        [
            event("e1", STACK, "CREATE_IN_PROGRESS", 0, reason="User Initiated"),
            event("e2", "AppSubnet1", "CREATE_IN_PROGRESS", 1.0, "AWS::EC2::Subnet"),
            event("e3", "AppSubnet1", "CREATE_IN_PROGRESS", 1.5, "AWS::EC2::Subnet", "Resource creation Initiated"),
        ],
    )
    script.poll(
        "CREATE_COMPLETE",
        [
            event("e4", "AppSubnet1", "CREATE_COMPLETE", 13.3, "AWS::EC2::Subnet"),
            event("e5", STACK, "CREATE_COMPLETE", 20.0),
        ],
    )
    reporter = Recorder()

    outcome, _ = run(script, reporter)

    assert reporter.events == [
        (STACK, "CREATE_IN_PROGRESS", None),
        ("AppSubnet1", "CREATE_IN_PROGRESS", None),
        ("AppSubnet1", "CREATE_IN_PROGRESS", None),
        ("AppSubnet1", "CREATE_COMPLETE", pytest.approx(12.3)),
        (STACK, "CREATE_COMPLETE", pytest.approx(20.0)),
    ]
    assert outcome.durations == {"AppSubnet1": pytest.approx(12.3), STACK: pytest.approx(20.0)}


def test_success_returns_at_once_after_jittered_polls(script):
    script.poll("CREATE_IN_PROGRESS", [event("e1", STACK, "CREATE_IN_PROGRESS", 0)])
    script.poll("CREATE_IN_PROGRESS", [])
    script.poll(
        "CREATE_COMPLETE",
        [
            event("e2", "Topic", "CREATE_IN_PROGRESS", 1),
            event("e3", "Topic", "CREATE_COMPLETE", 2),
            event("e4", STACK, "CREATE_COMPLETE", 3),
        ],
    )
    reporter = Recorder()

    outcome, time = run(script, reporter)

    assert outcome.ok
    assert outcome.status == "CREATE_COMPLETE"
    assert outcome.root_cause is None
    # Two sleeps for three polls: none once the final status is seen.
    assert len(time.sleeps) == 2
    assert all(2.0 <= s <= 5.0 for s in time.sleeps)
    assert len(set(time.sleeps)) == 2, "jittered, not a fixed period"
    assert reporter.heartbeats == [("CREATE_IN_PROGRESS", pytest.approx(time.sleeps[0]))]


def test_a_failed_create_names_the_first_real_failure_not_the_cascades(script):
    script.poll(
        "ROLLBACK_IN_PROGRESS",
        [
            event("e1", STACK, "CREATE_IN_PROGRESS", 0, reason="User Initiated"),
            event("e2", "Queue", "CREATE_IN_PROGRESS", 1, "AWS::SQS::Queue"),
            event("e3", "Bucket", "CREATE_IN_PROGRESS", 1, "AWS::S3::Bucket"),
            event("e4", "Queue", "CREATE_FAILED", 4.9, "AWS::SQS::Queue", "Resource creation cancelled"),
            event("e5", "Bucket", "CREATE_FAILED", 5, "AWS::S3::Bucket", "app-assets already exists"),
            event(
                "e6",
                STACK,
                "ROLLBACK_IN_PROGRESS",
                6,
                reason="The following resource(s) failed to create: [Bucket, Queue]. Rollback requested by user.",
            ),
        ],
    )
    script.poll(
        "ROLLBACK_COMPLETE", [event("e7", "Queue", "DELETE_COMPLETE", 8), event("e8", STACK, "ROLLBACK_COMPLETE", 9)]
    )

    outcome, _ = run(script)

    assert not outcome.ok
    assert outcome.status == "ROLLBACK_COMPLETE"
    assert outcome.root_cause == Failure(
        "Bucket", "AWS::S3::Bucket", "CREATE_FAILED", "app-assets already exists", STACK
    )
    assert str(outcome.root_cause) == (
        "Bucket (AWS::S3::Bucket) in stack app: CREATE_FAILED: app-assets already exists"
    )


def test_the_root_cause_of_a_nested_failure_is_found_two_levels_down(script):
    network_arn = arn("app-Network-ABC", "2a")
    subnets_arn = arn("app-Network-ABC-Subnets-DEF", "3b")
    script.poll(
        "UPDATE_ROLLBACK_COMPLETE",
        [
            event("r1", STACK, "UPDATE_IN_PROGRESS", 0, reason="User Initiated"),
            event("r2", "Network", "UPDATE_IN_PROGRESS", 1, "AWS::CloudFormation::Stack", physical_id=network_arn),
            event(
                "r3",
                "Network",
                "UPDATE_FAILED",
                30,
                "AWS::CloudFormation::Stack",
                f"Embedded stack {network_arn} was not successfully updated. Currently in UPDATE_ROLLBACK_IN_PROGRESS "
                "with reason: The following resource(s) failed to update: [Subnets].",
                physical_id=network_arn,
            ),
            event("r4", "Alarms", "UPDATE_FAILED", 30, "AWS::CloudFormation::Stack", "Resource update cancelled"),
            event("r5", STACK, "UPDATE_ROLLBACK_COMPLETE", 90),
        ],
    )
    nested = {"stack_name": "app-Network-ABC", "stack_id": network_arn}
    script.events(
        [
            # the nested stack's own earlier failure, from another operation: not this one's cause
            event("n0", "Vpc", "UPDATE_FAILED", -600, "AWS::EC2::VPC", "an earlier operation's failure", **nested),
            event("n1", "app-Network-ABC", "UPDATE_IN_PROGRESS", 2, **nested),
            event(
                "n2",
                "Subnets",
                "UPDATE_IN_PROGRESS",
                3,
                "AWS::CloudFormation::Stack",
                physical_id=subnets_arn,
                **nested,
            ),
            event(
                "n3",
                "Subnets",
                "UPDATE_FAILED",
                20,
                "AWS::CloudFormation::Stack",
                f"Embedded stack {subnets_arn} was not successfully updated.",
                physical_id=subnets_arn,
                **nested,
            ),
        ],
        stack_id=network_arn,
    )
    deepest = {"stack_name": "app-Network-ABC-Subnets-DEF", "stack_id": subnets_arn}
    script.events(
        [
            event(
                "s1", "RouteTable", "UPDATE_FAILED", 9, "AWS::EC2::RouteTable", "Resource update cancelled", **deepest
            ),
            event(
                "s2",
                "AppSubnet1",
                "UPDATE_FAILED",
                10,
                "AWS::EC2::Subnet",
                "The CIDR '10.0.0.0/24' conflicts with another subnet",
                **deepest,
            ),
            event("s3", "AppSubnet2", "UPDATE_FAILED", 11, "AWS::EC2::Subnet", "a later failure", **deepest),
        ],
        stack_id=subnets_arn,
    )

    outcome, _ = run(script, success=UPDATE)

    assert not outcome.ok
    assert outcome.root_cause == Failure(
        "AppSubnet1",
        "AWS::EC2::Subnet",
        "UPDATE_FAILED",
        "The CIDR '10.0.0.0/24' conflicts with another subnet",
        "app-Network-ABC-Subnets-DEF",
    )


def test_a_nested_stack_whose_events_cannot_be_read_is_itself_the_root_cause(script):
    network_arn = arn("app-Network-ABC", "2a")
    failed = event(
        "r2",
        "Network",
        "CREATE_FAILED",
        5,
        "AWS::CloudFormation::Stack",
        "Embedded stack failed",
        physical_id=network_arn,
    )
    script.stubber.add_client_error(
        "describe_stack_events",
        "ValidationError",
        f"Stack [{network_arn}] does not exist",
        400,
        {"StackName": network_arn},
    )
    assert root_cause(script.client, STACK_ARN, [event("r1", STACK, "CREATE_IN_PROGRESS", 0), failed]) == Failure(
        "Network", "AWS::CloudFormation::Stack", "CREATE_FAILED", "Embedded stack failed", STACK
    )


def test_update_rollback_failed_is_a_failure_caused_by_the_first_update_failure(script):
    script.poll(
        "UPDATE_ROLLBACK_FAILED",
        [
            event("e1", STACK, "UPDATE_IN_PROGRESS", 0, reason="User Initiated"),
            event("e2", "Function", "UPDATE_FAILED", 3, "AWS::Lambda::Function", "Runtime nodejs12.x is not supported"),
            event(
                "e3",
                STACK,
                "UPDATE_ROLLBACK_IN_PROGRESS",
                4,
                reason="The following resource(s) failed to update: [Function].",
            ),
            event("e4", "Role", "UPDATE_FAILED", 6, "AWS::IAM::Role", "Access denied while rolling back"),
            event(
                "e5",
                STACK,
                "UPDATE_ROLLBACK_FAILED",
                7,
                reason="The following resource(s) failed to update: [Role].",
            ),
        ],
    )

    outcome, _ = run(script, success=UPDATE)

    assert not outcome.ok
    assert outcome.status == "UPDATE_ROLLBACK_FAILED"
    assert outcome.status in TERMINAL_FAILED
    assert outcome.root_cause is not None
    assert (outcome.root_cause.logical_id, outcome.root_cause.reason) == (
        "Function",
        "Runtime nodejs12.x is not supported",
    )


def test_a_rollback_with_no_resource_failure_is_explained_by_the_stack_event(script):
    script.poll(
        "UPDATE_ROLLBACK_COMPLETE",
        [
            event("e1", STACK, "UPDATE_IN_PROGRESS", 0, reason="User Initiated"),
            event(
                "e2",
                STACK,
                "UPDATE_ROLLBACK_IN_PROGRESS",
                3,
                reason="Export app-VpcId cannot be deleted as it is in use by web",
            ),
            event("e3", STACK, "UPDATE_ROLLBACK_COMPLETE", 5),
        ],
    )

    outcome, _ = run(script, success=UPDATE)

    assert outcome.root_cause is not None
    assert outcome.root_cause.reason == "Export app-VpcId cannot be deleted as it is in use by web"


def test_a_stack_that_no_longer_exists_counts_as_deleted(script):
    script.stack("DELETE_IN_PROGRESS")
    script.events([*EARLIER, event("d1", STACK, "DELETE_IN_PROGRESS", 1, reason="User Initiated")])
    script.gone()
    script.stubber.add_client_error(
        "describe_stack_events", "ValidationError", f"Stack [{STACK_ARN}] does not exist", 400, {"StackName": STACK_ARN}
    )

    outcome, _ = run(script, success=DELETE)

    assert outcome.ok
    assert outcome.status == "DELETE_COMPLETE"


def test_plain_reporter_prints_one_line_per_event_and_a_heartbeat(script):
    console = Console(record=True, width=120, force_terminal=False)
    reporter = make_reporter(console)
    assert isinstance(reporter, PlainReporter)
    script.poll(
        "CREATE_IN_PROGRESS",
        [
            event("e1", STACK, "CREATE_IN_PROGRESS", 0, reason="User Initiated"),
            event("e2", "AppSubnet1", "CREATE_IN_PROGRESS", 0.5, "AWS::EC2::Subnet"),
        ],
    )
    for _ in range(30):  # about 100 quiet seconds
        script.poll("CREATE_IN_PROGRESS", [])
    script.poll(
        "ROLLBACK_COMPLETE",
        [
            event("e3", "AppSubnet1", "CREATE_COMPLETE", 12.8, "AWS::EC2::Subnet"),
            event("e4", "Bucket", "CREATE_FAILED", 13, "AWS::S3::Bucket", "Bucket [assets] already exists"),
            event("e5", STACK, "ROLLBACK_COMPLETE", 20),
        ],
    )

    outcome, _ = run(script, reporter)
    reporter.close()

    lines = console.export_text().splitlines()
    assert lines[:2] == [
        "12:00:00 app AWS::CloudFormation::Stack CREATE_IN_PROGRESS: User Initiated",
        "12:00:00 AppSubnet1 AWS::EC2::Subnet CREATE_IN_PROGRESS",
    ]
    assert lines[-3:] == [
        "12:00:12 AppSubnet1 AWS::EC2::Subnet CREATE_COMPLETE 12.3s",
        "12:00:13 Bucket AWS::S3::Bucket CREATE_FAILED: Bucket [assets] already exists",
        "12:00:20 app AWS::CloudFormation::Stack ROLLBACK_COMPLETE 20.0s",
    ]
    heartbeats = lines[2:-3]
    assert heartbeats
    assert all(line.startswith("… still CREATE_IN_PROGRESS after 1m") for line in heartbeats[:1]), heartbeats
    assert outcome.root_cause is not None
    assert outcome.root_cause.logical_id == "Bucket"


def test_live_reporter_renders_a_table_and_leaves_the_event_lines(script):
    console = Console(record=True, width=120, force_terminal=True, height=30)
    reporter = make_reporter(console)
    assert isinstance(reporter, LiveReporter)
    assert isinstance(make_reporter(console, live=False), PlainReporter)
    script.poll(
        "CREATE_IN_PROGRESS",
        [event("e1", STACK, "CREATE_IN_PROGRESS", 0)]
        + [event(f"e{i}", f"Subnet{i}", "CREATE_IN_PROGRESS", i, "AWS::EC2::Subnet") for i in range(2, 40)],
    )
    script.poll("CREATE_IN_PROGRESS", [])
    script.poll("CREATE_COMPLETE", [event("e99", STACK, "CREATE_COMPLETE", 60)])
    try:
        outcome, _ = run(script, reporter)
        reporter.retrying(EndpointConnectionError(endpoint_url="https://cloudformation"), 1)
        table = Console(record=True, width=120)
        table.print(reporter.render())
    finally:
        reporter.close()

    assert outcome.ok
    text = console.export_text()
    assert "app AWS::CloudFormation::Stack CREATE_COMPLETE 60.0s" in text
    assert "Subnet39 AWS::EC2::Subnet CREATE_IN_PROGRESS" in text
    rendered = table.export_text()
    assert "Subnet2 " in rendered
    assert "more" in rendered, "rows beyond the terminal's height are summarised"
    assert "retrying (attempt 1)" in rendered


class Flaky:
    """The stubbed client, except that chosen calls fail as a dropped connection makes them fail.

    A failed call never reaches the Stubber, so it consumes no scripted answer.
    """

    def __init__(self, client: Any, failures: dict[tuple[str, int], Exception]) -> None:
        self.client = client
        self.failures = failures  # (method, n-th call) → error
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def call(**kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            error = self.failures.get((name, self.calls[name]))
            if error is not None:
                raise error
            return method(**kwargs)

        return call


def test_a_dropped_connection_mid_watch_is_retried(script):
    endpoint = "https://cloudformation.eu-west-1.amazonaws.com"
    # Poll 2 loses DescribeStacks (connection refused), poll 3 DescribeStackEvents (read timeout).
    flaky = Flaky(
        script.client,
        {
            ("describe_stacks", 2): EndpointConnectionError(endpoint_url=endpoint),
            ("describe_stack_events", 2): ReadTimeoutError(endpoint_url=endpoint),
        },
    )
    script.poll("CREATE_IN_PROGRESS", [event("e1", STACK, "CREATE_IN_PROGRESS", 0)])
    script.stack("CREATE_IN_PROGRESS")
    script.poll(
        "CREATE_COMPLETE",
        [
            event("e1", STACK, "CREATE_IN_PROGRESS", 0),
            event("e2", "Topic", "CREATE_IN_PROGRESS", 1),
            event("e3", "Topic", "CREATE_COMPLETE", 2),
            event("e4", STACK, "CREATE_COMPLETE", 3),
        ],
    )
    reporter = Recorder()

    outcome, time = run(Script(flaky, script.stubber), reporter)

    assert outcome.ok
    assert [e[:2] for e in reporter.events] == [
        (STACK, "CREATE_IN_PROGRESS"),
        ("Topic", "CREATE_IN_PROGRESS"),
        ("Topic", "CREATE_COMPLETE"),
        (STACK, "CREATE_COMPLETE"),
    ]
    assert reporter.retries == [("EndpointConnectionError", 1), ("ReadTimeoutError", 2)]
    assert len(time.sleeps) == 3
    assert time.sleeps[2] >= 4.0, "backs off: the second failure in a row waits twice the jitter"


def test_a_stack_still_in_progress_at_the_timeout_raises_without_sleeping_past_it(script):
    for _ in range(4):  # at 0, 4, 8 and 10 seconds: the last poll is at the deadline, not past it
        script.poll("UPDATE_IN_PROGRESS", [])
    time = FakeTime()

    with pytest.raises(WatchTimeout, match="still UPDATE_IN_PROGRESS after 10s"):
        run(script, success=UPDATE, poll=PollSettings(min_seconds=4, max_seconds=4, timeout_seconds=10), time=time)

    assert time.sleeps == [4, 4, 2]


def test_a_naive_since_is_refused(script):
    with pytest.raises(ValueError, match="timezone-aware"):
        run(script, since=datetime(2024, 5, 1, 12, 0))  # naive: the point of the test


@pytest.mark.server
def test_watch_a_real_create_and_delete_through_a_change_set_on_the_emulator(emulator):
    cloudformation = emulator.client("cloudformation")
    body = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    change_set = cloudformation.create_change_set(
        StackName="events-watch", TemplateBody=body, ChangeSetName="create", ChangeSetType="CREATE"
    )
    stack_id = change_set["StackId"]
    cloudformation.get_waiter("change_set_create_complete").wait(
        ChangeSetName=change_set["Id"], WaiterConfig={"Delay": 1}
    )
    before = cloudformation.describe_stack_events(StackName=stack_id)["StackEvents"][0]["EventId"]
    cloudformation.execute_change_set(ChangeSetName=change_set["Id"])
    console = Console(record=True, width=120, force_terminal=False)
    reporter = make_reporter(console)

    created = watch(
        cloudformation, stack_id, since=before, success=CREATE, reporter=reporter, poll=PollSettings(0.1, 0.2, 60)
    )

    assert created.ok, created
    assert created.status == "CREATE_COMPLETE"
    lines = console.export_text().splitlines()
    assert lines, "the create's events are reported"
    assert "REVIEW_IN_PROGRESS" not in "\n".join(lines), "the event before since is not"
    assert lines[-1].split()[1:4] == ["events-watch", "AWS::CloudFormation::Stack", "CREATE_COMPLETE"]

    last = cloudformation.describe_stack_events(StackName=stack_id)["StackEvents"][0]["EventId"]
    cloudformation.delete_stack(StackName=stack_id)
    deleted = watch(
        cloudformation, stack_id, since=last, success=DELETE, reporter=reporter, poll=PollSettings(0.1, 0.2, 60)
    )
    reporter.close()

    assert deleted.ok, deleted
    assert deleted.status == "DELETE_COMPLETE"


def test_a_log_group_that_already_exists_outside_the_stack_names_import_or_delete_as_the_fix():
    # The shape of AWS's answer when RDS made the group first (the stack predates the group).
    reason = (
        "Resource of type 'AWS::Logs::LogGroup' with identifier "
        "'/aws/rds/cluster/webapp-dev-dbcluster-1a2b/error' already exists."
    )
    failure = Failure("DbErrorLogGroup", "AWS::Logs::LogGroup", "CREATE_FAILED", reason, "webapp-dev")
    fix = known_fix(failure)
    assert fix.startswith("; the log group was made outside the stack")
    assert "import it into the stack with a resource import" in fix
    assert "or delete it, then deploy again" in fix
    # Nothing is said where the words imply no such fix.
    assert known_fix(Failure("Queue", "AWS::SQS::Queue", "UPDATE_FAILED", "Queue name already exists", "s")) == ""
    assert known_fix(Failure("Logs", "AWS::Logs::LogGroup", "CREATE_FAILED", "Rate exceeded", "s")) == ""
