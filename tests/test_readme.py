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
    assert template["Outputs"]["QueueUrl"]["Export"] == {"Name": {"Fn::Sub": "${AWS::StackName}-QueueUrl"}}


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
