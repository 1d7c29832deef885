"""``cfnbuild local start|status|stop``: the embedded emulator as a session that lasts across commands.

While a session runs, every ``--local`` command of the project uses it (see
:mod:`cfnbuild.cli.targets`); :mod:`cfnbuild.local.session` starts, checks and stops it.
"""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from cfnbuild.errors import CfnbuildError
from cfnbuild.local.session import Session, current, held_stacks, record_path, start, stop
from cfnbuild.project.app import Project


@click.group()
def local() -> None:
    """Keep the embedded emulator running between commands (a local session).

    While a session runs, every --local command of this project deploys to it, so a stack lives
    from one command to the next: deploy, status, outputs, plan, delete. Without one, --local
    starts a throwaway emulator for that command alone.

    \b
    Example:
      cfnbuild local start
      cfnbuild deploy --local && cfnbuild status --local
      cfnbuild local stop
    """


@local.command(name="start")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port on 127.0.0.1 (default: any free port).")
@click.pass_context
def start_command(ctx: click.Context, port: int | None) -> None:
    """Start the emulator in the background, on loopback only, and record where it listens.

    The record is .cfnbuild-cache/local/session.json. A second start while one runs says where
    it runs and exits 0 (exit 1 when --port names another port than the one it runs on).

    \b
    Example:
      cfnbuild local start --port 4566
    """
    project: Project = ctx.obj["project_loader"]()
    err: Console = ctx.obj["err"]
    with err.status("starting the embedded emulator…"):
        session, started, stale = start(project.root, port=port, region=_default_region(project))
    if stale:
        err.print(stale, markup=False)
    if not started:
        ctx.obj["out"].print(
            f"a local session already runs at {session.where()}; --local commands use it, "
            "'cfnbuild local stop' ends it",
            markup=False,
        )
        return
    ctx.obj["out"].print(
        f"local session started at {session.endpoint_url} (pid {session.pid}, loopback only); every --local "
        "command of this project uses it until 'cfnbuild local stop'",
        markup=False,
    )


@local.command(name="status")
@click.pass_context
def status_command(ctx: click.Context) -> None:
    """Say whether the session runs, where, since when, and which stacks it holds.

    \b
    Example:
      cfnbuild local status
    """
    project: Project = ctx.obj["project_loader"]()
    out: Console = ctx.obj["out"]
    found = current(project.root)
    if found.stale:
        ctx.obj["err"].print(found.stale, markup=False)
    if found.session is None:
        out.print("no local session runs; start one with 'cfnbuild local start'", markup=False)
        return
    session = found.session
    out.print(f"local session running at {session.where()}", markup=False)
    regions = _project_regions(project, ctx.obj["err"], session)
    stacks = held_stacks(session, regions)
    if not stacks:
        out.print(f"it holds no stacks (in {', '.join(regions)})", markup=False)
        return
    table = Table(title=f"stacks in the local session ({', '.join(regions)})")
    for column in ("region", "stack", "status"):
        table.add_column(column)
    for stack in stacks:
        table.add_row(stack.region, stack.name, stack.status)
    out.print(table)


@local.command(name="stop")
@click.pass_context
def stop_command(ctx: click.Context) -> None:
    """Stop the session (SIGTERM, SIGKILL after 10 s) and remove its record; its stacks end with it.

    \b
    Example:
      cfnbuild local stop
    """
    project: Project = ctx.obj["project_loader"]()
    session, killed, stale = stop(project.root)
    if stale:
        ctx.obj["err"].print(stale, markup=False)
    if session is None:
        ctx.obj["out"].print("no local session runs; nothing to stop", markup=False)
        return
    how = "killed (it did not end on SIGTERM)" if killed else "stopped"
    ctx.obj["out"].print(
        f"local session at {session.endpoint_url} {how}; its stacks are gone and "
        f"{record_path(project.root).relative_to(project.root)} is removed",
        markup=False,
    )


def _default_region(project: Project) -> str | None:
    """The default environment's first region, the one the session's clients use by default."""
    if project.default_environment is None:
        return None
    try:
        return project.deploy_view(project.default_environment).settings.region
    except CfnbuildError:
        return None  # a broken config is said by the command that deploys it, not here


def _project_regions(project: Project, err: Console, session: Session) -> list[str]:
    """Every region the project's environments name (each config read from its build record when it holds)."""
    regions = {session.region} if session.region else set()
    for environment in project.environments():
        try:
            regions.update(project.deploy_view(environment).settings.regions)
        except CfnbuildError as exc:
            first = str(exc).splitlines()[0]
            err.print(f"{environment}: not read ({first}); its regions are not listed", markup=False)
    return sorted(regions) or ["us-east-1"]
