"""How tests that need a real server behave when it is missing.

On a laptop without the server the test is skipped with the reason; in CI (the ``CI``
environment variable is set) a missing server is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    """Whether the tests run in CI, where every server must be present."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def missing_server(reason: str) -> None:
    """Skip the calling test with ``reason``, or fail it in CI.

    The reason names the server and how to get it, e.g.
    ``"nginx not found on PATH: apt-get install nginx"``.
    """
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so a missing server is a failure, not a skip)")
    pytest.skip(reason)


def require_executable(name: str, install_hint: str) -> str:
    """Return the path of executable ``name``, or skip/fail the test as :func:`missing_server`."""
    path = shutil.which(name) or next(
        (p for d in ("/usr/sbin", "/sbin") if os.path.exists(p := os.path.join(d, name))), None
    )
    if path is None:
        missing_server(f"{name} not found on PATH: {install_hint}")
    assert path is not None
    return path
