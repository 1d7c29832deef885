"""The committed templates deploy on the emulator (moto in server mode, over HTTP).

The emulator leaves placeholders for resource types it does not model (Aurora clusters, secrets,
budgets); unpatched, moto answers CreateStack with HTTP 500 when an Output takes Fn::GetAtt of
one (cfnbuild.local.emulator corrects that); these tests deploy through change sets, as cfnbuild
does.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parent.parent


def _deploy(cloudformation, stack_name: str, body: str) -> dict:
    change_set = cloudformation.create_change_set(
        StackName=stack_name,
        TemplateBody=body,
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


def test_seed_07_the_dev_template_deploys_twice_in_one_account_and_region_without_a_collision(emulator):
    body = (ROOT / "output/dev/webapp.json").read_text()
    cloudformation = emulator.client("cloudformation")
    first = _deploy(cloudformation, "webapp-dev-a", body)
    second = _deploy(cloudformation, "webapp-dev-b", body)
    assert first["StackStatus"] == "CREATE_COMPLETE", first
    assert second["StackStatus"] == "CREATE_COMPLETE", second
    physical = {}
    for name in ("webapp-dev-a", "webapp-dev-b"):
        for resource in cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]:
            if not resource["LogicalResourceId"] or not resource["PhysicalResourceId"]:
                continue  # the emulator leaves ids empty for placeholders and false conditions
            physical.setdefault(resource["LogicalResourceId"], set()).add(resource["PhysicalResourceId"])
    assert len(physical) > 40, "most resources must have been created with real ids"
    shared = {logical: ids for logical, ids in physical.items() if len(ids) < 2}
    assert not shared, f"resources that got the same physical id in both stacks: {shared}"
    exports = [e["Name"] for e in cloudformation.list_exports()["Exports"]]
    assert len(exports) == len(set(exports))
    for name in ("webapp-dev-a", "webapp-dev-b"):
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
