"""Every command that can reach AWS, against every kind of fault at the boundary: one line, the right exit.

Each case runs the real CLI in its own process, as a user would, against the tests' fault proxy
(tests/faultproxy.py) scripted to answer *every* call with one kind of fault — HTTP 500,
AccessDenied, throttling past the retry budget, an answer that is not AWS's — or with no
credentials in the environment, or against an endpoint nothing listens on. Nothing reaches a
real AWS endpoint: the proxy forwards nothing, botocore's instance-metadata lookup is off, and
no shared config or credentials file is read.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cfnbuild.build.stateful import stateful_resources
from tests.conftest import ROOT
from tests.faultproxy import ANY, EVERY, Fault, FaultProxy
from tests.inprocess import build_here

ACCOUNT = "111111111111"
# Every CLI command that calls AWS, with the options it needs to get that far (the commands of one stack name
# one of the flagship's three; plan, deploy, status, outputs and delete take them all).
ONE = ["--stack", "webapp"]
COMMANDS: dict[str, list[str]] = {
    "plan": ["plan"],
    "deploy": ["deploy", "--yes"],
    "deploy --regions": ["deploy", "--yes", "--regions", "eu-west-1", *ONE],
    "status": ["status"],
    "outputs": ["outputs"],
    "delete": ["delete", "--yes"],
    "drift": ["drift", *ONE],
    "recover": ["recover", "--yes", *ONE],
    "stackset plan": ["stackset", "plan", "--accounts", ACCOUNT, "--regions", "eu-west-1", *ONE],
    "stackset deploy": ["stackset", "deploy", "--yes", "--accounts", ACCOUNT, "--regions", "eu-west-1", *ONE],
    "export --upload": ["export", "--service-catalog", "--upload", "--yes"],
}
# Commands whose exit code 2 means "changes": every error is 1 there.
PLANS = frozenset({"plan", "stackset plan"})
# The fault, the words the one error line must hold, and the exit code (for commands other than plans).
FAULTS: dict[str, tuple[str, int]] = {
    "no credentials": ("no AWS credentials found; set AWS_PROFILE (or pass --profile)", 2),
    "unreachable": ("(Connection refused) in 4 attempts; check --endpoint-url", 1),
    "http 500": ("InternalFailure: injected by the fault proxy; the service failed 4 times in a row", 1),
    "access denied": ("AccessDenied: User: arn:aws:iam::123456789012:user/ci is not authorized to perform", 1),
    "throttling": ("Throttling: Rate exceeded; still throttled after 4 attempts", 1),
    "not aws": ("does not speak this API: its answer is not an AWS response; check --endpoint-url", 1),
}
KIND = {"http 500": "500", "access denied": "denied", "throttling": "throttle", "not aws": "garbage"}
SECONDS = 20


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A project with the dev template built (what every command reads first) and the app's sources."""
    root = tmp_path_factory.mktemp("boundary")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")  # the app artifact's metadata too
    shutil.copytree(ROOT / "config", root / "config")
    shutil.copytree(ROOT / "flask_app", root / "flask_app", ignore=shutil.ignore_patterns("__pycache__"))
    build_here(root, "--env", "dev")
    return root


@pytest.fixture(scope="module")
def proxy():
    """The fault proxy; its upstream is a closed port, since no fault kind here forwards anything."""
    with FaultProxy(f"http://127.0.0.1:{_closed_port()}") as running:
        yield running


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # free now, and nothing listens on it once closed


def _environment(tmp_path: Path, *, credentials: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_EC2_METADATA_DISABLED="true",  # no instance-metadata lookup: it would leave loopback
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),  # the stack locks
        COLUMNS="400",  # one error line stays one line
    )
    if credentials:
        env.update(AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="secret-example")  # noqa: S106  (fake)
    return env


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_answers_every_fault_with_one_line_and_its_exit_code(built, proxy, tmp_path, command, fault):
    words, code = FAULTS[fault]
    if command in PLANS:
        code = 1
    if fault == "unreachable":
        endpoint = f"http://127.0.0.1:{_closed_port()}"
    else:
        endpoint = proxy.endpoint_url
        proxy.arm([Fault(ANY, KIND[fault], on=EVERY)] if fault in KIND else [])  # type: ignore[arg-type]
    project = tmp_path / "project"
    shutil.copytree(built, project)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "cfnbuild", "--project", str(project), *COMMANDS[command], "--endpoint-url", endpoint],
        capture_output=True,
        text=True,
        env=_environment(tmp_path, credentials=fault != "no credentials"),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    took = time.monotonic() - started
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(errors) == 1, result.stderr
    assert words in errors[0], errors[0]
    assert result.returncode == code, result.stderr
    assert took < SECONDS, f"{command} took {took:.1f}s to answer {fault}"
    if fault in KIND:
        assert proxy.injected_kinds(), "the command never reached the endpoint"


def _run(project: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cfnbuild", "--project", str(project), *args],
        capture_output=True,
        text=True,
        env=_environment(tmp_path, credentials=True),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["deploy", "--region", "eu-west-2"],
            "error: --region: eu-west-2 not in config/dev.toml regions (eu-west-1), the regions the template is "
            "linted for; add it there, run 'cfnbuild build', and deploy again",
        ),
        (
            ["deploy", "--region", "eu-wset-1"],
            "error: --region eu-wset-1: not an AWS region; did you mean eu-west-1?",
        ),
        (
            ["deploy", "--regions", "eu-west-1,eu-central-1", *ONE],
            "error: --regions: eu-central-1 not in config/dev.toml regions (eu-west-1), the regions the template is "
            "linted for; add it there, run 'cfnbuild build', and deploy again",
        ),
        (
            ["deploy", "--allow-replace", "NoSuchResource", "--stack", "data"],
            "error: --allow-replace NoSuchResource: not a stateful resource of output/dev/data.json; it has: "
            + ", ".join(sorted(stateful_resources(json.loads((ROOT / "output/dev/data.json").read_text())))),
        ),
        (
            ["deploy", "--max-parallel", "3", *ONE],
            "error: --max-parallel applies to a deploy to several regions; give --regions R1,R2 with it",
        ),
        (
            ["deploy", "--continue-on-error"],
            "error: --continue-on-error applies to a deploy to several regions; give --regions R1,R2 with it",
        ),
        (
            ["status", "--endpoint-url", "not-a-url"],
            "error: --endpoint-url 'not-a-url' is not a URL; give one like http://localhost:4566",
        ),
    ],
    ids=["region not linted", "region misspelt", "regions not linted", "allow-replace", "max-parallel", "continue",
         "endpoint-url"],
)  # fmt: skip
def test_a_bad_target_flag_is_refused_before_any_aws_call(built, proxy, tmp_path, args, line):
    proxy.arm([])
    if "--endpoint-url" not in args:
        args = [*args, "--endpoint-url", proxy.endpoint_url]
    result = _run(built, tmp_path, *args)
    said = result.stderr.strip().splitlines()
    # With --stack, a note on the stack's place in the graph may come first; the refusal is the one error line.
    assert said[-1:] == [line]
    assert [text for text in said[:-1] if "stack" not in text or text.startswith("error:")] == [], said
    assert result.returncode == 2
    assert proxy.counts() == {}  # nothing reached the endpoint


def test_a_region_that_is_not_linted_is_refused_under_local_before_the_emulator_starts(built, tmp_path):
    result = _run(built, tmp_path, "deploy", "--local", "--region", "mars-1")
    assert result.stderr.strip().splitlines() == [
        "error: --region mars-1: not an AWS region; write region codes like eu-west-1"
    ]
    assert result.returncode == 2


def test_debug_shows_the_traceback_and_keeps_the_exit_code(built, proxy, tmp_path):
    proxy.arm([Fault(ANY, "denied", on=EVERY)])
    result = _run(built, tmp_path, "--debug", "status", "--endpoint-url", proxy.endpoint_url)
    assert "Traceback (most recent call last)" in result.stderr
    assert "botocore.exceptions.ClientError: An error occurred (AccessDenied)" in result.stderr
    assert result.returncode == 1
