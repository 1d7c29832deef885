"""The last line of a deploy: what happened to the stack, where its outputs are, what to do next.

``webapp-dev created: 75 resources in 4.8 s; outputs in output/dev/webapp.outputs.json; next:
cfnbuild status --local``. The engine records how a deploy ended (:class:`Ending`, counted from
the plan, which is exact: :mod:`cfnbuild.deploy.plan.conditions`, and timed from the execution);
the command adds the options it was given, so the next command it names targets the same stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Happened = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class Ending:
    """How one deploy of one stack ended: created, updated, or nothing to do."""

    stack_name: str
    happened: Happened
    counts: dict[str, int]  # the plan's: add, modify, replace, remove, import (empty when unchanged)
    seconds: float = 0.0  # from ExecuteChangeSet to the end of the steps after it


def target_flags(
    *,
    env: str | None,
    stack: str | None,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    local: bool,
) -> list[str]:
    """The target options as they were given, to repeat them in the next command."""
    flags: list[str] = []
    for option, value in (
        ("--env", env),
        ("--stack", stack),
        ("--region", region),
        ("--profile", profile),
        ("--endpoint-url", endpoint_url),
    ):
        if value:
            flags += [option, value]
    return [*flags, "--local"] if local else flags


def last_line(
    ending: Ending, flags: list[str], *, outputs_file: Path | None, config_file: str, one_shot: bool = False
) -> str:
    """The deploy's last line.

    ``flags`` are the target options given, ``outputs_file`` the outputs file written (relative to
    the project; None when none was), ``config_file`` the environment's config. ``one_shot``: the
    stack lives on an emulator that ends with this command, so the next step is a session.
    """
    target = " ".join(flags)
    command = f"cfnbuild status {target}".rstrip()
    if one_shot:
        command = "cfnbuild local start, to keep the stack for the commands after this one"
    outputs = f"; outputs in {outputs_file}" if outputs_file else ""
    if ending.happened == "unchanged":
        plan = f"cfnbuild plan {target}".rstrip()
        return f"{ending.stack_name}: no changes, as deployed{outputs}; next: change {config_file}, then {plan}"
    if ending.happened == "created":
        did = f"created: {_plural(ending.counts.get('add', 0), 'resource')}"
    else:
        parts = [
            f"{ending.counts[kind]} {word}"
            for kind, word in (
                ("add", "added"),
                ("modify", "modified"),
                ("replace", "replaced"),
                ("remove", "removed"),
                ("import", "imported"),
            )
            if ending.counts.get(kind)
        ]
        did = f"updated: {', '.join(parts) or 'parameters or tags only'}"
    return f"{ending.stack_name} {did} in {ending.seconds:.1f} s{outputs}; next: {command}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
