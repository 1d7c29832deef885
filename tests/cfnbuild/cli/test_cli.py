"""The CLI's exit codes and messages, run as a user would: ``python -m cfnbuild``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cfnbuild.cli.main import main
from tests.inprocess import build_here


def run(project: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "cfnbuild", "--project", str(project), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=cwd,
    )


def test_build_writes_every_environment_and_says_what_it_did(project_dir):
    result = run(project_dir, "build", "--all")
    assert result.returncode == 0, result.stderr
    assert "built 9 template(s) for dev, prod, staging: 9 written, 0 unchanged; cfn-lint 0 matches" in result.stdout
    for env in ("dev", "staging", "prod"):
        for stack in ("network", "data", "webapp"):
            assert json.loads((project_dir / "output" / env / f"{stack}.json").read_text())["Resources"]


def test_second_build_changes_nothing_and_answers_from_the_build_record(project_dir):
    build_here(project_dir, "--env", "dev")  # the first build; the one under test runs as its own process
    before = (project_dir / "output/dev/webapp.json").stat().st_mtime_ns
    result = run(project_dir, "build", "--env", "dev")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "nothing changed since the last build: 3 template(s) for dev are as recorded in .cfnbuild-cache/build/; "
        "cfn-lint 0 matches (cached) in "
    )
    assert (project_dir / "output/dev/webapp.json").stat().st_mtime_ns == before


def test_a_build_whose_lint_cache_is_gone_renders_and_answers_lint_from_the_template_again(project_dir):
    build_here(project_dir, "--env", "dev")
    shutil.rmtree(project_dir / ".cfnbuild-cache/cfn-lint")  # the record holds, the proof of the lint does not
    result = run(project_dir, "build", "--env", "dev")
    assert result.returncode == 0, result.stderr
    assert "0 written, 3 unchanged; cfn-lint 0 matches (0 cached, 3 linted)" in result.stdout


def test_build_check_fails_naming_every_stale_file(project_dir):
    build_here(project_dir, "--all")
    (project_dir / "output/dev/webapp.json").write_text("{}\n")
    (project_dir / "output/prod/webapp.json").unlink()
    (project_dir / "output/staging/old.json").write_text("{}\n")
    result = run(project_dir, "build", "--all", "--check")
    assert result.returncode == 1
    assert "output/dev/webapp.json: differs from what build writes" in result.stderr
    assert "output/prod/webapp.json: missing" in result.stderr
    assert "output/staging/old.json: no stack builds it any more" in result.stderr
    assert "3 stale file(s) in output/" in result.stderr


def test_build_check_passes_on_a_fresh_build(project_dir):
    build_here(project_dir, "--all")
    result = run(project_dir, "build", "--all", "--check")
    assert result.returncode == 0
    assert "output/ is up to date: 9 template(s)" in result.stdout


def test_bad_config_is_one_line_per_problem_with_exit_code_2_and_nothing_written(project_dir):
    config = project_dir / "config/staging.toml"
    config.write_text(config.read_text().replace("az_count = 2", "az_count = 7"))
    result = run(project_dir, "build", "--all")
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {config}: network.az_count: az_count is 7; span 2 or 3 Availability Zones"
    assert not (project_dir / "output").exists()


def test_a_syntax_error_in_a_blueprint_is_one_line_naming_its_file_and_line_and_nothing_is_written(project_dir):
    blueprint = project_dir / "blueprints/observability.py"
    lines = blueprint.read_text().splitlines()
    blueprint.write_text("\n".join([*lines, "x = = 1"]) + "\n")
    result = run(project_dir, "build", "--all")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"error: {blueprint}:{len(lines) + 1}: invalid syntax; fix the syntax there (importing the app "
        "'blueprints.app:app')"
    )
    assert not (project_dir / "output").exists()


@pytest.mark.parametrize("fork", ["1", "0"])
def test_build_writes_the_same_bytes_and_a_record_the_next_build_trusts_forked_or_not(project_dir, fork):
    """Forked (render in a child, lint here and in workers) or not (the lint server): the same build."""
    result = subprocess.run(
        [sys.executable, "-m", "cfnbuild", "--project", str(project_dir), "build", "--all"],
        capture_output=True,
        text=True,
        env={**os.environ, "CFNBUILD_FORK": fork},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for env in ("dev", "staging", "prod"):
        for stack in ("network", "data", "webapp"):
            built = (project_dir / "output" / env / f"{stack}.json").read_bytes()
            assert built == (Path(__file__).resolve().parents[3] / "output" / env / f"{stack}.json").read_bytes()
    again = run(project_dir, "build", "--all")
    assert "nothing changed since the last build: 9 template(s)" in again.stdout, again.stdout + again.stderr
    blueprint = project_dir / "blueprints/observability.py"  # and the record names the blueprints it read
    blueprint.write_text(blueprint.read_text() + "\n# an edit\n")
    edited = run(project_dir, "build", "--all")
    assert "nothing changed" not in edited.stdout, edited.stdout
    assert "9 unchanged" in edited.stdout, edited.stdout


def test_unknown_environment_lists_the_known_ones(project_dir):
    result = run(project_dir, "build", "--env", "qa")
    assert result.returncode == 2
    assert "error: unknown environment 'qa'; known: dev, prod, staging" in result.stderr


def test_debug_shows_the_traceback(project_dir):
    result = run(project_dir, "--debug", "build", "--env", "qa")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_env_and_all_together_is_a_usage_error(project_dir):
    result = run(project_dir, "build", "--env", "dev", "--all")
    assert result.returncode == 2
    assert "give --env ENV or --all, not both" in result.stderr


def test_unknown_option_is_a_usage_error_with_exit_code_2(project_dir):
    result = run(project_dir, "build", "--colour")
    assert result.returncode == 2
    assert "No such option '--colour'" in result.stderr


def test_lint_before_build_says_to_build_first(project_dir):
    result = run(project_dir, "lint", "--env", "dev", "--no-checkov")
    assert result.returncode == 2
    assert "output/dev/network.json does not exist; run 'cfnbuild build --env dev' first" in result.stderr


def test_list_shows_every_environment_and_its_state(project_dir):
    build_here(project_dir, "--env", "dev")
    result = run(project_dir, "list")
    assert result.returncode == 0, result.stderr
    lines = {
        line.split("│")[1].strip(): line
        for line in result.stdout.splitlines()
        if line.count("│") > 3 and line.split("│")[1].strip()
    }
    assert "up to date" in lines["dev"]
    assert "stale" in lines["prod"]


@pytest.mark.parametrize(
    "command",
    [
        *("build", "lint", "list", "graph", "plan", "deploy", "status", "outputs", "delete", "drift", "recover"),
        "refactor",
        *("local", "local start", "local status", "local stop"),
    ],
)
def test_every_command_help_shows_an_example(command, capsys):
    main([*command.split(), "--help"])
    help_text = capsys.readouterr().out
    assert "Example:" in help_text
    assert f"\n    cfnbuild {command}" in help_text  # each example on its own line, as written


def test_console_script_equals_python_m(project_dir):
    script = Path(sys.executable).with_name("cfnbuild")
    result = subprocess.run(
        [str(script), "--project", str(project_dir), "list"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "webapp" in result.stdout


def test_a_corrupt_lint_cache_entry_is_warned_about_once_and_the_build_heals_it(project_dir):
    build_here(project_dir, "--env", "dev")
    entry = sorted((project_dir / ".cfnbuild-cache/cfn-lint").iterdir())[0]  # one per stack of dev
    entry.write_text("")
    result = run(project_dir, "build", "--env", "dev", cwd=project_dir)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"warning: .cfnbuild-cache/cfn-lint/{entry.name} is not a valid cache entry "
        "(Expecting value: line 1 column 1); recomputing it"
    ]
    assert "0 written, 3 unchanged; cfn-lint 0 matches (2 cached, 1 linted)" in result.stdout
    assert json.loads(entry.read_text()) == []  # overwritten with a good entry


def test_build_where_a_file_stands_in_place_of_the_environments_directory_is_one_line_naming_it(project_dir):
    (project_dir / "output").mkdir()
    (project_dir / "output/dev").write_text("kept\n")
    result = run(project_dir, "build", "--env", "dev", cwd=project_dir)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: cannot write output/dev/network.json: output/dev is a file, not a directory; "
        "move it away and run again (nothing was written)"
    ]
    assert (project_dir / "output/dev").read_text() == "kept\n"
    assert sorted(p.name for p in (project_dir / "output").iterdir()) == ["dev"]


def test_build_on_a_full_disk_is_one_line_and_keeps_the_old_template_with_no_temp_file(
    project_dir, monkeypatch, capsys
):
    """In-process, so that the disk holding output/ can be made full (see full_disk_under)."""
    from tests.cfnbuild.test_files import full_disk_under

    monkeypatch.chdir(project_dir)
    old = project_dir / "output/dev/network.json"  # the first stack build writes
    old.parent.mkdir(parents=True)
    old.write_text('{"old": true}\n')
    full_disk_under(project_dir / "output", monkeypatch)
    with pytest.raises(SystemExit) as exited:
        main(["--project", str(project_dir), "build", "--env", "dev"])
    assert exited.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: cannot write output/dev/network.json: [Errno 28] No space left on device; "
        "free some space and run again (the old file is unchanged)"
    ]
    assert old.read_text() == '{"old": true}\n'
    assert sorted(p.name for p in old.parent.iterdir()) == ["network.json"]


@pytest.mark.parametrize(
    "command",
    [
        ("graph", "--env", "dev"),
        ("lint", "--env", "dev", "--no-checkov"),
    ],
    ids=["graph", "lint"],
)
def test_a_truncated_template_is_one_line_naming_its_line_and_column_and_saying_to_build(project_dir, command):
    """(The Service Catalog export reads no template of output/<env>/: it renders the catalog composition.)"""
    template = project_dir / "output/dev/network.json"
    template.parent.mkdir(parents=True)
    template.write_text('{\n  "Resources": {\n    "Topic": {"Type": "AWS::SNS::Topic"\n')  # cut short
    result = run(project_dir, *command)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: output/dev/network.json: not valid JSON at line 4 column 1 (Expecting ',' delimiter); "
        "run 'cfnbuild build --env dev' to write it again"
    ]
