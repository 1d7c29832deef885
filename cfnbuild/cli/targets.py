"""The target every stack command works on: ``--env/--stack/--region/--profile/--endpoint-url/--local``.

:func:`target_options` adds the options; :func:`resolve` checks them against the project before
anything reaches AWS; :func:`engines_for` yields deploy engines pointed at the target — at the
embedded emulator with ``--local`` (the project's local session when one runs, else one started
here for this command), holding the stack's lock for a command that
changes it — and turns every failed AWS call inside into one line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import click
from rich.console import Console

from cfnbuild.deploy.aws import Aws, Target, check_endpoint_url, explain
from cfnbuild.deploy.engine import Engine
from cfnbuild.deploy.lock import stack_lock
from cfnbuild.errors import UsageError
from cfnbuild.local.emulator import THROWAWAY_CREDENTIALS, run_emulator
from cfnbuild.local.session import current
from cfnbuild.project.app import Project
from cfnbuild.regions import region_problem

F = TypeVar("F", bound=Callable[..., Any])
# The last line of a command run on a one-shot emulator (no local session runs).
ONE_SHOT_ENDED = (
    "--local: the emulator's state ended with this command; to keep stacks between commands, run "
    "'cfnbuild local start' first"
)


@dataclass(frozen=True)
class Where:
    """The command's target options, as given."""

    env: str | None
    stack: str | None
    region: str | None
    profile: str | None
    endpoint_url: str | None
    local: bool


def target_options(command: F) -> F:
    """The options every deploy command shares."""
    options = [
        click.option(
            "--env", "env", metavar="ENV", help="Environment (config/ENV.toml); default: [tool.cfnbuild] default_env."
        ),
        click.option(
            "--stack", "stack", metavar="NAME", help="Stack of the project (default: every stack, in graph order)."
        ),
        click.option("--region", metavar="REGION", help="AWS region (default: the config's first region)."),
        click.option("--profile", metavar="PROFILE", help="AWS profile from ~/.aws/config."),
        click.option("--endpoint-url", metavar="URL", help="Send every AWS call to this endpoint (an emulator)."),
        click.option(
            "--local",
            is_flag=True,
            help="Use the embedded emulator (moto): the local session if one runs, else one for this command.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def where_of(kwargs: dict[str, Any]) -> Where:
    """The target options taken out of a command's ``kwargs``."""
    return Where(*(kwargs.pop(k) for k in ("env", "stack", "region", "profile", "endpoint_url", "local")))


@dataclass(frozen=True)
class Engines:
    """Makes an engine for any region of one target: the same account, endpoint and stack."""

    project: Project
    environment: str
    stack: str
    stack_name: str
    default_region: str
    out: Console
    err: Console
    profile: str | None
    endpoint_url: str | None
    credentials: dict[str, str] | None
    session: bool = False  # the endpoint is the project's local session (see cfnbuild.local.session)

    def for_stack(self, stack: str) -> Engine:
        """An engine for another stack of the environment, in the target's region (its own boto3 client)."""
        name = self.project.deploy_view(self.environment).settings.stack_name(stack)
        return replace(self, stack=stack, stack_name=name)()

    def __call__(self, region: str | None = None) -> Engine:
        """An engine for ``region`` (default: the target's region)."""
        target = Target(
            self.stack_name,
            region or self.default_region,
            profile=self.profile,
            endpoint_url=self.endpoint_url,
            credentials=self.credentials,
            session=self.session,
        )
        confirm = prompt if sys.stdin.isatty() else None
        aws = Aws(target, say=lambda text: self.err.print(text, markup=False))
        return Engine(self.project, aws, self.out, self.err, confirm=confirm)


@dataclass(frozen=True)
class Resolved:
    """The command's target resolved from the project alone: environment, stack and region, checked."""

    project: Project
    environment: str
    stack: str
    stack_name: str
    region: str
    regions: tuple[str, ...]  # the config's regions, the ones the template is linted for
    # The stacks the command acts on: the one of --stack, else every stack of the environment.
    stacks: tuple[str, ...] = ()
    stack_names: tuple[str, ...] = ()  # their deployed names

    @property
    def several(self) -> bool:
        """Whether the command acts on several stacks (no --stack, in a project of several)."""
        return len(self.stacks) > 1


def resolve(ctx: click.Context, where: Where, *, several: bool = False) -> Resolved:
    """Check the target options against the project before anything reaches AWS (exit 2 when wrong).

    Without ``--stack`` a project of several stacks is refused unless the command acts on
    ``several`` (every stack of the environment, in graph order).
    """
    check_endpoint_url(where.endpoint_url)
    if where.local and (where.endpoint_url or where.profile):
        raise UsageError("--local uses the embedded emulator; leave out --endpoint-url and --profile")
    project: Project = ctx.obj["project_loader"]()
    env = where.env or project.default_environment
    if env is None:
        raise UsageError("give --env ENV (or set [tool.cfnbuild] default_env in pyproject.toml)")
    view = project.deploy_view(env)
    config = view.settings
    stack = where.stack or (view.stacks[0] if several and view.stacks else only_stack(view.stacks))
    if stack not in view.stacks:
        raise UsageError(f"unknown stack {stack!r}; this project has: {', '.join(view.stacks)}")
    stacks = (stack,) if where.stack else tuple(view.stacks)
    regions = tuple(config.regions)
    if where.region is not None:
        check_regions("--region", [where.region], regions, env)
    names = tuple(config.stack_name(s) for s in stacks)
    return Resolved(
        project, env, stack, config.stack_name(stack), where.region or config.region, regions, stacks, names
    )


def check_regions(option: str, names: Sequence[str], configured: Sequence[str], env: str) -> None:
    """Refuse a region that is not one, or one the environment's template is not linted for."""
    for name in names:
        problem = region_problem(name)
        if problem:
            raise UsageError(f"{option} {name}: {problem}")
    unlinted = [name for name in names if name not in configured]
    if unlinted:
        raise UsageError(
            f"{option}: {', '.join(unlinted)} not in config/{env}.toml regions ({', '.join(configured)}), the "
            "regions the template is linted for; add it there, run 'cfnbuild build', and deploy again"
        )


@contextmanager
def engines_for(
    ctx: click.Context,
    where: Where,
    *,
    lock: str | None = None,
    wait: bool = False,
    resolved: Resolved | None = None,
    regions: Sequence[str] = (),
) -> Iterator[Engines]:
    """Engines pointed at the target (the embedded emulator with --local, started here).

    ``lock`` names a command that changes the stack: it holds the stack's lock on this machine
    (:mod:`cfnbuild.deploy.lock`) in each of ``regions`` (default: the target's) while it runs.
    Every failure of an AWS call inside becomes one :class:`~cfnbuild.deploy.aws.AwsError` line
    (:func:`~cfnbuild.deploy.aws.explain`).
    """
    resolved = resolved or resolve(ctx, where)
    err: Console = ctx.obj["err"]
    engines = Engines(
        project=resolved.project,
        environment=resolved.environment,
        stack=resolved.stack,
        stack_name=resolved.stack_name,
        default_region=resolved.region,
        out=ctx.obj["out"],
        err=err,
        profile=where.profile,
        endpoint_url=where.endpoint_url,
        credentials=None,
    )
    try:
        with ExitStack() as stack:
            if where.local:
                engines = _local(ctx, stack, engines)
            if lock is not None and (engines.session or not where.local):  # a one-shot emulator is this process's
                for region in regions or [resolved.region]:
                    for name in sorted(
                        resolved.stack_names or (resolved.stack_name,)
                    ):  # sorted: no two wait on each other
                        target = Target(name, region, where.profile, engines.endpoint_url)
                        say = lambda t: err.print(t, markup=False)  # noqa: E731  (one line, used once)
                        stack.enter_context(stack_lock(target, lock, wait=wait, say=say))
            yield engines
    except Exception as exc:
        mapped = explain(exc)
        if mapped is None or mapped is exc:
            raise
        raise mapped from exc


def _local(ctx: click.Context, stack: ExitStack, engines: Engines) -> Engines:
    """``engines`` pointed at the project's local session when one runs, else at a one-shot emulator started here.

    The one-shot emulator's state ends with the command: the last line says so, and how to keep it.
    """
    err: Console = ctx.obj["err"]
    found = current(engines.project.root)
    if found.stale:
        err.print(f"--local: {found.stale}", markup=False)
    credentials = dict(THROWAWAY_CREDENTIALS)
    if found.session is not None:
        session = found.session
        err.print(
            f"[bold]--local:[/] the local session at {session.endpoint_url} (since {session.since()}); nothing "
            "reaches AWS; 'cfnbuild local stop' ends it"
        )
        return replace(engines, endpoint_url=session.endpoint_url, credentials=credentials, session=True)
    emulator = stack.enter_context(run_emulator(engines.default_region))
    err.print(
        f"[bold]--local:[/] the embedded AWS emulator (moto) at {emulator.endpoint_url}; nothing reaches "
        "AWS, and everything is gone when this command ends"
    )
    ctx.find_root().call_on_close(lambda: err.print(ONE_SHOT_ENDED, markup=False))
    return replace(engines, endpoint_url=emulator.endpoint_url, credentials=credentials)


@contextmanager
def engine_for(
    ctx: click.Context, where: Where, *, lock: str | None = None, wait: bool = False, resolved: Resolved | None = None
) -> Iterator[tuple[Engine, str, str]]:
    """One engine pointed at the target; yields (engine, environment, stack)."""
    with engines_for(ctx, where, lock=lock, wait=wait, resolved=resolved) as engines:
        yield engines(), engines.environment, engines.stack


def only_stack(names: list[str]) -> str:
    """The project's only stack, or a refusal asking for ``--stack``."""
    if len(names) != 1:
        raise UsageError(f"this project has stacks {', '.join(names)}; choose one with --stack")
    return names[0]


def prompt(question: str) -> str:
    """Ask on the terminal; the answer as typed (empty by default)."""
    return str(click.prompt(question, default="", show_default=False))


def parse_params(values: Sequence[str]) -> dict[str, str]:
    """``--param KEY=VALUE`` options as a mapping; refused, naming the option, when one is not written so."""
    parsed: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param {item}: write it as KEY=VALUE")
        parsed[key] = value
    return parsed
