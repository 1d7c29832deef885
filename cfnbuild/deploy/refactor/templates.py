"""The templates a stack refactor is created with: each stack's resources as deployed, in their new stacks.

Built from the DEPLOYED definitions, never the project's new ones, because a refactor may change
no resource's configuration (stack-refactoring.html). Each stack taking part gets:

- the resources it holds after the moves: those it keeps exactly as deployed, those it receives
  with their source stack's parameters, conditions, mappings and stack name written out
  (:mod:`.resolve`), without a ``Condition`` (a moved resource exists, so its condition was true);
- a ``Ref``/``Fn::GetAtt``/``${…}`` to a resource another stack now holds as ``Fn::ImportValue``
  of an export the holder's template adds (``Outputs`` with ``Export``; cross-stack references:
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference-importvalue.html);
- ``DependsOn`` on a resource in another stack dropped (the project's graph orders the stacks);
- a deployed stack keeps its Parameters, Conditions, Mappings and Rules as they are (a refactor
  may not change them) and its Outputs (refs to what left rewritten); a stack the refactor
  creates has none of them — CloudFormation takes no Parameters or Rules in a stack created by a
  refactor — and gets the project template's outputs that only name resources it holds, so the
  stacks that take them (``stack.use``) can be deployed first when the refactor is finished.

The finishing deploys (:mod:`.finish`) replace these templates with the project's.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cfnbuild.build.references import template_inputs
from cfnbuild.deploy.refactor.moves import DeployedStack, Layout
from cfnbuild.deploy.refactor.resolve import SHARED_PSEUDO, SUB_VARIABLE, Decided, resolve

OUTPUT_PREFIX = "Refactor"


@dataclass
class Exports:
    """The exports the refactor adds: (holder, logical ID, attribute or "") → export name."""

    names: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def name(self, holder: str, logical_id: str, attribute: str) -> str:
        """The export of ``logical_id``'s ``attribute`` (its Ref when empty) in ``holder``, added if new."""
        key = (holder, logical_id, attribute)
        if key not in self.names:
            suffix = f"-{re.sub(r'[^A-Za-z0-9]+', '-', attribute)}" if attribute else ""
            self.names[key] = f"{holder}-{logical_id}{suffix}"
        return self.names[key]

    def outputs(self, holder: str) -> dict[str, Any]:
        """The Outputs entries ``holder``'s template gets for its exports."""
        found: dict[str, Any] = {}
        for (stack, logical_id, attribute), export in sorted(self.names.items()):
            if stack != holder:
                continue
            key = OUTPUT_PREFIX + re.sub(r"[^A-Za-z0-9]", "", logical_id + attribute)
            value = {"Fn::GetAtt": [logical_id, attribute]} if attribute else {"Ref": logical_id}
            found[key] = {"Value": value, "Export": {"Name": export}}
        return found


def refactor_templates(
    layout: Layout, deployed: Mapping[str, DeployedStack | None], wanted: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Stack name → the template it is given in the refactor, for every stack of ``layout``."""
    exports = Exports()
    built: dict[str, dict[str, Any]] = {}
    for stack in layout.stacks:
        built[stack] = _template(stack, layout, deployed, wanted, exports)
    for stack, template in built.items():
        added = exports.outputs(stack)
        if added:
            template["Outputs"] = {**template.get("Outputs", {}), **added}
    return built


def _template(
    stack: str,
    layout: Layout,
    deployed: Mapping[str, DeployedStack | None],
    wanted: Mapping[str, Mapping[str, Any]],
    exports: Exports,
) -> dict[str, Any]:
    live = deployed.get(stack)
    resources: dict[str, Any] = {}
    for logical_id in layout.holders[stack]:
        move = next((m for m in layout.moves if m.logical_id == logical_id), None)
        origin = deployed[move.source] if move else live
        assert origin is not None  # noqa: S101  (a held resource is deployed somewhere: compute_moves placed it)
        definition = copy.deepcopy(dict(origin.template["Resources"][logical_id]))
        if move is not None:
            decided = Decided.of(origin.template, origin.parameters, stack_name=origin.name, stack_id=origin.stack_id)
            definition.pop("Condition", None)
            definition = resolve(definition, decided, f"{logical_id} of {origin.name}")
        resources[logical_id] = _rewire(definition, stack, layout, exports)
    if live is not None:
        template = {k: copy.deepcopy(v) for k, v in live.template.items() if k != "Resources"}
        template["Resources"] = resources
        if "Outputs" in template:
            template["Outputs"] = _rewrite(template["Outputs"], stack, layout, exports)
        return template
    project = wanted[stack]
    template = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}
    if project.get("Description"):
        template["Description"] = project["Description"]
    outputs = _carried_outputs(project, set(layout.holders[stack]))
    if outputs:
        template["Outputs"] = outputs
    return template


def _rewire(definition: dict[str, Any], stack: str, layout: Layout, exports: Exports) -> dict[str, Any]:
    """``definition`` with references to other stacks' resources imported and cross-stack DependsOn dropped."""
    depends = definition.get("DependsOn")
    if depends is not None:
        names = [depends] if isinstance(depends, str) else list(depends)
        kept = [name for name in names if layout.holder(name) == stack]
        if kept:
            definition["DependsOn"] = kept if isinstance(depends, list) else kept[0]
        else:
            del definition["DependsOn"]
    return {k: (v if k == "DependsOn" else _rewrite(v, stack, layout, exports)) for k, v in definition.items()}


def _rewrite(node: Any, stack: str, layout: Layout, exports: Exports) -> Any:
    if isinstance(node, list):
        return [_rewrite(item, stack, layout, exports) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((key, argument),) = node.items()
        target = _target(key, argument)
        if target is not None:
            holder = layout.holder(target[0])
            if holder is not None and holder != stack:
                return {"Fn::ImportValue": exports.name(holder, *target)}
            return node
        if key == "Fn::Sub":
            return _rewrite_sub(argument, stack, layout, exports)
    return {key: _rewrite(value, stack, layout, exports) for key, value in node.items()}


def _target(key: str, argument: Any) -> tuple[str, str] | None:
    """(logical ID, attribute) a Ref or GetAtt names; None for anything else."""
    if key == "Ref" and isinstance(argument, str) and not argument.startswith("AWS::"):
        return argument, ""
    if key == "Fn::GetAtt":
        parts = argument.split(".", 1) if isinstance(argument, str) else list(argument)
        if len(parts) == 2 and all(isinstance(p, str) for p in parts):
            return parts[0], parts[1]
    return None


def _rewrite_sub(argument: Any, stack: str, layout: Layout, exports: Exports) -> Any:
    text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], dict(argument[1]))
    variables = {name: _rewrite(value, stack, layout, exports) for name, value in variables.items()}
    imported: dict[str, Any] = {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables or name in SHARED_PSEUDO:
            return match.group(0)
        logical_id, _, attribute = name.partition(".")
        holder = layout.holder(logical_id)
        if holder is None or holder == stack:
            return match.group(0)
        variable = OUTPUT_PREFIX + re.sub(r"[^A-Za-z0-9]", "", name)
        imported[variable] = {"Fn::ImportValue": exports.name(holder, logical_id, attribute)}
        return "${" + variable + "}"

    written = SUB_VARIABLE.sub(replace, str(text))
    merged = {**variables, **imported}
    return {"Fn::Sub": [written, merged] if merged else written}


def _carried_outputs(project: Mapping[str, Any], held: set[str]) -> dict[str, Any]:
    """The project template's outputs a new stack can declare already, without their Export.

    Those whose value names only resources it holds (and the pseudo parameters every stack
    shares): they have their final value already, so a stack that takes one as its parameter
    before this stack's own finishing deploy takes the right value. The Export comes with that
    deploy (a refactor adds no more exports than it needs).
    """
    carried = {}
    for name, output in (project.get("Outputs") or {}).items():
        if "Condition" in output:
            continue
        names = _names(output.get("Value"))
        if names and names <= held:
            carried[name] = {k: v for k, v in output.items() if k in ("Value", "Description")}
    return carried


def missing_inputs(
    templates: Mapping[str, Mapping[str, Any]], wanted: Mapping[str, Mapping[str, Any]], names: Mapping[str, str]
) -> list[str]:
    """What the finishing deploys would miss: each output a project stack takes of a refactor stack that will lack it.

    ``names`` maps the project's stacks to their deployed names; ``templates`` are the refactor's.
    """
    missing = []
    for stack, name in names.items():
        for used in template_inputs(wanted[name]).values():
            upstream = names.get(used.stack, "")
            if upstream in templates and used.output not in (templates[upstream].get("Outputs") or {}):
                missing.append(f"{stack} takes output {used.output} of {used.stack}")
    return missing


def _names(node: Any) -> set[str] | None:
    """The logical IDs ``node`` refers to; None when it uses a parameter-like Ref or a stack pseudo parameter."""
    found: set[str] = set()
    todo = [node]
    while todo:
        item = todo.pop()
        if isinstance(item, list):
            todo.extend(item)
        elif isinstance(item, dict):
            if len(item) == 1 and (target := _target(*next(iter(item.items())))) is not None:
                found.add(target[0])
                continue
            if list(item) == ["Ref"]:
                if item["Ref"] not in SHARED_PSEUDO:
                    return None
                continue
            if list(item) == ["Fn::Sub"]:
                text = item["Fn::Sub"] if isinstance(item["Fn::Sub"], str) else item["Fn::Sub"][0]
                for variable in SUB_VARIABLE.findall(str(text)):
                    if variable.startswith("AWS::"):
                        if variable not in SHARED_PSEUDO:
                            return None
                    else:
                        found.add(variable.partition(".")[0])
                if not isinstance(item["Fn::Sub"], str):
                    todo.append(list(item["Fn::Sub"][1].values()))
                continue
            todo.extend(item.values())
    return found
