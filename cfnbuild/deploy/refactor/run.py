"""``cfnbuild refactor``: upgrade deployed stacks to the project's layout, every resource kept.

One reviewed command. It reads the environment's deployed stacks (DescribeStacks, GetTemplate,
ListStackResources, GetStackPolicy) and the project's built templates, works out the moves
(:mod:`.moves`) and the refactor's templates (:mod:`.templates`), creates the stack refactor,
waits for CloudFormation to validate it, shows the plan CloudFormation made
(ListStackRefactorActions) and what follows, asks once (or takes ``--yes``), executes it, waits,
and finishes with the project's own templates through the deploy engine (:mod:`.finish`).

Re-runnable: the refactor is described by the project, environment and a digest of what it
sends, so a run after an interruption finds its refactor (ListStackRefactors) and picks it up —
waiting for a validation or an execution under way, or executing a validated one after the
confirmation —; once the resources are where the templates put them, a run only finishes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from rich.console import Console
from rich.table import Table

from cfnbuild.deploy.aws import Aws, error_code, error_message
from cfnbuild.deploy.engine import Engine, Refused
from cfnbuild.deploy.refactor.aws_refactor import (
    EXECUTING,
    VALIDATED,
    RefactorCalls,
    RefactorFailed,
    Waiting,
    execution_failed,
    has_api,
    not_confirmed,
    read_status,
    require_api,
    validation_failed,
)
from cfnbuild.deploy.refactor.finish import finish
from cfnbuild.deploy.refactor.import_run import RetainAndImport, recorded
from cfnbuild.deploy.refactor.moves import DeployedStack, Layout, RefactorRefused, compute_moves, refactor_obstacle
from cfnbuild.deploy.refactor.retain import RECORD_KEY, ImportPlan, plan_import
from cfnbuild.deploy.refactor.templates import missing_inputs, refactor_templates
from cfnbuild.deploy.staging import template_argument
from cfnbuild.files import read_json
from cfnbuild.project.app import Project
from cfnbuild.project.stack_graph import stack_graph


@dataclass
class Refactor:
    """One environment's upgrade to the project's stacks: the AWS target, the consoles, the engines."""

    project: Project
    environment: str
    aws: Aws
    make_engine: Callable[[str], Engine]  # an engine for a stack of the project (its own client)
    out: Console
    err: Console
    confirm: Callable[[str], str] | None = None
    yes: bool = False
    waiting: Waiting = field(default_factory=Waiting)
    sleep: Callable[[float], None] | None = None  # None: time.sleep
    clock: Callable[[], float] | None = None  # None: time.monotonic

    @property
    def command(self) -> str:
        """The command that runs this again."""
        return f"cfnbuild refactor --env {self.environment}"

    def run(self) -> None:
        """Plan, confirm, refactor, finish; raises one-line errors."""
        calls = self._calls()
        settings = self.project.deploy_view(self.environment).settings
        stacks = list(self.project.deploy_view(self.environment).stacks)
        names = {stack: settings.stack_name(stack) for stack in stacks}
        wanted = {
            names[s]: read_json(self.project.template_path(self.environment, s), root=self.project.root) for s in stacks
        }
        order = stack_graph({s: wanted[names[s]] for s in stacks}, environment=self.environment).order()
        prefix = f"cfnbuild refactor {settings.project}/{self.environment} "
        earlier = calls.summaries(prefix) if has_api(calls.client) else []
        executing = [s for s in earlier if s.get("ExecutionStatus") in EXECUTING]
        if executing:  # an earlier run was interrupted while it executed: wait for that, then read afresh
            self._wait_for(calls, str(executing[-1]["StackRefactorId"]), list(wanted), picked_up=True)
        self.err.print(f"reading the deployed stacks {', '.join(wanted)}…", markup=False)
        deployed = {name: read_stack(calls.client, name) for name in wanted}
        pairs = [(s, names[s]) for s in order]
        resumed = recorded(deployed)
        if resumed is not None:  # an earlier run got past phase B: its record says the rest
            if resumed.status.endswith("_IN_PROGRESS"):
                raise RefactorRefused(
                    f"{resumed.name} is busy ({resumed.status}) with phase B of an earlier run; wait until it settles, "
                    f"then run '{self.command}' again"
                )
            plan = ImportPlan.from_record(resumed.name, resumed.template["Metadata"][RECORD_KEY])
            self.out.print(
                f"retain-and-import, resumed: {resumed.name} carries the record of an earlier run's phase B "
                f"(its leaving resources are out of it); importing into {', '.join(plan.imports) or 'no stack'}",
                markup=False,
            )
            self._importer().resume(plan, resumed.name, wanted, pairs)
            return
        layout = compute_moves(deployed, wanted, refactor=False)
        if not layout.moves:
            self._nothing_to_move(deployed, order, names)
            return
        obstacle = refactor_obstacle(deployed, layout.moves)
        if obstacle is not None:
            self._retain_and_import(layout, deployed, wanted, pairs, obstacle)
            return
        self.out.print(
            "stack refactoring: every stack taking part allows it (no stack policy, no Transform that resources leave)",
            markup=False,
        )
        require_api(calls.client)
        layout = compute_moves(deployed, wanted)
        templates = refactor_templates(layout, deployed, wanted)
        missing = missing_inputs(templates, wanted, names)
        if missing:
            raise RefactorRefused(
                f"{'; '.join(missing)}, which its refactor template cannot declare yet (the output's value uses more "
                "than the resources that stack holds, or a condition), so the deploys after the move would fail; "
                "make that output a Ref or GetAtt of its resource, build, and run again"
            )
        mappings = [_mapping(m.source, m.destination, m.logical_id) for m in layout.moves]
        description = prefix + _digest(templates, mappings)
        same = [s for s in earlier if s.get("Description") == description and _validated(s)]
        refactor_id = self._created(
            calls,
            same[-1] if same else None,
            description=description,
            templates=templates,
            mappings=mappings,
            layout=layout,
        )
        self._execute(calls, refactor_id, layout)
        involved = [s for s in reversed(order) if names[s] in layout.stacks]
        finish(self.make_engine, self.environment, involved, self.out, self.command)
        self.out.print(
            f"{self.environment}: {len(layout.moves)} resources moved, none created, replaced or deleted; "
            f"{', '.join(involved)} deployed with the project's templates",
            markup=False,
        )
        self._rest(order, involved)

    def _importer(self) -> RetainAndImport:
        importer = RetainAndImport(
            self.aws, self.environment, self.make_engine, self.out, self.err, self.command, self.confirm, self.yes
        )
        if self.sleep is not None:
            importer.sleep = self.sleep
        return importer

    def _retain_and_import(
        self,
        layout: Layout,
        deployed: Mapping[str, DeployedStack | None],
        wanted: Mapping[str, Mapping[str, Any]],
        pairs: Sequence[tuple[str, str]],
        why: str,
    ) -> None:
        """The moves a stack refactor cannot make, by retain and import (:mod:`.import_run`)."""
        self.out.print(f"retain-and-import, not stack refactoring: {why}", markup=False)
        source = deployed[layout.moves[0].source]
        assert source is not None  # noqa: S101  (a move leaves a deployed stack)
        for name in layout.stacks:
            live = deployed.get(name)
            if live is not None and live.status.endswith("_IN_PROGRESS"):
                raise RefactorRefused(f"{name} is busy ({live.status}); wait until it settles, then run again")
        importer = self._importer()
        physical = importer.physical_ids(source.stack_id)
        plan = plan_import(layout, source, physical, wanted, self.aws.target.region)
        importer.run(plan, source, wanted, pairs)

    def _calls(self) -> RefactorCalls:
        client = self.aws.cloudformation
        calls = RefactorCalls(client, self.err, self.waiting, command=self.command)
        if self.sleep is not None:
            calls.sleep = self.sleep
        if self.clock is not None:
            calls.clock = self.clock
        return calls

    def _created(
        self,
        calls: RefactorCalls,
        found: Mapping[str, Any] | None,
        *,
        description: str,
        templates: Mapping[str, Mapping[str, Any]],
        mappings: Sequence[Mapping[str, Any]],
        layout: Layout,
    ) -> str:
        """The refactor to execute, validated: the one an earlier run made of the same templates, else a new one."""
        if found is not None:
            refactor_id = str(found["StackRefactorId"])
            self.err.print(
                f"picking up stack refactor {refactor_id} of an earlier run ({found.get('Status')}): it sends what "
                "this run would",
                markup=False,
            )
        else:
            self.err.print(
                f"creating the stack refactor of {', '.join(layout.stacks)} ({len(layout.moves)} resources move"
                + (f"; creates {', '.join(layout.new_stacks)}" if layout.new_stacks else "")
                + ")…",
                markup=False,
            )
            definitions = [self._definition(name, template) for name, template in templates.items()]
            refactor_id = calls.create(description, definitions, mappings, new_stacks=bool(layout.new_stacks))
        answer = calls.wait(refactor_id, execution=False)
        if answer.get("Status") != "CREATE_COMPLETE":
            raise validation_failed({"StackRefactorId": refactor_id, **answer}, layout.stacks)
        return refactor_id

    def _definition(self, name: str, template: Mapping[str, Any]) -> dict[str, str]:
        body = json.dumps(template, sort_keys=True, separators=(",", ":"))
        staged = template_argument(self.aws, body, lambda line: self.err.print(f"{name}: {line}", markup=False))
        return {"StackName": name, **staged}

    def _execute(self, calls: RefactorCalls, refactor_id: str, layout: Layout) -> None:
        """Show the plan, confirm, execute and wait for the end."""
        state = calls.client.describe_stack_refactor(StackRefactorId=refactor_id)
        if state.get("ExecutionStatus") != "AVAILABLE":
            raise RefactorFailed(
                f"stack refactor {refactor_id} is validated but {state.get('ExecutionStatus')}, not AVAILABLE: "
                f"{state.get('ExecutionStatusReason') or 'the stacks changed since'}; run '{self.command}' again"
            )
        show_plan(calls.actions(refactor_id), layout, self.out)
        self._confirm(refactor_id, layout)
        self.err.print(f"executing stack refactor {refactor_id}…", markup=False)
        calls.execute(refactor_id)
        self._wait_for(calls, refactor_id, layout.stacks, picked_up=False)

    def _wait_for(self, calls: RefactorCalls, refactor_id: str, stacks: Sequence[str], *, picked_up: bool) -> None:
        """Wait until the execution ends; one line on failure, saying where the stacks are."""
        if picked_up:
            self.err.print(f"picking up stack refactor {refactor_id} of an earlier run, executing", markup=False)
        answer = calls.wait(refactor_id, execution=True)
        if answer.get("ExecutionStatus") != "EXECUTE_COMPLETE":
            states = {name: _status(calls.client, name) for name in stacks}
            raise execution_failed({"StackRefactorId": refactor_id, **answer}, states, self.command)
        self.out.print(f"stack refactor {refactor_id}: EXECUTE_COMPLETE; every resource is in its new stack")

    def _confirm(self, refactor_id: str, layout: Layout) -> None:
        if self.yes:
            return
        if self.confirm is None:
            raise Refused("not a terminal, so nobody can confirm; review the plan and pass --yes")
        question = f"Move {len(layout.moves)} resources between {', '.join(layout.stacks)}? Type 'yes' to go on"
        if self.confirm(question).strip().lower() not in ("y", "yes"):
            raise not_confirmed(refactor_id)

    def _nothing_to_move(
        self, deployed: Mapping[str, DeployedStack | None], order: Sequence[str], names: Mapping[str, str]
    ) -> None:
        live = [s for s in reversed(order) if deployed[names[s]] is not None]
        if not live:
            raise Refused(
                f"no stack of {self.environment} is deployed, so there is nothing to refactor; deploy it: cfnbuild "
                f"deploy --env {self.environment}"
            )
        self.out.print(
            "nothing to move: every deployed resource is in the stack the project's templates put it in; finishing "
            "with the project's templates"
        )
        finish(self.make_engine, self.environment, live, self.out, self.command)
        self._rest(order, live)

    def _rest(self, order: Sequence[str], done: Sequence[str]) -> None:
        rest = [s for s in order if s not in done]
        if rest:
            self.out.print(
                f"{', '.join(rest)} took no part in the refactor; deploy them with: cfnbuild deploy --env "
                f"{self.environment}",
                markup=False,
            )


def show_plan(actions: Sequence[Mapping[str, Any]], layout: Layout, out: Console) -> None:
    """The plan CloudFormation made (ListStackRefactorActions), then what the command does after it."""
    table = Table(title="stack refactor: what CloudFormation will do")
    for column in ("action", "entity", "resource", "from", "to", "detection"):
        table.add_column(column, overflow="fold")
    for action in actions:
        mapping = action.get("ResourceMapping") or {}
        source, destination = mapping.get("Source") or {}, mapping.get("Destination") or {}
        resource = action.get("PhysicalResourceId") or action.get("ResourceIdentifier") or ""
        table.add_row(
            str(action.get("Action", "")),
            str(action.get("Entity", "")),
            str(resource or action.get("Description", "")),
            f"{source.get('StackName', '')}.{source.get('LogicalResourceId', '')}".strip("."),
            f"{destination.get('StackName', '')}.{destination.get('LogicalResourceId', '')}".strip("."),
            str(action.get("Detection", "")),
        )
    out.print(table)
    for stack in layout.new_stacks:
        out.print(f"creates stack {stack} with {len(layout.holders[stack])} resources", markup=False)
    out.print(
        "then: deploys the project's templates, consumers first (each plan shown; a plan that replaces or removes a "
        "stateful resource stops the run), which drops the refactor's imports and exports",
        markup=False,
    )


def read_stack(client: Any, name: str) -> DeployedStack | None:
    """The stack ``name`` as deployed, or None when there is none."""
    try:
        stack = client.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as exc:
        if error_code(exc) == "ValidationError" and "does not exist" in error_message(exc):
            return None
        raise
    body = client.get_template(StackName=stack["StackId"], TemplateStage="Original")["TemplateBody"]
    try:
        template = json.loads(body) if isinstance(body, str) else dict(body)
    except json.JSONDecodeError:
        raise RefactorRefused(
            f"{name} was deployed with a template that is not JSON (YAML?), which cfnbuild does not read; deploy it "
            "once with a template cfnbuild built, then run again"
        ) from None
    resources: dict[str, str] = {}
    arguments = {"StackName": stack["StackId"]}
    while True:
        page = client.list_stack_resources(**arguments)
        for summary in page.get("StackResourceSummaries", []):
            if summary.get("ResourceStatus") != "DELETE_COMPLETE":
                resources[summary["LogicalResourceId"]] = summary["ResourceType"]
        if not page.get("NextToken"):
            break
        arguments["NextToken"] = page["NextToken"]
    parameters = {
        p["ParameterKey"]: str(p.get("ResolvedValue") or p.get("ParameterValue", ""))
        for p in stack.get("Parameters", [])
    }
    policy = client.get_stack_policy(StackName=stack["StackId"]).get("StackPolicyBody")
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}
    return DeployedStack(
        name, stack["StackId"], stack["StackStatus"], template, parameters, resources, policy or None, outputs
    )


def _status(client: Any, name: str) -> str:
    stack = read_status(client, name)
    return stack or "not created"


def _mapping(source: str, destination: str, logical_id: str) -> dict[str, Any]:
    return {
        "Source": {"StackName": source, "LogicalResourceId": logical_id},
        "Destination": {"StackName": destination, "LogicalResourceId": logical_id},
    }


def _digest(templates: Mapping[str, Any], mappings: Sequence[Mapping[str, Any]]) -> str:
    """A digest of what the refactor sends; with project and environment its Description, for a later run to find."""
    sent = json.dumps({"templates": templates, "mappings": mappings}, sort_keys=True, default=str)
    return hashlib.sha256(sent.encode()).hexdigest()[:16]


def _validated(summary: Mapping[str, Any]) -> bool:
    """Whether a refactor is being validated or validated and not executed: one to execute."""
    return summary.get("Status") in ("CREATE_IN_PROGRESS", "CREATE_COMPLETE") and summary.get("ExecutionStatus") in (
        VALIDATED
    )
