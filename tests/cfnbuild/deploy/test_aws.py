"""The error model: each class of failure of an AWS call becomes one exact line and its exit code.

AWS's error answers are scripted with botocore's Stubber on a client cfnbuild made (so its call
notes are on the errors, as in a real run); failures raised before any answer come from botocore
itself, with the environment arranged to cause them (no credentials, a closed port, a profile
that does not exist). The emulator cannot answer these on demand, so none is used here.
"""

from __future__ import annotations

import socket

import pytest
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ParamValidationError,
    PartialCredentialsError,
    SSOTokenLoadError,
)
from botocore.stub import Stubber

from cfnbuild.deploy.aws import Aws, AwsError, Call, Target, check_endpoint_url, explain, is_not_implemented, refused
from cfnbuild.errors import UsageError
from cfnbuild.local.emulator import Emulator

STACK = "webapp-dev"
DOING = f"CloudFormation DescribeStacks for {STACK} in eu-west-1"


@pytest.fixture(autouse=True)
def _no_aws_files(monkeypatch, tmp_path):
    for name in (
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_DEFAULT_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookup off loopback
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


def _aws(endpoint_url: str | None = None, *, credentials: bool = True) -> Aws:
    creds = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret"} if credentials else None
    aws = Aws(Target(STACK, "eu-west-1", endpoint_url=endpoint_url))
    if creds:  # as from the environment: the target stays an AWS one, not the emulator
        import boto3

        aws._session = boto3.session.Session(region_name="eu-west-1", **creds)
    return aws


def _answer(code: str, message: str, status: int) -> AwsError:
    """A stubbed error answer. It carries no retry count, so the line names the budget's: 4 attempts."""
    aws = _aws()
    client = aws.cloudformation
    with Stubber(client) as stub:
        stub.add_client_error("describe_stacks", code, message, http_status_code=status)
        with pytest.raises(ClientError) as info:
            client.describe_stacks(StackName=STACK)
    mapped = explain(info.value)
    assert mapped is not None
    return mapped


@pytest.mark.parametrize(
    ("code", "message", "status", "line", "exit_code"),
    [
        pytest.param(
            "ExpiredToken",
            "The security token included in the request is expired",
            400,
            f"{DOING}: ExpiredToken: The security token included in the request is expired; the credentials have "
            "expired; refresh them ('aws sso login', or new temporary ones)",
            2,
            id="expired token",
        ),
        pytest.param(
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
            403,
            f"{DOING}: InvalidClientTokenId: The security token included in the request is invalid.; AWS does not "
            "accept these credentials; check the profile or the AWS_* variables",
            2,
            id="rejected credentials",
        ),
        pytest.param(
            "AccessDenied",
            "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: cloudformation:DescribeStacks",
            403,
            f"{DOING}: AccessDenied: User: arn:aws:iam::123456789012:user/ci is not authorized to perform: "
            "cloudformation:DescribeStacks; the caller may not cloudformation:DescribeStacks; grant it to the role "
            "or user that deploys, or use another profile",
            1,
            id="access denied naming the action",
        ),
        pytest.param(
            "AccessDenied",
            "Access Denied",
            403,
            f"{DOING}: AccessDenied: Access Denied; the caller may not cloudformation:DescribeStacks; grant it to "
            "the role or user that deploys, or use another profile",
            1,
            id="access denied without the action: the call's own",
        ),
        pytest.param(
            "Throttling",
            "Rate exceeded",
            400,
            f"{DOING}: Throttling: Rate exceeded; still throttled after 4 attempts; wait a minute and run again "
            "(something else is calling this API in the account)",
            1,
            id="throttling",
        ),
        pytest.param(
            "InternalFailure",
            "An internal error occurred",
            500,
            f"{DOING}: InternalFailure: An internal error occurred; the service failed 4 times in a row; try again "
            "in a few minutes",
            1,
            id="5xx",
        ),
        pytest.param(
            "ValidationError",
            "Template format error: unsupported structure.",
            400,
            f"{DOING}: ValidationError: Template format error: unsupported structure.",
            1,
            id="validation error",
        ),
        pytest.param(
            "InternalFailure",
            "The DetectStackDrift action has not been implemented",
            500,
            f"{DOING}: InternalFailure: The DetectStackDrift action has not been implemented; the endpoint does not "
            "implement DescribeStacks; run this against AWS",
            1,
            id="an API the endpoint lacks (500 with words)",
        ),
        pytest.param(
            "NotImplemented",
            "",
            501,
            f"{DOING}: NotImplemented; the endpoint does not implement DescribeStacks; run this against AWS",
            1,
            id="an API the endpoint lacks (501)",
        ),
    ],
)
def test_an_aws_error_answer_is_one_line_with_the_fix(code, message, status, line, exit_code):
    mapped = _answer(code, message, status)
    assert str(mapped) == line
    assert mapped.exit_code == exit_code
    assert mapped.call is not None
    assert mapped.call.action == "cloudformation:DescribeStacks"


def test_no_credentials_names_every_way_to_give_them():
    aws = _aws("http://127.0.0.1:9", credentials=False)
    with pytest.raises(BotoCoreError) as info:
        aws.cloudformation.describe_stacks(StackName=STACK)
    mapped = explain(info.value)
    assert mapped is not None
    assert str(mapped) == (
        f"{DOING} at http://127.0.0.1:9: no AWS credentials found; set AWS_PROFILE (or pass --profile), export "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run 'aws sso login' for an SSO profile; --local deploys "
        "to the embedded emulator instead"
    )
    assert mapped.exit_code == 2


def test_an_unreachable_endpoint_is_said_with_the_os_reason_and_each_retry_as_it_happens(monkeypatch):
    from cfnbuild.deploy import aws as aws_module

    monkeypatch.setattr(aws_module, "SAY_RETRIES_AFTER_SECONDS", 0.0)  # say every retry, however short the wait
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    aws = _aws(f"http://127.0.0.1:{port}")
    said: list[str] = []
    aws.say = said.append
    with pytest.raises(BotoCoreError) as info:
        aws.cloudformation.describe_stacks(StackName=STACK)
    mapped = explain(info.value)
    assert str(mapped) == (
        f"{DOING} at http://127.0.0.1:{port}: could not reach http://127.0.0.1:{port} (Connection refused) in 4 "
        "attempts; check --endpoint-url"
    )
    assert mapped is not None
    assert mapped.exit_code == 1
    where = f"http://127.0.0.1:{port}"
    assert said == [f"{where} not answering DescribeStacks (Connection refused); retrying ({n}/4)" for n in (2, 3, 4)]


def test_a_request_botocore_refuses_to_send_is_bad_input():
    aws = _aws()
    with pytest.raises(ParamValidationError) as info:
        aws.cloudformation.describe_stacks(StackName=123)
    mapped = explain(info.value)
    assert mapped is not None
    assert str(mapped).startswith(f"{DOING}: the request is invalid, so it was not sent: Invalid type for parameter")
    assert mapped.exit_code == 2


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (
            PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
            "incomplete AWS credentials in env: AWS_SECRET_ACCESS_KEY is missing; set it, or use a profile",
        ),
        (
            SSOTokenLoadError(error_msg="Token for https://example.awsapps.com/start does not exist"),
            "the SSO session has expired or was never started",
        ),
    ],
    ids=["partial credentials", "sso session"],
)
def test_credential_errors_raised_before_any_answer_are_bad_input(error, words):
    error.cfnbuild_call = Call("CloudFormation", "cloudformation", "DescribeStacks", "eu-west-1", "https://x", STACK)
    mapped = explain(error)
    assert mapped is not None
    assert str(mapped).startswith(f"{DOING}: {words}")
    assert mapped.exit_code == 2


def test_an_error_that_is_not_aws_is_left_alone():
    assert explain(ValueError("a bug")) is None
    assert explain(KeyError("a bug")) is None


def test_a_profile_that_does_not_exist_is_bad_input():
    aws = Aws(Target(STACK, "eu-west-1", profile="nope"))
    with pytest.raises(UsageError, match="--profile nope: The config profile \\(nope\\) could not be found"):
        aws.session()


@pytest.mark.parametrize("url", ["not-a-url", "localhost:4566", "ftp://host"])
def test_an_endpoint_url_that_is_not_one_is_refused_before_any_client(url):
    with pytest.raises(UsageError, match=f"--endpoint-url '{url}' is not a URL; give one like http://localhost:4566"):
        check_endpoint_url(url)


def test_only_a_4xx_answer_other_than_throttling_counts_as_refused():
    assert refused(_client_error("ValidationError", 400))
    assert not refused(_client_error("Throttling", 400))
    assert not refused(_client_error("InternalFailure", 500))
    assert not refused(ValueError("not an answer"))
    assert is_not_implemented(_client_error("NotImplemented", 501))


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": ""}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


def test_an_answer_the_embedded_emulator_cannot_give_says_so_and_where_to_run_it():
    from botocore.parsers import ResponseParserError

    error = ResponseParserError("Unable to parse response (syntax error: line 1, column 0), invalid XML received")
    error.cfnbuild_call = Call(  # type: ignore[attr-defined]
        "CloudFormation", "cloudformation", "DetectStackDrift", "eu-west-1", "http://localhost:5000", STACK, True, True
    )
    assert str(explain(error)) == (
        f"CloudFormation DetectStackDrift for {STACK} in eu-west-1 at http://localhost:5000: the embedded emulator "
        "could not answer DetectStackDrift (it lacks the API, or fails on this request); run it on AWS"
    )


def test_sessions_share_one_loader_of_botocore_data_but_keep_their_own_credentials_and_region(monkeypatch, tmp_path):
    first = Aws(Target("a", "eu-west-1", None, credentials={"aws_access_key_id": "A", "aws_secret_access_key": "a"}))
    second = Aws(Target("b", "us-east-1", None, credentials={"aws_access_key_id": "B", "aws_secret_access_key": "b"}))
    loader = first.session()._session.get_component("data_loader")
    assert second.session()._session.get_component("data_loader") is loader
    assert first.cloudformation.meta.region_name == "eu-west-1"
    assert second.cloudformation.meta.region_name == "us-east-1"
    assert first.session().get_credentials().access_key == "A"
    assert second.session().get_credentials().access_key == "B"
    assert len(loader.search_paths) == len(set(loader.search_paths))  # each boto3 session adds its data path once
    # The emulator's clients and the lookups' (cfnbuild.sessions) share it too.
    assert Emulator("http://localhost:1", "eu-west-1").client("sts")._loader is loader
    # Another AWS_DATA_PATH (extra or patched models) is another loader, searching there first.
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    third = Aws(Target("c", "eu-west-1", None)).session()._session.get_component("data_loader")
    assert third is not loader
    assert third.search_paths[0] == str(tmp_path)
