"""The plan: what a change set will do, merged with what only cfnbuild knows about the stack.

CloudFormation's ``DescribeChangeSet`` (with ``IncludePropertyValues``) says which resources it
will add, modify, replace or remove and how their properties change. :func:`build_plan` adds:

- the stateful mark (:mod:`cfnbuild.build.stateful`), from the new template or, for removals and
  renames, the deployed one: replacing or removing a stateful resource is a DANGER, with a
  sentence saying what happens to its data (from the change set's ``PolicyAction`` or the
  deployed template's ``DeletionPolicy``/``UpdateReplacePolicy``);
- access that the change widens, from the old and new resource definitions (not only the change
  set): IAM statements gaining actions, resources, principals or losing a Deny or a condition,
  managed policies attached, and security-group rules opened (``0.0.0.0/0`` called out);
- NoEcho parameters, masked everywhere: parameter changes, the parameter values, and any
  property value CloudFormation reports as ``****`` or that holds a NoEcho value.

A plan renders as text (rich), JSON (``cfnbuild-plan/1``, saved and loaded for ``deploy`` to
execute exactly what was reviewed) and Markdown (a pull-request comment).

What CloudFormation returns is described in the API reference, "DescribeChangeSet" and
"ResourceChange": https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ResourceChange.html
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cfnbuild.build.stateful import is_stateful
from cfnbuild.errors import UsageError
from cfnbuild.files import write_atomic

FORMAT = "cfnbuild-plan/1"
MASK = "****"
# A secret shorter than this is masked only where a whole value equals it: replacing every
# occurrence of a two-letter string inside other values would garble them and reveal nothing.
_MIN_SUBSTRING_SECRET = 4
_VALUE_WIDTH = 60
_MAX_DETAILS_SHOWN = 25
_RETAINING = frozenset({"Retain", "RetainExceptOnCreate", "Snapshot"})
_WORLD = frozenset({"0.0.0.0/0", "::/0"})


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


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

    def counts(self) -> dict[str, int]:
        """Resources to add, modify, replace, remove and import (a replacing Modify counts as replace)."""
        counts = {"add": 0, "modify": 0, "replace": 0, "remove": 0, "import": 0}
        for change in self.resources:
            counts[change.kind] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        """Whether anything changes: a resource, a parameter or a tag."""
        return bool(self.resources or self.parameters or self.tags)

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


# --------------------------------------------------------------------------------------------
# Building a plan
# --------------------------------------------------------------------------------------------


def build_plan(
    *,
    stack_name: str,
    change_set: Mapping[str, Any] | None,
    new_template: Mapping[str, Any],
    old_template: Mapping[str, Any] | None,
    new_parameters: Mapping[str, str],
    old_parameters: Mapping[str, str],
    new_tags: Mapping[str, str],
    old_tags: Mapping[str, str],
    template_hash: str,
    stack_last_updated: str | None,
    stack_fingerprint: str | None = None,
) -> Plan:
    """Merge a ``DescribeChangeSet`` response with the new and deployed templates into a plan.

    ``change_set`` is the response with ``IncludePropertyValues=True`` and the ``Changes`` of all
    pages concatenated, or None when CloudFormation found nothing to change. ``old_template`` is
    None for a stack that does not exist yet; ``old_parameters`` are the deployed stack's values
    (CloudFormation returns ``****`` for NoEcho ones).
    """
    old = old_template or {}
    no_echo = _no_echo_names(new_template) | _no_echo_names(old)
    change_set_parameters = _change_set_parameters(change_set)
    secrets = _secret_values(no_echo, new_parameters, old_parameters, change_set_parameters)
    raw_changes = [
        change["ResourceChange"]
        for change in (change_set or {}).get("Changes", [])
        if change.get("Type", "Resource") == "Resource" and "ResourceChange" in change
    ]
    caused_by = {
        detail.get("CausingEntity")
        for change in raw_changes
        for detail in change.get("Details", [])
        if detail.get("ChangeSource") == "ParameterReference"
    }
    old_effective = _effective_parameters(old_template, old_parameters) if old_template is not None else {}
    new_effective = _effective_parameters(new_template, new_parameters, change_set, old_effective)
    context = _Context(
        new_resources=new_template.get("Resources", {}),
        old_resources=old.get("Resources", {}),
        new_values=_substitutable(new_template, new_effective, no_echo),
        old_values=_substitutable(old, old_effective, no_echo),
        secrets=secrets,
    )
    resources = _note_renames([_resource_change(raw, context) for raw in raw_changes])
    parameter_values = {**new_parameters, **change_set_parameters}
    return Plan(
        stack_name=stack_name,
        change_set_id=(change_set or {}).get("ChangeSetId"),
        change_set_type="CREATE" if old_template is None else "UPDATE",
        resources=tuple(sorted(resources, key=_order)),
        # No change set: CloudFormation found the template, parameters and tags all unchanged.
        parameters=_parameter_changes(old_effective, new_effective, no_echo, caused_by) if change_set else (),
        tags=_tag_changes(old_tags, new_tags) if change_set else (),
        template_hash=template_hash,
        stack_last_updated=stack_last_updated,
        stack_fingerprint=stack_fingerprint,
        parameter_values={name: MASK if name in no_echo else value for name, value in sorted(parameter_values.items())},
    )


@dataclass(frozen=True)
class _Context:
    new_resources: Mapping[str, Any]
    old_resources: Mapping[str, Any]
    new_values: Mapping[str, Any]  # parameter values a Ref may be replaced by (never NoEcho ones)
    old_values: Mapping[str, Any]
    secrets: frozenset[str]


def _order(change: ResourceChange) -> tuple[bool, str, str]:
    return (not change.danger, change.logical_id, change.action)


def _no_echo_names(template: Mapping[str, Any]) -> set[str]:
    parameters = template.get("Parameters") or {}
    return {name for name, spec in parameters.items() if str(spec.get("NoEcho", "")).lower() == "true"}


def _change_set_parameters(change_set: Mapping[str, Any] | None) -> dict[str, str]:
    return {
        item["ParameterKey"]: item["ParameterValue"]
        for item in (change_set or {}).get("Parameters", [])
        if "ParameterKey" in item and "ParameterValue" in item
    }


def _secret_values(no_echo: set[str], *sources: Mapping[str, str]) -> frozenset[str]:
    values = {str(source[name]) for source in sources for name in no_echo if name in source}
    return frozenset(value for value in values if value and value != MASK)


def _parameter_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_parameter_text(item) for item in value)
    return str(value)


def _effective_parameters(
    template: Mapping[str, Any] | None,
    given: Mapping[str, str],
    change_set: Mapping[str, Any] | None = None,
    previous: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The value every parameter gets: the one given, else the change set's, else the Default.

    A parameter sent with UsePreviousValue is not in ``given``: the change set has its value (or
    says UsePreviousValue), and one with neither a value nor a Default can only have kept the
    ``previous`` one.
    """
    declared = (template or {}).get("Parameters") or {}
    previous = previous or {}
    values = {name: _parameter_text(spec["Default"]) for name, spec in declared.items() if "Default" in spec}
    for item in (change_set or {}).get("Parameters", []):
        name = item.get("ParameterKey")
        if "ParameterValue" in item:
            values[name] = str(item["ParameterValue"])
        elif item.get("UsePreviousValue") and name in previous:
            values[name] = previous[name]
    values.update({name: previous[name] for name in declared if name not in values and name in previous})
    values.update({name: str(value) for name, value in given.items()})
    return values


def _substitutable(template: Mapping[str, Any], values: Mapping[str, str], no_echo: set[str]) -> dict[str, Any]:
    """Parameter values a Ref may be replaced by when judging access; NoEcho ones stay a Ref."""
    declared = template.get("Parameters") or {}
    result: dict[str, Any] = {}
    for name, value in values.items():
        if name in no_echo or value == MASK:
            continue
        kind = str((declared.get(name) or {}).get("Type", ""))
        is_list = kind == "CommaDelimitedList" or kind.startswith("List<")
        result[name] = [item.strip() for item in value.split(",")] if is_list else value
    return result


def _parameter_changes(
    old: Mapping[str, str], new: Mapping[str, str], no_echo: set[str], caused_by: set[Any]
) -> tuple[ParameterChange, ...]:
    changes = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if name in no_echo:
            if before is not None and after is not None:
                # The deployed value of a NoEcho parameter reads back as ****: whether it changes
                # is known only from the change set, which names it as the cause of a change.
                unknowable = MASK in (before, after)
                if (unknowable and name not in caused_by) or (not unknowable and before == after):
                    continue
            changes.append(
                ParameterChange(name, None if before is None else MASK, None if after is None else MASK, True)
            )
        elif before != after:
            changes.append(ParameterChange(name, before, after, False))
    return tuple(changes)


def _tag_changes(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[TagChange, ...]:
    return tuple(
        TagChange(key, old.get(key), new.get(key))
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    )


def _resource_change(raw: Mapping[str, Any], context: _Context) -> ResourceChange:
    logical_id = str(raw.get("LogicalResourceId", ""))
    action = str(raw.get("Action", ""))
    new = context.new_resources.get(logical_id) if action != "Remove" else None
    old = context.old_resources.get(logical_id) if action not in ("Add", "Import") else None
    resource_type = str(raw.get("ResourceType") or (new or old or {}).get("Type", ""))
    details = _details(raw.get("Details", []), context.secrets)
    replacement = str(raw.get("Replacement", ""))
    if not details and action in ("Modify", "Dynamic") and old is not None and new is not None:
        details = _template_diff(resource_type, old, new, context.secrets)
    if action in ("Modify", "Dynamic") and not replacement and details:
        # AWS always sends Replacement for a Modify; an emulator may not. Derive it from the
        # properties' RequiresRecreation rather than show a replacement as a plain change.
        replacement = _replacement_from(details)
    stateful = is_stateful(context.new_resources.get(logical_id) or {}) or is_stateful(
        context.old_resources.get(logical_id) or {}
    )
    danger = stateful and (action == "Remove" or replacement in ("True", "Conditional"))
    policy_action = str(raw.get("PolicyAction", ""))
    old_for_policy = context.old_resources.get(logical_id) or {}
    label = f"{logical_id} ({resource_type})"
    widening = _widening(
        logical_id,
        resource_type,
        _resolve(old, context.old_values) if old is not None else None,
        _resolve(new, context.new_values) if new is not None else None,
    )
    return ResourceChange(
        logical_id=logical_id,
        resource_type=resource_type,
        action=action,
        replacement=replacement,
        physical_id=raw.get("PhysicalResourceId") or None,
        stateful=stateful,
        danger=danger,
        widening=tuple(_mask(sentence, context.secrets) for sentence in widening),
        details=details,
        danger_reason=_danger_reason(
            label,
            action=action,
            replacement=replacement,
            details=details,
            policy_action=policy_action,
            old=old_for_policy,
        )
        if danger
        else "",
        policy_action=policy_action,
        notes=_retention_notes(context.old_resources.get(logical_id), new) if action != "Remove" else (),
    )


def _replacement_from(details: Iterable[PropertyChange]) -> str:
    recreation = {detail.requires_recreation for detail in details}
    if "Always" in recreation:
        return "True"
    if "Conditionally" in recreation:
        return "Conditional"
    return "False"


def _decode(value: Any) -> Any:
    """A Before/AfterValue: JSON objects and arrays decoded, anything else kept as CloudFormation sent it."""
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _mask(value: Any, secrets: frozenset[str]) -> Any:
    """``value`` with every NoEcho value in it replaced by ``****``."""
    if isinstance(value, str):
        if value in secrets:
            return MASK
        for secret in sorted(secrets, key=len, reverse=True):
            if len(secret) >= _MIN_SUBSTRING_SECRET:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, list):
        return [_mask(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: _mask(item, secrets) for key, item in value.items()}
    return value


def _details(raw_details: Iterable[Mapping[str, Any]], secrets: frozenset[str]) -> tuple[PropertyChange, ...]:
    seen: set[str] = set()
    details = []
    for raw in raw_details:
        target = raw.get("Target") or {}
        attribute = str(target.get("Attribute", ""))
        detail = PropertyChange(
            attribute=attribute,
            path=str(target.get("Path") or target.get("Name") or attribute),
            before=_mask(_decode(target.get("BeforeValue")), secrets),
            after=_mask(_decode(target.get("AfterValue")), secrets),
            requires_recreation=str(target.get("RequiresRecreation", "")),
            change_type=str(target.get("AttributeChangeType", "")),
            change_source=str(raw.get("ChangeSource", "")),
            causing_entity=_mask(str(raw.get("CausingEntity", "")), secrets),
        )
        # CloudFormation often reports one property twice: evaluated statically and dynamically.
        key = json.dumps(
            [detail.attribute, detail.path, detail.before, detail.after, detail.change_source], default=str
        )
        if key not in seen:
            seen.add(key)
            details.append(detail)
    return tuple(details)


def _template_diff(
    resource_type: str, old: Mapping[str, Any], new: Mapping[str, Any], secrets: frozenset[str]
) -> tuple[PropertyChange, ...]:
    """What changed between two resource definitions, when the change set gave no details."""
    old_properties, new_properties = old.get("Properties") or {}, new.get("Properties") or {}
    changed = [
        name
        for name in sorted(set(old_properties) | set(new_properties))
        if old_properties.get(name) != new_properties.get(name)
    ]
    create_only = _create_only_properties(resource_type) if changed else frozenset()
    changes = []
    for name in changed:
        recreation = _recreation(name, old_properties.get(name), new_properties.get(name), create_only)
        before, after = _mask(old_properties.get(name), secrets), _mask(new_properties.get(name), secrets)
        changes.append(
            PropertyChange("Properties", f"/Properties/{name}", before, after, recreation, "", "TemplateDiff")
        )
    for attribute in ("Metadata", "DeletionPolicy", "UpdateReplacePolicy", "UpdatePolicy", "CreationPolicy"):
        if old.get(attribute) != new.get(attribute):
            changes.append(
                PropertyChange(attribute, attribute, old.get(attribute), new.get(attribute), "", "", "TemplateDiff")
            )
    return tuple(changes)


_ABSENT = object()


def _recreation(name: str, before: Any, after: Any, create_only: frozenset[str]) -> str:
    """Whether changing property ``name`` from ``before`` to ``after`` recreates the resource.

    "Always" when the property is create-only, or a create-only part of it (``Budget/BudgetName``)
    differs; "Never" when every create-only part is the same before and after (absent in both
    included); "Conditionally" when a part cannot be compared (a path through a list).
    """
    if f"/properties/{name}" in create_only:
        return "Always"
    prefix = f"/properties/{name}/"
    parts = [path[len(prefix) :].split("/") for path in create_only if path.startswith(prefix)]
    if not parts:
        return "Never"
    if any("*" in part for part in parts):
        return "Conditionally"
    if any(_pointer(before, part) != _pointer(after, part) for part in parts):
        return "Always"
    return "Never"


def _pointer(value: Any, parts: list[str]) -> Any:
    """The value at ``parts`` inside ``value``, or a marker when any step is missing."""
    for part in parts:
        if not isinstance(value, Mapping) or part not in value:
            return _ABSENT
        value = value[part]
    return value


def _create_only_properties(resource_type: str) -> frozenset[str]:
    """The properties whose change replaces a resource, from the type's registry schema (via cfn-lint)."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER, ResourceNotFoundError  # noqa: PLC0415  (slow; rarely needed)

    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type)
    except ResourceNotFoundError:
        return frozenset()
    return frozenset(schema.schema.get("createOnlyProperties", []))


def _danger_reason(
    label: str,
    *,
    action: str,
    replacement: str,
    details: Iterable[PropertyChange],
    policy_action: str,
    old: Mapping[str, Any],
) -> str:
    if action == "Remove":
        policy = policy_action or str(old.get("DeletionPolicy", "Delete"))
        fate = {
            "Retain": "AWS keeps it (DeletionPolicy Retain), but outside the stack",
            "RetainExceptOnCreate": "AWS keeps it (DeletionPolicy RetainExceptOnCreate), but outside the stack",
            "Snapshot": "CloudFormation takes a final snapshot, then deletes it",
        }.get(policy, "it is DELETED with its data")
        return f"{label} holds data and will be REMOVED from the stack: {fate}."
    forcing = sorted({detail.path for detail in details if detail.requires_recreation in ("Always", "Conditionally")})
    because = f" because {', '.join(forcing)} changes" if forcing else ""
    policy = policy_action.removeprefix("ReplaceAnd") or str(old.get("UpdateReplacePolicy", "Delete"))
    fate = {
        "Retain": "keeps the old one outside the stack (UpdateReplacePolicy Retain)",
        "RetainExceptOnCreate": "keeps the old one outside the stack",
        "Snapshot": "snapshots the old one, then deletes it",
    }.get(policy, "DELETES the old one with its data")
    will = "will be REPLACED" if replacement == "True" else "may be REPLACED (CloudFormation decides at deploy time)"
    return (
        f"{label} holds data and {will}{because}: CloudFormation creates a new one, which does not "
        f"get the old one's data, and {fate}."
    )


def _retention_notes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> tuple[str, ...]:
    if old is None or new is None:
        return ()
    notes = []
    if is_stateful(old) and not is_stateful(new):
        notes.append("loses cfnbuild's stateful mark: its later replacement or removal will not be flagged")
    for attribute in ("DeletionPolicy", "UpdateReplacePolicy"):
        before, after = old.get(attribute), new.get(attribute, "Delete")
        if before in _RETAINING and after not in _RETAINING:
            notes.append(f"{attribute} {before} → {after}: its data is no longer kept when it is deleted or replaced")
    return tuple(notes)


def _note_renames(changes: list[ResourceChange]) -> list[ResourceChange]:
    """Point out a stateful removal that looks like the other half of a logical-ID rename."""
    added: dict[str, list[str]] = {}
    for change in changes:
        if change.action == "Add":
            added.setdefault(change.resource_type, []).append(change.logical_id)
    result = []
    for change in changes:
        twins = added.get(change.resource_type, []) if change.danger and change.action == "Remove" else []
        note = (
            f"{', '.join(sorted(twins))} of the same type is added: if it is meant to be this resource "
            f"renamed, know that a rename does not move data; it creates a new resource and removes this one"
        )
        result.append(replace(change, notes=(*change.notes, note)) if twins else change)
    return result


# --------------------------------------------------------------------------------------------
# Widening: access a change grants that was not granted before
# --------------------------------------------------------------------------------------------

_IDENTITY_WITH_INLINE = frozenset({"AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"})
_IDENTITY_POLICIES = frozenset(
    {
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::RolePolicy",
        "AWS::IAM::UserPolicy",
        "AWS::IAM::GroupPolicy",
    }
)
_RESOURCE_POLICIES = {
    "AWS::S3::BucketPolicy": "PolicyDocument",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::SQS::QueuePolicy": "PolicyDocument",
    "AWS::KMS::Key": "KeyPolicy",
    "AWS::SecretsManager::ResourcePolicy": "ResourcePolicy",
    "AWS::ECR::Repository": "RepositoryPolicyText",
}
# Policies that stand apart from what they protect: removing one (with its Deny statements) can widen access.
_STANDALONE_POLICIES = _IDENTITY_POLICIES | {
    "AWS::S3::BucketPolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::SecretsManager::ResourcePolicy",
}
_ATTACHMENTS = {"Roles": "role", "Users": "user", "Groups": "group", "RoleName": "role", "UserName": "user"}
_SUB_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_:.]+)\}")


def _widening(
    logical_id: str, resource_type: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> list[str]:
    if new is None and resource_type not in _STANDALONE_POLICIES:
        return []  # the resource goes, and its access with it
    old_properties = (old or {}).get("Properties") or {}
    new_properties = (new or {}).get("Properties") or {}
    existed = old is not None
    sentences: list[str] = []
    if resource_type in _IDENTITY_WITH_INLINE:
        sentences += _policy_widening(
            logical_id,
            "identity",
            [p.get("PolicyDocument") for p in _items(old_properties.get("Policies")) if isinstance(p, dict)],
            [p.get("PolicyDocument") for p in _items(new_properties.get("Policies")) if isinstance(p, dict)],
            existed,
        )
        sentences += _policy_widening(
            logical_id,
            "trust",
            [old_properties.get("AssumeRolePolicyDocument")] if old_properties else [],
            [new_properties.get("AssumeRolePolicyDocument")] if new_properties else [],
            existed,
        )
        sentences += _added(logical_id, "attaches managed policy", old_properties, new_properties, "ManagedPolicyArns")
    elif resource_type in _IDENTITY_POLICIES:
        sentences += _policy_widening(
            logical_id,
            "identity",
            [old_properties.get("PolicyDocument")] if old_properties else [],
            [new_properties.get("PolicyDocument")] if new_properties else [],
            existed,
        )
        for key, what in _ATTACHMENTS.items():
            sentences += _added(logical_id, f"applies to {what}", old_properties, new_properties, key)
    elif resource_type in _RESOURCE_POLICIES:
        key = _RESOURCE_POLICIES[resource_type]
        sentences += _policy_widening(
            logical_id,
            "resource",
            [old_properties.get(key)] if key in old_properties else [],
            [new_properties.get(key)] if key in new_properties else [],
            existed,
        )
    elif resource_type == "AWS::EC2::SecurityGroup":
        sentences += _rules_widening(
            logical_id, _group_rules(old_properties) if old else [], _group_rules(new_properties) if new else []
        )
    elif resource_type in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
        direction = "ingress" if resource_type.endswith("Ingress") else "egress"
        group = _describe(new_properties.get("GroupId") or new_properties.get("GroupName")).removesuffix(".GroupId")
        old_rules = [_rule(old_properties, direction)] if old_properties else []
        new_rules = [_rule(new_properties, direction)] if new_properties else []
        sentences += _rules_widening(f"{logical_id} ({group})", old_rules, new_rules)
    return sentences


def _items(value: Any) -> list[Any]:
    """A list property's items, with both branches of any Fn::If and no AWS::NoValue."""
    result = []
    for item in _branches(value):
        if isinstance(item, list):
            for element in item:
                result.extend(_branches(element))
        elif item is not None:
            result.append(item)
    return result


def _branches(node: Any) -> list[Any]:
    """Every value ``node`` may take: both branches of an Fn::If, AWS::NoValue dropped."""
    if isinstance(node, dict) and len(node) == 1:
        if "Fn::If" in node and isinstance(node["Fn::If"], list) and len(node["Fn::If"]) == 3:
            return _branches(node["Fn::If"][1]) + _branches(node["Fn::If"][2])
        if node.get("Ref") == "AWS::NoValue":
            return []
    return [node]


def _resolve(node: Any, values: Mapping[str, Any]) -> Any:
    """``node`` with Refs to parameters (and ${Parameter} in Fn::Sub) replaced by their values."""
    if isinstance(node, list):
        return [_resolve(item, values) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1 and isinstance(node.get("Ref"), str) and node["Ref"] in values:
        return values[node["Ref"]]
    if len(node) == 1 and "Fn::Sub" in node:
        argument = node["Fn::Sub"]
        text, variables = (argument, {}) if isinstance(argument, str) else ([*_as_list(argument), {}][:2])
        if isinstance(text, str) and isinstance(variables, dict):

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                value = values.get(name)
                return value if name not in variables and isinstance(value, str) else match.group(0)

            text = _SUB_VARIABLE.sub(substitute, text)
            return {"Fn::Sub": [text, _resolve(variables, values)] if variables else text}
    return {key: _resolve(value, values) for key, value in node.items()}


def _describe(value: Any) -> str:
    """A short readable form of a template value: a Ref as the name it refers to, ARNs shortened."""
    if value is None:
        return ""
    if isinstance(value, str):
        return _short_arn(value)
    if isinstance(value, list):
        return ", ".join(_describe(item) for item in value)
    described = _describe_function(value) if isinstance(value, dict) and len(value) == 1 else None
    return described if described is not None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _describe_function(node: Mapping[str, Any]) -> str | None:
    ((key, argument),) = node.items()
    if key == "Ref":
        return str(argument)
    if key == "Fn::GetAtt":
        parts = [str(part) for part in argument] if isinstance(argument, list) else str(argument).split(".", 1)
        return parts[0] if parts[1:] in ([], ["Arn"]) else f"{parts[0]}.{'.'.join(parts[1:])}"
    if key == "Fn::Sub":
        return _describe_sub(argument)
    if key == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
        return _short_arn(str(argument[0]).join(_describe(part) for part in _as_list(argument[1])))
    if key == "Fn::ImportValue":
        return f"import {_describe(argument)}"
    return None


def _describe_sub(argument: Any) -> str | None:
    if not isinstance(argument, (str, list)) or not argument:
        return None
    text, variables = (argument, {}) if isinstance(argument, str) else ([*argument, {}][:2])
    if not isinstance(variables, dict):
        return None

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        return _describe(variables[name]) if name in variables else match.group(0)

    return _short_arn(_SUB_VARIABLE.sub(substitute, str(text)))


def _short_arn(text: str) -> str:
    shortened = re.sub(r"^arn:(\$\{AWS::Partition\}|aws[a-z-]*):", "", text)
    if shortened == text:
        return text
    if shortened.startswith("s3:::"):
        return shortened.removeprefix("s3:::")
    if re.fullmatch(r"iam::(\$\{AWS::AccountId\})?:root", shortened):
        return "this account (root)"
    return shortened.replace("${AWS::Region}:", "").replace("${AWS::AccountId}:", "")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _added(logical_id: str, verb: str, old: Mapping[str, Any], new: Mapping[str, Any], key: str) -> list[str]:
    before = {_describe(item) for item in _items(old.get(key))}
    return [f"{logical_id}: {verb} {name}" for name in sorted({_describe(i) for i in _items(new.get(key))} - before)]


@dataclass(frozen=True, order=True)
class _Grant:
    effect: str
    principal: str  # "" in an identity policy: the principal is the role, user or group
    action: str
    resource: str  # "" where a statement has none (a trust policy)
    condition: str  # canonical JSON of the Condition block, "" for none


def _statements(documents: Iterable[Any]) -> tuple[list[Mapping[str, Any]], set[str]]:
    """The statements of policy documents, and any part too dynamic to read (as canonical JSON)."""
    statements: list[Mapping[str, Any]] = []
    opaque: set[str] = set()
    for document in documents:
        for doc in _branches(document):
            if doc is None:
                continue
            parsed = doc
            if isinstance(doc, str):
                try:
                    parsed = json.loads(doc)
                except ValueError:
                    opaque.add(doc)
                    continue
            if not isinstance(parsed, dict) or "Statement" not in parsed:
                opaque.add(json.dumps(parsed, sort_keys=True))
                continue
            for statement in _items(parsed["Statement"]):
                if isinstance(statement, dict):
                    statements.append(statement)
                else:
                    opaque.add(json.dumps(statement, sort_keys=True))
    return statements, opaque


def _grants(statements: Iterable[Mapping[str, Any]], kind: str) -> set[_Grant]:
    grants = set()
    for statement in statements:
        effect = _describe(statement.get("Effect", "Allow"))
        if "NotAction" in statement:
            actions = [f"every action except {_describe(statement['NotAction'])}"]
        else:
            actions = [_describe(action) for action in _items(statement.get("Action"))]
        if "NotResource" in statement:
            resources = [f"every resource except {_describe(statement['NotResource'])}"]
        else:
            resources = [_describe(resource) for resource in _items(statement.get("Resource"))] or [""]
        principals = [""] if kind == "identity" else _principals(statement)
        condition = json.dumps(statement["Condition"], sort_keys=True) if statement.get("Condition") else ""
        grants |= {
            _Grant(effect, principal, action, resource, condition)
            for principal in principals
            for action in actions
            for resource in resources
        }
    return grants


def _principals(statement: Mapping[str, Any]) -> list[str]:
    if "NotPrincipal" in statement:
        return [f"everyone except {_describe(statement['NotPrincipal'])}"]
    principal = statement.get("Principal")
    if principal is None:
        return [""]
    if principal == "*":
        return ["*"]
    if not isinstance(principal, dict):
        return [_describe(principal)]
    names = []
    for kind, value in sorted(principal.items()):
        for item in _items(value):
            described = _describe(item)
            names.append("*" if described == "*" else f"{kind} {described}")
    return names


def _wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcard matching: ``*`` any run of characters, ``?`` one character."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _covers(broad: _Grant, narrow: _Grant) -> bool:
    """Whether ``broad`` allows (or denies) everything ``narrow`` does."""
    return (
        broad.effect == narrow.effect
        and broad.principal in (narrow.principal, "*")
        and _wildcard_match(broad.action, narrow.action, ignore_case=True)
        and _wildcard_match(broad.resource, narrow.resource)
        and broad.condition in ("", narrow.condition)
    )


def _policy_widening(
    logical_id: str, kind: str, old_documents: list[Any], new_documents: list[Any], existed: bool
) -> list[str]:
    old_statements, old_opaque = _statements(old_documents)
    new_statements, new_opaque = _statements(new_documents)
    old_grants, new_grants = _grants(old_statements, kind), _grants(new_statements, kind)
    sentences = []
    if new_opaque - old_opaque:
        sentences.append(f"{logical_id}: its {kind} policy changes in a way cfnbuild cannot analyse; review it")
    allowed = [
        grant
        for grant in sorted(new_grants)
        if grant.effect == "Allow" and not any(_covers(old, grant) for old in old_grants)
    ]
    undenied = [
        grant
        for grant in sorted(old_grants)
        if grant.effect == "Deny" and not any(_covers(new, grant) for new in new_grants)
    ]
    groups: dict[tuple[str, str, str], dict[str, set[str]]] = {}
    for grant in allowed:
        markers = _markers(grant, old_grants, existed)
        groups.setdefault(("allow", grant.principal, markers), {}).setdefault(grant.resource, set()).add(grant.action)
    for grant in undenied:
        groups.setdefault(("deny", grant.principal, ""), {}).setdefault(grant.resource, set()).add(grant.action)
    # One sentence per set of actions on a set of resources, naming every principal it goes to.
    merged: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], list[str]] = {}
    for (effect, principal, markers), by_resource in sorted(groups.items()):
        by_actions: dict[tuple[str, ...], list[str]] = {}
        for resource, granted in sorted(by_resource.items()):
            by_actions.setdefault(tuple(sorted(granted)), []).append(resource)
        for actions, on in by_actions.items():
            merged.setdefault((effect, markers, actions, tuple(on)), []).append(principal)
    for (effect, markers, actions, resources), principals in sorted(merged.items()):
        sentences.append(
            _grant_sentence(
                logical_id,
                kind=kind,
                effect=effect,
                principals=principals,
                actions=actions,
                resources=resources,
                markers=markers,
            )
        )
    return sentences


def _markers(grant: _Grant, old_grants: set[_Grant], existed: bool) -> str:
    same_but_condition = existed and any(
        old.effect == "Allow"
        and old.principal == grant.principal
        and old.action.lower() == grant.action.lower()
        and old.resource == grant.resource
        for old in old_grants
    )
    markers = ["condition changed" if same_but_condition else "new"]
    if "*" in grant.action or grant.action.startswith("every action"):
        markers.append("wildcard action")
    if grant.resource == "*" or grant.resource.startswith("every resource"):
        markers.append("any resource")
    if grant.condition:
        markers.append("with a condition")
    return "; ".join(markers)


def _grant_sentence(
    logical_id: str,
    *,
    kind: str,
    effect: str,
    principals: list[str],
    actions: tuple[str, ...],
    resources: tuple[str, ...],
    markers: str,
) -> str:
    what = ", ".join(actions)
    where = f" on {', '.join(resources)}" if any(resources) else ""
    who = ", ".join("anyone (*)" if principal == "*" else principal or "its principals" for principal in principals)
    if effect == "deny":
        to = f" to {who}" if kind != "identity" else ""
        return f"{logical_id}: no longer denies {what}{where}{to} (Deny removed)"
    if kind == "identity":
        return f"{logical_id}: grants {what}{where} ({markers})"
    if kind == "trust":
        how = "" if actions == ("sts:AssumeRole",) else f" with {what}"
        return f"{logical_id}: can be assumed by {who}{how} ({markers})"
    return f"{logical_id}: lets {who} {what}{where} ({markers})"


@dataclass(frozen=True)
class _Rule:
    direction: str  # "ingress" | "egress"
    protocol: str  # "tcp", "udp", "icmp", "icmpv6", "all", or a protocol number
    ports: tuple[int, int] | str | None  # None: every port (or every ICMP type)
    peer: str
    default: bool = False  # the allow-all egress rule a group gets when it declares none


_PROTOCOLS = {"-1": "all", "all": "all", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}
_PEER_KEYS = {
    "ingress": ("CidrIp", "CidrIpv6", "SourceSecurityGroupId", "SourceSecurityGroupName", "SourcePrefixListId"),
    "egress": ("CidrIp", "CidrIpv6", "DestinationSecurityGroupId", "DestinationPrefixListId"),
}


def _rule(entry: Mapping[str, Any], direction: str) -> _Rule:
    protocol = _PROTOCOLS.get(str(_describe(entry.get("IpProtocol", "-1"))).lower(), str(entry.get("IpProtocol")))
    peer = next((_describe(entry[key]) for key in _PEER_KEYS[direction] if key in entry), "?").removesuffix(".GroupId")
    ports: tuple[int, int] | str | None = None
    if protocol != "all":
        low: Any = entry.get("FromPort")
        high: Any = entry.get("ToPort", low)
        try:
            low_port, high_port = int(low), int(high)
        except (TypeError, ValueError):
            ports = None if low is None else f"{_describe(low)}-{_describe(high)}"
        else:
            full_range = protocol in ("tcp", "udp") and (low_port, high_port) == (0, 65535)
            ports = None if low_port == -1 or full_range else (low_port, high_port)
    return _Rule(direction, protocol, ports, peer)


def _group_rules(properties: Mapping[str, Any]) -> list[_Rule]:
    rules = [
        _rule(entry, "ingress") for entry in _items(properties.get("SecurityGroupIngress")) if isinstance(entry, dict)
    ]
    egress = [
        _rule(entry, "egress") for entry in _items(properties.get("SecurityGroupEgress")) if isinstance(entry, dict)
    ]
    # A VPC security group that declares no egress rule gets one that allows everything out.
    return rules + (egress or [_Rule("egress", "all", None, "0.0.0.0/0", default=True)])


def _peer_covers(broad: str, narrow: str) -> bool:
    if broad == narrow:
        return True
    try:
        broad_net, narrow_net = ipaddress.ip_network(broad, strict=False), ipaddress.ip_network(narrow, strict=False)
    except ValueError:
        return False
    return broad_net.version == narrow_net.version and narrow_net.subnet_of(broad_net)  # type: ignore[arg-type]


def _rule_covers(broad: _Rule, narrow: _Rule) -> bool:
    if broad.direction != narrow.direction or not _peer_covers(broad.peer, narrow.peer):
        return False
    if broad.protocol == "all":
        return True
    if broad.protocol != narrow.protocol:
        return False
    if broad.ports is None or broad.ports == narrow.ports:
        return True
    if isinstance(broad.ports, tuple) and isinstance(narrow.ports, tuple) and broad.protocol in ("tcp", "udp"):
        return broad.ports[0] <= narrow.ports[0] and narrow.ports[1] <= broad.ports[1]
    return False


def _is_loopback(peer: str) -> bool:
    try:
        return ipaddress.ip_network(peer, strict=False).is_loopback
    except ValueError:
        return False


def _rules_widening(label: str, old_rules: list[_Rule], new_rules: list[_Rule]) -> list[str]:
    sentences = []
    for rule in new_rules:
        if _is_loopback(rule.peer) or any(_rule_covers(old, rule) for old in old_rules):
            continue
        ports = _ports_text(rule)
        verb = f"opens {ports} to" if rule.direction == "ingress" else f"allows {ports} out to"
        markers = [
            marker
            for marker, present in (
                ("anywhere", rule.peer in _WORLD),
                ("default egress rule: the group declares none", rule.default),
            )
            if present
        ]
        suffix = f" ({'; '.join(markers)})" if markers else ""
        sentence = f"{label}: {verb} {rule.peer}{suffix}"
        if sentence not in sentences:
            sentences.append(sentence)
    return sentences


def _ports_text(rule: _Rule) -> str:
    if rule.protocol == "all":
        return "all traffic"
    if rule.protocol in ("icmp", "icmpv6"):
        return (
            rule.protocol if rule.ports is None else f"{rule.protocol} type {_port_range(rule.ports, first_only=True)}"
        )
    if rule.ports is None:
        return f"all ports/{rule.protocol}"
    return f"{_port_range(rule.ports)}/{rule.protocol}"


def _port_range(ports: tuple[int, int] | str, *, first_only: bool = False) -> str:
    if isinstance(ports, str):
        return ports
    low, high = ports
    return str(low) if first_only or low == high else f"{low}-{high}"


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

_ACTION_LABELS = {"add": "Add", "modify": "Modify", "replace": "Replace", "remove": "Remove", "import": "Import"}


def _summary(plan: Plan) -> str:
    counts = plan.counts()
    parts = [f"{counts[kind]} to {kind}" for kind in ("add", "modify", "replace", "remove")]
    if counts["import"]:
        parts.append(f"{counts['import']} to import")
    if plan.parameters:
        parts.append(f"{len(plan.parameters)} parameter change{'s' if len(plan.parameters) != 1 else ''}")
    if plan.tags:
        parts.append(f"{len(plan.tags)} tag change{'s' if len(plan.tags) != 1 else ''}")
    return ", ".join(parts)


def _action_label(change: ResourceChange) -> str:
    label = _ACTION_LABELS[change.kind]
    if change.action == "Dynamic":
        label += " (dynamic)"
    if change.replacement == "Conditional":
        label += " (maybe)"
    return label


def _value_text(value: Any, width: int = _VALUE_WIDTH) -> str:
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) and value == MASK else json.dumps(value, sort_keys=True, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _detail_texts(detail: PropertyChange) -> list[str]:
    """One line per difference: a long JSON value is diffed by structure, a long string shows where it differs.

    A short value reads whole (``InstanceType: "t3.small" → "t3.large"``). A long one would be cut
    to a prefix that is often the same before and after, so it is compared instead: each leaf of
    an object or array that differs is a line of its own, its path continued
    (``/Properties/LaunchTemplateData/InstanceType: "t3.small" → "t3.large"``), and two long
    strings show the stretch where they differ.
    """
    extras = []
    if detail.requires_recreation and detail.requires_recreation != "Never":
        extras.append(f"recreation: {detail.requires_recreation}")
    if detail.change_source in ("ParameterReference", "ResourceReference") and detail.causing_entity:
        extras.append(f"via {detail.causing_entity}")
    suffix = f" ({'; '.join(extras)})" if extras else ""
    before, after = detail.before, detail.after
    long = max(len(_value_text(before, width=10**9)), len(_value_text(after, width=10**9))) > _VALUE_WIDTH
    if long and isinstance(before, dict | list) and isinstance(after, dict | list):
        leaves = _leaf_changes(before, after, detail.path)
        if leaves:
            shown = [f"{path}: {_value_text(old)} → {_value_text(new)}" for path, old, new in leaves[:_MAX_LEAVES]]
            if len(leaves) > _MAX_LEAVES:
                shown.append(f"{detail.path}: … and {len(leaves) - _MAX_LEAVES} more differences (see the JSON plan)")
            shown[0] += suffix
            return shown
    if long and isinstance(before, str) and isinstance(after, str) and MASK not in (before, after):
        old, new = _differing_stretch(before, after)
        return [f"{detail.path}: {old} → {new}{suffix}"]
    return [f"{detail.path}: {_value_text(before)} → {_value_text(after)}{suffix}"]


_MAX_LEAVES = 10
_ABSENT = object()


def _leaf_changes(before: Any, after: Any, path: str) -> list[tuple[str, Any, Any]]:
    """Every leaf path where ``before`` and ``after`` differ, with both values (None where absent)."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[tuple[str, Any, Any]] = []
        for key in sorted(set(before) | set(after), key=str):
            found += _leaf_changes(before.get(key, _ABSENT), after.get(key, _ABSENT), f"{path}/{key}")
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        found = []
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            found += _leaf_changes(old, new, f"{path}/{index}")
        return found
    if before == after:
        return []
    return [(path, None if before is _ABSENT else before, None if after is _ABSENT else after)]


def _differing_stretch(before: str, after: str, context: int = 20) -> tuple[str, str]:
    """The part of two long strings around where they differ, the same prefix and suffix cut to "…"."""
    start = 0
    while start < min(len(before), len(after)) and before[start] == after[start]:
        start += 1
    end = 0
    while end < min(len(before), len(after)) - start and before[-1 - end] == after[-1 - end]:
        end += 1
    begin = max(0, start - context)

    def stretch(text: str) -> str:
        stop = len(text) - max(0, end - context)
        piece = " ".join(text[begin:stop].split())
        if len(piece) > _VALUE_WIDTH:
            piece = piece[: _VALUE_WIDTH - 1] + "…"
        return ("…" if begin else "") + json.dumps(piece, ensure_ascii=False) + ("…" if stop < len(text) else "")

    return stretch(before), stretch(after)


def _ordered(plan: Plan) -> list[ResourceChange]:
    return sorted(plan.resources, key=_order)


def render_text(plan: Plan, console: Console) -> None:
    """Print the plan for a terminal: summary, DANGER first, a table, widening, property changes."""
    if not plan.has_changes:
        console.print(Text(f"No changes: stack {plan.stack_name} is up to date."))
        return
    kind = "create" if plan.change_set_type == "CREATE" else "update"
    console.print(Text(f"Plan to {kind} stack {plan.stack_name}: {_summary(plan)}", style="bold"))
    if plan.change_set_id:
        console.print(Text(f"change set {plan.change_set_id}", style="dim"))
    for change in plan.dangers:
        console.print(Text(f"DANGER  {change.danger_reason}", style="bold red"))
    resources = _ordered(plan)
    if resources:
        console.print(_resource_table(resources))
    _print_section(console, "Access this change widens:", [f"! {s}" for s in plan.widening], "yellow")
    notes = [f"{change.logical_id}: {note}" for change in resources for note in change.notes]
    _print_section(console, "Notes:", notes, "yellow")
    lines = []
    for change in resources:
        if change.details and change.action not in ("Add", "Remove"):
            lines.append(f"{change.logical_id} ({_action_label(change)}, {change.resource_type})")
            lines += [f"  {text}" for detail in change.details[:_MAX_DETAILS_SHOWN] for text in _detail_texts(detail)]
            if len(change.details) > _MAX_DETAILS_SHOWN:
                lines.append(f"  … and {len(change.details) - _MAX_DETAILS_SHOWN} more (see the JSON plan)")
    _print_section(console, "Property changes:", lines, None)
    parameters = [
        f"{p.name}: {_or_none(p.before)} → {_or_none(p.after)}" + (" (NoEcho)" if p.no_echo else "")
        for p in plan.parameters
    ]
    _print_section(console, "Parameters:", parameters, None)
    tags = [f"{t.key}: {_or_none(t.before)} → {_or_none(t.after)}" for t in plan.tags]
    _print_section(console, "Stack tags:", tags, None)


def _resource_table(resources: Iterable[ResourceChange]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("Action", "Logical ID", "Type", "Replacement"):
        table.add_column(column, overflow="fold")
    for change in resources:
        table.add_row(
            Text(("DANGER " if change.danger else "") + _action_label(change)),
            Text(change.logical_id),
            Text(change.resource_type),
            Text(change.replacement or "-"),
            style="bold red" if change.danger else ("yellow" if change.widening else None),
        )
    return table


def _print_section(console: Console, title: str, lines: list[str], style: str | None) -> None:
    if not lines:
        return
    console.print(Text(title, style=f"bold {style}" if style else "bold"))
    for line in lines:
        console.print(Text(f"  {line}", style=style or ""))


def _or_none(value: str | None) -> str:
    if value is None:
        return "(none)"
    return value or '""'


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def _md(text: str) -> str:
    """Plain text that renders as itself in a pull-request comment, in a table cell too."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text.replace("&", "&amp;")).replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(escaped.split())


def _md_code(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    body = " ".join(padded.replace("|", "\\|").split())
    return f"{fence}{body}{fence}"


def render_markdown(plan: Plan) -> str:
    """The plan as a pull-request comment: DANGER first, then counts, a table and the details."""
    lines = [f"### cfnbuild plan: {_md_code(plan.stack_name)} ({plan.change_set_type})", ""]
    if plan.dangers:
        lines += ["#### ⚠ DANGER", ""]
        lines += [f"- {_md(change.danger_reason)}" for change in plan.dangers]
        lines.append("")
    if not plan.has_changes:
        lines += ["No changes: the stack is up to date.", ""]
        return "\n".join(lines)
    lines += [f"**{_summary(plan)}**", ""]
    resources = _ordered(plan)
    if resources:
        lines += ["| Action | Logical ID | Type | Replacement |", "|---|---|---|---|"]
        for change in resources:
            action = ("⚠ " if change.danger else "") + _action_label(change)
            lines.append(
                f"| {_md(action)} | {_md_code(change.logical_id)} | {_md_code(change.resource_type)} "
                f"| {_md(change.replacement or '-')} |"
            )
        lines.append("")
    if plan.widening:
        lines += ["#### Access this change widens", ""]
        lines += [f"- {_md(sentence)}" for sentence in plan.widening]
        lines.append("")
    notes = [f"- **{_md(change.logical_id)}**: {_md(note)}" for change in resources for note in change.notes]
    if notes:
        lines += ["#### Notes", "", *notes, ""]
    details = [
        f"- **{_md(change.logical_id)}** {_md(text)}"
        for change in resources
        if change.action not in ("Add", "Remove")
        for detail in change.details
        for text in _detail_texts(detail)
    ]
    if details:
        lines += ["<details><summary>Property changes</summary>", "", *details, "", "</details>", ""]
    if plan.parameters:
        lines += ["#### Parameters", "", "| Parameter | Before | After |", "|---|---|---|"]
        for p in plan.parameters:
            name = _md_code(p.name) + (" (NoEcho)" if p.no_echo else "")
            lines.append(f"| {name} | {_md(_or_none(p.before))} | {_md(_or_none(p.after))} |")
        lines.append("")
    if plan.tags:
        lines += ["#### Stack tags", "", "| Tag | Before | After |", "|---|---|---|"]
        lines += [f"| {_md_code(t.key)} | {_md(_or_none(t.before))} | {_md(_or_none(t.after))} |" for t in plan.tags]
        lines.append("")
    lines.append(f"<sub>template sha256 {_md_code(plan.template_hash)}</sub>")
    return "\n".join(lines) + "\n"


def _to_document(plan: Plan) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "stack_name": plan.stack_name,
        "change_set_id": plan.change_set_id,
        "change_set_type": plan.change_set_type,
        "template_hash": plan.template_hash,
        "stack_last_updated": plan.stack_last_updated,
        "stack_fingerprint": plan.stack_fingerprint,
        "parameter_values": dict(plan.parameter_values),
        "summary": {
            "counts": plan.counts(),
            "has_changes": plan.has_changes,
            "destructive": plan.destructive,
            "dangers": [change.logical_id for change in plan.dangers],
        },
        "resources": [
            {
                "logical_id": change.logical_id,
                "resource_type": change.resource_type,
                "action": change.action,
                "replacement": change.replacement,
                "physical_id": change.physical_id,
                "stateful": change.stateful,
                "danger": change.danger,
                "danger_reason": change.danger_reason,
                "policy_action": change.policy_action,
                "widening": list(change.widening),
                "notes": list(change.notes),
                "details": [detail.__dict__ for detail in change.details],
            }
            for change in _ordered(plan)
        ],
        "parameters": [parameter.__dict__ for parameter in plan.parameters],
        "tags": [tag.__dict__ for tag in plan.tags],
    }


def render_json(plan: Plan) -> str:
    """The plan as stable JSON (sorted keys), versioned ``cfnbuild-plan/1``; derived counts included."""
    return json.dumps(_to_document(plan), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def save_plan(plan: Plan, path: Path) -> None:
    """Write the plan's JSON to ``path`` atomically."""
    write_atomic(path, render_json(plan))


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where} is not a string")
    return value


def _optional_text(value: Any, where: str) -> str | None:
    return None if value is None else _text(value, where)


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{where} is not a list")
    return value


def _from_document(document: Mapping[str, Any]) -> Plan:
    resources = []
    for index, raw in enumerate(_list(document["resources"], "resources")):
        where = f"resources[{index}]"
        resources.append(
            ResourceChange(
                logical_id=_text(raw["logical_id"], f"{where}.logical_id"),
                resource_type=_text(raw["resource_type"], f"{where}.resource_type"),
                action=_text(raw["action"], f"{where}.action"),
                replacement=_text(raw["replacement"], f"{where}.replacement"),
                physical_id=_optional_text(raw["physical_id"], f"{where}.physical_id"),
                stateful=bool(raw["stateful"]),
                danger=bool(raw["danger"]),
                widening=tuple(_text(s, f"{where}.widening") for s in _list(raw["widening"], f"{where}.widening")),
                details=tuple(
                    PropertyChange(
                        attribute=_text(d["attribute"], f"{where}.details"),
                        path=_text(d["path"], f"{where}.details"),
                        before=d["before"],
                        after=d["after"],
                        requires_recreation=_text(d["requires_recreation"], f"{where}.details"),
                        change_type=_text(d.get("change_type", ""), f"{where}.details"),
                        change_source=_text(d.get("change_source", ""), f"{where}.details"),
                        causing_entity=_text(d.get("causing_entity", ""), f"{where}.details"),
                    )
                    for d in _list(raw["details"], f"{where}.details")
                ),
                danger_reason=_text(raw.get("danger_reason", ""), f"{where}.danger_reason"),
                policy_action=_text(raw.get("policy_action", ""), f"{where}.policy_action"),
                notes=tuple(_text(s, f"{where}.notes") for s in _list(raw.get("notes", []), f"{where}.notes")),
            )
        )
    values = document["parameter_values"]
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise ValueError("parameter_values is not a mapping of strings")
    return Plan(
        stack_name=_text(document["stack_name"], "stack_name"),
        change_set_id=_optional_text(document["change_set_id"], "change_set_id"),
        change_set_type=_text(document["change_set_type"], "change_set_type"),
        resources=tuple(resources),
        parameters=tuple(
            ParameterChange(
                _text(p["name"], "parameters.name"),
                _optional_text(p["before"], "parameters.before"),
                _optional_text(p["after"], "parameters.after"),
                bool(p["no_echo"]),
            )
            for p in _list(document["parameters"], "parameters")
        ),
        tags=tuple(
            TagChange(
                _text(t["key"], "tags.key"),
                _optional_text(t["before"], "tags.before"),
                _optional_text(t["after"], "tags.after"),
            )
            for t in _list(document["tags"], "tags")
        ),
        template_hash=_text(document["template_hash"], "template_hash"),
        stack_last_updated=_optional_text(document["stack_last_updated"], "stack_last_updated"),
        stack_fingerprint=_optional_text(document.get("stack_fingerprint"), "stack_fingerprint"),
        parameter_values=dict(values),
    )


def load_plan(path: Path) -> Plan:
    """Read a plan :func:`save_plan` wrote; a missing, corrupt or other-version file is a UsageError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such plan file; create the plan first") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot read the plan file ({error})") from None
    try:
        document = json.loads(text)
    except ValueError as error:
        raise UsageError(f"{path}: not a cfnbuild plan (invalid JSON: {error}); create the plan again") from None
    if not isinstance(document, dict) or "format" not in document:
        raise UsageError(f"{path}: not a cfnbuild plan (no 'format' key); create the plan again")
    if document["format"] != FORMAT:
        raise UsageError(
            f"{path}: plan format {document['format']!r} is not {FORMAT!r}; create the plan again with this cfnbuild"
        )
    try:
        return _from_document(document)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        problem = f"missing key {error}" if isinstance(error, KeyError) else str(error)
        raise UsageError(f"{path}: corrupt plan file ({problem}); create the plan again") from None
