"""Benchmark: deploying the dev network stack with cfnbuild against ``aws cloudformation deploy``.

Both tools deploy the same template (``output/dev/network.json``, the largest of the flagship's
three stacks and the one that takes no other stack's outputs, so both tools deploy it alone as
it is; rebuilt in a throwaway copy of
the project first so it is never stale) with the same parameter values and stack tags to ONE
emulator (moto in server mode on loopback, started here), in this one run, each as a subprocess
the way a user runs it:

- ``python -m cfnbuild deploy --endpoint-url URL --env dev --stack network --yes`` (stack
  ``network-dev-bench-N``);
- ``aws cloudformation deploy --template-file ... --stack-name network-awscli-N --capabilities
  CAPABILITY_IAM --endpoint-url URL --s3-bucket ...`` (the baseline; the template goes through a
  bucket made in the emulator, as a template over the 51,200 bytes CloudFormation takes inline must;
  awscli v1 makes its S3 client without ``--endpoint-url``, so ``AWS_ENDPOINT_URL_S3`` points it
  at the emulator too).

Both get the emulator's throwaway credentials (``AWS_ACCESS_KEY_ID=emulator``). A warm-up stack
is deployed first with plain boto3 so neither tool pays the emulator's first-use imports. The
time from the stack's final state to the tool's exit is measured too: after the tool exits, the
Timestamp of the stack's last stack-level event (the emulator runs on this machine, on its
clock) is subtracted from the moment of exit; nothing polls the emulator while a tool runs.
Each tool's CPU time (user + system) is printed too: on a shared, busy machine it varies much
less than wall time.

What cfnbuild may lean on is what a user's checkout has: before each cfnbuild run the project is
built (untimed), as the README's workflow builds before deploying, so the deploy finds a build
record and need not render; the zone lookup's cache is removed before each run, as on a new
machine (the app artifact and the Aurora version lookup belong to the webapp and data stacks). ``--cold`` adds a
third deploy per round with the build and artifact records removed too, and prints its time.
awscli's waiter polls every 30 s; cfnbuild's watch every 2-5 s. Prints a table, the ratio
cfnbuild/awscli and the targets: cfnbuild total <= awscli's; cfnbuild exits within 3 s of the
final state.

Caveat: the emulator executes a change set before ExecuteChangeSet answers, so the stack is
final by the first poll of either tool and neither tool's poll interval shows; on AWS, where
resources take minutes, awscli's 30 s waiter adds up to 30 s after the final state.

awscli v1 is not a project dependency; install it into the venv with a release that keeps the
venv's botocore (awscli 1.X pins botocore 1.(X-1) exactly), e.g. for botocore 1.35.99::

    .venv/bin/pip install awscli==1.36.40

Run::

    .venv/bin/python bench/deploy.py [--repeat 1] [--cold]
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parent.parent
REGION = "eu-west-1"
BUCKET = "bench-awscli-templates"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "emulator", "AWS_SECRET_ACCESS_KEY": "emulator"}
EXIT_TARGET_SECONDS = 3.0
STACK = "network"  # the flagship's stack that takes no other stack's outputs


# ------------------------------------------------------------------------------- the project copy
def _project(directory: Path) -> Path:
    """A throwaway copy of the project's settings, configs, dev templates and app sources."""
    (directory / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    shutil.copytree(ROOT / "config", directory / "config")
    (directory / "output/dev").mkdir(parents=True)
    for stack in ("network", "data", "webapp"):
        shutil.copy(ROOT / f"output/dev/{stack}.json", directory / f"output/dev/{stack}.json")
    # The CLI imports the app from the project's blueprints/ (project code, not installed); the webapp
    # stack's template records the app artifact, built from the project's flask_app/.
    for package in ("blueprints", "flask_app"):
        shutil.copytree(ROOT / package, directory / package, ignore=shutil.ignore_patterns("__pycache__"))
    return directory


def _set_suffix(project: Path, suffix: str) -> str:
    """Name cfnbuild's stacks ``<stack>-dev-<suffix>`` and rebuild (untimed); the network template's path."""
    config = project / "config/dev.toml"
    text = (ROOT / "config/dev.toml").read_text()
    line = f'stack_name_suffix = "{suffix}"'
    text = text.replace("[deploy]\n", f"[deploy]\n{line}\n") if "[deploy]\n" in text else f"{text}\n[deploy]\n{line}\n"
    config.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "cfnbuild", "--project", str(project), "build", "--env", "dev"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"cfnbuild build failed:\n{result.stderr}")
    return str(project / f"output/dev/{STACK}.json")


# ------------------------------------------------------------------------------- the final-state clock
class FinalStates:
    """When each stack reached its final status: the Timestamp of its last stack-level event.

    Read after the tool exited, from the emulator's own events (same machine, same clock), so
    nothing polls the emulator while a tool runs: a poller would share the emulator with the
    tool under test and slow the one that makes more calls.
    """

    def __init__(self, cloudformation: Any) -> None:
        self.cloudformation = cloudformation

    def reached(self, name: str) -> tuple[float, str]:
        """(wall-clock time, status) of the stack's final status; (nan, 'not final') if it has none."""
        try:
            events = self.cloudformation.describe_stack_events(StackName=name)["StackEvents"]
        except ClientError:
            return float("nan"), "not final"
        for event in events:  # newest first
            status = str(event.get("ResourceStatus", ""))
            if event.get("ResourceType") == "AWS::CloudFormation::Stack" and not status.endswith("_IN_PROGRESS"):
                return event["Timestamp"].timestamp(), status
        return float("nan"), "not final"


# ------------------------------------------------------------------------------- one timed deploy
@dataclass(frozen=True)
class Run:
    """One tool's deploy."""

    tool: str
    stack: str
    seconds: float  # wall time of the subprocess
    cpu: float  # its CPU time (user + system, children included): steadier than wall time on a busy machine
    final_status: str
    exit_lag: float  # from the stack's final status to the tool's exit
    returncode: int


def _timed(tool: str, stack: str, command: Sequence[str], env: Mapping[str, str], clock: FinalStates) -> Run:
    # The emulator runs in this process and keeps every earlier stack: a full collection of that
    # heap during one tool's run (a tenth of a second or more, at random) would be charged to
    # that tool alone. Collect now and freeze what is left, so no run pays for an earlier one.
    gc.collect()
    gc.freeze()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = subprocess.run(list(command), capture_output=True, text=True, env=dict(env), check=False)
    ended = time.monotonic()
    exited_at = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if result.returncode != 0:
        print(f"{tool} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    reached, status = clock.reached(stack)
    return Run(tool, stack, ended - started, cpu, status, exited_at - reached, result.returncode)


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, **CREDENTIALS, "AWS_DEFAULT_REGION": REGION, "COLUMNS": "200", **extra}


def _parameters_and_tags(project: Path, endpoint_url: str) -> tuple[dict[str, str], dict[str, str]]:
    """What cfnbuild sends with the template (its lookups and config resolved), for awscli too."""
    from rich.console import Console  # noqa: PLC0415  (only here, after the project is set up)

    from cfnbuild.deploy.aws import Aws, Target  # noqa: PLC0415
    from cfnbuild.deploy.engine import Engine, Request  # noqa: PLC0415
    from cfnbuild.local.emulator import THROWAWAY_CREDENTIALS  # noqa: PLC0415
    from cfnbuild.project.app import load_project  # noqa: PLC0415

    target = Target("unused", REGION, endpoint_url=endpoint_url, credentials=dict(THROWAWAY_CREDENTIALS))
    quiet = Console(quiet=True)
    engine = Engine(load_project(project), Aws(target), quiet, quiet)
    prepared = engine.prepare(Request("dev", STACK), None)
    return prepared.parameters, prepared.tags


def _warm_up(emulator: Any, template: str, parameters: Mapping[str, str], tags: Mapping[str, str]) -> None:
    """One untimed deploy with boto3, so neither measured tool pays the emulator's first-use costs."""
    s3, cloudformation = emulator.client("s3"), emulator.client("cloudformation")
    s3.put_object(Bucket=BUCKET, Key="warm-up.json", Body=Path(template).read_bytes())
    created = cloudformation.create_change_set(
        StackName=f"{STACK}-warm-up",
        ChangeSetName="warm-up",
        ChangeSetType="CREATE",
        TemplateURL=f"{emulator.endpoint_url}/{BUCKET}/warm-up.json",
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    cloudformation.get_waiter("change_set_create_complete").wait(ChangeSetName=created["Id"], WaiterConfig={"Delay": 1})
    cloudformation.execute_change_set(ChangeSetName=created["Id"])
    cloudformation.get_waiter("stack_create_complete").wait(StackName=f"{STACK}-warm-up", WaiterConfig={"Delay": 1})


def _awscli() -> str:
    beside = Path(sys.executable).parent / "aws"
    found = str(beside) if beside.exists() else shutil.which("aws")
    if found is None:
        raise SystemExit("awscli not found: .venv/bin/pip install awscli==<the release pinning your botocore>")
    return found


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the order of the tools alternates")
    parser.add_argument(
        "--cold", action="store_true", help="also deploy with cfnbuild's build and artifact records removed"
    )
    args = parser.parse_args()
    aws = _awscli()
    version = subprocess.run([aws, "--version"], capture_output=True, text=True, check=False)
    print(f"awscli: {(version.stdout or version.stderr).strip()} ({aws})")

    from cfnbuild.local.emulator import run_emulator  # noqa: PLC0415  (moto is an optional dependency)

    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp, run_emulator(REGION) as emulator:
        project = _project(Path(tmp))
        template = _set_suffix(project, "bench-0")
        committed = (ROOT / f"output/dev/{STACK}.json").read_text() == Path(template).read_text()
        print(
            f"template: output/dev/{STACK}.json ({Path(template).stat().st_size} bytes"
            f"{'' if committed else '; rebuilt here: the one in output/ is stale'}); emulator {emulator.endpoint_url}"
        )
        emulator.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        parameters, tags = _parameters_and_tags(project, emulator.endpoint_url)
        _warm_up(emulator, template, parameters, tags)
        clock = FinalStates(emulator.client("cloudformation"))
        for round_ in range(1, args.repeat + 1):
            template = _set_suffix(project, f"bench-{round_}")
            # Each cfnbuild run looks its parameters up afresh, as on a new machine.
            shutil.rmtree(project / ".cfnbuild-cache/lookups", ignore_errors=True)
            cfnbuild = (
                "cfnbuild",
                f"{STACK}-dev-bench-{round_}",
                [
                    sys.executable,
                    "-m",
                    "cfnbuild",
                    "--project",
                    str(project),
                    "deploy",
                    "--endpoint-url",
                    emulator.endpoint_url,
                    "--env",
                    "dev",
                    "--stack",
                    STACK,
                    "--yes",
                ],
                _environment(),
            )
            awscli = (
                "awscli",
                f"{STACK}-awscli-{round_}",
                [
                    aws,
                    "cloudformation",
                    "deploy",
                    "--template-file",
                    template,
                    "--stack-name",
                    f"{STACK}-awscli-{round_}",
                    "--capabilities",
                    "CAPABILITY_IAM",
                    "--endpoint-url",
                    emulator.endpoint_url,
                    "--region",
                    REGION,
                    "--s3-bucket",
                    BUCKET,
                    "--parameter-overrides",
                    *(f"{k}={v}" for k, v in sorted(parameters.items())),
                    "--tags",
                    *(f"{k}={v}" for k, v in sorted(tags.items())),
                ],
                _environment(AWS_ENDPOINT_URL_S3=emulator.endpoint_url),
            )
            order = (cfnbuild, awscli) if round_ % 2 else (awscli, cfnbuild)
            for tool, stack, command, env in order:
                runs.append(_timed(tool, stack, command, env, clock))
            if args.cold:
                # The same deploy with no record to lean on: it renders to prove the template
                # current.
                _set_suffix(project, f"bench-{round_}-cold")
                for cache in ("lookups", "build", "artifacts"):
                    shutil.rmtree(project / ".cfnbuild-cache" / cache, ignore_errors=True)
                runs.append(_timed("cold", f"{STACK}-dev-bench-{round_}-cold", cfnbuild[2], cfnbuild[3], clock))
    _report(runs, args.repeat)


def _report(runs: Sequence[Run], repeat: int) -> None:
    print()
    print(f"{'tool':<10} {'stack':<22} {'wall s':>8} {'cpu s':>7} {'final → exit s':>15}  final status   rc")
    for run in runs:
        print(
            f"{run.tool:<10} {run.stack:<22} {run.seconds:>8.2f} {run.cpu:>7.2f} {run.exit_lag:>15.2f}  "
            f"{run.final_status:<14} {run.returncode}"
        )
    ours = [r for r in runs if r.tool == "cfnbuild"]
    theirs = [r for r in runs if r.tool == "awscli"]
    ours_s = statistics.median(r.seconds for r in ours)
    theirs_s = statistics.median(r.seconds for r in theirs)
    lag = max(r.exit_lag for r in ours)
    how = f"median of {repeat}" if repeat > 1 else "one run each"
    print()
    print(f"cfnbuild {ours_s:.2f}s, awscli {theirs_s:.2f}s ({how}); ratio cfnbuild/awscli {ours_s / theirs_s:.2f}")
    cold = [r for r in runs if r.tool == "cold"]
    if cold:
        cold_s = statistics.median(r.seconds for r in cold)
        print(
            f"cfnbuild without build or artifact records (cold) {cold_s:.2f}s; ratio cold/awscli "
            f"{cold_s / theirs_s:.2f} (for information: the target is for a deploy of a built checkout)"
        )
    ours_cpu = statistics.median(r.cpu for r in ours)
    theirs_cpu = statistics.median(r.cpu for r in theirs)
    print(f"cpu: cfnbuild {ours_cpu:.2f}s, awscli {theirs_cpu:.2f}s ({how}); ratio {ours_cpu / theirs_cpu:.2f}")
    ok = all(r.returncode == 0 and r.final_status in ("CREATE_COMPLETE", "UPDATE_COMPLETE") for r in runs)
    print(f"target: cfnbuild total <= awscli's: {'met' if ours_s <= theirs_s else 'MISSED'}")
    print(
        f"target: cfnbuild exits within {EXIT_TARGET_SECONDS:.0f}s of the final state: "
        f"{'met' if lag <= EXIT_TARGET_SECONDS else 'MISSED'} (worst {lag:.2f}s)"
    )
    if not ok:
        raise SystemExit("a deploy failed; the figures above are not a comparison")


if __name__ == "__main__":
    main()
