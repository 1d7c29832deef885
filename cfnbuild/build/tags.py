"""The one place where tags are applied.

Every taggable resource in a rendered template carries the standard tags (Project, Environment,
ManagedBy) plus the user's tags. Which property holds a type's tags, and in which shape (a list
of Key/Value pairs, a list that also needs ``PropagateAtLaunch``, or a plain map), is read from
the CloudFormation resource schemas that cfn-lint ships, so a new resource type is tagged
correctly without a table of our own. The schemas are read from cfn-lint's data files without
importing cfn-lint (:mod:`cfnbuild.build.cfn_data`), when the first one is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, Literal

from cfnbuild.build.cfn_data import resource_schema

MANAGED_BY = "cfnbuild"
TagShape = Literal["list", "list-propagate", "map"]
# The schemas are the same for tagging purposes in every region; read the base set.
_SCHEMA_REGION = "us-east-1"


def standard_tags(project: str, environment: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Project, Environment and ManagedBy, plus the user's tags (which may not override them)."""
    tags = dict(extra or {})
    tags.update({"Project": project, "Environment": environment, "ManagedBy": MANAGED_BY})
    return tags


@cache
def tag_property(resource_type: str) -> tuple[str, TagShape] | None:
    """Where ``resource_type`` keeps its tags and in which shape; ``None`` if it has no tags."""
    schema = resource_schema(_SCHEMA_REGION, resource_type)
    if schema is None:
        return None
    tagging = schema.get("tagging", {})
    pointer = tagging.get("tagProperty")
    if not tagging.get("taggable") or not pointer or pointer.count("/") != 2:
        return None
    name = pointer.rsplit("/", 1)[1]
    prop = schema["properties"].get(name, {})
    if prop.get("type") == "object":
        return name, "map"
    ref = prop.get("items", {}).get("$ref", "")
    item = schema.get("definitions", {}).get(ref.rsplit("/", 1)[-1], {})
    if "PropagateAtLaunch" in item.get("required", []):
        return name, "list-propagate"
    return name, "list"


def apply_tags(resource_type: str, properties: dict[str, Any], tags: Mapping[str, str]) -> None:
    """Merge ``tags`` into a rendered resource's properties, in place.

    Tags the resource already has (a ``Name``, say) are kept; the standard tags win over a
    resource's own value for the same key. The result is sorted by key, so output is stable.
    """
    where = tag_property(resource_type)
    if where is None:
        return
    name, shape = where
    existing = properties.get(name)
    if shape == "map":
        merged_map: dict[str, Any] = dict(existing or {})
        merged_map.update(tags)
        properties[name] = dict(sorted(merged_map.items()))
        return
    by_key: dict[str, dict[str, Any]] = {}
    for tag in existing or []:
        if isinstance(tag, dict) and isinstance(tag.get("Key"), str):
            by_key[tag["Key"]] = tag
        else:
            # An intrinsic function builds this list; merging into it is not possible.
            return
    for key, value in tags.items():
        tag = {"Key": key, "Value": value}
        if shape == "list-propagate":
            tag["PropagateAtLaunch"] = True
        by_key[key] = tag
    for tag in by_key.values():
        if shape == "list-propagate":
            tag.setdefault("PropagateAtLaunch", True)
    properties[name] = [by_key[key] for key in sorted(by_key)]
