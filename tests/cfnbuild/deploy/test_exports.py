"""Exports an update removes: listed in the plan, refused while another stack imports one.

The emulator (moto) has no ListImports, so who imports an export is scripted with botocore's
Stubber; the rest (a deployed export, an update that drops it) runs on the emulator.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from botocore.stub import Stubber
from rich.console import Console

from cfnbuild.deploy.aws import Aws, Target
from cfnbuild.deploy.engine import DeployedStack, Engine, Refused, Request
from cfnbuild.deploy.exports import EMULATOR_UNCHECKED, importers, new_export_name, refuse_imported, removed_exports
from cfnbuild.deploy.model import Prepared
from cfnbuild.deploy.plan import Plan, RemovedExport, load_plan, render_markdown, render_text, save_plan
from cfnbuild.project.app import load_project
from tests.cfnbuild.deploy.test_engine import FAST, _engine
from tests.inprocess import build_here

APP = """
from troposphere import Ref, sns

from cfnbuild import App, EnvironmentConfig, Stack, StackSpec


class Config(EnvironmentConfig):
    export_topic: bool = True


def build(config):
    stack = Stack("shared", description="shared", project=config.project, environment=config.environment)
    topic = stack.add_resource(sns.Topic("Topic"), owner="test")
    stack.add_output("TopicArn", Ref(topic), "The topic.", owner="test", export=config.export_topic)
    return stack


app = App(config_model=Config, stacks=[StackSpec("shared", build)])
"""


def _project(root: Path, suffix: str, *, export_topic: bool) -> Path:
    root.mkdir(exist_ok=True)
    (root / "pyproject.toml").write_text('[tool.cfnbuild]\napp = "shared_app:app"\ndefault_env = "dev"\n')
    (root / "shared_app.py").write_text(APP)
    (root / "config").mkdir(exist_ok=True)
    (root / "config/dev.toml").write_text(
        f'project = "shared"\nregions = ["eu-west-1"]\nexport_topic = {json.dumps(export_topic)}\n'
        f'[deploy]\nstack_name_suffix = "{suffix}"\n'
    )
    build_here(root)
    return root


TEMPLATE = {
    "Outputs": {
        "Kept": {"Value": "k", "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-Kept"}}},
        "Literal": {"Value": "l", "Export": {"Name": "shared-literal"}},
        "Dropped": {"Value": "d"},
        "Renamed": {"Value": "r", "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-NewName"}}},
        "Unknown": {"Value": "u", "Export": {"Name": {"Fn::Join": ["-", ["a", {"Ref": "X"}]]}}},
    }
}


def test_removed_exports_are_the_deployed_ones_the_new_template_no_longer_makes():
    deployed = {
        "Kept": "app-dev-Kept",
        "Literal": "shared-literal",
        "Dropped": "app-dev-Dropped",
        "Renamed": "app-dev-Renamed",
        "Unknown": "a-b",
        "Gone": "app-dev-Gone",
    }
    assert removed_exports(deployed, TEMPLATE, "app-dev") == [
        ("app-dev-Dropped", "Dropped"),
        ("app-dev-Gone", "Gone"),
        ("app-dev-Renamed", "Renamed"),
    ]


def test_the_new_export_name_resolves_the_stack_name_and_says_when_it_cannot_be_known():
    outputs = TEMPLATE["Outputs"]
    assert new_export_name(outputs["Kept"], "app-dev") == "app-dev-Kept"
    assert new_export_name(outputs["Dropped"], "app-dev") is None
    assert new_export_name(outputs["Unknown"], "app-dev") == "?"


def _aws_cloudformation() -> tuple[Aws, Stubber]:
    aws = Aws(Target("app-dev", "eu-west-1"))  # an AWS target (no emulator credentials): ListImports is asked
    return aws, Stubber(aws.cloudformation)


def test_importers_read_every_page_of_list_imports_and_none_when_aws_says_nobody_imports():
    """ListImports scripted with Stubber: moto has no ListImports."""
    aws, stubber = _aws_cloudformation()
    stubber.add_response("list_imports", {"Imports": ["web-dev"], "NextToken": "t"}, {"ExportName": "app-dev-X"})
    stubber.add_response("list_imports", {"Imports": ["jobs-dev"]}, {"ExportName": "app-dev-X", "NextToken": "t"})
    stubber.add_client_error("list_imports", "ValidationError", "Export 'app-dev-Y' is not imported by any stack.", 400)
    with stubber:
        assert importers(aws.cloudformation, "app-dev-X") == ("web-dev", "jobs-dev")
        assert importers(aws.cloudformation, "app-dev-Y") == ()


def _plan(*removed: RemovedExport) -> Plan:
    return Plan("app-dev", "arn:cs", "UPDATE", (), (), (), "h", None, removed_exports=removed)


def test_a_plan_removing_an_imported_export_is_refused_in_one_line_naming_the_importing_stack():
    plan = _plan(RemovedExport("app-dev-VpcId", "VpcId", ("web-dev",)), RemovedExport("app-dev-X", "X"))
    with pytest.raises(Refused) as info:
        refuse_imported(plan)
    message = str(info.value)
    assert "\n" not in message
    assert "export app-dev-VpcId (output VpcId) is imported by web-dev" in message
    assert "app-dev-X" not in message  # nobody imports it: removing it is fine
    assert "Replace the Fn::ImportValue in web-dev first" in message
    refuse_imported(_plan(RemovedExport("app-dev-X", "X")))  # no importer: no refusal


def test_the_plan_shows_removed_exports_in_text_markdown_and_its_saved_json(tmp_path):
    plan = _plan(RemovedExport("app-dev-VpcId", "VpcId", ("web-dev",)), RemovedExport("app-dev-X", "X"))
    console = Console(record=True, width=200)
    render_text(plan, console)
    text = console.export_text()
    assert "Plan to update stack app-dev: 0 to add, 0 to modify, 0 to replace, 0 to remove, 2 exports removed" in text
    assert "app-dev-VpcId (output VpcId): imported by web-dev; CloudFormation refuses to remove it" in text
    assert "app-dev-X (output X): no stack imports it" in text
    assert "#### Exports removed" in render_markdown(plan)
    save_plan(plan, tmp_path / "plan.json")
    assert load_plan(tmp_path / "plan.json").removed_exports == plan.removed_exports


def test_the_engine_asks_list_imports_for_each_removed_export_and_refuses_an_imported_one(tmp_path):
    """The deployed stack's exports from DescribeStacks, its importers from ListImports (Stubber: moto has neither
    importing stacks nor ListImports)."""
    root = _project(tmp_path / "p", "stub", export_topic=False)
    aws, stubber = _aws_cloudformation()
    engine = Engine(load_project(root), aws, Console(record=True), Console(record=True), poll=FAST)
    deployed = DeployedStack.from_api(
        {
            "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/shared-dev-stub/1",
            "StackName": "shared-dev-stub",
            "StackStatus": "UPDATE_COMPLETE",
            "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
            "Outputs": [{"OutputKey": "TopicArn", "OutputValue": "arn", "ExportName": "shared-dev-stub-TopicArn"}],
        }
    )
    assert deployed.exports == {"TopicArn": "shared-dev-stub-TopicArn"}
    template = json.loads((root / "output/dev/shared.json").read_text())
    prepared = Prepared(template, "{}", "h", {}, frozenset(), {}, [], False, None)
    stubber.add_response("list_imports", {"Imports": ["consumer-dev"]}, {"ExportName": "shared-dev-stub-TopicArn"})
    with stubber:
        plan = engine._with_removed_exports(_plan(), deployed, prepared)
    assert plan.removed_exports == (RemovedExport("shared-dev-stub-TopicArn", "TopicArn", ("consumer-dev",)),)
    with pytest.raises(Refused, match=r"is imported by consumer-dev"):
        engine._check_allowed(plan, Request("dev", "shared", yes=True))


def test_an_update_that_drops_an_export_shows_it_in_the_plan_and_deploys_on_the_emulator(tmp_path, emulator):
    root = _project(tmp_path / "p", "drop", export_topic=True)
    engine, _ = _engine(root, emulator, "shared-dev-drop")
    engine.deploy(Request("dev", "shared", yes=True))
    cloudformation = emulator.client("cloudformation")
    names = {e["Name"] for e in cloudformation.list_exports()["Exports"]}
    assert "shared-dev-drop-TopicArn" in names
    _project(root, "drop", export_topic=False)
    engine, out = _engine(root, emulator, "shared-dev-drop")
    engine.deploy(Request("dev", "shared", yes=True))
    text = out.export_text()
    assert f"shared-dev-drop-TopicArn (output TopicArn): who imports it is unknown ({EMULATOR_UNCHECKED})" in text
    names = {e["Name"] for e in cloudformation.list_exports()["Exports"]}
    assert "shared-dev-drop-TopicArn" not in names
