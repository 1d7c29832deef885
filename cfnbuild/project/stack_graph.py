"""The graph of a project's stacks: which stack takes outputs of which, from their templates.

Derived from what each template records of its cross-stack references
(``Metadata.cfnbuild.inputs``, :mod:`cfnbuild.build.references`), so the written templates are
enough: ``build`` checks it after rendering an environment, the deploy orders its stacks by it
without rendering. (:mod:`cfnbuild.build.graph` is the other graph: the critical path of the
resources *within* one stack.)

A reference to a stack the project does not have, to an output the upstream template does not
declare, or stacks that take each other's outputs round a circle (``a → b → a``) are build
errors naming them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cfnbuild.build.references import StackInput, template_inputs
from cfnbuild.errors import UsageError


class GraphError(UsageError):
    """The stacks' references cannot be deployed in any order: each line names the stacks and the fix."""


@dataclass(frozen=True)
class StackGraph:
    """The stacks of one environment (in the app's order) and the stacks each takes outputs of."""

    stacks: tuple[str, ...]
    upstreams: Mapping[str, tuple[str, ...]]
    inputs: Mapping[str, tuple[StackInput, ...]]
    # stack → output → its Value in the template, for what an upstream's plan does downstream
    output_values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def downstreams(self, stack: str) -> tuple[str, ...]:
        """The stacks that take outputs of ``stack`` directly, in the app's order."""
        return tuple(s for s in self.stacks if stack in self.upstreams[s])

    def dependents(self, stack: str) -> tuple[str, ...]:
        """Every stack that depends on ``stack``, directly or through others, in deploy order."""
        found: set[str] = set()
        todo = [stack]
        while todo:
            for downstream in self.downstreams(todo.pop()):
                if downstream not in found:
                    found.add(downstream)
                    todo.append(downstream)
        return tuple(s for s in self.order() if s in found)

    def order(self) -> tuple[str, ...]:
        """Every stack, each after the stacks it takes outputs of; ties in the app's order."""
        return tuple(stack for layer in self.layers() for stack in layer)

    def layers(self) -> tuple[tuple[str, ...], ...]:
        """The stacks in waves: each wave's stacks need only stacks of the waves before it."""
        done: set[str] = set()
        layers: list[tuple[str, ...]] = []
        while len(done) < len(self.stacks):
            layer = tuple(s for s in self.stacks if s not in done and set(self.upstreams[s]) <= done)
            if not layer:  # stack_graph refuses circles; a graph made by hand may hold one
                raise GraphError(f"stacks take each other's outputs in a circle: {' → '.join(_circle(self))}")
            layers.append(layer)
            done.update(layer)
        return tuple(layers)


def stack_graph(templates: Mapping[str, Mapping[str, Any]], *, environment: str) -> StackGraph:
    """The graph of ``templates`` (stack name → template, in the app's order); refuses what cannot deploy."""
    problems: list[str] = []
    upstreams: dict[str, tuple[str, ...]] = {}
    inputs: dict[str, tuple[StackInput, ...]] = {}
    for stack, template in templates.items():
        used = tuple(template_inputs(template).values())
        inputs[stack] = used
        upstreams[stack] = tuple(dict.fromkeys(i.stack for i in used))
        problems += _reference_problems(stack, used, templates)
    if problems:
        raise GraphError("\n".join(f"{environment}: {problem}" for problem in problems))
    values = {
        stack: {name: output.get("Value") for name, output in (template.get("Outputs") or {}).items()}
        for stack, template in templates.items()
    }
    graph = StackGraph(tuple(templates), upstreams, inputs, values)
    circle = _circle(graph)
    if circle:
        raise GraphError(
            f"{environment}: stacks take each other's outputs in a circle: {' → '.join(circle)} (each takes "
            "outputs of the next); no order can deploy them; move what both need into one stack, or pass one "
            "value through the config instead"
        )
    return graph


def _reference_problems(
    stack: str, used: Sequence[StackInput], templates: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """One line for each reference of ``stack`` to a stack or output the project does not have."""
    problems = []
    for reference in used:
        upstream = templates.get(reference.stack)
        if upstream is None:
            problems.append(
                f"stack {stack}: parameter {reference.parameter} uses stack {reference.stack!r}, which this project "
                f"does not have; it has: {', '.join(templates)}"
            )
            continue
        declared = sorted((upstream.get("Outputs") or {}).keys())
        if reference.output not in declared:
            problems.append(
                f"stack {stack} uses output {reference.output!r} of stack {reference.stack}, which {reference.stack} "
                f"does not declare; it declares: {', '.join(declared) or '(no outputs)'}"
            )
    return problems


def _circle(graph: StackGraph) -> list[str]:
    """A circle of stacks (``[a, b, a]``), or none; found by depth-first search in the app's order."""
    state: dict[str, str] = {}  # "open" while on the path, "done" after
    path: list[str] = []

    def visit(stack: str) -> list[str]:
        state[stack] = "open"
        path.append(stack)
        for upstream in graph.upstreams.get(stack, ()):
            if state.get(upstream) == "open":
                return [*path[path.index(upstream) :], upstream]
            if upstream not in state and (found := visit(upstream)):
                return found
        path.pop()
        state[stack] = "done"
        return []

    for stack in graph.stacks:
        if stack not in state and (found := visit(stack)):
            return found
    return []
