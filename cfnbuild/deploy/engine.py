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
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from cfnbuild.build.references import template_inputs
from cfnbuild.build.tags import standard_tags
from cfnbuild.deploy import artifacts, changeset
from cfnbuild.deploy.aws import error_code, error_message, refused
from cfnbuild.deploy.base import CACHE_DIR, EngineBase
from cfnbuild.deploy.checks import FAILED_CREATE_STATES, StackChecks
from cfnbuild.deploy.ending import Ending
from cfnbuild.deploy.events import AFTER_REVIEW, Outcome, known_fix, watch
from cfnbuild.deploy.exports import refuse_imported, removed_exports, with_importers
from cfnbuild.deploy.followups import EMAIL_PROTOCOLS, FollowUps, live_outputs, outputs_path
from cfnbuild.deploy.model import (
    DeployedStack,
    DeployFailed,
    FollowUp,
    FollowUpFailed,
    Interrupted,
    Prepared,
    Refused,
    Request,
    StackBusy,
    Staged,
)
from cfnbuild.deploy.parameters import ParameterSteps, check_parameter
from cfnbuild.deploy.plan import Plan, build_plan, load_plan, render_text
from cfnbuild.deploy.policy import policy_body, same_policy, stack_policy
from cfnbuild.deploy.staging import template_argument
from cfnbuild.errors import CfnbuildError
from cfnbuild.files import read_json_text
from cfnbuild.project.writer import check_current

_check_parameter = check_parameter  # the name callers outside the engine used before the split

__all__ = [
    "CACHE_DIR",
    "EMAIL_PROTOCOLS",
    "FAILED_CREATE_STATES",
    "SUCCESS",
    "DeployFailed",
    "DeployedStack",
    "Engine",
    "EngineBase",
    "FollowUp",
    "FollowUpFailed",
    "Interrupted",
    "Prepared",
    "Refused",
    "Request",
    "StackBusy",
    "Staged",
    "check_parameter",
    "outputs_path",
]

SUCCESS = {"CREATE": frozenset({"CREATE_COMPLETE"}), "UPDATE": frozenset({"UPDATE_COMPLETE"})}


class Engine(FollowUps, ParameterSteps, StackChecks):
    """Plans and deploys the stacks of one project to one target.

    Its settings and reads of the deployed stack are :class:`~.base.EngineBase`; the checks before a
    change set are :class:`~.checks.StackChecks`, the parameters :class:`~.parameters.ParameterSteps`, the
    steps after an operation :class:`~.followups.FollowUps`. This class plans, stages and executes.
    """

    # ----------------------------------------------------------------- reading state

    # ----------------------------------------------------------------- preparing

    def prepare(self, request: Request, deployed: DeployedStack | None) -> Prepared:
        """Read the written template (refusing a stale one) and resolve everything sent with it."""
        project, env = self.project, request.environment
        view = project.deploy_view(env)
        config = view.settings
        path = project.template_path(env, request.stack)
        rel = path.relative_to(project.root)
        text, template = read_json_text(path, root=project.root, environment=env)
        if view.record is None or not view.record.vouches_for(request.stack, text):
            check_current(project, env, request.stack, lambda text: self.err.print(text, markup=False))
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
        plan = self._with_removed_exports(plan, deployed, prepared)
        if created is not None and not keep:
            self.discard(created, created_stack=deployed is None)
        return plan, created

    def _with_removed_exports(self, plan: Plan, deployed: DeployedStack | None, prepared: Prepared) -> Plan:
        """``plan`` with the exports the update removes and who imports each (ListImports, asked now)."""
        removed = removed_exports(deployed.exports, prepared.template, plan.stack_name) if deployed else []
        found = with_importers(self.cloudformation, removed, local=self.aws.target.local) if removed else ()
        return replace(plan, removed_exports=found)

    def discard(self, created: changeset.ChangeSet, *, created_stack: bool) -> None:
        """Delete a change set we made (and the empty stack a CREATE change set brought)."""
        changeset.delete_quietly(self.cloudformation, created.id)
        if created_stack:
            self.cloudformation.delete_stack(StackName=created.stack_id)

    def undo(self, created: changeset.ChangeSet, *, created_stack: bool) -> str:
        """Remove what this run made for a change set that will not run; say what was done."""
        return changeset.undo(self.cloudformation, created.id, created.stack_id if created_stack else None)

    def _template_argument(self, body: str) -> dict[str, str]:
        return template_argument(self.aws, body, lambda line: self.err.print(line, markup=False))

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
        self.ended, self.outputs_written = None, None
        stack_name = self.stack_name(request)
        deployed = self._usable_stack(request, stack_name)
        prepared = self.prepare(request, deployed)
        self._refuse_waiting(request, stack_name)
        if deployed is not None and request.plan_file is None and self._unchanged(stack_name, deployed, prepared):
            self.out.print(f"{stack_name}: no changes (template, parameters, tags and policies as deployed)")
            self.ended = Ending(stack_name, "unchanged", {})
            return Staged(request, stack_name, deployed, prepared, None, None, deployed.outputs)
        if request.plan_file is not None:
            plan, created = self._saved_plan(request.plan_file, stack_name, deployed, prepared)
            plan = self._with_removed_exports(plan, deployed, prepared)  # who imports them now, not then
        else:
            plan, created = self._plan(request, stack_name, deployed, prepared, keep=True)
            render_text(plan, self.out)
        if created is None:
            self._settle_protection(stack_name, deployed, prepared)
            self.out.print(f"{stack_name}: no changes")
            self.ended = Ending(stack_name, "unchanged", {})
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
        plan = load_plan(plan_file, stack_name)
        where = str(plan_file)
        if plan.stack_name != stack_name:
            raise Refused(f"{where} is a plan for {plan.stack_name}, not {stack_name}")
        if plan.template_hash != prepared.template_hash:
            raise Refused(f"{where} was made from another template; run 'cfnbuild plan' again")
        now = deployed.last_updated if deployed else None
        fingerprint = _fingerprint(self.deployed_template(stack_name) if deployed else None, deployed)
        if plan.stack_last_updated != now or plan.stack_fingerprint != fingerprint:
            raise Refused(f"{where} is stale: {stack_name} changed since the plan was made; run 'cfnbuild plan' again")
        for parameter, used in template_inputs(prepared.template).items():  # what its upstreams give now
            planned, given = plan.parameter_values.get(parameter), prepared.parameters.get(parameter)
            if planned != given:
                raise Refused(
                    f"{where} is stale: {stack_name} takes {parameter} from stack {used.stack}, which gives "
                    f"{given!r} now, not {planned!r} as planned; run 'cfnbuild plan' again"
                )
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
        refuse_imported(plan)
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
        started = time.monotonic()
        try:
            if relaxed:
                allowed = stack_policy(prepared.template, allow=request.allow_replace)
                self.cloudformation.set_stack_policy(StackName=created.stack_id, StackPolicyBody=policy_body(allowed))
            # A stack this change set created has seen nothing but its REVIEW_IN_PROGRESS: no need to ask.
            since = AFTER_REVIEW if deployed is None else self._last_event_id(created.stack_id)
            token = f"cfnbuild-{uuid.uuid4()}"
            pending = self._upload_ready_artifacts(
                created.stack_id,
                prepared,
                # A new stack's own buckets exist only once it runs; another stack's bucket exists already.
                only=None if deployed else [a for a in prepared.artifacts if a.bucket_parameter],
            )
            pending += [a for a in prepared.artifacts if not deployed and not a.bucket_parameter]
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
        outputs = self._finish_execute(
            request=request,
            stack_name=stack_name,
            deployed=deployed,
            prepared=prepared,
            created=created,
            outcome=outcome,
            reporter=reporter,
        )
        seconds = time.monotonic() - started
        self.ended = Ending(stack_name, "created" if deployed is None else "updated", plan.counts(), seconds)
        return outputs

    def _finish_execute(
        self,
        *,
        request: Request,
        stack_name: str,
        deployed: DeployedStack | None,
        prepared: Prepared,
        created: changeset.ChangeSet,
        outcome: Outcome,
        reporter: artifacts.UploadOnBucketReady,
    ) -> dict[str, str]:
        """After the watch: the root cause of a failure, or the late uploads and the follow-up steps."""
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
                lambda: self._write_outputs(
                    request,
                    stack_name,
                    created.stack_id,
                    outputs,
                    live_outputs(prepared.template, after.parameters if after else {}, created.stack_id, stack_name),
                ),
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
        physical = self._physical_ids(stack_id) if any(not a.bucket_parameter for a in wanted) else {}
        for artifact in wanted:
            # A bucket of another stack: its name came in as a parameter (that stack is deployed first).
            bucket = prepared.parameters.get(artifact.bucket_parameter) if artifact.bucket_parameter else None
            bucket = bucket or physical.get(artifact.bucket)
            if not bucket:
                waiting.append(artifact)
                continue
            if artifacts.upload(self.aws.client("s3"), bucket, artifact, new_bucket=new_bucket):
                self.err.print(f"uploaded {artifact.parameter} to s3://{bucket}/{artifact.key}", markup=False)
        return waiting


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
