"""Saved plans: the plan as JSON (``cfnbuild-plan/1``), written and read back for ``deploy`` to execute.

``cfnbuild plan --out FILE`` saves what was reviewed; ``deploy --plan FILE`` loads it and executes
exactly that change set, refusing a missing, corrupt or other-version file with a one-line
error. The JSON is stable (sorted keys) and carries derived counts for machines reading it.

Every stack of an environment (``plan --json`` / ``--out`` without ``--stack`` in a project of
several stacks) is one document, ``cfnbuild-graph-plan/1``: the environment, the stacks in graph
order and each stack's plan document in that order, with what an upstream's plan does to the
stacks after it. ``deploy --plan FILE`` reads each stack's part of it by the stack's name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cfnbuild.deploy.plan.model import (
    FORMAT,
    NotCreated,
    ParameterChange,
    Plan,
    PropertyChange,
    RemovedExport,
    ResourceChange,
    TagChange,
    review_order,
)
from cfnbuild.errors import UsageError
from cfnbuild.files import write_atomic

GRAPH_FORMAT = "cfnbuild-graph-plan/1"


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
            for change in sorted(plan.resources, key=review_order)
        ],
        "parameters": [parameter.__dict__ for parameter in plan.parameters],
        "tags": [tag.__dict__ for tag in plan.tags],
        "not_created": [item.__dict__ for item in plan.not_created],
        "removed_exports": [{**item.__dict__, "imported_by": list(item.imported_by)} for item in plan.removed_exports],
    }


def render_json(plan: Plan) -> str:
    """The plan as stable JSON (sorted keys), versioned ``cfnbuild-plan/1``; derived counts included."""
    return json.dumps(_to_document(plan), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def save_plan(plan: Plan, path: Path) -> None:
    """Write the plan's JSON to ``path`` atomically."""
    write_atomic(path, render_json(plan))


def render_graph_json(
    environment: str, stacks: Sequence[str], plans: Sequence[Plan], effects: Sequence[str] = ()
) -> str:
    """Every stack's plan as one JSON document (``cfnbuild-graph-plan/1``): ``plans[i]`` is ``stacks[i]``'s."""
    document = {
        "format": GRAPH_FORMAT,
        "environment": environment,
        "order": list(stacks),
        "plans": [{"stack": stack, "plan": _to_document(plan)} for stack, plan in zip(stacks, plans, strict=True)],
        "downstream_effects": list(effects),
        "summary": {
            "has_changes": any(plan.has_changes for plan in plans),
            "destructive": any(plan.destructive for plan in plans),
            "dangers": [f"{plan.stack_name}: {change.logical_id}" for plan in plans for change in plan.dangers],
        },
    }
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def save_graph_plan(
    path: Path, environment: str, stacks: Sequence[str], plans: Sequence[Plan], effects: Sequence[str] = ()
) -> None:
    """Write every stack's plan as one document to ``path`` atomically."""
    write_atomic(path, render_graph_json(environment, stacks, plans, effects))


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
        not_created=tuple(
            NotCreated(
                _text(n["logical_id"], "not_created.logical_id"),
                _text(n["resource_type"], "not_created.resource_type"),
                _text(n["condition"], "not_created.condition"),
            )
            for n in _list(document.get("not_created", []), "not_created")
        ),
        removed_exports=_removed_exports(document),
    )


def _removed_exports(document: Mapping[str, Any]) -> tuple[RemovedExport, ...]:
    """The saved plan's removed exports (none in a plan saved before they were recorded)."""
    return tuple(
        RemovedExport(
            _text(e["name"], "removed_exports.name"),
            _text(e["output"], "removed_exports.output"),
            tuple(_text(s, "removed_exports.imported_by") for s in _list(e["imported_by"], "imported_by")),
            _text(e.get("unchecked", ""), "removed_exports.unchecked"),
        )
        for e in _list(document.get("removed_exports", []), "removed_exports")
    )


def load_plan(path: Path, stack_name: str | None = None) -> Plan:
    """Read a plan :func:`save_plan` wrote; a missing, corrupt or other-version file is a UsageError.

    From a plan of every stack (:func:`save_graph_plan`) it reads the part of the stack deployed
    as ``stack_name``; without one, or for a stack the file has no plan of, a UsageError.
    """
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
    if document["format"] == GRAPH_FORMAT:
        document = _part_of(path, document, stack_name)
    if document["format"] != FORMAT:
        raise UsageError(
            f"{path}: plan format {document['format']!r} is not {FORMAT!r}; create the plan again with this cfnbuild"
        )
    try:
        return _from_document(document)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        problem = f"missing key {error}" if isinstance(error, KeyError) else str(error)
        raise UsageError(f"{path}: corrupt plan file ({problem}); create the plan again") from None


def _part_of(path: Path, document: Mapping[str, Any], stack_name: str | None) -> Mapping[str, Any]:
    """The plan document of the stack deployed as ``stack_name`` in a plan of every stack."""
    environment = document.get("environment", "?")
    if stack_name is None:
        raise UsageError(f"{path}: a plan of every stack of {environment}; deploy it without --stack")
    parts = [p.get("plan") for p in document.get("plans", []) if isinstance(p, Mapping)]
    for part in parts:
        if isinstance(part, Mapping) and part.get("stack_name") == stack_name:
            return part
    names = ", ".join(str(p.get("stack_name")) for p in parts if isinstance(p, Mapping)) or "none"
    raise UsageError(f"{path}: a plan of the stacks of {environment} ({names}), none of {stack_name}; plan again")
