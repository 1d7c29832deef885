"""A quiet, useful ending: short lines for what the emulator lacks, and a last line saying what next.

The deploys run the CLI as a user does, on a copy of the flagship (dev), against the embedded
emulator: ``--local`` in one process (the three stacks in order), and the shared test emulator
through ``--endpoint-url`` for the web-app stack's updated and unchanged variants, which need
stacks that outlive one command.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from cfnbuild.deploy.ending import Ending, last_line, target_flags

ROOT = Path(__file__).resolve().parents[3]


def _flagship(project_dir: Path, suffix: str | None = None) -> Path:
    shutil.copy(ROOT / "pyproject.toml", project_dir / "pyproject.toml")  # the artifact is built from it
    shutil.copytree(ROOT / "flask_app", project_dir / "flask_app")
    if suffix:
        config = project_dir / "config/dev.toml"
        config.write_text(config.read_text() + f'\n[deploy]\nstack_name_suffix = "{suffix}"\n')
    command = [sys.executable, "-m", "cfnbuild", "--project", str(project_dir), "build", "--env", "dev"]
    subprocess.run(command, check=True, capture_output=True)
    return project_dir


def _run(root: Path, *args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "emulator", "AWS_SECRET_ACCESS_KEY": "emulator", "COLUMNS": str(columns)}
    command = [sys.executable, "-m", "cfnbuild", "--project", str(root), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


def test_deploy_local_ends_in_one_line_per_gap_and_a_last_line_saying_what_next(project_dir):
    """The flagship's three stacks in one command: each gap said once, a summary, and what to do next."""
    root = _flagship(project_dir)

    result = _run(root, "deploy", "--local", "--yes", columns=80)

    assert result.returncode == 0, result.stderr[-3000:]
    engine_version = [line for line in result.stderr.splitlines() if "DbEngineVersion" in line]
    assert engine_version == [
        "parameter DbEngineVersion: the emulator cannot look up the newest Aurora MySQL 3 version in eu-west-1; "
        "the region's default is used"
    ]
    for stack in ("network", "data", "webapp"):
        assert re.search(rf"│ {stack}\s+│ deployed\s+│", result.stdout), result.stdout
    last = result.stderr.rstrip("\n").splitlines()[-1]
    # a one-shot emulator (no local session runs) ends with the command: status would find nothing
    assert last == (
        "--local: the emulator's state ended with this command; to keep stacks between commands, run "
        "'cfnbuild local start' first"
    ), last
    # At 80 columns the plans' tables fold logical IDs, never a type name.
    template = json.loads((root / "output/dev/webapp.json").read_text())
    made = [lid for lid, r in template["Resources"].items() if r.get("Condition") != "HasDomain"]
    lines = result.stdout.splitlines()
    start = lines.index(next(line for line in lines if "plan for webapp" in line))
    header = next(i for i in range(start, len(lines)) if lines[i].startswith("Action "))
    table = lines[header : next(i for i in range(header, len(lines)) if lines[i].startswith("not created"))]
    assert max(len(line.rstrip()) for line in table) <= 80
    types = {template["Resources"][lid]["Type"] for lid in made}
    split = sorted(t for t in types if not any(re.search(rf"\s{re.escape(t)}(\s|$)", line) for line in table))
    assert split == []


def test_deploys_that_create_update_and_change_nothing_each_end_in_their_own_line(project_dir, emulator):
    root = _flagship(project_dir, "ending")
    where = ["--env", "dev", "--endpoint-url", emulator.endpoint_url]
    for upstream in ("network", "data"):  # what the web-app stack takes its inputs from
        deployed = _run(root, "deploy", *where, "--stack", upstream, "--yes")
        assert deployed.returncode == 0, deployed.stderr[-3000:]
    where += ["--stack", "webapp"]
    next_flags = f"--env dev --stack webapp --endpoint-url {emulator.endpoint_url}"  # as the last line orders them
    # HasBudget false: no budget, so no BudgetName output; the emulator keeps the secret a placeholder, so the
    # data stack returns no DbSecretArn at this endpoint: it is given.
    no_budget = ["--param", "MonthlyBudgetUsd=0", "--param", "DataDbSecretArn=arn:aws:secretsmanager:x"]

    created = _run(root, "deploy", *where, "--yes", "--verbose", *no_budget)
    assert created.returncode == 0, created.stderr[-3000:]
    names = sorted(json.loads((root / "output/dev/webapp.json").read_text())["Outputs"])
    names.remove("BudgetName")
    # The outputs of the emulator's placeholders (the Aurora cluster's, the secret's) are the data stack's now:
    # the web app's are all returned, so no line counts what was not.
    written = json.loads((root / "output/dev/webapp.outputs.json").read_text())
    assert sorted(written["Outputs"]) == names
    assert not written.get("NotReturned")
    assert "declared outputs" not in created.stderr
    assert created.stdout.splitlines()[-1].startswith("webapp-dev-ending created: ")
    assert created.stdout.splitlines()[-1].endswith(f"; next: cfnbuild status {next_flags}")

    unchanged = _run(root, "deploy", *where, "--yes", *no_budget)
    assert unchanged.returncode == 0, unchanged.stderr[-3000:]
    assert unchanged.stdout.splitlines()[-1] == (
        "webapp-dev-ending: no changes, as deployed; outputs in output/dev/webapp.outputs.json; "
        f"next: change config/dev.toml, then cfnbuild plan {next_flags}"
    )

    config = root / "config/dev.toml"
    config.write_text(config.read_text().replace('instance_type = "t3.small"', 'instance_type = "t3.medium"'))
    assert _run(root, "build", "--env", "dev").returncode == 0
    updated = _run(root, "deploy", *where, "--yes", *no_budget)
    assert updated.returncode == 0, updated.stderr[-3000:]
    assert re.fullmatch(
        r"webapp-dev-ending updated: 1 modified in \d+\.\d s; outputs in output/dev/webapp\.outputs\.json; "
        rf"next: cfnbuild status {re.escape(next_flags)}",
        updated.stdout.splitlines()[-1],
    ), updated.stdout[-2000:]


def test_the_last_line_counts_an_update_by_kind_and_names_the_next_command_against_aws():
    flags = target_flags(env="prod", stack=None, region="eu-central-1", profile="ops", endpoint_url=None, local=False)
    ending = Ending("webapp-prod", "updated", {"add": 2, "modify": 1, "replace": 0, "remove": 1, "import": 0}, 93.04)

    line = last_line(
        ending, flags, outputs_file=Path("output/prod/webapp.outputs.json"), config_file="config/prod.toml"
    )

    assert line == (
        "webapp-prod updated: 2 added, 1 modified, 1 removed in 93.0 s; outputs in output/prod/webapp.outputs.json; "
        "next: cfnbuild status --env prod --region eu-central-1 --profile ops"
    )
    tags_only = last_line(Ending("webapp-prod", "updated", {}, 4.0), [], outputs_file=None, config_file="c")
    assert tags_only == "webapp-prod updated: parameters or tags only in 4.0 s; next: cfnbuild status"
