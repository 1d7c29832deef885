"""The names a project's stacks are deployed under; shared by the config model and the deploy view."""

from __future__ import annotations


def deployed_stack_name(stack: str, environment: str, suffix: str) -> str:
    """The name a stack is deployed under: ``<stack>-<env>[-<suffix>]``."""
    return f"{stack}-{environment}-{suffix}" if suffix else f"{stack}-{environment}"
