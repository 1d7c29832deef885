"""The delivery command ``export``: a stack as a Service Catalog product and portfolio.

The command reads its options, then runs the steps :mod:`cfnbuild.deliver.catalog` provides:
render the export, lint it, write it and, with ``--upload``, stage it and deploy the portfolio
stack through the deploy engine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import click

from cfnbuild.build.tags import standard_tags
from cfnbuild.cli.targets import Where, engine_for, only_stack, parse_params, target_options, where_of
from cfnbuild.deliver import catalog
from cfnbuild.deliver.catalog.layout import project_path
from cfnbuild.deploy.engine import Request
from cfnbuild.errors import CheckFailed, UsageError
from cfnbuild.project.app import Project


@click.command(name="export")
@target_options
@click.option("--service-catalog", "service_catalog", is_flag=True, help="Export as a Service Catalog product.")
@click.option(
    "--upload", "do_upload", is_flag=True, help="Stage the product template and create or update the portfolio stack."
)
@click.option(
    "--keep",
    type=int,
    default=catalog.DEFAULT_KEEP,
    show_default=True,
    help="How many versions the portfolio offers (the newest).",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A portfolio parameter, e.g. PrincipalArn=... (repeatable).",
)
@click.option("--yes", is_flag=True, help="With --upload: do not ask for confirmation (CI).")
@click.option("--wait", is_flag=True, help="With --upload: wait for a busy portfolio stack instead of refusing.")
@click.option(
    "--recreate-failed", is_flag=True, help="With --upload: recreate a portfolio stack whose creation failed."
)
@click.pass_context
def export_command(
    ctx: click.Context,
    /,
    *,
    service_catalog: bool,
    do_upload: bool,
    keep: int,
    params: tuple[str, ...],
    yes: bool,
    wait: bool,
    recreate_failed: bool,
    **kwargs: Any,
) -> None:
    """Export a stack as a Service Catalog product and portfolio, to output/service-catalog/.

    Reads the template build wrote (refused when missing or stale) and writes product.json (the
    template with a launch form: parameter groups and labels, a constraint on every parameter,
    rules), portfolio.json (portfolio, product with one artifact per kept version, principal,
    launch role granted exactly what the product's resource types need), manifest.json and
    versions.json; both templates pass cfn-lint first, or nothing is written. With --upload the
    product template goes to the staging bucket and the portfolio stack <stack>-<env>-catalog is
    deployed like 'cfnbuild deploy' deploys: plan, confirmation, events. An unchanged product
    adds no version and changes nothing.

    \b
    Example:
      cfnbuild export --service-catalog --env prod
      cfnbuild export --service-catalog --env prod --upload --param PrincipalArn=arn:aws:iam::111122223333:role/Dev
    """
    if not service_catalog:
        raise UsageError("say what to export: --service-catalog (the only format so far)")
    where = where_of(kwargs)
    if not do_upload:
        used = [flag for flag, value in _upload_only(where, params, yes, wait, recreate_failed) if value]
        if used:
            raise UsageError(f"{', '.join(used)} only apply with --upload; add --upload or leave them out")
    project: Project = ctx.obj["project_loader"]()
    environment = where.env or project.default_environment
    if environment is None:
        raise UsageError("give --env ENV (or set [tool.cfnbuild] default_env in pyproject.toml)")
    catalog_spec = project.app.catalog  # a composition of every stack in one, when the project has one
    stack = where.stack or (catalog_spec.name if catalog_spec else only_stack([s.name for s in project.app.stacks]))
    export = _export(ctx, project, environment, stack, keep=keep)
    if not do_upload:
        return
    outputs = _upload(
        ctx, where, project, export, stack=stack, params=params, yes=yes, wait=wait, recreate_failed=recreate_failed
    )
    for key, value in sorted(outputs.items()):
        ctx.obj["out"].print(f"{key} = {value}", markup=False)


def _export(ctx: click.Context, project: Project, environment: str, stack: str, *, keep: int) -> catalog.Export:
    """Render the export, refuse it on a lint finding, write what changed, and say what was done."""
    err = ctx.obj["err"]
    with err.status("rendering the Service Catalog export…"):
        export = catalog.build_export(project, environment, stack, keep=keep)
    regions = project.config(environment).regions
    with err.status(f"linting {catalog.PRODUCT_FILE} and {catalog.PORTFOLIO_FILE} with cfn-lint…"):
        findings = catalog.lint_export(project, export, regions)
    if findings:
        for finding in findings:
            err.print(str(finding), markup=False)
        raise CheckFailed(f"{len(findings)} cfn-lint finding(s) in the export; nothing was written")
    for name, note in sorted(export.product.added_constraints.items()):
        err.print(
            f"{catalog.PRODUCT_FILE}: {name} had no constraint; added {note} (the blueprint should own it)",
            markup=False,
        )
    written = catalog.write_export(export)
    for path in written:
        err.print(f"wrote {project_path(project, path)}", markup=False)
    offered = ", ".join(v.version for v in export.history.versions)
    ctx.obj["out"].print(
        f"Service Catalog export of {export.stack_name}: version {export.version.version}; the portfolio offers "
        f"{offered}; {len(written)} file(s) written, {len(export.files) - len(written)} unchanged",
        markup=False,
    )
    return export


def _upload(
    ctx: click.Context,
    where: Where,
    project: Project,
    export: catalog.Export,
    *,
    stack: str,
    params: Sequence[str],
    yes: bool,
    wait: bool,
    recreate_failed: bool,
) -> dict[str, str]:
    """Stage the export and deploy its portfolio stack with an engine pointed at the target; its outputs."""
    # The exported stack (the catalog composition by default), not one the options must name.
    with engine_for(ctx, dataclasses.replace(where, stack=stack)) as (engine, env, _):
        config = project.config(env)
        catalog_engine = catalog.CatalogEngine(
            project=engine.project,
            aws=engine.aws,
            out=engine.out,
            err=engine.err,
            poll=engine.poll,
            sleep=engine.sleep,
            confirm=engine.confirm,
            reporter=engine.reporter,
            catalog_stack=export.catalog_stack_name,
            catalog_template=export.portfolio,
            catalog_tags=standard_tags(config.project, env, config.tags),
            outputs_file=export.directory / f"portfolio.{engine.aws.target.region}.outputs.json",
        )
        request = Request(
            env,
            stack,
            param_overrides=parse_params(params),
            yes=yes or where.local,
            wait=wait,
            recreate_failed=recreate_failed,
        )
        return catalog.upload(catalog_engine, export, request)


def _upload_only(
    where: Where, params: Sequence[str], yes: bool, wait: bool, recreate_failed: bool
) -> list[tuple[str, object]]:
    """The options that mean something only with ``--upload``, and their values."""
    return [
        ("--region", where.region),
        ("--profile", where.profile),
        ("--endpoint-url", where.endpoint_url),
        ("--local", where.local),
        ("--param", params),
        ("--yes", yes),
        ("--wait", wait),
        ("--recreate-failed", recreate_failed),
    ]
