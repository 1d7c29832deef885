"""A stack's inputs from another stack's outputs: filled from the upstream's deployed outputs, on the emulator."""

from __future__ import annotations

import pytest
from rich.console import Console

from cfnbuild.deploy.aws import Aws, Target
from cfnbuild.deploy.engine import Engine, Refused, Request
from cfnbuild.deploy.events import PollSettings
from cfnbuild.errors import UsageError
from cfnbuild.local.emulator import THROWAWAY_CREDENTIALS
from cfnbuild.project.app import load_project
from tests.graph_projects import graph_project

FAST = PollSettings(min_seconds=0.01, max_seconds=0.02, timeout_seconds=60)


def _engine(root, emulator, stack_name: str) -> tuple[Engine, Console, Console]:
    target = Target(
        stack_name, "eu-west-1", endpoint_url=emulator.endpoint_url, credentials=dict(THROWAWAY_CREDENTIALS)
    )
    out, err = Console(record=True, width=200), Console(record=True, width=200)
    return Engine(load_project(root), Aws(target), out, err, poll=FAST), out, err


def _parameters(emulator, stack_name: str) -> dict[str, str]:
    stack = emulator.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}


def test_deploy_fills_the_input_from_the_upstream_stacks_deployed_output(tmp_path, emulator):
    root = graph_project(tmp_path, {"a": [], "b": [("a", "TopicArn")]}, "fill")
    _engine(root, emulator, "a-dev-fill")[0].deploy(Request("dev", "a", yes=True))
    upstream_arn = emulator.client("cloudformation").describe_stacks(StackName="a-dev-fill")["Stacks"][0]["Outputs"][0]
    engine, _, err = _engine(root, emulator, "b-dev-fill")
    outputs = engine.deploy(Request("dev", "b", yes=True))
    assert _parameters(emulator, "b-dev-fill") == {"ATopicArn": upstream_arn["OutputValue"]}
    assert outputs["SeenaTopicArn"] == upstream_arn["OutputValue"]
    assert f"parameter ATopicArn: {upstream_arn['OutputValue']} (output TopicArn of a-dev-fill)" in err.export_text()


def test_a_plan_before_the_upstream_is_deployed_shows_where_the_value_will_come_from(tmp_path, emulator):
    root = graph_project(tmp_path, {"a": [], "b": [("a", "TopicArn")]}, "early")
    engine, _, err = _engine(root, emulator, "b-dev-early")
    plan, _ = engine.plan(Request("dev", "b"), keep=False)
    assert {p.name: p.after for p in plan.parameters} == {"ATopicArn": "from stack a (not deployed yet)"}
    assert engine.waiting == {"ATopicArn": "a"}
    assert "parameter ATopicArn: from stack a (not deployed yet); a-dev-early comes first" in err.export_text()


def test_a_deploy_before_the_upstream_is_deployed_is_refused_in_one_line_naming_it_and_the_fix(tmp_path, emulator):
    root = graph_project(tmp_path, {"a": [], "b": [("a", "TopicArn")]}, "refuse")
    engine, _, _ = _engine(root, emulator, "b-dev-refuse")
    with pytest.raises(Refused) as info:
        engine.deploy(Request("dev", "b", yes=True))
    assert str(info.value) == (
        "b-dev-refuse takes outputs of a (a-dev-refuse), not deployed yet in eu-west-1; deploy it first: "
        "cfnbuild deploy --env dev --stack a (or 'cfnbuild deploy --env dev' for every stack in order)"
    )
    cloudformation = emulator.client("cloudformation")
    with pytest.raises(cloudformation.exceptions.ClientError):
        cloudformation.describe_stacks(StackName="b-dev-refuse")


def test_an_upstream_deployed_without_the_output_is_refused_naming_both(tmp_path, emulator):
    root = graph_project(tmp_path, {"a": [], "b": [("a", "TopicArn")]}, "missing")
    emulator.client("cloudformation").create_stack(
        StackName="a-dev-missing",
        TemplateBody='{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}',
    )
    engine, _, _ = _engine(root, emulator, "b-dev-missing")
    with pytest.raises(UsageError, match=r"^parameter ATopicArn: a-dev-missing \(CREATE_COMPLETE\) in eu-west-1 "):
        engine.deploy(Request("dev", "b", yes=True))


def test_an_output_the_emulator_cannot_compute_but_the_upstream_declares_is_sent_as_a_named_stand_in(
    tmp_path, emulator
):
    """moto keeps AWS::SecretsManager::Secret a placeholder: an output reading it is not returned, on AWS it is."""
    root = graph_project(tmp_path, {"a": [], "b": [("a", "TopicArn")]}, "standin")
    emulator.client("cloudformation").create_stack(
        StackName="a-dev-standin",
        TemplateBody=(
            '{"Resources": {"Secret": {"Type": "AWS::SecretsManager::Secret"}},'
            ' "Outputs": {"TopicArn": {"Value": {"Fn::GetAtt": ["Secret", "Id"]}}}}'
        ),
    )
    engine, _, err = _engine(root, emulator, "b-dev-standin")
    engine.deploy(Request("dev", "b", yes=True))
    assert _parameters(emulator, "b-dev-standin") == {"ATopicArn": "emulator-stand-in-a-TopicArn"}
    assert "the emulator returns no output TopicArn of a-dev-standin; AWS does" in err.export_text()


def test_a_param_override_wins_over_the_upstream_output(tmp_path, emulator):
    root = graph_project(tmp_path, {"a": [], "b": [("a", "TopicArn")]}, "override")
    engine, _, _ = _engine(root, emulator, "b-dev-override")
    engine.deploy(Request("dev", "b", yes=True, param_overrides={"ATopicArn": "given"}))
    assert _parameters(emulator, "b-dev-override") == {"ATopicArn": "given"}


def test_a_value_for_a_parameter_another_stack_declares_is_not_refused_and_one_no_stack_declares_is(tmp_path, emulator):
    """One --param (or [deploy.parameters] value) serves a graph deploy: each stack takes the ones it declares."""
    root = graph_project(tmp_path, {"a": [], "b": [("a", "TopicArn")]}, "elsewhere")
    engine, _, _ = _engine(root, emulator, "a-dev-elsewhere")
    engine.deploy(Request("dev", "a", yes=True, param_overrides={"ATopicArn": "for b"}))
    assert _parameters(emulator, "a-dev-elsewhere") == {}
    engine, _, _ = _engine(root, emulator, "a-dev-elsewhere")
    with pytest.raises(UsageError, match=r"^--param Nope: the template has no parameter 'Nope'; it has: \(none\)$"):
        engine.deploy(Request("dev", "a", yes=True, param_overrides={"Nope": "x"}))
