"""Run a cfnbuild command in this process, for tests whose subject is another command.

Most deploy, graph and stack-set tests first build a small project. As its own process, that
build pays for loading cfn-lint (about a second of CPU) every time, which adds up to minutes of
the suite on two CPUs. :func:`build_here` runs the very same command (:func:`cfnbuild.cli.main.main`,
what ``python -m cfnbuild`` runs) in the test process instead, where cfn-lint is loaded once per
worker: on Linux it renders in a forked child and lints here, as it does on its own.

A test whose subject is the command itself (what it prints, which modules it imports, how it
ends on Ctrl-C) still runs it as its own process.
"""

from __future__ import annotations

import io
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from cfnbuild.cli.main import main
from cfnbuild.project.app import load_project


def run_here(*args: str) -> subprocess.CompletedProcess[str]:
    """``cfnbuild *args`` in this process: its exit code and what it printed, as a subprocess would give them.

    The command sees none of the project's modules this process imported, and what it imports of
    the project is forgotten afterwards, so that each command imports the project's app afresh,
    as its own process would; an exception the CLI does not turn into an
    exit code (a bug) propagates, with its traceback, as the process would have shown it.
    """
    stdout, stderr = io.StringIO(), io.StringIO()
    project = Path(args[args.index("--project") + 1]).resolve() if "--project" in args else Path.cwd()
    package = load_project(project).app_reference.partition(":")[0].split(".")[0]
    # The command imports the project's app as a process of its own would: any module of that
    # name this process holds (the test's own load of a project) is out of its way meanwhile.
    hidden = {name: sys.modules.pop(name) for name in list(sys.modules) if name.partition(".")[0] == package}
    modules = set(sys.modules)
    path = list(sys.path)
    code = 0
    try:
        with redirect_stdout(stdout), redirect_stderr(stderr):
            main(list(args))
    except SystemExit as exited:
        code = exited.code if isinstance(exited.code, int) else 1
    finally:
        sys.path[:] = path
        for name in set(sys.modules) - modules:
            file = getattr(sys.modules[name], "__file__", None)
            if name.partition(".")[0] == package or (file and Path(file).resolve().is_relative_to(project)):
                del sys.modules[name]  # the project's own code (its app)
        sys.modules.update(hidden)
    return subprocess.CompletedProcess(["cfnbuild", *args], code, stdout.getvalue(), stderr.getvalue())


def build_here(root: Path, *args: str) -> str:
    """``cfnbuild --project root build *args`` in this process; it must pass. What it said on stderr."""
    result = run_here("--project", str(root), "build", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stderr
