"""What a deploy sends with its template, and the checks on it.

Parameters from the config, ``--param``, the outputs of the upstream stacks a template takes
(:mod:`cfnbuild.build.references`), lookups and the stack's previous values; reserved example
names refused against AWS.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cfnbuild.build.references import StackInput, template_inputs, waiting_value
from cfnbuild.deploy.base import CACHE_DIR, EngineBase
from cfnbuild.deploy.examples import reserved_examples
from cfnbuild.deploy.lookups import LookupResults, resolve_lookups
from cfnbuild.deploy.model import (
    DeployedStack,
    Refused,
    Request,
)
from cfnbuild.deploy.standins import stand_in_zones
from cfnbuild.errors import UsageError


class ParameterSteps(EngineBase):
    """Resolving and checking the parameters a change set is created with."""

    def _refuse_examples(self, request: Request, template: Mapping[str, Any], rel: Path) -> None:
        """Refuse, before any AWS call, a domain or address reserved for examples (:mod:`.examples`)."""
        declared = template.get("Parameters", {})
        given = {name: value for name, (value, _) in self._given_parameters(request, declared).items()}
        found = reserved_examples(template, given)
        if found:
            places = ", ".join(f"{place} is {value!r}" for place, value in found)
            raise UsageError(
                f"{rel}: {places}: reserved example names (RFC 2606) that no one owns — a certificate for such a "
                "domain never validates and the deploy waits for hours, alerts to such an address reach no one; "
                f"set your own in config/{request.environment}.toml (or --param), or deploy it with --local"
            )

    def _parameters(
        self, request: Request, template: Mapping[str, Any], deployed: DeployedStack | None
    ) -> tuple[dict[str, str], frozenset[str]]:
        declared: dict[str, Any] = template.get("Parameters", {})
        given = self._given_parameters(request, declared)
        lookups = resolve_lookups(
            template,
            region=self.aws.target.region,
            session=self.aws.session(),
            cache_dir=self.project.root / CACHE_DIR / "lookups",
            endpoint_url=self.aws.target.endpoint_url,
            overrides={name: value for name, (value, _) in given.items()},
            deployed=deployed.parameters if deployed is not None else None,
        )
        self._say_lookups(lookups)
        inputs = template_inputs(template)
        self.waiting = {}
        values: dict[str, str] = {}
        previous: set[str] = set()
        kept = deployed.parameters if deployed is not None else {}
        for name, definition in declared.items():
            if name in given:
                values[name] = given[name][0]
                check_parameter(name, definition, values[name], given[name][1])
            elif name in inputs:
                values[name] = self._upstream_output(request, inputs[name])
            elif name in lookups and lookups[name].source == "deployed" and name in kept:
                previous.add(name)  # a kept value: sent as UsePreviousValue, like any unchanged one
            elif name in lookups and lookups[name].source != "fallback":
                values[name] = lookups[name].value
            elif name in lookups and name in kept:
                previous.add(name)  # the lookup could not run: keep what the stack has
            elif name in lookups:
                values[name] = lookups[name].value
            elif "Default" in definition:
                continue  # CloudFormation applies the default
            elif deployed is not None and name in deployed.parameters:
                previous.add(name)
            else:
                raise UsageError(
                    f"parameter {name} has no default and no value; set it in config/{request.environment}.toml "
                    f"[deploy.parameters] or pass --param {name}=VALUE"
                )
        if self.aws.target.local:
            self._stand_in_zones(template, values, previous, kept)
        return values, frozenset(previous)

    def _upstream_output(self, request: Request, reference: StackInput) -> str:
        """The deployed value of the upstream output ``reference`` takes, in this region (DescribeStacks).

        Not deployed yet: the plan shows where the value will come from (:attr:`waiting` says
        so, and a deploy refuses); deployed without that output: refused, naming both. Against the
        embedded emulator an output it does not return (moto leaves the types it has no model of,
        AWS::SecretsManager::Secret or AWS::RDS::DBCluster, placeholders without values) is sent as
        a stand-in value that says so (:func:`emulator_stand_in`), in one line, when the upstream's
        deployed template declares that output: the same template deploys on AWS, where the output
        has its value. An output the upstream does not declare is refused there too.
        """
        name = self.project.deploy_view(request.environment).settings.stack_name(reference.stack)
        upstream = self.describe(name)
        if upstream is None or upstream.status == "REVIEW_IN_PROGRESS":  # only a change set of its own so far
            self.waiting[reference.parameter] = reference.stack
            value = waiting_value(reference.stack)
            self.err.print(f"parameter {reference.parameter}: {value}; {name} comes first", markup=False)
            return value
        if reference.output not in upstream.outputs and self.aws.target.local and self._declares(name, reference):
            value = emulator_stand_in(reference)
            self.err.print(
                f"parameter {reference.parameter}: {value} (the emulator returns no output {reference.output} "
                f"of {name}; AWS does)",
                markup=False,
            )
            return value
        if reference.output not in upstream.outputs:
            raise UsageError(
                f"parameter {reference.parameter}: {name} ({upstream.status}) in {self.aws.target.region} returns no "
                f"output {reference.output}; deploy it first: cfnbuild deploy --env {request.environment} "
                f"--stack {reference.stack}"
            )
        value = upstream.outputs[reference.output]
        self.err.print(f"parameter {reference.parameter}: {value} (output {reference.output} of {name})", markup=False)
        return value

    def _declares(self, stack_name: str, reference: StackInput) -> bool:
        """Whether the deployed template of ``stack_name`` declares the output ``reference`` takes."""
        template = self.deployed_template(stack_name) or {}
        return reference.output in (template.get("Outputs") or {})

    def _refuse_waiting(self, request: Request, stack_name: str) -> None:
        """Refuse to deploy a stack whose upstream stacks are not deployed yet (their outputs are its inputs)."""
        if not self.waiting:
            return
        settings = self.project.deploy_view(request.environment).settings
        upstreams = sorted(set(self.waiting.values()))
        names = ", ".join(f"{s} ({settings.stack_name(s)})" for s in upstreams)
        raise Refused(
            f"{stack_name} takes outputs of {names}, not deployed yet in {self.aws.target.region}; deploy "
            f"{'it' if len(upstreams) == 1 else 'them'} first: cfnbuild deploy --env {request.environment} "
            f"--stack {upstreams[0]} (or 'cfnbuild deploy --env {request.environment}' for every stack in order)"
        )

    def _say_lookups(self, lookups: LookupResults) -> None:
        """One line per looked-up parameter: its value and where it came from, or why there is none."""
        for result in lookups.values():
            if self.aws.target.local and result.no_api:
                # One short line: the emulator has no such API; AWS would answer it.
                line = f"{result.parameter}: the emulator cannot look up {result.subject}; the region's default is used"
            else:
                line = str(result)
            self.err.print(f"parameter {line}", markup=False)

    def _stand_in_zones(
        self, template: Mapping[str, Any], values: dict[str, str], previous: set[str], kept: Mapping[str, str]
    ) -> None:
        """On the emulator, send a zone made there for each hosted zone it lacks (:mod:`.standins`)."""
        declared = template.get("Parameters", {})

        def value_of(name: str) -> str | None:
            if name in values:
                return values[name]
            if name in previous:
                return kept.get(name)
            default = declared.get(name, {}).get("Default")
            return None if default is None else str(default)

        for stand_in in stand_in_zones(template, value_of, self.aws.client("route53")):
            values[stand_in.parameter] = stand_in.zone_id
            previous.discard(stand_in.parameter)
            self.err.print(stand_in.line(), markup=False)

    def _given_parameters(self, request: Request, declared: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
        """Values from the config and ``--param``, each with where it came from, checked by name."""
        config = self.project.deploy_view(request.environment).settings
        given: dict[str, tuple[str, str]] = {}
        for name, value in config.deploy.parameters.items():
            given[name] = (value, f"config/{request.environment}.toml: deploy.parameters.{name}")
        for name, value in request.param_overrides.items():
            given[name] = (value, f"--param {name}")
        elsewhere: set[str] | None = None
        for name, (_, where) in list(given.items()):
            if name in declared:
                continue
            if elsewhere is None:
                elsewhere = self._declared_by_other_stacks(request)
            if name in elsewhere:
                # A value of the environment for a parameter another stack of the project declares.
                del given[name]
                continue
            known = ", ".join(sorted(declared)) or "(none)"
            raise UsageError(f"{where}: the template has no parameter {name!r}; it has: {known}")
        return given

    def _declared_by_other_stacks(self, request: Request) -> set[str]:
        """The parameters the environment's other stacks declare, as their written templates say."""
        view = self.project.deploy_view(request.environment)
        names: set[str] = set()
        for stack in view.stacks:
            path = self.project.template_path(request.environment, stack)
            if stack == request.stack or not path.is_file():
                continue
            try:
                template = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # that stack's own deploy says what is wrong with its template
            names |= set(template.get("Parameters") or {})
        return names


def emulator_stand_in(reference: StackInput) -> str:
    """The value sent to the emulator for an upstream output it does not return: it names the output."""
    return f"emulator-stand-in-{reference.stack}-{reference.output}"


def check_parameter(name: str, definition: Mapping[str, Any], value: str, where: str) -> None:
    """Reject a value the parameter's own constraints would reject, before AWS is asked."""
    allowed = definition.get("AllowedValues")
    if allowed and value not in [str(v) for v in allowed]:
        raise UsageError(f"{where}: {value!r} is not allowed for {name}; use one of {', '.join(map(str, allowed))}")
    pattern = definition.get("AllowedPattern")
    if pattern and not re.fullmatch(pattern, value):
        raise UsageError(f"{where}: {value!r} does not match {name}'s pattern {pattern}")
    if definition.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise UsageError(f"{where}: {name} is a Number; {value!r} is not") from None
        low, high = definition.get("MinValue"), definition.get("MaxValue")
        if (low is not None and number < float(low)) or (high is not None and number > float(high)):
            raise UsageError(f"{where}: {name} must be between {low} and {high}; got {value}")
    if "MinLength" in definition and len(value) < int(definition["MinLength"]):
        raise UsageError(f"{where}: {name} must be at least {definition['MinLength']} characters")
    if "MaxLength" in definition and len(value) > int(definition["MaxLength"]):
        raise UsageError(f"{where}: {name} must be at most {definition['MaxLength']} characters")
