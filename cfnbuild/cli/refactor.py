"""``cfnbuild refactor``: move deployed resources into the project's new stacks, keeping every one."""

from __future__ import annotations

import sys
from typing import Any

import click

from cfnbuild.cli.targets import Where, engines_for, prompt, resolve
from cfnbuild.deploy.aws import Aws, Target
from cfnbuild.deploy.refactor.run import Refactor
from cfnbuild.errors import UsageError


@click.command("refactor")
@click.option(
    "--env", "env", metavar="ENV", help="Environment (config/ENV.toml); default: [tool.cfnbuild] default_env."
)
@click.option("--region", metavar="REGION", help="AWS region (default: the config's first region).")
@click.option("--profile", metavar="PROFILE", help="AWS profile from ~/.aws/config.")
@click.option("--endpoint-url", metavar="URL", help="Send every AWS call to this endpoint.")
@click.option("--yes", is_flag=True, help="Do not ask: the plan is shown and carried out.")
@click.pass_context
def refactor(ctx: click.Context, /, yes: bool, **kwargs: Any) -> None:
    """Upgrade the deployed stacks to the project's stacks, moving resources and keeping every stateful one.

    For a project whose templates moved resources between stacks (a single stack split in
    several). It says first which way and why: a CloudFormation stack refactor when every stack
    taking part allows one (templates from the deployed definitions, validated, the resources
    moved, then the project's templates deployed, consumers first; needs boto3 1.36.15 or later),
    else retain-and-import (a stack policy or a Transform in the source): Retain on what moves,
    removed from the source under a temporary stack policy, imported into each new stack, then
    every stack deployed with its project template; stateless resources that cannot be imported
    are deleted and created again. The plan is shown before any change, asked once (or --yes).
    Run it again after an interruption: it picks up where it was.

    \b
    Example:
      cfnbuild refactor --env dev
    """
    where = Where(kwargs["env"], None, kwargs["region"], kwargs["profile"], kwargs["endpoint_url"], local=False)
    resolved = resolve(ctx, where, several=True)
    if len(resolved.stacks) < 2:
        raise UsageError(f"this project has one stack ({resolved.stack}); a refactor moves resources between stacks")
    with engines_for(ctx, where, lock="deploy", resolved=resolved) as engines:
        # No one stack: the refactor's calls span the environment's stacks (their names are in each line).
        target = Target("", resolved.region, where.profile, where.endpoint_url)
        aws = Aws(target, say=lambda text: ctx.obj["err"].print(text, markup=False))
        Refactor(
            project=resolved.project,
            environment=resolved.environment,
            aws=aws,
            make_engine=engines.for_stack,
            out=ctx.obj["out"],
            err=ctx.obj["err"],
            confirm=prompt if sys.stdin.isatty() else None,
            yes=yes,
        ).run()
