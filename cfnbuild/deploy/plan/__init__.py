"""The plan of a change set (being split into modules; for now all of it is in ``widening``)."""

from cfnbuild.deploy.plan.widening import (
    FORMAT,
    MASK,
    ParameterChange,
    Plan,
    PropertyChange,
    ResourceChange,
    TagChange,
    build_plan,
    load_plan,
    render_json,
    render_markdown,
    render_text,
    save_plan,
)

__all__ = [
    "FORMAT",
    "MASK",
    "ParameterChange",
    "Plan",
    "PropertyChange",
    "ResourceChange",
    "TagChange",
    "build_plan",
    "load_plan",
    "render_json",
    "render_markdown",
    "render_text",
    "save_plan",
]
