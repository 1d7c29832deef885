"""Deleting a stack: what its delete keeps, the refusal under termination protection, the delete watched.

Confirmation is the caller's (one stack asks for its name; a graph asks once for all).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console

from cfnbuild.deploy.engine import Engine, Refused
from cfnbuild.deploy.events import Reporter, make_reporter, watch
from cfnbuild.deploy.model import DeployedStack
from cfnbuild.errors import CfnbuildError

# DeletionPolicy values that leave the resource (or a snapshot of it) after the delete.
KEEPING_POLICIES = ("Retain", "Snapshot", "RetainExceptOnCreate")


def kept_on_delete(template: Mapping[str, Any]) -> dict[str, str]:
    """Logical ID → DeletionPolicy of each resource the delete keeps or snapshots."""
    return {
        logical_id: resource["DeletionPolicy"]
        for logical_id, resource in sorted(template.get("Resources", {}).items())
        if resource.get("DeletionPolicy") in KEEPING_POLICIES
    }


def prepare_delete(engine: Engine, name: str, environment: str, out: Console) -> DeployedStack | None:
    """The stack to delete, after saying what its delete keeps; ``None`` when it is not deployed.

    Refused under termination protection.
    """
    deployed = engine.describe(name)
    if deployed is None:
        return None
    if deployed.termination_protection:
        raise Refused(
            f"{name} has termination protection on; turn it off in config/{environment}.toml [deploy] and deploy first"
        )
    for logical_id, policy in kept_on_delete(engine.deployed_template(name) or {}).items():
        verb = "keeps a final snapshot of" if policy == "Snapshot" else "keeps"
        out.print(f"deleting {name} {verb} {logical_id}", markup=False)
    return deployed


def delete_stack(engine: Engine, deployed: DeployedStack, out: Console, reporter: Reporter | None = None) -> None:
    """Delete ``deployed`` and watch it to DELETE_COMPLETE; raises with the root cause otherwise."""
    since = engine._last_event_id(deployed.stack_id)
    engine.cloudformation.delete_stack(StackName=deployed.stack_id)
    outcome = watch(
        engine.cloudformation,
        deployed.stack_id,
        since=since,
        success=frozenset({"DELETE_COMPLETE"}),
        reporter=reporter or make_reporter(out),
        poll=engine.poll,
        sleep=engine.sleep,
    )
    if not outcome.ok:
        cause = outcome.root_cause
        name = deployed.name
        raise CfnbuildError(
            f"{name} ended {outcome.status}: {cause.logical_id}: {cause.reason}" if cause else outcome.status
        )
    out.print(f"{deployed.name}: deleted")
