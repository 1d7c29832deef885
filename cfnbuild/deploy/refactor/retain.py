"""The templates and the stack policy of the retain-and-import path, from the deployed stack and the project's.

Moving resources between stacks without a stack refactor is the documented
retain-and-import sequence (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/refactor-stacks.html):

- phase A (:func:`retain_template`): the deployed template with ``DeletionPolicy`` and
  ``UpdateReplacePolicy`` ``Retain`` on every resource that will be imported, and an output for
  every ``Ref``/``Fn::GetAtt`` of a leaving resource that a staying one (or an output) uses, so
  the values can be read back (DescribeStacks);
- phase B (:func:`removal_template`): the leaving resources removed (the retained ones stay in
  AWS, out of any stack; the others are deleted), the references to them written as the values
  phase A returned, and a record in the template's Metadata of what is imported where, by which
  identifier — so a later run resumes from the stacks alone;
- phase C (:func:`import_template`): for each new stack, its project template reduced to the
  imported resources, each with a ``DeletionPolicy`` (import requires one), without Outputs
  and Transform (an IMPORT change set may add only the imported resources:
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/resource-import.html); the
  project's own deploy adds the rest (phase D).

While resources leave a stack whose policy denies ``Update:Delete`` of stateful ones, the policy
is replaced for that update (:func:`temporary_policy`): a Deny overrides any Allow in a stack
policy (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/protect-stack-resources.html),
so the leaving logical IDs are taken out of the Deny statements and allowed ``Update:Delete``
explicitly; every one of them is ``Retain`` (checked on the deployed template before).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cfnbuild.build.stateful import is_stateful
from cfnbuild.deploy.refactor.importable import deferred, identifier, transformed, type_support
from cfnbuild.deploy.refactor.moves import DeployedStack, Layout, RefactorRefused
from cfnbuild.deploy.refactor.resolve import SHARED_PSEUDO, SUB_VARIABLE, Decided
from cfnbuild.deploy.refactor.templates import _target

RECORD_KEY = "CfnbuildRetainAndImport"  # the source template's Metadata entry phase B leaves
READ_PREFIX = "CfnbuildRead"  # the outputs phase A adds
RETAIN = "Retain"


@dataclass(frozen=True)
class ImportPlan:
    """What the retain-and-import path does with the resources leaving one deployed stack."""

    source: str
    imports: Mapping[str, Mapping[str, dict[str, Any]]]  # new stack → logical ID → {Type, Identifier}
    recreated: Mapping[str, str]  # leaving logical ID (stateless) → why it is deleted and created again
    destinations: Mapping[str, str] = field(default_factory=dict)  # leaving logical ID → its new stack

    @property
    def imported(self) -> list[str]:
        """Every logical ID imported, in stack order."""
        return [lid for ids in self.imports.values() for lid in ids]

    @property
    def leaving(self) -> list[str]:
        """Every logical ID that leaves the source."""
        return sorted(self.destinations)

    def identifier_reads(self) -> dict[str, tuple[str, str]]:
        """Output key → (logical ID, attribute) of each identifier value phase A must read back."""
        pairs = {pair for ids in self.imports.values() for v in ids.values() for pair in deferred(v["Identifier"])}
        return {read_key(lid, attr): (lid, attr) for lid, attr in sorted(pairs)}

    def with_identifiers(self, outputs: Mapping[str, str]) -> ImportPlan:
        """The plan with every identifier value read back from phase A's ``outputs`` written in."""
        missing = [f"{lid}.{attr}" for key, (lid, attr) in self.identifier_reads().items() if key not in outputs]
        if missing:
            raise RefactorRefused(
                f"{self.source} returns no output for {', '.join(missing)}, part of an identifier to import by; "
                "phase A did not finish: run again (it updates the stack with those outputs first)"
            )
        imports = {
            stack: {
                lid: {**v, "Identifier": {k: _read(x, outputs) for k, x in v["Identifier"].items()}}
                for lid, v in ids.items()
            }
            for stack, ids in self.imports.items()
        }
        return ImportPlan(self.source, imports, self.recreated, self.destinations)

    def record(self) -> dict[str, Any]:
        """What phase B writes into the source's Metadata."""
        return {
            "Imports": {s: dict(ids) for s, ids in self.imports.items()},
            "Recreated": dict(self.recreated),
            "Destinations": dict(self.destinations),
        }

    @classmethod
    def from_record(cls, source: str, record: Mapping[str, Any]) -> ImportPlan:
        """The plan a phase B of an earlier run recorded."""
        imports = {str(s): dict(ids) for s, ids in (record.get("Imports") or {}).items()}
        return cls(source, imports, dict(record.get("Recreated") or {}), dict(record.get("Destinations") or {}))


def plan_import(
    layout: Layout,
    source: DeployedStack,
    physical: Mapping[str, str],
    wanted: Mapping[str, Mapping[str, Any]],
    region: str,
) -> ImportPlan:
    """Which leaving resources are imported (by which identifier) and which are deleted and created again.

    Refused in one line: moves out of more than one stack or into a stack that exists, and a
    stateful resource that cannot be imported (named, with the reason).
    """
    sources = {m.source for m in layout.moves}
    existing = [m.destination for m in layout.moves if m.destination not in layout.new_stacks]
    if sources != {source.name} or existing:
        raise RefactorRefused(
            f"retain-and-import moves resources out of one deployed stack into stacks that do not exist yet, but these "
            f"moves leave {', '.join(sorted(sources))} and reach {', '.join(sorted(set(existing))) or 'new stacks'}; "
            "upgrade one stack at a time"
        )
    decided = Decided.of(source.template, source.parameters, stack_name=source.name, stack_id=source.stack_id)
    why: dict[str, str] = {}
    found: dict[str, dict[str, Any]] = {}
    for move in layout.moves:
        support = type_support(move.resource_type, region)
        definition = source.template["Resources"][move.logical_id]
        ident = identifier(move.logical_id, definition, support, physical, decided)
        if ident is None:
            why[move.logical_id] = (
                f"Transform {source.template.get('Transform')} makes what it needs, and an import takes no transform"
                if transformed(definition)
                else f"{move.resource_type} cannot be imported (its registry schema has no read handler)"
                if not support.readable
                else f"its identifier ({', '.join(support.identifier)}) is not in its deployed definition"
            )
        else:
            found[move.logical_id] = {"Type": move.resource_type, "Identifier": ident}
    destinations = {m.logical_id: m.destination for m in layout.moves}
    _cascade(found, why, destinations, wanted)
    _refuse_stateful(why, source, destinations, wanted)
    imports = {s: {lid: found[lid] for lid in sorted(found) if destinations[lid] == s} for s in layout.new_stacks}
    return ImportPlan(source.name, {s: ids for s, ids in imports.items() if ids}, why, destinations)


def _cascade(
    found: dict[str, dict[str, Any]],
    why: dict[str, str],
    destinations: Mapping[str, str],
    wanted: Mapping[str, Mapping[str, Any]],
) -> None:
    """Not imported either: a resource whose new definition uses one of its stack that is created again."""
    changed = True
    while changed:
        changed = False
        for lid in sorted(found):
            definition = wanted[destinations[lid]]["Resources"][lid]
            uses = {t for t, _ in references(definition.get("Properties") or {})}
            gone = sorted(u for u in uses if u in why and destinations.get(u) == destinations[lid])
            if gone:
                why[lid] = f"its definition uses {gone[0]}, which is created again"
                del found[lid]
                changed = True


def _refuse_stateful(
    why: Mapping[str, str], source: DeployedStack, destinations: Mapping[str, str], wanted: Mapping[str, Any]
) -> None:
    stateful = [
        f"{lid} ({why[lid]})"
        for lid in sorted(why)
        if is_stateful(source.template["Resources"][lid]) or is_stateful(wanted[destinations[lid]]["Resources"][lid])
    ]
    if stateful:
        raise RefactorRefused(
            f"stateful {', '.join(stateful)} would have to be deleted and created again, losing its data; nothing was "
            "changed: keep it in the stack it is in, or move it with a release that makes it importable"
        )


def references(node: Any) -> set[tuple[str, str]]:
    """The (logical ID, attribute or "") every ``Ref``, ``Fn::GetAtt`` and ``${…}`` in ``node`` names."""
    found: set[tuple[str, str]] = set()
    todo = [node]
    while todo:
        item = todo.pop()
        if isinstance(item, list):
            todo.extend(item)
        elif isinstance(item, dict):
            if len(item) == 1:
                ((key, argument),) = item.items()
                target = _target(key, argument)
                if target is not None:
                    found.add(target)
                    continue
                if key == "Fn::Sub":
                    text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
                    for name in SUB_VARIABLE.findall(str(text)):
                        if name not in variables and not name.startswith("AWS::"):
                            logical_id, _, attribute = name.partition(".")
                            found.add((logical_id, attribute))
                    todo.append(list(dict(variables).values()))
                    continue
            todo.extend(item.values())
    return found


def read_key(logical_id: str, attribute: str) -> str:
    """The phase A output that returns ``logical_id``'s ``attribute`` (its Ref when empty)."""
    return READ_PREFIX + re.sub(r"[^A-Za-z0-9]", "", logical_id + (f"Attr{attribute}" if attribute else "Ref"))


def reads(template: Mapping[str, Any], leaving: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Output key → (logical ID, attribute) of every value of a leaving resource the staying ones use."""
    gone = set(leaving)
    staying = {lid: r for lid, r in (template.get("Resources") or {}).items() if lid not in gone}
    used: set[tuple[str, str]] = set()
    for resource in staying.values():
        used |= references({k: v for k, v in resource.items() if k != "DependsOn"})
    used |= references({k: v for k, v in (template.get("Outputs") or {}).items() if not k.startswith(READ_PREFIX)})
    return {read_key(lid, attr): (lid, attr) for lid, attr in sorted(used) if lid in gone}


def _read(value: Any, outputs: Mapping[str, str]) -> Any:
    """An identifier value, or the output phase A returned for it when it was to be read back."""
    pairs = deferred({"value": value})
    return outputs[read_key(*pairs[0])] if pairs else value


def retain_template(template: Mapping[str, Any], plan: ImportPlan) -> dict[str, Any]:
    """Phase A: the deployed template, the imported resources Retain, the values the staying ones use as outputs."""
    written = copy.deepcopy(dict(template))
    for lid in plan.imported:
        written["Resources"][lid]["DeletionPolicy"] = RETAIN
        written["Resources"][lid]["UpdateReplacePolicy"] = RETAIN
    outputs = dict(written.get("Outputs") or {})
    for key, (lid, attr) in {**reads(template, plan.leaving), **plan.identifier_reads()}.items():
        outputs[key] = {"Value": {"Fn::GetAtt": [lid, attr]} if attr else {"Ref": lid}}
    if outputs:
        written["Outputs"] = outputs
    return written


def phase_a_done(template: Mapping[str, Any], plan: ImportPlan) -> bool:
    """Whether the deployed template is phase A's already: every imported resource Retain, every read an output."""
    resources = template.get("Resources") or {}
    retained = all(
        (resources.get(lid) or {}).get("DeletionPolicy") == RETAIN
        and (resources.get(lid) or {}).get("UpdateReplacePolicy") == RETAIN
        for lid in plan.imported
    )
    wanted = set(reads(template, plan.leaving)) | set(plan.identifier_reads())
    return retained and wanted <= set(template.get("Outputs") or {})


def not_retained(template: Mapping[str, Any], plan: ImportPlan) -> list[str]:
    """The imported logical IDs the deployed template does not (yet) give DeletionPolicy Retain."""
    resources = template.get("Resources") or {}
    return [lid for lid in plan.imported if (resources.get(lid) or {}).get("DeletionPolicy") != RETAIN]


def removal_template(template: Mapping[str, Any], plan: ImportPlan, outputs: Mapping[str, str]) -> dict[str, Any]:
    """Phase B: the leaving resources out, references to them as the values phase A returned, the record in."""
    gone = set(plan.leaving)
    values = {pair: outputs[key] for key, pair in reads(template, gone).items() if key in outputs}
    missing = sorted(f"{lid}.{attr}" if attr else lid for key, (lid, attr) in reads(template, gone).items()
                     if key not in outputs)  # fmt: skip
    if missing:
        raise RefactorRefused(
            f"{plan.source} returns no output for {', '.join(missing)}, which staying resources use; phase A did not "
            "finish: run again (it updates the stack with those outputs first)"
        )
    written = {k: copy.deepcopy(v) for k, v in template.items() if k not in ("Resources", "Outputs")}
    resources: dict[str, Any] = {}
    for lid, resource in (template.get("Resources") or {}).items():
        if lid in gone:
            continue
        kept = {k: _literal(v, values) for k, v in resource.items() if k != "DependsOn"}
        depends = resource.get("DependsOn")
        if depends is not None:
            names = [n for n in ([depends] if isinstance(depends, str) else depends) if n not in gone]
            if names:
                kept["DependsOn"] = names
        resources[lid] = kept
    written["Resources"] = resources
    kept_outputs = {
        k: _literal(v, values) for k, v in (template.get("Outputs") or {}).items() if not k.startswith(READ_PREFIX)
    }
    if kept_outputs:
        written["Outputs"] = kept_outputs
    metadata = dict(written.get("Metadata") or {})
    metadata[RECORD_KEY] = plan.with_identifiers(outputs).record()
    written["Metadata"] = metadata
    return written


def _literal(node: Any, values: Mapping[tuple[str, str], str]) -> Any:
    """``node`` with each Ref/GetAtt/``${…}`` of a leaving resource written as the value it had."""
    if isinstance(node, list):
        return [_literal(item, values) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((key, argument),) = node.items()
        target = _target(key, argument)
        if target is not None:
            return values.get(target, node)
        if key == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], dict(argument[1]))

            def replace(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in variables or name in SHARED_PSEUDO or name.startswith("AWS::"):
                    return match.group(0)
                logical_id, _, attribute = name.partition(".")
                return values.get((logical_id, attribute), match.group(0))

            written = SUB_VARIABLE.sub(replace, str(text))
            variables = {k: _literal(v, values) for k, v in variables.items()}
            return {"Fn::Sub": [written, variables] if variables else written}
    return {key: _literal(value, values) for key, value in node.items()}


def import_template(project: Mapping[str, Any], imported: Iterable[str]) -> dict[str, Any]:
    """Phase C: ``project``'s template with only the ``imported`` resources, each with a DeletionPolicy."""
    ids = set(imported)
    written = {k: copy.deepcopy(v) for k, v in project.items() if k not in ("Resources", "Outputs", "Transform")}
    resources: dict[str, Any] = {}
    for lid, resource in (project.get("Resources") or {}).items():
        if lid not in ids:
            continue
        present = ids | set(project.get("Parameters") or {})
        kept = {k: _untaken(v, present) for k, v in copy.deepcopy(dict(resource)).items()}
        kept.setdefault("DeletionPolicy", RETAIN)
        depends = kept.pop("DependsOn", None)
        if depends is not None:
            names = [n for n in ([depends] if isinstance(depends, str) else depends) if n in ids]
            if names:
                kept["DependsOn"] = names
        resources[lid] = kept
    written["Resources"] = resources
    return written


def _untaken(node: Any, present: set[str]) -> Any:
    """``node`` with each ``Fn::If`` branch that names a resource the import template lacks made AWS::NoValue.

    Such a branch names a resource that is not deployed (its condition is false), so the branch
    is not the one taken; CloudFormation would still refuse the reference. The import reads the
    resource as it is, and phase D puts the project's definition back.
    """
    if isinstance(node, list):
        return [_untaken(item, present) for item in node]
    if not isinstance(node, dict):
        return node
    if list(node) == ["Fn::If"] and isinstance(node["Fn::If"], list) and len(node["Fn::If"]) == 3:
        condition, *branches = node["Fn::If"]
        kept = [
            {"Ref": "AWS::NoValue"} if {lid for lid, _ in references(b)} - present else _untaken(b, present)
            for b in branches
        ]
        return {"Fn::If": [condition, *kept]}
    return {key: _untaken(value, present) for key, value in node.items()}


def temporary_policy(body: str | None, leaving: Iterable[str]) -> str | None:
    """The stack policy while ``leaving`` resources leave: theirs out of every Deny, ``Update:Delete`` allowed.

    None when the stack has no policy (nothing to relax).
    """
    if not body:
        return None
    policy = json.loads(body)
    names = [f"LogicalResourceId/{lid}" for lid in sorted(set(leaving))]
    statements = []
    for statement in policy.get("Statement") or []:
        if statement.get("Effect") == "Deny":
            resource = statement.get("Resource")
            listed = [resource] if isinstance(resource, str) else list(resource or [])
            rest = [r for r in listed if r not in names]
            if rest:
                statements.append({**statement, "Resource": rest})
            continue
        statements.append(statement)
    if names:
        statements.append({"Effect": "Allow", "Action": "Update:Delete", "Principal": "*", "Resource": names})
    return json.dumps({**policy, "Statement": statements}, sort_keys=True, separators=(",", ":"))
