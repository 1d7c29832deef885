"""What the export reads of a CloudFormation template: the names it refers to, and resource schemas.

Both the launch form (which parameters shape which resources) and the launch role (which
policies a role attaches) follow ``Ref``, ``Fn::Sub`` and conditions; both read the resource
schemas cfn-lint ships.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
from cfnlint.schema.manager import ResourceNotFoundError

SCHEMA_REGION = "us-east-1"  # property constraints are the same in every region; read the base set
_SUB_NAME = re.compile(r"\$\{([A-Za-z0-9:]+)\}")


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) of every mapping inside ``node``."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield str(key), value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def references(node: Any) -> tuple[set[str], set[str]]:
    """The names ``node`` refers to (``Ref`` and ``Fn::Sub``) and the conditions it uses."""
    refs: set[str] = set()
    conditions: set[str] = set()
    for key, value in _walk(node):
        if key == "Ref" and isinstance(value, str):
            refs.add(value)
        elif key == "Fn::Sub":
            text, variables = (value, {}) if isinstance(value, str) else (value[0], value[1] if len(value) > 1 else {})
            if isinstance(text, str):
                refs.update(set(_SUB_NAME.findall(text)) - set(variables or {}))
        elif key == "Fn::If" and isinstance(value, list) and value and isinstance(value[0], str):
            conditions.add(value[0])
        elif key == "Condition" and isinstance(value, str):
            conditions.add(value)
    return refs, conditions


def resource_schema(resource_type: str) -> Mapping[str, Any] | None:
    """The resource schema cfn-lint ships for ``resource_type``; None for a type it does not know."""
    try:
        schema: Mapping[str, Any] = PROVIDER_SCHEMA_MANAGER.get_resource_schema(SCHEMA_REGION, resource_type).schema
    except ResourceNotFoundError:
        return None
    return schema
