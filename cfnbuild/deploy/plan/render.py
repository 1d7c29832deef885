"""Rendering a plan for people: text for a terminal (rich) and Markdown for a pull-request comment.

Both put DANGER first, then the counts, a table of resources, the access the change widens, the
notes and the property changes; a long value is diffed by structure or cut to where it differs.
The JSON a machine reads is :mod:`.saved`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cfnbuild.deploy.plan.model import MASK, NotCreated, Plan, PropertyChange, ResourceChange, review_order

_VALUE_WIDTH = 60
_MAX_DETAILS_SHOWN = 25


_ACTION_LABELS = {"add": "Add", "modify": "Modify", "replace": "Replace", "remove": "Remove", "import": "Import"}


def _summary(plan: Plan) -> str:
    counts = plan.counts()
    parts = [f"{counts[kind]} to {kind}" for kind in ("add", "modify", "replace", "remove")]
    if counts["import"]:
        parts.append(f"{counts['import']} to import")
    if plan.parameters:
        parts.append(f"{len(plan.parameters)} parameter change{'s' if len(plan.parameters) != 1 else ''}")
    if plan.tags:
        parts.append(f"{len(plan.tags)} tag change{'s' if len(plan.tags) != 1 else ''}")
    if plan.removed_exports:
        parts.append(f"{len(plan.removed_exports)} export{'s' if len(plan.removed_exports) != 1 else ''} removed")
    return ", ".join(parts)


def _action_label(change: ResourceChange) -> str:
    label = _ACTION_LABELS[change.kind]
    if change.action == "Dynamic":
        label += " (dynamic)"
    if change.replacement == "Conditional":
        label += " (maybe)"
    return label


def _value_text(value: Any, width: int = _VALUE_WIDTH) -> str:
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) and value == MASK else json.dumps(value, sort_keys=True, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _detail_texts(detail: PropertyChange) -> list[str]:
    """One line per difference: a long JSON value is diffed by structure, a long string shows where it differs.

    A short value reads whole (``InstanceType: "t3.small" → "t3.large"``). A long one would be cut
    to a prefix that is often the same before and after, so it is compared instead: each leaf of
    an object or array that differs is a line of its own, its path continued
    (``/Properties/LaunchTemplateData/InstanceType: "t3.small" → "t3.large"``), and two long
    strings show the stretch where they differ.
    """
    extras = []
    if detail.requires_recreation and detail.requires_recreation != "Never":
        extras.append(f"recreation: {detail.requires_recreation}")
    if detail.change_source in ("ParameterReference", "ResourceReference") and detail.causing_entity:
        extras.append(f"via {detail.causing_entity}")
    suffix = f" ({'; '.join(extras)})" if extras else ""
    before, after = detail.before, detail.after
    long = max(len(_value_text(before, width=10**9)), len(_value_text(after, width=10**9))) > _VALUE_WIDTH
    if long and isinstance(before, dict | list) and isinstance(after, dict | list):
        leaves = _leaf_changes(before, after, detail.path)
        if leaves:
            shown = [f"{path}: {_value_text(old)} → {_value_text(new)}" for path, old, new in leaves[:_MAX_LEAVES]]
            if len(leaves) > _MAX_LEAVES:
                shown.append(f"{detail.path}: … and {len(leaves) - _MAX_LEAVES} more differences (see the JSON plan)")
            shown[0] += suffix
            return shown
    if long and isinstance(before, str) and isinstance(after, str) and MASK not in (before, after):
        old, new = _differing_stretch(before, after)
        return [f"{detail.path}: {old} → {new}{suffix}"]
    return [f"{detail.path}: {_value_text(before)} → {_value_text(after)}{suffix}"]


_MAX_LEAVES = 10
_ABSENT = object()


def _leaf_changes(before: Any, after: Any, path: str) -> list[tuple[str, Any, Any]]:
    """Every leaf path where ``before`` and ``after`` differ, with both values (None where absent)."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[tuple[str, Any, Any]] = []
        for key in sorted(set(before) | set(after), key=str):
            found += _leaf_changes(before.get(key, _ABSENT), after.get(key, _ABSENT), f"{path}/{key}")
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        found = []
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            found += _leaf_changes(old, new, f"{path}/{index}")
        return found
    if before == after:
        return []
    return [(path, None if before is _ABSENT else before, None if after is _ABSENT else after)]


def _differing_stretch(before: str, after: str, context: int = 20) -> tuple[str, str]:
    """The part of two long strings around where they differ, the same prefix and suffix cut to "…"."""
    start = 0
    while start < min(len(before), len(after)) and before[start] == after[start]:
        start += 1
    end = 0
    while end < min(len(before), len(after)) - start and before[-1 - end] == after[-1 - end]:
        end += 1
    begin = max(0, start - context)

    def stretch(text: str) -> str:
        stop = len(text) - max(0, end - context)
        piece = " ".join(text[begin:stop].split())
        if len(piece) > _VALUE_WIDTH:
            piece = piece[: _VALUE_WIDTH - 1] + "…"
        return ("…" if begin else "") + json.dumps(piece, ensure_ascii=False) + ("…" if stop < len(text) else "")

    return stretch(before), stretch(after)


def _ordered(plan: Plan) -> list[ResourceChange]:
    return sorted(plan.resources, key=review_order)


def render_text(plan: Plan, console: Console) -> None:
    """Print the plan for a terminal: summary, DANGER first, a table, widening, property changes."""
    if not plan.has_changes:
        console.print(Text(f"No changes: stack {plan.stack_name} is up to date."))
        return
    kind = "create" if plan.change_set_type == "CREATE" else "update"
    console.print(Text(f"Plan to {kind} stack {plan.stack_name}: {_summary(plan)}", style="bold"))
    if plan.change_set_id:
        console.print(Text(f"change set {plan.change_set_id}", style="dim"))
    for change in plan.dangers:
        console.print(Text(f"DANGER  {change.danger_reason}", style="bold red"))
    resources = _ordered(plan)
    if resources:
        console.print(_resource_table(resources))
    if plan.not_created:
        console.print(Text(_not_created_line(plan.not_created), style="dim"))
    _print_section(console, "Access this change widens:", [f"! {s}" for s in plan.widening], "yellow")
    notes = [f"{change.logical_id}: {note}" for change in resources for note in change.notes]
    _print_section(console, "Notes:", notes, "yellow")
    lines = []
    for change in resources:
        if change.details and change.action not in ("Add", "Remove"):
            lines.append(f"{change.logical_id} ({_action_label(change)}, {change.resource_type})")
            lines += [f"  {text}" for detail in change.details[:_MAX_DETAILS_SHOWN] for text in _detail_texts(detail)]
            if len(change.details) > _MAX_DETAILS_SHOWN:
                lines.append(f"  … and {len(change.details) - _MAX_DETAILS_SHOWN} more (see the JSON plan)")
    _print_section(console, "Property changes:", lines, None)
    parameters = [
        f"{p.name}: {_or_none(p.before)} → {_or_none(p.after)}" + (" (NoEcho)" if p.no_echo else "")
        for p in plan.parameters
    ]
    _print_section(console, "Parameters:", parameters, None)
    tags = [f"{t.key}: {_or_none(t.before)} → {_or_none(t.after)}" for t in plan.tags]
    _print_section(console, "Stack tags:", tags, None)
    _print_section(console, "Exports removed:", removed_export_lines(plan), "yellow")


def removed_export_lines(plan: Plan) -> list[str]:
    """A line per export the update removes, naming the stacks that still import it."""
    lines = []
    for export in plan.removed_exports:
        line = f"{export.name} (output {export.output})"
        if export.imported_by:
            line += f": imported by {', '.join(export.imported_by)}; CloudFormation refuses to remove it"
        elif export.unchecked:
            line += f": who imports it is unknown ({export.unchecked})"
        else:
            line += ": no stack imports it"
        lines.append(line)
    return lines


def _not_created_line(not_created: Iterable[NotCreated]) -> str:
    """One line: the resources a change set listed that are not made, by the condition that is false."""
    by_condition: dict[str, list[str]] = {}
    for item in not_created:
        by_condition.setdefault(item.condition, []).append(item.logical_id)
    groups = "; ".join(f"{condition}: {', '.join(sorted(ids))}" for condition, ids in sorted(by_condition.items()))
    count = sum(len(ids) for ids in by_condition.values())
    return f"not created ({count}, their condition is false): {groups}"


def _resource_table(resources: Iterable[ResourceChange]) -> Table:
    """Action, logical ID, type and (when any change has one) replacement, one row per resource.

    A type name is never split (``AWS::EC2::SecurityGroupEgre`` / ``ss``): at 80 columns the
    logical IDs fold instead, and a plan where nothing can be replaced (a create) leaves out the
    Replacement column, whose cells would all be ``-``.
    """
    changes = list(resources)
    columns = ["Action", "Logical ID", "Type"]
    if any(change.replacement for change in changes):
        columns.append("Replacement")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column in ("Type", "Replacement"))
    for change in changes:
        cells = [
            Text(("DANGER " if change.danger else "") + _action_label(change)),
            Text(change.logical_id),
            Text(change.resource_type),
            Text(change.replacement or "-"),
        ]
        style = "bold red" if change.danger else ("yellow" if change.widening else None)
        table.add_row(*cells[: len(columns)], style=style)
    return table


def _print_section(console: Console, title: str, lines: list[str], style: str | None) -> None:
    if not lines:
        return
    console.print(Text(title, style=f"bold {style}" if style else "bold"))
    for line in lines:
        console.print(Text(f"  {line}", style=style or ""))


def _or_none(value: str | None) -> str:
    if value is None:
        return "(none)"
    return value or '""'


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def _md(text: str) -> str:
    """Plain text that renders as itself in a pull-request comment, in a table cell too."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text.replace("&", "&amp;")).replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(escaped.split())


def _md_code(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    body = " ".join(padded.replace("|", "\\|").split())
    return f"{fence}{body}{fence}"


def render_markdown(plan: Plan) -> str:
    """The plan as a pull-request comment: DANGER first, then counts, a table and the details."""
    lines = [f"### cfnbuild plan: {_md_code(plan.stack_name)} ({plan.change_set_type})", ""]
    if plan.dangers:
        lines += ["#### ⚠ DANGER", ""]
        lines += [f"- {_md(change.danger_reason)}" for change in plan.dangers]
        lines.append("")
    if not plan.has_changes:
        lines += ["No changes: the stack is up to date.", ""]
        return "\n".join(lines)
    lines += [f"**{_summary(plan)}**", ""]
    resources = _ordered(plan)
    if resources:
        lines += ["| Action | Logical ID | Type | Replacement |", "|---|---|---|---|"]
        for change in resources:
            action = ("⚠ " if change.danger else "") + _action_label(change)
            lines.append(
                f"| {_md(action)} | {_md_code(change.logical_id)} | {_md_code(change.resource_type)} "
                f"| {_md(change.replacement or '-')} |"
            )
        lines.append("")
    if plan.not_created:
        lines += [_md(_not_created_line(plan.not_created)), ""]
    if plan.widening:
        lines += ["#### Access this change widens", ""]
        lines += [f"- {_md(sentence)}" for sentence in plan.widening]
        lines.append("")
    notes = [f"- **{_md(change.logical_id)}**: {_md(note)}" for change in resources for note in change.notes]
    if notes:
        lines += ["#### Notes", "", *notes, ""]
    details = [
        f"- **{_md(change.logical_id)}** {_md(text)}"
        for change in resources
        if change.action not in ("Add", "Remove")
        for detail in change.details
        for text in _detail_texts(detail)
    ]
    if details:
        lines += ["<details><summary>Property changes</summary>", "", *details, "", "</details>", ""]
    if plan.parameters:
        lines += ["#### Parameters", "", "| Parameter | Before | After |", "|---|---|---|"]
        for p in plan.parameters:
            name = _md_code(p.name) + (" (NoEcho)" if p.no_echo else "")
            lines.append(f"| {name} | {_md(_or_none(p.before))} | {_md(_or_none(p.after))} |")
        lines.append("")
    if plan.tags:
        lines += ["#### Stack tags", "", "| Tag | Before | After |", "|---|---|---|"]
        lines += [f"| {_md_code(t.key)} | {_md(_or_none(t.before))} | {_md(_or_none(t.after))} |" for t in plan.tags]
        lines.append("")
    if plan.removed_exports:
        lines += ["#### Exports removed", "", *(f"- {_md(line)}" for line in removed_export_lines(plan)), ""]
    lines.append(f"<sub>template sha256 {_md_code(plan.template_hash)}</sub>")
    return "\n".join(lines) + "\n"
