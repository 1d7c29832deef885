"""The availability-zones lookup: zones chosen by zone ID, kept once a stack has them.

EC2's answers are scripted with botocore's ``Stubber`` on a real boto3 EC2 client, so a test
can give the zones in any order and under any names; the emulator's own answer is used by
``tests/cfnbuild/deploy/test_zones.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from troposphere import Parameter

from cfnbuild import InputError, Stack
from cfnbuild.deploy.lookups import resolve_lookups

REGION = "eu-west-1"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
FILTERS = [
    {"Name": "state", "Values": ["available"]},
    {"Name": "zone-type", "Values": ["availability-zone"]},
]


def _template(count: str = "2") -> dict[str, Any]:
    stack = Stack("net", description="d", project="p", environment="dev")
    stack.add_parameter(Parameter("AvailabilityZones", Type="String", Default=""), owner="test")
    stack.add_lookup("AvailabilityZones", kind="availability-zones", count=count)
    return stack.to_dict()


def _zone(name: str, zone_id: str, **extra: str) -> dict[str, str]:
    return {"ZoneName": name, "ZoneId": zone_id, "State": "available", "ZoneType": "availability-zone", **extra}


class Ec2:
    """A real boto3 session whose EC2 client answers only what a test queued on its Stubber."""

    def __init__(self) -> None:
        self.session = boto3.Session(region_name=REGION, **FAKE_CREDENTIALS)
        self.client = self.session.client("ec2", region_name=REGION)
        self.stubber = Stubber(self.client)
        self.session.client = lambda *args, **kwargs: self.client  # type: ignore[method-assign]

    def answer(self, *zones: dict[str, str]) -> None:
        self.stubber.add_response(
            "describe_availability_zones", {"AvailabilityZones": list(zones)}, {"Filters": FILTERS}
        )


@pytest.fixture
def ec2() -> Iterator[Ec2]:
    stubbed = Ec2()
    with stubbed.stubber:
        yield stubbed
        stubbed.stubber.assert_no_pending_responses()


def _resolve(ec2: Ec2 | None, cache_dir: Path, **kwargs: Any) -> Any:
    session = ec2.session if ec2 is not None else boto3.Session(region_name=REGION, **FAKE_CREDENTIALS)
    template = kwargs.pop("template", None) or _template()
    result = resolve_lookups(template, region=REGION, session=session, cache_dir=cache_dir, clock=lambda: NOW, **kwargs)
    return result["AvailabilityZones"]


def test_zones_are_chosen_by_zone_id_whatever_order_and_names_the_api_gives(ec2, tmp_path):
    # This account maps the names to IDs its own way: "a" is az3 here.
    ec2.answer(_zone("eu-west-1a", "euw1-az3"), _zone("eu-west-1c", "euw1-az2"), _zone("eu-west-1b", "euw1-az1"))
    result = _resolve(ec2, tmp_path)
    assert (result.value, result.source) == ("eu-west-1b,eu-west-1c", "aws")
    assert (
        result.message
        == "eu-west-1b,eu-west-1c, the first 2 Availability Zones by zone ID in eu-west-1 (looked up now)"
    )


def test_the_same_zone_ids_in_another_order_give_the_same_zones(ec2, tmp_path):
    ec2.answer(_zone("eu-west-1b", "euw1-az1"), _zone("eu-west-1c", "euw1-az2"), _zone("eu-west-1a", "euw1-az3"))
    ec2.answer(_zone("eu-west-1a", "euw1-az3"), _zone("eu-west-1b", "euw1-az1"), _zone("eu-west-1c", "euw1-az2"))
    first = _resolve(ec2, tmp_path / "one").value
    second = _resolve(ec2, tmp_path / "two").value
    assert first == second == "eu-west-1b,eu-west-1c"


def test_zones_not_opted_in_and_zones_that_are_not_availability_zones_are_skipped(ec2, tmp_path):
    ec2.answer(
        _zone("eu-west-1a", "euw1-az1", OptInStatus="not-opted-in"),
        _zone("eu-west-1-lz-1a", "euw1-lz1", ZoneType="local-zone"),
        _zone("eu-west-1b", "euw1-az2", OptInStatus="opt-in-not-required"),
        _zone("eu-west-1c", "euw1-az3", OptInStatus="opted-in"),
    )
    assert _resolve(ec2, tmp_path).value == "eu-west-1b,eu-west-1c"


def test_too_few_zones_fall_back_with_a_sentence_naming_the_usable_ones(ec2, tmp_path):
    ec2.answer(_zone("eu-west-1a", "euw1-az1"), _zone("eu-west-1b", "euw1-az2"))
    result = _resolve(ec2, tmp_path, template=_template("3"))
    assert (result.value, result.source) == ("", "fallback")
    assert result.message == (
        "could not look up the first 3 Availability Zones by zone ID in eu-west-1 (the region has 2 usable "
        "Availability Zone(s) for 3: eu-west-1a (euw1-az1), eu-west-1b (euw1-az2)); using the region's default"
    )


def test_a_deployed_stack_keeps_its_zones_without_asking_aws(ec2, tmp_path):
    # Nothing queued on the Stubber: a call would fail the test.
    result = _resolve(ec2, tmp_path, deployed={"AvailabilityZones": "eu-west-1a,eu-west-1c"})
    assert (result.value, result.source) == ("eu-west-1a,eu-west-1c", "deployed")
    assert result.message.startswith("eu-west-1a,eu-west-1c kept as the stack has it; the first 2 Availability Zones")
    assert "--param AvailabilityZones=VALUE" in result.message


def test_a_stack_deployed_before_the_lookup_keeps_the_empty_value_that_gave_it_getazs(ec2, tmp_path):
    result = _resolve(ec2, tmp_path, deployed={"NatMode": "single"})
    assert (result.value, result.source) == ("", "deployed")
    assert "the stack predates the lookup" in result.message


def test_an_explicit_value_wins_over_the_deployed_one(ec2, tmp_path):
    result = _resolve(
        ec2,
        tmp_path,
        deployed={"AvailabilityZones": "eu-west-1b,eu-west-1c"},
        overrides={"AvailabilityZones": "eu-west-1a,eu-west-1b"},
    )
    assert (result.value, result.source) == ("eu-west-1a,eu-west-1b", "override")


def test_an_unreachable_endpoint_falls_back_to_getazs_naming_the_reason(tmp_path, monkeypatch):
    monkeypatch.setattr("cfnbuild.deploy.lookups.MAX_ATTEMPTS", 1)  # no retry backoff in a unit test
    result = _resolve(None, tmp_path, endpoint_url="http://127.0.0.1:9")
    assert (result.value, result.source) == ("", "fallback")
    assert result.message.startswith("could not look up the first 2 Availability Zones by zone ID in eu-west-1 (")
    assert "EndpointConnectionError" in result.message


def test_the_answer_is_cached_for_thirty_days(ec2, tmp_path):
    ec2.answer(_zone("eu-west-1a", "euw1-az1"), _zone("eu-west-1b", "euw1-az2"))
    _resolve(ec2, tmp_path)
    later = datetime(2025, 3, 30, 12, 0, tzinfo=UTC)
    session = ec2.session
    cached = resolve_lookups(_template(), region=REGION, session=session, cache_dir=tmp_path, clock=lambda: later)
    assert cached["AvailabilityZones"].source == "cache"


@pytest.mark.parametrize("count", ["0", "7", "two"])
def test_a_zone_count_outside_one_to_six_is_a_build_error(count):
    with pytest.raises(InputError, match=rf"count='{count}' is not a number of zones from 1 to 6"):
        _template(count)
