"""Every stack of an environment, in the order of their cross-stack references.

The graph is read from the written templates (:mod:`cfnbuild.project.stack_graph`): no render.
A deploy shows every stack's plan first, in order — a stack whose upstream is not deployed yet
shows the value as ``from stack X (not deployed yet)`` —, asks once, then deploys each stack once
the stacks it takes outputs of are done, independent stacks side by side (at most
``max_parallel``, each on its own engine and boto3 client, events prefixed with the stack). Each
stack is staged again when its turn comes, so its change set carries the upstream's outputs as
deployed a moment before. A failure stops what depends on it, and the summary says what was not
started and why; stacks that do not depend on the failed one go on. A delete runs in the reverse
order, one wave of independent stacks after another.

``plan --out`` keeps every stack's change set (all of them deleted again if one plan fails) for
one file of them all; a deploy of that file shows each stack's saved part and executes it at the
stack's turn, where the engine refuses a part whose upstream now gives another value than planned.

Why deliver: like :mod:`.multiregion`, it ships built templates beyond one stack, on the deploy
engine; the CLI only parses options and prints.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cfnbuild.build.graph import references
from cfnbuild.build.references import waiting_value
from cfnbuild.deliver.multiregion import RegionReporter
from cfnbuild.deploy.aws import expected_error
from cfnbuild.deploy.engine import Engine, FollowUpFailed, Refused, Request
from cfnbuild.deploy.plan import Plan, load_plan, render_text
from cfnbuild.files import read_json
from cfnbuild.project.app import Project
from cfnbuild.project.stack_graph import StackGraph, stack_graph

# How a stack's part ended: the results whose stack may be used by the stacks after it.
USABLE = frozenset({"deployed", "no changes", "incomplete"})


@dataclass(frozen=True)
class StackResult:
    """How one stack's deploy ended; ``started``/``finished`` are monotonic seconds (0 when not run)."""

    stack: str
    # "deployed" | "no changes" | "incomplete" (deployed; a step after it failed) | "failed" | "not started"
    result: str
    started: float = 0.0
    finished: float = 0.0
    detail: str = ""


def environment_graph(project: Project, environment: str, stacks: Sequence[str]) -> StackGraph:
    """The graph of ``stacks`` of ``environment``, from the templates build wrote."""
    templates = {
        stack: read_json(project.template_path(environment, stack), root=project.root, environment=environment)
        for stack in stacks
    }
    return stack_graph(templates, environment=environment)


def plan_graph(
    make_engine: Callable[[str], Engine],
    graph: StackGraph,
    request: Request,
    out: Console,
    *,
    keep: bool = False,
    show: bool = True,
) -> list[Plan]:
    """Every stack's plan, in order, then what each upstream's plan does downstream.

    No change set is left unless ``keep`` (``plan --out``: ``deploy --plan`` executes them); if
    one stack's plan fails, the change sets kept for the stacks before it are deleted again.
    ``show=False`` prints nothing (the plans go out as one JSON or Markdown document).
    """
    plans: dict[str, Plan] = {}
    kept: list[tuple[Engine, Any, bool]] = []
    try:
        for stack in graph.order():
            if show:
                out.rule(f"plan for {stack}")
            engine = make_engine(stack)
            plan, created = engine.plan(replace(request, stack=stack), keep=keep)
            if created is not None and keep:
                kept.append((engine, created, plan.change_set_type == "CREATE"))
            if show:
                render_text(plan, out)
            plans[stack] = plan
    except BaseException:
        for engine, created, created_stack in kept:
            engine.discard(created, created_stack=created_stack)
        raise
    if show:
        for line in downstream_effects(graph, plans):
            out.print(line, markup=False)
    return list(plans.values())


def waiting_inputs(graph: StackGraph, plans: Mapping[str, Plan]) -> list[str]:
    """One line per stack whose plan holds an input whose upstream is not deployed yet (a placeholder value)."""
    lines = []
    for stack in graph.order():
        for used in graph.inputs[stack]:
            if plans[stack].parameter_values.get(used.parameter) == waiting_value(used.stack):
                lines.append(
                    f"{stack}: its plan takes {used.parameter} from stack {used.stack}, not deployed yet, so a deploy "
                    f"of this saved plan stops before {stack}; deploy without --plan, or plan again once "
                    f"{used.stack} is deployed"
                )
    return lines


def downstream_effects(graph: StackGraph, plans: Mapping[str, Plan]) -> list[str]:
    """One line per used output that an upstream's plan replaces, modifies or removes the source of."""
    lines = []
    for stack in graph.order():
        changes = {r.logical_id: r.kind for r in plans[stack].resources if r.kind in ("modify", "replace", "remove")}
        for downstream in graph.downstreams(stack):
            for used in (i for i in graph.inputs[downstream] if i.stack == stack):
                value = graph.output_values.get(stack, {}).get(used.output)
                hit = sorted((lid, changes[lid]) for lid in references(value) if lid in changes)
                if not hit:
                    continue
                # A replaced or removed resource has new identifiers; a modified one may (a GetAtt).
                verb = "changes" if any(kind != "modify" for _, kind in hit) else "may change"
                causes = ", ".join(f"{lid} {kind}" for lid, kind in hit)
                lines.append(
                    f"{stack}: output {used.output} {verb} ({causes}); {downstream} takes it as {used.parameter} "
                    f"and is updated after {stack}"
                )
    return lines


def deploy_graph(
    make_engine: Callable[[str], Engine],
    graph: StackGraph,
    request: Request,
    *,
    max_parallel: int,
    out: Console,
    confirm: Callable[[str], str] | None,
) -> list[StackResult]:
    """Plan every stack, confirm once, deploy in dependency order; the results in deploy order."""
    if request.plan_file is not None:  # the plans saved by 'plan --out': each stack executes its own
        plans = _saved_plans(make_engine, graph, request, request.plan_file, out)
    else:
        plans = plan_graph(make_engine, graph, request, out)
    blocked = [
        f"{p.stack_name}: {r.logical_id}" for p in plans for r in p.dangers if r.logical_id not in request.allow_replace
    ]
    if blocked:
        names = " ".join(f"--allow-replace {b.split(': ')[1]}" for b in blocked)
        raise Refused(
            f"the plans replace or remove stateful resource(s) {', '.join(blocked)}, which may lose data; nothing "
            f"was changed. If that is intended, run again with {names}"
        )
    if any(p.has_changes for p in plans):
        _confirm(plans, request, confirm)
    results = _run(make_engine, graph, request, max_parallel=max_parallel, out=out)
    _summary(out, results, f"stacks of {request.environment}, in deploy order")
    return results


def _saved_plans(
    make_engine: Callable[[str], Engine], graph: StackGraph, request: Request, plan_file: Path, out: Console
) -> list[Plan]:
    """Every stack's part of the saved plan of every stack, shown in order (each is checked again at its turn)."""
    plans = []
    for stack in graph.order():
        out.rule(f"saved plan for {stack}")
        plan = load_plan(plan_file, make_engine(stack).stack_name(replace(request, stack=stack)))
        render_text(plan, out)
        plans.append(plan)
    return plans


def _confirm(plans: Sequence[Plan], request: Request, confirm: Callable[[str], str] | None) -> None:
    if request.yes:
        return
    if confirm is None:
        raise Refused("not a terminal, so nobody can confirm; review the plans and pass --yes")
    names = ", ".join(p.stack_name for p in plans if p.has_changes)
    if any(p.destructive for p in plans):
        answer = confirm(
            f"These plans replace or remove resources. Type the environment ({request.environment}) to go on"
        )
        if answer.strip() != request.environment:
            raise Refused("not confirmed; nothing was changed")
    elif confirm(f"Deploy {names}? Type 'yes' to go on").strip().lower() not in ("y", "yes"):
        raise Refused("not confirmed; nothing was changed")


def _deploy_one(engine: Engine, request: Request) -> str:
    """Stage and execute one stack (its plan was shown and confirmed); ``deployed`` or ``no changes``."""
    staged = engine.stage(request)
    if staged.created is None:
        engine.finish_unchanged(staged)
        return "no changes"
    engine.execute(staged)
    return "deployed"


def _run(
    make_engine: Callable[[str], Engine],
    graph: StackGraph,
    request: Request,
    *,
    max_parallel: int,
    out: Console,
) -> list[StackResult]:
    """Deploy each stack once its upstreams are done; what depends on a failure is not started."""
    results: dict[str, StackResult] = {}
    waiting = list(graph.order())
    running: dict[Future[str], tuple[str, float]] = {}
    with ThreadPoolExecutor(max_workers=max(1, max_parallel)) as pool:
        while waiting or running:
            for stack in list(waiting):
                failed = [u for u in graph.upstreams[stack] if u in results and results[u].result not in USABLE]
                if failed:
                    waiting.remove(stack)
                    results[stack] = StackResult(stack, "not started", detail=f"{', '.join(failed)} did not deploy")
                elif len(running) < max_parallel and all(u in results for u in graph.upstreams[stack]):
                    waiting.remove(stack)
                    out.print(Text(f"[{stack}] ", style="bold") + Text("deploying"))
                    engine = _quiet(make_engine(stack), out, stack)
                    future = pool.submit(_deploy_one, engine, replace(request, stack=stack, yes=True))
                    running[future] = (stack, time.monotonic())
            if not running:  # nothing runs, so nothing waiting can become ready (a graph made by hand)
                results.update({s: StackResult(s, "not started", detail="its upstreams never ran") for s in waiting})
                waiting.clear()
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                stack, started = running.pop(future)
                results[stack] = _result(stack, future, started)
    return [results[stack] for stack in graph.order()]


def _result(stack: str, future: Future[str], started: float) -> StackResult:
    try:
        return StackResult(stack, future.result(), started, time.monotonic())
    except FollowUpFailed as exc:  # deployed; a step after it was not done
        return StackResult(stack, "incomplete", started, time.monotonic(), str(exc))
    except Exception as exc:
        return StackResult(stack, "failed", started, time.monotonic(), str(expected_error(exc)))


def _quiet(engine: Engine, out: Console, stack: str) -> Engine:
    """``engine`` with its plan (shown already) kept quiet and its events printed with the stack's name."""
    quiet = Console(file=io.StringIO(), width=200)
    engine.out, engine.err = quiet, quiet
    engine.reporter = lambda _console: RegionReporter(out, stack)
    return engine


def delete_order(graph: StackGraph) -> tuple[tuple[str, ...], ...]:
    """The waves a delete runs in: every stack after the stacks that take its outputs."""
    return tuple(reversed(graph.layers()))


def run_waves(
    waves: Sequence[Sequence[str]], act: Callable[[str], Any], *, max_parallel: int, out: Console
) -> list[StackResult]:
    """Run ``act`` on each stack, wave by wave (a wave's stacks side by side); a failure stops the waves after it."""
    results: list[StackResult] = []
    for wave in waves:
        if any(r.result == "failed" for r in results):
            results += [StackResult(s, "not started", detail="a stack before it failed") for s in wave]
            continue
        with ThreadPoolExecutor(max_workers=max(1, max_parallel)) as pool:
            futures = {stack: (pool.submit(act, stack), time.monotonic()) for stack in wave}
            for stack, (future, started) in futures.items():
                results.append(_result(stack, future, started))
    _summary(out, results, "stacks, in the order they were worked on")
    return results


def _summary(out: Console, results: Sequence[StackResult], title: str) -> None:
    table = Table(title=title)
    for column in ("stack", "result", "time", "detail"):
        table.add_column(column, overflow="fold")
    styles: Mapping[str, str] = {"failed": "bold red", "not started": "yellow", "incomplete": "yellow"}
    for r in results:
        seconds = f"{r.finished - r.started:.1f}s" if r.finished else "-"
        table.add_row(r.stack, Text(str(r.result), style=styles.get(str(r.result), "")), seconds, r.detail)
    out.print(table)
