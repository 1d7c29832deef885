"""``cfnbuild stackset plan|deploy``: a stack delivered to many accounts and regions as a StackSet.

The options become a :class:`~cfnbuild.deliver.stacksets.Delivery` (checked by
:func:`~cfnbuild.deliver.stacksets.parse_delivery`); the work is
:class:`~cfnbuild.deliver.stacksets.StackSetDelivery`'s, on an engine pointed at the target.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from cfnbuild.cli.targets import Where, engine_for, parse_params, target_options
from cfnbuild.deliver.stacksets import (
    DEFAULT_ADMINISTRATION_ROLE,
    DEFAULT_EXECUTION_ROLE,
    Delivery,
    StackSetDelivery,
    parse_delivery,
    render_plan,
)
from cfnbuild.deploy.engine import Request
from cfnbuild.errors import CfnbuildError

EXIT_NO_CHANGES, EXIT_CHANGES = 0, 2
_TARGET_KEYS = ("env", "stack", "region", "profile", "endpoint_url", "local")


def _delivery_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--accounts", metavar="ID,ID", help="Target accounts, 12 digits each, comma-separated (required)."
        ),
        click.option(
            "--regions",
            "target_regions",
            metavar="REGION,REGION",
            help="Target regions, comma-separated (required); --region is the administrator's.",
        ),
        click.option("--max-concurrent", metavar="N", help="At most N accounts at a time (AWS's default: 1)."),
        click.option("--max-concurrent-percent", metavar="P", help="At most P% of the accounts at a time (1-100)."),
        click.option(
            "--failure-tolerance",
            metavar="N",
            help="Accounts per region that may fail before a region stops (default 0).",
        ),
        click.option("--failure-tolerance-percent", metavar="P", help="The same as a percentage (0-100)."),
        click.option(
            "--region-order",
            metavar="parallel|sequential",
            help="Regions one after another, in the order named (default), or all at once.",
        ),
        click.option(
            "--administration-role-arn",
            metavar="ARN",
            help=f"Administration role (default: AWS's, {DEFAULT_ADMINISTRATION_ROLE} in the administrator account).",
        ),
        click.option(
            "--execution-role-name",
            metavar="NAME",
            help=f"Execution role in each target account (default: AWS's, {DEFAULT_EXECUTION_ROLE}).",
        ),
        click.option(
            "--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a template parameter (repeatable)."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _parse(kwargs: dict[str, Any]) -> tuple[Where, Delivery, dict[str, str]]:
    where = Where(*(kwargs.pop(key) for key in _TARGET_KEYS))
    params = parse_params(kwargs.pop("params"))
    delivery = parse_delivery(
        accounts=kwargs.pop("accounts"),
        regions=kwargs.pop("target_regions"),
        max_concurrent=kwargs.pop("max_concurrent"),
        max_concurrent_percent=kwargs.pop("max_concurrent_percent"),
        failure_tolerance=kwargs.pop("failure_tolerance"),
        failure_tolerance_percent=kwargs.pop("failure_tolerance_percent"),
        region_order=kwargs.pop("region_order"),
        administration_role_arn=kwargs.pop("administration_role_arn"),
        execution_role_name=kwargs.pop("execution_role_name"),
        admin_region=where.region,
    )
    return where, delivery, params


@contextmanager
def _delivery_for(
    ctx: click.Context, where: Where, delivery: Delivery, params: dict[str, str], *, yes: bool
) -> Iterator[StackSetDelivery]:
    with engine_for(ctx, where) as (engine, env, stack):
        request = Request(env, stack, param_overrides=params, yes=yes or where.local)
        yield StackSetDelivery(engine, request, delivery)


@click.group(name="stackset")
def stackset() -> None:
    """Deliver a stack to many accounts and regions as a CloudFormation StackSet.

    The template is the one build wrote (output/ENV/STACK.json); the stack set is named like the
    stack (<stack>-<env>[-<suffix>]) and lives in the administrator account's region (--region,
    default: the config's first). Instances are every account x region named; instances that
    exist but are not named are left as they are, never deleted.

    \b
    Example:
      cfnbuild stackset plan --env prod --accounts 111111111111,222222222222 --regions eu-west-1,eu-central-1
    """


@stackset.command(name="plan")
@target_options
@_delivery_options
@click.pass_context
def plan_command(ctx: click.Context, /, **kwargs: Any) -> None:
    """Show what 'stackset deploy' would do: stack set, template, parameters, each instance.

    Exit code: 0 no changes, 2 changes, 1 error (bad options too, since 2 means changes).

    \b
    Example:
      cfnbuild stackset plan --env prod --accounts 111111111111,222222222222 --regions eu-west-1,eu-central-1
    """
    try:
        where, delivery, params = _parse(kwargs)
        with _delivery_for(ctx, where, delivery, params, yes=False) as runner:
            plan, _ = runner.plan()
    except CfnbuildError as exc:
        exc.exit_code = 1  # plan: 2 means "changes"; every error is 1
        raise
    render_plan(plan, ctx.obj["out"])
    if plan.refusal:
        raise CfnbuildError(f"deploy would refuse: {plan.refusal}")
    ctx.exit(EXIT_CHANGES if plan.has_changes else EXIT_NO_CHANGES)


@stackset.command(name="deploy")
@target_options
@_delivery_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (CI).")
@click.pass_context
def deploy_command(ctx: click.Context, /, yes: bool, **kwargs: Any) -> None:
    """Create or update the stack set and its instances, and watch every operation to the end.

    The plan first; then confirmation (--yes for CI; refused without a terminal). Each call
    carries its own operation id; each operation is polled until it ends, with each instance's
    result as it comes, and the end is a table of every instance's status and reason. Exit 1
    when an operation fails beyond the failure tolerance or is stopped, naming the instances.

    \b
    Example:
      cfnbuild stackset deploy --env prod --accounts 111111111111,222222222222 --regions eu-west-1 \\
          --max-concurrent 2 --failure-tolerance 1 --yes
    """
    where, delivery, params = _parse(kwargs)
    with _delivery_for(ctx, where, delivery, params, yes=yes) as runner:
        if where.local and not yes:
            ctx.obj["err"].print(
                "--local: the emulator is throwaway, so no confirmation is asked", markup=False, soft_wrap=True
            )
        runner.deploy()
