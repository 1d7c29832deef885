"""A stack: blueprints composed into one CloudFormation template.

The stack owns every logical ID. Resources, parameters and mappings share one namespace;
conditions, rules and outputs each have their own, as in CloudFormation. A second claim on an ID
is an error that names both claimants. Rendering applies the standard tags, then sorts keys, so
the same inputs give byte-identical JSON on every machine.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from troposphere import AWSHelperFn, AWSObject, Export, Output, Parameter, Template

from cfnbuild.errors import InputError, LogicalIdClash
from cfnbuild.naming import export_name
from cfnbuild.stateful import METADATA_KEY, retention_policy
from cfnbuild.tags import apply_tags, standard_tags

ResourceT = TypeVar("ResourceT", bound=AWSObject)

_NAMESPACES = {
    "resource": "resource",
    "parameter": "resource",
    "mapping": "resource",
    "condition": "condition",
    "rule": "rule",
    "output": "output",
}


class Stack:
    """One CloudFormation template assembled from blueprints.

    ``name`` is the stack's short name (``output/<env>/<name>.json``); the deployed stack's name
    is chosen at deploy time, and everything that needs it uses ``AWS::StackName``.
    """

    def __init__(
        self,
        name: str,
        *,
        description: str,
        project: str,
        environment: str,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.environment = environment
        self.tags = standard_tags(project, environment, tags)
        self.template = Template(Description=description)
        self.template.set_version("2010-09-09")
        self._owners: dict[tuple[str, str], str] = {}
        self._before_render: list[Callable[[], None]] = []

    def _claim(self, kind: str, logical_id: str, owner: str) -> None:
        key = (_NAMESPACES[kind], logical_id)
        if key in self._owners:
            raise LogicalIdClash(
                f"logical ID {logical_id!r} is claimed twice in stack {self.name!r}: "
                f"by {self._owners[key]} and by {owner} ({kind}); give one of them another "
                "name or prefix"
            )
        self._owners[key] = owner

    def add_resource(self, resource: ResourceT, *, owner: str, stateful: bool = False) -> ResourceT:
        """Add ``resource``; mark it ``stateful`` to keep its data on delete and replacement."""
        self._claim("resource", resource.title, owner)
        if stateful:
            policy = retention_policy(resource.resource_type)
            resource.DeletionPolicy = policy
            resource.UpdateReplacePolicy = policy
            metadata = dict(getattr(resource, "Metadata", None) or {})
            metadata[METADATA_KEY] = {"stateful": True}
            resource.Metadata = metadata
        self.template.add_resource(resource)
        return resource

    def add_parameter(self, parameter: Parameter, *, owner: str) -> Parameter:
        """Add a template parameter."""
        self._claim("parameter", parameter.title, owner)
        self.template.add_parameter(parameter)
        return parameter

    def add_mapping(self, name: str, mapping: dict[str, Any], *, owner: str) -> None:
        """Add a template mapping."""
        self._claim("mapping", name, owner)
        self.template.add_mapping(name, mapping)

    def add_condition(self, name: str, condition: AWSHelperFn, *, owner: str) -> str:
        """Add a template condition; returns its name for ``Condition=`` and ``If``."""
        self._claim("condition", name, owner)
        self.template.add_condition(name, condition)
        return name

    def add_rule(self, name: str, rule: dict[str, Any], *, owner: str) -> None:
        """Add a template rule (checked by CloudFormation before any resource is touched)."""
        self._claim("rule", name, owner)
        self.template.add_rule(name, rule)

    def add_output(
        self,
        name: str,
        value: Any,
        description: str,
        *,
        owner: str,
        condition: str | None = None,
        export: bool = True,
    ) -> Output:
        """Add an output, exported as ``<stack name>-<name>`` unless ``export`` is false."""
        if not description:
            raise InputError(f"output {name!r} of {owner} needs a description")
        self._claim("output", name, owner)
        kwargs: dict[str, Any] = {"Value": value, "Description": description}
        if export:
            kwargs["Export"] = Export(export_name(name))
        if condition is not None:
            kwargs["Condition"] = condition
        output = Output(name, **kwargs)
        self.template.add_output(output)
        return output

    def skip_check(self, resource: AWSObject, check_id: str, reason: str) -> None:
        """Record in ``resource``'s Metadata that checkov's ``check_id`` does not apply, and why."""
        if len(reason.strip()) < 10:
            raise InputError(f"skipping {check_id} on {resource.title} needs a reason a reviewer can judge")
        metadata = copy.deepcopy(dict(getattr(resource, "Metadata", None) or {}))
        skips = metadata.setdefault("checkov", {}).setdefault("skip", [])
        skips.append({"id": check_id, "comment": reason.strip()})
        skips.sort(key=lambda item: item["id"])
        resource.Metadata = metadata

    def add_lookup(self, parameter: str, *, kind: str, **arguments: str) -> None:
        """Have the deploy engine look up ``parameter``'s value in the target region (see :mod:`cfnbuild.lookups`).

        Recorded, sorted, as ``Metadata.cfnbuild.lookups.<parameter> = {kind, **arguments}``.
        The parameter must already be in the stack, of Type String with Default ``""``: that
        empty value is what a lookup that cannot run (or a deploy without cfnbuild) passes.
        """
        from cfnbuild.lookups import LOOKUPS_KEY, check_lookup  # noqa: PLC0415  (only stacks with lookups load the registry)

        owner = self._owners.get(("resource", parameter), "the stack")
        declared = self.template.parameters.get(parameter)
        if not isinstance(declared, Parameter):
            raise InputError(f"lookup for {parameter!r} ({owner}): add the parameter before its lookup")
        if declared.properties.get("Type") != "String" or declared.properties.get("Default") != "":
            raise InputError(
                f"lookup for {parameter!r} ({owner}): give the parameter Type String and Default '' "
                "(the value used when the lookup cannot run)"
            )
        try:
            check_lookup(kind, arguments)
        except ValueError as exc:
            raise InputError(f"lookup for {parameter!r} ({owner}): {exc}") from None
        metadata = self.template.metadata.setdefault(METADATA_KEY, {})
        lookups = dict(metadata.get(LOOKUPS_KEY) or {})
        if parameter in lookups:
            raise InputError(f"lookup for {parameter!r} ({owner}): the parameter already has a lookup")
        lookups[parameter] = dict(sorted({"kind": kind, **arguments}.items()))
        metadata[LOOKUPS_KEY] = dict(sorted(lookups.items()))

    def add_artifact(self, parameter: str, *, bucket: AWSObject, builder: str, prefix: str) -> None:
        """Have the deploy engine build an artifact, upload it to ``bucket`` and pass its key as ``parameter``.

        ``builder`` is ``"package.module:function"`` (see :mod:`cfnbuild.deploy.artifacts`); the
        bucket must be a resource of this stack. Recorded as ``Metadata.cfnbuild.artifacts``.
        """
        owner = self._owners.get(("resource", parameter), "the stack")
        if not isinstance(self.template.parameters.get(parameter), Parameter):
            raise InputError(f"artifact for {parameter!r} ({owner}): add the parameter before its artifact")
        if bucket.title not in self.template.resources or bucket.resource_type != "AWS::S3::Bucket":
            raise InputError(
                f"artifact for {parameter!r} ({owner}): the bucket must be an AWS::S3::Bucket of this stack"
            )
        if ":" not in builder:
            raise InputError(f"artifact for {parameter!r} ({owner}): give the builder as 'package.module:function'")
        metadata = self.template.metadata.setdefault(METADATA_KEY, {})
        artifacts = dict(metadata.get("artifacts") or {})
        artifacts[parameter] = {"bucket": bucket.title, "builder": builder, "prefix": prefix}
        metadata["artifacts"] = dict(sorted(artifacts.items()))

    def before_render(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` before each render (e.g. to attach policies granted after a role was made)."""
        self._before_render.append(hook)

    def to_dict(self) -> dict[str, Any]:
        """The rendered template: every hook run, every taggable resource tagged."""
        for hook in self._before_render:
            hook()
        rendered: dict[str, Any] = copy.deepcopy(self.template.to_dict())
        for resource in rendered.get("Resources", {}).values():
            properties = resource.setdefault("Properties", {})
            apply_tags(resource["Type"], properties, self.tags)
            if not properties:
                del resource["Properties"]
        return rendered

    def to_json(self) -> str:
        """Deterministic JSON: sorted keys, two-space indent, ASCII only, one trailing newline."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=True) + "\n"
