"""What the deploy engine works with, and how it fails.

A request, the stack as deployed, what is sent with a template, what was staged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cfnbuild.deploy import artifacts, changeset
from cfnbuild.deploy.plan import Plan
from cfnbuild.errors import CfnbuildError

# A step after a finished operation: what it does, the command that does it by hand, the step.
FollowUp = tuple[str, str, Callable[[], None]]


class DeployFailed(CfnbuildError):
    """The stack operation ended in a failed state; the message holds the root cause."""


class Refused(CfnbuildError):
    """The engine will not go on, for the reason it gives; nothing was changed."""


class FollowUpFailed(CfnbuildError):
    """The stack operation finished, but a step after it did not (exit 3); ``outputs`` are the stack's."""

    exit_code = 3

    def __init__(self, message: str, outputs: dict[str, str]) -> None:
        super().__init__(message)
        self.outputs = outputs


class StackBusy(Refused):
    """Another operation holds the stack; the message names it and how to wait for it."""


class Interrupted(CfnbuildError):
    """Ctrl-C while watching: the operation goes on in AWS (or ends with the embedded emulator)."""

    exit_code = 130


@dataclass(frozen=True)
class DeployedStack:
    """What DescribeStacks says of an existing stack."""

    stack_id: str
    name: str
    status: str
    parameters: dict[str, str]
    tags: dict[str, str]
    outputs: dict[str, str]
    last_updated: str
    termination_protection: bool
    change_set_id: str = ""  # the change set the stack last executed (or is executing)
    exports: dict[str, str] = field(default_factory=dict)  # output → the name it is exported as

    @classmethod
    def from_api(cls, stack: Mapping[str, Any]) -> DeployedStack:
        """Read one entry of DescribeStacks."""
        when = stack.get("LastUpdatedTime") or stack.get("CreationTime")
        return cls(
            stack_id=stack["StackId"],
            name=stack["StackName"],
            status=stack["StackStatus"],
            parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])},
            tags={t["Key"]: t["Value"] for t in stack.get("Tags", [])},
            outputs={o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])},
            last_updated=when.isoformat() if isinstance(when, datetime) else str(when or ""),
            termination_protection=bool(stack.get("EnableTerminationProtection", False)),
            change_set_id=str(stack.get("ChangeSetId") or ""),
            exports={o["OutputKey"]: o["ExportName"] for o in stack.get("Outputs", []) if o.get("ExportName")},
        )


@dataclass(frozen=True)
class Request:
    """One deploy or plan, as the user asked for it."""

    environment: str
    stack: str
    param_overrides: Mapping[str, str] = field(default_factory=dict)
    allow_replace: Sequence[str] = ()
    yes: bool = False
    wait: bool = False
    recreate_failed: bool = False
    allow_orphans: bool = False  # with recreate_failed: delete a failed stack that left resources in no stack
    plan_file: Path | None = None
    verbose: bool = False  # name what a short line only counts (the outputs not returned)


@dataclass(frozen=True)
class Prepared:
    """The template and everything sent with it, ready for a change set."""

    template: dict[str, Any]
    body: str
    template_hash: str
    parameters: dict[str, str]
    previous: frozenset[str]  # parameters sent with UsePreviousValue
    tags: dict[str, str]
    capabilities: list[str]
    termination_protection: bool
    policy: dict[str, Any] | None
    artifacts: tuple[artifacts.BuiltArtifact, ...] = ()


@dataclass(frozen=True)
class Staged:
    """A deploy up to confirmation: the plan shown and, when there is work, its change set."""

    request: Request
    stack_name: str
    deployed: DeployedStack | None
    prepared: Prepared
    plan: Plan | None
    created: changeset.ChangeSet | None  # None: nothing to do
    outputs: dict[str, str]  # the deployed outputs, when there is nothing to do
