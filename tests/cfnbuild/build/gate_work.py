"""Work for the lint pool's tests, run in its worker processes in place of cfn-lint.

Each job's file says what the worker does: ``sleep-<seconds>-<name>`` sleeps that long first,
``raise-<name>`` raises, ``kill-<name>`` kills its own process with SIGKILL (as the kernel's
out-of-memory killer would). Every job that finishes answers one finding naming the worker's pid
(and, in its rule, the monotonic clock when the worker took the job).
"""

from __future__ import annotations

import os
import signal
import time

from cfnbuild.build.gates import LintJob
from cfnbuild.build.lint import Finding


def work(job: LintJob) -> list[Finding]:
    taken = str(time.monotonic_ns())
    kind = job.file.split("-", 1)[0]
    if kind == "sleep":
        time.sleep(float(job.file.split("-")[1]))
    elif kind == "raise":
        raise RuntimeError(f"no rule for {job.file}")
    elif kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    return [Finding(job.file, "test", taken, str(os.getpid()), ",".join(job.regions))]
