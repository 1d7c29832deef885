"""The deploy engine: from a written template to a stack in its wanted state, or a clear refusal.

``plan``: resolve parameters → create a change set → wait (our own loop) → one merged plan.
``deploy``: a local no-op check (template, parameters, tags, termination protection and stack
policy unchanged → nothing is created) → plan → refuse what is not allowed (destructive changes
to stateful resources without ``--allow-replace``) → confirm → execute with a client request
token → stream new events → success only on CREATE_COMPLETE / UPDATE_COMPLETE → outputs.

The engine never builds templates: it reads ``output/<env>/<stack>.json``, refusing when that
file is stale, so what was linted is what ships.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from rich.console import Console

from cfnbuild.build.stateful import stateful_resources
from cfnbuild.build.tags import MANAGED_BY, standard_tags
from cfnbuild.deploy import artifacts, changeset
from cfnbuild.deploy.aws import Aws, error_code, error_message, explain, is_not_implemented, refused
from cfnbuild.deploy.changeset import arn_name
from cfnbuild.deploy.events import AFTER_REVIEW, PollSettings, Reporter, Since, known_fix, make_reporter, watch
from cfnbuild.deploy.examples import reserved_examples
from cfnbuild.deploy.lookups import resolve_lookups
from cfnbuild.deploy.plan.model import Plan
from cfnbuild.deploy.plan.read import build_plan
from cfnbuild.deploy.plan.render import render_text
from cfnbuild.deploy.plan.saved import load_plan
from cfnbuild.deploy.policy import policy_body, same_policy, stack_policy
from cfnbuild.deploy.staging import INLINE_TEMPLATE_LIMIT, TEMPLATES, StagingBucket
from cfnbuild.errors import CfnbuildError, UsageError
from cfnbuild.files import read_json_text, write_atomic
from cfnbuild.project.app import Project

CACHE_DIR = ".cfnbuild-cache"
BUSY = re.compile(r"_IN_PROGRESS$")
FAILED_CREATE_STATES = ("ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS", "ROLLBACK_FAILED")
SUCCESS = {"CREATE": frozenset({"CREATE_COMPLETE"}), "UPDATE": frozenset({"UPDATE_COMPLETE"})}
# A change set younger than this, on a stack still in REVIEW_IN_PROGRESS, belongs to a client
# that is about to execute it (or to a plan saved for review): the stack is busy, not abandoned.
LIVE_CHANGE_SET_SECONDS = 15 * 60
# SNS protocols whose subscriptions a person confirms from a mail (the alert addresses).
EMAIL_PROTOCOLS = frozenset({"email", "email-json"})


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


# A step after a finished operation: what it does, the command that does it by hand, the step.
FollowUp = tuple[str, str, Callable[[], None]]


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


@dataclass
class Engine:
    """Plans and deploys the stacks of one project to one target."""

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

    @property
    def cloudformation(self) -> Any:
        """The CloudFormation client."""
        return self.aws.cloudformation

    def interrupted(self, what: str, follow: str) -> Interrupted:
        """The line for Ctrl-C while ``what`` runs: it goes on in AWS, or ends with the emulator."""
        if self.aws.target.local:
            return Interrupted(f"stopped; {what} ends with the embedded emulator, which stops with this command")
        return Interrupted(f"stopped watching; {what} goes on in AWS. Follow it with: {follow}")

    # ----------------------------------------------------------------- reading state
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

    # ----------------------------------------------------------------- preparing
    def stack_name(self, request: Request) -> str:
        """The deployed name of the requested stack."""
        return self.project.deploy_view(request.environment).settings.stack_name(request.stack)

    def prepare(self, request: Request, deployed: DeployedStack | None) -> Prepared:
        """Read the written template (refusing a stale one) and resolve everything sent with it."""
        project, env = self.project, request.environment
        view = project.deploy_view(env)
        config = view.settings
        path = project.template_path(env, request.stack)
        rel = path.relative_to(project.root)
        text, template = read_json_text(path, root=project.root, environment=env)
        if view.record is None or not view.record.vouches_for(request.stack, text):
            project.check_current(env, request.stack, lambda text: self.err.print(text, markup=False))
        body = json.dumps(template, sort_keys=True, separators=(",", ":"))
        if not self.aws.target.local:
            self._refuse_examples(request, template, rel)
        parameters, previous = self._parameters(request, template, deployed)
        built = artifacts.build(
            template,
            project_root=project.root,
            cache_dir=project.root / CACHE_DIR / "artifacts" / env,
            skip=set(request.param_overrides) | set(config.deploy.parameters),
        )
        for artifact in built:
            parameters[artifact.parameter] = artifact.key
            previous -= {artifact.parameter}
            self.err.print(f"parameter {artifact.parameter}: {artifact.key} (built from this checkout)", markup=False)
        return Prepared(
            template=template,
            body=body,
            template_hash=hashlib.sha256(body.encode()).hexdigest(),
            parameters=parameters,
            previous=previous,
            tags=standard_tags(config.project, env, config.tags),
            capabilities=list(config.deploy.capabilities),
            termination_protection=config.deploy.termination_protection,
            policy=stack_policy(template) if config.deploy.protect_stateful else None,
            artifacts=tuple(built),
        )

    def _refuse_examples(self, request: Request, template: Mapping[str, Any], rel: Path) -> None:
        """Refuse, before any AWS call, a domain or address reserved for examples (:mod:`.examples`)."""
        declared = template.get("Parameters", {})
        given = {name: value for name, (value, _) in self._given_parameters(request, declared).items()}
        found = reserved_examples(template, given)
        if found:
            places = ", ".join(f"{place} is {value!r}" for place, value in found)
            raise UsageError(
                f"{rel}: {places}: reserved example names (RFC 2606) that no one owns — a certificate for such a "
                "domain never validates and the deploy waits for hours, alerts to such an address reach no one; "
                f"set your own in config/{request.environment}.toml (or --param), or deploy it with --local"
            )

    def _parameters(
        self, request: Request, template: Mapping[str, Any], deployed: DeployedStack | None
    ) -> tuple[dict[str, str], frozenset[str]]:
        declared: dict[str, Any] = template.get("Parameters", {})
        given = self._given_parameters(request, declared)
        lookups = resolve_lookups(
            template,
            region=self.aws.target.region,
            session=self.aws.session(),
            cache_dir=self.project.root / CACHE_DIR / "lookups",
            endpoint_url=self.aws.target.endpoint_url,
            overrides={name: value for name, (value, _) in given.items()},
        )
        for message in lookups.messages():
            self.err.print(f"parameter {message}", markup=False)
        values: dict[str, str] = {}
        previous: set[str] = set()
        for name, definition in declared.items():
            if name in given:
                values[name] = given[name][0]
                _check_parameter(name, definition, values[name], given[name][1])
            elif name in lookups and lookups[name].source != "fallback":
                values[name] = lookups[name].value
            elif name in lookups and deployed is not None and name in deployed.parameters:
                previous.add(name)  # the lookup could not run: keep what the stack has
            elif name in lookups:
                values[name] = lookups[name].value
            elif "Default" in definition:
                continue  # CloudFormation applies the default
            elif deployed is not None and name in deployed.parameters:
                previous.add(name)
            else:
                raise UsageError(
                    f"parameter {name} has no default and no value; set it in config/{request.environment}.toml "
                    f"[deploy.parameters] or pass --param {name}=VALUE"
                )
        return values, frozenset(previous)

    def _given_parameters(self, request: Request, declared: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
        """Values from the config and ``--param``, each with where it came from, checked by name."""
        config = self.project.deploy_view(request.environment).settings
        given: dict[str, tuple[str, str]] = {}
        for name, value in config.deploy.parameters.items():
            given[name] = (value, f"config/{request.environment}.toml: deploy.parameters.{name}")
        for name, value in request.param_overrides.items():
            given[name] = (value, f"--param {name}")
        for name, (_, where) in given.items():
            if name not in declared:
                known = ", ".join(sorted(declared)) or "(none)"
                raise UsageError(f"{where}: the template has no parameter {name!r}; it has: {known}")
        return given

    # ----------------------------------------------------------------- plan
    def plan(self, request: Request, *, keep: bool) -> tuple[Plan, changeset.ChangeSet | None]:
        """Create the change set for ``request`` and read it as a plan.

        Unless ``keep``, the change set is deleted again (and a stack that only existed to hold
        it), so a plan leaves nothing behind.
        """
        self._templates.clear()
        stack_name = self.stack_name(request)
        deployed = self._usable_stack(request, stack_name)
        prepared = self.prepare(request, deployed)
        return self._plan(request, stack_name, deployed, prepared, keep=keep)

    def _plan(
        self, request: Request, stack_name: str, deployed: DeployedStack | None, prepared: Prepared, *, keep: bool
    ) -> tuple[Plan, changeset.ChangeSet | None]:
        old_template = self.deployed_template(stack_name) if deployed else None
        change_set_type = "UPDATE" if deployed else "CREATE"
        parameters: list[dict[str, Any]] = [
            {"ParameterKey": k, "ParameterValue": v} for k, v in sorted(prepared.parameters.items())
        ]
        parameters += [{"ParameterKey": k, "UsePreviousValue": True} for k in sorted(prepared.previous)]
        name = f"cfnbuild-{datetime.now(UTC):%Y%m%d%H%M%S}-{prepared.template_hash[:8]}"
        with self.err.status(f"creating change set {name} for {stack_name}…"):
            try:
                created = changeset.create(
                    self.cloudformation,
                    stack_name=stack_name,
                    name=name,
                    change_set_type=change_set_type,
                    template=self._template_argument(prepared.body),
                    parameters=parameters,
                    tags=prepared.tags,
                    capabilities=prepared.capabilities,
                    client_token=name,
                    poll=self.poll,
                    sleep=self.sleep,
                )
            except ClientError as exc:
                if change_set_type == "CREATE" and _already_exists(exc):
                    raise StackBusy(
                        f"{stack_name} was created by another client a moment ago, while this plan was made; "
                        f"run again, with --wait to wait for its operation"
                    ) from None
                raise
        plan = build_plan(
            stack_name=stack_name,
            change_set=created.description if created else None,
            new_template=prepared.template,
            old_template=old_template,
            new_parameters=prepared.parameters,
            old_parameters=deployed.parameters if deployed else {},
            new_tags=prepared.tags,
            old_tags=deployed.tags if deployed else {},
            template_hash=prepared.template_hash,
            stack_last_updated=deployed.last_updated if deployed else None,
            stack_fingerprint=_fingerprint(old_template, deployed),
        )
        if created is not None and not keep:
            self.discard(created, created_stack=deployed is None)
        return plan, created

    def discard(self, created: changeset.ChangeSet, *, created_stack: bool) -> None:
        """Delete a change set we made (and the empty stack a CREATE change set brought)."""
        changeset.delete_quietly(self.cloudformation, created.id)
        if created_stack:
            self.cloudformation.delete_stack(StackName=created.stack_id)

    def undo(self, created: changeset.ChangeSet, *, created_stack: bool) -> str:
        """Remove what this run made for a change set that will not run; say what was done."""
        return changeset.undo(self.cloudformation, created.id, created.stack_id if created_stack else None)

    def _template_argument(self, body: str) -> dict[str, str]:
        if len(body.encode()) <= INLINE_TEMPLATE_LIMIT:
            return {"TemplateBody": body}
        staging = StagingBucket(self.aws)
        key = staging.put(TEMPLATES, body.encode(), suffix=".json")
        self.err.print(f"template is {len(body.encode())} bytes: staged as s3://{staging.name}/{key}", markup=False)
        return {"TemplateURL": staging.url(key)}

    # ----------------------------------------------------------------- deploy
    def deploy(self, request: Request) -> dict[str, str]:
        """Deploy ``request``; returns the stack's outputs. Raises on refusal or failure."""
        staged = self.stage(request)
        if staged.created is None or staged.plan is None:
            return self.finish_unchanged(staged)
        try:
            self._confirm(staged.plan, request, staged.stack_name)
        except CfnbuildError:
            self.abandon(staged)
            raise
        return self.execute(staged)

    def stage(self, request: Request) -> Staged:
        """Everything before confirmation: the no-op check, the plan (shown) and the refusals.

        When there is something to do, the change set is left ready for :meth:`execute` (or
        :meth:`abandon`); a refusal deletes it before raising.
        """
        self._templates.clear()
        stack_name = self.stack_name(request)
        deployed = self._usable_stack(request, stack_name)
        prepared = self.prepare(request, deployed)
        if deployed is not None and request.plan_file is None and self._unchanged(stack_name, deployed, prepared):
            self.out.print(f"{stack_name}: no changes (template, parameters, tags and policies as deployed)")
            return Staged(request, stack_name, deployed, prepared, None, None, deployed.outputs)
        if request.plan_file is not None:
            plan, created = self._saved_plan(request.plan_file, stack_name, deployed, prepared)
        else:
            plan, created = self._plan(request, stack_name, deployed, prepared, keep=True)
            render_text(plan, self.out)
        if created is None:
            self._settle_protection(stack_name, deployed, prepared)
            self.out.print(f"{stack_name}: no changes")
            return Staged(request, stack_name, deployed, prepared, plan, None, deployed.outputs if deployed else {})
        staged = Staged(request, stack_name, deployed, prepared, plan, created, {})
        try:
            self._check_allowed(plan, request)
        except CfnbuildError:
            self.abandon(staged)
            raise
        return staged

    def abandon(self, staged: Staged) -> None:
        """Delete a staged change set that will not be executed (and the empty stack it made)."""
        if staged.created is not None:
            self.discard(staged.created, created_stack=staged.deployed is None)

    def execute(self, staged: Staged) -> dict[str, str]:
        """Execute a staged change set and watch it to the end; returns the outputs."""
        if staged.created is None or staged.plan is None:
            return staged.outputs
        return self._execute(
            request=staged.request,
            stack_name=staged.stack_name,
            deployed=staged.deployed,
            prepared=staged.prepared,
            plan=staged.plan,
            created=staged.created,
        )

    def _usable_stack(self, request: Request, stack_name: str) -> DeployedStack | None:
        """The deployed stack, after handling states a deploy cannot start from."""
        deployed = self.describe(stack_name)
        if deployed is None:
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

    def _unchanged(self, stack_name: str, deployed: DeployedStack, prepared: Prepared) -> bool:
        """The local no-op check: everything a deploy would send is already deployed."""
        if prepared.parameters.items() - deployed.parameters.items():
            return False
        if prepared.tags != deployed.tags or prepared.termination_protection != deployed.termination_protection:
            return False
        if self.deployed_template(stack_name) != prepared.template:
            return False
        return prepared.policy is None or same_policy(self.deployed_policy(stack_name), prepared.policy)

    def _saved_plan(
        self, plan_file: Path, stack_name: str, deployed: DeployedStack | None, prepared: Prepared
    ) -> tuple[Plan, changeset.ChangeSet | None]:
        plan = load_plan(plan_file)
        where = str(plan_file)
        if plan.stack_name != stack_name:
            raise Refused(f"{where} is a plan for {plan.stack_name}, not {stack_name}")
        if plan.template_hash != prepared.template_hash:
            raise Refused(f"{where} was made from another template; run 'cfnbuild plan' again")
        now = deployed.last_updated if deployed else None
        fingerprint = _fingerprint(self.deployed_template(stack_name) if deployed else None, deployed)
        if plan.stack_last_updated != now or plan.stack_fingerprint != fingerprint:
            raise Refused(f"{where} is stale: {stack_name} changed since the plan was made; run 'cfnbuild plan' again")
        if plan.change_set_id is None:
            return plan, None
        try:
            description = changeset.describe(self.cloudformation, plan.change_set_id)
        except ClientError as exc:
            raise Refused(
                f"{where}: its change set is gone ({error_message(exc)}); run 'cfnbuild plan' again"
            ) from None
        if description.get("ExecutionStatus") != "AVAILABLE":
            raise Refused(f"{where}: its change set is {description.get('ExecutionStatus')}; run 'cfnbuild plan' again")
        render_text(plan, self.out)
        return plan, changeset.ChangeSet(plan.change_set_id, description["StackId"], description)

    def _check_allowed(self, plan: Plan, request: Request) -> None:
        blocked = [r.logical_id for r in plan.dangers if r.logical_id not in request.allow_replace]
        if blocked:
            names = " ".join(f"--allow-replace {name}" for name in blocked)
            raise Refused(
                f"the plan replaces or removes stateful resource(s) {', '.join(blocked)}, which may lose data; "
                f"nothing was changed. If that is intended, run again with {names}"
            )

    def _confirm(self, plan: Plan, request: Request, stack_name: str) -> None:
        if request.yes:
            return
        if self.confirm is None:
            raise Refused("not a terminal, so nobody can confirm; review the plan and pass --yes")
        if plan.destructive:
            answer = self.confirm(
                f"This plan replaces or removes resources. Type the stack name ({stack_name}) to go on"
            )
            if answer.strip() != stack_name:
                raise Refused("not confirmed; nothing was changed")
        elif self.confirm("Deploy these changes? Type 'yes' to go on").strip().lower() not in ("y", "yes"):
            raise Refused("not confirmed; nothing was changed")

    def _execute(
        self,
        *,
        request: Request,
        stack_name: str,
        deployed: DeployedStack | None,
        prepared: Prepared,
        plan: Plan,
        created: changeset.ChangeSet,
    ) -> dict[str, str]:
        relaxed = deployed is not None and prepared.policy is not None and bool(request.allow_replace)
        executing = executed = False  # ExecuteChangeSet sent; and accepted
        try:
            if relaxed:
                allowed = stack_policy(prepared.template, allow=request.allow_replace)
                self.cloudformation.set_stack_policy(StackName=created.stack_id, StackPolicyBody=policy_body(allowed))
            # A stack this change set created has seen nothing but its REVIEW_IN_PROGRESS: no need to ask.
            since = AFTER_REVIEW if deployed is None else self._last_event_id(created.stack_id)
            token = f"cfnbuild-{uuid.uuid4()}"
            pending = self._upload_ready_artifacts(created.stack_id, prepared) if deployed else list(prepared.artifacts)
            reporter = artifacts.UploadOnBucketReady(
                self.reporter(self.out), self.aws.client("s3"), pending, lambda text: self.err.print(text, markup=False)
            )
            executing = True
            # RetainExceptOnCreate: what this operation creates is deleted if it rolls back (new and
            # empty), whatever its DeletionPolicy; what existed before is kept as its policy says.
            self.cloudformation.execute_change_set(
                ChangeSetName=created.id, ClientRequestToken=token, RetainExceptOnCreate=True
            )
            executed = True
            outcome = watch(
                self.cloudformation,
                created.stack_id,
                since=since,
                success=SUCCESS[plan.change_set_type],
                reporter=reporter,
                poll=self.poll,
                sleep=self.sleep,
            )
        except KeyboardInterrupt:
            if not executing:
                self.discard(created, created_stack=deployed is None)
            raise self.interrupted(
                f"the {plan.change_set_type.lower()} of {stack_name}",
                f"cfnbuild status --env {request.environment} --follow",
            ) from None
        except Exception as exc:
            if not executing or (not executed and refused(exc)):
                exc.add_note(self.undo(created, created_stack=deployed is None))
            elif not executed:  # no answer: AWS may have taken it
                exc.add_note(
                    f"the execution of {created.name} may have started; see 'cfnbuild status --env "
                    f"{request.environment}'"
                )
            raise
        finally:
            if relaxed and prepared.policy is not None:
                self.cloudformation.set_stack_policy(
                    StackName=created.stack_id, StackPolicyBody=policy_body(prepared.policy)
                )
        if not outcome.ok:
            cause = outcome.root_cause
            why = (
                f"{cause.logical_id} ({cause.resource_type}) {cause.status}: {cause.reason}{known_fix(cause)}"
                if cause
                else "no failed resource event"
            )
            nested = f" in nested stack {cause.stack_name}" if cause and cause.stack_name != stack_name else ""
            raise DeployFailed(f"{stack_name} ended {outcome.status}; root cause{nested}: {why}")
        if reporter.pending:  # no event said the bucket was made (the emulator sends none)
            self._upload_ready_artifacts(created.stack_id, prepared, only=reporter.pending, new_bucket=deployed is None)
        # The watch's last DescribeStacks (by ARN: the stack this change set made, not a namesake).
        after = DeployedStack.from_api(outcome.stack) if outcome.stack else self.describe(created.stack_id)
        outputs = after.outputs if after else {}
        self.out.print(f"{stack_name}: {outcome.status}", markup=False)
        again = f"run 'cfnbuild deploy --env {request.environment}' again to set it"
        steps: list[FollowUp] = []
        if after is not None:
            steps += [
                ("the stack policy", again, lambda: self._set_policy(after, prepared, created=deployed is None)),
                ("termination protection", again, lambda: self._set_protection(after, prepared)),
            ]
        steps.append(
            (
                "the outputs file",
                f"run 'cfnbuild outputs --env {request.environment}'",
                lambda: self._write_outputs(request, stack_name, created.stack_id, outputs, prepared.template),
            )
        )
        self._follow_ups(stack_name, outputs, steps, stack_id=created.stack_id, template=prepared.template)
        return outputs

    def _upload_ready_artifacts(
        self,
        stack_id: str,
        prepared: Prepared,
        *,
        only: Sequence[artifacts.BuiltArtifact] | None = None,
        new_bucket: bool = False,
    ) -> list[artifacts.BuiltArtifact]:
        """Upload each artifact whose bucket exists; return the ones still waiting for theirs.

        ``new_bucket``: the stack was created by this deploy, so its buckets are new and empty.
        """
        waiting = []
        wanted = list(only if only is not None else prepared.artifacts)
        physical = self._physical_ids(stack_id) if wanted else {}
        for artifact in wanted:
            bucket = physical.get(artifact.bucket)
            if not bucket:
                waiting.append(artifact)
                continue
            if artifacts.upload(self.aws.client("s3"), bucket, artifact, new_bucket=new_bucket):
                self.err.print(f"uploaded {artifact.parameter} to s3://{bucket}/{artifact.key}", markup=False)
        return waiting

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

    def _settle_protection(
        self, stack_name: str, deployed: DeployedStack | None, prepared: Prepared, *, created: bool = False
    ) -> None:
        """Put termination protection and the stack policy where the config wants them."""
        if deployed is None:
            return
        self._set_policy(deployed, prepared, created=created)
        self._set_protection(deployed, prepared)

    def _set_policy(self, deployed: DeployedStack, prepared: Prepared, *, created: bool = False) -> None:
        """Set the stack policy the config wants; read the current one only when there is one to want.

        ``created``: the stack was made by this deploy, so it has no stack policy yet (a change
        set cannot carry one) and there is none to read first.
        """
        if prepared.policy is None:
            return  # no policy wanted: no GetStackPolicy either (a deploy role may lack it)
        current = None if created else self.deployed_policy(deployed.stack_id)
        if not same_policy(current, prepared.policy):
            self.cloudformation.set_stack_policy(
                StackName=deployed.stack_id, StackPolicyBody=policy_body(prepared.policy)
            )
            protected = ", ".join(stateful_resources(prepared.template)) or "nothing"
            self.err.print(f"stack policy: Replace and Delete denied for {protected}", markup=False)

    def _set_protection(self, deployed: DeployedStack, prepared: Prepared) -> None:
        """Turn termination protection on or off as the config wants."""
        if prepared.termination_protection == deployed.termination_protection:
            return
        try:
            self.cloudformation.update_termination_protection(
                StackName=deployed.stack_id, EnableTerminationProtection=prepared.termination_protection
            )
        except ClientError as exc:
            if not (self.aws.target.local or is_not_implemented(exc)):
                raise
            who = "the emulator" if self.aws.target.local else "the endpoint"
            self.err.print(
                f"{who} has no termination-protection API ({error_code(exc) or exc}); on AWS it would be "
                f"{'on' if prepared.termination_protection else 'off'}",
                markup=False,
            )

    def _follow_ups(
        self,
        stack_name: str,
        outputs: Mapping[str, str],
        steps: Sequence[FollowUp],
        *,
        stack_id: str = "",
        template: Mapping[str, Any] | None = None,
    ) -> None:
        """Run the steps after an operation that finished; each that fails is one line, not the end.

        The operation is reported as finished whatever happens here; a failed step raises
        :class:`FollowUpFailed` (exit 3) naming what was not done and the command that does it.
        With ``stack_id`` and ``template``, the last lines then name each alert e-mail
        subscription still waiting for its owner's confirmation.
        """
        failed: list[str] = []
        for what, fix, step in steps:
            try:
                step()
            except Exception as exc:
                reason = exc if isinstance(exc, CfnbuildError) else explain(exc)
                if reason is None:
                    raise  # a bug, not an answer
                failed.append(f"{stack_name}: {what} was not done: {reason}; {fix}")
        if stack_id and template is not None:
            self._report_pending_subscriptions(stack_name, stack_id, template)
        if failed:
            raise FollowUpFailed("\n".join(failed), dict(outputs))

    def _report_pending_subscriptions(self, stack_name: str, stack_id: str, template: Mapping[str, Any]) -> None:
        """One line per e-mail subscription to the stack's topics that is not confirmed yet; never fails.

        SNS delivers nothing to an endpoint until its owner confirms the subscription, and lists
        an unconfirmed one with the SubscriptionArn ``PendingConfirmation``
        (https://docs.aws.amazon.com/sns/latest/dg/SendMessageToHttp.confirm.html; for budget
        alerts: https://docs.aws.amazon.com/cost-management/latest/userguide/budgets-sns-policy.html).
        Only a template that subscribes an e-mail address is checked. A check that cannot be
        made (denied, throttled, an endpoint without the API) is one line: the stack is deployed.
        """
        if not _subscribes_email(template):
            return
        try:
            topics = [
                (r["LogicalResourceId"], r["PhysicalResourceId"])
                for r in self._resources(stack_id)
                if r.get("ResourceType") == "AWS::SNS::Topic" and r.get("PhysicalResourceId")
            ]
            sns = self.aws.client("sns")
            pending = []
            for logical_id, topic_arn in sorted(topics):
                arguments = {"TopicArn": topic_arn}
                while True:  # pages by hand, as _resources does
                    page = sns.list_subscriptions_by_topic(**arguments)
                    pending += [
                        (logical_id, s.get("Endpoint", "?"))
                        for s in page.get("Subscriptions", [])
                        if s.get("SubscriptionArn") == "PendingConfirmation" and s.get("Protocol") in EMAIL_PROTOCOLS
                    ]
                    if not page.get("NextToken"):
                        break
                    arguments["NextToken"] = page["NextToken"]
        except Exception as exc:
            reason = explain(exc)
            if reason is None:
                raise  # a bug, not an answer
            self.err.print(
                f"{stack_name}: could not check whether the alert e-mail subscriptions are confirmed: {reason}; "
                "an unconfirmed one receives nothing, see the topic's subscriptions in the SNS console",
                markup=False,
            )
            return
        for logical_id, endpoint in pending:
            self.err.print(
                f"{stack_name}: {endpoint} has not confirmed the subscription to {logical_id}: no alert reaches "
                "that address until its owner opens the link in the 'AWS Notification - Subscription Confirmation' "
                "e-mail",
                markup=False,
            )

    def finish_unchanged(self, staged: Staged) -> dict[str, str]:
        """A deploy with nothing to do: the outputs file still says what the stack's outputs are."""
        deployed, request = staged.deployed, staged.request
        if deployed is None:
            return staged.outputs

        def write() -> None:
            self._write_outputs(request, staged.stack_name, deployed.stack_id, staged.outputs, staged.prepared.template)

        fix = f"run 'cfnbuild outputs --env {request.environment}'"
        self._follow_ups(
            staged.stack_name,
            staged.outputs,
            [("the outputs file", fix, write)],
            stack_id=deployed.stack_id,
            template=staged.prepared.template,
        )
        return staged.outputs

    def _write_outputs(
        self, request: Request, stack_name: str, stack_id: str, outputs: Mapping[str, str], template: Mapping[str, Any]
    ) -> None:
        name = self.outputs_name.format(stack=request.stack, region=self.aws.target.region)
        path = self.project.output_dir / request.environment / name
        declared = set(template.get("Outputs", {}))
        missing = sorted(declared - set(outputs))
        document = {
            "StackName": stack_name,
            "StackId": stack_id,
            "Region": self.aws.target.region,
            "Outputs": dict(sorted(outputs.items())),
        }
        if missing:
            document["NotReturned"] = missing
        write_atomic(path, json.dumps(document, indent=2, sort_keys=True) + "\n")
        self.err.print(f"wrote {path.relative_to(self.project.root)} ({len(outputs)} outputs)", markup=False)
        if missing:
            who = "the emulator" if self.aws.target.local else "CloudFormation"
            absent = ", ".join(missing)
            self.err.print(
                f"{who} returned {len(outputs)} of {len(declared)} declared outputs; not: {absent}", markup=False
            )


def _subscribes_email(template: Mapping[str, Any]) -> bool:
    """Whether the template subscribes an e-mail address to a topic (a Subscription resource or a topic's own)."""
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::SNS::Subscription" and properties.get("Protocol") in EMAIL_PROTOCOLS:
            return True
        own = properties.get("Subscription") or [] if resource.get("Type") == "AWS::SNS::Topic" else []
        if any(isinstance(s, Mapping) and s.get("Protocol") in EMAIL_PROTOCOLS for s in own):
            return True
    return False


def _already_exists(exc: ClientError) -> bool:
    """CreateChangeSet's answer when the stack a CREATE change set would make exists already."""
    return error_code(exc) == "AlreadyExistsException" or (
        error_code(exc) == "ValidationError" and "already exists" in error_message(exc)
    )


def _fingerprint(template: Mapping[str, Any] | None, deployed: DeployedStack | None) -> str | None:
    """A hash of what is deployed: template, parameters and tags."""
    if deployed is None:
        return None
    state = {"template": template, "parameters": deployed.parameters, "tags": deployed.tags}
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()


def _check_parameter(name: str, definition: Mapping[str, Any], value: str, where: str) -> None:
    """Reject a value the parameter's own constraints would reject, before AWS is asked."""
    allowed = definition.get("AllowedValues")
    if allowed and value not in [str(v) for v in allowed]:
        raise UsageError(f"{where}: {value!r} is not allowed for {name}; use one of {', '.join(map(str, allowed))}")
    pattern = definition.get("AllowedPattern")
    if pattern and not re.fullmatch(pattern, value):
        raise UsageError(f"{where}: {value!r} does not match {name}'s pattern {pattern}")
    if definition.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise UsageError(f"{where}: {name} is a Number; {value!r} is not") from None
        low, high = definition.get("MinValue"), definition.get("MaxValue")
        if (low is not None and number < float(low)) or (high is not None and number > float(high)):
            raise UsageError(f"{where}: {name} must be between {low} and {high}; got {value}")
    if "MinLength" in definition and len(value) < int(definition["MinLength"]):
        raise UsageError(f"{where}: {name} must be at least {definition['MinLength']} characters")
    if "MaxLength" in definition and len(value) > int(definition["MaxLength"]):
        raise UsageError(f"{where}: {name} must be at most {definition['MaxLength']} characters")


def outputs_path(project: Project, environment: str, stack: str) -> Path:
    """Where ``deploy`` and ``outputs`` write a stack's outputs."""
    return project.output_dir / environment / f"{stack}.outputs.json"
