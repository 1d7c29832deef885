"""The notes API on both backends: the happy paths and every class of bad input."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient

JSON = "application/json"


def create(client: FlaskClient, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/notes", json=fields)
    assert response.status_code == 201, response.json
    assert response.json is not None
    return response.json


def assert_error(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.data
    assert response.mimetype == JSON
    body: dict[str, Any] = response.json
    assert isinstance(body["error"], str)
    assert body["message"]
    if field is not None:
        assert body["field"] == field
    assert body["request_id"] == response.headers["X-Request-Id"]
    return body


# --- happy paths ---------------------------------------------------------------------


def test_create_note_returns_201_with_location_and_the_stored_note(client: FlaskClient) -> None:
    response = client.post("/api/notes", json={"title": "First", "body": "hello"})

    assert response.status_code == 201
    note = response.json
    assert note is not None
    assert note["title"] == "First"
    assert note["body"] == "hello"
    assert response.headers["Location"] == f"/api/notes/{note['id']}"
    assert client.get(response.headers["Location"]).json == note


def test_create_note_without_body_stores_an_empty_body(client: FlaskClient) -> None:
    assert create(client, title="t")["body"] == ""


def test_timestamps_are_utc_iso8601_and_round_trip(client: FlaskClient) -> None:
    note = create(client, title="t")
    created = dt.datetime.fromisoformat(note["created_at"])

    assert note["created_at"].endswith("Z")
    assert abs(dt.datetime.now(dt.UTC) - created) < dt.timedelta(minutes=1)
    assert client.get(f"/api/notes/{note['id']}").json == note


def test_title_is_stripped_and_four_byte_unicode_round_trips(client: FlaskClient) -> None:
    note = create(client, title="  Grüße 🦜 日本  ", body="emoji 🐍\nline two")

    stored = client.get(f"/api/notes/{note['id']}").json
    assert stored is not None
    assert stored["title"] == "Grüße 🦜 日本"
    assert stored["body"] == "emoji 🐍\nline two"


def test_limits_are_inclusive_200_character_title_and_10000_character_body(
    client: FlaskClient,
) -> None:
    note = create(client, title="🦜" * 200, body="é" * 10_000)

    stored = client.get(f"/api/notes/{note['id']}").json
    assert stored is not None
    assert stored["title"] == "🦜" * 200
    assert len(stored["body"]) == 10_000


def test_patch_changes_only_the_given_fields_and_updated_at(client: FlaskClient) -> None:
    note = create(client, title="old", body="keep")

    response = client.patch(f"/api/notes/{note['id']}", json={"title": "new"})

    assert response.status_code == 200
    updated = response.json
    assert updated is not None
    assert (updated["title"], updated["body"]) == ("new", "keep")
    assert updated["created_at"] == note["created_at"]
    assert updated["updated_at"] > note["updated_at"]
    assert client.get(f"/api/notes/{note['id']}").json == updated


def test_delete_returns_204_and_the_note_is_gone(client: FlaskClient) -> None:
    note = create(client, title="bye")

    response = client.delete(f"/api/notes/{note['id']}")

    assert response.status_code == 204
    assert response.data == b""
    assert_error(client.get(f"/api/notes/{note['id']}"), 404)


def test_list_pages_newest_first_with_keyset_cursors(client: FlaskClient) -> None:
    ids = [create(client, title=f"n{i}")["id"] for i in range(5)]

    seen: list[int] = []
    pages = 0
    cursor: str | None = None
    while True:
        query = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/notes", query_string=query).json
        assert page is not None
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == sorted(ids, reverse=True)
    assert pages == 3


def test_pagination_does_not_repeat_or_skip_when_notes_are_added_between_pages(
    client: FlaskClient,
) -> None:
    first_ids = [create(client, title=f"n{i}")["id"] for i in range(4)]
    page1 = client.get("/api/notes?limit=2").json
    assert page1 is not None

    create(client, title="newer")  # lands before page 1, must not shift page 2
    page2 = client.get(f"/api/notes?limit=2&cursor={page1['next_cursor']}").json

    assert page2 is not None
    got = [n["id"] for n in page1["items"] + page2["items"]]
    assert got == sorted(first_ids, reverse=True)
    assert page2["next_cursor"] is None


def test_list_defaults_to_20_items(client: FlaskClient) -> None:
    for i in range(21):
        create(client, title=f"n{i}")

    page = client.get("/api/notes").json

    assert page is not None
    assert len(page["items"]) == 20
    assert page["next_cursor"] is not None


def test_list_of_an_empty_table_is_empty(client: FlaskClient) -> None:
    assert client.get("/api/notes").json == {"items": [], "next_cursor": None}


# --- bad input ---------------------------------------------------------------------


def test_create_without_title_is_400_naming_title(client: FlaskClient) -> None:
    assert_error(client.post("/api/notes", json={"body": "x"}), 400, "title")


@pytest.mark.parametrize("title", ["", "   ", "\n\t"])
def test_create_with_empty_title_is_400(client: FlaskClient, title: str) -> None:
    assert_error(client.post("/api/notes", json={"title": title}), 400, "title")


def test_create_with_title_over_200_characters_is_400(client: FlaskClient) -> None:
    assert_error(client.post("/api/notes", json={"title": "x" * 201}), 400, "title")


def test_create_with_body_over_10000_characters_is_400(client: FlaskClient) -> None:
    response = client.post("/api/notes", json={"title": "t", "body": "x" * 10_001})
    assert_error(response, 400, "body")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"title": 5}, "title"),
        ({"title": None}, "title"),
        ({"title": ["a"]}, "title"),
        ({"title": True}, "title"),
        ({"title": "t", "body": 5}, "body"),
        ({"title": "t", "body": None}, "body"),
        ({"title": "t", "body": {"a": 1}}, "body"),
    ],
)
def test_create_with_a_field_of_the_wrong_type_is_400_naming_it(
    client: FlaskClient, payload: dict[str, Any], field: str
) -> None:
    body = assert_error(client.post("/api/notes", json=payload), 400, field)
    assert "must be a string" in body["message"]


def test_create_with_an_unknown_field_is_400_naming_it(client: FlaskClient) -> None:
    response = client.post("/api/notes", json={"title": "t", "id": 7, "owner": "x"})
    assert_error(response, 400, "id")


def test_create_with_a_lone_surrogate_is_400(client: FlaskClient) -> None:
    response = client.post("/api/notes", data='{"title": "bad \\ud800"}', content_type=JSON)
    assert_error(response, 400, "title")


@pytest.mark.parametrize("raw", ["{", '{"title": }', "nope", '{"title": "t"', "\xff"])
def test_create_with_malformed_json_is_400(client: FlaskClient, raw: str) -> None:
    body = assert_error(client.post("/api/notes", data=raw, content_type=JSON), 400)
    assert body["error"] == "invalid_json"


@pytest.mark.parametrize("raw", ["[]", '"title"', "null", "3"])
def test_create_with_json_that_is_not_an_object_is_400(client: FlaskClient, raw: str) -> None:
    body = assert_error(client.post("/api/notes", data=raw, content_type=JSON), 400)
    assert body["error"] == "invalid_json"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None],
)
def test_create_with_a_non_json_content_type_is_415(client: FlaskClient, content_type: str | None) -> None:
    response = client.post("/api/notes", data='{"title": "t"}', content_type=content_type)
    assert_error(response, 415)


def test_create_with_a_body_over_max_content_length_is_413(client: FlaskClient) -> None:
    payload = '{"title": "t", "body": "' + "x" * (300 * 1024) + '"}'
    body = assert_error(client.post("/api/notes", data=payload, content_type=JSON), 413)
    assert body["error"] == "request_entity_too_large"


def test_patch_with_no_fields_is_400(client: FlaskClient) -> None:
    note = create(client, title="t")
    assert_error(client.patch(f"/api/notes/{note['id']}", json={}), 400)


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"title": ""}, "title"), ({"title": 1}, "title"), ({"body": "x" * 10_001}, "body")],
)
def test_patch_with_a_bad_field_is_400_and_changes_nothing(
    client: FlaskClient, payload: dict[str, Any], field: str
) -> None:
    note = create(client, title="t", body="b")

    assert_error(client.patch(f"/api/notes/{note['id']}", json=payload), 400, field)
    assert client.get(f"/api/notes/{note['id']}").json == note


def test_patch_with_an_unknown_field_is_400(client: FlaskClient) -> None:
    note = create(client, title="t")
    response = client.patch(f"/api/notes/{note['id']}", json={"created_at": "x"})
    assert_error(response, 400, "created_at")


def test_patch_with_a_non_json_body_is_415(client: FlaskClient) -> None:
    note = create(client, title="t")
    assert_error(client.patch(f"/api/notes/{note['id']}", data="title=x"), 415)


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "", "1.5", "٣", "99999999999999999999"])
def test_list_with_a_bad_limit_is_400_naming_limit(client: FlaskClient, limit: str) -> None:
    assert_error(client.get("/api/notes", query_string={"limit": limit}), 400, "limit")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "",
        base64.urlsafe_b64encode(b"n1:0").decode(),
        base64.urlsafe_b64encode(b"n1:-5").decode(),
        base64.urlsafe_b64encode(b"x1:5").decode(),
        base64.urlsafe_b64encode(b"n1:" + b"9" * 30).decode(),
        base64.urlsafe_b64encode("n1:٣".encode()).decode(),
    ],
)
def test_list_with_a_bad_cursor_is_400_naming_cursor(client: FlaskClient, cursor: str) -> None:
    assert_error(client.get("/api/notes", query_string={"cursor": cursor}), 400, "cursor")


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_unknown_note_id_is_404(client: FlaskClient, method: str) -> None:
    response = client.open("/api/notes/424242", method=method, json={"title": "t"})
    body = assert_error(response, 404)
    assert body["error"] == "not_found"


@pytest.mark.parametrize("path", ["/api/notes/9223372036854775808", "/api/notes/abc"])
def test_note_ids_that_cannot_exist_are_404(client: FlaskClient, path: str) -> None:
    assert_error(client.get(path), 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/notes/1", {"GET", "PATCH", "DELETE"}),
        ("DELETE", "/api/notes", {"GET", "POST"}),
        ("POST", "/health", {"GET"}),
    ],
)
def test_wrong_method_is_405_with_allow_header(client: FlaskClient, method: str, path: str, allowed: set[str]) -> None:
    response = client.open(path, method=method)

    body = assert_error(response, 405)
    assert body["error"] == "method_not_allowed"
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


def test_unknown_path_is_a_json_404(client: FlaskClient) -> None:
    assert_error(client.get("/nope"), 404)
