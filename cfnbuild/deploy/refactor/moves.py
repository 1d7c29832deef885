"""Which deployed resources move to which stack, and the refusals of what a refactor cannot do.

A resource is known by its (logical ID, type) — the split keeps every logical ID — and it moves
when the project's templates put it in another stack than the one it is deployed in. What a
stack refactor cannot do is refused in one line before anything is sent
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stack-refactoring.html): a
resource in two templates (one resource cannot go to several stacks), a deployed resource in no
template or under another type (a refactor deletes and changes nothing), a logical ID already
taken in the destination, more than five stacks, a source left empty (CloudFormation has no empty
stacks), and a stack with a stack policy (refactoring does not support stacks with one attached,
whatever it allows; CloudFormation has no call that removes one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cfnbuild.errors import UsageError

MAX_STACKS = 5  # "a maximum of 5 stacks" (stack-refactoring.html)


class RefactorRefused(UsageError):
    """The move cannot be done by a stack refactor; the line says what and what to change."""


@dataclass(frozen=True)
class DeployedStack:
    """One stack as deployed: its template (as submitted), parameter values and live resources."""

    name: str
    stack_id: str
    status: str
    template: Mapping[str, Any]
    parameters: Mapping[str, str]
    resources: Mapping[str, str]  # logical ID → type, of the resources the stack holds now
    policy: str | None = None  # the stack policy body, when one is attached
    outputs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Move:
    """One resource going from its deployed stack to the stack whose template now holds it."""

    logical_id: str
    resource_type: str
    source: str  # deployed stack name
    destination: str  # deployed stack name


@dataclass(frozen=True)
class Layout:
    """The moves, and where every resource of the stacks taking part lives after them."""

    moves: tuple[Move, ...]
    holders: Mapping[str, tuple[str, ...]]  # stack name → the logical IDs it holds after the refactor
    new_stacks: tuple[str, ...]  # stacks the refactor creates

    @property
    def stacks(self) -> tuple[str, ...]:
        """Every stack the refactor touches, in the order of ``holders``."""
        return tuple(self.holders)

    def holder(self, logical_id: str) -> str | None:
        """The stack that holds ``logical_id`` after the refactor."""
        return next((stack for stack, ids in self.holders.items() if logical_id in ids), None)


def compute_moves(
    deployed: Mapping[str, DeployedStack | None], wanted: Mapping[str, Mapping[str, Any]], *, refactor: bool = True
) -> Layout:
    """The moves from the ``deployed`` stacks (name → stack, None when not deployed) to the ``wanted`` templates.

    ``wanted`` maps each stack name of the project to its built template, in the project's order.
    ``refactor``: also refuse what only a stack refactor cannot do (:func:`refactor_blockers`);
    False for the retain-and-import path, which can.
    """
    placed = _placement(wanted)
    moves: list[Move] = []
    for name, live in deployed.items():
        if live is None:
            continue
        for logical_id, resource_type in sorted(_declared(live).items()):
            destination = _destination(live, logical_id, resource_type, placed, wanted)
            if destination != name:
                moves.append(Move(logical_id, resource_type, name, destination))
    if not moves:
        return Layout((), {}, ())
    stacks = [s for s in wanted if any(s in (m.source, m.destination) for m in moves)]
    if refactor:
        blockers = refactor_blockers(deployed, moves)
        if blockers:
            raise RefactorRefused(blockers[0])
    _check_stacks(stacks, deployed, moves)
    holders: dict[str, tuple[str, ...]] = {}
    for stack in stacks:
        there = deployed.get(stack)
        kept = [lid for lid in (_declared(there) if there else {}) if not any(m.logical_id == lid for m in moves)]
        arriving = [m.logical_id for m in moves if m.destination == stack]
        holders[stack] = tuple(sorted(kept + arriving))
    _check_collisions(moves, deployed)
    empty = [s for s, ids in holders.items() if not ids]
    if empty:
        raise RefactorRefused(
            f"{', '.join(empty)} would hold no resource after the refactor, and CloudFormation has no empty stacks; "
            "keep at least one of its resources in its template, or delete it after the upgrade"
        )
    new = tuple(s for s in stacks if deployed.get(s) is None)
    return Layout(tuple(moves), holders, new)


def _declared(stack: DeployedStack) -> dict[str, str]:
    """The stack's resources its template declares (not those a transform made from them)."""
    declared = stack.template.get("Resources") or {}
    return {lid: kind for lid, kind in stack.resources.items() if lid in declared}


def _placement(wanted: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[str, str]]:
    """Logical ID → (stack name, type) in the wanted templates; a logical ID in two of them is refused."""
    placed: dict[str, tuple[str, str]] = {}
    for stack, template in wanted.items():
        for logical_id, resource in (template.get("Resources") or {}).items():
            if logical_id in placed:
                raise RefactorRefused(
                    f"{logical_id} is in the templates of both {placed[logical_id][0]} and {stack}; a resource can "
                    "move to one stack only: keep it in one template"
                )
            placed[logical_id] = (stack, str(resource.get("Type", "")))
    return placed


def _destination(
    stack: DeployedStack,
    logical_id: str,
    resource_type: str,
    placed: Mapping[str, tuple[str, str]],
    wanted: Mapping[str, Mapping[str, Any]],
) -> str:
    found = placed.get(logical_id)
    if found is None:
        raise RefactorRefused(
            f"{logical_id} ({resource_type}) of {stack.name} is in none of the templates of {', '.join(wanted)}; a "
            "refactor deletes nothing: put it in one of them (or remove it with a deploy of the old layout first)"
        )
    if found[1] != resource_type:
        raise RefactorRefused(
            f"{logical_id} is a {resource_type} in {stack.name} but a {found[1]} in the template of {found[0]}; a "
            "refactor changes no resource: keep its type (or give the new one another logical ID)"
        )
    return found[0]


def _check_stacks(stacks: Sequence[str], deployed: Mapping[str, DeployedStack | None], moves: Sequence[Move]) -> None:
    if len(stacks) > MAX_STACKS:
        raise RefactorRefused(
            f"the moves touch {len(stacks)} stacks ({', '.join(stacks)}); one stack refactor takes at most "
            f"{MAX_STACKS}: split the change into steps of at most {MAX_STACKS} stacks"
        )
    for name in stacks:
        stack = deployed.get(name)
        if stack is None:
            continue
        if stack.status.endswith("_IN_PROGRESS"):
            raise RefactorRefused(f"{name} is busy ({stack.status}); wait until it settles, then run again")
        if stack.status.endswith("_FAILED") or stack.status == "ROLLBACK_COMPLETE":
            raise RefactorRefused(f"{name} is {stack.status}; recover it first ('cfnbuild recover'), then run again")
    del moves


def _check_collisions(moves: Sequence[Move], deployed: Mapping[str, DeployedStack | None]) -> None:
    leaving = {(m.source, m.logical_id) for m in moves}
    for move in moves:
        there = deployed.get(move.destination)
        if (
            there is not None
            and move.logical_id in there.resources
            and (move.destination, move.logical_id) not in leaving
        ):
            raise RefactorRefused(
                f"{move.logical_id} moves from {move.source} to {move.destination}, which already holds a "
                f"{there.resources[move.logical_id]} of that logical ID; rename one of them first"
            )


def refactor_blockers(deployed: Mapping[str, DeployedStack | None], moves: Sequence[Move]) -> list[str]:
    """Why a stack refactor cannot make these moves (empty when it can), one sentence each.

    A stack a resource leaves that was deployed with a ``Transform`` (the resources a transform
    makes are in no template a refactor can be given), and a stack taking part that has a stack
    policy (refactoring does not support stacks with one attached, whatever it allows, and
    CloudFormation has no call that removes one: stack-refactoring.html). Both can be done by
    retain-and-import instead (refactor-stacks.html).
    """
    found: list[str] = []
    for name, live in deployed.items():
        if live is None:
            continue
        transform = live.template.get("Transform")
        if transform and any(m.source == name for m in moves):
            found.append(
                f"{name} is deployed with Transform {transform}, and the resources a transform makes are in no "
                "template a refactor can be given; move nothing out of it: deploy a release without the transform "
                "first, then run again"
            )
    involved = {m.source for m in moves} | {m.destination for m in moves}
    for name in sorted(involved):
        live = deployed.get(name)
        if live is not None and live.policy:
            found.append(
                f"{name} has a stack policy, and CloudFormation's stack refactoring does not support stacks with a "
                "stack policy attached, whatever it allows (stack-refactoring.html), nor removes one; this stack's "
                "resources can be moved only by resource import (Retain, remove, import: "
                "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/refactor-stacks.html)"
            )
    return found


def refactor_obstacle(deployed: Mapping[str, DeployedStack | None], moves: Sequence[Move]) -> str | None:
    """Why these moves go by retain-and-import, not a stack refactor, in one sentence; None when a refactor can.

    The same two obstacles as :func:`refactor_blockers` (a stack policy on a stack taking part, a
    ``Transform`` on a stack resources leave), said together for the line that names the path taken.
    """
    involved = {m.source for m in moves} | {m.destination for m in moves}
    found = []
    for name, live in deployed.items():
        if live is None:
            continue
        said = []
        if live.policy and name in involved:
            said.append("has a stack policy")
        transform = live.template.get("Transform")
        if transform and any(m.source == name for m in moves):
            names = ", ".join(transform) if isinstance(transform, list) else str(transform)
            said.append(f"is deployed with Transform {names}")
        if said:
            found.append(f"{name} {' and '.join(said)}")
    if not found:
        return None
    return (
        f"{'; '.join(found)}, and stack refactoring supports neither a stack with a stack policy attached nor moving "
        "resources out of a stack a transform processes "
        "(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stack-refactoring.html)"
    )
