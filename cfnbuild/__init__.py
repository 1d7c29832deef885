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

# Public name → the module that defines it.
_EXPORTS = {
    "App": "cfnbuild.app",
    "Project": "cfnbuild.app",
    "StackSpec": "cfnbuild.app",
    "load_project": "cfnbuild.app",
    "Blueprint": "cfnbuild.blueprint",
    "Cidr": "cfnbuild.config",
    "DomainName": "cfnbuild.config",
    "Email": "cfnbuild.config",
    "EnvironmentConfig": "cfnbuild.config",
    "Invalid": "cfnbuild.config",
    "Region": "cfnbuild.config",
    "Section": "cfnbuild.config",
    "CfnbuildError": "cfnbuild.errors",
    "CheckFailed": "cfnbuild.errors",
    "ConfigError": "cfnbuild.errors",
    "InputError": "cfnbuild.errors",
    "LogicalIdClash": "cfnbuild.errors",
    "UsageError": "cfnbuild.errors",
    "Grants": "cfnbuild.grants",
    "ServiceRole": "cfnbuild.grants",
    "describe_inputs": "cfnbuild.inputs",
    "setting": "cfnbuild.inputs",
    "export_name": "cfnbuild.naming",
    "logical_id": "cfnbuild.naming",
    "partition_arn": "cfnbuild.naming",
    "physical_name": "cfnbuild.naming",
    "stack_suffix": "cfnbuild.naming",
    "Stack": "cfnbuild.stack",
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
