"""Which moved resources CloudFormation can import, and the identifier each is imported by.

Resource import (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/resource-import.html)
takes a resource by its type's *primary identifier*: ``ResourcesToImport`` gives, for each
logical ID, ``ResourceIdentifier`` — the identifier properties and their values. The registry
schema of each type (cfn-lint ships them) names those properties (``primaryIdentifier``) and the
handlers it has; import reads the resource, so a type without a ``read`` handler cannot be
imported (the list of types that can is
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/resource-import-supported-resources.html;
CloudFormation refuses any other in one answer when the import change set is created).

The values: for a one-property identifier, the resource's physical ID (what
ListStackResources returns is that identifier); for a composite one, each property from the
resource's deployed definition, with the stack's parameters and conditions written out and a
``Ref`` to another resource of the stack replaced by that resource's physical ID. A property
the definition does not give (a read-only one such as a route's ``CidrBlock``) cannot be
resolved from the definition is taken from a property that holds the same value (a route's
read-only ``CidrBlock`` is its ``DestinationCidrBlock``), else from the physical ID when that is
the identifier's values joined by ``|`` (a gateway attachment's ``Ref`` is ``IGW|vpc-…``:
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ec2-vpcgatewayattachment.html);
one that cannot be resolved either way is not imported: it is deleted and created again when
stateless, and refused when stateful. A resource a transform processes (a rotation schedule's
``HostedRotationLambda``, which ``AWS::SecretsManager-2024-09-16`` turns into a rotation
function) cannot be imported: an import template takes no transform.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from cfnbuild.deploy.refactor.resolve import CannotResolve, Decided, resolve

# Read-only identifier properties and the property of the definition that holds the same value.
SAME_VALUE = {("AWS::EC2::Route", "CidrBlock"): "DestinationCidrBlock"}
# Properties only a transform understands: the resource is the transform's to make.
TRANSFORMED = {("AWS::SecretsManager::RotationSchedule", "HostedRotationLambda")}


@dataclass(frozen=True)
class TypeSupport:
    """What the registry schema says of one type: whether it can be imported and its identifier properties."""

    readable: bool
    identifier: tuple[str, ...]  # property names of the primary identifier


@cache
def type_support(resource_type: str, region: str) -> TypeSupport:
    """The import support of ``resource_type`` from its registry schema (no schema: not importable)."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER  # noqa: PLC0415  (slow to load; only this path needs it)
    from cfnlint.schema.manager import ResourceNotFoundError  # noqa: PLC0415  (as above)

    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
    except ResourceNotFoundError:
        return TypeSupport(False, ())
    paths = schema.get("primaryIdentifier") or []
    names = tuple(str(path).rsplit("/", 1)[-1] for path in paths)
    return TypeSupport("read" in (schema.get("handlers") or {}), names)


def identifier(
    logical_id: str,
    definition: Mapping[str, Any],
    support: TypeSupport,
    physical: Mapping[str, str],
    decided: Decided,
) -> dict[str, str] | None:
    """The ``ResourceIdentifier`` of a deployed resource, or None when it cannot be resolved.

    ``physical`` maps the stack's logical IDs to their physical IDs (ListStackResources).
    """
    resource_type = str(definition.get("Type", ""))
    given = definition.get("Properties") or {}
    if any((resource_type, name) in TRANSFORMED for name in given):
        return None
    if not support.readable or not support.identifier or not physical.get(logical_id):
        return None
    if len(support.identifier) == 1:
        return {support.identifier[0]: physical[logical_id]}
    parts = physical[logical_id].split("|")
    try:
        properties = resolve(given, decided, logical_id)
    except CannotResolve:
        return None
    found: dict[str, str] = {}
    for index, name in enumerate(support.identifier):
        source = SAME_VALUE.get((resource_type, name), name) if name not in properties else name
        value = _literal(properties.get(source) if isinstance(properties, Mapping) else None, physical)
        if value is None and len(parts) == len(support.identifier):
            value = parts[index]
        if value is None:
            return None
        found[name] = value
    return found


def transformed(definition: Mapping[str, Any]) -> bool:
    """Whether a transform processes this resource (so it cannot be imported)."""
    kind = str(definition.get("Type", ""))
    return any((kind, name) in TRANSFORMED for name in definition.get("Properties") or {})


def _literal(value: Any, physical: Mapping[str, str]) -> str | None:
    """A resolved property as a string: a literal, or the physical ID a ``Ref`` to a resource names."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, Mapping) and list(value) == ["Ref"]:
        return physical.get(str(value["Ref"]))
    return None
