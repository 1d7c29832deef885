"""The stack commands on every stack of an environment (no ``--stack`` in a project of several).

Thin: options come parsed from :mod:`cfnbuild.cli.deploy`; the order, the waves and the
parallel deploys are :mod:`cfnbuild.deliver.graph_run`'s. With ``--stack X`` a command acts on
``X`` alone and names the stacks that take its outputs (:func:`say_dependents`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from cfnbuild.cli.targets import Resolved, Where, engines_for, prompt
from cfnbuild.deliver.graph_run import (
    USABLE,
    delete_order,
    deploy_graph,
    downstream_effects,
    environment_graph,
    plan_graph,
    run_waves,
    waiting_inputs,
)
from cfnbuild.deploy.engine import Refused, Request
from cfnbuild.deploy.events import make_reporter
from cfnbuild.deploy.model import DeployedStack
from cfnbuild.deploy.plan import render_graph_json, render_markdown, save_graph_plan
from cfnbuild.deploy.removal import delete_stack, prepare_delete
from cfnbuild.errors import CfnbuildError
from cfnbuild.project.stack_graph import StackGraph

DEFAULT_MAX_PARALLEL = 4


def graph_of(resolved: Resolved) -> StackGraph:
    """The graph of the environment's stacks, from the templates build wrote."""
    view = resolved.project.deploy_view(resolved.environment)
    return environment_graph(resolved.project, resolved.environment, view.stacks)


def stacks_in_order(resolved: Resolved) -> tuple[str, ...]:
    """The stacks the command acts on, each after the stacks it takes outputs of."""
    if not resolved.several:
        return resolved.stacks or (resolved.stack,)
    return graph_of(resolved).order()


def say_dependents(ctx: click.Context, resolved: Resolved, doing: str) -> None:
    """With ``--stack X`` in a project of several stacks: one line naming the stacks that take X's outputs."""
    view = resolved.project.deploy_view(resolved.environment)
    if len(view.stacks) < 2:
        return
    dependents = graph_of(resolved).dependents(resolved.stack)
    if not dependents:
        ctx.obj["err"].print(f"{resolved.stack}: no stack takes its outputs", markup=False)
        return
    names = ", ".join(dependents)
    what = {
        "deploy": f"they take its outputs when they are deployed next (cfnbuild deploy --env {resolved.environment})",
        "delete": "they keep the values they were deployed with; delete them first if they must not outlive it",
        "plan": "a change of its outputs reaches them at their next deploy",
    }[doing]
    ctx.obj["err"].print(f"{resolved.stack}: {names} depend on it; {what}", markup=False)


def plan_all(
    ctx: click.Context,
    where: Where,
    resolved: Resolved,
    request: Request,
    *,
    as_json: bool = False,
    markdown: bool = False,
    out_file: Path | None = None,
) -> bool:
    """Every stack's plan, in graph order, as text or one JSON / Markdown document, or saved; whether any changes."""
    graph = graph_of(resolved)
    out: Console = ctx.obj["out"]
    text = not (as_json or markdown)
    with engines_for(ctx, where, lock="plan", resolved=resolved) as engines:
        plans = plan_graph(engines.for_stack, graph, request, out, keep=out_file is not None, show=text)
    order, env = graph.order(), resolved.environment
    effects = downstream_effects(graph, dict(zip(order, plans, strict=True)))
    if as_json:
        out.print(render_graph_json(env, order, plans, effects), markup=False, soft_wrap=True)
    elif markdown:
        parts = [render_markdown(p) for p in plans]
        if effects:
            parts.append("#### What the plans do downstream\n\n" + "".join(f"- {line}\n" for line in effects))
        out.print("\n".join(parts), markup=False, soft_wrap=True)
    if out_file is not None:
        save_graph_plan(out_file, env, order, plans, effects)
        for line in waiting_inputs(graph, dict(zip(order, plans, strict=True))):
            ctx.obj["err"].print(line, markup=False)
        ctx.obj["err"].print(
            f"saved the plans of {len(plans)} stacks to {out_file}; deploy them with --plan {out_file}", markup=False
        )
    return any(p.has_changes for p in plans)


def deploy_all(
    ctx: click.Context, where: Where, resolved: Resolved, request: Request, *, wait: bool, max_parallel: int | None
) -> None:
    """Every stack: every plan first, one confirmation, then in dependency order, independent ones side by side."""
    graph = graph_of(resolved)
    out: Console = ctx.obj["out"]
    out.print(f"{resolved.environment}: {' → '.join(' + '.join(layer) for layer in graph.layers())}", markup=False)
    with engines_for(ctx, where, lock="deploy", wait=wait, resolved=resolved) as engines:
        results = deploy_graph(
            engines.for_stack,
            graph,
            request,
            max_parallel=max_parallel or DEFAULT_MAX_PARALLEL,
            out=out,
            confirm=prompt if sys.stdin.isatty() else None,
        )
    failed = [r for r in results if r.result not in USABLE]
    if failed:
        details = "; ".join(f"{r.stack} {r.result}: {r.detail}" for r in failed)
        raise CfnbuildError(f"{len(failed)} of {len(results)} stack(s) not deployed: {details}")


def delete_all(ctx: click.Context, where: Where, resolved: Resolved, *, yes: bool) -> None:
    """Every stack, each after the stacks that take its outputs; one confirmation for them all."""
    graph = graph_of(resolved)
    out: Console = ctx.obj["out"]
    env = resolved.environment
    with engines_for(ctx, where, lock="delete", resolved=resolved) as engines:
        found: dict[str, tuple[Any, DeployedStack]] = {}
        for stack in graph.order():
            engine = engines.for_stack(stack)
            deployed = prepare_delete(engine, engine.stack_name(Request(env, stack)), env, out)
            if deployed is None:
                out.print(f"{engine.stack_name(Request(env, stack))}: not deployed; nothing to delete", markup=False)
            else:
                found[stack] = (engine, deployed)
        if not found:
            return
        if not (yes or where.local):
            if not sys.stdin.isatty():
                raise Refused("not a terminal, so nobody can confirm; pass --yes")
            names = ", ".join(deployed.name for _, deployed in found.values())
            if prompt(f"Type the environment ({env}) to delete {names}").strip() != env:
                raise Refused("not confirmed; nothing was deleted")

        def delete_one(stack: str) -> str:
            engine, deployed = found[stack]
            delete_stack(engine, deployed, out, make_reporter(out, live=False))
            return "deleted"

        waves = [[s for s in wave if s in found] for wave in delete_order(graph)]
        results = run_waves([w for w in waves if w], delete_one, max_parallel=DEFAULT_MAX_PARALLEL, out=out)
    failed = [r for r in results if r.result != "deleted"]
    if failed:
        details = "; ".join(f"{r.stack} {r.result}: {r.detail}" for r in failed)
        raise CfnbuildError(f"{len(failed)} of {len(results)} stack(s) not deleted: {details}")


def outputs_all(ctx: click.Context, resolved: Resolved, one: Callable[[str], None]) -> None:
    """``one`` for every stack in graph order; a stack that gives none is said, and the others still count."""
    missing: list[str] = []
    order = stacks_in_order(resolved)
    for stack in order:
        try:
            one(stack)
        except CfnbuildError as exc:
            ctx.obj["err"].print(f"{stack}: {exc}", markup=False)
            missing.append(stack)
    if missing:
        raise CfnbuildError(
            f"{len(missing)} of {len(order)} stack(s) gave no outputs: {', '.join(missing)} (the lines above say why)"
        )
