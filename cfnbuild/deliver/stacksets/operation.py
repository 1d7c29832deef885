"""StackSets operations: each step's call, the watch on its operation, the per-instance results.

:class:`StackSetDelivery` reads the stack set and its instances, plans (:mod:`.plan`), renders
the plan (:mod:`.render`), confirms, makes each step's call with its own ``OperationId`` (the
idempotency token) and polls the operation with a jittered loop until it ends, printing each
instance's result as it comes; the end is a table of every named instance, and an operation that
ended FAILED or STOPPED is an error naming each failed instance and its reason. A watch that
outlives the poll timeout raises :class:`OperationTimeout` (the operation goes on in AWS).

AWS reference: CreateStackSet, UpdateStackSet, CreateStackInstances, UpdateStackInstances,
DescribeStackSetOperation, ListStackSetOperationResults, ListStackInstances -
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackSetOperation.html
"""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from rich.table import Table

from cfnbuild.deliver.stacksets.options import Delivery, Pair
from cfnbuild.deliver.stacksets.plan import DeployedStackSet, Instance, StackSetPlan, Step, build_plan
from cfnbuild.deliver.stacksets.render import render_plan
from cfnbuild.deploy.aws import error_code, error_message, is_transient
from cfnbuild.deploy.engine import DeployFailed, Engine, Prepared, Refused, Request
from cfnbuild.deploy.events import format_seconds
from cfnbuild.deploy.staging import template_argument
from cfnbuild.errors import CfnbuildError

OPERATION_GOING = frozenset({"RUNNING", "QUEUED", "STOPPING"})
HEARTBEAT_SECONDS = 60.0
_MAX_BACKOFF_SECONDS = 60.0


class OperationTimeout(CfnbuildError):
    """A stack set operation was still going when the watch gave up; AWS carries on with it."""


@dataclass(frozen=True)
class InstanceResult:
    """One instance's result in an operation, from ListStackSetOperationResults."""

    account: str
    region: str
    status: str  # PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED
    reason: str


@dataclass(frozen=True)
class OperationOutcome:
    """How one operation ended."""

    step: Step
    operation_id: str
    status: str  # SUCCEEDED, FAILED, STOPPED
    reason: str
    results: list[InstanceResult]

    @property
    def ok(self) -> bool:
        """The operation succeeded (instances may still have failed within the tolerance)."""
        return self.status == "SUCCEEDED"

    @property
    def failed(self) -> list[InstanceResult]:
        """The instances whose part of the operation failed."""
        return [result for result in self.results if result.status == "FAILED"]


def _pages(cloudformation: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    return [item for page in cloudformation.get_paginator(operation).paginate(**kwargs) for item in page[key]]


@dataclass
class StackSetDelivery:
    """Plans and delivers one project stack as a stack set, through an :class:`Engine`'s target.

    The engine supplies the administrator account's clients, the template (read and checked by
    :meth:`Engine.prepare`), the poll settings, the sleep and the confirmation prompt.
    """

    engine: Engine
    request: Request
    delivery: Delivery
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)  # jitter, not cryptography
    _deployed: DeployedStackSet | None = field(default=None, init=False, repr=False)

    @property
    def cloudformation(self) -> Any:
        """The administrator region's CloudFormation client."""
        return self.engine.cloudformation

    @property
    def name(self) -> str:
        """The stack set's name: the stack's deployed name, ``<stack>-<env>[-<suffix>]``."""
        return self.engine.stack_name(self.request)

    # ----------------------------------------------------------------- reading state
    def describe(self) -> DeployedStackSet | None:
        """The stack set as deployed, or ``None``."""
        try:
            answer = self.cloudformation.describe_stack_set(StackSetName=self.name)
        except ClientError as exc:
            if error_code(exc) == "StackSetNotFoundException":
                return None
            raise
        deployed = DeployedStackSet.from_api(answer["StackSet"])
        return deployed if deployed.status != "DELETED" else None

    def instances(self) -> list[Instance]:
        """Every instance of the stack set."""
        summaries = _pages(self.cloudformation, "list_stack_instances", "Summaries", StackSetName=self.name)
        return [Instance.from_api(summary) for summary in summaries]

    def busy(self) -> str | None:
        """The operation the stack set is running now, if any, in words."""
        page = self.cloudformation.list_stack_set_operations(StackSetName=self.name)
        for operation in page.get("Summaries", []):
            if operation.get("Status") in OPERATION_GOING:
                return f"operation {operation['OperationId']} ({operation.get('Action', '?')}) is {operation['Status']}"
        return None

    # ----------------------------------------------------------------- plan
    def plan(self) -> tuple[StackSetPlan, Prepared]:
        """Read what is deployed and the template build wrote; say what a deploy would do."""
        account = self.engine.aws.account_id()
        deployed = self._deployed = self.describe()
        instances = self.instances() if deployed else []
        prepared = self.engine.prepare(self.request, deployed.as_stack() if deployed else None)
        plan = build_plan(
            name=self.name,
            region=self.engine.aws.target.region,
            account=account,
            delivery=self.delivery,
            deployed=deployed,
            instances=instances,
            prepared=prepared,
            busy=self.busy() if deployed else None,
        )
        return plan, prepared

    # ----------------------------------------------------------------- deploy
    def deploy(self) -> list[OperationOutcome]:
        """Plan, confirm, run each step and watch its operation; raise when one ends FAILED or STOPPED."""
        plan, prepared = self.plan()
        render_plan(plan, self.engine.out)
        if plan.refusal:
            raise Refused(f"{plan.refusal}; nothing was changed")
        if not plan.has_changes:
            self.engine.out.print(f"{self.name}: no changes; no operation started", markup=False, soft_wrap=True)
            return []
        if plan.busy:
            raise Refused(f"{self.name} is busy: {plan.busy}; wait for it to end, then deploy again")
        self._confirm()
        outcomes: list[OperationOutcome] = []
        done = 0
        try:
            for step in plan.steps:
                operation_id = self._start(step, prepared)
                done += 1
                if operation_id is None:
                    continue
                outcome = self.wait(step, operation_id)
                outcomes.append(outcome)
                if not outcome.ok:
                    break
        except KeyboardInterrupt:
            raise self.engine.interrupted(
                f"the operation on {self.name}",
                f"aws cloudformation list-stack-set-operations --stack-set-name {self.name}",
            ) from None
        self.report(outcomes)
        self._judge(outcomes, plan.steps[done:])
        return outcomes

    def _confirm(self) -> None:
        if self.request.yes:
            return
        if self.engine.confirm is None:
            raise Refused("not a terminal, so nobody can confirm; review the plan and pass --yes")
        if self.engine.confirm("Deliver this stack set? Type 'yes' to go on").strip().lower() not in ("y", "yes"):
            raise Refused("not confirmed; nothing was changed")

    def _template_argument(self, prepared: Prepared) -> dict[str, str]:
        return template_argument(
            self.engine.aws, prepared.body, lambda line: self.engine.err.print(line, markup=False, soft_wrap=True)
        )

    def _definition(self, prepared: Prepared) -> dict[str, Any]:
        parameters: list[dict[str, Any]] = [
            {"ParameterKey": k, "ParameterValue": v} for k, v in sorted(prepared.parameters.items())
        ]
        parameters += [{"ParameterKey": k, "UsePreviousValue": True} for k in sorted(prepared.previous)]
        definition: dict[str, Any] = {
            "StackSetName": self.name,
            **self._template_argument(prepared),
            "Parameters": parameters,
            "Capabilities": list(prepared.capabilities),
            "Tags": [{"Key": k, "Value": v} for k, v in sorted(prepared.tags.items())],
        }
        description = prepared.template.get("Description")
        if isinstance(description, str) and description:
            definition["Description"] = description[:1024]
        return definition

    def _roles(self, deployed: DeployedStackSet | None) -> dict[str, str]:
        # UpdateStackSet wants a customised administration role named again on every update.
        roles = {
            "AdministrationRoleARN": self.delivery.administration_role_arn
            or (deployed.administration_role_arn if deployed else ""),
            "ExecutionRoleName": self.delivery.execution_role_name
            or (deployed.execution_role_name if deployed else ""),
        }
        return {key: value for key, value in roles.items() if value}

    def _start(self, step: Step, prepared: Prepared) -> str | None:
        """Make the call for ``step``; the operation's id (None for CreateStackSet, which has none)."""
        token = f"cfnbuild-{uuid.uuid4()}"
        targets = {"Accounts": list(step.accounts), "Regions": list(step.regions)} if step.accounts else {}
        preferences = {"OperationPreferences": self.delivery.preferences.to_api(step.regions)}
        if step.api == "CreateStackSet":
            self._call(
                step,
                **self._definition(prepared),
                **self._roles(None),
                PermissionModel="SELF_MANAGED",
                ClientRequestToken=token,
            )
            self.engine.out.print(f"{self.name}: stack set created", markup=False, soft_wrap=True)
            return None
        if step.api == "UpdateStackSet":
            answer = self._call(
                step,
                **self._definition(prepared),
                **self._roles(self._deployed),
                **targets,
                **preferences,
                OperationId=token,
            )
        else:
            answer = self._call(step, StackSetName=self.name, **targets, **preferences, OperationId=token)
        # The answer's id, not the token: an endpoint may ignore the one asked for (the emulator does).
        return str(answer.get("OperationId") or token)

    def _call(self, step: Step, **kwargs: Any) -> dict[str, Any]:
        method = getattr(self.cloudformation, re.sub(r"(?<!^)(?=[A-Z])", "_", step.api).lower())
        try:
            answer: dict[str, Any] = method(**kwargs)
        except ClientError as exc:
            if error_code(exc) == "OperationInProgressException":
                raise Refused(
                    f"{self.name} is busy with another operation ({error_message(exc)}); wait for it to end, "
                    "then deploy again"
                ) from None
            raise DeployFailed(f"{step} on {self.name} failed: {error_code(exc)}: {error_message(exc)}") from None
        return answer

    def operation_results(self, operation_id: str) -> list[InstanceResult]:
        """The per-instance results of an operation so far."""
        summaries = _pages(
            self.cloudformation,
            "list_stack_set_operation_results",
            "Summaries",
            StackSetName=self.name,
            OperationId=operation_id,
        )
        return [
            InstanceResult(
                str(s.get("Account", "")), str(s.get("Region", "")), str(s["Status"]), str(s.get("StatusReason", ""))
            )
            for s in summaries
        ]

    def wait(self, step: Step, operation_id: str) -> OperationOutcome:
        """Poll the operation every ``min_seconds``..``max_seconds`` (random) until it ends, printing progress.

        Each instance's result is printed when it changes; the operation's status when it changes,
        and a heartbeat after a quiet minute (CI logs). Dropped connections and throttling that
        outlived botocore's retries are retried with backoff until the timeout, past which
        :class:`OperationTimeout` (the operation goes on in AWS).
        """
        poll, sleep, out = self.engine.poll, self.engine.sleep, self.engine.out
        started = self.clock()
        deadline = started + poll.timeout_seconds
        seen: dict[Pair, str] = {}
        status, quiet_since, failures = "", started, 0
        out.print(f"{step}: operation {operation_id}", markup=False, soft_wrap=True)
        while True:
            try:
                operation = self.cloudformation.describe_stack_set_operation(
                    StackSetName=self.name, OperationId=operation_id
                )["StackSetOperation"]
                results = self.operation_results(operation_id)
            except Exception as error:
                if not is_transient(error):
                    raise
                failures += 1
                out.print(
                    f"… lost contact with CloudFormation ({error}); retrying (attempt {failures})",
                    markup=False,
                    soft_wrap=True,
                )
                now = self.clock()
                if now >= deadline:
                    raise self._timeout(operation_id, status or "UNKNOWN", now - started) from error
                backoff = self.rng.uniform(poll.min_seconds, poll.max_seconds) * 2 ** (failures - 1)
                sleep(min(backoff, _MAX_BACKOFF_SECONDS, deadline - now))
                continue
            failures = 0
            now = self.clock()
            for result in results:
                if seen.get((result.account, result.region)) != result.status:
                    seen[(result.account, result.region)] = result.status
                    reason = f": {result.reason}" if result.reason and result.status == "FAILED" else ""
                    out.print(
                        f"  {result.account} {result.region} {result.status}{reason}", markup=False, soft_wrap=True
                    )
                    quiet_since = now
            if operation["Status"] != status:
                status = str(operation["Status"])
                out.print(
                    f"operation {operation_id}: {status} after {format_seconds(now - started)}",
                    markup=False,
                    soft_wrap=True,
                )
                quiet_since = now
            elif now - quiet_since >= HEARTBEAT_SECONDS:
                out.print(f"… still {status} after {format_seconds(now - started)}", markup=False, soft_wrap=True)
                quiet_since = now
            if status not in OPERATION_GOING:
                return OperationOutcome(step, operation_id, status, str(operation.get("StatusReason", "")), results)
            if now >= deadline:
                raise self._timeout(operation_id, status, now - started)
            sleep(min(self.rng.uniform(poll.min_seconds, poll.max_seconds), deadline - now))

    def _timeout(self, operation_id: str, status: str, seconds: float) -> OperationTimeout:
        return OperationTimeout(
            f"{self.name}: operation {operation_id} is still {status} after {format_seconds(seconds)}; CloudFormation "
            f"carries on with it. Check it with: aws cloudformation describe-stack-set-operation --stack-set-name "
            f"{self.name} --operation-id {operation_id}"
        )

    # ----------------------------------------------------------------- the end
    def report(self, outcomes: Sequence[OperationOutcome]) -> None:
        """One row per named instance (and any other an operation touched): its last result and status."""
        latest: dict[Pair, InstanceResult] = {}
        for outcome in outcomes:
            for result in outcome.results:
                latest[(result.account, result.region)] = result
        instances = {(i.account, i.region): i for i in self.instances()}
        pairs = self.delivery.pairs + [pair for pair in latest if pair not in set(self.delivery.pairs)]
        table = Table(title=f"instances of {self.name}", title_justify="left")
        table.add_column("account", no_wrap=True)
        table.add_column("region", no_wrap=True)
        table.add_column("operation", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("status reason", overflow="fold")
        for pair in pairs:
            found, instance = latest.get(pair), instances.get(pair)
            reason = (found.reason if found and found.reason else "") or (instance.reason if instance else "")
            table.add_row(
                *pair,
                found.status if found else "-",
                instance.state if instance else "not created",
                reason,
            )
        self.engine.out.print(table)

    def _judge(self, outcomes: Sequence[OperationOutcome], not_started: Sequence[Step]) -> None:
        for outcome in outcomes:
            failed = "; ".join(f"{r.account} {r.region}: {r.reason or 'no reason given'}" for r in outcome.failed)
            if outcome.ok:
                if failed:
                    self.engine.err.print(
                        f"warning: {outcome.step.api} failed within the failure tolerance "
                        f"({self.delivery.preferences.tolerance()}) in {failed}; the instance(s) stay OUTDATED and "
                        "the next deploy updates them again",
                        markup=False,
                        soft_wrap=True,
                    )
                continue
            why = f" ({outcome.reason})" if outcome.reason else ""
            what = (
                f"failed beyond the failure tolerance ({self.delivery.preferences.tolerance()}) in {failed}"
                if failed
                else "no instance result says why"
            )
            cancelled = [f"{r.account} {r.region}" for r in outcome.results if r.status == "CANCELLED"]
            skipped = f"; not attempted: {', '.join(cancelled)}" if cancelled else ""
            later = f"; not started: {'; '.join(str(step) for step in not_started)}" if not_started else ""
            raise DeployFailed(
                f"{self.name}: {outcome.step.api} operation {outcome.operation_id} ended {outcome.status}{why}: "
                f"{what}{skipped}{later}"
            )
