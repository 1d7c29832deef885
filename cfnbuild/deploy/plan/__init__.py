"""The plan: what a change set will do, merged with what only cfnbuild knows about the stack.

One concern per module, each importing only those above it in this list:

- ``model`` — the plan's data classes (:class:`Plan`, :class:`ResourceChange`,
  :class:`PropertyChange`, :class:`ParameterChange`, :class:`TagChange`), the order resources
  are listed in, and the masking of NoEcho values;
- ``widening`` — the plan's IAM-widening and security-group check: access a change grants that
  was not granted before (policies, trust, managed policies, security-group rules);
- ``template_diff`` — property changes from the deployed and new templates when the change set
  gives none, and whether each recreates the resource (create-only properties);
- ``evaluate`` — the template as parameters alone decide it: parameter Refs, the truth of each
  condition (:func:`~.evaluate.condition_truths`), ``Fn::If``/``Fn::Split``/``Fn::Select``;
- ``conditions`` — the change set as AWS lists it: a resource whose condition is false is no Add
  (``Plan.not_created``), one whose condition turns false is a Remove;
- ``read`` — reading a ``DescribeChangeSet`` response into a plan (:func:`build_plan`): parameter
  and tag changes, stateful DANGER reasons, retention notes, renames;
- ``render`` — the plan as text for a terminal (:func:`render_text`) and as a pull-request
  comment (:func:`render_markdown`);
- ``saved`` — the plan as JSON (``cfnbuild-plan/1``, :func:`render_json`), saved
  (:func:`save_plan`) and loaded (:func:`load_plan`) for ``deploy`` to execute exactly what was
  reviewed.

The names below are re-exported so ``from cfnbuild.deploy.plan import Plan, build_plan`` works.
"""

from cfnbuild.deploy.plan.model import (
    FORMAT,
    MASK,
    NotCreated,
    ParameterChange,
    Plan,
    PropertyChange,
    RemovedExport,
    ResourceChange,
    TagChange,
)
from cfnbuild.deploy.plan.read import build_plan
from cfnbuild.deploy.plan.render import render_markdown, render_text
from cfnbuild.deploy.plan.saved import (
    GRAPH_FORMAT,
    load_plan,
    render_graph_json,
    render_json,
    save_graph_plan,
    save_plan,
)

__all__ = [
    "FORMAT",
    "GRAPH_FORMAT",
    "MASK",
    "NotCreated",
    "ParameterChange",
    "Plan",
    "PropertyChange",
    "RemovedExport",
    "ResourceChange",
    "TagChange",
    "build_plan",
    "load_plan",
    "render_graph_json",
    "render_json",
    "render_markdown",
    "render_text",
    "save_graph_plan",
    "save_plan",
]
