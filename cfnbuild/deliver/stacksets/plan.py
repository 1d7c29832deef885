"""The plan of a StackSets delivery: what is deployed, compared with what the delivery asks for.

:class:`DeployedStackSet` and :class:`Instance` are what DescribeStackSet and ListStackInstances
say; :func:`build_plan` compares them with the prepared template, parameters, tags and roles and
makes no call. The result, a :class:`StackSetPlan`, holds one :class:`Row` per account x region
and the :class:`Step` calls to make, in order.

Self-managed accounts x regions are a grid; the API takes an account list and a region list and
acts on every pair of the two, so the pairs to create or update are cut into exact rectangles
(:func:`rectangles`: accounts that need the same regions) and sent as one operation each, one
after another (a stack set runs one operation at a time).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cfnbuild.build.lookups import recorded_lookups
from cfnbuild.deliver.stacksets.options import Delivery, Pair, Preferences
from cfnbuild.deploy.engine import DeployedStack, Prepared

Api = Literal["CreateStackSet", "UpdateStackSet", "UpdateStackInstances", "CreateStackInstances"]
_MASK = "****"


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
