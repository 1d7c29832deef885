"""The graph of a project's stacks, derived from the cross-stack references their templates record."""

from __future__ import annotations

import json

import pytest
from troposphere import Ref, sns

from cfnbuild.build.stack import Stack
from cfnbuild.errors import InputError
from cfnbuild.project.stack_graph import GraphError, stack_graph
from tests.graph_projects import cfnbuild, graph_project, write_graph_project


def _template(name: str, uses: list[tuple[str, str]], outputs: tuple[str, ...] = ("TopicArn",)) -> dict:
    stack = Stack(name, description=name, project="p", environment="dev")
    topic = stack.add_resource(sns.Topic("Topic"), owner="test")
    for output in outputs:
        stack.add_output(output, Ref(topic), "An output.", owner="test", export=False)
    for upstream, output in uses:
        stack.use(upstream, output)
    return stack.to_dict()


def test_use_adds_a_string_parameter_and_records_where_its_value_comes_from_without_an_import():
    stack = Stack("app", description="app", project="p", environment="dev")
    ref = stack.use("network", "VpcId")
    again = stack.use("network", "VpcId")
    template = stack.to_dict()
    assert ref.to_dict() == again.to_dict() == {"Ref": "NetworkVpcId"}
    assert template["Parameters"]["NetworkVpcId"]["Type"] == "String"
    assert "Default" not in template["Parameters"]["NetworkVpcId"]
    assert template["Metadata"]["cfnbuild"]["inputs"] == {"NetworkVpcId": {"output": "VpcId", "stack": "network"}}
    assert "ImportValue" not in json.dumps(template)


def test_a_stack_using_its_own_output_is_refused():
    stack = Stack("app", description="app", project="p", environment="dev")
    with pytest.raises(InputError, match="its own stack 'app'"):
        stack.use("app", "TopicArn")


def test_the_graph_orders_stacks_after_their_upstreams_in_waves_and_names_dependents():
    templates = {
        "c": _template("c", [("a", "TopicArn")]),
        "b": _template("b", [("a", "TopicArn")]),
        "a": _template("a", []),
        "d": _template("d", [("b", "TopicArn"), ("c", "TopicArn")]),
    }
    graph = stack_graph(templates, environment="dev")
    assert graph.upstreams == {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")}
    assert graph.layers() == (("a",), ("c", "b"), ("d",))
    assert graph.order() == ("a", "c", "b", "d")
    assert graph.downstreams("a") == ("c", "b")
    assert graph.dependents("a") == ("c", "b", "d")
    assert graph.dependents("d") == ()


def test_stacks_that_use_each_other_in_a_circle_are_refused_naming_the_circle():
    templates = {
        "a": _template("a", [("c", "TopicArn")]),
        "b": _template("b", [("a", "TopicArn")]),
        "c": _template("c", [("b", "TopicArn")]),
    }
    with pytest.raises(GraphError, match=r"^dev: stacks take each other's outputs in a circle: a → c → b → a "):
        stack_graph(templates, environment="dev")


def test_an_output_the_upstream_does_not_declare_is_refused_naming_both_stacks():
    templates = {"a": _template("a", [], outputs=("QueueUrl",)), "b": _template("b", [("a", "TopicArn")])}
    with pytest.raises(GraphError) as info:
        stack_graph(templates, environment="dev")
    assert str(info.value) == (
        "dev: stack b uses output 'TopicArn' of stack a, which a does not declare; it declares: QueueUrl"
    )


def test_a_stack_the_project_does_not_have_is_refused():
    with pytest.raises(GraphError, match=r"uses stack 'network', which this project does not have; it has: b"):
        stack_graph({"b": _template("b", [("network", "VpcId")])}, environment="dev")


def test_build_refuses_a_circle_in_one_line_and_writes_nothing(tmp_path):
    write_graph_project(tmp_path, {"a": [("b", "TopicArn")], "b": [("a", "TopicArn")]}, "circle")
    result = cfnbuild(tmp_path, "build")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: dev: stacks take each other's outputs in a circle: a → b → a (each takes outputs of the next); no "
        "order can deploy them; move what both need into one stack, or pass one value through the config instead"
    ]
    assert not (tmp_path / "output").exists()


def test_build_writes_the_reference_into_the_consumer_template(tmp_path):
    graph_project(tmp_path, {"a": [], "b": [("a", "TopicArn")]}, "write")
    template = json.loads((tmp_path / "output/dev/b.json").read_text())
    assert template["Metadata"]["cfnbuild"]["inputs"] == {"ATopicArn": {"output": "TopicArn", "stack": "a"}}
    assert template["Outputs"]["SeenaTopicArn"]["Value"] == {"Ref": "ATopicArn"}


def test_list_shows_what_each_stack_takes_outputs_of_and_the_deploy_order(tmp_path):
    graph_project(tmp_path, {"a": [], "b": [("a", "TopicArn")], "c": [("a", "TopicArn"), ("b", "TopicArn")]}, "list")
    result = cfnbuild(tmp_path, "list")
    assert result.returncode == 0, result.stderr
    cells = [[c.strip() for c in line.split("│")] for line in result.stdout.splitlines() if line.count("│") > 3]
    rows = {row[2]: row[3] for row in cells if row[1] == "dev"}
    assert rows == {"a": "-", "b": "a", "c": "a, b"}
    assert "dev: a → b → c" in result.stdout.splitlines()


def test_a_deploy_no_record_vouches_for_compares_only_its_own_stack_with_the_other_stacks_templates_beside_it(tmp_path):
    """With no build record, a deploy of one stack renders; the other stacks' templates are not orphans of it."""
    from cfnbuild.project.app import load_project
    from cfnbuild.project.record import record_path, verified
    from cfnbuild.project.writer import check_current

    root = graph_project(tmp_path / "p", {"a": [], "b": [("a", "TopicArn")]}, "x")
    record_path(root, "dev").unlink()
    said: list[str] = []
    check_current(load_project(root), "dev", "a", said.append)
    assert said == ["no build record vouches for output/dev/a.json (none written yet): rendering to compare"]
    assert verified(root, "dev") is not None  # every file current: recorded for the next deploy
