"""Benchmark: ``cfnbuild build`` against the AWS CDK synthesizing one comparable stack, in one run.

Baseline: a CDK v2 Python app of a comparable web-app stack (VPC with NAT, ALB, Auto Scaling
group, Aurora MySQL, S3, logs), synthesized offline as ``cdk synth`` runs it, without the Node
CLI in front: ``CDK_OUTDIR=... CDK_CONTEXT_JSON=... python app.py`` (the app's directory holds
``app.py``, ``cdk.json``, ``cdk.context.json`` and ``make_context.py``; ``--baseline DIR``). The
CDK is installed once into a virtual environment under ``~/.cache/cfnbuild-bench/`` from the
package index (``aws-cdk-lib`` and ``constructs``, pinned below); it needs ``node``. Not run in CI.

Cases, interleaved in ``--rounds`` rounds (each round runs every case once, so a drift in the
machine's load touches them alike), on a throwaway copy of this project:

- ``cdk synth``: the baseline;
- ``build --all`` cold: no lint cache, no build records, no output/ (3 environments, cfn-lint for
  each environment's regions);
- ``build --all`` with nothing changed (right after the cold build);
- one-blueprint edit, then ``build --env dev``: a description in ``blueprints/observability.py``
  changes, so dev's template changes and is rendered and linted again.

For each: the median wall time and CPU time (user + system of the whole process tree), measured
with nothing else running, and, in a second run of the same round, the peak memory of the
process tree: the largest sum of the resident set sizes of every process in
it at once, and the largest sum of their proportional set sizes (PSS: a page shared by forked
processes counted once in all, where a sum of RSS counts it once per process), beside the largest
single process's RSS; all from ``/proc``, sampled every 50 ms. The memory target is judged on the
summed PSS, the memory the tree really holds (cfnbuild's lint workers are forked from a process
with cfn-lint loaded and share most of it); the summed RSS and the largest process are printed
for reference. This
process makes itself the tree's subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``), so a descendant
that outlives its parent (cfnbuild's lint server, the CDK's node) is still reaped here and its
CPU time counted. Each ratio line names the baseline and the target, with the median (min-max)
of the ratios within each round beside the ratio of the medians: on a shared machine the load
drifts over a minute, and a round's cases are seconds apart.

Before the rounds, cfnbuild's own modules are byte-compiled, as installing its wheel does (pip
compiles every module it installs, whatever ``PYTHONDONTWRITEBYTECODE`` says; a checkout run from
its source tree has no bytecode where that variable is set, and would compile every module on
every run); the project's blueprints are left to the caller's setting, as the CDK app's
``app.py`` is. One warm-up round of every case runs first and is not counted: the first CDK
synth after its install unpacks the jsii bundle, and the first runs fill the file cache.

    python bench/build.py [--rounds 5] [--warmup 1] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import compileall
import ctypes
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CDK_PACKAGES = ("aws-cdk-lib==2.275.0", "constructs==10.8.1")
CACHE = Path.home() / ".cache" / "cfnbuild-bench"
EDIT_FILE = "blueprints/observability.py"
EDIT_TEXT = "At least one target has failed its health checks for 5 minutes in a row."
PAGE = os.sysconf("SC_PAGE_SIZE")
PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Sample:
    """One run of one case: wall and CPU seconds; the tree's peak summed RSS and PSS, its largest RSS (MiB)."""

    wall: float
    cpu: float
    tree_mib: float
    tree_pss_mib: float
    process_mib: float


# ----------------------------------------------------------------------------- measuring a process tree
def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def _pss(pid: int) -> int:
    """The proportional set size (bytes) of ``pid``: its RSS with each shared page divided among its sharers."""
    with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
        for line in handle:
            if line.startswith(b"Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def _tree_memory(root: int) -> tuple[int, int, int]:
    """The summed RSS and PSS (bytes) of every descendant of ``root``, and the largest one's RSS."""
    tree = _children()
    rss_sum, pss_sum, largest, todo = 0, 0, 0, list(tree.get(root, ()))
    while todo:
        pid = todo.pop()
        todo += tree.get(pid, ())
        try:
            with open(f"/proc/{pid}/statm", "rb") as handle:
                rss = int(handle.read().split()[1]) * PAGE
            pss = _pss(pid)
        except OSError:
            continue
        rss_sum, pss_sum, largest = rss_sum + rss, pss_sum + pss, max(largest, rss)
    return rss_sum, pss_sum, largest


def _reap_all() -> None:
    """Wait for every child left, orphans this subreaper adopted among them."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


# Whether measure() samples memory: it does in a pass of its own, because the sampler's reading of
# /proc every 50 ms takes about a fifth of a CPU, which a case using both CPUs would pay in time.
SAMPLE_MEMORY = {"on": True}


def measure(command: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> Sample:
    """Run ``command`` to its end, with every process it started; its wall, CPU and (when sampled) memory."""
    me = os.getpid()
    peak, proportional, largest = 0, 0, 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, proportional, largest
        while not done.is_set():
            rss, pss, biggest = _tree_memory(me)
            peak, proportional, largest = max(peak, rss), max(proportional, pss), max(largest, biggest)
            time.sleep(0.05)

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler = threading.Thread(target=sample, daemon=True)
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if SAMPLE_MEMORY["on"]:
        sampler.start()
    _, stderr = process.communicate()
    wall = time.perf_counter() - started
    _reap_all()  # the orphans it left (a lint server, a node process) end by themselves when it does
    done.set()
    if sampler.is_alive():
        sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{stderr.decode()[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(wall, cpu, peak / 2**20, proportional / 2**20, largest / 2**20)


# ----------------------------------------------------------------------------- the baseline
def cdk_python() -> Path:
    """The CDK's virtual environment's interpreter, installed into the cache on first use."""
    venv = CACHE / ("cdk-" + CDK_PACKAGES[0].split("==")[1])
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"installing {', '.join(CDK_PACKAGES)} into {venv} (once)…", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *CDK_PACKAGES], check=True)
    return python


def cdk_case(baseline: Path, work: Path) -> Callable[[], Sample]:
    """The CDK synth of the baseline app, copied into ``work`` with its synth context made."""
    python = cdk_python()
    app = work / "cdk-app"
    shutil.copytree(baseline, app)
    for path in app.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    app.chmod(0o755)
    subprocess.run([str(python), "make_context.py", "."], cwd=app, check=True)
    env = {**os.environ, "CDK_CONTEXT_JSON": (app / "synth-context.json").read_text()}

    def run() -> Sample:
        out = app / "cdk.out"
        shutil.rmtree(out, ignore_errors=True)
        sample = measure([str(python), "app.py"], env={**env, "CDK_OUTDIR": str(out)}, cwd=app)
        if not list(out.glob("*.template.json")):
            raise SystemExit("cdk synth wrote no template")
        return sample

    return run


# ----------------------------------------------------------------------------- cfnbuild
def make_project(directory: Path) -> Path:
    """A copy of this project's settings, configs and blueprints (the CLI imports the app from it)."""
    directory.mkdir()
    (directory / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    shutil.copytree(ROOT / "config", directory / "config")
    shutil.copytree(ROOT / "blueprints", directory / "blueprints", ignore=shutil.ignore_patterns("__pycache__"))
    if EDIT_TEXT not in (directory / EDIT_FILE).read_text():
        raise SystemExit(f"{EDIT_FILE} no longer holds {EDIT_TEXT!r}: choose another edit for the benchmark")
    return directory


def cfnbuild(project: Path, *args: str) -> Sample:
    """One ``cfnbuild`` command in ``project``, as a user runs it (with this checkout's cfnbuild)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return measure([sys.executable, "-m", "cfnbuild", "--project", str(project), *args], env=env)


def cfnbuild_round(project: Path, number: int) -> dict[str, Sample]:
    """Cold build, no-change build, then an edit of one blueprint and ``build --env dev``."""
    shutil.rmtree(project / ".cfnbuild-cache", ignore_errors=True)
    shutil.rmtree(project / "output", ignore_errors=True)
    source = project / EDIT_FILE
    source.write_text((ROOT / EDIT_FILE).read_text())
    cold = cfnbuild(project, "build", "--all")
    unchanged = cfnbuild(project, "build", "--all")
    before = (project / "output/dev").glob("*.json")
    texts = {p: p.read_bytes() for p in before}
    source.write_text(source.read_text().replace(EDIT_TEXT, f"{EDIT_TEXT[:-1]} (edit {number})."))
    edit = cfnbuild(project, "build", "--env", "dev")
    if all(p.read_bytes() == text for p, text in texts.items()):
        raise SystemExit(f"the edit of {EDIT_FILE} changed no template of dev")
    return {"cold": cold, "unchanged": unchanged, "edit": edit}


# ----------------------------------------------------------------------------- report
CASES = {
    "cold": ("build --all, cold (no cache, no records, no output/)", 0.5),
    "unchanged": ("build --all, nothing changed", 0.05),
    "edit": ("one-blueprint edit, then build --env dev", 0.3),
}


def _median(samples: list[Sample], attribute: str) -> float:
    return statistics.median(getattr(s, attribute) for s in samples)


def report(cdk: list[Sample], ours: dict[str, list[Sample]]) -> None:
    """Print the medians, then each case's ratios to the baseline beside its target."""
    base = "CDK synth of one stack"
    rounds = len(cdk)
    print(f"\nmedians of {rounds} interleaved round(s); CPU = user + system of the whole process tree")

    def line(name: str, samples: list[Sample]) -> None:
        print(
            f"  {name:<52} wall {_median(samples, 'wall'):6.2f} s  CPU {_median(samples, 'cpu'):6.2f} s  "
            f"tree peak RSS {_median(samples, 'tree_mib'):5.0f} MiB, PSS {_median(samples, 'tree_pss_mib'):5.0f} MiB  "
            f"largest process {_median(samples, 'process_mib'):4.0f} MiB"
        )

    line(f"{base} (baseline)", cdk)
    for key, (name, _) in CASES.items():
        line(name, ours[key])
    print(f"\nratios to the baseline ({base}: {_median(cdk, 'wall'):.2f} s wall, {_median(cdk, 'tree_mib'):.0f} MiB)")
    for key, (name, target) in CASES.items():
        wall = _median(ours[key], "wall") / _median(cdk, "wall")
        cpu = _median(ours[key], "cpu") / _median(cdk, "cpu")
        verdict = "meets" if wall <= target else "MISSES"
        per_round = sorted(ours[key][n].wall / cdk[n].wall for n in range(rounds))
        print(
            f"  {name}: {wall:.3f}x wall of {base} ({verdict} target <= {target}x), {cpu:.3f}x CPU; "
            f"per round {statistics.median(per_round):.3f}x ({per_round[0]:.3f}-{per_round[-1]:.3f})"
        )
    ratio = max(_median(ours[key], "tree_pss_mib") for key in CASES) / _median(cdk, "tree_pss_mib")
    verdict = "meets" if ratio <= 0.3 else "MISSES"
    print(
        f"  peak memory of cfnbuild's process tree, summed PSS (largest case): {ratio:.3f}x of {base}'s "
        f"({verdict} target <= 0.3x)"
    )
    summed = max(_median(ours[key], "tree_mib") for key in CASES) / _median(cdk, "tree_mib")
    single = max(_median(ours[key], "process_mib") for key in CASES) / _median(cdk, "process_mib")
    print(
        f"  for reference: summed RSS {summed:.3f}x (counts a page that forked processes share once per "
        f"process), largest single process {single:.3f}x of {base}'s largest"
    )


def _with_memory(timed: Sample, sampled: Sample) -> Sample:
    return Sample(timed.wall, timed.cpu, sampled.tree_mib, sampled.tree_pss_mib, sampled.process_mib)


def _round(synth: Callable[[], Sample], project: Path, number: int) -> tuple[Sample, dict[str, Sample]]:
    """Every case twice: timed with no sampler running, then again with memory sampled."""
    SAMPLE_MEMORY["on"] = False
    base, ours = synth(), cfnbuild_round(project, number)
    SAMPLE_MEMORY["on"] = True
    base_memory, ours_memory = synth(), cfnbuild_round(project, number)
    return _with_memory(base, base_memory), {key: _with_memory(ours[key], ours_memory[key]) for key in ours}


def main() -> None:
    """Set up the baseline and the project, run the rounds, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of every case (medians taken)")
    parser.add_argument("--warmup", type=int, default=1, help="rounds run first and not counted")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=ROOT.parent / "shared" / "anchors" / "cdk-webapp",
        help="the CDK app's directory (app.py, cdk.json, cdk.context.json, make_context.py)",
    )
    args = parser.parse_args()
    if os.environ.get("CI"):
        raise SystemExit("bench/build.py installs the CDK and takes minutes: not in CI")
    if not (args.baseline / "app.py").is_file():
        raise SystemExit(f"{args.baseline}: no CDK app.py there; give its directory with --baseline DIR")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit(f"prctl(PR_SET_CHILD_SUBREAPER) failed: {os.strerror(ctypes.get_errno())}")
    if not compileall.compile_dir(ROOT / "cfnbuild", quiet=1):
        raise SystemExit("cfnbuild's modules could not all be byte-compiled")
    cdk: list[Sample] = []
    ours: dict[str, list[Sample]] = {key: [] for key in CASES}
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        synth = cdk_case(args.baseline, Path(tmp))
        project = make_project(Path(tmp) / "project")
        for number in range(args.warmup + args.rounds):
            counted = number >= args.warmup
            base, samples = _round(synth, project, number)
            if counted:
                cdk.append(base)
                for key, sample in samples.items():
                    ours[key].append(sample)
            label = f"round {number - args.warmup + 1}" if counted else "warm-up round (not counted)"
            print(
                f"{label}: cdk synth {base.wall:.2f} s; "
                + ", ".join(f"{key} {sample.wall:.2f} s" for key, sample in samples.items()),
                flush=True,
            )
    facts = {
        "cpus": len(os.sched_getaffinity(0)),
        "python": sys.version.split()[0],
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", ""),
    }
    print(json.dumps(facts))
    report(cdk, ours)


if __name__ == "__main__":
    main()
