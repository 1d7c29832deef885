"""plan --json and --out over every stack of an environment: one document, executed by deploy --plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cfnbuild.deploy.engine import Request
from cfnbuild.deploy.plan import GRAPH_FORMAT, Plan, load_plan, save_graph_plan, save_plan
from cfnbuild.errors import UsageError
from tests.cfnbuild.deliver.test_graph_run import FORK, _cli, _status
from tests.cfnbuild.deploy.test_engine import _engine, _mini_project
from tests.graph_projects import graph_project
from tests.inprocess import build_here


def _run(root: Path, emulator, monkeypatch, tmp_path: Path, *args: str):
    return _cli(root, monkeypatch, tmp_path, *args, "--endpoint-url", emulator.endpoint_url)


@pytest.mark.server
def test_plan_json_of_every_stack_is_one_document_in_graph_order_and_leaves_nothing(tmp_path, emulator, monkeypatch):
    root = graph_project(tmp_path / "p", FORK, "json")
    result = _run(root, emulator, monkeypatch, tmp_path, "plan", "--json")
    assert result.returncode == 2, result.stderr
    document = json.loads(result.stdout)
    assert document["format"] == GRAPH_FORMAT
    assert (document["environment"], document["order"]) == ("dev", ["a", "b", "c"])
    assert [(p["stack"], p["plan"]["stack_name"]) for p in document["plans"]] == [
        ("a", "a-dev-json"),
        ("b", "b-dev-json"),
        ("c", "c-dev-json"),
    ]
    b = document["plans"][1]["plan"]
    assert b["parameter_values"]["ATopicArn"] == "from stack a (not deployed yet)"
    assert document["summary"]["has_changes"] is True
    assert {_status(emulator, f"{s}-dev-json") for s in FORK} == {None}  # no change set or stack left behind
    markdown = _run(root, emulator, monkeypatch, tmp_path, "plan", "--markdown")
    assert markdown.stdout.index("`a-dev-json`") < markdown.stdout.index("`b-dev-json`")


@pytest.mark.server
def test_plan_out_of_every_stack_is_deployed_stack_by_stack_by_deploy_plan(tmp_path, emulator, monkeypatch):
    root = graph_project(tmp_path / "p", FORK, "saved")
    assert _run(root, emulator, monkeypatch, tmp_path, "deploy", "--yes").returncode == 0
    app = root / "graph_app.py"
    topic = 'topic = stack.add_resource(sns.Topic("Topic"), owner="test")'
    extra = 'if name == "c":\n            stack.add_resource(sns.Topic("Extra"), owner="test")'
    app.write_text(app.read_text().replace(topic, f"{topic}\n        {extra}"))  # c changes; a's output does not
    build_here(root)
    saved = tmp_path / "every.plan"
    planned = _run(root, emulator, monkeypatch, tmp_path, "plan", "--out", str(saved))
    assert planned.returncode == 2, planned.stderr
    assert f"saved the plans of 3 stacks to {saved}; deploy them with --plan {saved}" in planned.stderr
    assert "not deployed yet" not in planned.stderr
    assert "No changes: stack b-dev-saved is up to date." in planned.stdout  # unchanged, with a parameter
    assert json.loads(saved.read_text())["order"] == ["a", "b", "c"]
    deployed = _run(root, emulator, monkeypatch, tmp_path, "deploy", "--plan", str(saved), "--yes")
    assert deployed.returncode == 0, deployed.stderr
    assert deployed.stdout.index("saved plan for a") < deployed.stdout.index("saved plan for b")
    states = {s: _status(emulator, f"{s}-dev-saved") for s in FORK}
    assert states == {"a": "CREATE_COMPLETE", "b": "CREATE_COMPLETE", "c": "UPDATE_COMPLETE"}
    again = _run(root, emulator, monkeypatch, tmp_path, "deploy", "--plan", str(saved), "--yes")
    assert again.returncode == 1  # c's part was executed: c changed since it was planned
    assert "c failed: " in again.stderr
    assert "is stale: c-dev-saved changed since the plan was made" in again.stderr


@pytest.mark.server
def test_a_saved_plan_whose_upstream_output_changes_stops_before_the_stacks_that_take_it(
    tmp_path, emulator, monkeypatch
):
    root = graph_project(tmp_path / "p", FORK, "moved")
    assert _run(root, emulator, monkeypatch, tmp_path, "deploy", "--yes").returncode == 0
    app = root / "graph_app.py"  # the emulator replaces a topic whose DisplayName changes: a new TopicArn
    app.write_text(app.read_text().replace('sns.Topic("Topic")', 'sns.Topic("Topic", DisplayName="v2")'))
    build_here(root)
    saved = tmp_path / "every.plan"
    assert _run(root, emulator, monkeypatch, tmp_path, "plan", "--out", str(saved)).returncode == 2
    deployed = _run(root, emulator, monkeypatch, tmp_path, "deploy", "--plan", str(saved), "--yes")
    assert deployed.returncode == 1
    assert _status(emulator, "a-dev-moved") == "UPDATE_COMPLETE"
    assert {_status(emulator, f"{s}-dev-moved") for s in ("b", "c")} == {"CREATE_COMPLETE"}  # left as they were
    assert "b-dev-moved takes ATopicArn from stack a, which gives 'arn:" in deployed.stderr
    assert "as planned; run 'cfnbuild plan' again" in deployed.stderr


@pytest.mark.server
def test_a_plan_out_made_before_the_upstream_existed_stops_before_the_stacks_that_wait_for_it(
    tmp_path, emulator, monkeypatch
):
    root = graph_project(tmp_path / "p", FORK, "early")
    saved = tmp_path / "every.plan"
    planned = _run(root, emulator, monkeypatch, tmp_path, "plan", "--out", str(saved))
    assert planned.returncode == 2, planned.stderr
    waiting = "b: its plan takes ATopicArn from stack a, not deployed yet, so a deploy of this saved plan stops"
    assert waiting in planned.stderr
    assert "c: its plan takes ATopicArn from stack a" in planned.stderr
    deployed = _run(root, emulator, monkeypatch, tmp_path, "deploy", "--plan", str(saved), "--yes")
    assert deployed.returncode == 1
    assert _status(emulator, "a-dev-early") == "CREATE_COMPLETE"  # its saved create, executed
    assert "b-dev-early takes ATopicArn from stack a, which gives 'arn:" in deployed.stderr
    assert "not 'from stack a (not deployed yet)' as planned; run 'cfnbuild plan' again" in deployed.stderr


def test_a_saved_plan_of_a_new_stack_is_executed_not_taken_for_another_clients_change_set(tmp_path, emulator):
    root = _mini_project(tmp_path, "fresh")
    engine, _ = _engine(root, emulator, "mini-dev-fresh")
    plan, created = engine.plan(Request("dev", "mini"), keep=True)
    assert created is not None
    saved = tmp_path / "new.plan"
    save_plan(plan, saved)
    engine, _ = _engine(root, emulator, "mini-dev-fresh")
    engine.deploy(Request("dev", "mini", yes=True, plan_file=saved))
    assert _status(emulator, "mini-dev-fresh") == "CREATE_COMPLETE"


def test_a_plan_of_every_stack_gives_each_stack_its_part_and_refuses_without_a_stack(tmp_path):
    plans = [Plan(f"{s}-dev", None, "UPDATE", (), (), (), f"h{s}", None) for s in ("a", "b")]
    path = tmp_path / "every.plan"
    save_graph_plan(path, "dev", ["a", "b"], plans)
    assert load_plan(path, "b-dev").template_hash == "hb"
    with pytest.raises(UsageError, match=r"a plan of every stack of dev; deploy it without --stack"):
        load_plan(path)
    with pytest.raises(UsageError, match=r"a plan of the stacks of dev \(a-dev, b-dev\), none of c-dev; plan again"):
        load_plan(path, "c-dev")
