"""The ``cfnbuild`` command line.

Each command's docstring is its help text. Expected errors are printed as one line per problem
on stderr with the error's exit code (2 for bad input, 1 for a gate that failed); ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import gc
import importlib
import json
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from cfnbuild.build.graph import PathStep, critical_path, stacks_critical_path, stacks_to_dot, to_dot
from cfnbuild.build.lint import LintCache, skip_problems
from cfnbuild.errors import CfnbuildError, CheckFailed, UsageError
from cfnbuild.files import read_json, read_json_text
from cfnbuild.project.app import Project, load_project
from cfnbuild.project.record import RECORD_DIR, Record
from cfnbuild.project.stack_graph import stack_graph
from cfnbuild.project.writer import (
    Rendered,
    RenderOutcome,
    record_outcome,
    record_rendered,
    remove_orphans,
    render,
    render_outcome,
    stale_files,
    unchanged,
    write_atomic,
)

if TYPE_CHECKING:
    from cfnbuild.build.gates import GateRun
    from cfnbuild.build.lint import Finding

CACHE_DIR = ".cfnbuild-cache"
# Commands defined in other modules, imported only when they run (or --help lists them): the
# build and lint commands need troposphere and cfn-lint, a deploy of a built template does not.
LAZY_COMMANDS = {
    "plan": "cfnbuild.cli.deploy:plan",
    "diff": "cfnbuild.cli.deploy:plan",
    "deploy": "cfnbuild.cli.deploy:deploy",
    "status": "cfnbuild.cli.deploy:status",
    "outputs": "cfnbuild.cli.deploy:outputs",
    "delete": "cfnbuild.cli.deploy:delete",
    "drift": "cfnbuild.cli.deploy:drift",
    "recover": "cfnbuild.cli.deploy:recover",
    "refactor": "cfnbuild.cli.refactor:refactor",
    "stackset": "cfnbuild.cli.stackset:stackset",
    "export": "cfnbuild.cli.export:export_command",
    "local": "cfnbuild.cli.local:local",
    "init": "cfnbuild.cli.init:init_command",
}
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _project(ctx: click.Context) -> Project:
    project: Project = ctx.obj["project_loader"]()
    return project


def _environments(project: Project, env: str | None) -> list[str]:
    if env is not None:
        project.config_path(env)  # unknown environment → clear error (validating it is the render's job)
        return [env]
    environments = project.environments()
    if not environments:
        raise UsageError(f"{project.config_dir}: no <env>.toml files; add one per environment")
    return environments


def _rel(project: Project, path: Path) -> str:
    return str(path.relative_to(project.root))


def _lint_cache(project: Project) -> LintCache:
    return LintCache(project.root / CACHE_DIR / "cfn-lint")


def _gates(project: Project, rendered: list[Rendered], *, checkov: bool = False, here: bool = False) -> GateRun:
    """cfn-lint over ``rendered`` in the pool (checkov over their files beside it), then the skip reasons."""
    from cfnbuild.build.gates import LintJob, run_gates  # noqa: PLC0415  (multiprocessing: only where it lints)

    jobs = [LintJob(_rel(project, item.path), item.text, item.regions) for item in rendered]
    files = [item.path for item in rendered] if checkov else []
    run = run_gates(jobs, cache=_lint_cache(project), checkov_files=files, root=project.root, here=here)
    checkov_findings = [f for f in run.findings if f.tool == "checkov"]
    run.findings = [f for f in run.findings if f.tool != "checkov"]
    for job in jobs:
        run.findings += skip_problems(job.text, file=job.file)
    run.findings += checkov_findings
    return run


def _report(findings: list[Finding], what: str, failures: Sequence[str] = ()) -> None:
    for finding in findings:
        err.print(str(finding), markup=False)
    for failure in failures:
        err.print(f"error: {failure}", markup=False)
    if failures:
        raise CheckFailed(
            f"{len(failures)} template(s) could not be linted, {len(findings)} {what}; run the command again"
        )
    raise CheckFailed(f"{len(findings)} {what}")


def _unchanged(project: Project, environments: list[str], *, linted: bool) -> dict[str, Record]:
    """The environments a build would change nothing in, with their records (see :func:`unchanged`)."""
    cache = _lint_cache(project) if linted else None
    found = {env: unchanged(project, env, lint_cache=cache) for env in environments}
    return {env: record for env, record in found.items() if record is not None}


class LazyGroup(click.Group):
    """A group whose commands from other modules are imported when first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command, those not imported yet included."""
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command called ``cmd_name``, importing its module if it is one of :data:`LAZY_COMMANDS`."""
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            module, _, attribute = LAZY_COMMANDS[cmd_name].partition(":")
            command: click.Command = getattr(importlib.import_module(module), attribute)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--project",
    "project_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Project directory (default: the one holding pyproject.toml at or above the current directory).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for expected errors.")
@click.version_option(package_name="cfnbuild")
@click.pass_context
def cli(ctx: click.Context, project_dir: Path | None, debug: bool) -> None:
    """Build, lint and ship CloudFormation stacks from typed Python blueprints.

    \b
    Example:
      cfnbuild build --all        # render, lint and write output/<env>/<stack>.json
      cfnbuild lint --env prod    # cfn-lint and checkov over what build wrote
      cfnbuild deploy --local     # deploy to the embedded emulator
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    ctx.obj["project_loader"] = lambda: load_project(project_dir)
    ctx.obj["out"] = out
    ctx.obj["err"] = err


@cli.command()
@click.option("--env", "env", metavar="ENV", help="Build one environment (a file config/ENV.toml).")
@click.option("--all", "all_envs", is_flag=True, help="Build every environment (the default).")
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing in output/; fail naming every file there that a build would change.",
)
@click.pass_context
def build(ctx: click.Context, env: str | None, all_envs: bool, check: bool) -> None:
    """Render every stack, lint it with cfn-lint (E, W and I rules) and write output/.

    Every environment's config is validated before anything is built; a template with any
    cfn-lint match is not written (nothing is written then). Templates are written atomically,
    with sorted keys, so the same inputs give the same bytes on every machine. A build record in
    .cfnbuild-cache/build/ lets a later deploy prove the templates current without rendering,
    and a later build too: an environment whose record holds (no input changed) and whose
    templates cfn-lint passed is not rendered again ("nothing changed since the last build").
    cfn-lint runs in worker processes, one per CPU at most; a template linted before is answered
    from the lint cache.

    \b
    Example:
      cfnbuild build --env dev
      cfnbuild build --all --check   # in CI: fail when output/ is stale
    """
    if env and all_envs:
        raise UsageError("give --env ENV or --all, not both")
    started = time.perf_counter()
    project = _project(ctx)
    environments = _environments(project, env)
    current = _unchanged(project, environments, linted=not check)
    if len(current) == len(environments):
        count = sum(len(record.templates) for record in current.values())
        what = f"{count} template(s) for {', '.join(environments)}"
        took = f"{time.perf_counter() - started:.2f}s"
        if check:
            output = _rel(project, project.output_dir)
            out.print(f"{output}/ is up to date: {what} (nothing changed since the last build) in {took}")
        else:
            out.print(
                f"nothing changed since the last build: {what} are as recorded in {RECORD_DIR}/; "
                f"cfn-lint 0 matches (cached) in {took}"
            )
        return
    stale = [e for e in environments if e not in current]
    if check:
        with err.status("rendering stacks…"):
            rendered = render(project, stale)
        _check(project, rendered, started, len(environments) - len(stale))
        return
    outcome, here = _render_and_load_lint(project, stale)
    rendered = outcome.rendered
    with (
        _still(f"linting {len(rendered)} template(s) with cfn-lint…")
        if here
        else err.status(f"linting {len(rendered)} template(s) with cfn-lint…")
    ):
        run = _gates(project, rendered, here=here)
    if run.findings or run.failures:
        _report(run.findings, "cfn-lint finding(s); nothing was written", run.failures)
    written = [item for item in rendered if write_atomic(item.path, item.text)]
    removed = remove_orphans(project, rendered)
    record_outcome(project, outcome)
    for item in written:
        err.print(f"wrote {_rel(project, item.path)}", markup=False)
    for path in removed:
        err.print(f"removed {_rel(project, path)} (its stack is gone)", markup=False)
    kept = f"; {', '.join(current)} unchanged since the last build" if current else ""
    out.print(
        f"built {len(rendered)} template(s) for {', '.join(stale)}: {len(written)} written, "
        f"{len(rendered) - len(written)} unchanged{kept}; cfn-lint 0 matches ({run.cached} cached, "
        f"{run.linted} linted) in {time.perf_counter() - started:.2f}s"
    )


def _render_and_load_lint(project: Project, stale: list[str]) -> tuple[RenderOutcome, bool]:
    """Render ``stale`` while cfn-lint loads; whether it loaded in this process (to lint here too).

    Where build forks (:func:`cfnbuild.build.forked.can_fork`), a child renders while this
    process imports cfn-lint, so that no process holds both; elsewhere cfn-lint loads in the
    lint server while this process renders. A child that fails is rendered again here, which
    reports the error itself.
    """
    from cfnbuild.build.forked import can_fork, render_beside  # noqa: PLC0415  (as in _gates)

    if can_fork():
        from cfnbuild.build.lint import warm_up as load_here  # noqa: PLC0415

        with _still("rendering stacks…"):  # no spinner thread: a thread must not run across a fork
            outcome = render_beside(lambda: render_outcome(project, stale), load_here)
        if outcome is None:
            with err.status("rendering stacks…"):
                outcome = render_outcome(project, stale)
        return outcome, True
    from cfnbuild.build.gates import warm_up  # noqa: PLC0415

    warm_up()  # cfn-lint loads in the background while the stacks render
    with err.status("rendering stacks…"):
        return render_outcome(project, stale), False


def _still(text: str) -> Any:
    """What ``err.status`` shows, without its spinner's thread (see :func:`_render_and_load_lint`)."""
    from rich.live import Live  # noqa: PLC0415  (only where build forks)
    from rich.text import Text  # noqa: PLC0415

    return Live(Text(text, style="status.spinner"), console=err, transient=True, auto_refresh=False)


def _check(project: Project, rendered: list[Rendered], started: float, recorded: int) -> None:
    """``build --check`` of what was rendered (the other environments' records hold)."""
    stale = stale_files(project, rendered)
    if stale:
        for line in stale:
            err.print(line, markup=False)
        output = _rel(project, project.output_dir)
        raise CheckFailed(f"{len(stale)} stale file(s) in {output}/; run 'cfnbuild build' and commit the result")
    record_rendered(project, rendered)  # output/ is current: a deploy need not render again
    environments = sorted({item.environment for item in rendered})
    also = f" (and {recorded} environment(s) as recorded)" if recorded else ""
    out.print(
        f"{_rel(project, project.output_dir)}/ is up to date: {len(rendered)} template(s) "
        f"for {', '.join(environments)}{also} in {time.perf_counter() - started:.2f}s"
    )


@cli.command(name="lint")
@click.option("--env", "env", metavar="ENV", help="Lint one environment's templates.")
@click.option("--all", "all_envs", is_flag=True, help="Lint every environment (the default).")
@click.option("--no-checkov", is_flag=True, help="Run cfn-lint only (checkov takes several seconds).")
@click.pass_context
def lint_command(ctx: click.Context, env: str | None, all_envs: bool, no_checkov: bool) -> None:
    """Check the templates build wrote with cfn-lint (E, W, I) and checkov.

    The gates run on the files in output/, because that is what ships. checkov runs offline
    with the cloudformation and secrets frameworks; a check is skipped only where the
    resource's Metadata says so with a reason.

    \b
    Example:
      cfnbuild lint --env prod
    """
    if env and all_envs:
        raise UsageError("give --env ENV or --all, not both")
    started = time.perf_counter()
    project = _project(ctx)
    environments = _environments(project, env)
    configs = {e: project.config(e) for e in environments}
    rendered = []
    for environment, config in configs.items():
        for spec in project.app.stacks:
            path = project.template_path(environment, spec.name)
            text, _ = read_json_text(path, root=project.root, environment=environment)
            rendered.append(Rendered(environment, spec.name, path, text, tuple(config.regions)))
    gates = "cfn-lint" if no_checkov else "cfn-lint and checkov"
    with err.status(f"{gates} over {len(rendered)} template(s)…"):
        run = _gates(project, rendered, checkov=not no_checkov)
    if run.findings or run.failures:
        _report(run.findings, "finding(s)", run.failures)
    out.print(f"{len(rendered)} template(s) pass {gates} in {time.perf_counter() - started:.2f}s")


@cli.command(name="list")
@click.pass_context
def list_command(ctx: click.Context) -> None:
    """List the project's environments and stacks, with each template's state and the graph.

    A stack's "takes outputs of" are the stacks it uses (``stack.use``); for a project of several
    stacks a line per environment gives the deploy order, independent stacks joined by "+".

    \b
    Example:
      cfnbuild list
    """
    project = _project(ctx)
    environments = _environments(project, None)
    rendered = render(project, environments)
    stale = {line.split(":", 1)[0] for line in stale_files(project, rendered)}
    table = Table(title=f"cfnbuild project {project.root.name}", show_lines=False)
    for column in ("environment", "stack", "takes outputs of", "regions", "resources", "template", "state"):
        table.add_column(column)
    graphs = {
        env: stack_graph({i.stack: json.loads(i.text) for i in rendered if i.environment == env}, environment=env)
        for env in environments
    }
    for item in rendered:
        rel = _rel(project, item.path)
        count = len(json.loads(item.text).get("Resources", {}))
        state = "stale" if rel in stale else "up to date"
        uses = ", ".join(graphs[item.environment].upstreams[item.stack]) or "-"
        table.add_row(item.environment, item.stack, uses, ", ".join(item.regions), str(count), rel, state)
    out.print(table)
    for env, stacks in graphs.items():
        if len(stacks.stacks) > 1:  # the deploy order: waves, each after the ones before it
            out.print(f"{env}: {' → '.join(' + '.join(layer) for layer in stacks.layers())}", markup=False)


@cli.command()
@click.option("--env", "env", metavar="ENV", required=True, help="The environment whose templates to read.")
@click.option("--dot", is_flag=True, help="Print the whole dependency graph in Graphviz dot format instead.")
@click.pass_context
def graph(ctx: click.Context, env: str, dot: bool) -> None:
    """Show the critical path of each stack, and across the stacks: the slowest chain of dependencies.

    Reads output/ENV/*.json (run build first). Each resource counts the typical creation time of
    its type (cfnbuild/build/graph.py cites where each figure comes from), so a change that makes the
    deploy longer is visible in review. In a project of several stacks, each stack starts when the
    stacks it takes outputs of (stack.use) are done and stacks side by side overlap, as the deploy
    runs them: the last table is the chain of stacks and resources the whole deploy waits for.
    --dot prints every stack as a cluster, dashed arrows where a stack takes another's output.

    \b
    Example:
      cfnbuild graph --env prod
      cfnbuild graph --env dev --dot | dot -Tsvg > graph.svg
    """
    project = _project(ctx)
    _environments(project, env)
    templates = {
        spec.name: read_json(project.template_path(env, spec.name), root=project.root, environment=env)
        for spec in project.app.stacks
    }
    stacks = stack_graph(templates, environment=env)  # refuses references no order can deploy
    if dot:
        if len(templates) == 1:
            ((name, template),) = templates.items()
            out.print(to_dot(template, name=f"{env}_{name}"), markup=False)
        else:
            out.print(stacks_to_dot(templates, name=env), markup=False)
        return
    for name, template in templates.items():
        steps = critical_path(template)
        _print_path(f"critical path of {_rel(project, project.template_path(env, name))}", [(None, 0, steps)])
        total = steps[-1].finished_at if steps else 0
        count = len(template.get("Resources", {}))
        out.print(f"{count} resources; critical path {len(steps)} resources, about {_minutes(total)} to create")
    if len(templates) > 1:
        legs = stacks_critical_path(templates, stacks.upstreams)
        parts = [(leg.stack, leg.starts_at, leg.steps) for leg in legs]
        _print_path(f"critical path across the stacks of {env}", parts)
        chain = " → ".join(f"{leg.stack} ({_minutes(leg.seconds)})" for leg in legs)
        resources = sum(len(leg.steps) for leg in legs)
        out.print(
            f"critical path across {len(templates)} stacks: {chain}; {resources} resources, about "
            f"{_minutes(legs[-1].finished_at if legs else 0)} to deploy (stacks side by side overlap)",
            markup=False,
        )


def _print_path(title: str, parts: Sequence[tuple[str | None, int, Sequence[PathStep]]]) -> None:
    """A table of critical-path steps: per part (stack or None, when it starts, its steps), times from the start."""
    table = Table(title=title)
    columns = [("resource", "left"), ("type", "left"), ("typical", "right"), ("done at", "right")]
    if parts and parts[0][0] is not None:
        columns.insert(0, ("stack", "left"))
    for column, justify in columns:
        table.add_column(column, justify=justify)  # type: ignore[arg-type]  # rich's justify is a Literal
    for stack, starts_at, steps in parts:
        for step in steps:
            cells = [step.logical_id, step.resource_type, f"{step.seconds}s", _minutes(starts_at + step.finished_at)]
            table.add_row(*([stack] if stack is not None else []), *cells)
    out.print(table)


def _minutes(seconds: int) -> str:
    return f"{seconds // 60}m{seconds % 60:02d}s"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI; expected errors become one line per problem and their exit code.

    Failures of AWS calls are worded by :func:`cfnbuild.deploy.aws.explain`, the one place that
    knows what botocore's errors mean. ``--debug`` prints the traceback and keeps the exit code.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        code = cli.main(args=args, prog_name="cfnbuild", standalone_mode=False)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        expected = exc if isinstance(exc, CfnbuildError) else _aws_error(exc)
        if expected is None:
            raise  # a bug: keep its traceback
        if debug:
            traceback.print_exception(exc)
        else:
            for line in str(expected).splitlines():
                err.print(f"error: {line}", markup=False)
        sys.exit(expected.exit_code)
    if isinstance(code, int) and code:
        sys.exit(code)  # ctx.exit(N) in a command: plan's "2 = changes"


def _aws_error(exc: BaseException) -> CfnbuildError | None:
    """The one-line error for a failed AWS call, or ``None`` when ``exc`` is not one."""
    if "botocore" not in sys.modules:
        return None  # nothing has talked to AWS (build, lint): no botocore error can exist
    from cfnbuild.deploy.aws import explain  # noqa: PLC0415  (imports botocore, which build does not need)

    return explain(exc)


def run() -> None:
    """The process entry point (``cfnbuild`` and ``python -m cfnbuild``): :func:`main`, then a quick exit.

    Before the interpreter exits, every object left is frozen out of the garbage collector
    (:func:`gc.freeze`), so the collection that interpreter shutdown runs does not walk them:
    the botocore service models, the rendered templates, all of which the operating system
    frees anyway. It saves about a tenth of a second per command; files are closed by their
    ``with`` blocks, the standard streams are flushed and ``atexit`` handlers run as usual.
    """
    try:
        main()
    finally:
        gc.freeze()
