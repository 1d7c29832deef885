"""The template as CloudFormation evaluates it from parameters alone, for the template diff.

When a change set carries no details (an emulator's), the plan compares the old and new
resource definitions itself. Written forms that CloudFormation evaluates to the same value
(a zone as ``Fn::Select`` of ``Fn::GetAZs`` in one, of the ``AvailabilityZones`` parameter behind
a condition in the other) must not read as a change, so parameter Refs, conditions the
parameters decide, and ``Fn::Split``/``Fn::Select`` of known values are evaluated first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def static_properties(resource: Mapping[str, Any], values: Mapping[str, Any], conditions: Mapping[str, Any]) -> Any:
    """``resource`` with its Properties evaluated as far as parameters decide them (:func:`_static`)."""
    if "Properties" not in resource:
        return resource
    return {**resource, "Properties": _static(resource["Properties"], values, conditions)}


_UNDECIDED = object()  # what a function parameters alone do not evaluate gives


def _static(node: Any, values: Mapping[str, Any], conditions: Mapping[str, Any]) -> Any:
    """``node`` as far as CloudFormation evaluates it from parameters alone.

    Refs to parameters become their values; ``Fn::If`` on a condition the parameters decide takes
    its branch; ``Fn::Split`` of a known string and ``Fn::Select`` from a known list are done.
    Everything else (Refs to resources, ``Fn::GetAtt``, ``Fn::GetAZs``) stays as written.
    """
    if isinstance(node, list):
        return [_static(item, values, conditions) for item in node]
    if not isinstance(node, dict):
        return node
    evaluated = _static_function(node, values, conditions) if len(node) == 1 else _UNDECIDED
    if evaluated is not _UNDECIDED:
        return evaluated
    return {key: _static(value, values, conditions) for key, value in node.items()}


def _static_function(node: Mapping[str, Any], values: Mapping[str, Any], conditions: Mapping[str, Any]) -> Any:
    """One intrinsic function evaluated from parameters, or :data:`_UNDECIDED`."""
    ((key, argument),) = node.items()
    result: Any = _UNDECIDED
    pair = isinstance(argument, list) and len(argument) == 2
    if key == "Ref" and isinstance(argument, str) and argument in values:
        result = values[argument]
    elif key == "Fn::If" and isinstance(argument, list) and len(argument) == 3:
        decided = _decided(argument[0], values, conditions, frozenset())
        if decided is not None:
            result = _static(argument[1] if decided else argument[2], values, conditions)
    elif key == "Fn::Split" and pair:
        separator, text = argument[0], _static(argument[1], values, conditions)
        if isinstance(separator, str) and separator and isinstance(text, str):
            result = text.split(separator)
    elif key == "Fn::Select" and pair:
        index, items = _static(argument[0], values, conditions), _static(argument[1], values, conditions)
        if isinstance(items, list) and str(index).isdigit() and int(index) < len(items):
            result = items[int(index)]
    return result


def _decided(node: Any, values: Mapping[str, Any], conditions: Mapping[str, Any], seen: frozenset[str]) -> bool | None:
    """The truth of a condition (a name or a condition function) if parameters decide it, else None."""
    if isinstance(node, dict) and list(node) == ["Condition"]:
        node = node["Condition"]
    if isinstance(node, str):
        known = node not in seen and node in conditions
        return _decided(conditions[node], values, conditions, seen | {node}) if known else None
    if not isinstance(node, dict) or len(node) != 1:
        return None
    ((key, argument),) = node.items()
    if key == "Fn::Equals" and isinstance(argument, list) and len(argument) == 2:
        left, right = (_static(side, values, conditions) for side in argument)
        known = all(isinstance(side, str | int | float | bool) for side in (left, right))
        return str(left) == str(right) if known else None
    truths = [_decided(item, values, conditions, seen) for item in argument] if isinstance(argument, list) else []
    if key not in ("Fn::Not", "Fn::And", "Fn::Or") or not truths or None in truths:
        return None
    if key == "Fn::Not":
        return not truths[0]
    return all(truths) if key == "Fn::And" else any(truths)


def condition_truths(template: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, bool | None]:
    """Every condition of ``template`` as the parameter ``values`` decide it: True, False, or None (undecided).

    ``values`` are the parameters' effective values (defaults, given, looked up and kept ones) and
    any pseudo parameters known (``AWS::Region``…); a condition that needs anything else (a
    missing value, a function other than ``Fn::Equals``/``Not``/``And``/``Or``) is None.
    Conditions: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/conditions-section-structure.html
    """
    conditions = template.get("Conditions") or {}
    return {name: _decided(name, values, conditions, frozenset()) for name in conditions}


def resource_exists(resource: Mapping[str, Any], truths: Mapping[str, bool | None]) -> bool | None:
    """Whether CloudFormation makes ``resource``: True without a Condition, else its condition's truth.

    None when the parameters do not decide the condition (or the template does not declare it).
    """
    condition = resource.get("Condition")
    if condition is None:
        return True
    return truths.get(str(condition))


def pseudo_parameters(stack_id: str, stack_name: str) -> dict[str, str]:
    """``AWS::Region``, ``AWS::AccountId``, ``AWS::Partition`` and ``AWS::StackName``, read from a stack's ARN.

    The ARN is ``arn:PARTITION:cloudformation:REGION:ACCOUNT:stack/NAME/ID``; a value it does not
    give is left out (a condition on it stays undecided). Pseudo parameters:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/pseudo-parameter-reference.html
    """
    parts = stack_id.split(":")
    values = {"AWS::StackName": stack_name} if stack_name else {}
    if len(parts) >= 6 and parts[0] == "arn" and parts[2] == "cloudformation":
        values.update({"AWS::Partition": parts[1], "AWS::Region": parts[3], "AWS::AccountId": parts[4]})
    return {name: value for name, value in values.items() if value}
