"""Whether a stack can be worked on, checked before any change set is made.

Busy with another operation, a live change set of another client, a failed first create,
resources left in no stack; and, for recover, the resources whose rollback failed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from cfnbuild.build.tags import MANAGED_BY
from cfnbuild.deploy import changeset
from cfnbuild.deploy.base import EngineBase
from cfnbuild.deploy.changeset import arn_name
from cfnbuild.deploy.events import make_reporter, stack_events_since, watch
from cfnbuild.deploy.model import (
    DeployedStack,
    DeployFailed,
    Refused,
    Request,
    StackBusy,
)
from cfnbuild.deploy.plan import load_plan
from cfnbuild.errors import UsageError

BUSY = re.compile(r"_IN_PROGRESS$")
FAILED_CREATE_STATES = ("ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS", "ROLLBACK_FAILED")
# A change set younger than this, on a stack still in REVIEW_IN_PROGRESS, belongs to a client
# that is about to execute it (or to a plan saved for review): the stack is busy, not abandoned.
LIVE_CHANGE_SET_SECONDS = 15 * 60


class StackChecks(EngineBase):
    """The checks before a change set is made: is the stack there, usable, and free."""

    def _usable_stack(self, request: Request, stack_name: str) -> DeployedStack | None:
        """The deployed stack, after handling states a deploy cannot start from."""
        deployed = self.describe(stack_name)
        if deployed is None or self._planned_create(request, stack_name, deployed):
            return None
        busy = self._busy(deployed)
        if busy:
            if not request.wait:
                raise StackBusy(
                    f"{stack_name} is busy: {busy}; run again with --wait to wait for it, "
                    f"or follow it with 'cfnbuild status --env {request.environment} --follow'"
                )
            self.err.print(f"{stack_name} is busy ({busy}); waiting for it to settle…", markup=False)
            outcome = watch(
                self.cloudformation,
                deployed.stack_id,
                since=datetime.now(UTC),
                success=frozenset(),
                reporter=make_reporter(self.err),
                poll=self.poll,
                sleep=self.sleep,
            )
            self.err.print(f"{stack_name} settled as {outcome.status}", markup=False)
            return self._usable_stack(request, stack_name)
        if deployed.status == "REVIEW_IN_PROGRESS" and self._moved_on(stack_name, deployed):
            # Another client executed its change set between our two reads: judge the stack afresh.
            return self._usable_stack(request, stack_name)
        if deployed.status in FAILED_CREATE_STATES:
            self._failed_create(request, deployed)
            return None
        if deployed.status == "UPDATE_ROLLBACK_FAILED":
            raise Refused(
                f"{stack_name} is UPDATE_ROLLBACK_FAILED: the last rollback could not finish; "
                f"run 'cfnbuild recover --env {request.environment}' first"
            )
        if deployed.status == "DELETE_FAILED":
            raise Refused(
                f"{stack_name} is DELETE_FAILED; finish the delete with 'cfnbuild delete --env {request.environment}'"
            )
        return deployed

    def _planned_create(self, request: Request, stack_name: str, deployed: DeployedStack) -> bool:
        """Whether ``deployed`` is the stack a saved plan's CREATE change set made, waiting for ``deploy --plan``.

        ``plan --out`` of a new stack leaves it in REVIEW_IN_PROGRESS with the change set the file
        names: that change set is this deploy's own, not another client's, and the stack is not
        deployed yet. A file that cannot be read is said by the saved plan's own check after this.
        """
        if request.plan_file is None or deployed.status != "REVIEW_IN_PROGRESS":
            return False
        try:
            planned = load_plan(request.plan_file, stack_name).change_set_id
        except UsageError:
            return False
        if planned is None:
            return False
        try:
            description = changeset.describe(self.cloudformation, planned)
        except ClientError:
            return False  # gone: the saved plan's check says so
        return description.get("StackId") == deployed.stack_id and description.get("ExecutionStatus") == "AVAILABLE"

    def _moved_on(self, stack_name: str, deployed: DeployedStack) -> bool:
        """Whether a REVIEW_IN_PROGRESS stack with no live change set has left that state since it was read.

        DescribeStacks and ListChangeSets are two reads: a change set listed as executed may belong
        to another client that executed it after the stack was described. That stack is not an
        abandoned create.
        """
        fresh = self.describe(stack_name)
        return fresh is None or fresh.status != deployed.status or fresh.stack_id != deployed.stack_id

    def _busy(self, deployed: DeployedStack) -> str | None:
        """What keeps the stack busy, or ``None``: an operation in progress, or another client's fresh change set.

        A REVIEW_IN_PROGRESS stack is busy while a change set of it is being made or executed,
        or was made within :data:`LIVE_CHANGE_SET_SECONDS` (another deploy about to execute it,
        or a plan saved for review); only an older one is an abandoned create.
        """
        if deployed.status != "REVIEW_IN_PROGRESS":
            if not BUSY.search(deployed.status):
                return None
            running = arn_name(deployed.change_set_id) if deployed.change_set_id else ""
            return f"{deployed.status}, executing change set {running}" if running else deployed.status
        live = self._live_change_set(deployed.stack_id)
        if live is None:
            return None
        name, state, age = live
        return f"REVIEW_IN_PROGRESS, change set {name} {state} (made {age:.0f}s ago by another client)"

    def _live_change_set(self, stack_id: str) -> tuple[str, str, float] | None:
        """The newest change set of the stack that another client is making, executing or about to execute."""
        now = datetime.now(UTC)
        arguments: dict[str, str] = {"StackName": stack_id}
        while True:  # pages by hand, as _physical_ids does
            page = self.cloudformation.list_change_sets(**arguments)
            for summary in page.get("Summaries", []):
                if summary.get("StackId", stack_id) != stack_id:
                    continue  # an endpoint that lists every stack's change sets
                status, execution = summary.get("Status", ""), summary.get("ExecutionStatus", "")
                created = summary.get("CreationTime")
                age = (now - created).total_seconds() if isinstance(created, datetime) else 0.0
                if status in ("CREATE_PENDING", "CREATE_IN_PROGRESS"):
                    return summary.get("ChangeSetName", "?"), "being made", age
                if execution == "EXECUTE_IN_PROGRESS":
                    return summary.get("ChangeSetName", "?"), "executing", age
                if execution == "AVAILABLE" and age < LIVE_CHANGE_SET_SECONDS:
                    return summary.get("ChangeSetName", "?"), "ready to execute", age
            if not page.get("NextToken"):
                return None
            arguments["NextToken"] = page["NextToken"]

    def _failed_create(self, request: Request, deployed: DeployedStack) -> None:
        explain = {
            "ROLLBACK_COMPLETE": "its creation failed and was rolled back; it can only be deleted",
            "ROLLBACK_FAILED": "its creation failed and the rollback failed too; it can only be deleted",
            "REVIEW_IN_PROGRESS": "it was made for a change set that was never executed; it holds no resources",
        }[deployed.status]
        if not request.recreate_failed:
            raise Refused(
                f"{deployed.name} is {deployed.status}: {explain}. Run again with --recreate-failed to delete "
                "it and create it anew"
            )
        if deployed.tags.get("ManagedBy") != MANAGED_BY:
            raise Refused(
                f"{deployed.name} is {deployed.status} but does not carry the tag ManagedBy={MANAGED_BY}; "
                "cfnbuild deletes only stacks it made — delete it yourself if it is yours"
            )
        self._check_orphans(request, deployed)
        self.err.print(f"{deployed.name} is {deployed.status} ({explain}); deleting it to create it anew", markup=False)
        self.cloudformation.delete_stack(StackName=deployed.stack_id)
        outcome = watch(
            self.cloudformation,
            deployed.stack_id,
            since=datetime.now(UTC),
            success=frozenset({"DELETE_COMPLETE"}),
            reporter=make_reporter(self.err),
            poll=self.poll,
            sleep=self.sleep,
        )
        if not outcome.ok:
            raise DeployFailed(f"could not delete the failed stack {deployed.name}: {outcome.status}")

    def _check_orphans(self, request: Request, deployed: DeployedStack) -> None:
        """Say what a failed stack still holds; refuse to delete it when that leaves resources in no stack.

        After a create rolls back, a resource whose DeletionPolicy kept it is DELETE_SKIPPED: it
        lives on outside any stack (RetainExceptOnCreate deletes what the first create made, so
        only stacks of older templates, or other tools, leave these). One that could not be
        deleted (DELETE_FAILED) is still in the stack, and the delete tries again.
        """
        if deployed.status == "REVIEW_IN_PROGRESS":
            return  # never executed: it holds nothing
        orphans = []
        for resource in self._resources(deployed.stack_id):
            status = resource.get("ResourceStatus", "")
            if status == "DELETE_COMPLETE":
                continue
            name = f"{resource['LogicalResourceId']} ({resource.get('ResourceType', '?')}"
            name += f", {resource['PhysicalResourceId']})" if resource.get("PhysicalResourceId") else ")"
            if status == "DELETE_SKIPPED":
                orphans.append(name)
                self.err.print(f"{deployed.name} kept {name} outside any stack when it rolled back", markup=False)
            else:
                self.err.print(f"{deployed.name} still holds {name}, {status}; the delete tries again", markup=False)
        if orphans and not request.allow_orphans:
            raise Refused(
                f"{deployed.name} is {deployed.status} and left {len(orphans)} resource(s) outside any stack: "
                f"{', '.join(orphans)}; recreating it leaves them there for good. Delete them yourself if they "
                "hold nothing, or run again with --recreate-failed --allow-orphans"
            )


def failed_rollback_resources(cloudformation: Any, stack_id: str) -> list[str]:
    """The resources whose update failed during the last rollback (the ones to skip)."""
    events = stack_events_since(cloudformation, stack_id, last_update_start(cloudformation, stack_id))
    rolling_back = False
    failed: list[str] = []
    for event in events:
        status = event.get("ResourceStatus", "")
        if event.get("PhysicalResourceId") == stack_id and status == "UPDATE_ROLLBACK_IN_PROGRESS":
            rolling_back = True
        elif rolling_back and status == "UPDATE_FAILED" and event["LogicalResourceId"] not in failed:
            failed.append(event["LogicalResourceId"])
    return failed


def last_update_start(cloudformation: Any, stack_id: str) -> str | datetime:
    """The event just before the last update began (so its whole story is read)."""
    paginator = cloudformation.get_paginator("describe_stack_events")
    found = False
    for page in paginator.paginate(StackName=stack_id):  # newest first
        for event in page["StackEvents"]:
            if found:
                return str(event["EventId"])
            found = event.get("PhysicalResourceId") == stack_id and event.get("ResourceStatus") == "UPDATE_IN_PROGRESS"
    return datetime.fromtimestamp(0, UTC)
