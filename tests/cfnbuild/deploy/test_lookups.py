"""Deploy-time lookups: recorded in the template at build, answered (or not) at deploy.

The emulator (moto) has no DescribeDBEngineVersions, so every answer from RDS here is scripted
with botocore's ``Stubber`` on a real boto3 RDS client; one test runs the real moto server to
prove that its missing API gives the fallback, not a crash.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from troposphere import Parameter

from cfnbuild import Blueprint, InputError, Stack
from cfnbuild.deploy.lookups import (
    LookupSpecError,
    engine_version_key,
    recorded_lookups,
    resolve_lookups,
)

REGION = "eu-west-1"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
FALLBACK = "could not look up the newest Aurora MySQL 3 version in eu-west-1 ({}); using the region's default"


def _stack() -> Stack:
    return Stack("db", description="d", project="p", environment="dev")


def _add_version_parameter(stack: Stack, name: str = "DbEngineVersion") -> None:
    stack.add_parameter(Parameter(name, Type="String", Default=""), owner="test")


def _template() -> dict[str, Any]:
    stack = _stack()
    _add_version_parameter(stack)
    stack.add_lookup("DbEngineVersion", kind="rds-engine-version", engine="aurora-mysql", major="3")
    return stack.to_dict()


def _versions(*versions: str, status: str | None = "available") -> list[dict[str, Any]]:
    entries = []
    for version in versions:
        entry: dict[str, Any] = {"Engine": "aurora-mysql", "EngineVersion": version}
        if status is not None:
            entry["Status"] = status
        entries.append(entry)
    return entries


class Rds:
    """A real boto3 session whose RDS client answers only what a test queued on its Stubber."""

    def __init__(self) -> None:
        self.session = boto3.Session(region_name=REGION, **FAKE_CREDENTIALS)
        self.client = self.session.client("rds", region_name=REGION)
        self.stubber = Stubber(self.client)
        self.calls: list[str] = []
        self.client.meta.events.register("before-parameter-build.rds.*", self._record)
        self.session.client = lambda *args, **kwargs: self.client  # type: ignore[method-assign]

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def answer(self, versions: list[dict[str, Any]], *, marker: str | None = None, after: str | None = None) -> None:
        """Queue one DescribeDBEngineVersions page (``after``: the Marker the request must carry)."""
        response: dict[str, Any] = {"DBEngineVersions": versions}
        if marker is not None:
            response["Marker"] = marker
        expected: dict[str, Any] = {"Engine": "aurora-mysql"}
        if after is not None:
            expected["Marker"] = after
        self.stubber.add_response("describe_db_engine_versions", response, expected)


@pytest.fixture
def rds() -> Iterator[Rds]:
    stubbed = Rds()
    with stubbed.stubber:
        yield stubbed
        stubbed.stubber.assert_no_pending_responses()


def _resolve(rds: Rds, cache_dir: Path, *, now: datetime = NOW, **kwargs: Any) -> Any:
    kwargs.setdefault("region", REGION)
    return resolve_lookups(_template(), session=rds.session, cache_dir=cache_dir, clock=lambda: now, **kwargs)


# -- recording ---------------------------------------------------------------------------------


def test_a_lookup_renders_into_template_metadata_sorted_and_deterministic():
    def build(order: list[str]) -> str:
        stack = _stack()
        for name in order:
            _add_version_parameter(stack, name)
        for name in order:
            stack.add_lookup(name, kind="rds-engine-version", major="3", engine="aurora-mysql")
        return stack.to_json()

    first, second = build(["DbEngineVersion", "CacheVersion"]), build(["CacheVersion", "DbEngineVersion"])
    assert first == second
    metadata = json.loads(first)["Metadata"]
    assert metadata == {
        "cfnbuild": {
            "lookups": {
                "CacheVersion": {"engine": "aurora-mysql", "kind": "rds-engine-version", "major": "3"},
                "DbEngineVersion": {"engine": "aurora-mysql", "kind": "rds-engine-version", "major": "3"},
            }
        }
    }
    assert list(_template()["Metadata"]["cfnbuild"]["lookups"]["DbEngineVersion"]) == ["engine", "kind", "major"]


def test_a_blueprint_records_a_lookup_under_its_prefix():
    class Versioned(Blueprint[Any]):
        def build(self) -> None:
            self.parameter("EngineVersion", Type="String", Default="")
            self.lookup("EngineVersion", kind="rds-engine-version", engine="aurora-mysql", major="3")

    from dataclasses import dataclass

    @dataclass(frozen=True)
    class NoInputs:
        pass

    stack = _stack()
    Versioned(stack, NoInputs(), prefix="Reporting")
    assert recorded_lookups(stack.to_dict())[0].parameter == "ReportingEngineVersion"


@pytest.mark.parametrize(
    ("setup", "kind", "arguments", "message"),
    [
        ("none", "rds-engine-version", {"engine": "aurora-mysql", "major": "3"}, "add the parameter before its lookup"),
        ("default", "rds-engine-version", {"engine": "aurora-mysql", "major": "3"}, "Type String and Default ''"),
        ("ok", "ami-id", {"name": "x"}, "unknown lookup kind 'ami-id'; use one of: availability-zones, rds-engine-"),
        ("ok", "rds-engine-version", {"engine": "aurora-mysql"}, r"takes engine, major \(missing major\)"),
        ("ok", "rds-engine-version", {"engine": "aurora-mysql", "major": "3", "x": "1"}, r"\(unexpected x\)"),
        ("ok", "rds-engine-version", {"engine": "aurora-mysql", "major": ""}, "must be a non-empty string"),
    ],
    ids=["no parameter", "parameter with a default", "unknown kind", "missing argument", "extra argument", "empty"],
)
def test_a_lookup_that_cannot_run_is_refused_at_build(setup, kind, arguments, message):
    stack = _stack()
    if setup == "ok":
        _add_version_parameter(stack)
    elif setup == "default":
        stack.add_parameter(Parameter("DbEngineVersion", Type="String", Default="8.0"), owner="test")
    with pytest.raises(InputError, match=message):
        stack.add_lookup("DbEngineVersion", kind=kind, **arguments)


def test_a_parameter_gets_one_lookup():
    stack = _stack()
    _add_version_parameter(stack)
    stack.add_lookup("DbEngineVersion", kind="rds-engine-version", engine="aurora-mysql", major="3")
    with pytest.raises(InputError, match="already has a lookup"):
        stack.add_lookup("DbEngineVersion", kind="rds-engine-version", engine="aurora-mysql", major="2")


def test_a_hand_edited_lookup_is_refused_at_deploy(tmp_path):
    template = _template()
    template["Metadata"]["cfnbuild"]["lookups"]["DbEngineVersion"]["kind"] = "rds-engine-versions"
    with pytest.raises(LookupSpecError, match="DbEngineVersion: unknown lookup kind 'rds-engine-versions'"):
        resolve_lookups(template, region=REGION, session=None, cache_dir=tmp_path)


# -- resolving ---------------------------------------------------------------------------------


def test_newest_version_is_chosen_by_numeric_order_across_pages(rds, tmp_path):
    """The emulator lacks DescribeDBEngineVersions, hence the Stubber."""
    rds.answer(
        _versions("8.0.mysql_aurora.3.05.2", "8.0.mysql_aurora.3.9.1", "8.0.mysql_aurora.3.04.0"),
        marker="page-2",
    )
    rds.answer(_versions("8.0.mysql_aurora.3.10.0", "8.0.mysql_aurora.3.08.2"), after="page-2")
    result = _resolve(rds, tmp_path)["DbEngineVersion"]
    assert result.value == "8.0.mysql_aurora.3.10.0"  # string order would pick 3.9.1
    assert result.source == "aws"
    assert result.message == "8.0.mysql_aurora.3.10.0, the newest Aurora MySQL 3 version in eu-west-1 (looked up now)"
    assert rds.calls == ["DescribeDBEngineVersions", "DescribeDBEngineVersions"]


def test_other_majors_unavailable_and_malformed_versions_are_ignored(rds, tmp_path):
    """The emulator lacks DescribeDBEngineVersions, hence the Stubber."""
    rds.answer(
        [
            *_versions("5.7.mysql_aurora.2.12.4", "9.0.mysql_aurora.4.0.0", "8.0.mysql_aurora.3.x", "3.07.1"),
            *_versions("8.0.mysql_aurora.3.99.0", status="deprecated"),
            *_versions("8.0.mysql_aurora.3.06.1", status=None),  # older answers carry no Status
            *_versions("8.0.mysql_aurora.3.02.0"),
        ]
    )
    assert _resolve(rds, tmp_path)["DbEngineVersion"].value == "8.0.mysql_aurora.3.06.1"


def test_no_version_of_the_major_falls_back_saying_so(rds, tmp_path):
    """The emulator lacks DescribeDBEngineVersions, hence the Stubber."""
    rds.answer(_versions("5.7.mysql_aurora.2.12.4", "5.7.mysql_aurora.2.11.2"))
    result = _resolve(rds, tmp_path)["DbEngineVersion"]
    assert (result.value, result.source) == ("", "fallback")
    assert result.message == FALLBACK.format("none of the 2 aurora-mysql versions listed is an available 3.x")


def test_a_cached_answer_makes_no_call(rds, tmp_path):
    """The emulator lacks DescribeDBEngineVersions, hence the Stubber (queued once, called once)."""
    rds.answer(_versions("8.0.mysql_aurora.3.08.0"))
    assert _resolve(rds, tmp_path)["DbEngineVersion"].source == "aws"
    (entry,) = tmp_path.iterdir()
    cached = json.loads(entry.read_text())
    assert cached == {
        "arguments": {"engine": "aurora-mysql", "major": "3"},
        "kind": "rds-engine-version",
        "looked_up_at": "2025-03-01T12:00:00+00:00",
        "region": "eu-west-1",
        "value": "8.0.mysql_aurora.3.08.0",
    }

    again = _resolve(rds, tmp_path, now=NOW + timedelta(hours=23, minutes=59))["DbEngineVersion"]
    assert (again.value, again.source) == ("8.0.mysql_aurora.3.08.0", "cache")
    assert again.message.endswith("(cached 23 h ago)")
    assert rds.calls == ["DescribeDBEngineVersions"]


def test_an_expired_cache_entry_is_looked_up_again(rds, tmp_path):
    """The emulator lacks DescribeDBEngineVersions, hence the Stubber."""
    rds.answer(_versions("8.0.mysql_aurora.3.08.0"))
    rds.answer(_versions("8.0.mysql_aurora.3.08.0", "8.0.mysql_aurora.3.09.0"))
    _resolve(rds, tmp_path)
    later = _resolve(rds, tmp_path, now=NOW + timedelta(hours=24))["DbEngineVersion"]
    assert (later.value, later.source) == ("8.0.mysql_aurora.3.09.0", "aws")
    assert len(rds.calls) == 2
    (entry,) = tmp_path.iterdir()
    assert json.loads(entry.read_text())["looked_up_at"] == "2025-03-02T12:00:00+00:00"


@pytest.mark.parametrize(
    "content",
    ["{not json", '{"value": 3}', '{"kind": "rds-engine-version", "region": "eu-central-1", "value": "x"}'],
    ids=["corrupt", "wrong shape", "another lookup's"],
)
def test_a_cache_entry_this_lookup_did_not_write_is_not_trusted(rds, tmp_path, content):
    """The emulator lacks DescribeDBEngineVersions, hence the Stubber."""
    rds.answer(_versions("8.0.mysql_aurora.3.08.0"))
    _resolve(rds, tmp_path)
    (entry,) = tmp_path.iterdir()
    entry.write_text(content)
    rds.answer(_versions("8.0.mysql_aurora.3.09.0"))
    assert _resolve(rds, tmp_path)["DbEngineVersion"].value == "8.0.mysql_aurora.3.09.0"


def test_the_cache_is_per_region(rds, tmp_path):
    """The emulator lacks DescribeDBEngineVersions, hence the Stubber."""
    rds.answer(_versions("8.0.mysql_aurora.3.08.0"))
    rds.answer(_versions("8.0.mysql_aurora.3.07.0"))
    assert _resolve(rds, tmp_path)["DbEngineVersion"].value == "8.0.mysql_aurora.3.08.0"
    other = _resolve(rds, tmp_path, region="eu-central-1")["DbEngineVersion"]
    assert (other.value, other.source) == ("8.0.mysql_aurora.3.07.0", "aws")
    assert "in eu-central-1" in other.message
    assert len(list(tmp_path.iterdir())) == 2


def test_access_denied_falls_back_to_the_region_default_naming_the_reason(rds, tmp_path):
    """The emulator lacks DescribeDBEngineVersions (and IAM checks), hence the Stubber's error."""
    rds.stubber.add_client_error(
        "describe_db_engine_versions",
        service_error_code="AccessDenied",
        service_message="User: deployer is not authorized to perform: rds:DescribeDBEngineVersions",
        http_status_code=403,
    )
    results = _resolve(rds, tmp_path)
    result = results["DbEngineVersion"]
    assert (result.value, result.source) == ("", "fallback")
    assert result.message == FALLBACK.format(
        "AccessDenied: User: deployer is not authorized to perform: rds:DescribeDBEngineVersions"
    )
    assert results.parameter_values() == {"DbEngineVersion": ""}
    assert results.fallbacks() == [result]
    assert results.messages() == [f"DbEngineVersion: {result.message}"]
    assert list(tmp_path.iterdir()) == []  # a failure is not cached: the next deploy asks again


def test_no_credentials_falls_back_naming_the_reason(tmp_path, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = resolve_lookups(_template(), region=REGION, session=None, cache_dir=tmp_path / "cache")["DbEngineVersion"]
    assert result.value == ""
    assert result.message == FALLBACK.format("NoCredentialsError: Unable to locate credentials")


def test_an_unreachable_endpoint_falls_back_naming_the_reason(tmp_path, monkeypatch):
    monkeypatch.setattr("cfnbuild.deploy.lookups.MAX_ATTEMPTS", 1)  # no retry backoff in a unit test
    session = boto3.Session(region_name=REGION, **FAKE_CREDENTIALS)
    result = resolve_lookups(
        _template(), region=REGION, session=session, cache_dir=tmp_path, endpoint_url="http://127.0.0.1:9"
    )["DbEngineVersion"]
    assert result.value == ""
    assert result.message.startswith("could not look up the newest Aurora MySQL 3 version in eu-west-1 (")
    assert "EndpointConnectionError: Could not connect to the endpoint URL" in result.message


def test_the_emulator_without_the_api_gives_the_fallback_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setattr("cfnbuild.deploy.lookups.MAX_ATTEMPTS", 1)  # no retry backoff in a unit test
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        session = boto3.Session(region_name=REGION, **FAKE_CREDENTIALS)
        result = resolve_lookups(
            _template(), region=REGION, session=session, cache_dir=tmp_path, endpoint_url=f"http://{host}:{port}"
        )["DbEngineVersion"]
    finally:
        server.stop()
    assert result.value == ""
    assert result.message.startswith(
        FALLBACK.split("(", maxsplit=1)[0] + "(ResponseParserError: the endpoint's answer is not an AWS response"
    )
    assert result.message.endswith("); using the region's default")


def test_an_override_wins_without_a_call(rds, tmp_path):
    """The emulator lacks DescribeDBEngineVersions, hence the Stubber (nothing queued)."""
    results = _resolve(rds, tmp_path, overrides={"DbEngineVersion": "8.0.mysql_aurora.3.05.2", "Other": "x"})
    result = results["DbEngineVersion"]
    assert (result.value, result.source) == ("8.0.mysql_aurora.3.05.2", "override")
    assert result.message == (
        "8.0.mysql_aurora.3.05.2 given explicitly; the newest Aurora MySQL 3 version in eu-west-1 not looked up"
    )
    assert list(results) == ["DbEngineVersion"]  # parameters without a lookup are not this module's
    assert rds.calls == []
    assert list(tmp_path.iterdir()) == []


def test_a_template_without_lookups_resolves_to_nothing(tmp_path):
    stack = _stack()
    _add_version_parameter(stack)
    results = resolve_lookups(stack.to_dict(), region=REGION, session=None, cache_dir=tmp_path)
    assert len(results) == 0
    assert "Metadata" not in stack.to_dict()


@pytest.mark.parametrize(
    ("engine", "version", "major", "key"),
    [
        ("aurora-mysql", "8.0.mysql_aurora.3.10.0", "3", (3, 10, 0)),
        ("aurora-mysql", "8.0.mysql_aurora.3.09.1", "3", (3, 9, 1)),
        ("aurora-mysql", "5.7.mysql_aurora.2.11.2", "3", None),
        ("aurora-mysql", "8.0.mysql_aurora.3", "3", None),
        ("aurora-mysql", "8.0.mysql_aurora.3.x.1", "3", None),
        ("aurora-mysql", "8.0.mysql_aurora.30.1.0", "3", None),
        ("aurora-postgresql", "16.4", "16", (16, 4)),
        ("mysql", "8.0.40", "8.0", (8, 0, 40)),
        ("mysql", "8.4.3", "8.0", None),
    ],
)
def test_engine_versions_compare_as_numbers_within_their_major(engine, version, major, key):
    assert engine_version_key(engine, version, major) == key


def test_a_corrupt_lookup_cache_entry_is_a_miss_warned_once_and_overwritten(rds, tmp_path, monkeypatch, capsys):
    """The emulator lacks DescribeDBEngineVersions, hence the Stubber."""
    monkeypatch.chdir(tmp_path)
    rds.answer(_versions("8.0.mysql_aurora.3.08.0"))
    _resolve(rds, tmp_path / "lookups")
    (entry,) = (tmp_path / "lookups").iterdir()
    entry.write_text('{"value": "8.0.mysql')  # cut short
    rds.answer(_versions("8.0.mysql_aurora.3.09.0"))
    result = _resolve(rds, tmp_path / "lookups")["DbEngineVersion"]
    assert (result.value, result.source) == ("8.0.mysql_aurora.3.09.0", "aws")
    assert capsys.readouterr().err == (
        f"warning: lookups/{entry.name} is not a valid cache entry "
        "(Unterminated string starting at: line 1 column 11); recomputing it\n"
    )
    assert json.loads(entry.read_text())["value"] == "8.0.mysql_aurora.3.09.0"
    assert _resolve(rds, tmp_path / "lookups")["DbEngineVersion"].source == "cache"
    assert capsys.readouterr().err == ""


WRONG_SHAPES = {
    "no timestamp": ('{"value": 3}', "no 'looked_up_at'"),
    "not a timestamp": (
        '{"looked_up_at": "yesterday", "value": "x"}',
        "'looked_up_at' is not a timestamp: 'yesterday'",
    ),
    "no time zone": (
        '{"looked_up_at": "2025-03-01T11:00:00", "value": "x"}',
        "'looked_up_at' has no time zone: '2025-03-01T11:00:00'",
    ),
}


@pytest.mark.parametrize("shape", WRONG_SHAPES, ids=list(WRONG_SHAPES))
def test_a_lookup_cache_entry_of_the_wrong_shape_names_what_is_wrong(rds, tmp_path, monkeypatch, capsys, shape):
    """The emulator lacks DescribeDBEngineVersions, hence the Stubber."""
    monkeypatch.chdir(tmp_path)
    content, reason = WRONG_SHAPES[shape]
    rds.answer(_versions("8.0.mysql_aurora.3.08.0"))
    _resolve(rds, tmp_path / "lookups")
    (entry,) = (tmp_path / "lookups").iterdir()
    entry.write_text(content)
    rds.answer(_versions("8.0.mysql_aurora.3.09.0"))
    assert _resolve(rds, tmp_path / "lookups")["DbEngineVersion"].source == "aws"
    assert capsys.readouterr().err == (
        f"warning: lookups/{entry.name} is not a valid cache entry ({reason}); recomputing it\n"
    )


def test_a_lookup_cache_that_cannot_be_written_is_warned_about_and_the_answer_still_used(
    rds, tmp_path, monkeypatch, capsys
):
    """A file where the cache directory should be (the tests run as root, whom a read-only mode does not stop)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lookups").write_text("")
    rds.answer(_versions("8.0.mysql_aurora.3.08.0"))
    result = _resolve(rds, tmp_path / "lookups")["DbEngineVersion"]
    assert (result.value, result.source) == ("8.0.mysql_aurora.3.08.0", "aws")
    assert capsys.readouterr().err == (
        "warning: cannot write to the cache lookups/ (lookups is a file, not a directory); "
        "carrying on without caching\n"
    )
