"""StackSets delivery: one template, built and linted once, to many accounts and regions.

``cfnbuild stackset plan`` says what a delivery would do; ``cfnbuild stackset deploy`` does it:

* the template is the one ``build`` wrote (refused when missing or stale, like ``deploy``), its
  parameters resolved as ``deploy`` resolves them (config ``[deploy] parameters``, ``--param``,
  deploy-time lookups) and its tags the standard ones; over 51,200 bytes it goes through the
  staging bucket;
* a stack set that does not exist is created (``CreateStackSet``, SELF_MANAGED permissions,
  AWS's administration and execution roles unless others are named); one whose template,
  parameters, tags or roles differ is updated (``UpdateStackSet``) for the named instances that
  exist; named instances that do not exist are created (``CreateStackInstances``); named
  instances left OUTDATED by an earlier operation are updated again (``UpdateStackInstances``);
* instances that exist but were not named are left as they are: nothing is ever deleted
  implicitly. A template change cannot reach only some instances, though: AWS marks every
  instance OUTDATED before it updates the named ones, and the plan says so;
* every operation carries its own ``OperationId`` (the idempotency token), is watched with our
  own jittered poll loop until it ends, and its per-instance results are printed as they come;
  the end is a table of every named instance. An operation that ends FAILED (failures beyond the
  tolerance) or STOPPED is an error naming each failed instance and its reason.

Self-managed accounts x regions are a grid; the API takes an account list and a region list and
acts on every pair of the two, so the pairs to create or update are cut into exact rectangles
(accounts that need the same regions) and sent as one operation each, one after another
(a stack set runs one operation at a time).

AWS reference: CreateStackSet, UpdateStackSet, CreateStackInstances, UpdateStackInstances,
DescribeStackSetOperation, ListStackSetOperationResults, ListStackInstances and
StackSetOperationPreferences -
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackSetOperationPreferences.html

Emulator (moto 5.2) limits: every operation ends SUCCEEDED at once (no RUNNING, FAILED or
STOPPED operation, no failed instance, so no failure tolerance to exceed), an operation's results
carry the operation's status, ``OperationId`` on CreateStackInstances is ignored (the answer's id
is the one to follow, as here), and instance stacks are not updated by an update. It names each
instance's stack ``StackSet:<name>``, which no real stack can be called; :mod:`cfnbuild.local.emulator`
corrects that.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import click
from botocore.exceptions import ClientError
from rich.console import Console
from rich.table import Table

from cfnbuild.cli.targets import Where, engine_for, target_options
from cfnbuild.deploy.aws import error_code, error_message, is_transient
from cfnbuild.deploy.engine import DeployedStack, DeployFailed, Engine, Prepared, Refused, Request
from cfnbuild.deploy.events import format_seconds
from cfnbuild.deploy.lookups import recorded_lookups
from cfnbuild.deploy.staging import INLINE_TEMPLATE_LIMIT, TEMPLATES, StagingBucket
from cfnbuild.errors import CfnbuildError, UsageError
from cfnbuild.regions import region_problem

Pair = tuple[str, str]  # (account, region)
Api = Literal["CreateStackSet", "UpdateStackSet", "UpdateStackInstances", "CreateStackInstances"]
RegionOrder = Literal["parallel", "sequential"]

EXIT_NO_CHANGES, EXIT_CHANGES = 0, 2
DEFAULT_ADMINISTRATION_ROLE = "AWSCloudFormationStackSetAdministrationRole"  # in the administrator account
DEFAULT_EXECUTION_ROLE = "AWSCloudFormationStackSetExecutionRole"  # in each target account
OPERATION_GOING = frozenset({"RUNNING", "QUEUED", "STOPPING"})
HEARTBEAT_SECONDS = 60.0
_MAX_BACKOFF_SECONDS = 60.0
_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$")
_ROLE_NAME = re.compile(r"^[a-zA-Z_0-9+=,.@-]{1,64}$")
_MASK = "****"


class OperationTimeout(CfnbuildError):
    """A stack set operation was still going when the watch gave up; AWS carries on with it."""


# -- what the user asked for -----------------------------------------------------------------


@dataclass(frozen=True)
class Preferences:
    """How CloudFormation runs each operation: concurrency, failure tolerance and region order.

    Unset values are not sent, so AWS's defaults apply (1 account at a time, 0 failures).
    """

    max_concurrent_count: int | None = None
    max_concurrent_percent: int | None = None
    failure_tolerance_count: int | None = None
    failure_tolerance_percent: int | None = None
    region_order: RegionOrder = "sequential"

    def to_api(self, regions: Sequence[str]) -> dict[str, Any]:
        """``OperationPreferences`` for an operation over ``regions`` (in the order given)."""
        preferences: dict[str, Any] = {"RegionConcurrencyType": self.region_order.upper()}
        if self.region_order == "sequential" and regions:
            preferences["RegionOrder"] = list(regions)
        for key, value in (
            ("MaxConcurrentCount", self.max_concurrent_count),
            ("MaxConcurrentPercentage", self.max_concurrent_percent),
            ("FailureToleranceCount", self.failure_tolerance_count),
            ("FailureTolerancePercentage", self.failure_tolerance_percent),
        ):
            if value is not None:
                preferences[key] = value
        return preferences

    def describe(self) -> str:
        """One line for the plan: ``up to 1 account at a time, 0 failure(s) tolerated per region…``."""
        if self.max_concurrent_percent is not None:
            concurrency = f"up to {self.max_concurrent_percent}% of the accounts at a time"
        else:
            concurrency = f"up to {self.max_concurrent_count or 1} account(s) at a time"
        return f"{concurrency}, {self.tolerance()} per region, regions {self.region_order}"

    def tolerance(self) -> str:
        """The failure tolerance in words."""
        if self.failure_tolerance_percent is not None:
            return f"{self.failure_tolerance_percent}% of the accounts may fail"
        return f"{self.failure_tolerance_count or 0} failure(s) tolerated"


@dataclass(frozen=True)
class Delivery:
    """Where the stack set's instances go, and how the operations run."""

    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    preferences: Preferences = Preferences()
    administration_role_arn: str | None = None  # None: the stack set's, or AWS's default
    execution_role_name: str | None = None

    @property
    def pairs(self) -> list[Pair]:
        """Every named account x region, accounts first, in the order given."""
        return [(account, region) for account in self.accounts for region in self.regions]


def _split(value: str | None) -> list[str]:
    items = [item.strip() for item in (value or "").split(",")]
    return list(dict.fromkeys(item for item in items if item))  # in order, each once


def _number(option: str, value: str | None, low: int, high: int | None, problems: list[str]) -> int | None:
    if value is None:
        return None
    span = f"{low} to {high}" if high is not None else f"{low} or more"
    try:
        number = int(value)
    except ValueError:
        problems.append(f"{option} {value}: not a whole number; give {span}")
        return None
    if number < low or (high is not None and number > high):
        problems.append(f"{option} {value}: out of range; give {span}")
        return None
    return number


def _region_problem(option: str, region: str) -> str | None:
    problem = region_problem(region)
    return f"{option} {region}: {problem}" if problem else None


def parse_delivery(
    *,
    accounts: str | None,
    regions: str | None,
    max_concurrent: str | None = None,
    max_concurrent_percent: str | None = None,
    failure_tolerance: str | None = None,
    failure_tolerance_percent: str | None = None,
    region_order: str | None = None,
    administration_role_arn: str | None = None,
    execution_role_name: str | None = None,
    admin_region: str | None = None,
) -> Delivery:
    """Check the options before anything is called; every problem is one line naming the option and the fix."""
    problems: list[str] = []
    account_ids = _split(accounts)
    if not account_ids:
        problems.append("--accounts is missing; name the target accounts, e.g. --accounts 111111111111,222222222222")
    for account in account_ids:
        if not _ACCOUNT_ID.match(account):
            problems.append(f"--accounts {account}: not an AWS account id; write 12 digits, e.g. 111111111111")
    region_names = _split(regions)
    if not region_names:
        problems.append("--regions is missing; name the target regions, e.g. --regions eu-west-1,eu-central-1")
    problems += [p for p in (_region_problem("--regions", r) for r in region_names) if p]
    if admin_region is not None and (problem := _region_problem("--region", admin_region)):
        problems.append(problem)
    concurrent = _number("--max-concurrent", max_concurrent, 1, None, problems)
    concurrent_percent = _number("--max-concurrent-percent", max_concurrent_percent, 1, 100, problems)
    tolerance = _number("--failure-tolerance", failure_tolerance, 0, None, problems)
    tolerance_percent = _number("--failure-tolerance-percent", failure_tolerance_percent, 0, 100, problems)
    if max_concurrent is not None and max_concurrent_percent is not None:
        problems.append("--max-concurrent and --max-concurrent-percent: give one of them, not both")
    if failure_tolerance is not None and failure_tolerance_percent is not None:
        problems.append("--failure-tolerance and --failure-tolerance-percent: give one of them, not both")
    if concurrent is not None and tolerance_percent is None and concurrent > (tolerance or 0) + 1:
        # StackSetOperationPreferences: MaxConcurrentCount is at most FailureToleranceCount + 1
        # (the default concurrency mode, STRICT_FAILURE_TOLERANCE).
        problems.append(
            f"--max-concurrent {concurrent}: CloudFormation runs at most failure tolerance + 1 accounts at once; "
            f"add --failure-tolerance {concurrent - 1} or lower --max-concurrent to {(tolerance or 0) + 1}"
        )
    order = (region_order or "sequential").lower()
    if order not in ("parallel", "sequential"):
        problems.append(f"--region-order {region_order}: give parallel or sequential")
    if administration_role_arn is not None and not _ROLE_ARN.match(administration_role_arn):
        problems.append(
            f"--administration-role-arn {administration_role_arn}: not an IAM role ARN; "
            "write arn:aws:iam::ACCOUNT:role/NAME, or leave it out for AWS's default"
        )
    if execution_role_name is not None and not _ROLE_NAME.match(execution_role_name):
        problems.append(
            f"--execution-role-name {execution_role_name}: not an IAM role name; give 1 to 64 of "
            "letters, digits and +=,.@_- (a name, not an ARN), or leave it out for AWS's default"
        )
    if problems:
        raise UsageError("\n".join(problems))
    return Delivery(
        accounts=tuple(account_ids),
        regions=tuple(region_names),
        preferences=Preferences(
            max_concurrent_count=concurrent,
            max_concurrent_percent=concurrent_percent,
            failure_tolerance_count=tolerance,
            failure_tolerance_percent=tolerance_percent,
            region_order="parallel" if order == "parallel" else "sequential",
        ),
        administration_role_arn=administration_role_arn,
        execution_role_name=execution_role_name,
    )


def parse_params(values: Sequence[str]) -> dict[str, str]:
    """``--param K=V`` values, checked for shape."""
    parsed: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param {item}: write it as KEY=VALUE")
        parsed[key] = value
    return parsed


# -- what is deployed ------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployedStackSet:
    """What DescribeStackSet says of an existing stack set."""

    name: str
    stack_set_id: str
    status: str
    template: dict[str, Any] | None  # None: not JSON (compared as changed)
    parameters: dict[str, str]
    tags: dict[str, str]
    administration_role_arn: str
    execution_role_name: str
    permission_model: str = "SELF_MANAGED"

    @classmethod
    def from_api(cls, stack_set: Mapping[str, Any]) -> DeployedStackSet:
        """Read the ``StackSet`` of a DescribeStackSet answer."""
        try:
            template: dict[str, Any] | None = json.loads(stack_set.get("TemplateBody") or "null")
        except json.JSONDecodeError:
            template = None
        return cls(
            name=stack_set["StackSetName"],
            stack_set_id=stack_set.get("StackSetId", ""),
            status=stack_set.get("Status", ""),
            template=template if isinstance(template, dict) else None,
            parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in stack_set.get("Parameters", [])},
            tags={t["Key"]: t["Value"] for t in stack_set.get("Tags", [])},
            administration_role_arn=stack_set.get("AdministrationRoleARN", ""),
            execution_role_name=stack_set.get("ExecutionRoleName", ""),
            permission_model=stack_set.get("PermissionModel") or "SELF_MANAGED",
        )

    def as_stack(self) -> DeployedStack:
        """The stack set as the engine's parameter resolution sees a deployed stack."""
        return DeployedStack(
            stack_id=self.stack_set_id,
            name=self.name,
            status=self.status,
            parameters=self.parameters,
            tags=self.tags,
            outputs={},
            last_updated="",
            termination_protection=False,
        )


@dataclass(frozen=True)
class Instance:
    """One stack instance, from ListStackInstances."""

    account: str
    region: str
    status: str  # CURRENT, OUTDATED or INOPERABLE
    detailed_status: str  # SUCCEEDED, FAILED, RUNNING...
    reason: str

    @classmethod
    def from_api(cls, summary: Mapping[str, Any]) -> Instance:
        """Read one ``StackInstanceSummary``."""
        return cls(
            account=str(summary.get("Account", "")),
            region=str(summary.get("Region", "")),
            status=str(summary.get("Status", "")),
            detailed_status=str((summary.get("StackInstanceStatus") or {}).get("DetailedStatus", "")),
            reason=str(summary.get("StatusReason", "")),
        )

    @property
    def state(self) -> str:
        """``CURRENT (SUCCEEDED)``."""
        return f"{self.status} ({self.detailed_status})" if self.detailed_status else self.status


# -- the plan --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One call that changes the stack set; all but CreateStackSet start an operation."""

    api: Api
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.api == "CreateStackSet":
            return "CreateStackSet"
        if not self.accounts:
            return f"{self.api} (every instance: there are none)"
        return f"{self.api} in {', '.join(self.accounts)} x {', '.join(self.regions)}"


@dataclass(frozen=True)
class Row:
    """One account x region of the plan."""

    account: str
    region: str
    action: str  # create, update, unchanged, not named, inoperable
    state: str  # the instance's status now, "" when it does not exist
    note: str


@dataclass(frozen=True)
class Change:
    """One parameter, tag or role whose value changes (``None``: absent)."""

    name: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class StackSetPlan:
    """What a delivery would do to the stack set and its instances."""

    name: str
    region: str
    account: str
    exists: bool
    template_changed: bool
    resource_changes: dict[str, list[str]]  # "added"/"modified"/"removed" → logical ids
    parameter_changes: list[Change]
    tag_changes: list[Change]
    role_changes: list[Change]
    rows: list[Row]
    steps: list[Step]
    preferences: Preferences
    busy: str | None = None  # an operation the stack set is running now
    refusal: str | None = None  # why deploy would not go on
    notes: list[str] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        """Whether a deploy would call anything that changes the stack set."""
        return bool(self.steps)

    def count(self, action: str) -> int:
        """How many account x region rows have ``action``."""
        return sum(1 for row in self.rows if row.action == action)


def rectangles(api: Api, pairs: Sequence[Pair], accounts: Sequence[str], regions: Sequence[str]) -> list[Step]:
    """Cut ``pairs`` into ``api`` steps over exact account-list x region-list groups.

    Accounts that need the same regions share a step.

    The API acts on every account x region of the lists it is given, so each group may hold only
    pairs that are meant; the order follows ``accounts`` and ``regions`` as named.
    """
    wanted: dict[str, set[str]] = {}
    for account, region in pairs:
        wanted.setdefault(account, set()).add(region)
    groups: dict[tuple[str, ...], list[str]] = {}
    for account in accounts:
        if account in wanted:
            key = tuple(region for region in regions if region in wanted[account])
            groups.setdefault(key, []).append(account)
    return [Step(api, tuple(group), key) for key, group in groups.items()]


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _no_echo(definition: Mapping[str, Any]) -> bool:
    return str(definition.get("NoEcho", "false")).lower() == "true"


def _parameter_changes(
    template: Mapping[str, Any], prepared: Prepared, deployed: Mapping[str, str]
) -> tuple[list[Change], list[str]]:
    declared: dict[str, Any] = template.get("Parameters", {})
    changes: list[Change] = []
    notes: list[str] = []
    for name, definition in sorted(declared.items()):
        if name in prepared.previous:
            continue  # sent with UsePreviousValue
        if name in prepared.parameters:
            new = prepared.parameters[name]
        elif "Default" in definition and name in deployed:
            new = _text(definition["Default"])
        else:
            continue  # the default, never sent: what AWS applies either way
        old = deployed.get(name)
        if _no_echo(definition):
            if old == _MASK:
                notes.append(f"parameter {name} is NoEcho: AWS masks the deployed value, so a change cannot be seen")
            elif old is None:
                changes.append(Change(name, None, _MASK))
            continue
        if old != new:
            changes.append(Change(name, old, new))
    changes += [Change(name, deployed[name], None) for name in sorted(set(deployed) - set(declared))]
    return changes, notes


def _dict_changes(old: Mapping[str, str], new: Mapping[str, str]) -> list[Change]:
    return [
        Change(key, old.get(key), new.get(key)) for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)
    ]


def _resource_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, list[str]]:
    before: dict[str, Any] = (old or {}).get("Resources", {})
    after: dict[str, Any] = new.get("Resources", {})
    changes = {
        "added": sorted(set(after) - set(before)),
        "modified": sorted(k for k in set(after) & set(before) if after[k] != before[k]),
        "removed": sorted(set(before) - set(after)),
    }
    return {kind: ids for kind, ids in changes.items() if ids}


def _role_changes(delivery: Delivery, deployed: DeployedStackSet) -> list[Change]:
    changes = []
    for role, old, new in (
        ("AdministrationRoleARN", deployed.administration_role_arn, delivery.administration_role_arn),
        ("ExecutionRoleName", deployed.execution_role_name, delivery.execution_role_name),
    ):
        if new is not None and new != old:
            changes.append(Change(role, old, new))
    return changes


def _instance_rows(
    delivery: Delivery, instances: Sequence[Instance], *, definition_changed: bool
) -> tuple[list[Row], list[Pair], list[Pair]]:
    """One row per named pair and per existing unnamed instance; the pairs to create and to update."""
    existing = {(i.account, i.region): i for i in instances}
    rows: list[Row] = []
    create: list[Pair] = []
    update: list[Pair] = []
    for pair in delivery.pairs:
        instance = existing.get(pair)
        if instance is None:
            create.append(pair)
            rows.append(Row(*pair, "create", "", ""))
        elif instance.status == "INOPERABLE":
            note = (
                "left: AWS cannot update an INOPERABLE instance; delete it with DeleteStackInstances "
                "(RetainStacks), then deploy again"
            )
            rows.append(Row(*pair, "inoperable", instance.state, note))
        elif definition_changed or instance.status == "OUTDATED":
            # OUTDATED: an earlier operation did not reach it (failed within the tolerance, stopped).
            update.append(pair)
            note = instance.reason or ("" if definition_changed else "OUTDATED: updated again")
            rows.append(Row(*pair, "update", instance.state, note))
        else:
            rows.append(Row(*pair, "unchanged", instance.state, ""))
    for pair in sorted(set(existing) - set(delivery.pairs)):
        note = "left as it is, never deleted implicitly"
        if definition_changed:
            note += "; AWS marks it OUTDATED when the stack set changes"
        rows.append(Row(*pair, "not named", existing[pair].state, note))
    return rows, create, update


def _steps(
    name: str,
    delivery: Delivery,
    *,
    exists: bool,
    definition_changed: bool,
    any_instance: bool,
    create: Sequence[Pair],
    update: Sequence[Pair],
) -> tuple[list[Step], str | None]:
    """The calls, in order, and why a deploy would refuse (``None``: it would not)."""
    updates = rectangles("UpdateStackInstances", update, delivery.accounts, delivery.regions)
    creates = rectangles("CreateStackInstances", create, delivery.accounts, delivery.regions)
    if not exists:
        return [Step("CreateStackSet"), *creates], None
    if not definition_changed:
        return [*updates, *creates], None
    if updates:
        # UpdateStackSet takes one account list x region list; further groups update their instances.
        first = Step("UpdateStackSet", updates[0].accounts, updates[0].regions)
        return [first, *updates[1:], *creates], None
    if not any_instance:
        return [Step("UpdateStackSet"), *creates], None
    return [], (
        f"the stack set {name} changes, but none of the named instances exists yet, and UpdateStackSet without "
        "accounts and regions would update every instance, including those not named; also name the account "
        "and region of an existing instance"
    )


def build_plan(
    *,
    name: str,
    region: str,
    account: str,
    delivery: Delivery,
    deployed: DeployedStackSet | None,
    instances: Sequence[Instance],
    prepared: Prepared,
    busy: str | None = None,
) -> StackSetPlan:
    """Compare what is deployed with what the delivery asks for; no call is made here."""
    template_changed = deployed is not None and deployed.template != prepared.template
    parameter_changes: list[Change] = []
    tag_changes: list[Change] = []
    role_changes: list[Change] = []
    notes: list[str] = []
    if deployed is not None:
        parameter_changes, notes = _parameter_changes(prepared.template, prepared, deployed.parameters)
        tag_changes = _dict_changes(deployed.tags, prepared.tags)
        role_changes = _role_changes(delivery, deployed)
    definition_changed = bool(template_changed or parameter_changes or tag_changes or role_changes)
    rows, create, update = _instance_rows(delivery, instances, definition_changed=definition_changed)
    steps, refusal = _steps(
        name,
        delivery,
        exists=deployed is not None,
        definition_changed=definition_changed,
        any_instance=bool(instances),
        create=create,
        update=update,
    )
    if deployed is not None and deployed.permission_model != "SELF_MANAGED":
        steps, refusal = (
            [],
            (
                f"the stack set {name} uses {deployed.permission_model} permissions (Organizations targets); cfnbuild "
                "delivers SELF_MANAGED stack sets to named accounts only"
            ),
        )
    lookups = sorted(lookup.parameter for lookup in recorded_lookups(prepared.template))
    if lookups and len(delivery.regions) > 1:
        notes.append(
            f"parameter(s) {', '.join(lookups)} are looked up in {region} and sent to every region; "
            "if a region differs, pin them with --param"
        )
    return StackSetPlan(
        name=name,
        region=region,
        account=account,
        exists=deployed is not None,
        template_changed=template_changed,
        resource_changes=_resource_changes(deployed.template, prepared.template)
        if deployed and template_changed
        else {},
        parameter_changes=parameter_changes,
        tag_changes=tag_changes,
        role_changes=role_changes,
        rows=rows,
        steps=steps,
        preferences=delivery.preferences,
        busy=busy,
        refusal=refusal,
        notes=notes,
    )


def _changes_table(title: str, changes: Sequence[Change]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("name", "deployed", "new"):
        table.add_column(column, overflow="fold")
    for change in changes:
        table.add_row(
            change.name, "(none)" if change.old is None else change.old, "(none)" if change.new is None else change.new
        )
    return table


def _render_definition(plan: StackSetPlan, console: Console) -> None:
    where = f"in {plan.region}, administrator account {plan.account}"
    if not plan.exists:
        console.print(
            f"stack set {plan.name} ({where}): does not exist; it will be created with SELF_MANAGED permissions",
            markup=False,
            soft_wrap=True,
        )
        return
    console.print(f"stack set {plan.name} ({where}): exists", markup=False, soft_wrap=True)
    if plan.template_changed:
        detail = "; ".join(f"{kind}: {', '.join(ids)}" for kind, ids in plan.resource_changes.items())
        console.print(f"template: changed ({detail or 'outside Resources'})", markup=False, soft_wrap=True)
    else:
        console.print("template: unchanged", markup=False, soft_wrap=True)
    for title, changes in (
        ("parameters", plan.parameter_changes),
        ("tags", plan.tag_changes),
        ("roles", plan.role_changes),
    ):
        if changes:
            console.print(_changes_table(f"{title}: {len(changes)} changed", changes))
        else:
            console.print(f"{title}: unchanged", markup=False, soft_wrap=True)


def _render_rows(plan: StackSetPlan, console: Console) -> None:
    table = Table(title=f"instances of {plan.name}", title_justify="left")
    for column in ("account", "region", "action", "status now"):
        table.add_column(column, no_wrap=True)
    table.add_column("note", overflow="fold")
    for row in plan.rows:
        table.add_row(row.account, row.region, row.action, row.state or "-", row.note)
    console.print(table)


def render_plan(plan: StackSetPlan, console: Console) -> None:
    """Print the plan: the stack set, its definition's changes, one row per instance, the operations."""
    _render_definition(plan, console)
    _render_rows(plan, console)
    if plan.steps:
        console.print("operations, in order:", markup=False, soft_wrap=True)
        for number, step in enumerate(plan.steps, 1):
            console.print(f"  {number}. {step}", markup=False, soft_wrap=True)
        console.print(f"each operation: {plan.preferences.describe()}", markup=False, soft_wrap=True)
    lines = [f"note: {note}" for note in plan.notes]
    if plan.busy:
        lines.append(f"busy: {plan.busy}; deploy refuses until it ends")
    if plan.refusal:
        lines.append(f"deploy would refuse: {plan.refusal}")
    counts = ", ".join(
        f"{plan.count(action)} {word}"
        for action, word in (("create", "to create"), ("update", "to update"), ("unchanged", "unchanged"))
    )
    if unnamed := plan.count("not named"):
        counts += f", {unnamed} not named (left as they are; cfnbuild never deletes stack instances implicitly)"
    lines.append(f"{plan.name}: {'changes' if plan.has_changes else 'no changes'}: {counts}")
    for line in lines:
        console.print(line, markup=False, soft_wrap=True)


# -- operations ------------------------------------------------------------------------------


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
        size = len(prepared.body.encode())
        if size <= INLINE_TEMPLATE_LIMIT:
            return {"TemplateBody": prepared.body}
        staging = StagingBucket(self.engine.aws)
        key = staging.put(TEMPLATES, prepared.body.encode(), suffix=".json")
        self.engine.err.print(
            f"template is {size} bytes: staged as s3://{staging.name}/{key}", markup=False, soft_wrap=True
        )
        return {"TemplateURL": staging.url(key)}

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


# -- the emulator ----------------------------------------------------------------------------


# -- the command line ------------------------------------------------------------------------

_TARGET_KEYS = ("env", "stack", "region", "profile", "endpoint_url", "local")


def _delivery_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--accounts", metavar="ID,ID", help="Target accounts, 12 digits each, comma-separated (required)."
        ),
        click.option(
            "--regions",
            "target_regions",
            metavar="REGION,REGION",
            help="Target regions, comma-separated (required); --region is the administrator's.",
        ),
        click.option("--max-concurrent", metavar="N", help="At most N accounts at a time (AWS's default: 1)."),
        click.option("--max-concurrent-percent", metavar="P", help="At most P% of the accounts at a time (1-100)."),
        click.option(
            "--failure-tolerance",
            metavar="N",
            help="Accounts per region that may fail before a region stops (default 0).",
        ),
        click.option("--failure-tolerance-percent", metavar="P", help="The same as a percentage (0-100)."),
        click.option(
            "--region-order",
            metavar="parallel|sequential",
            help="Regions one after another, in the order named (default), or all at once.",
        ),
        click.option(
            "--administration-role-arn",
            metavar="ARN",
            help=f"Administration role (default: AWS's, {DEFAULT_ADMINISTRATION_ROLE} in the administrator account).",
        ),
        click.option(
            "--execution-role-name",
            metavar="NAME",
            help=f"Execution role in each target account (default: AWS's, {DEFAULT_EXECUTION_ROLE}).",
        ),
        click.option(
            "--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a template parameter (repeatable)."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _parse(kwargs: dict[str, Any]) -> tuple[Where, Delivery, dict[str, str]]:
    where = Where(*(kwargs.pop(key) for key in _TARGET_KEYS))
    params = parse_params(kwargs.pop("params"))
    delivery = parse_delivery(
        accounts=kwargs.pop("accounts"),
        regions=kwargs.pop("target_regions"),
        max_concurrent=kwargs.pop("max_concurrent"),
        max_concurrent_percent=kwargs.pop("max_concurrent_percent"),
        failure_tolerance=kwargs.pop("failure_tolerance"),
        failure_tolerance_percent=kwargs.pop("failure_tolerance_percent"),
        region_order=kwargs.pop("region_order"),
        administration_role_arn=kwargs.pop("administration_role_arn"),
        execution_role_name=kwargs.pop("execution_role_name"),
        admin_region=where.region,
    )
    return where, delivery, params


@contextmanager
def _delivery_for(
    ctx: click.Context, where: Where, delivery: Delivery, params: dict[str, str], *, yes: bool
) -> Iterator[StackSetDelivery]:
    with engine_for(ctx, where) as (engine, env, stack):
        request = Request(env, stack, param_overrides=params, yes=yes or where.local)
        yield StackSetDelivery(engine, request, delivery)


@click.group(name="stackset")
def stackset() -> None:
    """Deliver a stack to many accounts and regions as a CloudFormation StackSet.

    The template is the one build wrote (output/ENV/STACK.json); the stack set is named like the
    stack (<stack>-<env>[-<suffix>]) and lives in the administrator account's region (--region,
    default: the config's first). Instances are every account x region named; instances that
    exist but are not named are left as they are, never deleted.

    \b
    Example:
      cfnbuild stackset plan --env prod --accounts 111111111111,222222222222 --regions eu-west-1,eu-central-1
    """


@stackset.command(name="plan")
@target_options
@_delivery_options
@click.pass_context
def plan_command(ctx: click.Context, /, **kwargs: Any) -> None:
    """Show what 'stackset deploy' would do: stack set, template, parameters, each instance.

    Exit code: 0 no changes, 2 changes, 1 error (bad options too, since 2 means changes).

    \b
    Example:
      cfnbuild stackset plan --env prod --accounts 111111111111,222222222222 --regions eu-west-1,eu-central-1
    """
    try:
        where, delivery, params = _parse(kwargs)
        with _delivery_for(ctx, where, delivery, params, yes=False) as runner:
            plan, _ = runner.plan()
    except CfnbuildError as exc:
        exc.exit_code = 1  # plan: 2 means "changes"; every error is 1
        raise
    render_plan(plan, ctx.obj["out"])
    if plan.refusal:
        raise CfnbuildError(f"deploy would refuse: {plan.refusal}")
    ctx.exit(EXIT_CHANGES if plan.has_changes else EXIT_NO_CHANGES)


@stackset.command(name="deploy")
@target_options
@_delivery_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (CI).")
@click.pass_context
def deploy_command(ctx: click.Context, /, yes: bool, **kwargs: Any) -> None:
    """Create or update the stack set and its instances, and watch every operation to the end.

    The plan first; then confirmation (--yes for CI; refused without a terminal). Each call
    carries its own operation id; each operation is polled until it ends, with each instance's
    result as it comes, and the end is a table of every instance's status and reason. Exit 1
    when an operation fails beyond the failure tolerance or is stopped, naming the instances.

    \b
    Example:
      cfnbuild stackset deploy --env prod --accounts 111111111111,222222222222 --regions eu-west-1 \\
          --max-concurrent 2 --failure-tolerance 1 --yes
    """
    where, delivery, params = _parse(kwargs)
    with _delivery_for(ctx, where, delivery, params, yes=yes) as runner:
        if where.local and not yes:
            ctx.obj["err"].print(
                "--local: the emulator is throwaway, so no confirmation is asked", markup=False, soft_wrap=True
            )
        runner.deploy()
