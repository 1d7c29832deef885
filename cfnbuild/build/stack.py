"""A stack: blueprints composed into one CloudFormation template.

The stack owns every logical ID. Resources, parameters and mappings share one namespace;
conditions, rules and outputs each have their own, as in CloudFormation. A second claim on an ID
is an error that names both claimants. Rendering applies the standard tags, then sorts keys, so
the same inputs give byte-identical JSON on every machine. An expected failure while a stack is
built or rendered is one line naming the environment, the stack and the part at fault (see
:func:`building`).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from troposphere import AWSHelperFn, AWSObject, BaseAWSObject, Export, Output, Parameter, Ref, Template

from cfnbuild.build.external import Resource, StackResource
from cfnbuild.build.naming import export_name, logical_id
from cfnbuild.build.references import INPUTS_KEY, StackInput
from cfnbuild.build.stateful import METADATA_KEY, deletion_policy, update_replace_policy
from cfnbuild.build.tags import apply_tags, standard_tags
from cfnbuild.errors import CfnbuildError, ConfigError, InputError, LogicalIdClash, UsageError

ResourceT = TypeVar("ResourceT", bound=AWSObject)

# A rule pack's rule id: "AwsSolutions-RDS14", "NIST.800.53.R5-S3BucketReplicationEnabled".
_RULE_ID = re.compile(r"[A-Za-z][\w.]*-\w+")

_NAMESPACES = {
    "resource": "resource",
    "parameter": "resource",
    "mapping": "resource",
    "condition": "condition",
    "rule": "rule",
    "output": "output",
}


# The class attribute by which error messages recognise a blueprint among the frames that built.
BLUEPRINT_MARK = "_cfnbuild_blueprint"


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
                f"logical ID {logical_id!r} is claimed twice: "
                f"by {self._owners[key]} and by {owner} ({kind}); give one of them another "
                "name or prefix"
            )
        self._owners[key] = owner

    def add_resource(self, resource: ResourceT, *, owner: str, stateful: bool = False) -> ResourceT:
        """Add ``resource``; mark it ``stateful`` to keep its data on delete and replacement."""
        self._claim("resource", resource.title, owner)
        if stateful:
            resource.DeletionPolicy = deletion_policy(resource.resource_type)
            resource.UpdateReplacePolicy = update_replace_policy(resource.resource_type)
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
        export: bool = False,
    ) -> Output:
        """Add an output; with ``export=True`` also an ``Export`` named ``<stack name>-<name>``.

        No Export by default: the project's other stacks take an output as a parameter
        (:meth:`use`), and an export locks its producer — CloudFormation refuses to change or
        delete an output another stack imports, and to delete the stack
        (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-stack-exports.html).
        Export only what a stack outside the project must import with ``Fn::ImportValue``.
        """
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

    def use(self, stack: str, output: str, *, owner: str = "the stack function") -> Ref:
        """A ``Ref`` to output ``output`` of the project's stack ``stack``, taken as a parameter of this one.

        The parameter is ``<Stack><Output>`` (``use("network", "VpcId")`` → ``NetworkVpcId``), of
        Type String, recorded as ``Metadata.cfnbuild.inputs`` (:mod:`cfnbuild.build.references`):
        ``cfnbuild deploy`` fills it from ``stack``'s deployed outputs, and the build refuses an
        output ``stack`` does not declare and stacks that use each other in a circle. Using the
        same output twice gives the same parameter. No ``Fn::ImportValue``: removing this stack
        never locks ``stack``'s outputs.
        """
        if stack == self.name:
            raise InputError(f"{owner} uses output {output!r} of its own stack {stack!r}; reference it directly")
        name = _parameter_name(stack, output)
        wanted = StackInput(name, stack, output)
        metadata = self.template.metadata.setdefault(METADATA_KEY, {})
        inputs = dict(metadata.get(INPUTS_KEY) or {})
        if name in inputs:
            if inputs[name] != wanted.to_json():
                raise InputError(f"{owner}: parameter {name} already takes {inputs[name]}; not {wanted.to_json()}")
            return Ref(name)
        description = f"Output {output} of stack {stack}; cfnbuild deploy fills it from the deployed {stack} stack."
        self.add_parameter(Parameter(name, Type="String", Description=description), owner=owner)
        inputs[name] = wanted.to_json()
        metadata[INPUTS_KEY] = dict(sorted(inputs.items()))
        return Ref(name)

    def use_resource(
        self,
        stack: str,
        logical_id: str,
        resource_type: str,
        *,
        ref: str,
        arn: str | None = None,
        owner: str = "the stack function",
    ) -> StackResource:
        """A handle on resource ``logical_id`` (of ``resource_type``) of the project's stack ``stack``.

        ``ref`` names the output of ``stack`` holding the resource's ``Ref`` value and ``arn`` the
        one holding its ARN (omit it when ``Ref`` is the ARN, or when no grant needs the ARN: a log
        group's is built from its name); both are taken with :meth:`use`.
        Grant helpers and blueprints take the handle where they take a resource of this stack
        (see :mod:`cfnbuild.build.external`).
        """
        self.use(stack, ref, owner=owner)
        if arn:
            self.use(stack, arn, owner=owner)
        arn_parameter = _parameter_name(stack, arn) if arn else ""
        return StackResource(stack, logical_id, resource_type, _parameter_name(stack, ref), arn_parameter)

    def skip_check(self, resource: AWSObject, check_id: str, reason: str) -> None:
        """Record in ``resource``'s Metadata that checkov's ``check_id`` does not apply, and why."""
        if len(reason.strip()) < 10:
            raise InputError(f"skipping {check_id} on {resource.title} needs a reason a reviewer can judge")
        metadata = copy.deepcopy(dict(getattr(resource, "Metadata", None) or {}))
        skips = metadata.setdefault("checkov", {}).setdefault("skip", [])
        skips.append({"id": check_id, "comment": reason.strip()})
        skips.sort(key=lambda item: item["id"])
        resource.Metadata = metadata

    def accept_finding(
        self, resource: AWSObject, rules: Iterable[str], reason: str, *, applies_to: Iterable[str] = ()
    ) -> None:
        """Record in ``resource``'s Metadata that rule-pack findings ``rules`` are accepted, and why.

        Written where AWS's published rule packs (cdk-nag: AWS Solutions, NIST 800-53, HIPAA, PCI
        DSS) read a suppression: ``{"cdk_nag": {"rules_to_suppress": [{"id", "reason"}]}}``, with
        ``applies_to`` naming the findings of a rule that reports several per resource (e.g. the
        wildcard ``Resource::<Bucket.Arn>/releases/*`` of AwsSolutions-IAM5). ``tests/rulepacks``
        runs the packs; the README's Security section lists every accepted finding.
        """
        if len(reason.strip()) < 20:
            raise InputError(f"accepting {list(rules)} on {resource.title} needs a reason a reviewer can judge")
        metadata = copy.deepcopy(dict(getattr(resource, "Metadata", None) or {}))
        accepted = metadata.setdefault("cdk_nag", {}).setdefault("rules_to_suppress", [])
        for rule in rules:
            if not _RULE_ID.fullmatch(rule):
                raise InputError(f"{rule!r} on {resource.title} is not a rule id such as 'AwsSolutions-RDS14'")
            entry: dict[str, Any] = {"id": rule, "reason": reason.strip()}
            if applies_to:
                entry["applies_to"] = sorted(applies_to)
            accepted.append(entry)
        accepted.sort(key=lambda item: (item["id"], item.get("applies_to", [])))
        resource.Metadata = metadata

    def add_lookup(self, parameter: str, *, kind: str, **arguments: str) -> None:
        """Have the deploy engine look up ``parameter``'s value in the target region (:mod:`cfnbuild.deploy.lookups`).

        Recorded, sorted, as ``Metadata.cfnbuild.lookups.<parameter> = {kind, **arguments}``.
        The parameter must already be in the stack, of Type String with Default ``""``: that
        empty value is what a lookup that cannot run (or a deploy without cfnbuild) passes.
        """
        from cfnbuild.build.lookups import LOOKUPS_KEY, check_lookup  # noqa: PLC0415  (only stacks with lookups load the registry)

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

    def add_artifact(self, parameter: str, *, bucket: Resource, builder: str, prefix: str) -> None:
        """Have the deploy engine build an artifact, upload it to ``bucket`` and pass its key as ``parameter``.

        ``builder`` is ``"package.module:function"`` (see :mod:`cfnbuild.deploy.artifacts`); the
        bucket is a resource of this stack (recorded by logical ID) or a handle on one of another
        stack (recorded by the parameter carrying its name, known before this stack deploys).
        Recorded as ``Metadata.cfnbuild.artifacts``.
        """
        owner = self._owners.get(("resource", parameter), "the stack")
        if not isinstance(self.template.parameters.get(parameter), Parameter):
            raise InputError(f"artifact for {parameter!r} ({owner}): add the parameter before its artifact")
        where: dict[str, str]
        if isinstance(bucket, StackResource) and bucket.resource_type == "AWS::S3::Bucket":
            where = {"bucket_parameter": bucket.ref_parameter}
        elif isinstance(bucket, AWSObject) and bucket.title in self.template.resources:
            where = {"bucket": bucket.title}
        else:
            where = {}
        if not where or bucket.resource_type != "AWS::S3::Bucket":
            raise InputError(
                f"artifact for {parameter!r} ({owner}): the bucket must be an AWS::S3::Bucket of this stack "
                "or a handle on one of another stack (Stack.use_resource)"
            )
        if ":" not in builder:
            raise InputError(f"artifact for {parameter!r} ({owner}): give the builder as 'package.module:function'")
        metadata = self.template.metadata.setdefault(METADATA_KEY, {})
        artifacts = dict(metadata.get("artifacts") or {})
        artifacts[parameter] = {**where, "builder": builder, "prefix": prefix}
        metadata["artifacts"] = dict(sorted(artifacts.items()))

    def before_render(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` before each render (e.g. to attach policies granted after a role was made)."""
        self._before_render.append(hook)

    def to_dict(self) -> dict[str, Any]:
        """The rendered template: every hook run, every taggable resource tagged.

        troposphere checks required properties only now: a failure names the environment, the
        stack and the resource (see :func:`building`).
        """
        with building(self.environment, self.name, owners=self._owners):
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


def _parameter_name(stack: str, output: str) -> str:
    """The parameter :meth:`Stack.use` gives for ``output`` of ``stack``: ``<Stack><Output>``."""
    return logical_id(stack, output)


class BuildError(UsageError):
    """A stack could not be built for an environment: each line names both, then the part at fault and the fix."""

    def __init__(self, environment: str, stack: str, problems: Sequence[str], *, exit_code: int = 2) -> None:
        self.environment, self.stack, self.problems = environment, stack, list(problems)
        self.exit_code = exit_code
        super().__init__("\n".join(f"{environment}: stack {stack}: {problem}" for problem in problems))


# The exception types troposphere's property checks raise; raised by any other code they are bugs.
_TROPOSPHERE_ERRORS = (ValueError, TypeError, KeyError)
# What troposphere writes to stderr before re-raising a property validator's exception.
_VALIDATOR_NOTE = re.compile(r"^<class '[\w.]+'>: \S* function validator '\w+' threw exception:$")


@contextlib.contextmanager
def building(environment: str, stack: str, *, owners: Mapping[tuple[str, str], str] | None = None) -> Iterator[None]:
    """Name the environment and the stack in an expected failure of building or rendering ``stack``.

    cfnbuild's own errors (a blueprint's refused inputs, a logical ID clash) and troposphere's
    property checks (ValueError, TypeError or KeyError raised inside troposphere) become one
    :class:`BuildError` line each, naming the blueprint, the resource and the property it can find;
    ``owners`` maps ``(namespace, logical ID)`` to the blueprint that claimed it. Anything else
    (an AttributeError in a blueprint, a TypeError of its own) is a bug and keeps its traceback.
    A :class:`~cfnbuild.errors.ConfigError` already names its file and passes unchanged.
    """
    # troposphere prints a line of its own when a property validator fails; the error line says
    # it all, so the note is dropped from what is passed on, and the rest written unchanged.
    captured = io.StringIO()
    translated = False
    try:
        with contextlib.redirect_stderr(captured):
            yield
    except (BuildError, ConfigError):
        raise
    except CfnbuildError as exc:
        translated = True
        raise BuildError(environment, stack, str(exc).splitlines(), exit_code=exc.exit_code) from exc
    except _TROPOSPHERE_ERRORS as exc:
        if not _raised_by_troposphere(exc.__traceback__):
            raise
        translated = True
        raise BuildError(environment, stack, [_explain_troposphere(exc, owners or {})]) from exc
    finally:
        lines = captured.getvalue().splitlines(keepends=True)
        sys.stderr.write("".join(line for line in lines if not (translated and _VALIDATOR_NOTE.match(line.strip()))))


def _frames(tb: TracebackType | None) -> list[tuple[str, str, dict[str, Any]]]:
    """(module, function, locals) of each frame of ``tb``, innermost first."""
    frames = []
    while tb is not None:
        frame = tb.tb_frame
        frames.append((str(frame.f_globals.get("__name__", "")), frame.f_code.co_name, frame.f_locals))
        tb = tb.tb_next
    return frames[::-1]


def _is_troposphere(module: str) -> bool:
    return module == "troposphere" or module.startswith("troposphere.")


def _raised_by_troposphere(tb: TracebackType | None) -> bool:
    """Whether troposphere's code raised the error: the innermost frame outside the standard library is its."""
    # A troposphere check may fail inside json or re; a blueprint's own int("x") has no frame of
    # troposphere's at all and stays a bug.
    for module, _, _ in _frames(tb):
        if module.partition(".")[0] not in sys.stdlib_module_names:
            return _is_troposphere(module)
    return False


def _explain_troposphere(exc: BaseException, owners: Mapping[tuple[str, str], str]) -> str:
    """One line for a troposphere check that failed: blueprint, resource, property, problem and fix."""
    frames = _frames(exc.__traceback__)
    objects = [f[2]["self"] for f in frames if _is_troposphere(f[0]) and isinstance(f[2].get("self"), BaseAWSObject)]
    inner = objects[0] if objects else None
    titled = next((obj for obj in objects if getattr(obj, "title", None)), None)
    owner = _blueprint(frames) or (owners.get(("resource", titled.title), "") if titled is not None else "")
    where = [owner] if owner else []
    if titled is not None:
        where.append(_describe(titled))
    if inner is not None and inner is not titled:
        where.append(f"in {_describe(inner)}")
    problem, fix = _problem(exc, frames, maker=owner or "the stack function")
    return ": ".join([*where, f"{problem}; {fix}"])


def _blueprint(frames: list[tuple[str, str, dict[str, Any]]]) -> str:
    """How errors name the innermost blueprint that was building, if one was."""
    # A blueprint class marks itself (cfnbuild.build.blueprint imports this module, not the reverse);
    # asked of the class, since a troposphere object half-built answers any attribute by recursing.
    owners: list[Any] = [f[2].get("self") for f in frames]
    return next((owner.owner for owner in owners if getattr(type(owner), BLUEPRINT_MARK, False)), "")


def _describe(obj: BaseAWSObject) -> str:
    resource_type = getattr(obj, "resource_type", None)
    title = getattr(obj, "title", None)
    if resource_type and title:
        return f"resource {title} ({resource_type})"
    kind = type(obj).__module__.removeprefix("troposphere").lstrip(".")
    name = f"{kind}.{type(obj).__name__}" if kind else type(obj).__name__
    return f"{name} {title}" if title else name


def _problem(exc: BaseException, frames: list[tuple[str, str, dict[str, Any]]], *, maker: str) -> tuple[str, str]:
    """(problem, fix) of a troposphere error, read from the frame of the check that failed."""
    message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    for module, function, local in frames:
        if not _is_troposphere(module):
            continue
        if function == "_raise_type":
            prop, expected = local.get("name"), _type_words(local.get("expected_type"))
            got = _value_words(local.get("value"))
            return f"{prop} is {got}, expected {expected}", f"give {prop} a value of type {expected}"
        if function == "_validate_props":
            prop = local.get("k")
            return f"required property {prop} is not set", f"set {prop} where {maker} makes it"
        if function == "validate_title":
            title = getattr(local.get("self"), "title", None)
            return f"logical ID {title!r} is not alphanumeric", "use letters and digits only, as self.lid() makes"
        if function == "__setattr__" and "name" in local:
            prop = local["name"]
            validator = getattr(local.get("expected_type"), "__name__", "property")
            reason = message or f"troposphere's {validator} check refuses it"
            return (
                f"{prop} is {_value_words(local.get('value'))}: {reason}",
                f"change the {prop} {maker} sets (or the input it comes from)",
            )
    return message or type(exc).__name__, f"change what {maker} passes to troposphere"


def _type_words(expected: Any) -> str:
    if isinstance(expected, list):
        return "list of " + " or ".join(_type_words(item) for item in expected)
    if isinstance(expected, tuple):
        return " or ".join(_type_words(item) for item in expected)
    return str(getattr(expected, "__name__", expected))


def _value_words(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"
