"""End to end on loopback: real nginx → real gunicorn → flask_app → MariaDB (over TLS) and S3 (moto).

nginx and gunicorn run from the instance files of ``blueprints/files/`` rendered as the template
renders them, only with a free port and temporary paths (:mod:`tests.e2e.local_stack`); the
database is migrated by the bootstrap's own command with the rendered environment. Every request
goes through nginx over HTTP.
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from blueprints.instance_files import DEFAULT_MAX_BODY_BYTES
from tests.e2e import local_stack
from tests.e2e.local_stack import LocalStack
from tests.flask_app.mariadb import MariaDBServer
from tests.servers import missing_server, require_executable

pytestmark = pytest.mark.server

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def mariadb() -> Iterator[MariaDBServer]:
    server = MariaDBServer.create()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[tuple[str, str]]:
    """A moto server with one bucket: (endpoint URL, bucket name)."""
    try:
        import boto3
        from moto.server import ThreadedMotoServer
    except ImportError:
        missing_server("moto server not installed: pip install 'moto[server]'")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    bucket = f"assets-{secrets.token_hex(6)}"
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    boto3.client("s3", region_name="eu-west-1", endpoint_url=endpoint, **credentials).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    try:
        yield endpoint, bucket
    finally:
        server.stop()


@pytest.fixture(scope="module")
def migration_output(mariadb: MariaDBServer) -> str:
    environment = {
        **local_stack.parse_environment_file(local_stack.render("app.env", local_stack.local_values(Path("/x"), 80))),
        "PATH": str(local_stack.VENV_BIN),
        "APP_DATABASE_URL": mariadb.url().render_as_string(hide_password=False),
        "APP_DB_TLS_CA": str(mariadb.tls.ca) if mariadb.tls else "",
        "APP_DB_SECRET_ARN": "",
        "APP_ASSETS_BUCKET": "",
    }
    return local_stack.migrate(environment)


@pytest.fixture(scope="module")
def stack(mariadb: MariaDBServer, s3_endpoint: tuple[str, str], migration_output: str) -> Iterator[LocalStack]:
    nginx = require_executable("nginx", "apt-get install nginx")
    endpoint, bucket = s3_endpoint
    running = local_stack.start(
        nginx,
        database_url=mariadb.url().render_as_string(hide_password=False),
        tls_ca=str(mariadb.tls.ca) if mariadb.tls else None,
        assets_bucket=bucket,
        aws_endpoint_url=endpoint,
    )
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(running.base, ignore_errors=True)


def _json_lines(path: Path, until: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    """Every line of ``path`` parsed as JSON (each must be), once ``until`` holds (or after 5 s)."""
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if until(lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def _gunicorn_access(stack: LocalStack, request_id: str) -> dict[str, Any]:
    def found(lines: list[dict[str, Any]]) -> bool:
        return any(e.get("logger") == "gunicorn.access" and e.get("request_id") == request_id for e in lines)

    lines = _json_lines(stack.app_log, found)
    (entry,) = [e for e in lines if e.get("logger") == "gunicorn.access" and e.get("request_id") == request_id]
    return entry


def test_seed_13_the_bootstraps_migrate_command_upgrades_the_database_with_the_rendered_environment(
    migration_output: str,
):
    assert json.loads(migration_output) == {"revision": "0001"}


def test_seed_14_nginx_on_its_port_fronts_gunicorn_on_the_socket_and_health_answers(stack: LocalStack):
    status, headers, body = stack.request("GET", "/health")
    assert status == 200
    assert json.loads(body) == {"status": "ok"}
    # nginx answered (server_tokens off: no version), the app behind it (it sets the request id),
    # and the site's default_server won over the distro's example server on the same port.
    assert headers["server"] == "nginx"
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
    assert Path(stack.values["AppSocket"]).is_socket()


def test_ready_checks_mariadb_over_tls_and_the_bucket_through_nginx(stack: LocalStack):
    status, _, body = stack.request("GET", "/ready")
    ready = json.loads(body)
    assert status == 200, ready
    assert ready["status"] == "ready"
    assert ready["checks"]["database"]["status"] == "ok"
    assert ready["checks"]["assets_bucket"]["status"] == "ok"


def test_notes_api_round_trip_through_nginx(stack: LocalStack):
    status, headers, body = stack.request(
        "POST", "/api/notes", json.dumps({"title": "e2e", "body": "hi"}).encode(), JSON
    )
    assert status == 201, body
    note = json.loads(body)
    assert headers["location"] == f"/api/notes/{note['id']}"
    status, _, body = stack.request("GET", headers["location"])
    assert (status, json.loads(body)["title"]) == (200, "e2e")
    status, _, body = stack.request("PATCH", headers["location"], json.dumps({"title": "changed"}).encode(), JSON)
    assert (status, json.loads(body)["title"]) == (200, "changed")
    status, _, body = stack.request("GET", "/api/notes?limit=100")
    assert status == 200
    assert note["id"] in [item["id"] for item in json.loads(body)["items"]]
    status, _, _ = stack.request("DELETE", headers["location"])
    assert status == 204
    status, _, body = stack.request("GET", headers["location"])
    assert (status, json.loads(body)["error"]) == (404, "not_found")


def test_a_body_over_the_limit_gets_413_at_nginx_and_one_at_the_limit_reaches_the_app(stack: LocalStack):
    limit = int(stack.environment["APP_MAX_CONTENT_LENGTH"])
    assert limit == int(stack.values["MaxBodyBytes"]) == DEFAULT_MAX_BODY_BYTES
    status, headers, body = stack.request("POST", "/api/notes", b"x" * (limit + 1), {**JSON, "X-Request-Id": "big-1"})
    assert status == 413
    assert json.loads(body)["error"] == "request_entity_too_large"  # the app's own 413 body
    assert headers["content-type"] == "application/json"
    assert headers["x-request-id"] == "big-1"
    # nginx refused it: gunicorn never saw the request.
    assert not [e for e in _json_lines(stack.app_log, lambda _: True) if e.get("request_id") == "big-1"]
    # Exactly at the limit: through nginx and past the app's MAX_CONTENT_LENGTH (then not JSON: 400).
    status, _, body = stack.request("POST", "/api/notes", b"x" * limit, JSON)
    assert status == 400, body


def test_a_chunked_body_over_the_limit_is_refused_too(stack: LocalStack):
    connection = stack.connection()
    try:
        connection.request("POST", "/api/notes", body=iter([b"x" * DEFAULT_MAX_BODY_BYTES, b"y" * 10]), headers=JSON)
        response = connection.getresponse()
        assert response.status == 413
    finally:
        connection.close()


def test_proxy_headers_reach_the_app_and_the_request_id_is_echoed(stack: LocalStack):
    status, headers, _ = stack.request(
        "GET",
        "/api/notes",
        headers={"X-Request-Id": "e2e-id-42", "X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"},
    )
    assert status == 200
    assert headers["x-request-id"] == "e2e-id-42"
    entry = _gunicorn_access(stack, "e2e-id-42")
    assert entry["x_forwarded_for"] == "203.0.113.7, 127.0.0.1"
    assert entry["x_real_ip"] == "127.0.0.1"
    assert entry["scheme"] == "https"  # gunicorn trusted X-Forwarded-Proto from nginx
    assert entry["host"] == "127.0.0.1"
    nginx_lines = _json_lines(stack.access_log, lambda ls: any(e["request_id"] == "e2e-id-42" for e in ls))
    (logged,) = [e for e in nginx_lines if e["request_id"] == "e2e-id-42"]
    assert (logged["status"], logged["x_forwarded_for"], logged["upstream_status"]) == (200, "203.0.113.7", "200")


def test_nginx_makes_the_request_id_when_the_client_sends_none_and_the_app_keeps_it(stack: LocalStack):
    status, headers, _ = stack.request("GET", "/api/notes")
    assert status == 200
    request_id = headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)  # nginx's $request_id
    assert _gunicorn_access(stack, request_id)["status"] == 200


def test_json_responses_are_gzipped_for_clients_that_accept_it(stack: LocalStack):
    for index in range(8):
        body = json.dumps({"title": f"gzip {index}", "body": "z" * 200}).encode()
        assert stack.request("POST", "/api/notes", body, JSON)[0] == 201
    status, headers, body = stack.request("GET", "/api/notes?limit=100", headers={"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert headers["vary"] == "Accept-Encoding"
    assert len(json.loads(gzip.decompress(body))["items"]) >= 8


def test_every_line_of_the_app_log_and_the_nginx_access_log_is_json(stack: LocalStack):
    assert stack.request("GET", "/api/notes")[0] == 200
    app_lines = _json_lines(stack.app_log, lambda ls: any(e.get("logger") == "gunicorn.access" for e in ls))
    loggers = {entry["logger"] for entry in app_lines}
    assert {"gunicorn.error", "gunicorn.access", "flask_app"} <= loggers
    assert all({"time", "level", "message"} <= set(entry) for entry in app_lines)
    assert _json_lines(stack.access_log, bool)
    assert "/health" not in stack.access_log.read_text()  # the ALB's polling is not logged


def test_an_unknown_host_name_is_served_by_the_site_not_the_distros_example_server(stack: LocalStack):
    status, _, body = stack.request("GET", "/health", headers={"Host": "_"})
    assert status == 418  # the example server, by its exact name
    status, _, body = stack.request("GET", "/health", headers={"Host": "internal-alb-123.example"})
    assert (status, json.loads(body)) == (200, {"status": "ok"})


def test_health_is_the_apps_answer_through_nginx_and_gunicorn_logs_each_poll(stack: LocalStack):
    # The fast path in front of Flask (flask_app.ops.HealthFastPath) answers, in the app's process.
    status, headers, body = stack.request("GET", "/health", headers={"X-Request-Id": "alb-poll-1"})
    assert (status, body) == (200, b'{"status":"ok"}\n')
    assert headers["content-type"] == "application/json"
    assert headers["x-request-id"] == "alb-poll-1"
    # nginx does not log the polls; gunicorn's access line is the proof that the app answered them.
    entry = _gunicorn_access(stack, "alb-poll-1")
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/health", 200)


def test_head_health_answers_without_a_body_and_other_methods_get_flasks_405(stack: LocalStack):
    connection = stack.connection()
    try:
        connection.request("HEAD", "/health")
        response = connection.getresponse()
        assert (response.status, response.read(), response.getheader("Content-Length")) == (200, b"", "16")
    finally:
        connection.close()
    status, headers, body = stack.request("POST", "/health", b"{}", {**JSON, "X-Request-Id": "post-health-1"})
    assert status == 405
    assert json.loads(body)["error"] == "method_not_allowed"
    assert "GET" in headers["allow"]
    assert headers["x-request-id"] == "post-health-1"


def test_the_app_is_created_once_in_gunicorns_master_and_the_workers_forked_from_it(stack: LocalStack):
    assert stack.request("GET", "/api/notes")[0] == 200  # a worker's own database pool works
    lines = _json_lines(stack.app_log, lambda ls: any(e.get("logger") == "gunicorn.access" for e in ls))
    workers = int(stack.environment["GUNICORN_WORKERS"])
    assert len([e for e in lines if e["message"].startswith("Booting worker")]) >= workers
    assert len([e for e in lines if e["message"] == "application configured"]) == 1  # preload_app
