"""Template assertions in the shape of the CDK's ``assertions`` module.

``TemplateAssert(template).has_resource_properties(type, {...})`` passes when some resource of
``type`` has properties that match the pattern *object-like*: every key of the pattern is
present with a matching value; keys the pattern does not name are ignored. ``Match.array_with``
matches a list holding the given items in order (others may sit between them), ``Match.absent``
a key that must not be there, ``Match.any`` any value, ``Match.exact`` a value compared whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class _Matcher:
    kind: str
    value: Any = None


class Match:
    """Matchers for patterns."""

    @staticmethod
    def absent() -> _Matcher:
        return _Matcher("absent")

    @staticmethod
    def any() -> _Matcher:
        return _Matcher("any")

    @staticmethod
    def array_with(items: list[Any]) -> _Matcher:
        return _Matcher("array_with", items)

    @staticmethod
    def exact(value: Any) -> _Matcher:
        return _Matcher("exact", value)


def _array_with(items: list[Any], actual: Any) -> bool:
    if not isinstance(actual, list):
        return False
    position = 0
    for item in items:
        while position < len(actual) and not matches(item, actual[position]):
            position += 1
        if position == len(actual):
            return False
        position += 1
    return True


def _object_like(pattern: dict[str, Any], actual: Any) -> bool:
    if not isinstance(actual, dict):
        return False
    for key, expected in pattern.items():
        if isinstance(expected, _Matcher) and expected.kind == "absent":
            if key in actual:
                return False
        elif key not in actual or not matches(expected, actual[key]):
            return False
    return True


def matches(pattern: Any, actual: Any) -> bool:
    """Whether ``actual`` matches ``pattern`` object-like."""
    if isinstance(pattern, _Matcher):
        if pattern.kind == "absent":
            raise AssertionError("Match.absent() is only valid as a dict value")
        return {
            "any": lambda: True,
            "exact": lambda: bool(pattern.value == actual),
            "array_with": lambda: _array_with(pattern.value, actual),
        }[pattern.kind]()
    if isinstance(pattern, dict):
        return _object_like(pattern, actual)
    if isinstance(pattern, list):
        if not isinstance(actual, list) or len(pattern) != len(actual):
            return False
        return all(matches(p, a) for p, a in zip(pattern, actual, strict=True))
    return bool(pattern == actual)


class TemplateAssert:
    """Assertions over one rendered template (a dict)."""

    def __init__(self, template: dict[str, Any]) -> None:
        self.template = template

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.template.get("Resources", {}))

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    def resource_count_is(self, resource_type: str, count: int) -> None:
        found = len(self.of_type(resource_type))
        assert found == count, f"expected {count} {resource_type}, found {found}"

    def find_resources(self, resource_type: str, pattern: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """Resources of ``resource_type`` whose whole definition matches ``pattern``."""
        return {k: v for k, v in self.of_type(resource_type).items() if matches(pattern or {}, v)}

    def has_resource(self, resource_type: str, pattern: dict[str, Any]) -> None:
        """Some resource of the type matches ``pattern`` at the top level (Properties, DependsOn, ...)."""
        if not self.find_resources(resource_type, pattern):
            candidates = json.dumps(self.of_type(resource_type), indent=1, sort_keys=True)[:3000]
            raise AssertionError(f"no {resource_type} matches {pattern!r}; candidates:\n{candidates}")

    def has_resource_properties(self, resource_type: str, pattern: dict[str, Any]) -> None:
        """Some resource of the type has Properties matching ``pattern``."""
        self.has_resource(resource_type, {"Properties": pattern})

    def all_resources_properties(self, resource_type: str, pattern: dict[str, Any]) -> None:
        """Every resource of the type has Properties matching ``pattern``."""
        resources = self.of_type(resource_type)
        assert resources, f"no {resource_type} in the template"
        for logical_id, resource in resources.items():
            assert matches(pattern, resource.get("Properties", {})), f"{logical_id} does not match {pattern!r}"

    def has_output(self, name: str, pattern: dict[str, Any]) -> None:
        outputs = self.template.get("Outputs", {})
        assert name in outputs, f"no output {name}; outputs: {sorted(outputs)}"
        assert matches(pattern, outputs[name]), f"output {name} is {outputs[name]!r}, expected {pattern!r}"
