"""The deploy half of the CLI: plan, deploy, status, outputs, delete, drift, recover.

Every command takes ``--env``, ``--region``, ``--profile``, ``--endpoint-url`` and ``--local``.
``--local`` points them at the embedded emulator (moto in server mode on loopback) with throwaway
credentials — the project's local session when one runs (``cfnbuild local start``), else one
started in this process for this command — and runs the very same code path against it.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError
from rich.console import Console
from rich.table import Table

from cfnbuild.build.stateful import stateful_resources
from cfnbuild.cli import graph_commands as every_stack
from cfnbuild.cli.targets import (
    Engines,
    Resolved,
    Where,
    check_regions,
    engine_for,
    engines_for,
    parse_params,
    prompt,
    resolve,
    target_options,
    where_of,
)
from cfnbuild.deliver.multiregion import deploy_regions
from cfnbuild.deploy.aws import (
    error_code,
    error_message,
    is_not_implemented,
)
from cfnbuild.deploy.checks import failed_rollback_resources, last_update_start
from cfnbuild.deploy.ending import last_line, target_flags
from cfnbuild.deploy.engine import Engine, FollowUpFailed, Refused, Request
from cfnbuild.deploy.events import make_reporter, root_cause, stack_events_since, watch
from cfnbuild.deploy.followups import live_outputs
from cfnbuild.deploy.plan.render import render_markdown, render_text
from cfnbuild.deploy.plan.saved import render_json, save_plan
from cfnbuild.deploy.removal import delete_stack, prepare_delete
from cfnbuild.errors import CfnbuildError, UsageError

EXIT_NO_CHANGES, EXIT_CHANGES = 0, 2
# States whose outputs are those of a stack that works (after an update that rolled back too).
WORKING_STATES = frozenset(
    {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"}
)


@click.command()
@target_options
@click.option(
    "--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a template parameter (repeatable)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--markdown", is_flag=True, help="Print the plan as Markdown (for a pull-request comment).")
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the plan; keeps its change set for 'deploy --plan'.",
)
@click.pass_context
def plan(
    ctx: click.Context, /, params: tuple[str, ...], as_json: bool, markdown: bool, out_file: Path | None, **kwargs: Any
) -> None:
    """Show what a deploy would change, from a change set of the template build wrote.

    Exit code: 0 no changes, 2 changes, 1 error. Replacement or removal of a stateful resource is
    marked DANGER; IAM and security-group changes that widen access are called out; NoEcho
    values are masked. Without --out the change set is deleted again, so a plan leaves nothing.
    In a project of several stacks, without --stack: every stack's plan in graph order; --json and
    --out give one document holding them all, which 'deploy --plan FILE' executes stack by stack.

    \b
    Example:
      cfnbuild plan --env prod --markdown > plan.md
      cfnbuild plan --env prod --out prod.plan && cfnbuild deploy --env prod --plan prod.plan
    """
    if as_json and markdown:
        raise UsageError("give --json or --markdown, not both")
    where = where_of(kwargs)
    try:
        resolved = resolve(ctx, where, several=True)
        if resolved.several:  # every stack of the environment, in graph order
            request = Request(resolved.environment, resolved.stack, param_overrides=parse_params(params))
            changes = every_stack.plan_all(
                ctx, where, resolved, request, as_json=as_json, markdown=markdown, out_file=out_file
            )
            ctx.exit(EXIT_CHANGES if changes else EXIT_NO_CHANGES)
        every_stack.say_dependents(ctx, resolved, "plan")
        with engine_for(ctx, where, lock="plan", resolved=resolved) as (engine, env, stack):
            result, _ = engine.plan(
                Request(env, stack, param_overrides=parse_params(params)), keep=out_file is not None
            )
    except CfnbuildError as exc:
        exc.exit_code = 1  # plan: 2 means "changes"; every error is 1
        raise
    if as_json:
        ctx.obj["out"].print(render_json(result), markup=False, soft_wrap=True)
    elif markdown:
        ctx.obj["out"].print(render_markdown(result), markup=False, soft_wrap=True)
    else:
        render_text(result, ctx.obj["out"])
    if out_file is not None:
        save_plan(result, out_file)
        ctx.obj["err"].print(f"saved the plan to {out_file}; deploy it with --plan {out_file}", markup=False)
    ctx.exit(EXIT_CHANGES if result.has_changes else EXIT_NO_CHANGES)


@click.command()
@target_options
@click.option(
    "--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a template parameter (repeatable)."
)
@click.option(
    "--yes", is_flag=True, help="Do not ask for confirmation (CI). Destructive changes still need --allow-replace."
)
@click.option(
    "--allow-replace",
    "allow_replace",
    multiple=True,
    metavar="LOGICAL_ID",
    help="Allow replacing or removing this stateful resource, for this deploy only.",
)
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Execute exactly this saved plan; refused if the stack changed since.",
)
@click.option(
    "--wait", is_flag=True, help="If the stack is busy in another operation, wait for it instead of refusing."
)
@click.option(
    "--recreate-failed",
    is_flag=True,
    help="Delete and recreate a stack stuck in ROLLBACK_COMPLETE or REVIEW_IN_PROGRESS (only stacks cfnbuild made).",
)
@click.option(
    "--allow-orphans",
    is_flag=True,
    help="With --recreate-failed: go on although the failed stack left resources outside any stack.",
)
@click.option("--regions", metavar="R1,R2", help="Deploy to several regions: every plan first, then in parallel.")
@click.option(
    "--max-parallel",
    type=click.IntRange(1, 20),
    default=None,
    help="With --regions: regions deploying at once (default 2); for every stack: stacks at once (default 4).",
)
@click.option("--continue-on-error", is_flag=True, help="With --regions: go on with the other regions when one fails.")
@click.option("--verbose", is_flag=True, help="Name what a short line only counts (the outputs not returned).")
@click.pass_context
def deploy(
    ctx: click.Context,
    /,
    *,
    params: tuple[str, ...],
    yes: bool,
    allow_replace: tuple[str, ...],
    plan_file: Path | None,
    wait: bool,
    recreate_failed: bool,
    allow_orphans: bool,
    regions: str | None,
    max_parallel: int | None,
    continue_on_error: bool,
    verbose: bool,
    **kwargs: Any,
) -> None:
    """Deploy the template build wrote, through a change set, and watch it to the end.

    First a local no-op check (nothing is created when template, parameters, tags and policies
    are as deployed); then the plan; then confirmation (typing the stack name when the plan is
    destructive). Success is CREATE_COMPLETE or UPDATE_COMPLETE only; on failure the root cause
    is printed. The outputs are printed and written to output/ENV/STACK.outputs.json.

    \b
    Example:
      cfnbuild deploy --local                      # the embedded emulator, throwaway
      cfnbuild deploy --env prod --yes --allow-replace DbCluster
      cfnbuild deploy --env prod --regions eu-west-1,eu-central-1 --max-parallel 2
    """
    where = where_of(kwargs)
    resolved = resolve(ctx, where, several=regions is None)
    single = None if resolved.several else max_parallel  # --max-parallel applies to stacks too
    _check_flags(allow_orphans=allow_orphans, recreate_failed=recreate_failed, regions=regions,
                 max_parallel=single, continue_on_error=continue_on_error)  # fmt: skip
    _check_allow_replace(resolved, allow_replace)
    request = Request(
        resolved.environment,
        resolved.stack,
        param_overrides=parse_params(params),
        allow_replace=allow_replace,
        yes=yes or where.local,
        wait=wait,
        recreate_failed=recreate_failed,
        allow_orphans=allow_orphans,
        plan_file=plan_file,
        verbose=verbose,
    )
    if resolved.several:  # every stack of the environment: plans, one confirmation, graph order
        every_stack.deploy_all(ctx, where, resolved, request, wait=wait, max_parallel=max_parallel)
        return
    every_stack.say_dependents(ctx, resolved, "deploy")
    if regions is not None:
        _deploy_regions(
            ctx,
            where,
            resolved,
            regions,
            max_parallel=max_parallel or 2,
            continue_on_error=continue_on_error,
            params=params,
            yes=yes,
            allow_replace=allow_replace,
            wait=wait,
            plan_file=plan_file,
        )
        return
    _deploy_stack(ctx, where, resolved, request, yes=yes)


def _deploy_stack(ctx: click.Context, where: Where, resolved: Resolved, request: Request, *, yes: bool) -> None:
    """Deploy one stack; print its outputs and the last line (what happened, what next)."""
    with engines_for(ctx, where, lock="deploy", wait=request.wait, resolved=resolved) as engines:
        engine = engines()
        if where.local and not yes:
            what = "the local session's stacks are" if engines.session else "the emulator is"
            ctx.obj["err"].print(f"--local: {what} throwaway, so no confirmation is asked", markup=False)
        try:
            outputs = engine.deploy(request)
        except FollowUpFailed as exc:  # deployed: show what it has, then say what was not done
            _print_outputs(ctx.obj["out"], exc.outputs)
            raise
    _print_outputs(ctx.obj["out"], outputs)
    _print_last_line(ctx, engine, engines, resolved, where)


def _print_last_line(ctx: click.Context, engine: Engine, engines: Engines, resolved: Resolved, where: Where) -> None:
    """The deploy's last line: what happened, where the outputs are, what to run next."""
    if engine.ended is None:
        return
    config_file = f"{resolved.project.config_dir.name}/{engines.environment}.toml"
    flags = target_flags(**dataclasses.asdict(where))
    one_shot = where.local and not engines.session  # the emulator ends with this command
    line = last_line(
        engine.ended, flags, outputs_file=engine.outputs_written, config_file=config_file, one_shot=one_shot
    )
    ctx.obj["out"].print(line, markup=False, soft_wrap=True)


def _check_flags(
    *,
    allow_orphans: bool,
    recreate_failed: bool,
    regions: str | None,
    max_parallel: int | None,
    continue_on_error: bool,
) -> None:
    """Refuse a flag that applies only with another one not given."""
    if allow_orphans and not recreate_failed:
        raise UsageError("--allow-orphans applies with --recreate-failed; add it or leave --allow-orphans out")
    if regions is None and (max_parallel is not None or continue_on_error):
        flag = "--max-parallel" if max_parallel is not None else "--continue-on-error"
        raise UsageError(f"{flag} applies to a deploy to several regions; give --regions R1,R2 with it")


def _check_allow_replace(resolved: Resolved, allow_replace: Sequence[str]) -> None:
    """Refuse an --allow-replace that names no stateful resource of the written template.

    For every stack at once the graph deploy refuses a danger no --allow-replace names.
    """
    if not allow_replace or resolved.several:
        return
    path = resolved.project.template_path(resolved.environment, resolved.stack)
    try:
        template = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # the deploy itself says what is wrong with the template, in one line
    stateful = stateful_resources(template)
    unknown = [name for name in allow_replace if name not in stateful]
    if unknown:
        rel = path.relative_to(resolved.project.root)
        raise UsageError(
            f"--allow-replace {', '.join(unknown)}: not a stateful resource of {rel}; it has: "
            f"{', '.join(stateful) or '(none)'}"
        )


def _deploy_regions(
    ctx: click.Context,
    where: Where,
    resolved: Resolved,
    regions: str,
    *,
    max_parallel: int,
    continue_on_error: bool,
    params: tuple[str, ...],
    yes: bool,
    allow_replace: tuple[str, ...],
    wait: bool,
    plan_file: Path | None,
) -> None:
    names = [r.strip() for r in regions.split(",") if r.strip()]
    if not names:
        raise UsageError(f"--regions {regions!r}: no region; e.g. eu-west-1,eu-central-1")
    if where.region:
        raise UsageError("give --regions or --region, not both")
    if plan_file is not None:
        raise UsageError("--plan executes one saved change set in one region; leave out --regions")
    check_regions("--regions", names, resolved.regions, resolved.environment)
    with engines_for(ctx, where, lock="deploy", wait=wait, resolved=resolved, regions=names) as engines:
        request = Request(
            engines.environment,
            engines.stack,
            param_overrides=parse_params(params),
            allow_replace=allow_replace,
            yes=yes or where.local,
            wait=wait,
        )
        results = deploy_regions(
            engines,
            request,
            names,
            max_parallel=max_parallel,
            continue_on_error=continue_on_error,
            out=ctx.obj["out"],
            confirm=prompt if sys.stdin.isatty() else None,
        )
    failed = [r for r in results if r.result in ("failed", "refused")]
    if failed:
        raise CfnbuildError(f"{len(failed)} of {len(results)} region(s) failed: {', '.join(r.region for r in failed)}")
    incomplete = [r for r in results if r.result == "incomplete"]
    if incomplete:
        raise FollowUpFailed("\n".join(r.detail for r in incomplete), {})


def _print_outputs(console: Console, outputs: dict[str, str]) -> None:
    if not outputs:
        return
    table = Table(title="outputs")
    table.add_column("output")
    table.add_column("value", overflow="fold")
    for key, value in sorted(outputs.items()):
        table.add_row(key, value)
    console.print(table)


@click.command()
@target_options
@click.option("--follow", is_flag=True, help="Keep watching new events until the stack settles.")
@click.pass_context
def status(ctx: click.Context, /, follow: bool, **kwargs: Any) -> None:
    """Show the stack's status and its latest events; --follow watches a running operation.

    \b
    Example:
      cfnbuild status --env prod --follow
    """
    where = where_of(kwargs)
    resolved = resolve(ctx, where, several=not follow)
    with engines_for(ctx, where, resolved=resolved) as engines:
        for stack in every_stack.stacks_in_order(resolved):
            _status_of(ctx, engines.for_stack(stack), resolved.environment, stack, follow=follow)


def _status_of(ctx: click.Context, engine: Engine, env: str, stack: str, *, follow: bool) -> None:
    """One stack's status and latest events, or its running operation followed."""
    name = engine.stack_name(Request(env, stack))
    deployed = engine.describe(name)
    if deployed is None:
        ctx.obj["out"].print(f"{name}: not deployed")
        return
    ctx.obj["out"].print(f"{name}: {deployed.status} (last change {deployed.last_updated})")
    if follow and deployed.status.endswith("_IN_PROGRESS"):
        try:
            outcome = watch(
                engine.cloudformation,
                deployed.stack_id,
                since=datetime.now(UTC),
                success=frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE"}),
                reporter=make_reporter(ctx.obj["out"]),
            )
        except KeyboardInterrupt:
            raise engine.interrupted("the operation", f"cfnbuild status --env {env} --follow") from None
        ctx.obj["out"].print(f"{name}: {outcome.status}")
        return
    recent = engine.cloudformation.describe_stack_events(StackName=deployed.stack_id).get("StackEvents", [])[:10]
    reporter = make_reporter(ctx.obj["out"], live=False)
    for event in reversed(recent):
        reporter.event(event, None)
    reporter.close()


@click.command()
@target_options
@click.pass_context
def outputs(ctx: click.Context, /, **kwargs: Any) -> None:
    """Print the stack's outputs and write them to output/ENV/STACK.outputs.json.

    \b
    Example:
      cfnbuild outputs --env staging
    """
    where = where_of(kwargs)
    resolved = resolve(ctx, where, several=True)
    with engines_for(ctx, where, resolved=resolved) as engines:
        if not resolved.several:
            _outputs_of(ctx, engines.for_stack(resolved.stack), resolved.environment, resolved.stack)
            return
        every_stack.outputs_all(
            ctx, resolved, lambda stack: _outputs_of(ctx, engines.for_stack(stack), resolved.environment, stack)
        )


def _outputs_of(ctx: click.Context, engine: Engine, env: str, stack: str) -> None:
    """Print one stack's outputs and write its outputs file; refused for a stack that is not working."""
    name = engine.stack_name(Request(env, stack))
    deployed = engine.describe(name)
    if deployed is None:
        raise UsageError(f"{name} is not deployed")
    if deployed.status not in WORKING_STATES:
        busy = deployed.status.endswith("_IN_PROGRESS")
        why = "it is busy; run again when it settles" if busy else "its outputs are not a working stack's"
        raise CfnbuildError(
            f"{name} is {deployed.status}: {why}; nothing was written (see 'cfnbuild status --env {env}')"
        )
    template = live_outputs(engine.deployed_template(name) or {}, deployed.parameters, deployed.stack_id, name)
    engine._write_outputs(Request(env, stack), name, deployed.stack_id, deployed.outputs, template)
    _print_outputs(ctx.obj["out"], deployed.outputs)


@click.command()
@target_options
@click.option("--yes", is_flag=True, help="Do not ask to type the stack name (CI).")
@click.pass_context
def delete(ctx: click.Context, /, yes: bool, **kwargs: Any) -> None:
    """Delete the stack; say first what is retained or snapshotted, and confirm.

    Refused while termination protection is on.

    \b
    Example:
      cfnbuild delete --env dev
    """
    where = where_of(kwargs)
    resolved = resolve(ctx, where, several=True)
    if resolved.several:  # every stack, each after the stacks that take its outputs
        every_stack.delete_all(ctx, where, resolved, yes=yes)
        return
    every_stack.say_dependents(ctx, resolved, "delete")
    with engine_for(ctx, where, lock="delete", resolved=resolved) as (engine, env, stack):
        name = engine.stack_name(Request(env, stack))
        deployed = prepare_delete(engine, name, env, ctx.obj["out"])
        if deployed is None:
            ctx.obj["out"].print(f"{name}: not deployed; nothing to delete")
            return
        if not (yes or where.local):
            if not sys.stdin.isatty():
                raise Refused("not a terminal, so nobody can confirm; pass --yes")
            if prompt(f"Type the stack name ({name}) to delete it").strip() != name:
                raise Refused("not confirmed; nothing was deleted")
        delete_stack(engine, deployed, ctx.obj["out"])


@click.command()
@target_options
@click.pass_context
def drift(ctx: click.Context, /, **kwargs: Any) -> None:
    """Detect drift: resources changed outside CloudFormation since the last deploy.

    Exit code 2 when anything drifted.

    \b
    Example:
      cfnbuild drift --env prod
    """
    where = where_of(kwargs)
    with engine_for(ctx, where) as (engine, env, stack):
        name = engine.stack_name(Request(env, stack))
        cfn = engine.cloudformation
        try:
            detection = cfn.detect_stack_drift(StackName=name)["StackDriftDetectionId"]
        except (ClientError, ResponseParserError) as exc:
            if where.local:  # moto has no DetectStackDrift: it answers with an HTML page (HTTP 500)
                raise CfnbuildError(
                    f"{name}: the emulator cannot detect drift (it has no DetectStackDrift); run 'cfnbuild drift' "
                    "against AWS"
                ) from None
            if isinstance(exc, ClientError) and is_not_implemented(exc):
                why = error_message(exc) or error_code(exc)
                raise CfnbuildError(f"the endpoint has no drift-detection API ({why}); run drift against AWS") from None
            raise
        while True:
            state = cfn.describe_stack_drift_detection_status(StackDriftDetectionId=detection)
            if state["DetectionStatus"] != "DETECTION_IN_PROGRESS":
                break
            engine.sleep(engine.poll.min_seconds)
        if state["DetectionStatus"] == "DETECTION_FAILED":
            raise CfnbuildError(f"drift detection failed: {state.get('DetectionStatusReason', '')}")
        drifts = [
            d
            for page in cfn.get_paginator("describe_stack_resource_drifts").paginate(StackName=name)
            for d in page["StackResourceDrifts"]
            if d["StackResourceDriftStatus"] in ("MODIFIED", "DELETED")
        ]
        if not drifts:
            ctx.obj["out"].print(f"{name}: no drift")
            return
        table = Table(title=f"{name}: {len(drifts)} drifted resource(s)")
        for column in ("resource", "type", "drift", "property", "expected", "actual"):
            table.add_column(column, overflow="fold")
        for d in drifts:
            differences = d.get("PropertyDifferences") or [{}]
            for diff in differences:
                table.add_row(
                    d["LogicalResourceId"], d["ResourceType"], d["StackResourceDriftStatus"],
                    diff.get("PropertyPath", ""), str(diff.get("ExpectedValue", "")), str(diff.get("ActualValue", "")),
                )  # fmt: skip
        ctx.obj["out"].print(table)
    ctx.exit(2)


@click.command()
@target_options
@click.option(
    "--skip",
    "skip",
    multiple=True,
    metavar="LOGICAL_ID",
    help="Resources to skip (default: those whose rollback failed).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (CI).")
@click.pass_context
def recover(ctx: click.Context, /, skip: tuple[str, ...], yes: bool, **kwargs: Any) -> None:
    """Continue a rollback stuck in UPDATE_ROLLBACK_FAILED, skipping the resources that failed it.

    The resources to skip are pre-filled from the failed events of the rollback; skipped
    resources are marked as rolled back without being changed, so check them afterwards.

    \b
    Example:
      cfnbuild recover --env prod
    """
    where = where_of(kwargs)
    with engine_for(ctx, where, lock="recover") as (engine, env, stack):
        name = engine.stack_name(Request(env, stack))
        deployed = engine.describe(name)
        if deployed is None or deployed.status != "UPDATE_ROLLBACK_FAILED":
            state = deployed.status if deployed else "not deployed"
            raise Refused(f"{name} is {state}; recover only continues a rollback in UPDATE_ROLLBACK_FAILED")
        cfn = engine.cloudformation
        to_skip = list(skip) or failed_rollback_resources(cfn, deployed.stack_id)
        cause = root_cause(
            cfn,
            deployed.stack_id,
            stack_events_since(cfn, deployed.stack_id, last_update_start(cfn, deployed.stack_id)),
        )
        if cause:
            ctx.obj["out"].print(f"the rollback failed at {cause.logical_id}: {cause.reason}", markup=False)
        ctx.obj["out"].print(f"resources to skip: {', '.join(to_skip) or '(none)'}", markup=False)
        if not yes:
            if not sys.stdin.isatty():
                raise Refused("not a terminal, so nobody can confirm; pass --yes")
            if prompt("Continue the rollback? Type 'yes'").strip().lower() != "yes":
                raise Refused("not confirmed; nothing was changed")
        since = engine._last_event_id(deployed.stack_id)
        try:
            cfn.continue_update_rollback(StackName=deployed.stack_id, ResourcesToSkip=to_skip)
        except ClientError as exc:
            if where.local or is_not_implemented(exc):
                raise CfnbuildError(
                    f"the emulator has no continue-rollback API ({error_message(exc) or error_code(exc)})"
                ) from None
            raise
        outcome = watch(
            cfn,
            deployed.stack_id,
            since=since,
            success=frozenset({"UPDATE_ROLLBACK_COMPLETE"}),
            reporter=make_reporter(ctx.obj["out"]),
        )
        if outcome.status != "UPDATE_ROLLBACK_COMPLETE":
            raise CfnbuildError(f"{name} ended {outcome.status}; the rollback is still stuck")
        ctx.obj["out"].print(f"{name}: UPDATE_ROLLBACK_COMPLETE; deploy again when ready")
