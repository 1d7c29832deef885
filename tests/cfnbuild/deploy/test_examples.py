"""Domains and addresses reserved for examples are refused against AWS, before any change set."""

from __future__ import annotations

import pytest

from cfnbuild.deploy.engine import Request
from cfnbuild.deploy.examples import is_reserved_example, reserved_examples
from cfnbuild.errors import UsageError
from tests.cfnbuild.deploy.test_engine import _mini_project, _stubbed


@pytest.mark.parametrize(
    ("value", "reserved"),
    [
        ("app.example.com", True),
        ("platform-oncall@example.com", True),
        ("example.org", True),
        ("db.internal.test", True),
        ("APP.EXAMPLE.NET.", True),
        ("myexample.com", False),
        ("ops@acme.io", False),
        ("https://app.example.com", False),  # a URL, not a name
        ("a domain like app.example.com", False),  # prose
    ],
)
def test_reserved_example_names_are_told_from_real_ones(value, reserved):
    assert is_reserved_example(value) is reserved


def test_examples_are_found_in_sent_parameters_defaults_and_properties_but_not_in_descriptions():
    template = {
        "Parameters": {
            "DomainName": {"Type": "String", "Default": "app.example.com", "Description": "like app.example.com"},
            "Overridden": {"Type": "String", "Default": "x.example.com"},
        },
        "Resources": {
            "Alerts": {
                "Type": "AWS::SNS::Subscription",
                "Properties": {"Protocol": "email", "Endpoint": "oncall@example.com"},
                "Metadata": {"note": "write to oncall@example.com"},
            }
        },
    }
    found = reserved_examples(template, {"Overridden": "app.acme.io"})
    assert found == [("parameter DomainName", "app.example.com"), ("Alerts.Endpoint", "oncall@example.com")]


def test_a_deploy_to_aws_with_an_example_address_is_refused_before_any_change_set(tmp_path):
    root = _mini_project(tmp_path, "stub", topic_label="oncall@example.com")
    engine, stubber = _stubbed(root, "mini-dev-stub")
    engine.aws.target = type(engine.aws.target)("mini-dev-stub", "eu-west-1")  # AWS, not the emulator
    stubber.add_client_error("describe_stacks", "ValidationError", "Stack with id mini-dev-stub does not exist", 400)
    with stubber, pytest.raises(UsageError) as info:
        engine.deploy(Request("dev", "mini", yes=True))
    stubber.assert_no_pending_responses()  # no CreateChangeSet
    assert str(info.value).startswith(
        "output/dev/mini.json: Topic.DisplayName is 'oncall@example.com': reserved example names (RFC 2606) that no "
        "one owns"
    )
    assert str(info.value).endswith("set your own in config/dev.toml (or --param), or deploy it with --local")
