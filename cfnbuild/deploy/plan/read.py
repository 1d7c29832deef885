"""Reading a change set into a plan: :func:`build_plan`.

CloudFormation's ``DescribeChangeSet`` (with ``IncludePropertyValues``) says which resources it
will add, modify, replace or remove and how their properties change. :func:`build_plan` adds:

- the stateful mark (:mod:`cfnbuild.build.stateful`), from the new template or, for removals and
  renames, the deployed one: replacing or removing a stateful resource is a DANGER, with a
  sentence saying what happens to its data (from the change set's ``PolicyAction`` or the
  deployed template's ``DeletionPolicy``/``UpdateReplacePolicy``), and weaker notes when a
  retention policy or the mark is dropped, or a removal looks like half of a rename;
- the listing as AWS would give it (:mod:`.conditions`): resources whose Condition the parameter
  values make false are not made, so they are no Add (kept apart in ``Plan.not_created``), and a
  condition that turns false or true is a Remove or an Add;
- the property changes from the two templates (:mod:`.template_diff`) when the change set gives
  none (an emulator may not);
- access that the change widens (:mod:`.widening`), from the old and new resource definitions
  with parameter Refs resolved;
- NoEcho parameters, masked everywhere: parameter changes, the parameter values, and any
  property value CloudFormation reports as ``****`` or that holds a NoEcho value.

What CloudFormation returns is described in the API reference, "DescribeChangeSet" and
"ResourceChange": https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ResourceChange.html
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cfnbuild.build.stateful import is_stateful
from cfnbuild.deploy.plan.conditions import as_aws_lists, truths_for
from cfnbuild.deploy.plan.evaluate import static_properties
from cfnbuild.deploy.plan.model import (
    MASK,
    ParameterChange,
    Plan,
    PropertyChange,
    ResourceChange,
    TagChange,
    mask,
    review_order,
)
from cfnbuild.deploy.plan.template_diff import template_diff
from cfnbuild.deploy.plan.widening import access_widened, resolve

_RETAINING = frozenset({"Retain", "RetainExceptOnCreate", "Snapshot"})


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
    # What AWS lists: resources whose condition is false for these parameters are not made.
    raw_changes, not_created = as_aws_lists(
        raw_changes,
        new_resources=new_template.get("Resources", {}),
        old_resources=old.get("Resources", {}) if old_template is not None else None,
        new_truths=truths_for(new_template, new_effective, change_set, stack_name),
        old_truths=truths_for(old, old_effective, change_set, stack_name),
    )
    context = _Context(
        new_resources=new_template.get("Resources", {}),
        old_resources=old.get("Resources", {}),
        new_values=_substitutable(new_template, new_effective, no_echo),
        old_values=_substitutable(old, old_effective, no_echo),
        secrets=secrets,
        new_conditions=new_template.get("Conditions") or {},
        old_conditions=old.get("Conditions") or {},
    )
    resources = _note_renames([_resource_change(raw, context) for raw in raw_changes])
    parameter_values = {**new_parameters, **change_set_parameters}
    return Plan(
        stack_name=stack_name,
        change_set_id=(change_set or {}).get("ChangeSetId"),
        change_set_type="CREATE" if old_template is None else "UPDATE",
        resources=tuple(sorted(resources, key=review_order)),
        # No change set: CloudFormation found the template, parameters and tags all unchanged.
        parameters=_parameter_changes(old_effective, new_effective, no_echo, caused_by) if change_set else (),
        tags=_tag_changes(old_tags, new_tags) if change_set else (),
        template_hash=template_hash,
        stack_last_updated=stack_last_updated,
        stack_fingerprint=stack_fingerprint,
        parameter_values={name: MASK if name in no_echo else value for name, value in sorted(parameter_values.items())},
        not_created=not_created,
    )


@dataclass(frozen=True)
class _Context:
    new_resources: Mapping[str, Any]
    old_resources: Mapping[str, Any]
    new_values: Mapping[str, Any]  # parameter values a Ref may be replaced by (never NoEcho ones)
    old_values: Mapping[str, Any]
    secrets: frozenset[str]
    new_conditions: Mapping[str, Any] = field(default_factory=dict)
    old_conditions: Mapping[str, Any] = field(default_factory=dict)


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
        # Compared as CloudFormation evaluates them: the same zone written two ways is no change.
        details = template_diff(
            resource_type,
            static_properties(old, context.old_values, context.old_conditions),
            static_properties(new, context.new_values, context.new_conditions),
            context.secrets,
        )
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
    widening = access_widened(
        logical_id,
        resource_type,
        resolve(old, context.old_values) if old is not None else None,
        resolve(new, context.new_values) if new is not None else None,
    )
    return ResourceChange(
        logical_id=logical_id,
        resource_type=resource_type,
        action=action,
        replacement=replacement,
        physical_id=raw.get("PhysicalResourceId") or None,
        stateful=stateful,
        danger=danger,
        widening=tuple(mask(sentence, context.secrets) for sentence in widening),
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


def _details(raw_details: Iterable[Mapping[str, Any]], secrets: frozenset[str]) -> tuple[PropertyChange, ...]:
    seen: set[str] = set()
    details = []
    for raw in raw_details:
        target = raw.get("Target") or {}
        attribute = str(target.get("Attribute", ""))
        detail = PropertyChange(
            attribute=attribute,
            path=str(target.get("Path") or target.get("Name") or attribute),
            before=mask(_decode(target.get("BeforeValue")), secrets),
            after=mask(_decode(target.get("AfterValue")), secrets),
            requires_recreation=str(target.get("RequiresRecreation", "")),
            change_type=str(target.get("AttributeChangeType", "")),
            change_source=str(raw.get("ChangeSource", "")),
            causing_entity=mask(str(raw.get("CausingEntity", "")), secrets),
        )
        # CloudFormation often reports one property twice: evaluated statically and dynamically.
        key = json.dumps(
            [detail.attribute, detail.path, detail.before, detail.after, detail.change_source], default=str
        )
        if key not in seen:
            seen.add(key)
            details.append(detail)
    return tuple(details)


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
