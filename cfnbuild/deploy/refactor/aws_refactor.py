"""The stack refactor on AWS: create it, wait for its validation, list its actions, execute it, wait.

The four calls of CloudFormation stack refactoring (API reference:
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStackRefactor.html,
``API_DescribeStackRefactor``, ``API_ListStackRefactorActions``, ``API_ExecuteStackRefactor``):
CreateStackRefactor takes the stacks' templates (``StackDefinitions``: ``TemplateBody``, or a
``TemplateURL`` past the 51,200 bytes a body may have), the explicit ``ResourceMappings`` and
``EnableStackCreation`` for stacks that do not exist yet; it validates asynchronously — ``Status``
CREATE_IN_PROGRESS → CREATE_COMPLETE or CREATE_FAILED with ``StatusReason`` —, then
ExecuteStackRefactor moves the resources — ``ExecutionStatus`` AVAILABLE → EXECUTE_IN_PROGRESS →
EXECUTE_COMPLETE, or EXECUTE_FAILED / ROLLBACK_IN_PROGRESS → ROLLBACK_COMPLETE / ROLLBACK_FAILED
with ``ExecutionStatusReason``. Waiting is our own loop with backoff (the botocore waiters are not
in every botocore, and they show nothing).

The operations arrived in botocore 1.36.15 (boto3 1.36.15): an older one cannot make the calls,
and :func:`require_api` says so in one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import botocore
from botocore.exceptions import ClientError
from rich.console import Console

from cfnbuild.deploy.aws import error_code, error_message
from cfnbuild.deploy.model import Interrupted, Refused
from cfnbuild.errors import CfnbuildError, UsageError

FIRST_BOTO3 = "1.36.15"  # the first boto3/botocore with CreateStackRefactor (botocore's changelog)
OPERATIONS = (
    "CreateStackRefactor",
    "DescribeStackRefactor",
    "ListStackRefactorActions",
    "ExecuteStackRefactor",
    "ListStackRefactors",
)
CREATE_DONE = frozenset({"CREATE_COMPLETE", "CREATE_FAILED", "DELETE_COMPLETE", "DELETE_FAILED"})
# A refactor a later run waits for whatever it sent, and one it executes when it would send the same.
EXECUTING = frozenset({"EXECUTE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS"})
VALIDATED = frozenset({"UNAVAILABLE", "AVAILABLE"})
EXECUTE_DONE = frozenset({"EXECUTE_COMPLETE", "EXECUTE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "OBSOLETE"})


class RefactorFailed(CfnbuildError):
    """CloudFormation refused or rolled back the refactor; the line says the state and the next step."""


@dataclass(frozen=True)
class Waiting:
    """How long and how often to poll: the first delay, its growth, its cap and the limits."""

    first: float = 2.0
    factor: float = 1.5
    longest: float = 20.0
    validation_timeout: float = 15 * 60
    execution_timeout: float = 60 * 60


def has_api(client: Any) -> bool:
    """Whether the installed botocore has the stack refactoring operations."""
    return set(OPERATIONS) <= set(client.meta.service_model.operation_names)


def require_api(client: Any) -> None:
    """Refuse in one line when the installed botocore has no stack refactoring operations."""
    names = set(client.meta.service_model.operation_names)
    missing = [name for name in OPERATIONS if name not in names]
    if missing:
        raise UsageError(
            f"this botocore ({botocore.__version__}) has no CloudFormation {', '.join(missing)}: stack refactoring "
            f"needs boto3 and botocore {FIRST_BOTO3} or later; install them where cfnbuild runs "
            f"(pip install 'boto3>={FIRST_BOTO3}'), in a virtualenv of its own if another tool pins an older boto3"
        )


@dataclass
class RefactorCalls:
    """The refactor's calls on one CloudFormation client, with progress on ``err``."""

    client: Any
    err: Console
    waiting: Waiting = field(default_factory=Waiting)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    command: str = "cfnbuild refactor"  # the command that picks a refactor up again

    def summaries(self, prefix: str) -> list[dict[str, Any]]:
        """Every refactor ListStackRefactors lists whose Description starts with ``prefix``, oldest first."""
        found: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {}
        while True:
            page = self.client.list_stack_refactors(**arguments)
            found += [
                s for s in page.get("StackRefactorSummaries", []) if str(s.get("Description", "")).startswith(prefix)
            ]
            if not page.get("NextToken"):
                return found
            arguments["NextToken"] = page["NextToken"]

    def create(
        self,
        description: str,
        definitions: Sequence[Mapping[str, str]],
        mappings: Sequence[Mapping[str, Any]],
        *,
        new_stacks: bool,
    ) -> str:
        """CreateStackRefactor; its id."""
        answer = self.client.create_stack_refactor(
            Description=description,
            EnableStackCreation=new_stacks,
            ResourceMappings=list(mappings),
            StackDefinitions=list(definitions),
        )
        return str(answer["StackRefactorId"])

    def wait(self, refactor_id: str, *, execution: bool) -> dict[str, Any]:
        """Poll DescribeStackRefactor with backoff until validation (or execution) ends; the last answer."""
        key, done = ("ExecutionStatus", EXECUTE_DONE) if execution else ("Status", CREATE_DONE)
        limit = self.waiting.execution_timeout if execution else self.waiting.validation_timeout
        what = "executing" if execution else "validating"
        started, delay = self.clock(), self.waiting.first
        try:
            with self.err.status(f"stack refactor {refactor_id}: {what}…") as status:
                while True:
                    answer: dict[str, Any] = self.client.describe_stack_refactor(StackRefactorId=refactor_id)
                    state = str(answer.get(key, ""))
                    if state in done:
                        return answer
                    elapsed = self.clock() - started
                    if elapsed >= limit:
                        raise RefactorFailed(
                            f"stack refactor {refactor_id} is still {state} after {int(elapsed)}s of {what}; it goes "
                            f"on in AWS: run '{self.command}' again later to pick it up"
                        )
                    status.update(f"stack refactor {refactor_id}: {state} ({int(elapsed)}s)")
                    self.sleep(delay)
                    delay = min(delay * self.waiting.factor, self.waiting.longest)
        except KeyboardInterrupt:
            raise Interrupted(
                f"stopped watching; stack refactor {refactor_id} goes on in AWS; run '{self.command}' again to "
                "pick it up where it is"
            ) from None

    def actions(self, refactor_id: str) -> list[dict[str, Any]]:
        """Every action ListStackRefactorActions lists."""
        found: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {"StackRefactorId": refactor_id}
        while True:
            page = self.client.list_stack_refactor_actions(**arguments)
            found += page.get("StackRefactorActions", [])
            if not page.get("NextToken"):
                return found
            arguments["NextToken"] = page["NextToken"]

    def execute(self, refactor_id: str) -> None:
        """ExecuteStackRefactor."""
        self.client.execute_stack_refactor(StackRefactorId=refactor_id)


def validation_failed(answer: Mapping[str, Any], stacks: Sequence[str]) -> RefactorFailed:
    """The line for a refactor CloudFormation would not validate: nothing was moved."""
    reason = str(answer.get("StatusReason") or "no reason given")
    return RefactorFailed(
        f"CloudFormation refused stack refactor {answer.get('StackRefactorId')} of {', '.join(stacks)} "
        f"({answer.get('Status')}): {reason}; nothing was moved. Change the templates so the split only moves "
        "resources (no new, removed or changed ones, no new parameters or conditions), build, and run again"
    )


def execution_failed(answer: Mapping[str, Any], states: Mapping[str, str], command: str) -> RefactorFailed:
    """The line for an execution that failed or rolled back: where the stacks are, what to run next."""
    status = str(answer.get("ExecutionStatus"))
    reason = str(answer.get("ExecutionStatusReason") or "no reason given")
    where = ", ".join(f"{name} {state}" for name, state in states.items())
    if status == "ROLLBACK_COMPLETE":
        after = f"it was rolled back, every resource is where it was ({where}); fix the cause and run '{command}' again"
    else:
        after = (
            f"the stacks may be partly moved ({where}); see the refactor in the CloudFormation console, then run "
            f"'{command}' again: it reads the stacks afresh and moves what is left"
        )
    return RefactorFailed(f"stack refactor {answer.get('StackRefactorId')} ended {status}: {reason}; {after}")


def not_confirmed(refactor_id: str) -> Refused:
    """The line for a plan the user did not confirm."""
    return Refused(
        f"not confirmed; nothing was moved (stack refactor {refactor_id} is validated and left unexecuted; a later "
        "run picks it up)"
    )


def read_status(client: Any, name: str) -> str | None:
    """The stack's status, or None when there is none."""
    try:
        return str(client.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"])
    except ClientError as exc:
        if error_code(exc) == "ValidationError" and "does not exist" in error_message(exc):
            return None
        raise
