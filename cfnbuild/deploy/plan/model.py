"""The plan's model: what a change set will do to one stack, as frozen data classes.

A :class:`Plan` holds one :class:`ResourceChange` per resource the change set adds, modifies,
replaces, removes or imports (each with its :class:`PropertyChange` details), the stack's
:class:`ParameterChange` and :class:`TagChange` entries, the resources a change set listed that
will not be made (:class:`NotCreated`: their condition is false), the exports the update removes
(:class:`RemovedExport`, with the stacks that import them), and what the saved plan is checked
against before ``deploy`` executes it. Nothing here reads AWS or renders; :func:`mask` is here
because a plan never holds a NoEcho value: every module that puts a value into one masks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FORMAT = "cfnbuild-plan/1"
MASK = "****"
# A secret shorter than this is masked only where a whole value equals it: replacing every
# occurrence of a two-letter string inside other values would garble them and reveal nothing.
_MIN_SUBSTRING_SECRET = 4


@dataclass(frozen=True)
class PropertyChange:
    """One attribute or property of a resource that the change set changes."""

    attribute: str  # "Properties", "Tags", "Metadata", "DeletionPolicy", ...
    path: str  # "/Properties/SecurityGroupIngress/0/CidrIp", or the property's Name
    before: Any | None  # JSON-decoded when it is a JSON object or array; NoEcho values masked
    after: Any | None
    requires_recreation: str  # "Never" | "Conditionally" | "Always" | ""
    change_type: str = ""  # AttributeChangeType: "Add" | "Remove" | "Modify" | ""
    change_source: str = ""  # ChangeSource ("DirectModification", "ParameterReference", ...), or "TemplateDiff"
    causing_entity: str = ""  # the parameter or resource that causes the change, when one does


@dataclass(frozen=True)
class ResourceChange:
    """One resource the change set adds, modifies, replaces, removes or imports."""

    logical_id: str
    resource_type: str
    action: str  # "Add" | "Modify" | "Remove" | "Import" | "Dynamic"
    replacement: str  # "True" | "False" | "Conditional" | "" (Add/Remove, or unknown)
    physical_id: str | None
    stateful: bool  # carries cfnbuild's stateful mark in the new or the deployed template
    danger: bool  # stateful and (Remove, or replacement True/Conditional)
    widening: tuple[str, ...]  # IAM or security-group access this change widens, one sentence each
    details: tuple[PropertyChange, ...]
    danger_reason: str = ""  # why it is a DANGER and what happens to the data; "" when not
    policy_action: str = ""  # the change set's PolicyAction: "Delete", "Retain", "ReplaceAndSnapshot", ...
    notes: tuple[str, ...] = ()  # weaker warnings: retention policy dropped, stateful mark removed, renames

    @property
    def kind(self) -> str:
        """What the change amounts to: "add", "modify", "replace", "remove" or "import"."""
        if self.action == "Add":
            return "add"
        if self.action == "Remove":
            return "remove"
        if self.action == "Import":
            return "import"
        return "replace" if self.replacement in ("True", "Conditional") else "modify"


@dataclass(frozen=True)
class ParameterChange:
    """A stack parameter whose value changes; both values are ``****`` for a NoEcho parameter."""

    name: str
    before: str | None
    after: str | None
    no_echo: bool


@dataclass(frozen=True)
class TagChange:
    """A stack-level tag that is added, removed or changes value."""

    key: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class NotCreated:
    """A resource the change set listed but CloudFormation will not make: its condition is false.

    An emulator lists every resource of the template; AWS evaluates each resource's Condition and
    lists only those it makes. The plan keeps these apart so its counts are what will be made.
    """

    logical_id: str
    resource_type: str
    condition: str  # the resource's Condition, false for the given parameters


@dataclass(frozen=True)
class RemovedExport:
    """An export of the deployed stack that the update removes (its output goes, or loses its Export).

    CloudFormation refuses to remove an export another stack imports: the update fails and rolls
    back (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-stack-exports.html),
    so the plan names the importers ListImports gives, and ``deploy`` refuses while there are any.
    """

    name: str  # the export's name, as deployed
    output: str  # the output that carried it
    imported_by: tuple[str, ...] = ()  # the stacks importing it, from ListImports
    unchecked: str = ""  # why nobody could ask who imports it (an emulator without ListImports); "" when asked


@dataclass(frozen=True)
class Plan:
    """Everything a change set will do to one stack, ready to review, save and execute."""

    stack_name: str
    change_set_id: str | None  # None when there is nothing to change
    change_set_type: str  # "CREATE" | "UPDATE"
    resources: tuple[ResourceChange, ...]  # dangers first, then by logical ID
    parameters: tuple[ParameterChange, ...]
    tags: tuple[TagChange, ...]
    template_hash: str  # sha256 of the template body that was sent
    stack_last_updated: str | None  # ISO time of the deployed stack's LastUpdatedTime/CreationTime
    parameter_values: dict[str, str] = field(default_factory=dict)  # NoEcho values masked
    # sha256 of the deployed template, parameters and tags when the plan was made: a saved plan
    # is stale when this differs, even where LastUpdatedTime is not kept (the emulator).
    stack_fingerprint: str | None = None
    # Resources the change set listed whose condition the parameters make false (not made).
    not_created: tuple[NotCreated, ...] = ()
    # Exports of the deployed stack this update removes (filled by the engine, which asks ListImports).
    removed_exports: tuple[RemovedExport, ...] = ()

    def counts(self) -> dict[str, int]:
        """Resources to add, modify, replace, remove and import (a replacing Modify counts as replace)."""
        counts = {"add": 0, "modify": 0, "replace": 0, "remove": 0, "import": 0}
        for change in self.resources:
            counts[change.kind] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        """Whether anything changes: a resource, a parameter, a tag or an export removed."""
        return bool(self.resources or self.parameters or self.tags or self.removed_exports)

    @property
    def dangers(self) -> tuple[ResourceChange, ...]:
        """The changes that put a stateful resource's data at risk."""
        return tuple(change for change in self.resources if change.danger)

    @property
    def destructive(self) -> bool:
        """Whether any resource is replaced or removed, stateful or not."""
        return any(change.kind in ("replace", "remove") for change in self.resources)

    @property
    def widening(self) -> tuple[str, ...]:
        """Every sentence about access the plan widens, across all resources."""
        return tuple(sentence for change in self.resources for sentence in change.widening)


def review_order(change: ResourceChange) -> tuple[bool, str, str]:
    """The order a plan lists its resources in: dangers first, then by logical ID and action."""
    return (not change.danger, change.logical_id, change.action)


def mask(value: Any, secrets: frozenset[str]) -> Any:
    """``value`` with every NoEcho value in it replaced by ``****``."""
    if isinstance(value, str):
        if value in secrets:
            return MASK
        for secret in sorted(secrets, key=len, reverse=True):
            if len(secret) >= _MIN_SUBSTRING_SECRET:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, list):
        return [mask(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: mask(item, secrets) for key, item in value.items()}
    return value
