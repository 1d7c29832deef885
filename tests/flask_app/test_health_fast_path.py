"""The liveness fast path (``flask_app.ops.HealthFastPath``): the route's answer, without Flask.

Each test compares the app as ``flask_app.wsgi`` serves it (fast path in front) with the same app
without it (``/health`` through Flask's routing and request hooks): the answer must not change,
and everything but ``GET``/``HEAD /health`` must still reach Flask.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.test import TestResponse

from flask_app.logs import make_handler
from flask_app.ops import HealthFastPath, install_health_fast_path
from flask_app.state import get_state

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def route(make_app: Callable[..., Flask]) -> FlaskClient:
    """A client of the app without the fast path: ``/health`` is Flask's route."""
    return make_app().test_client()


@pytest.fixture
def fast(make_app: Callable[..., Flask]) -> FlaskClient:
    """A client of the app as ``flask_app.wsgi`` serves it: the fast path in front."""
    return install_health_fast_path(make_app()).test_client()


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The app's JSON log lines (formatter and redactor as installed), DEBUG and up."""
    stream = io.StringIO()
    handler = make_handler(stream)
    logger = logging.getLogger("flask_app")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _answer(response: TestResponse) -> tuple[str, list[tuple[str, str]], bytes]:
    return response.status, list(response.headers.items()), response.get_data()


@pytest.fixture
def wsgi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ModuleType]:
    """``flask_app.wsgi`` imported afresh, its app's embedded database in ``tmp_path``."""
    monkeypatch.setenv("APP_INSTANCE_PATH", str(tmp_path / "wsgi-instance"))
    import flask_app.wsgi

    module = importlib.reload(flask_app.wsgi)
    yield module
    get_state(module.app).dispose()


def test_the_wsgi_entry_point_serves_the_flask_app_with_the_fast_path_in_front(wsgi: ModuleType) -> None:
    assert isinstance(wsgi.app, Flask)  # still the Flask app: `flask --app flask_app.wsgi` works
    assert isinstance(wsgi.app.wsgi_app, HealthFastPath)
    response = wsgi.app.test_client().get("/health", headers={"X-Request-Id": "wsgi-1"})
    assert (response.status_code, response.json, response.headers["X-Request-Id"]) == (200, {"status": "ok"}, "wsgi-1")


@pytest.mark.parametrize("request_id", ["abc-123.DEF:4", "alb-trace/1=2+3"])
def test_get_health_gives_the_routes_status_headers_and_body_with_a_callers_request_id(
    route: FlaskClient, fast: FlaskClient, request_id: str
) -> None:
    expected = route.get("/health", headers={"X-Request-Id": request_id})
    answer = fast.get("/health", headers={"X-Request-Id": request_id})

    assert _answer(answer) == _answer(expected)
    assert answer.status_code == 200
    assert answer.json == {"status": "ok"}
    assert answer.headers["X-Request-Id"] == request_id


@pytest.mark.parametrize("incoming", [None, "", "has space", "x" * 200, 'quote"d', "-leading-dash", "é"])
def test_without_a_sane_request_id_the_fast_path_makes_one_like_the_app_does(
    route: FlaskClient, fast: FlaskClient, incoming: str | None
) -> None:
    headers = {} if incoming is None else {"X-Request-Id": incoming}
    expected = route.get("/health", headers=headers)
    answer = fast.get("/health", headers=headers)

    assert GENERATED_ID.fullmatch(answer.headers["X-Request-Id"])
    assert GENERATED_ID.fullmatch(expected.headers["X-Request-Id"])
    assert answer.headers["X-Request-Id"] != expected.headers["X-Request-Id"]  # new for each request

    def without_id(response: TestResponse) -> tuple[str, list[tuple[str, str]], bytes]:
        status, header_list, body = _answer(response)
        return status, [(k, "<id>" if k == "X-Request-Id" else v) for k, v in header_list], body

    assert without_id(answer) == without_id(expected)


def test_head_health_gives_the_routes_headers_and_no_body(route: FlaskClient, fast: FlaskClient) -> None:
    expected = route.head("/health", headers={"X-Request-Id": "head-1"})
    answer = fast.head("/health", headers={"X-Request-Id": "head-1"})

    assert _answer(answer) == _answer(expected)
    assert answer.status_code == 200
    assert answer.get_data() == b""
    assert answer.headers["Content-Length"] == str(len(b'{"status":"ok"}\n'))


def test_a_query_string_does_not_change_the_answer(route: FlaskClient, fast: FlaskClient) -> None:
    headers = {"X-Request-Id": "q-1"}

    assert _answer(fast.get("/health?probe=alb", headers=headers)) == _answer(
        route.get("/health?probe=alb", headers=headers)
    )


def test_the_fast_path_runs_no_flask_route_hook_or_database(make_app: Callable[..., Flask]) -> None:
    app = make_app(DATABASE_URL="mysql+pymysql://app:pw@127.0.0.1:9/unreachable")

    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("Flask was reached")

    app.view_functions["ops.health"] = fail
    app.before_request(fail)
    client = install_health_fast_path(app).test_client()

    response = client.get("/health")

    assert (response.status_code, response.json) == (200, {"status": "ok"})


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/health"),  # 405 with Allow, the JSON error body and the request id
        ("PUT", "/health"),
        ("DELETE", "/health"),
        ("OPTIONS", "/health"),  # Flask's automatic answer
        ("GET", "/health/"),  # 404: no such route
        ("GET", "/healthz"),
        ("GET", "/HEALTH"),
    ],
)
def test_every_other_method_and_path_is_flasks_answer(
    route: FlaskClient, fast: FlaskClient, method: str, path: str
) -> None:
    headers = {"X-Request-Id": "other-1"}
    expected = route.open(path, method=method, headers=headers)
    answer = fast.open(path, method=method, headers=headers)

    assert _answer(answer) == _answer(expected)
    assert answer.status_code != 200 or method == "OPTIONS"


def test_the_rest_of_the_app_is_served_by_flask_behind_the_fast_path(fast: FlaskClient) -> None:
    created = fast.post("/api/notes", json={"title": "behind the fast path"}, headers={"X-Request-Id": "n-1"})
    assert created.status_code == 201
    assert created.headers["X-Request-Id"] == "n-1"
    location = created.headers["Location"]

    assert fast.get(location).json["title"] == "behind the fast path"  # type: ignore[index]
    assert fast.patch(location, json={"title": "changed"}).status_code == 200
    listed = fast.get("/api/notes?limit=100").json
    assert listed is not None
    assert [item["title"] for item in listed["items"]] == ["changed"]
    assert fast.delete(location).status_code == 204
    assert fast.get(location).status_code == 404
    ready = fast.get("/ready")
    assert ready.status_code == 200
    assert ready.json is not None
    assert ready.json["status"] == "ready"


def test_the_fast_path_writes_the_hooks_debug_line(
    route: FlaskClient, fast: FlaskClient, log_stream: io.StringIO
) -> None:
    route.get("/health", headers={"X-Request-Id": "log-route"})
    fast.get("/health", headers={"X-Request-Id": "log-fast"})

    by_id = {line["request_id"]: line for line in _lines(log_stream) if line["message"] == "request"}
    expected, written = by_id["log-route"], by_id["log-fast"]
    assert set(written) == set(expected)
    for key in ("level", "logger", "message", "method", "path", "status"):
        assert written[key] == expected[key], key
    assert (written["level"], written["logger"], written["status"]) == ("DEBUG", "flask_app.web", 200)
    assert isinstance(written["duration_ms"], float)


def test_no_log_line_at_info_like_the_route(fast: FlaskClient, log_stream: io.StringIO) -> None:
    logging.getLogger("flask_app").setLevel(logging.INFO)

    fast.get("/health")
    fast.head("/health")

    assert _lines(log_stream) == []


def test_a_forked_worker_gets_fresh_pools_and_aws_clients_and_leaves_the_parents_connections_open(
    make_app: Callable[..., Flask], wsgi: ModuleType
) -> None:
    app = make_app(AWS_ENDPOINT_URL="http://127.0.0.1:9")
    state = get_state(app)
    inherited_pool, inherited_aws = state.engine.pool, state.aws
    with state.engine.connect() as connection:  # the parent's connection, pooled when returned
        parents = connection.connection.dbapi_connection
    assert parents is not None

    wsgi.fresh_after_fork(app)

    assert state.engine.pool is not inherited_pool
    assert state.engine.pool.checkedin() == 0  # nothing inherited: the child connects anew
    assert state.aws is not inherited_aws
    assert state.aws.endpoint_url == "http://127.0.0.1:9"
    assert parents.execute("SELECT 1").fetchone() == (1,)  # not closed under the parent
    with state.engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar_one() == 1
