"""Build's forked processes: the render in a child while cfn-lint loads, then lint here and in forked workers."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from cfnbuild.build.forked import ForkPool, can_fork, render_beside
from cfnbuild.build.gates import LintJob, run_gates
from tests.cfnbuild.build.gate_work import work
from tests.cfnbuild.build.test_gates import _parents

pytestmark = pytest.mark.skipif(not can_fork(), reason="build forks only on Linux")

CLEAN = json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})


def _job(file: str, length: int = 0) -> LintJob:
    return LintJob(file, CLEAN + " " * length, ("eu-west-1",))


def _children() -> set[int]:
    """This process's live children (a zombie has ended, reaped or not)."""
    return {child for child, parent in _parents().items() if parent == os.getpid()}


@pytest.fixture
def no_new_children():
    """After the test, no child of this process that was not there before it (a lint server may be)."""
    before = _children()
    yield
    assert _children() - before == set()


def test_the_child_renders_while_this_process_loads_and_its_result_comes_back():
    here: list[int] = []
    result = render_beside(lambda: {"pid": os.getpid(), "text": "é" * 100_000}, lambda: here.append(os.getpid()))
    assert here == [os.getpid()]  # what had to happen here did
    assert result is not None
    assert result["pid"] != os.getpid()  # rendered in another process
    assert result["text"] == "é" * 100_000  # larger than a pipe's buffer, whole


def _raises() -> dict[str, int]:
    raise RuntimeError("a config error")


def _killed() -> dict[str, int]:
    os.kill(os.getpid(), signal.SIGKILL)
    return {}


@pytest.mark.parametrize("produce", [_raises, _killed], ids=["raises", "killed"])
def test_a_child_that_raises_or_is_killed_answers_none_so_the_caller_renders_here(produce, no_new_children):
    here: list[bool] = []
    assert render_beside(produce, lambda: here.append(True)) is None
    assert here == [True]


def test_ctrl_c_while_the_child_renders_stops_it_and_propagates(no_new_children):
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_beside(lambda: time.sleep(30), interrupted)


def test_findings_come_in_job_order_and_the_workers_take_the_longest_templates():
    jobs = [_job(f"sleep-0.2-{n}", length) for n, length in enumerate([10, 400, 20, 300, 30])]
    run = run_gates(jobs, size=2, work=work, here=True)
    assert run.failures == []
    assert [f.file for f in run.findings] == [job.file for job in jobs]
    by_file = {f.file: int(f.path) for f in run.findings}  # the pid that linted each
    assert by_file["sleep-0.2-1"] != os.getpid()  # the longest went to the worker
    assert by_file["sleep-0.2-0"] == os.getpid()  # the shortest was linted here
    assert run.workers == 1


def test_a_job_that_raises_here_or_in_a_worker_is_one_line_and_the_others_finish():
    jobs = [_job("raise-long", 500), _job("sleep-0.1-a", 50), _job("sleep-0.1-b", 40), _job("raise-short")]
    run = run_gates(jobs, size=2, work=work, here=True)
    assert sorted(run.failures) == [
        "cfn-lint of raise-long failed: RuntimeError: no rule for raise-long",
        "cfn-lint of raise-short failed: RuntimeError: no rule for raise-short",
    ]
    assert [f.file for f in run.findings] == ["sleep-0.1-a", "sleep-0.1-b"]


def test_a_killed_worker_is_one_line_naming_its_template_and_this_process_lints_the_rest(no_new_children):
    jobs = [_job("kill-a", 500), *(_job(f"sleep-0.05-{n}", 10) for n in range(4))]
    run = run_gates(jobs, size=2, work=work, here=True)
    assert run.failures == ["cfn-lint of kill-a did not finish: its worker process was killed by SIGKILL"]
    assert [f.file for f in run.findings] == [f"sleep-0.05-{n}" for n in range(4)]


def test_no_worker_is_forked_for_a_single_template():
    pool = ForkPool(4, work)
    results, failures = pool.run([_job("sleep-0-only")])
    assert (pool.started, failures) == (0, {})
    assert int(results[0][0].path) == os.getpid()


def test_ctrl_c_while_linting_here_stops_every_worker(no_new_children):
    def interrupt_here(job: LintJob) -> list:
        if os.getpid() == parent:
            raise KeyboardInterrupt
        time.sleep(30)
        return []

    parent = os.getpid()
    with pytest.raises(KeyboardInterrupt):
        ForkPool(2, interrupt_here).run([_job("a", 100), _job("b")])


def test_workers_are_named_in_the_process_list():
    name = Path("/proc/self/comm").read_text().strip()
    pool = ForkPool(2, lambda job: [_comm()])
    results, _ = pool.run([_job("a", 100), _job("b")])
    names = {finding.message for findings in results.values() for finding in findings}
    assert names == {"cfnbuild-lint", name}


def _comm():
    from cfnbuild.build.lint import Finding

    time.sleep(0.3)  # long enough that each process takes one of the two jobs
    return Finding("f", "test", "0", str(os.getpid()), Path("/proc/self/comm").read_text().strip())


def test_the_pool_leaves_the_garbage_collector_as_it_found_it():
    import gc

    gc.unfreeze()
    ForkPool(2, work).run([_job("sleep-0-a", 10), _job("sleep-0-b")])
    assert gc.get_freeze_count() == 0  # the workers' frozen heap is not left frozen here
