"""Cross-stack references: one stack's output taken as another stack's input.

A stack function asks for an output of another stack of the project with
:meth:`cfnbuild.Stack.use` (or :meth:`cfnbuild.Blueprint.use`) and gets a ``Ref`` to a String
parameter of its own. The template records where the value comes from, sorted, under its
Metadata::

    "Metadata": {"cfnbuild": {"inputs": {
        "NetworkVpcId": {"output": "VpcId", "stack": "network"}
    }}}

so neither a deploy nor the graph needs a render: :mod:`cfnbuild.project.stack_graph` derives
the order of the stacks from these records, and the deploy engine fills each such parameter
from the upstream stack's deployed outputs (DescribeStacks of its deployed name, same region).

The value travels as a parameter, not ``Fn::ImportValue``: CloudFormation refuses to change or
delete an output that another stack imports
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-stack-exports.html),
so an import would lock the producer for as long as any consumer exists. With a parameter,
removing a consumer never locks the producer; the order is cfnbuild's, from this record.

This module is data only (no troposphere): the deploy engine reads it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cfnbuild.build.stateful import METADATA_KEY

INPUTS_KEY = "inputs"


@dataclass(frozen=True)
class StackInput:
    """A parameter of a template that takes ``output`` of the project's stack ``stack``."""

    parameter: str
    stack: str
    output: str

    def to_json(self) -> dict[str, str]:
        """As recorded in the template's Metadata."""
        return {"output": self.output, "stack": self.stack}


def template_inputs(template: Mapping[str, Any]) -> dict[str, StackInput]:
    """Parameter → the stack output it takes, as the template records it (none when it uses none)."""
    recorded = (template.get("Metadata") or {}).get(METADATA_KEY, {}).get(INPUTS_KEY) or {}
    return {
        name: StackInput(name, str(entry["stack"]), str(entry["output"]))
        for name, entry in sorted(recorded.items())
        if isinstance(entry, Mapping) and "stack" in entry and "output" in entry
    }


def waiting_value(stack: str) -> str:
    """The value a plan shows for an input whose upstream stack is not deployed yet."""
    return f"from stack {stack} (not deployed yet)"
