"""The gates side by side: cfn-lint in a bounded pool of worker processes, in a stable order,
and what the user sees when a worker fails or the build is interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cfnbuild.build.gates import LintJob, LintPool, cpu_budget, run_gates
from cfnbuild.build.lint import LintCache
from tests.cfnbuild.build.gate_work import work
from tests.cfnbuild.build.test_lint import PROBLEMS

UNUSED_PARAMETER = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Parameters": {"P": {"Type": "String"}},
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
}
CLEAN = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}


def _job(file: str, template: dict | None = None) -> LintJob:
    return LintJob(file, json.dumps(template or CLEAN), ("eu-west-1",))


def test_the_cpu_budget_is_the_cpus_this_process_may_run_on():
    assert cpu_budget() == len(os.sched_getaffinity(0))


def test_findings_come_in_the_order_of_the_jobs_whatever_order_the_workers_finish_in():
    # The first job finishes last: its worker sleeps while the other lints everything else.
    jobs = [_job("sleep-1.5-first"), *(_job(f"sleep-0-{n}") for n in range(4))]
    run = run_gates(jobs, size=2, work=work)
    assert [f.file for f in run.findings] == [job.file for job in jobs]
    assert run.failures == []


def test_the_longest_templates_are_linted_first_and_findings_still_come_in_job_order():
    jobs = [LintJob(f"sleep-0-{n}", "x" * length, ("eu-west-1",)) for n, length in enumerate([10, 300, 20, 200])]
    run = run_gates(jobs, size=1, work=work)
    assert [f.file for f in run.findings] == [job.file for job in jobs]
    taken = sorted(run.findings, key=lambda f: int(f.rule))
    assert [f.file for f in taken] == ["sleep-0-1", "sleep-0-3", "sleep-0-2", "sleep-0-0"]


def test_the_workers_find_on_a_template_with_known_problems_what_plain_cfn_lint_api_finds():
    """Linted in workers forked from the server that loaded the rules: the same findings as ``cfnlint.api.lint``."""
    from cfnlint.api import ManualArgs, lint

    text = json.dumps(PROBLEMS)
    regions = ("eu-west-1", "eu-central-1")
    plain = lint(text, config=ManualArgs(regions=list(regions), include_checks=["I"]))
    run = run_gates([LintJob("problems.json", text, regions)], size=1)
    assert run.failures == []
    assert sorted((f.rule, f.path, f.message) for f in run.findings) == sorted(
        {(m.rule.id, "/".join(str(p) for p in m.path), m.message) for m in plain}
    )


def test_real_cfn_lint_findings_are_in_job_order_and_cached_for_the_next_run(tmp_path):
    jobs = [_job("a.json", UNUSED_PARAMETER), _job("b.json"), _job("c.json", UNUSED_PARAMETER)]
    first = run_gates(jobs, cache=LintCache(tmp_path), size=2)
    assert [(f.file, f.rule, f.path) for f in first.findings] == [
        ("a.json", "W2001", "Parameters/P"),
        ("c.json", "W2001", "Parameters/P"),
    ]
    assert (first.cached, first.linted) == (0, 3)
    again = run_gates(jobs, cache=LintCache(tmp_path), size=2)
    assert again.findings == first.findings
    assert (again.cached, again.linted, again.workers) == (3, 0, 0)  # no worker started at all


def test_the_pool_never_runs_more_workers_than_its_size_and_reuses_them_across_templates():
    jobs = [_job(f"sleep-0.05-{n}") for n in range(8)]
    pool = LintPool(2, work)
    results, failures = pool.run(jobs)
    pids = {finding.path for findings in results.values() for finding in findings}
    assert failures == {}
    assert len(results) == 8
    assert pool.started == 2
    assert len(pids) <= 2


def test_no_more_workers_than_templates_to_lint():
    run = run_gates([_job("sleep-0-only")], size=8, work=work)
    assert run.workers == 1


def test_a_worker_that_raises_is_one_line_naming_the_template_and_the_others_finish():
    jobs = [_job("sleep-0-a"), _job("raise-b"), _job("sleep-0-c")]
    run = run_gates(jobs, size=2, work=work)
    assert run.failures == ["cfn-lint of raise-b failed: RuntimeError: no rule for raise-b"]
    assert [f.file for f in run.findings] == ["sleep-0-a", "sleep-0-c"]


def test_a_killed_worker_is_one_line_naming_the_template_and_a_new_worker_takes_the_rest():
    jobs = [_job("kill-a"), *(_job(f"sleep-0-{n}") for n in range(3))]
    run = run_gates(jobs, size=1, work=work)
    assert run.failures == ["cfn-lint of kill-a did not finish: its worker process was killed by SIGKILL"]
    assert [f.file for f in run.findings] == ["sleep-0-0", "sleep-0-1", "sleep-0-2"]
    assert run.workers == 2  # the killed one, and the one that took its place


def test_a_failed_job_is_not_cached(tmp_path):
    cache = LintCache(tmp_path)
    run_gates([_job("raise-a")], cache=cache, size=1, work=work)
    assert list(tmp_path.iterdir()) == []


def _parents() -> dict[int, int]:
    """Every live process's parent, from /proc (zombies left out: they have ended)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != b"Z":
                parents[int(entry)] = int(fields[1])
    return parents


def _comm(pid: int) -> str:
    """The name a process shows in ps (what cfnbuild names its workers), or "" once it has gone."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _descendants(pid: int) -> dict[int, int]:
    """Each live descendant of ``pid`` with its parent."""
    parents = _parents()
    found: dict[int, int] = {}
    grew = True
    while grew:
        grew = False
        for child, parent in parents.items():
            if child not in found and (parent == pid or parent in found):
                found[child] = parent
                grew = True
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process tree from /proc")
@pytest.mark.parametrize("fork", ["1", "0"], ids=["forked", "lint-server"])
def test_ctrl_c_while_linting_stops_every_process_it_started_and_leaves_no_file(project_dir, fork):
    process = subprocess.Popen(
        [sys.executable, "-m", "cfnbuild", "--project", str(project_dir), "build", "--all"],
        env={**os.environ, "CFNBUILD_FORK": fork},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as in a terminal, where Ctrl-C signals all of it
    )
    seen: set[int] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        tree = _descendants(process.pid)
        seen |= set(tree)
        if any(_comm(pid) == "cfnbuild-lint" for pid in tree):
            break  # a lint worker (forked from the build or from its lint server): linting has begun
        time.sleep(0.02)
    assert process.poll() is None, "the build ended before its workers could be interrupted"
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.strip() == "aborted"  # one line, no worker's traceback
    deadline = time.monotonic() + 10
    while set(_parents()) & seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(_parents()) & seen == set(), "a process the build started is still running"
    assert not (project_dir / "output").exists()
    leftovers = [p.name for p in project_dir.rglob("*.tmp")]
    assert leftovers == []  # no half-written file
