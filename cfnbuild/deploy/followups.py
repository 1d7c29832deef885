"""The steps after a finished stack operation, each failing on its own line.

Stack policy, termination protection, pending e-mail subscriptions and the outputs file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from cfnbuild.build.stateful import stateful_resources
from cfnbuild.deploy.aws import error_code, explain, is_not_implemented
from cfnbuild.deploy.base import EngineBase
from cfnbuild.deploy.model import (
    DeployedStack,
    FollowUp,
    FollowUpFailed,
    Prepared,
    Request,
    Staged,
)
from cfnbuild.deploy.plan.evaluate import condition_truths, pseudo_parameters, resource_exists
from cfnbuild.deploy.policy import policy_body, same_policy
from cfnbuild.errors import CfnbuildError
from cfnbuild.files import write_atomic
from cfnbuild.project.app import Project

# SNS protocols whose subscriptions a person confirms from a mail (the alert addresses).
EMAIL_PROTOCOLS = frozenset({"email", "email-json"})


class FollowUps(EngineBase):
    """What follows a create or an update, each step failing on its own line (exit 3)."""

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
        except (ClientError, ResponseParserError) as exc:
            # moto lacks UpdateTerminationProtection and answers it with an HTML error page, which
            # botocore cannot parse (ResponseParserError); another emulator may say NotImplemented.
            lacking = isinstance(exc, ClientError) and is_not_implemented(exc)
            if not (self.aws.target.local or lacking):
                raise
            code = error_code(exc) if isinstance(exc, ClientError) else "an error page"
            who = "the emulator" if self.aws.target.local else f"the endpoint ({code})"
            self.err.print(
                f"termination protection: {who} has no UpdateTerminationProtection; on AWS it is turned "
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
            template = live_outputs(staged.prepared.template, deployed.parameters, deployed.stack_id, staged.stack_name)
            self._write_outputs(request, staged.stack_name, deployed.stack_id, staged.outputs, template)

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
        self.outputs_written = path.relative_to(self.project.root)
        self.err.print(f"wrote {path.relative_to(self.project.root)} ({len(outputs)} outputs)", markup=False)
        if missing:
            # One line with the count; the names with --verbose (they are in the file's NotReturned too).
            target = self.aws.target
            who = "the emulator" if target.local else "the endpoint" if target.endpoint_url else "CloudFormation"
            names = f": {', '.join(missing)}" if request.verbose else " (--verbose names them)"
            returned = f"{who} returned {len(outputs)} of {len(declared)} declared outputs"
            self.err.print(f"{returned}; {len(missing)} not returned{names}", markup=False, soft_wrap=True)


def live_outputs(
    template: Mapping[str, Any], parameters: Mapping[str, str], stack_id: str, stack_name: str
) -> dict[str, Any]:
    """``template`` less the outputs whose Condition the stack's ``parameters`` make false.

    CloudFormation returns such an output nowhere (the budget's name outside the budget's
    region), so it is not one the stack failed to return; an undecided condition keeps it.
    """
    declared = template.get("Parameters") or {}
    defaults = {name: str(spec["Default"]) for name, spec in declared.items() if "Default" in spec}
    truths = condition_truths(template, {**defaults, **parameters, **pseudo_parameters(stack_id, stack_name)})
    outputs = template.get("Outputs") or {}
    return {
        **template,
        "Outputs": {name: output for name, output in outputs.items() if resource_exists(output, truths) is not False},
    }


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


def outputs_path(project: Project, environment: str, stack: str) -> Path:
    """Where ``deploy`` and ``outputs`` write a stack's outputs."""
    return project.output_dir / environment / f"{stack}.outputs.json"
