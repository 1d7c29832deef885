"""One environment to several regions: every plan shown before anything executes.

Each region is staged first (no-op check, change set, plan, refusals); one confirmation covers
them all (typing the stack name when any plan is destructive); then the change sets execute with
at most ``max_parallel`` regions at a time, each region's events prefixed with its name. A
failure stops the regions not started yet (their change sets are deleted) unless
``continue_on_error``; regions already running finish, since a CloudFormation operation cannot be
called back. A summary table ends the run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cfnbuild.deploy.aws import expected_error
from cfnbuild.deploy.engine import Engine, FollowUpFailed, Refused, Request, Staged
from cfnbuild.deploy.events import PlainReporter, format_event
from cfnbuild.errors import CfnbuildError


@dataclass(frozen=True)
class RegionResult:
    """How one region's deploy ended."""

    region: str
    # "deployed" | "no changes" | "incomplete" (deployed; a step after it failed) | "failed" | "not started" | "refused"
    result: str
    seconds: float
    detail: str = ""


class RegionReporter:
    """One line per event, prefixed with the region, for deploys running side by side."""

    def __init__(self, console: Console, region: str) -> None:
        self.console = console
        self.region = region
        self.inner = PlainReporter(console)

    def event(self, event: Mapping[str, Any], duration: float | None) -> None:
        """Print the event, prefixed with the region."""
        self.console.print(Text(f"[{self.region}] ", style="bold") + format_event(event, duration), soft_wrap=True)

    def waiting(self, status: str, elapsed: float) -> None:
        """Heartbeat, as the plain reporter does it."""
        self.inner.waiting(status, elapsed)

    def close(self) -> None:
        """Nothing to tear down."""


def deploy_regions(
    make_engine: Callable[[str], Engine],
    request: Request,
    regions: Sequence[str],
    *,
    max_parallel: int,
    continue_on_error: bool,
    out: Console,
    confirm: Callable[[str], str] | None,
) -> list[RegionResult]:
    """Deploy ``request`` to every region in ``regions``; the results in region order."""
    if len(set(regions)) != len(regions):
        raise CfnbuildError(f"--regions names a region twice: {', '.join(regions)}")
    engines: dict[str, Engine] = {}
    for region in regions:
        engine = make_engine(region)
        engine.reporter = lambda console, region=region: RegionReporter(console, region)  # type: ignore[misc]
        engine.outputs_name = "{stack}.{region}.outputs.json"
        engines[region] = engine
    staged: dict[str, Staged] = {}
    results: dict[str, RegionResult] = {}
    for region, engine in engines.items():
        out.rule(f"plan for {region}")
        try:
            staged[region] = engine.stage(request)
        except Exception as exc:
            failure = expected_error(exc)
            results[region] = RegionResult(region, "refused", 0.0, str(failure))
            if not continue_on_error:
                _abandon(engines, staged)
                if failure is exc:
                    raise
                raise failure from exc
    work = {region: s for region, s in staged.items() if s.created is not None}
    for region, s in staged.items():
        if s.created is None:
            try:
                engines[region].finish_unchanged(s)
                results[region] = RegionResult(region, "no changes", 0.0)
            except FollowUpFailed as exc:
                results[region] = RegionResult(region, "incomplete", 0.0, str(exc))
    if work:
        try:
            _confirm(work, request, confirm)
        except CfnbuildError:
            _abandon(engines, staged)
            raise
        results.update(_execute(engines, work, max_parallel=max_parallel, continue_on_error=continue_on_error, out=out))
    ordered = [results[region] for region in regions if region in results]
    _summary(out, ordered, request, next(iter(engines.values())).stack_name(request))
    return ordered


def _confirm(work: Mapping[str, Staged], request: Request, confirm: Callable[[str], str] | None) -> None:
    if request.yes:
        return
    if confirm is None:
        raise Refused("not a terminal, so nobody can confirm; review the plans and pass --yes")
    stack_name = next(iter(work.values())).stack_name
    regions = ", ".join(work)
    if any(s.plan is not None and s.plan.destructive for s in work.values()):
        answer = confirm(
            f"These plans replace or remove resources in {regions}. Type the stack name ({stack_name}) to go on"
        )
        if answer.strip() != stack_name:
            raise Refused("not confirmed; nothing was changed")
    elif confirm(f"Deploy to {regions}? Type 'yes' to go on").strip().lower() not in ("y", "yes"):
        raise Refused("not confirmed; nothing was changed")


def _execute(
    engines: Mapping[str, Engine],
    work: Mapping[str, Staged],
    *,
    max_parallel: int,
    continue_on_error: bool,
    out: Console,
) -> dict[str, RegionResult]:
    results: dict[str, RegionResult] = {}
    queue = list(work)
    running: dict[Future[dict[str, str]], tuple[str, float]] = {}
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=max(1, max_parallel)) as pool:
        while queue or running:
            while queue and len(running) < max_parallel and not stop.is_set():
                region = queue.pop(0)
                out.print(Text(f"[{region}] ", style="bold") + Text("executing the change set"))
                running[pool.submit(engines[region].execute, work[region])] = (region, time.monotonic())
            if stop.is_set():
                for region in queue:
                    engines[region].abandon(work[region])
                    results[region] = RegionResult(region, "not started", 0.0, "an earlier region failed")
                queue.clear()
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                region, started = running.pop(future)
                seconds = time.monotonic() - started
                try:
                    future.result()
                    results[region] = RegionResult(region, "deployed", seconds)
                except FollowUpFailed as exc:  # deployed; a step after it was not done
                    results[region] = RegionResult(region, "incomplete", seconds, str(exc))
                except Exception as exc:
                    results[region] = RegionResult(region, "failed", seconds, str(expected_error(exc)))
                    if not continue_on_error:
                        stop.set()
    return results


def _abandon(engines: Mapping[str, Engine], staged: Mapping[str, Staged]) -> None:
    for region, s in staged.items():
        engines[region].abandon(s)


def _summary(out: Console, results: Sequence[RegionResult], request: Request, stack_name: str) -> None:
    table = Table(title=f"{stack_name} ({request.environment}) by region")
    for column in ("region", "result", "time", "detail"):
        table.add_column(column, overflow="fold")
    styles = {
        "deployed": "green",
        "no changes": "",
        "incomplete": "yellow",
        "failed": "bold red",
        "refused": "bold red",
        "not started": "yellow",
    }
    for result in results:
        table.add_row(
            result.region,
            Text(result.result, style=styles.get(result.result, "")),
            f"{result.seconds:.1f}s" if result.seconds else "-",
            result.detail,
        )
    out.print(table)
