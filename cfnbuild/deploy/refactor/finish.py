"""After the refactor: the project's own templates, deployed through the deploy engine, consumers first.

The refactor left each stack with the deployed definitions and the refactor's exports and
imports. Deploying the project's templates in REVERSE graph order removes them safely: a stack
that imports first takes the value as its ``stack.use`` parameter (its upstream already returns
that output, :mod:`.templates` carried it) and drops the import; then the upstream drops the
export no one imports any more (an export that is imported cannot be removed:
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference-importvalue.html).
Each is an ordinary deploy: its plan is shown, a replacement or removal of a stateful resource is
refused, and the stack gets its stack policy and termination protection from the config.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.console import Console

from cfnbuild.deploy.aws import expected_error
from cfnbuild.deploy.engine import Engine, Request
from cfnbuild.errors import CfnbuildError


class FinishFailed(CfnbuildError):
    """The resources moved, but a deploy after the refactor did not finish; the line says how to go on."""


def finish(
    make_engine: Callable[[str], Engine], environment: str, stacks: Sequence[str], out: Console, command: str
) -> None:
    """Deploy each of ``stacks`` (already in reverse graph order) with the project's template."""
    for stack in stacks:
        out.rule(f"finishing: {stack} with the project's template")
        engine = make_engine(stack)
        try:
            engine.deploy(Request(environment, stack, yes=True, wait=True))
        except Exception as exc:
            said = expected_error(exc)
            left = ", ".join(stacks[stacks.index(stack) :])
            raise FinishFailed(
                f"the resources are in their new stacks, but the deploy of {stack} with the project's template failed: "
                f"{said}; fix that and run '{command}' again (it finishes {left})"
            ) from exc
