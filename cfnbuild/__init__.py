"""cfnbuild: build, lint and safely ship CloudFormation stacks from typed Python blueprints.

The public API a blueprint author needs::

    from cfnbuild import App, Blueprint, EnvironmentConfig, Stack, StackSpec, setting

Each name is imported from its module on first use (PEP 562), so a command that renders nothing
(``cfnbuild deploy`` of a template that is up to date, ``status``, ``outputs``) does not pay for
troposphere, awacs and cfn-lint, which rendering needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cfnbuild.build.blueprint import Blueprint
    from cfnbuild.build.grants import Grants, ServiceRole
    from cfnbuild.build.inputs import describe_inputs, setting
    from cfnbuild.build.naming import export_name, logical_id, partition_arn, physical_name, stack_suffix
    from cfnbuild.build.stack import Stack
    from cfnbuild.errors import (
        CfnbuildError,
        CheckFailed,
        ConfigError,
        InputError,
        LogicalIdClash,
        UsageError,
    )
    from cfnbuild.project.app import App, Project, StackSpec, load_project
    from cfnbuild.project.config import Cidr, DomainName, Email, EnvironmentConfig, Invalid, Region, Section

# Public name → the module that defines it.
_EXPORTS = {
    "App": "cfnbuild.project.app",
    "Project": "cfnbuild.project.app",
    "StackSpec": "cfnbuild.project.app",
    "load_project": "cfnbuild.project.app",
    "Blueprint": "cfnbuild.build.blueprint",
    "Cidr": "cfnbuild.project.config",
    "DomainName": "cfnbuild.project.config",
    "Email": "cfnbuild.project.config",
    "EnvironmentConfig": "cfnbuild.project.config",
    "Invalid": "cfnbuild.project.config",
    "Region": "cfnbuild.project.config",
    "Section": "cfnbuild.project.config",
    "CfnbuildError": "cfnbuild.errors",
    "CheckFailed": "cfnbuild.errors",
    "ConfigError": "cfnbuild.errors",
    "InputError": "cfnbuild.errors",
    "LogicalIdClash": "cfnbuild.errors",
    "UsageError": "cfnbuild.errors",
    "Grants": "cfnbuild.build.grants",
    "ServiceRole": "cfnbuild.build.grants",
    "describe_inputs": "cfnbuild.build.inputs",
    "setting": "cfnbuild.build.inputs",
    "export_name": "cfnbuild.build.naming",
    "logical_id": "cfnbuild.build.naming",
    "partition_arn": "cfnbuild.build.naming",
    "physical_name": "cfnbuild.build.naming",
    "stack_suffix": "cfnbuild.build.naming",
    "Stack": "cfnbuild.build.stack",
}

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


def __getattr__(name: str) -> Any:
    """Import a public name from its module the first time it is used."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cfnbuild' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
