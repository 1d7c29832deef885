"""The template diff: what changed in a resource between two templates, when the change set says nothing.

AWS always sends a Modify's details; an emulator may not. :func:`template_diff` compares the
deployed and the new definition property by property and says whether each change recreates
the resource, from the type's ``createOnlyProperties`` in its registry schema (read through
cfn-lint's copy): "Resource type schema", https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-schema.html
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cfnbuild.deploy.plan.model import PropertyChange, mask


def template_diff(
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
        before, after = mask(old_properties.get(name), secrets), mask(new_properties.get(name), secrets)
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
