"""The AWS region (environment, IMDSv2) and database credentials from Secrets Manager."""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from flask import Flask

from flask_app.aws import AwsConfigError, region_from_arn, resolve_region
from flask_app.logs import REDACTOR
from flask_app.state import get_state
from tests.flask_app.conftest import FAKE_CREDENTIALS, TEST_REGION
from tests.flask_app.mariadb import MariaDBServer, free_port


class FakeImds(BaseHTTPRequestHandler):
    """IMDSv2: a token from ``PUT /latest/api/token``, required by every ``GET``."""

    token = secrets.token_hex(8)
    region = "ap-southeast-2"
    gets_without_token = 0

    def do_PUT(self) -> None:
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            self._reply(200, self.token)
        else:
            self._reply(400, "")

    def do_GET(self) -> None:
        if self.headers.get("X-aws-ec2-metadata-token") != self.token:
            type(self).gets_without_token += 1
            self._reply(401, "")
        elif self.path == "/latest/meta-data/placement/region":
            self._reply(200, self.region)
        else:
            self._reply(404, "")

    def _reply(self, status: int, body: str) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def fake_imds() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeImds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_region_comes_from_aws_region_first() -> None:
    environ = {"AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "us-west-2"}
    assert resolve_region(environ) == "eu-central-1"
    assert resolve_region({"AWS_DEFAULT_REGION": "us-west-2"}) == "us-west-2"


def test_region_comes_from_imdsv2_with_a_session_token(fake_imds: str) -> None:
    region = resolve_region({"AWS_EC2_METADATA_SERVICE_ENDPOINT": fake_imds})

    assert region == FakeImds.region
    assert FakeImds.gets_without_token == 0


def test_no_region_anywhere_is_a_clear_error() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(AwsConfigError, match="AWS_REGION is not set"):
        resolve_region({"AWS_EC2_METADATA_SERVICE_ENDPOINT": endpoint}, timeout=0.5)
    with pytest.raises(AwsConfigError, match="AWS_EC2_METADATA_DISABLED"):
        resolve_region({"AWS_EC2_METADATA_DISABLED": "true"})


def test_region_of_an_arn() -> None:
    arn = "arn:aws:secretsmanager:sa-east-1:123456789012:secret:db-AbCdEf"
    assert region_from_arn(arn) == "sa-east-1"
    assert region_from_arn("not-an-arn") is None


@contextlib.contextmanager
def secret(moto_endpoint: str, value: object) -> Iterator[str]:
    client = boto3.client("secretsmanager", region_name=TEST_REGION, endpoint_url=moto_endpoint, **FAKE_CREDENTIALS)
    name = f"db-{free_port()}-{id(value)}"
    arn = client.create_secret(Name=name, SecretString=value if isinstance(value, str) else json.dumps(value))["ARN"]
    try:
        yield arn
    finally:
        client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


@pytest.mark.server
def test_database_credentials_come_from_secrets_manager(
    make_app: Callable[..., Flask], moto_endpoint: str, mariadb_migrated: MariaDBServer
) -> None:
    server = mariadb_migrated
    rds_style = {
        "engine": "mysql",
        "username": server.user,
        "password": server.password,
        "host": "127.0.0.1",
        "port": server.port,
        "dbname": server.database,
    }
    with secret(moto_endpoint, rds_style) as arn:
        app = make_app(DB_SECRET_ARN=arn, AWS_ENDPOINT_URL=moto_endpoint)

    client = app.test_client()
    assert client.get("/ready").status_code == 200
    assert client.post("/api/notes", json={"title": "via secret"}).status_code == 201
    assert server.password in REDACTOR._secrets
    assert server.password not in get_state(app).database_description


@pytest.mark.server
def test_db_host_port_and_name_settings_override_the_secret(make_app: Callable[..., Flask], moto_endpoint: str) -> None:
    # RDS-managed master secrets hold only the credentials.
    with secret(moto_endpoint, {"username": "admin", "password": "pw-1234567"}) as arn:
        app = make_app(
            DB_SECRET_ARN=arn,
            AWS_ENDPOINT_URL=moto_endpoint,
            DB_HOST="cluster.example.internal",
            DB_PORT=3307,
            DB_NAME="appdb",
        )

    assert get_state(app).database_description == ("mysql+pymysql://admin:***@cluster.example.internal:3307/appdb")


@pytest.mark.server
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("not json at all pw-xyz", "not a JSON object"),
        (["list"], "not a JSON object"),
        ({"username": "a"}, "no string 'password'"),
        ({"username": "a", "password": "pw-xyz", "port": "x"}, "non-numeric 'port'"),
    ],
)
def test_a_malformed_secret_is_a_clear_error_that_does_not_quote_it(
    make_app: Callable[..., Flask], moto_endpoint: str, value: object, problem: str
) -> None:
    with secret(moto_endpoint, value) as arn, pytest.raises(AwsConfigError) as error:
        make_app(DB_SECRET_ARN=arn, AWS_ENDPOINT_URL=moto_endpoint, DB_HOST="h", DB_NAME="d")

    assert problem in str(error.value)
    assert "pw-xyz" not in str(error.value)


@pytest.mark.server
def test_a_secret_without_host_needs_app_db_host(make_app: Callable[..., Flask], moto_endpoint: str) -> None:
    with (
        secret(moto_endpoint, {"username": "a", "password": "pw-1234", "dbname": "d"}) as arn,
        pytest.raises(ValueError, match="APP_DB_HOST"),
    ):
        make_app(DB_SECRET_ARN=arn, AWS_ENDPOINT_URL=moto_endpoint)
