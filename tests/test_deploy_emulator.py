"""The committed templates (network, data, webapp) deploy on the emulator (moto in server mode, over HTTP).

The emulator leaves placeholders for resource types it does not model (Aurora clusters, secrets,
budgets); unpatched, moto answers CreateStack with HTTP 500 when an Output takes Fn::GetAtt of
one (cfnbuild.local.emulator corrects that); these tests deploy through change sets, as cfnbuild
does.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parent.parent


STACKS = ("network", "data", "webapp")  # in the order of their references


def _deploy(cloudformation, stack_name: str, body: str, parameters: dict[str, str] | None = None) -> dict:
    change_set = cloudformation.create_change_set(
        StackName=stack_name,
        TemplateBody=body,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted((parameters or {}).items())],
        ChangeSetName="create",
        ChangeSetType="CREATE",
        Capabilities=["CAPABILITY_IAM"],
    )
    cloudformation.get_waiter("change_set_create_complete").wait(
        ChangeSetName=change_set["Id"], WaiterConfig={"Delay": 1}
    )
    cloudformation.execute_change_set(ChangeSetName=change_set["Id"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack
        time.sleep(0.5)
    pytest.fail(f"{stack_name} did not settle")


def _deploy_all(cloudformation, suffix: str) -> list[str]:
    """The three dev stacks as ``<stack>-dev-<suffix>``, each given its inputs from the upstream's outputs.

    An output the emulator does not compute (it keeps secrets and Aurora clusters as placeholders) is
    given a stand-in value, as ``cfnbuild deploy --local`` gives it.
    """
    outputs: dict[str, dict[str, str]] = {}
    names = []
    for stack in STACKS:
        template = json.loads((ROOT / f"output/dev/{stack}.json").read_text())
        inputs = template.get("Metadata", {}).get("cfnbuild", {}).get("inputs", {})
        parameters = {
            name: outputs[source["stack"]].get(source["output"], f"stand-in-{source['output']}")
            for name, source in inputs.items()
        }
        name = f"{stack}-dev-{suffix}"
        deployed = _deploy(cloudformation, name, json.dumps(template), parameters)
        assert deployed["StackStatus"] == "CREATE_COMPLETE", deployed
        outputs[stack] = {o["OutputKey"]: o["OutputValue"] for o in deployed.get("Outputs", [])}
        names.append(name)
    return names


def test_seed_07_the_dev_templates_deploy_twice_in_one_account_and_region_without_a_collision(emulator):
    cloudformation = emulator.client("cloudformation")
    first, second = _deploy_all(cloudformation, "a"), _deploy_all(cloudformation, "b")
    physical = {}
    for name in (*first, *second):
        for resource in cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]:
            if not resource["LogicalResourceId"] or not resource["PhysicalResourceId"]:
                continue  # the emulator leaves ids empty for placeholders and false conditions
            physical.setdefault(resource["LogicalResourceId"], set()).add(resource["PhysicalResourceId"])
    assert len(physical) > 40, "most resources must have been created with real ids"
    shared = {logical: ids for logical, ids in physical.items() if len(ids) < 2}
    assert not shared, f"resources that got the same physical id in both stacks: {shared}"
    exports = [e["Name"] for e in cloudformation.list_exports()["Exports"]]
    assert len(exports) == len(set(exports))
    for name in (*reversed(first), *reversed(second)):
        _delete(cloudformation, name)
        with pytest.raises(ClientError, match="does not exist"):
            cloudformation.describe_stacks(StackName=name)


def _delete(cloudformation, stack_name: str) -> None:
    """Delete a stack. The emulator (moto 5) cannot delete routes, route tables, gateway
    attachments or VPC endpoints through CloudFormation, so it answers DependencyViolation for
    the VPC while it removes the stack itself; that one answer is expected here, nothing else."""
    try:
        cloudformation.delete_stack(StackName=stack_name)
    except ClientError as error:
        if error.response["Error"]["Code"] != "DependencyViolation":
            raise
