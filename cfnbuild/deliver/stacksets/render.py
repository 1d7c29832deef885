"""The StackSets plan as the terminal shows it: the stack set, its definition's changes, the instances, the steps."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from cfnbuild.deliver.stacksets.plan import Change, StackSetPlan


def _changes_table(title: str, changes: Sequence[Change]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("name", "deployed", "new"):
        table.add_column(column, overflow="fold")
    for change in changes:
        table.add_row(
            change.name, "(none)" if change.old is None else change.old, "(none)" if change.new is None else change.new
        )
    return table


def _render_definition(plan: StackSetPlan, console: Console) -> None:
    where = f"in {plan.region}, administrator account {plan.account}"
    if not plan.exists:
        console.print(
            f"stack set {plan.name} ({where}): does not exist; it will be created with SELF_MANAGED permissions",
            markup=False,
            soft_wrap=True,
        )
        return
    console.print(f"stack set {plan.name} ({where}): exists", markup=False, soft_wrap=True)
    if plan.template_changed:
        detail = "; ".join(f"{kind}: {', '.join(ids)}" for kind, ids in plan.resource_changes.items())
        console.print(f"template: changed ({detail or 'outside Resources'})", markup=False, soft_wrap=True)
    else:
        console.print("template: unchanged", markup=False, soft_wrap=True)
    for title, changes in (
        ("parameters", plan.parameter_changes),
        ("tags", plan.tag_changes),
        ("roles", plan.role_changes),
    ):
        if changes:
            console.print(_changes_table(f"{title}: {len(changes)} changed", changes))
        else:
            console.print(f"{title}: unchanged", markup=False, soft_wrap=True)


def _render_rows(plan: StackSetPlan, console: Console) -> None:
    table = Table(title=f"instances of {plan.name}", title_justify="left")
    for column in ("account", "region", "action", "status now"):
        table.add_column(column, no_wrap=True)
    table.add_column("note", overflow="fold")
    for row in plan.rows:
        table.add_row(row.account, row.region, row.action, row.state or "-", row.note)
    console.print(table)


def render_plan(plan: StackSetPlan, console: Console) -> None:
    """Print the plan: the stack set, its definition's changes, one row per instance, the operations."""
    _render_definition(plan, console)
    _render_rows(plan, console)
    if plan.steps:
        console.print("operations, in order:", markup=False, soft_wrap=True)
        for number, step in enumerate(plan.steps, 1):
            console.print(f"  {number}. {step}", markup=False, soft_wrap=True)
        console.print(f"each operation: {plan.preferences.describe()}", markup=False, soft_wrap=True)
    lines = [f"note: {note}" for note in plan.notes]
    if plan.busy:
        lines.append(f"busy: {plan.busy}; deploy refuses until it ends")
    if plan.refusal:
        lines.append(f"deploy would refuse: {plan.refusal}")
    counts = ", ".join(
        f"{plan.count(action)} {word}"
        for action, word in (("create", "to create"), ("update", "to update"), ("unchanged", "unchanged"))
    )
    if unnamed := plan.count("not named"):
        counts += f", {unnamed} not named (left as they are; cfnbuild never deletes stack instances implicitly)"
    lines.append(f"{plan.name}: {'changes' if plan.has_changes else 'no changes'}: {counts}")
    for line in lines:
        console.print(line, markup=False, soft_wrap=True)
