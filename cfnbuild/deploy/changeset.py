"""Change sets: create one, wait for it with our own loop, read it whole, clean it up.

"The submitted information didn't contain changes" is a normal outcome on AWS (and in the
emulator): the change set is deleted and the answer is "nothing to do". The emulator may say "No
updates are to be performed" to CreateChangeSet itself (an unchanged stack with parameters): the
same answer, with no change set to delete. Any other failure keeps
the change set for inspection and raises :class:`ChangeSetFailed` with AWS's reason.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from cfnbuild.deploy.aws import error_code, error_message
from cfnbuild.deploy.events import PollSettings
from cfnbuild.errors import CfnbuildError

NO_CHANGES = ("didn't contain changes", "No updates are to be performed")


class ChangeSetFailed(CfnbuildError):
    """CloudFormation could not make the change set; it is kept so it can be inspected."""


def arn_name(arn: str) -> str:
    """The name inside a stack or change-set ARN (``…:stack/NAME/UUID``); the text itself when it is none."""
    parts = arn.split("/")
    return parts[-2] if len(parts) >= 3 else arn


@dataclass(frozen=True)
class ChangeSet:
    """A created change set, described whole (all pages, property values included)."""

    id: str
    stack_id: str
    description: dict[str, Any]

    @property
    def name(self) -> str:
        """The change set's name (its ARN is ``…:changeSet/NAME/UUID``)."""
        return str(self.description.get("ChangeSetName") or arn_name(self.id))

    @property
    def has_changes(self) -> bool:
        """Whether CloudFormation found anything to do."""
        return bool(self.description.get("Changes"))


def create(
    cloudformation: Any,
    *,
    stack_name: str,
    name: str,
    change_set_type: str,
    template: dict[str, str],
    parameters: list[dict[str, Any]],
    tags: dict[str, str],
    capabilities: list[str],
    client_token: str,
    poll: PollSettings,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> ChangeSet | None:
    """Create a change set and wait until it is ready; ``None`` when there is nothing to change.

    ``template`` is ``{"TemplateBody": ...}`` or ``{"TemplateURL": ...}``.
    """
    try:
        response = cloudformation.create_change_set(
            StackName=stack_name,
            ChangeSetName=name,
            ChangeSetType=change_set_type,
            Parameters=parameters,
            Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
            Capabilities=capabilities,
            ClientToken=client_token,
            Description="cfnbuild",
            **template,
        )
    except ClientError as exc:
        # The emulator answers an unchanged stack that has parameters at once, with no change set made.
        if error_code(exc) == "ValidationError" and any(marker in error_message(exc) for marker in NO_CHANGES):
            return None
        raise
    change_set_id, stack_id = response["Id"], response["StackId"]
    made_stack = stack_id if change_set_type == "CREATE" else None
    try:
        description = wait(cloudformation, change_set_id, poll=poll, sleep=sleep, rng=rng)
    except ChangeSetFailed as exc:
        raise ChangeSetFailed(f"{exc}; {undo(cloudformation, change_set_id, made_stack)}") from None
    except BaseException as exc:
        exc.add_note(undo(cloudformation, change_set_id, made_stack))
        raise
    if description is None:
        cloudformation.delete_change_set(ChangeSetName=change_set_id)
        if made_stack is not None:  # the "no changes" answer to a CREATE: nothing to create
            cloudformation.delete_stack(StackName=made_stack)
        return None
    return ChangeSet(change_set_id, stack_id, description)


def wait(
    cloudformation: Any,
    change_set_id: str,
    *,
    poll: PollSettings,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> dict[str, Any] | None:
    """Poll until the change set is ready; its whole description, or ``None`` for "no changes"."""
    jitter = rng or random.Random()  # noqa: S311  (jitter, not security)
    deadline = time.monotonic() + poll.timeout_seconds
    while True:
        description = describe(cloudformation, change_set_id)
        status = description.get("Status", "")
        if status == "CREATE_COMPLETE":
            return description
        if status == "FAILED":
            reason = description.get("StatusReason", "")
            if any(marker in reason for marker in NO_CHANGES):
                return None
            name = description.get("ChangeSetName")
            raise ChangeSetFailed(f"CloudFormation could not create change set {name}: {reason}")
        if time.monotonic() > deadline:
            raise ChangeSetFailed(f"change set {change_set_id} still {status} after {poll.timeout_seconds:.0f}s")
        sleep(jitter.uniform(poll.min_seconds, poll.max_seconds))


def describe(cloudformation: Any, change_set_id: str) -> dict[str, Any]:
    """DescribeChangeSet with property values, every page's Changes joined."""
    kwargs: dict[str, Any] = {"ChangeSetName": change_set_id, "IncludePropertyValues": True}
    pages: list[dict[str, Any]] = []
    while True:
        page = cloudformation.describe_change_set(**kwargs)
        pages.append(page)
        token = page.get("NextToken")
        if not token:
            break
        kwargs["NextToken"] = token
    description = dict(pages[0])
    description["Changes"] = [change for page in pages for change in page.get("Changes", [])]
    description.pop("NextToken", None)
    return description


def delete_quietly(cloudformation: Any, change_set_id: str) -> None:
    """Delete a change set we made; one that is already gone is fine."""
    try:
        cloudformation.delete_change_set(ChangeSetName=change_set_id)
    except ClientError as exc:
        code = error_code(exc)
        if code == "ChangeSetNotFound" or (code == "ValidationError" and "does not exist" in error_message(exc)):
            return
        raise


def undo(cloudformation: Any, change_set_id: str, made_stack: str | None) -> str:
    """Delete a change set this run made, and the empty stack a CREATE change set brought; say so.

    Returns the sentence for the error line: what was removed, or what could not be and how to
    remove it by hand. Never raises: it runs while another error is on its way to the user.
    """
    name = arn_name(change_set_id)
    try:
        delete_quietly(cloudformation, change_set_id)
    except Exception as exc:  # the error on its way matters more; say how to finish by hand
        return (
            f"could not remove change set {name} ({type(exc).__name__}); remove it with: aws cloudformation "
            f"delete-change-set --change-set-name {change_set_id}"
        )
    if made_stack is None:
        return f"removed change set {name}; the stack is as it was"
    stack = arn_name(made_stack)
    try:
        cloudformation.delete_stack(StackName=made_stack)
    except Exception as exc:  # as above
        return (
            f"removed change set {name}, but not the empty stack {stack} ({type(exc).__name__}); remove it with: "
            f"aws cloudformation delete-stack --stack-name {made_stack}"
        )
    return f"removed change set {name} and the empty stack {stack} this run made"
