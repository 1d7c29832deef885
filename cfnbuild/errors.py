"""The errors cfnbuild expects, each with the exit code the CLI turns it into.

An expected error is printed as one line on stderr (``--debug`` shows the traceback); anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


class CfnbuildError(Exception):
    """An expected failure: the message says what went wrong and what to do about it."""

    exit_code = 1


class UsageError(CfnbuildError):
    """Bad input from the user: configuration, arguments, blueprint inputs (exit code 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration file is invalid: one line per problem, naming the file, the key and the fix."""

    def __init__(self, path: str, problems: list[tuple[str, str, str]]) -> None:
        self.path = path
        self.problems = problems  # (key, problem, fix)
        lines = [
            f"{path}: {key}: {problem}; {fix}" if key else f"{path}: {problem}; {fix}" for key, problem, fix in problems
        ]
        super().__init__("\n".join(lines))


class InputError(UsageError):
    """A blueprint was given inputs it cannot build; the message says what to change."""


class LogicalIdClash(UsageError):
    """Two parts of a stack tried to use the same logical ID."""


class CheckFailed(CfnbuildError):
    """A gate did not pass: lint matches, security findings or stale generated files."""


class WriteFailed(CfnbuildError):
    """A file could not be written: the message names the path, the operating system's reason and the fix.

    ``reason`` is that reason alone, for a caller that goes on without the file (a cache) to say.
    """

    def __init__(self, message: str, *, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(message)


class ReadFailed(UsageError):
    """A file cfnbuild wrote (a template) is missing, unreadable or damaged; the message says to build it again."""
