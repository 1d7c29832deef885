"""The README stays true: its example runs, and CI runs exactly its test command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_write_your_own_blueprint_example_runs_and_builds_a_stateful_queue(tmp_path):
    (code,) = re.findall(r"```python\n(.*?)```", _section("Write your own blueprint"), re.S)
    script = tmp_path / "example.py"
    script.write_text(code)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    template = json.loads(result.stdout)
    queue = template["Resources"]["Queue"]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["MessageRetentionPeriod"] == 7 * 86400
    assert queue["DeletionPolicy"] == "RetainExceptOnCreate"
    assert queue["UpdateReplacePolicy"] == "Retain"
    assert {t["Key"] for t in queue["Properties"]["Tags"]} == {
        "Environment",
        "ManagedBy",
        "Project",
    }
    assert template["Outputs"]["QueueUrl"] == {"Description": "URL of the work queue.", "Value": {"Ref": "Queue"}}


def test_write_your_own_blueprint_example_passes_cfn_lint_and_checkov_as_printed(tmp_path):
    from cfnbuild.build.lint import cfn_lint, checkov, skip_problems

    (code,) = re.findall(r"```python\n(.*?)```", _section("Write your own blueprint"), re.S)
    script = tmp_path / "example.py"
    script.write_text(code)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    template = tmp_path / "jobs.json"
    template.write_text(result.stdout)
    findings = cfn_lint(result.stdout, ["eu-west-1"], file="jobs.json")
    findings += skip_problems(result.stdout, file="jobs.json")
    findings += checkov([template], root=tmp_path)
    assert [str(f) for f in findings] == []
    assert json.loads(result.stdout)["Resources"]["Queue"]["Properties"]["KmsMasterKeyId"] == "alias/aws/sqs"


def test_the_stack_function_example_builds_the_blueprint_examples_stack_from_a_config(tmp_path):
    (blueprint,) = re.findall(r"```python\n(.*?)```", _section("Write your own blueprint"), re.S)
    (function,) = re.findall(r"```python\n(.*?)```", _section("Stacks and projects"), re.S)
    script = tmp_path / "project.py"
    script.write_text(
        blueprint.split("\nstack = Stack(")[0]
        + function
        + "config = JobsConfig(project='jobs', regions=['eu-west-1'], environment='dev', retention_days=9)\n"
        + "print(app.stack('jobs').build(config).to_json())\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    queue = json.loads(result.stdout)["Resources"]["Queue"]
    assert queue["Properties"]["MessageRetentionPeriod"] == 9 * 86400


def test_cross_stack_reference_example_takes_the_output_as_a_parameter_and_records_it(tmp_path):
    (code,) = re.findall(r"```python\n(.*?)```", _section("Stacks that use each other's outputs"), re.S)
    script = tmp_path / "example.py"
    script.write_text(code)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    template = json.loads(result.stdout)
    assert template["Parameters"]["NetworkVpcId"]["Type"] == "String"
    assert template["Resources"]["AppSecurityGroup"]["Properties"]["VpcId"] == {"Ref": "NetworkVpcId"}
    assert template["Metadata"]["cfnbuild"]["inputs"] == {"NetworkVpcId": {"output": "VpcId", "stack": "network"}}


def test_ci_runs_exactly_the_readme_test_command():
    commands = re.findall(r"```sh\n(.*?)\n```", _section("Quickstart"), re.S)
    assert len(commands) == 2, "the Quickstart has exactly two commands"
    test_command = commands[1]
    ci_lines = (ROOT / ".ci/run").read_text().splitlines()
    assert test_command in ci_lines


def test_every_runtime_dependency_is_explained():
    import tomllib

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    table = _section("Runtime dependencies, and why")
    for requirement in dependencies:
        name = re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0]
        assert f"| {name} |" in table, f"README does not say why {name} is a dependency"
