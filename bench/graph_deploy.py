"""Benchmark: deploying every stack of a project in graph order, one at a time against side by side.

One run, one emulator (moto in server mode on loopback, started here): each round deploys the
whole environment twice as a user runs it, ``python -m cfnbuild deploy --endpoint-url URL --env
dev --yes``, once with ``--max-parallel 1`` (serial: one stack after the other, the baseline) and
once with the default (independent stacks side by side, cfnbuild/cli/graph_commands.py), the
order alternating from round to round. Each deploy makes new stacks (its own
``stack_name_suffix``), built untimed first as the README's workflow builds before deploying, with
the lookups' cache removed as on a new machine. Prints each run's wall time and CPU time (the
deploy's process, user + system; and the emulator's, which runs in this process and serves
both), the medians and the ratio default/serial.

The projects, each its own table: the flagship (this checkout's blueprints/, config/, copied into a
temporary directory), deployed with ``--local`` to a local session (``cfnbuild local start``;
against the embedded emulator an upstream output moto cannot compute is sent as a named stand-in
only with ``--local``); its network -> data -> webapp is a chain, so ``--max-parallel`` can change
nothing there, which its ratio shows. Then a generated project of one root stack and ``--leaves``
leaf stacks that each take the root's output (``stack.use``), so the leaves can deploy side by
side (tests/graph_projects.py writes it), on an emulator in this process. ``--generated`` runs
only the generated one.

Caveat: the emulator creates resources at once, so a stack's deploy is mostly cfnbuild's own
work and its watch (polls every 2-5 s), not resource creation; on AWS, where a stack takes
minutes, the waves matter more and the ratio is closer to (critical path)/(sum of the stacks)
(``cfnbuild graph`` estimates both). A warm-up deploy (untimed) runs first so neither mode pays
the emulator's first-use imports or the app artifact's first build.

Never run in CI. Run::

    .venv/bin/python bench/graph_deploy.py [--repeat 3] [--leaves 2] [--generated]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.graph_projects writes the generated project

from tests.graph_projects import write_graph_project  # noqa: E402  (after the checkout is on the path)

REGION = "eu-west-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "emulator", "AWS_SECRET_ACCESS_KEY": "emulator"}
MODES = {"serial": ["--max-parallel", "1"], "default": []}


# ------------------------------------------------------------------------------- the project
def _flagship_stacks() -> list[str]:
    """The flagship's stacks, as the CLI loads its app."""
    from cfnbuild.project.app import load_project  # noqa: PLC0415  (imports the project's blueprints)

    return [spec.name for spec in load_project(ROOT).app.stacks]


def _widest_wave(stacks: list[str]) -> int:
    """The most stacks of the flagship's dev environment that one wave deploys side by side (from output/dev)."""
    from cfnbuild.build.references import template_inputs  # noqa: PLC0415  (data only)

    upstreams = {
        name: {i.stack for i in template_inputs(json.loads((ROOT / f"output/dev/{name}.json").read_text())).values()}
        for name in stacks
    }
    depth: dict[str, int] = {}
    while len(depth) < len(upstreams):
        for name, ups in upstreams.items():
            if name not in depth and ups <= depth.keys():
                depth[name] = 1 + max((depth[u] for u in ups), default=0)
    waves = list(depth.values())
    return max((waves.count(level) for level in set(waves)), default=0)


def _flagship(directory: Path) -> Path:
    """A throwaway copy of the flagship's settings, configs and project code (built per deploy)."""
    directory.mkdir(parents=True)
    (directory / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    shutil.copytree(ROOT / "config", directory / "config")
    for package in ("blueprints", "flask_app"):  # project code: the CLI imports it from the project directory
        shutil.copytree(ROOT / package, directory / package, ignore=shutil.ignore_patterns("__pycache__"))
    return directory


def _generated(directory: Path, leaves: int) -> Path:
    """One root stack and ``leaves`` stacks that each take its output: the leaves are one wave."""
    uses: dict[str, list[tuple[str, str]]] = {"root": []}
    uses.update({f"leaf{n}": [("root", "TopicArn")] for n in range(1, leaves + 1)})
    return write_graph_project(directory, uses, suffix="unset")


def _set_suffix(project: Path, suffix: str) -> None:
    """Give the next deploy new stacks (``stack_name_suffix``) and build them, untimed."""
    config = project / "config/dev.toml"
    lines = [line for line in config.read_text().splitlines() if not line.startswith("stack_name_suffix")]
    text = "\n".join(lines) + "\n"
    line = f'stack_name_suffix = "{suffix}"'
    text = text.replace("[deploy]\n", f"[deploy]\n{line}\n") if "[deploy]\n" in text else f"{text}\n[deploy]\n{line}\n"
    config.write_text(text)
    built = subprocess.run(
        [sys.executable, "-m", "cfnbuild", "--project", str(project), "build", "--env", "dev"],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        raise SystemExit(f"cfnbuild build failed:\n{built.stderr}")
    shutil.rmtree(project / ".cfnbuild-cache/lookups", ignore_errors=True)


# ------------------------------------------------------------------------------- one timed deploy
@dataclass(frozen=True)
class Run:
    """One deploy of the whole environment."""

    mode: str
    suffix: str
    seconds: float  # wall time of the deploy's process
    cpu: float  # its CPU time (user + system)
    emulator_cpu: float  # this process's CPU time meanwhile: the emulator serving it
    complete: int  # stacks of this suffix in CREATE_COMPLETE afterwards
    returncode: int


@dataclass(frozen=True)
class Where:
    """Where the deploys go: this process's emulator (``--endpoint-url``) or the project's session (``--local``)."""

    endpoint_url: str
    cloudformation: Any
    session_pid: int = 0  # the session's server process; 0: the emulator runs in this process

    def emulator_cpu(self) -> float:
        """CPU seconds (user + system) the emulator has used so far."""
        if not self.session_pid:
            own = resource.getrusage(resource.RUSAGE_SELF)
            return own.ru_utime + own.ru_stime
        fields = Path(f"/proc/{self.session_pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


@contextmanager
def _session(project: Path) -> Iterator[Where]:
    """The project's local session (``cfnbuild local start``), stopped at the end.

    The flagship deploys with ``--local``: against the embedded emulator, an upstream output moto
    cannot compute (the secret's ARN of a placeholder) is sent as a named stand-in only then.
    """
    from cfnbuild.local.session import current  # noqa: PLC0415  (moto is an optional dependency)

    cli = [sys.executable, "-m", "cfnbuild", "--project", str(project), "local"]
    subprocess.run([*cli, "start"], check=True, capture_output=True)
    try:
        session = current(project).session
        if session is None:
            raise SystemExit("cfnbuild local start left no running session")
        emulator = session.emulator(REGION)
        yield Where(session.endpoint_url, emulator.client("cloudformation"), session.pid)
    finally:
        subprocess.run([*cli, "stop"], check=False, capture_output=True)


def _deploy(project: Path, mode: str, suffix: str, where: Where) -> Run:
    _set_suffix(project, suffix)
    command = [sys.executable, "-m", "cfnbuild", "--project", str(project), "deploy"]
    target = ["--local"] if where.session_pid else ["--endpoint-url", where.endpoint_url]
    command += [*target, "--env", "dev", "--yes", *MODES[mode]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(CREDENTIALS, AWS_DEFAULT_REGION=REGION, COLUMNS="200")
    # The emulator keeps every earlier stack in this process's heap: collect and freeze it now so
    # no run pays for a collection of an earlier one's objects.
    gc.collect()
    gc.freeze()
    children, own = resource.getrusage(resource.RUSAGE_CHILDREN), where.emulator_cpu()
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.monotonic() - started
    children_after, own_after = resource.getrusage(resource.RUSAGE_CHILDREN), where.emulator_cpu()
    if result.returncode != 0:
        print(f"{mode} {suffix} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    pages = where.cloudformation.get_paginator("describe_stacks").paginate()  # a page holds only some of the stacks
    stacks = [stack for page in pages for stack in page["Stacks"]]
    complete = sum(1 for s in stacks if s["StackName"].endswith(f"-{suffix}") and s["StackStatus"] == "CREATE_COMPLETE")
    return Run(
        mode,
        suffix,
        seconds,
        (children_after.ru_utime - children.ru_utime) + (children_after.ru_stime - children.ru_stime),
        own_after - own,
        complete,
        result.returncode,
    )


def main() -> None:
    """Run the benchmark and print the tables: the flagship's stacks, then the generated project's."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the order of the modes alternates")
    parser.add_argument("--leaves", type=int, default=2, help="leaf stacks of the generated project")
    parser.add_argument("--generated", action="store_true", help="only the generated project")
    args = parser.parse_args()

    from cfnbuild.local.emulator import run_emulator  # noqa: PLC0415  (moto is an optional dependency)

    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        flagship = [] if args.generated else _flagship_stacks()
        if flagship:
            widest = _widest_wave(flagship)
            print(f"project: the flagship, stacks {' -> '.join(flagship)} (at most {widest} side by side)")
            project = _flagship(Path(tmp) / "flagship")
            with _session(project) as where:
                failed |= _rounds(project, where, args.repeat, len(flagship))
        stacks = 1 + args.leaves
        print(f"\nproject: generated: root, then {args.leaves} leaves side by side; {stacks} stacks")
        project = _generated(Path(tmp) / "generated", args.leaves)
        with run_emulator(REGION) as emulator:
            where = Where(emulator.endpoint_url, emulator.client("cloudformation"))
            failed |= _rounds(project, where, args.repeat, stacks)
    if failed:
        raise SystemExit("a deploy failed; the figures above are not a comparison")


def _rounds(project: Path, where: Where, repeat: int, stacks: int) -> bool:
    """A warm-up deploy, then ``repeat`` rounds of both modes; prints the table; whether any deploy failed."""
    print(f"emulator {where.endpoint_url}; {os.cpu_count()} CPUs")
    warm = _deploy(project, "default", "warm", where)
    if warm.returncode != 0:
        raise SystemExit("the warm-up deploy failed")
    runs: list[Run] = []
    for round_ in range(1, repeat + 1):
        order = ("serial", "default") if round_ % 2 else ("default", "serial")
        for mode in order:
            runs.append(_deploy(project, mode, f"{mode}-{round_}", where))
    _report(runs, stacks)
    return not all(r.returncode == 0 and r.complete == stacks for r in runs)


def _report(runs: Sequence[Run], stacks: int) -> None:
    print()
    print(f"{'mode':<8} {'suffix':<10} {'wall s':>8} {'cpu s':>7} {'emulator cpu s':>15} {'complete':>9}  rc")
    for run in runs:
        print(
            f"{run.mode:<8} {run.suffix:<10} {run.seconds:>8.2f} {run.cpu:>7.2f} {run.emulator_cpu:>15.2f} "
            f"{run.complete:>5}/{stacks:<3}  {run.returncode}"
        )
    medians = {}
    for mode in MODES:
        mine = [r for r in runs if r.mode == mode]
        fields = ("seconds", "cpu", "emulator_cpu")
        medians[mode] = tuple(statistics.median(getattr(r, f) for r in mine) for f in fields)
    print()
    how = f"median of {len(runs) // len(MODES)}"
    for mode, (wall, cpu, emulator_cpu) in medians.items():
        flag = "--max-parallel 1" if mode == "serial" else "the default --max-parallel"
        print(f"{mode} ({flag}): wall {wall:.2f}s, cpu {cpu:.2f}s, emulator cpu {emulator_cpu:.2f}s ({how})")
    ratio = medians["default"][0] / medians["serial"][0]
    cpu_ratio = medians["default"][1] / medians["serial"][1]
    print(f"ratio default/serial: wall {ratio:.2f}, cpu {cpu_ratio:.2f}")


if __name__ == "__main__":
    main()
