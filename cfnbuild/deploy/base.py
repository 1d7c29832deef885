"""The deploy engine's settings, and what it reads of a deployed stack.

Its description, template, stack policy, resources and last event: the reads every step shares.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from rich.console import Console

from cfnbuild.deploy.aws import Aws, error_code, error_message
from cfnbuild.deploy.ending import Ending
from cfnbuild.deploy.events import PollSettings, Reporter, Since, make_reporter
from cfnbuild.deploy.model import (
    DeployedStack,
    Interrupted,
    Request,
)
from cfnbuild.project.app import Project

CACHE_DIR = ".cfnbuild-cache"


@dataclass
class EngineBase:
    """The engine's settings and its reads of a deployed stack; the steps build on it (see :mod:`.engine`)."""

    project: Project
    aws: Aws
    out: Console
    err: Console
    poll: PollSettings = field(default_factory=PollSettings)
    sleep: Callable[[float], None] = time.sleep
    confirm: Callable[[str], str] | None = None  # asks the user to type something; None: no TTY
    reporter: Callable[[Console], Reporter] = make_reporter  # how events are shown
    outputs_name: str = "{stack}.outputs.json"  # file name in output/<env>/; {region} available
    # GetTemplate answers within one stage/plan (the no-op check, the plan and a saved plan's
    # check all read it); emptied at the start of each, so a later one reads afresh.
    _templates: dict[str, dict[str, Any] | None] = field(default_factory=dict, repr=False)
    # How the last deploy ended and the outputs file it wrote, for the command's last line.
    ended: Ending | None = field(default=None, repr=False)
    outputs_written: Path | None = field(default=None, repr=False)
    # The last prepare's inputs whose upstream stack is not deployed yet: parameter → that stack.
    waiting: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def cloudformation(self) -> Any:
        """The CloudFormation client."""
        return self.aws.cloudformation

    def interrupted(self, what: str, follow: str) -> Interrupted:
        """The line for Ctrl-C while ``what`` runs: it goes on in AWS, or ends with the emulator."""
        if self.aws.target.session:
            return Interrupted(f"stopped watching; {what} goes on in the local session. Follow it with: {follow}")
        if self.aws.target.local:
            return Interrupted(f"stopped; {what} ends with the embedded emulator, which stops with this command")
        return Interrupted(f"stopped watching; {what} goes on in AWS. Follow it with: {follow}")

    def describe(self, stack_name: str) -> DeployedStack | None:
        """The stack as deployed, or ``None`` when there is none of that name."""
        try:
            stacks = self.cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
        except ClientError as exc:
            if error_code(exc) == "ValidationError" and "does not exist" in error_message(exc):
                return None
            raise
        return DeployedStack.from_api(stacks[0]) if stacks else None

    def deployed_template(self, stack_name: str) -> dict[str, Any] | None:
        """The template the stack was last deployed with (read once per stage or plan)."""
        if stack_name not in self._templates:
            self._templates[stack_name] = self._read_template(stack_name)
        return self._templates[stack_name]

    def _read_template(self, stack_name: str) -> dict[str, Any] | None:
        body = self.cloudformation.get_template(StackName=stack_name, TemplateStage="Original")["TemplateBody"]
        if isinstance(body, str):
            try:
                loaded: dict[str, Any] = json.loads(body)
            except json.JSONDecodeError:
                return None  # not JSON (a YAML template from elsewhere): compare as changed
            return loaded
        return dict(body)

    def deployed_policy(self, stack_name: str) -> str | None:
        """The stack's current stack policy body."""
        return self.cloudformation.get_stack_policy(StackName=stack_name).get("StackPolicyBody")  # type: ignore[no-any-return]

    def stack_name(self, request: Request) -> str:
        """The deployed name of the requested stack."""
        return self.project.deploy_view(request.environment).settings.stack_name(request.stack)

    def _physical_ids(self, stack_id: str) -> dict[str, str]:
        """Logical ID → physical ID of every resource the stack has created so far."""
        return {
            summary["LogicalResourceId"]: summary["PhysicalResourceId"]
            for summary in self._resources(stack_id)
            if summary.get("PhysicalResourceId")
        }

    def _resources(self, stack_id: str) -> list[dict[str, Any]]:
        """Every resource summary of the stack (none for a stack with no resources yet)."""
        resources: list[dict[str, Any]] = []
        arguments = {"StackName": stack_id}
        while True:  # pages by hand: a paginator would load its model for one or two calls
            try:
                page = self.cloudformation.list_stack_resources(**arguments)
            except ClientError as exc:
                if error_code(exc) != "ValidationError":  # a stack with no resources yet
                    raise
                return resources
            resources += page.get("StackResourceSummaries", [])
            if not page.get("NextToken"):
                return resources
            arguments["NextToken"] = page["NextToken"]

    def _last_event_id(self, stack_id: str) -> Since:
        events = self.cloudformation.describe_stack_events(StackName=stack_id).get("StackEvents", [])
        return str(events[0]["EventId"]) if events else datetime.now(UTC)
