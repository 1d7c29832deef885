"""``cfnbuild init DIR``: a new project of your own, ready to build, lint and deploy."""

from __future__ import annotations

from pathlib import Path

import click

from cfnbuild.project.skeleton import write_project


@click.command(name="init")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--name", "name", metavar="NAME", help="The project's name (default: the directory's name).")
@click.pass_context
def init_command(ctx: click.Context, directory: Path, name: str | None) -> None:
    """Write a new project into DIR (new or empty): two stacks, a config, tests and a tox.ini.

    The project builds, passes cfn-lint and checkov and deploys to the embedded emulator as it
    is written: a stateful SQS queue stack and a monitoring stack that reads the queue stack's
    output. Nothing is written unless everything is.

    \b
    Example:
      cfnbuild init orders && cd orders && cfnbuild build && cfnbuild lint
    """
    project, files = write_project(directory, name)
    err = ctx.obj["err"]
    for path in files:
        err.print(f"wrote {directory / path}", markup=False)
    ctx.obj["out"].print(
        f"created project {project} in {directory}: {len(files)} files; next: cd {directory} && "
        "cfnbuild build && cfnbuild lint && cfnbuild local start && "
        f"cfnbuild deploy --local --stack {project}-queue",
        markup=False,
    )
