"""A deployed resource's definition with everything its stack decided written out as literals.

A resource moved by a stack refactor must keep its configuration, but its new stack has none of
the old one's parameters, conditions or mappings (a refactor may not add any) and another stack
name. So the moved definition is the DEPLOYED one with every ``Ref`` to a parameter replaced by
the value the stack was deployed with, ``Fn::If`` by the branch its condition took,
``Fn::FindInMap`` by the mapped value, ``AWS::NoValue`` dropped, and the pseudo parameters whose
value differs between stacks (``AWS::StackName``, ``AWS::StackId``) by the source stack's:
CloudFormation refuses to move a resource that uses them into a stack where they mean something
else (stack refactoring considerations:
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stack-refactoring.html). The
pseudo parameters every stack of the account and region shares (``AWS::Region``,
``AWS::AccountId``, ``AWS::Partition``, ``AWS::URLSuffix``) stay as written.

References to resources are left to the caller (:mod:`.templates` turns those to another stack
into ``Fn::ImportValue``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cfnbuild.deploy.plan.evaluate import condition_truths, pseudo_parameters
from cfnbuild.errors import UsageError

# Pseudo parameters with one value for every stack of an account and region: kept as written.
SHARED_PSEUDO = frozenset({"AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::URLSuffix"})
NO_VALUE = "AWS::NoValue"
_DROP = object()  # what AWS::NoValue evaluates to: the key or list item is left out
SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")


class CannotResolve(UsageError):
    """A moved resource uses something its deployed stack does not decide; the message says what."""


@dataclass(frozen=True)
class Decided:
    """What one deployed stack decided: its parameter values, condition truths, mappings and name."""

    stack_name: str
    stack_id: str
    parameters: Mapping[str, Any]  # name → value as deployed (a list for list types)
    truths: Mapping[str, bool | None]
    mappings: Mapping[str, Any]
    masked: frozenset[str] = frozenset()  # NoEcho parameters: DescribeStacks returns no value for them

    @classmethod
    def of(cls, template: Mapping[str, Any], values: Mapping[str, str], *, stack_name: str, stack_id: str) -> Decided:
        """What ``template``, deployed as ``stack_name`` with parameter ``values``, decided."""
        declared = template.get("Parameters") or {}
        parameters: dict[str, Any] = {}
        masked = frozenset(n for n, d in declared.items() if str(d.get("NoEcho", "false")).lower() == "true")
        for name, definition in declared.items():
            value = values.get(name, definition.get("Default"))
            if value is None or name in masked:
                continue
            kind = str(definition.get("Type", "String"))
            is_list = kind.startswith("List<") or kind == "CommaDelimitedList" or "<List<" in kind
            parameters[name] = [v.strip() for v in str(value).split(",")] if is_list else str(value)
        pseudo = pseudo_parameters(stack_id, stack_name)
        flat = {k: ",".join(v) if isinstance(v, list) else v for k, v in parameters.items()}
        truths = condition_truths(template, {**flat, **pseudo})
        return cls(stack_name, stack_id, parameters, truths, template.get("Mappings") or {}, masked)

    def refuse_masked(self, name: str, where: str) -> None:
        """Refuse a moved resource that uses a NoEcho parameter: its value cannot be written out."""
        if name in self.masked:
            raise CannotResolve(
                f"{where}: uses NoEcho parameter {name}, whose deployed value CloudFormation does not return, so it "
                "cannot be written into the resource's new stack; take the value from Secrets Manager or SSM (a "
                "dynamic reference) in a deploy first, then run again"
            )

    def pseudo(self, name: str) -> Any:
        """The source stack's value of a pseudo parameter that differs between stacks, or None."""
        if name == "AWS::StackName":
            return self.stack_name
        if name == "AWS::StackId":
            return self.stack_id
        return None


def resolve(node: Any, decided: Decided, where: str) -> Any:
    """``node`` with parameters, conditions, mappings and stack-specific pseudo parameters written out.

    ``where`` names the resource for the one-line refusal of what cannot be decided.
    """
    result = _resolve(node, decided, where)
    return None if result is _DROP else result


def _resolve(node: Any, decided: Decided, where: str) -> Any:
    if isinstance(node, list):
        items = [_resolve(item, decided, where) for item in node]
        return [item for item in items if item is not _DROP]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((key, argument),) = node.items()
        handled = _function(key, argument, decided, where)
        if handled is not _UNHANDLED:
            return handled
    resolved = {key: _resolve(value, decided, where) for key, value in node.items()}
    return {key: value for key, value in resolved.items() if value is not _DROP}


_UNHANDLED = object()


def _function(key: str, argument: Any, decided: Decided, where: str) -> Any:  # noqa: PLR0911  (one return per function)
    if key == "Ref" and isinstance(argument, str):
        if argument == NO_VALUE:
            return _DROP
        decided.refuse_masked(argument, where)
        if argument in decided.parameters:
            return decided.parameters[argument]
        pseudo = decided.pseudo(argument)
        if pseudo is not None:
            return pseudo
        if argument.startswith("AWS::") and argument not in SHARED_PSEUDO:
            raise CannotResolve(f"{where}: uses {argument}, which the refactor cannot carry to another stack")
        return _UNHANDLED
    if key == "Fn::If" and isinstance(argument, list) and len(argument) == 3:
        truth = decided.truths.get(str(argument[0]))
        if truth is None:
            raise CannotResolve(
                f"{where}: condition {argument[0]} is not decided by the deployed parameters of {decided.stack_name}"
            )
        return _resolve(argument[1] if truth else argument[2], decided, where)
    if key == "Fn::FindInMap" and isinstance(argument, list) and len(argument) >= 3:
        return _find_in_map(argument, decided, where)
    if key == "Fn::Sub":
        return _sub(argument, decided, where)
    return _UNHANDLED


def _find_in_map(argument: list[Any], decided: Decided, where: str) -> Any:
    name, top, second = (_resolve(part, decided, where) for part in argument[:3])
    try:
        return _resolve(decided.mappings[name][top][second], decided, where)
    except (KeyError, TypeError):
        raise CannotResolve(
            f"{where}: Fn::FindInMap {name}/{top}/{second} is not in {decided.stack_name}'s Mappings"
        ) from None


def _sub(argument: Any, decided: Decided, where: str) -> Any:
    """``Fn::Sub`` with parameters and stack-specific pseudo parameters written in; a string when nothing is left."""
    text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], dict(argument[1]))
    variables = {name: _resolve(value, decided, where) for name, value in variables.items()}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables:
            return match.group(0)
        decided.refuse_masked(name, where)
        value = decided.parameters.get(name, decided.pseudo(name))
        if value is None:
            if name.startswith("AWS::") and name not in SHARED_PSEUDO:
                raise CannotResolve(f"{where}: uses ${{{name}}}, which the refactor cannot carry to another stack")
            return match.group(0)
        return ",".join(value) if isinstance(value, list) else str(value)

    written = SUB_VARIABLE.sub(replace, str(text))
    if not variables and not SUB_VARIABLE.search(written):
        return written.replace("${!", "${")
    return {"Fn::Sub": [written, variables] if variables else written}
