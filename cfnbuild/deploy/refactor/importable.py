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
``Ref`` to another resource of the stack replaced by that resource's physical ID. A property the
definition does not give — a read-only one, such as an Elastic IP's ``AllocationId``, a route's
``CidrBlock`` or a gateway attachment's ``AttachmentType`` — is read back with ``Fn::GetAtt``
when the type returns it as an attribute: phase A adds that output and phase B writes the value
into the identifier (:func:`deferred` marks it until then). One that cannot be resolved either
way is not imported: it is deleted and created again when stateless, and refused when stateful.
A resource a transform processes (a rotation schedule's ``HostedRotationLambda``, which
``AWS::SecretsManager-2024-09-16`` turns into a rotation function) cannot be imported: an import
template takes no transform.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from cfnbuild.deploy.refactor.resolve import CannotResolve, Decided, resolve

# Properties only a transform understands: the resource is the transform's to make.
TRANSFORMED = {("AWS::SecretsManager::RotationSchedule", "HostedRotationLambda")}


@dataclass(frozen=True)
class TypeSupport:
    """What the registry schema says of one type: whether it can be imported and its identifier properties."""

    readable: bool
    identifier: tuple[str, ...]  # property names of the primary identifier
    attributes: frozenset[str] = frozenset()  # what Fn::GetAtt returns for the type


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
    attributes = frozenset(PROVIDER_SCHEMA_MANAGER.get_type_getatts(resource_type, region))
    return TypeSupport("read" in (schema.get("handlers") or {}), names, attributes)


def identifier(
    logical_id: str,
    definition: Mapping[str, Any],
    support: TypeSupport,
    physical: Mapping[str, str],
    decided: Decided,
) -> dict[str, Any] | None:
    """The ``ResourceIdentifier`` of a deployed resource, or None when it cannot be resolved.

    ``physical`` maps the stack's logical IDs to their physical IDs (ListStackResources). A
    value phase A must read back is ``{"Fn::GetAtt": [logical_id, property]}`` (:func:`deferred`).
    """
    given = definition.get("Properties") or {}
    if transformed(definition) or not support.readable or not support.identifier or not physical.get(logical_id):
        return None
    if len(support.identifier) == 1:
        return {support.identifier[0]: physical[logical_id]}
    try:
        properties = resolve(given, decided, logical_id)
    except CannotResolve:
        return None
    found: dict[str, Any] = {}
    for name in support.identifier:
        value: Any = _literal(properties.get(name) if isinstance(properties, Mapping) else None, physical)
        if value is None and name not in given and name in support.attributes:
            value = {"Fn::GetAtt": [logical_id, name]}
        if value is None:
            return None
        found[name] = value
    return found


def deferred(ident: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (logical ID, attribute) pairs of an identifier still to be read back from phase A's outputs."""
    return [tuple(v["Fn::GetAtt"]) for v in ident.values() if isinstance(v, Mapping) and "Fn::GetAtt" in v]


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
