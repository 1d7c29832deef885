"""AWS managed policy names are checked at build time against IAM's list, with a did-you-mean."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cfnbuild.build.managed_policies import known_policies, policy_path
from cfnbuild.errors import InputError

ROOT = Path(__file__).resolve().parents[3]

APP = """
from dataclasses import dataclass

from troposphere import GetAtt, iam

from cfnbuild import App, Blueprint, EnvironmentConfig, Stack, StackSpec, setting
from cfnbuild.build.grants import ServiceRole


@dataclass(frozen=True)
class Inputs:
    policy: str = setting("AmazonSSMManagedInstanceCor", "The managed policy the role gets.")


class Instances(Blueprint[Inputs]):
    def build(self) -> None:
        role = ServiceRole(self, "Instance", services=["ec2.amazonaws.com"], managed_policies=[self.inputs.policy],
            managed_policy_reason="the policy under test, checked against IAM's list",
        )
        profile = self.add(iam.InstanceProfile("Profile", Roles=[role.role.ref()]))
        self.output("ProfileArn", GetAtt(profile, "Arn"), "The profile.")


def build(config: EnvironmentConfig) -> Stack:
    stack = Stack("roles", description="roles", project=config.project, environment=config.environment)
    Instances(stack, Inputs())
    return stack


app = App(config_model=EnvironmentConfig, stacks=[StackSpec("roles", build)])
"""


def test_a_misspelt_managed_policy_fails_the_build_naming_its_place_and_the_right_name(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.cfnbuild]\napp = "roles_app:app"\ndefault_env = "dev"\n')
    (tmp_path / "roles_app.py").write_text(textwrap.dedent(APP))
    (tmp_path / "config").mkdir()
    (tmp_path / "config/dev.toml").write_text('project = "roles"\nregions = ["eu-west-1"]\n')
    result = subprocess.run(
        [sys.executable, "-m", "cfnbuild", "--project", str(tmp_path), "build"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: dev: stack roles: ")
    assert lines[0].endswith(
        "managed policy 'AmazonSSMManagedInstanceCor': AWS has no managed policy of that name; did you mean "
        "'AmazonSSMManagedInstanceCore'?"
    )
    assert not (tmp_path / "output").exists()  # nothing written


@pytest.mark.parametrize(
    ("name", "arn_tail"),
    [
        ("AmazonSSMManagedInstanceCore", "AmazonSSMManagedInstanceCore"),
        ("service-role/AmazonRDSEnhancedMonitoringRole", "service-role/AmazonRDSEnhancedMonitoringRole"),
    ],
)
def test_a_managed_policy_iam_has_is_its_arn_tail(name, arn_tail):
    assert policy_path(name) == arn_tail


def test_the_right_name_at_the_wrong_path_says_the_path():
    with pytest.raises(InputError) as info:
        policy_path("AmazonRDSEnhancedMonitoringRole")
    assert str(info.value) == (
        "managed policy 'AmazonRDSEnhancedMonitoringRole': AWS's is at path /service-role/; write "
        "'service-role/AmazonRDSEnhancedMonitoringRole'"
    )


def test_a_name_far_from_any_gets_no_guess():
    with pytest.raises(InputError, match="AWS has no managed policy of that name; check its name in the IAM console"):
        policy_path("NoSuchPolicyAnywhere")


def test_the_shipped_list_is_within_the_installed_motos_list_of_iam_managed_policies():
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    moto = {name: policy["Path"].lstrip("/") for name, policy in json.loads(aws_managed_policies_data).items()}
    shipped = known_policies()
    assert len(shipped) > 1000
    assert {name: path for name, path in shipped.items() if moto.get(name) != path} == {}
