"""Every stack of an environment, in the order of their references: on the emulator, and through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from cfnbuild.deliver.graph_run import deploy_graph, downstream_effects, environment_graph
from cfnbuild.deploy.aws import Aws, Target
from cfnbuild.deploy.engine import Engine, Request
from cfnbuild.deploy.events import PollSettings
from cfnbuild.deploy.plan.model import Plan, ResourceChange
from cfnbuild.local.emulator import THROWAWAY_CREDENTIALS
from cfnbuild.project.app import load_project
from tests.graph_projects import graph_project

ROOT = Path(__file__).resolve().parents[3]
FAST = PollSettings(min_seconds=0.01, max_seconds=0.02, timeout_seconds=60)
# a → b, a → c: b and c take a's topic, and need nothing of each other.
FORK = {"a": [], "b": [("a", "TopicArn")], "c": [("a", "TopicArn")]}


def _factory(root: Path, emulator, suffix: str):
    project = load_project(root)

    def make(stack: str) -> Engine:
        target = Target(
            f"{stack}-dev-{suffix}", "eu-west-1", endpoint_url=emulator.endpoint_url,
            credentials=dict(THROWAWAY_CREDENTIALS),
        )  # fmt: skip
        return Engine(project, Aws(target), Console(record=True), Console(record=True), poll=FAST)

    return make


def _status(emulator, name: str) -> str | None:
    cloudformation = emulator.client("cloudformation")
    try:
        return str(cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"])
    except cloudformation.exceptions.ClientError:
        return None


def _deploy(root: Path, emulator, suffix: str, *, max_parallel: int):
    graph = environment_graph(load_project(root), "dev", list(FORK))
    out = Console(record=True, width=200)
    results = deploy_graph(
        _factory(root, emulator, suffix), graph, Request("dev", "a", yes=True),
        max_parallel=max_parallel, out=out, confirm=None,
    )  # fmt: skip
    return {r.stack: r for r in results}, out.export_text()


def test_the_upstream_deploys_first_then_its_two_dependents_side_by_side(tmp_path, emulator):
    root = graph_project(tmp_path, FORK, "fork")
    results, text = _deploy(root, emulator, "fork", max_parallel=4)
    a, b, c = results["a"], results["b"], results["c"]
    assert [r.result for r in (a, b, c)] == ["deployed"] * 3
    assert a.finished <= b.started
    assert a.finished <= c.started
    assert b.started < c.finished, "b and c ran at the same time"
    assert c.started < b.finished, "b and c ran at the same time"
    assert text.index("plan for c") < text.index("[a] deploying") < text.index("[b] deploying")
    assert "from stack a (not deployed yet)" in text  # b's plan, before a existed
    topic = emulator.client("cloudformation").describe_stacks(StackName="a-dev-fork")["Stacks"][0]["Outputs"]
    for downstream in ("b", "c"):
        stack = emulator.client("cloudformation").describe_stacks(StackName=f"{downstream}-dev-fork")["Stacks"][0]
        assert stack["Parameters"] == [{"ParameterKey": "ATopicArn", "ParameterValue": topic[0]["OutputValue"]}]


def test_max_parallel_one_deploys_the_independent_stacks_one_after_the_other(tmp_path, emulator):
    root = graph_project(tmp_path, FORK, "serial")
    results, _ = _deploy(root, emulator, "serial", max_parallel=1)
    a, b, c = results["a"], results["b"], results["c"]
    assert a.finished <= b.started
    assert b.finished <= c.started


def test_a_failure_stops_what_depends_on_it_and_says_what_was_not_started(tmp_path, emulator):
    uses = {"a": [], "b": [("a", "TopicArn")], "c": [], "d": [("b", "TopicArn")]}
    root = graph_project(tmp_path, uses, "stop", broken=["b"])
    graph = environment_graph(load_project(root), "dev", ["a", "b", "c", "d"])
    out = Console(record=True, width=200)
    results = {
        r.stack: r
        for r in deploy_graph(
            _factory(root, emulator, "stop"),
            graph,
            Request("dev", "a", yes=True),
            max_parallel=2,
            out=out,
            confirm=None,
        )
    }
    assert {s: r.result for s, r in results.items()} == {
        "a": "deployed", "b": "failed", "c": "deployed", "d": "not started",
    }  # fmt: skip
    assert "NonExistentQueue" in results["b"].detail
    assert results["d"].detail == "b did not deploy"
    assert _status(emulator, "d-dev-stop") is None
    assert "not started" in out.export_text()


def _cli(root: Path, monkeypatch, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "emulator")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "emulator")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "300")
    command = [sys.executable, "-m", "cfnbuild", "--project", str(root), *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT, stdin=subprocess.DEVNULL)


@pytest.mark.server
def test_the_commands_act_on_every_stack_and_delete_in_reverse_order(tmp_path, emulator, monkeypatch):
    root = graph_project(tmp_path / "p", FORK, "cli")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return _cli(root, monkeypatch, tmp_path, *args, "--endpoint-url", emulator.endpoint_url)

    planned = run("plan")
    assert planned.returncode == 2, planned.stderr
    assert "from stack a (not deployed yet)" in planned.stdout
    deployed = run("deploy", "--yes")
    assert deployed.returncode == 0, deployed.stderr
    assert "dev: a → b + c" in deployed.stdout
    assert {_status(emulator, f"{s}-dev-cli") for s in FORK} == {"CREATE_COMPLETE"}
    status = run("status")
    states = [line.split(" (")[0] for line in status.stdout.splitlines() if "-dev-cli: " in line]
    assert states == ["a-dev-cli: CREATE_COMPLETE", "b-dev-cli: CREATE_COMPLETE", "c-dev-cli: CREATE_COMPLETE"]
    outputs = run("outputs")
    assert outputs.returncode == 0, outputs.stderr
    assert json.loads((root / "output/dev/b.outputs.json").read_text())["Outputs"]["SeenaTopicArn"].startswith("arn:")
    one = run("plan", "--stack", "a")
    assert "a: b, c depend on it; a change of its outputs reaches them at their next deploy" in one.stderr
    deleted = run("delete", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    lines = [line for line in deleted.stdout.splitlines() if line.endswith(": deleted")]
    assert lines[-1] == "a-dev-cli: deleted"
    assert sorted(lines[:2]) == ["b-dev-cli: deleted", "c-dev-cli: deleted"]
    assert {_status(emulator, f"{s}-dev-cli") for s in FORK} == {None}


@pytest.mark.server
def test_a_deploy_of_only_the_downstream_names_the_upstream_and_the_fix(tmp_path, emulator, monkeypatch):
    root = graph_project(tmp_path / "p", FORK, "only")
    result = _cli(
        root, monkeypatch, tmp_path, "deploy", "--yes", "--stack", "b", "--endpoint-url", emulator.endpoint_url
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "error: b-dev-only takes outputs of a (a-dev-only), not deployed yet in eu-west-1; deploy it first: "
        "cfnbuild deploy --env dev --stack a (or 'cfnbuild deploy --env dev' for every stack in order)"
    )


@pytest.mark.server
def test_deploy_local_deploys_the_whole_graph_on_the_emulator_of_the_command(tmp_path, monkeypatch):
    root = graph_project(tmp_path / "p", FORK, "local")
    result = _cli(root, monkeypatch, tmp_path, "deploy", "--local")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.index("plan for a") < text.index("plan for b") < text.index("plan for c") < text.index("[a] deploying")
    assert text.index("[a] deploying") < text.index("[b] deploying")
    assert text.index("[a] deploying") < text.index("[c] deploying")
    summary = text[text.index("stacks of dev, in deploy order") :]
    cells = [[c.strip() for c in line.split("│")] for line in summary.splitlines() if line.count("│") == 5]
    assert {row[1]: row[2] for row in cells if row[1] in FORK} == dict.fromkeys(FORK, "deployed")


def _plan(stack_name: str, *changes: tuple[str, str, str]) -> Plan:
    resources = tuple(
        ResourceChange(lid, "AWS::SNS::Topic", action, replacement, None, False, False, (), ())
        for lid, action, replacement in changes
    )
    return Plan(stack_name, "cs" if resources else None, "UPDATE", resources, (), (), "h", None)


def test_the_graph_plan_says_which_used_outputs_an_upstream_change_reaches(tmp_path):
    root = graph_project(tmp_path, FORK, "effects")
    graph = environment_graph(load_project(root), "dev", list(FORK))
    replaced = {"a": _plan("a-dev", ("Topic", "Modify", "True")), "b": _plan("b-dev"), "c": _plan("c-dev")}
    assert downstream_effects(graph, replaced) == [
        "a: output TopicArn changes (Topic replace); b takes it as ATopicArn and is updated after a",
        "a: output TopicArn changes (Topic replace); c takes it as ATopicArn and is updated after a",
    ]
    modified = {**replaced, "a": _plan("a-dev", ("Topic", "Modify", "False"))}
    assert downstream_effects(graph, modified)[0].startswith("a: output TopicArn may change (Topic modify); b ")
    assert downstream_effects(graph, {**replaced, "a": _plan("a-dev")}) == []


@pytest.mark.server
def test_outputs_of_every_stack_go_on_past_a_stack_not_deployed_and_name_it(tmp_path, emulator, monkeypatch):
    root = graph_project(tmp_path / "p", FORK, "part")
    where = ["--endpoint-url", emulator.endpoint_url]
    deployed = _cli(root, monkeypatch, tmp_path, "deploy", "--yes", "--stack", "a", *where)
    assert deployed.returncode == 0, deployed.stderr

    result = _cli(root, monkeypatch, tmp_path, "outputs", *where)

    assert result.returncode == 1
    assert json.loads((root / "output/dev/a.outputs.json").read_text())["Outputs"]["TopicArn"].startswith("arn:")
    assert "b: b-dev-part is not deployed" in result.stderr
    assert "c: c-dev-part is not deployed" in result.stderr
    assert result.stderr.splitlines()[-1] == ("error: 2 of 3 stack(s) gave no outputs: b, c (the lines above say why)")
