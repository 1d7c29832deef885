"""Termination protection after a deploy: an endpoint without the API is one line; a refusal is not hidden.

The embedded emulator's own answer (an HTML error page) is proved by the flagship's prod deploy in
tests/cfnbuild/local/test_environments.py; here botocore's Stubber plays another endpoint.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from rich.console import Console

from cfnbuild.deploy.aws import Aws, Target
from cfnbuild.deploy.engine import Engine
from cfnbuild.deploy.model import DeployedStack, Prepared
from cfnbuild.project.app import load_project

ROOT = Path(__file__).resolve().parents[3]
STACK_ID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/webapp-prod/1"


def _engine(monkeypatch: pytest.MonkeyPatch) -> tuple[Engine, Stubber]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws = Aws(Target("webapp-prod", "eu-west-1", endpoint_url="http://localhost:4566"))
    engine = Engine(load_project(ROOT), aws, Console(record=True, width=300), Console(record=True, width=300))
    return engine, Stubber(aws.cloudformation)


def _deployed() -> DeployedStack:
    return DeployedStack(STACK_ID, "webapp-prod", "CREATE_COMPLETE", {}, {}, {}, "", termination_protection=False)


def _prepared() -> Prepared:
    return Prepared({}, "", "", {}, frozenset(), {}, [], termination_protection=True, policy=None)


def test_an_endpoint_without_update_termination_protection_is_one_line_saying_what_aws_would_do(monkeypatch):
    engine, stubber = _engine(monkeypatch)
    stubber.add_client_error("update_termination_protection", "NotImplemented", "not yet emulated", 501)
    with stubber:
        engine._set_protection(_deployed(), _prepared())
    said = engine.err.export_text().strip()
    assert said == (
        "termination protection: the endpoint (NotImplemented) has no UpdateTerminationProtection; on AWS it is "
        "turned on"
    )


def test_a_refused_update_termination_protection_is_raised_not_hidden(monkeypatch):
    engine, stubber = _engine(monkeypatch)
    stubber.add_client_error("update_termination_protection", "AccessDenied", "not allowed", 403)
    with stubber, pytest.raises(ClientError, match="AccessDenied"):
        engine._set_protection(_deployed(), _prepared())
    assert engine.err.export_text() == ""
