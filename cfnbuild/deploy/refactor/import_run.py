"""The retain-and-import path of ``cfnbuild refactor``: phases A to D on AWS, resumable from the stacks alone.

For moves a stack refactor cannot make (a stack policy, a Transform in the source), the documented
sequence (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/refactor-stacks.html,
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/resource-import.html), each step a
change set waited for (templates: :mod:`.retain`):

- A: the source updated with Retain on every resource to import and outputs for the values the
  staying resources take from leaving ones (parameters as deployed: UsePreviousValue);
- B: the source updated without the leaving resources, those values written as literals, under a
  temporary stack policy allowing their ``Update:Delete`` (SetStackPolicy; the deployed policy is
  put back after, also on failure); the stateless resources that cannot be imported are deleted;
- C and D, per new stack in graph order: an IMPORT change set of its project template reduced to
  the imported resources (``ResourcesToImport`` by primary identifier), then the project's own
  template deployed by the deploy engine (which creates the rest, the deleted stateless ones
  included, and sets the stack policy); its outputs are the next stack's parameters, so each new
  stack is imported and deployed before the next is imported;
- D of the source last: its project template drops the record and the literals.

Where a run stopped is read back from the stacks: a source template carrying phase B's record
(:data:`.retain.RECORD_KEY`) has lost its leaving resources, and a new stack that exists holds its
imported ones.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from cfnbuild.deploy import changeset
from cfnbuild.deploy.aws import Aws, expected_error
from cfnbuild.deploy.engine import Engine
from cfnbuild.deploy.events import PollSettings
from cfnbuild.deploy.model import Interrupted, Refused, Request
from cfnbuild.deploy.refactor.aws_refactor import read_status
from cfnbuild.deploy.refactor.moves import DeployedStack, RefactorRefused
from cfnbuild.deploy.refactor.retain import (
    RECORD_KEY,
    ImportPlan,
    import_template,
    not_retained,
    phase_a_done,
    removal_template,
    retain_template,
    temporary_policy,
)
from cfnbuild.deploy.staging import template_argument
from cfnbuild.errors import CfnbuildError

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
DONE = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"})
# A new stack whose import rolled back holds none of its resources (they are Retain): it may be deleted.
NOT_IMPORTED = frozenset({"IMPORT_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_FAILED", "ROLLBACK_COMPLETE", "DELETE_FAILED"})


class ImportFailed(CfnbuildError):
    """A phase of the retain-and-import path failed; the line says the phase, the answer, the state, the resume."""


@dataclass
class RetainAndImport:
    """One source stack's resources moved into new stacks by retain and import."""

    aws: Aws
    environment: str
    make_engine: Callable[[str], Engine]
    out: Console
    err: Console
    command: str
    confirm: Callable[[str], str] | None = None
    yes: bool = False
    poll: PollSettings = field(default_factory=PollSettings)
    sleep: Callable[[float], None] = time.sleep

    @property
    def client(self) -> Any:
        """The CloudFormation client."""
        return self.aws.cloudformation

    def physical_ids(self, stack_id: str) -> dict[str, str]:
        """Logical ID → physical ID of the stack's resources, every page of ListStackResources.

        Not DescribeStackResources, which returns the first 100 resources only
        (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackResources.html):
        a resource past them would look unimportable and be deleted and created again.
        """
        found: dict[str, str] = {}
        arguments = {"StackName": stack_id}
        while True:
            page = self.client.list_stack_resources(**arguments)
            for summary in page.get("StackResourceSummaries", []):
                found[summary["LogicalResourceId"]] = str(summary.get("PhysicalResourceId", ""))
            if not page.get("NextToken"):
                return found
            arguments["NextToken"] = page["NextToken"]

    def run(
        self, plan: ImportPlan, source: DeployedStack, wanted: Mapping[str, Any], order: Sequence[tuple[str, str]]
    ) -> None:
        """Show the plan, confirm, then phases A to D; ``order`` is (project stack, deployed name) in graph order."""
        show_import_plan(plan, source, wanted, order, self.out, phase_a=not phase_a_done(source.template, plan))
        self._confirm(plan)
        if not phase_a_done(source.template, plan):
            self._phase_a(plan, source)
        read_back = self._phase_b(plan, source)
        self.resume(read_back, source.name, wanted, order)

    def resume(
        self, plan: ImportPlan, source: str, wanted: Mapping[str, Any], order: Sequence[tuple[str, str]]
    ) -> None:
        """Phases C and D of every new stack in graph order, then D of the source."""
        for stack, name in order:
            if name in plan.imports:
                self._phase_c(plan, stack, name, wanted[name])
            if name != source:
                self._phase_d(stack, name, "its imported resources are in it")
        self._phase_d(next(s for s, n in order if n == source), source, "its leaving resources are in their stacks")
        again = f"{len(plan.recreated)} stateless ones deleted and created again" if plan.recreated else "none deleted"
        deployed = [n for _, n in order if n != source] + [source]
        self.out.print(
            f"{self.environment}: {len(plan.imported)} resources imported into {', '.join(plan.imports)}, {again}; "
            f"{', '.join(deployed)} deployed with the project's templates",
            markup=False,
        )

    # ----------------------------------------------------------------- the phases

    def _phase_a(self, plan: ImportPlan, source: DeployedStack) -> None:
        self.out.rule(f"phase A: {source.name} retains {len(plan.imported)} resources")
        template = retain_template(source.template, plan)
        try:
            self._change_set(source.name, "UPDATE", template, self._previous(template, source), phase="a")
        except Exception as exc:
            raise self._failed("A", source.name, exc, "nothing was removed") from exc

    def _phase_b(self, plan: ImportPlan, source: DeployedStack) -> ImportPlan:
        """Phase B; the plan with the identifier values phase A read back."""
        self.out.rule(f"phase B: {len(plan.leaving)} resources leave {source.name}")
        try:
            template, outputs, deployed_policy = self._read_after_a(source)
        except Exception as exc:
            raise self._failed("B", source.name, exc, "nothing was removed") from exc
        loose = not_retained(template, plan)
        if loose:
            raise RefactorRefused(
                f"phase B ({source.name}): {', '.join(loose)} is not DeletionPolicy Retain in the deployed template, "
                f"so removing it would delete it; nothing was removed: run '{self.command}' again (phase A first)"
            )
        removed = removal_template(template, plan, outputs)
        relaxed = temporary_policy(deployed_policy, plan.imported)
        try:
            if relaxed is not None:
                self.client.set_stack_policy(StackName=source.stack_id, StackPolicyBody=relaxed)
            self._change_set(source.name, "UPDATE", removed, self._previous(removed, source), phase="b")
        except KeyboardInterrupt:
            state = self._restore(source.stack_id, deployed_policy)
            raise Interrupted(
                f"stopped in phase B ({source.name}): its update goes on in AWS, {state}; run '{self.command}' again "
                "once it settles to resume"
            ) from None
        except Exception as exc:
            state = self._restore(source.stack_id, deployed_policy)
            raise self._failed("B", source.name, exc, state) from exc
        restored = self._restore(source.stack_id, deployed_policy)
        self.out.print(f"{source.name}: {restored}", markup=False)
        return plan.with_identifiers(outputs)

    def _read_after_a(self, source: DeployedStack) -> tuple[dict[str, Any], dict[str, str], str | None]:
        """The source's deployed template, outputs and stack policy, as phase A left them."""
        body = self.client.get_template(StackName=source.stack_id, TemplateStage="Original")["TemplateBody"]
        template = json.loads(body) if isinstance(body, str) else dict(body)
        stack = self.client.describe_stacks(StackName=source.stack_id)["Stacks"][0]
        outputs = {o["OutputKey"]: str(o.get("OutputValue", "")) for o in stack.get("Outputs", [])}
        policy = self.client.get_stack_policy(StackName=source.stack_id).get("StackPolicyBody")
        return template, outputs, policy

    def _restore(self, stack_id: str, policy: str | None) -> str:
        if policy is None:
            return "it has no stack policy"
        try:
            self.client.set_stack_policy(StackName=stack_id, StackPolicyBody=policy)
        except Exception as exc:  # said in the line; the phase's own failure comes first
            return f"its stack policy could NOT be restored ({expected_error(exc)}): set it again before anything else"
        return "its stack policy is restored"

    def _phase_c(self, plan: ImportPlan, stack: str, name: str, project_template: Mapping[str, Any]) -> None:
        kept = "the resources to import are Retain and out of any stack, recorded in the source"
        try:
            status = self._status(name)
        except Exception as exc:
            raise self._failed("C", name, exc, kept) from exc
        if status is not None and status != "REVIEW_IN_PROGRESS":
            if status not in NOT_IMPORTED:
                return  # imported by an earlier run (a failed deploy after it is phase D's to say)
            raise ImportFailed(
                f"phase C ({name}): the stack is {status}; its resources to import are Retain and out of any stack, "
                f"so delete that stack (nothing of theirs is in it) and run '{self.command}' again"
            )
        ids = plan.imports[name]
        self.out.rule(f"phase C: {name} imports {len(ids)} resources")
        template = import_template(project_template, ids)
        to_import = [
            {"ResourceType": v["Type"], "LogicalResourceId": lid, "ResourceIdentifier": v["Identifier"]}
            for lid, v in ids.items()
        ]
        try:
            prepared = self.make_engine(stack).prepare(Request(self.environment, stack), None)
            parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(prepared.parameters.items())]
            # No stack tags: an import may change nothing but bring the resources in; phase D's deploy tags the stack.
            self._change_set(name, "IMPORT", template, parameters, phase="c", to_import=to_import)
        except Exception as exc:
            raise self._failed("C", name, exc, kept) from exc

    def _phase_d(self, stack: str, name: str, state: str) -> None:
        self.out.rule(f"phase D: {name} with the project's template")
        try:
            self.make_engine(stack).deploy(Request(self.environment, stack, yes=True, wait=True))
        except Exception as exc:
            raise self._failed("D", name, exc, state) from exc

    # ----------------------------------------------------------------- calls

    def _change_set(
        self,
        name: str,
        kind: str,
        template: Mapping[str, Any],
        parameters: list[dict[str, Any]],
        *,
        phase: str,
        to_import: list[dict[str, Any]] | None = None,
    ) -> None:
        """Create the change set, wait for it, execute it, wait for the stack; nothing when it has no changes."""
        body = json.dumps(template, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(body.encode()).hexdigest()[:12]
        extra: dict[str, Any] = {"ResourcesToImport": to_import} if to_import is not None else {}
        answer = self.client.create_change_set(
            StackName=name,
            ChangeSetName=f"cfnbuild-refactor-{phase}-{digest}",
            ChangeSetType=kind,
            Parameters=parameters,
            Capabilities=CAPABILITIES,
            Description=f"cfnbuild refactor phase {phase.upper()}",
            **self._template(name, body),
            **extra,
        )
        described = changeset.wait(self.client, answer["Id"], poll=self.poll, sleep=self.sleep)
        if described is None:
            self.client.delete_change_set(ChangeSetName=answer["Id"])
            self.err.print(f"{name}: nothing to change in phase {phase.upper()}", markup=False)
            return
        self.client.execute_change_set(ChangeSetName=answer["Id"])
        self._wait(answer["StackId"], name)

    def _template(self, name: str, body: str) -> dict[str, str]:
        return template_argument(self.aws, body, lambda line: self.err.print(f"{name}: {line}"))

    def _wait(self, stack_id: str, name: str) -> None:
        deadline = time.monotonic() + self.poll.timeout_seconds
        with self.err.status(f"{name}: waiting…") as status:
            while True:
                stack = self.client.describe_stacks(StackName=stack_id)["Stacks"][0]
                state = str(stack["StackStatus"])
                if not state.endswith("_IN_PROGRESS"):
                    break
                if time.monotonic() > deadline:
                    raise ImportFailed(f"{name} is still {state} after {self.poll.timeout_seconds:.0f}s")
                status.update(f"{name}: {state}")
                try:
                    self.sleep(self.poll.min_seconds)
                except KeyboardInterrupt:
                    raise Interrupted(f"stopped watching {name} ({state}): its operation goes on in AWS") from None
        if state not in DONE:
            reason = stack.get("StackStatusReason") or "no reason given"
            raise ImportFailed(f"{name} ended {state}: {reason}")
        self.out.print(f"{name}: {state}", markup=False)

    def _status(self, name: str) -> str | None:
        return read_status(self.client, name)

    def _previous(self, template: Mapping[str, Any], source: DeployedStack) -> list[dict[str, Any]]:
        declared = template.get("Parameters") or {}
        return [{"ParameterKey": k, "UsePreviousValue": True} for k in declared if k in source.parameters]

    def _failed(self, phase: str, name: str, exc: Exception, state: str) -> ImportFailed:
        said = str(expected_error(exc)).rstrip(".")
        try:
            now = self._status(name) or "not created"
        except Exception:  # the phase's own failure is the one to say; the state could not be read besides
            now = "in a state that could not be read"
        return ImportFailed(
            f"phase {phase} ({name}): {said}; {name} is {now}, {state}; run '{self.command}' again to resume"
        )

    def _confirm(self, plan: ImportPlan) -> None:
        if self.yes:
            return
        if self.confirm is None:
            raise Refused("not a terminal, so nobody can confirm; review the plan and pass --yes")
        question = f"Retain and import {len(plan.imported)} resources from {plan.source}? Type 'yes' to go on"
        if self.confirm(question).strip().lower() not in ("y", "yes"):
            raise Refused("not confirmed; nothing was changed")


def recorded(deployed: Mapping[str, DeployedStack | None]) -> DeployedStack | None:
    """The stack whose template carries phase B's record (an earlier run got past phase B), or None."""
    return next(
        (s for s in deployed.values() if s is not None and RECORD_KEY in (s.template.get("Metadata") or {})), None
    )


def show_import_plan(
    plan: ImportPlan,
    source: DeployedStack,
    wanted: Mapping[str, Any],
    order: Sequence[tuple[str, str]],
    out: Console,
    *,
    phase_a: bool,
) -> None:
    """Every phase: what is retained, removed, imported, deleted and created again, and what each stack ends with."""
    table = Table(title="retain and import: what each phase does")
    for column in ("phase", "stack", "what"):
        table.add_column(column, overflow="fold")
    imported = ", ".join(plan.imported)
    table.add_row(
        "A",
        source.name,
        f"DeletionPolicy and UpdateReplacePolicy Retain on {len(plan.imported)}: {imported}; outputs of the values "
        "staying resources take from leaving ones"
        if phase_a
        else "done already (every resource to import is Retain)",
    )
    recreated = ", ".join(f"{lid} ({why})" for lid, why in sorted(plan.recreated.items()))
    table.add_row(
        "B",
        source.name,
        f"removes {len(plan.imported)} retained resources (they stay in AWS); deletes {len(plan.recreated)} "
        f"stateless ones that cannot be imported: {recreated or 'none'}; the stack policy allows Update:Delete "
        "on exactly the retained ones meanwhile and is restored after",
    )
    for _stack, name in order:
        if name in plan.imports:
            table.add_row("C", name, f"creates the stack by importing {', '.join(plan.imports[name])}")
    for stack, name in order:
        again = sorted(lid for lid in plan.recreated if plan.destinations.get(lid) == name)
        total = len(wanted[name].get("Resources") or {})
        table.add_row(
            "D",
            name,
            f"deploys the project's template ({stack}): {total} resources"
            + (f"; creates again {', '.join(again)}" if again else ""),
        )
    out.print(table)
    if plan.recreated:
        out.print(
            f"interruption: {', '.join(sorted(plan.recreated))} are missing between phase B and their stack's phase D "
            "(minutes; what depends on them does not work meanwhile), and come back with new physical IDs (an Elastic "
            "IP with a new address)",
            markup=False,
        )
