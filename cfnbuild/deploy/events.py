"""Watching a stack operation: its events as they happen, and why it failed when it did.

:func:`watch` polls one stack (by its ARN) every few seconds until its status is no longer
``*_IN_PROGRESS``, hands each new event, oldest first, to a :class:`Reporter`, and returns an
:class:`Outcome`: the final status, whether it is the one the operation wanted, per-resource
durations and the root cause of a failure (nested stacks included). :func:`make_reporter` picks a
rich live table for a terminal and one plain line per event for CI logs.

AWS reference: DescribeStackEvents (events come newest first, paginated; a deleted stack's events
are listed by its stack ID) -
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackEvents.html
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from botocore.exceptions import ClientError
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cfnbuild.deploy.aws import is_transient
from cfnbuild.errors import CfnbuildError

TERMINAL_OK = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE", "IMPORT_COMPLETE"})
TERMINAL_FAILED = frozenset(
    {
        "CREATE_FAILED",
        "ROLLBACK_COMPLETE",
        "ROLLBACK_FAILED",
        "UPDATE_ROLLBACK_COMPLETE",
        "UPDATE_ROLLBACK_FAILED",
        "DELETE_FAILED",
        "UPDATE_FAILED",
        "IMPORT_ROLLBACK_COMPLETE",
        "IMPORT_ROLLBACK_FAILED",
    }
)

# Reasons CloudFormation gives to resources that failed only because another one did: never the
# root cause. Matched as prefixes of ResourceStatusReason.
CASCADE_REASONS = (
    "Resource creation cancelled",
    "Resource update cancelled",
    "Resource deletion cancelled",
    "The following resource(s) failed to ",
)

# Stack-level statuses whose reason says why a rollback started; a failure that is not any
# resource's (an export still in use, a cancelled update) shows up only there.
_ROLLBACK_STARTED = frozenset({"ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS", "IMPORT_ROLLBACK_IN_PROGRESS"})

# Answers worth polling again after, once botocore's own retries gave up on them.
_MAX_BACKOFF_SECONDS = 60.0
_NESTED_STACK = "AWS::CloudFormation::Stack"


@dataclass(frozen=True)
class PollSettings:
    """How often to ask CloudFormation, and for how long at most."""

    min_seconds: float = 2.0
    max_seconds: float = 5.0
    timeout_seconds: float = 3 * 3600


@dataclass(frozen=True)
class Failure:
    """One failed resource: the first failure of an operation, where it happened and why."""

    logical_id: str
    resource_type: str
    status: str
    reason: str
    stack_name: str  # the nested stack where it happened, or the stack itself

    def __str__(self) -> str:
        return (
            f"{self.logical_id} ({self.resource_type}) in stack {self.stack_name}: {self.status}: "
            f"{self.reason or 'no reason given'}"
        )


def known_fix(failure: Failure) -> str:
    """What to do about a root cause whose fix its own words imply, as ``"; ..."``; else ``""``.

    A log group that "already exists" was made outside the stack by a service that writes to
    it under a fixed name (RDS makes ``/aws/rds/cluster/<cluster>/<log>`` on its first export):
    the stack cannot create it over the top. AWS's way to adopt it is a resource import
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/resource-import.html).
    """
    if failure.resource_type == "AWS::Logs::LogGroup" and "already exists" in failure.reason.lower():
        return (
            "; the log group was made outside the stack (RDS makes its exported logs' groups itself): "
            "import it into the stack with a resource import to keep its events, or delete it, then deploy again"
        )
    return ""


@dataclass(frozen=True)
class Outcome:
    """How a watched operation ended."""

    stack_id: str
    status: str  # the final stack status
    ok: bool  # the status is in TERMINAL_OK and is one the operation wanted
    root_cause: Failure | None  # the first failure of this operation (only looked for when not ok)
    durations: dict[str, float]  # logical id → seconds from its first IN_PROGRESS to its last COMPLETE/FAILED
    events_seen: int
    stack: Mapping[str, Any] = field(default_factory=dict)  # DescribeStacks at the final status (outputs and all)


class WatchTimeout(CfnbuildError):
    """The stack was still in progress when the watch gave up; CloudFormation carries on regardless."""

    def __init__(self, stack_id: str, status: str, seconds: float, events: Sequence[Mapping[str, Any]]) -> None:
        self.stack_id = stack_id
        self.status = status
        self.events = list(events)
        super().__init__(
            f"{stack_id} is still {status} after {format_seconds(seconds)}; CloudFormation carries on with the "
            "operation: check the stack's status again later instead of starting another one"
        )


class Reporter(Protocol):
    """Where :func:`watch` sends what it sees. Call :meth:`close` when done (in a ``finally``)."""

    def event(self, event: Mapping[str, Any], duration: float | None) -> None:
        """A new stack event, oldest first; ``duration`` is set on a resource's COMPLETE/FAILED."""

    def waiting(self, status: str, elapsed: float) -> None:
        """A heartbeat after a poll with no new event: the stack status and seconds since the watch began."""

    def close(self) -> None:
        """Stop drawing; print nothing more."""


@runtime_checkable
class NoticesRetries(Protocol):
    """A reporter that also wants to know when a poll failed and will be retried (optional)."""

    def retrying(self, error: BaseException, attempt: int) -> None:
        """A poll failed with a dropped connection or throttling; ``attempt`` counts in a row."""


# -- formatting -------------------------------------------------------------------------------


def format_seconds(seconds: float) -> str:
    """``42s``, ``3m07s`` or ``1h02m03s``."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _utc(moment: datetime) -> datetime:
    # botocore parses timestamps as aware datetimes; a naive one can only be UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _style(status: str) -> str:
    if status.endswith("_FAILED") or "ROLLBACK" in status:
        return "red"
    if status.endswith("_COMPLETE"):
        return "green"
    return "yellow"


def format_event(event: Mapping[str, Any], duration: float | None) -> Text:
    """One event as one line: ``09:21:22 AppSubnet1 AWS::EC2::Subnet CREATE_COMPLETE 12.3s: reason``.

    The time is the event's, in UTC (what CI logs use).
    """
    status = str(event.get("ResourceStatus", ""))
    line = Text()
    timestamp = event.get("Timestamp")
    if isinstance(timestamp, datetime):
        line.append(_utc(timestamp).strftime("%H:%M:%S "), style="dim")
    line.append(f"{event.get('LogicalResourceId', '')} ", style="bold")
    line.append(f"{event.get('ResourceType', '')} ")
    line.append(status, style=_style(status))
    if duration is not None:
        line.append(f" {duration:.1f}s")
    reason = event.get("ResourceStatusReason")
    if reason:
        line.append(f": {reason}", style="red" if status.endswith("_FAILED") else "")
    return line


def _is_stack_itself(event: Mapping[str, Any]) -> bool:
    return bool(event.get("LogicalResourceId")) and event.get("LogicalResourceId") == event.get("StackName")


# -- reporters --------------------------------------------------------------------------------


class PlainReporter:
    """One line per event, and a heartbeat line after ``heartbeat_seconds`` without one.

    For CI logs: nothing is redrawn, and the heartbeat keeps a log-silence timeout from killing a
    long but healthy deploy.
    """

    def __init__(self, console: Console, *, heartbeat_seconds: float = 60.0) -> None:
        self.console = console
        self.heartbeat_seconds = heartbeat_seconds
        self._quiet_since: float | None = None

    def event(self, event: Mapping[str, Any], duration: float | None) -> None:
        """Print the event as one line."""
        self.console.print(format_event(event, duration), soft_wrap=True)
        self._quiet_since = None

    def waiting(self, status: str, elapsed: float) -> None:
        """Print a heartbeat line when nothing was printed for ``heartbeat_seconds``."""
        if self._quiet_since is None:
            self._quiet_since = elapsed
        elif elapsed - self._quiet_since >= self.heartbeat_seconds:
            self.console.print(f"… still {status} after {format_seconds(elapsed)}", markup=False, highlight=False)
            self._quiet_since = elapsed

    def retrying(self, error: BaseException, attempt: int) -> None:
        """Say that a poll failed and will be retried."""
        self.console.print(
            f"… lost contact with CloudFormation ({error}); retrying (attempt {attempt})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    def close(self) -> None:
        """Nothing to tear down."""


class LiveReporter:
    """For a terminal: each event printed as a line above a live table of what is in progress now."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._running: dict[str, tuple[str, str, datetime]] = {}  # logical id → (type, status, started)
        self._status = "waiting for the first event"
        self._elapsed = 0.0
        self._notice = ""
        self._live: Live | None = None

    def _started(self) -> Live:
        if self._live is None:
            # Transient: when the watch ends only the event lines stay, as in a CI log.
            self._live = Live(
                console=self.console,
                get_renderable=self.render,
                refresh_per_second=4,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        return self._live

    def event(self, event: Mapping[str, Any], duration: float | None) -> None:
        """Print the event above the table and update what is in progress."""
        live = self._started()
        live.console.print(format_event(event, duration), soft_wrap=True)
        status = str(event.get("ResourceStatus", ""))
        logical_id = str(event.get("LogicalResourceId", ""))
        self._notice = ""
        if _is_stack_itself(event):
            self._status = status
        elif status.endswith("_IN_PROGRESS"):
            previous = self._running.get(logical_id)
            started = previous[2] if previous else _timestamp(event)
            self._running[logical_id] = (str(event.get("ResourceType", "")), status, started)
        else:
            self._running.pop(logical_id, None)
        live.refresh()

    def waiting(self, status: str, elapsed: float) -> None:
        """Update the table's title: the stack status and the time since the watch began."""
        self._status, self._elapsed, self._notice = status, elapsed, ""
        self._started().refresh()

    def retrying(self, error: BaseException, attempt: int) -> None:
        """Show that a poll failed and will be retried."""
        self._notice = f"lost contact with CloudFormation ({error}); retrying (attempt {attempt})"
        self._started().refresh()

    def render(self) -> RenderableType:
        """The live part: stack status, elapsed time and the resources in progress."""
        now = datetime.now(UTC)
        table = Table(title=f"{self._status} · {format_seconds(self._elapsed)}", title_justify="left", expand=False)
        # A type or status name is never split mid-word at 80 columns: the logical IDs fold instead.
        for column in ("in progress", "type", "status"):
            table.add_column(column, overflow="fold", no_wrap=column != "in progress")
        table.add_column("for", justify="right")
        room = max(self.console.height - 8, 3)
        running = sorted(self._running.items(), key=lambda item: item[1][2])
        for logical_id, (resource_type, status, started) in running[:room]:
            table.add_row(logical_id, resource_type, status, format_seconds(max((now - started).total_seconds(), 0)))
        if len(running) > room:
            table.add_row(f"… and {len(running) - room} more", "", "", "")
        if self._notice:
            return Group(table, Text(self._notice, style="yellow"))
        return table

    def close(self) -> None:
        """Remove the live table; the event lines stay."""
        if self._live is not None:
            self._live.stop()
            self._live = None


def make_reporter(console: Console, *, live: bool | None = None) -> Reporter:
    """A :class:`LiveReporter` on a terminal, else a :class:`PlainReporter`; ``live`` forces either."""
    if live is None:
        live = console.is_terminal and not console.is_dumb_terminal
    return LiveReporter(console) if live else PlainReporter(console)


# -- events -----------------------------------------------------------------------------------


def _timestamp(event: Mapping[str, Any]) -> datetime:
    return _utc(event["Timestamp"])


class AfterReview:
    """``since`` for the execution of a CREATE change set: every event after the stack's REVIEW_IN_PROGRESS.

    A CREATE change set makes the stack in REVIEW_IN_PROGRESS, and nothing else happens to it
    until the change set runs, so that event marks where the operation starts without asking
    for the events first.
    """

    def __repr__(self) -> str:
        return "AFTER_REVIEW"


AFTER_REVIEW = AfterReview()
Since = datetime | str | AfterReview


def _check_since(since: Since) -> None:
    if isinstance(since, datetime) and since.tzinfo is None:
        raise ValueError("since must be a timezone-aware datetime (e.g. datetime.now(UTC)) or an EventId")


def _newer_events(
    cloudformation: Any, stack_id: str, since: Since, seen: set[str] | frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """Events newer than ``since`` and not in ``seen``, oldest first; pages only as far back as needed."""
    newest_first: list[dict[str, Any]] = []
    since_time = _utc(since) if isinstance(since, datetime) else None
    token: str | None = None
    while True:
        request: dict[str, Any] = {"StackName": stack_id}
        if token:
            request["NextToken"] = token
        page = cloudformation.describe_stack_events(**request)
        for event in page.get("StackEvents", []):
            # Events come newest first: the first one already seen, or from before the operation,
            # means every later one is too.
            if event["EventId"] in seen or event["EventId"] == since:
                return newest_first[::-1]
            if since_time is not None and _timestamp(event) < since_time:
                return newest_first[::-1]
            if since is AFTER_REVIEW and _is_review(event, stack_id):
                return newest_first[::-1]
            newest_first.append(event)
        token = page.get("NextToken")
        if not token:
            return newest_first[::-1]


def _is_review(event: Mapping[str, Any], stack_id: str) -> bool:
    return event.get("ResourceStatus") == "REVIEW_IN_PROGRESS" and event.get("PhysicalResourceId") == stack_id


def stack_events_since(cloudformation: Any, stack_id: str, since: Since) -> list[dict[str, Any]]:
    """The stack's events after ``since``, oldest first.

    ``since`` is a timezone-aware datetime (events at or after it count) or the EventId of the
    last event before the operation (events after it count). The EventId is exact; a datetime
    taken on this machine is only as good as its clock's agreement with AWS's.
    """
    _check_since(since)
    return _newer_events(cloudformation, stack_id, since)


class _Durations:
    """Per-resource timing from event timestamps: each IN_PROGRESS → COMPLETE/FAILED span."""

    def __init__(self) -> None:
        self.first: dict[str, datetime] = {}
        self.open: dict[str, datetime] = {}
        self.totals: dict[str, float] = {}

    def observe(self, event: Mapping[str, Any]) -> float | None:
        """Record the event; the seconds of the span it closes, if it closes one."""
        logical_id = str(event.get("LogicalResourceId", ""))
        status = str(event.get("ResourceStatus", ""))
        moment = _timestamp(event)
        # REVIEW_IN_PROGRESS is a change set waiting to be executed, not work on the stack.
        if status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
            self.open.setdefault(logical_id, moment)
            self.first.setdefault(logical_id, moment)
            return None
        started = self.open.pop(logical_id, None)
        if started is None:
            return None  # e.g. DELETE_SKIPPED, or a span that began before the operation
        self.totals[logical_id] = (moment - self.first[logical_id]).total_seconds()
        return (moment - started).total_seconds()


# -- root cause -------------------------------------------------------------------------------


def _is_cascade(reason: str) -> bool:
    return reason.startswith(CASCADE_REASONS)


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _is_gone(error: Exception) -> bool:
    return isinstance(error, ClientError) and _error_code(error) == "ValidationError" and "does not exist" in str(error)


def _candidates(events: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    # Sorted by time (stably): callers may hand over events in the API's newest-first order.
    for event in sorted(events, key=_timestamp):
        status = str(event.get("ResourceStatus", ""))
        if not (status.endswith("_FAILED") or (status in _ROLLBACK_STARTED and _is_stack_itself(event))):
            continue
        if not _is_cascade(str(event.get("ResourceStatusReason", ""))):
            yield event


def root_cause(cloudformation: Any, stack_id: str, events: Sequence[Mapping[str, Any]]) -> Failure | None:
    """The first failure of the operation whose ``events`` are given, nested stacks included.

    The first (oldest) ``*_FAILED`` event whose reason is not a cascade ("Resource creation
    cancelled", "The following resource(s) failed to create: …"); failing that, the reason a
    rollback started (e.g. an export still in use). When the failed resource is a nested stack,
    the nested stack's own root cause in the same operation is returned instead, at any depth;
    if it cannot be read, the nested-stack resource's failure is.
    """
    event = next(_candidates(events), None)
    if event is None:
        return None
    failure = Failure(
        logical_id=str(event.get("LogicalResourceId", "")),
        resource_type=str(event.get("ResourceType", "")),
        status=str(event.get("ResourceStatus", "")),
        reason=str(event.get("ResourceStatusReason", "")),
        stack_name=str(event.get("StackName", stack_id)),
    )
    nested_id = str(event.get("PhysicalResourceId") or "")
    if failure.resource_type != _NESTED_STACK or _is_stack_itself(event) or not nested_id.startswith("arn:"):
        return failure
    # The operation began at the parent's oldest event: older nested events belong to earlier ones.
    began = min(_timestamp(e) for e in events)
    try:
        nested_events = _newer_events(cloudformation, nested_id, began)
    except Exception as error:
        # The parent's failure still names the nested stack: an honest answer when its own
        # events cannot be read.
        if _is_gone(error) or is_transient(error):
            return failure
        raise
    return root_cause(cloudformation, nested_id, nested_events) or failure


# -- the watch loop ---------------------------------------------------------------------------


def _describe_stack(cloudformation: Any, stack_id: str) -> dict[str, Any]:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_id)["Stacks"]
    except ClientError as error:
        # By ARN AWS still answers DELETE_COMPLETE for a deleted stack; some endpoints forget it.
        if _is_gone(error):
            return {"StackId": stack_id, "StackStatus": "DELETE_COMPLETE"}
        raise
    return dict(stacks[0])


def watch(
    cloudformation: Any,
    stack_id: str,
    *,
    since: Since,
    success: frozenset[str],
    reporter: Reporter,
    poll: PollSettings = PollSettings(),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
) -> Outcome:
    """Report the stack's new events until its status is final, then say how the operation ended.

    ``stack_id`` is the stack's ARN, never its name, so a deleted and recreated stack of the same
    name cannot be mistaken for it. ``since`` is when the operation started (a timezone-aware
    datetime), the EventId of the last event before it, or :data:`AFTER_REVIEW` for the execution of
    a CREATE change set; only newer events are reported, oldest
    first. ``success`` is the status the operation wants (``{"CREATE_COMPLETE"}``...). Polls every
    ``min_seconds``..``max_seconds`` (random, so parallel deploys do not poll in step) and returns
    as soon as the status is final, without sleeping again. A dropped connection or throttling
    that outlived botocore's retries is retried with backoff until the timeout; past it,
    :class:`WatchTimeout`. KeyboardInterrupt is not caught: the caller says how to resume.
    """
    _check_since(since)
    rng = rng or random.Random()  # noqa: S311  (jitter, not cryptography)
    started = clock()
    deadline = started + poll.timeout_seconds
    seen: set[str] = set()
    events: list[dict[str, Any]] = []
    durations = _Durations()
    status = "UNKNOWN"
    failures_in_a_row = 0
    while True:
        try:
            # Status first, events second: once the status is final, the events read after it
            # include the stack's own final event.
            stack = _describe_stack(cloudformation, stack_id)
            status = str(stack["StackStatus"])
            try:
                new = _newer_events(cloudformation, stack_id, since, seen)
            except ClientError as error:
                if not (status == "DELETE_COMPLETE" and _is_gone(error)):
                    raise
                new = []
        except Exception as error:
            if not is_transient(error):
                raise
            failures_in_a_row += 1
            if isinstance(reporter, NoticesRetries):
                reporter.retrying(error, failures_in_a_row)
            now = clock()
            if now >= deadline:
                raise WatchTimeout(stack_id, status, now - started, events) from error
            jitter = rng.uniform(poll.min_seconds, poll.max_seconds)
            sleep(min(jitter * 2 ** (failures_in_a_row - 1), _MAX_BACKOFF_SECONDS, deadline - now))
            continue
        failures_in_a_row = 0
        for event in new:
            seen.add(event["EventId"])
            events.append(event)
            reporter.event(event, durations.observe(event))
        if not status.endswith("_IN_PROGRESS"):
            ok = status in TERMINAL_OK and status in success
            return Outcome(
                stack_id=stack_id,
                status=status,
                ok=ok,
                root_cause=None if ok else root_cause(cloudformation, stack_id, events),
                durations=dict(durations.totals),
                events_seen=len(events),
                stack=stack,
            )
        now = clock()
        if now >= deadline:
            raise WatchTimeout(stack_id, status, now - started, events)
        if not new:
            reporter.waiting(status, now - started)
        # Never past the deadline: the last poll happens at it, so a stack finishing just in time counts.
        sleep(min(rng.uniform(poll.min_seconds, poll.max_seconds), deadline - now))
