"""A change set with nothing to change is ``None``, however CloudFormation says so."""

from __future__ import annotations

import json

from cfnbuild.deploy import changeset
from cfnbuild.deploy.events import PollSettings

FAST = PollSettings(min_seconds=0.01, max_seconds=0.02, timeout_seconds=30)
BODY = json.dumps(
    {
        "Parameters": {"Label": {"Type": "String"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": {"Ref": "Label"}}}},
    }
)


def _create(cloudformation, change_set_type: str, name: str) -> changeset.ChangeSet | None:
    return changeset.create(
        cloudformation,
        stack_name="nochange-dev",
        name=name,
        change_set_type=change_set_type,
        template={"TemplateBody": BODY},
        parameters=[{"ParameterKey": "Label", "ParameterValue": "same"}],
        tags={},
        capabilities=[],
        client_token=name,
        poll=FAST,
    )


def test_an_update_the_emulator_refuses_at_once_as_no_updates_is_no_change_set(emulator):
    """moto answers CreateChangeSet of an unchanged inline body with UpdateStack's ValidationError; AWS fails the
    change set with "didn't contain changes" instead. Both mean the same: nothing to change."""
    cloudformation = emulator.client("cloudformation")
    created = _create(cloudformation, "CREATE", "first")
    assert created is not None
    cloudformation.execute_change_set(ChangeSetName=created.id)
    assert _create(cloudformation, "UPDATE", "second") is None
    summaries = cloudformation.list_change_sets(StackName="nochange-dev")["Summaries"]
    assert [s["ChangeSetName"] for s in summaries if s["ChangeSetName"] == "second"] == [], "nothing left behind"
