"""cfnbuild: build, lint and safely ship CloudFormation stacks from typed Python blueprints.

The public API a blueprint author needs::

    from cfnbuild import App, Blueprint, EnvironmentConfig, Stack, StackSpec, setting
"""

from cfnbuild.app import App, Project, StackSpec, load_project
from cfnbuild.blueprint import Blueprint
from cfnbuild.config import Cidr, DomainName, Email, EnvironmentConfig, Invalid, Region, Section
from cfnbuild.errors import (
    CfnbuildError,
    CheckFailed,
    ConfigError,
    InputError,
    LogicalIdClash,
    UsageError,
)
from cfnbuild.grants import Grants, ServiceRole
from cfnbuild.inputs import describe_inputs, setting
from cfnbuild.naming import export_name, logical_id, partition_arn, physical_name, stack_suffix
from cfnbuild.stack import Stack

__all__ = [
    "App",
    "Blueprint",
    "CfnbuildError",
    "CheckFailed",
    "Cidr",
    "ConfigError",
    "DomainName",
    "Email",
    "EnvironmentConfig",
    "Grants",
    "InputError",
    "Invalid",
    "LogicalIdClash",
    "Project",
    "Region",
    "Section",
    "ServiceRole",
    "Stack",
    "StackSpec",
    "UsageError",
    "describe_inputs",
    "export_name",
    "load_project",
    "logical_id",
    "partition_arn",
    "physical_name",
    "setting",
    "stack_suffix",
]
