"""Benchmark: ``cfnbuild build --all`` cold (empty lint cache) against warm (cache filled).

Both are measured in this one run on a throwaway copy of the project, each the median of
``--repeat`` runs of the real CLI in a subprocess. Baseline: the cold build. Prints each time and
the ratio warm/cold.

    python bench/build.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _project(directory: Path) -> Path:
    (directory / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    shutil.copytree(ROOT / "config", directory / "config")
    # The CLI imports the app from the project directory: blueprints/ is project code, not installed.
    shutil.copytree(ROOT / "blueprints", directory / "blueprints", ignore=shutil.ignore_patterns("__pycache__"))
    return directory


def _build(project: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cfnbuild", "--project", str(project), "build", "--all"],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    """Run the benchmark and print the times and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each case (median taken)")
    args = parser.parse_args()
    cold, warm = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            project = _project(Path(tmp))
            cold.append(_build(project))  # empty cache, empty output/
            shutil.rmtree(project / "output")
            warm.append(_build(project))  # cache filled, output/ rewritten
    cold_s, warm_s = statistics.median(cold), statistics.median(warm)
    print(f"build --all, cold lint cache: {cold_s:.3f}s (median of {args.repeat}; baseline)")
    print(f"build --all, warm lint cache: {warm_s:.3f}s (median of {args.repeat})")
    print(f"ratio warm/cold: {warm_s / cold_s:.2f} ({cold_s / warm_s:.1f}x faster)")


if __name__ == "__main__":
    main()
