"""The stack's KMS key."""

import pytest

from blueprints.encryption import Keys, KeysInputs
from blueprints.observability import ALARM_PUBLISHERS
from cfnbuild import InputError, Stack
from cfnbuild.build.lint import cfn_lint, checkov
from tests.assertions import TemplateAssert


def _keys(**inputs) -> tuple[Stack, TemplateAssert]:
    stack = Stack("keys", description="d", project="p", environment="dev")
    Keys(stack, KeysInputs(**inputs))
    return stack, TemplateAssert(stack.to_dict())


def test_key_rotates_and_is_kept_on_delete():
    _, t = _keys()
    t.has_resource(
        "AWS::KMS::Key",
        {
            "DeletionPolicy": "RetainExceptOnCreate",
            "UpdateReplacePolicy": "Retain",
            "Properties": {"EnableKeyRotation": True},
        },
    )


def test_key_policy_lets_cloudwatch_logs_encrypt_only_log_groups_of_this_account_and_region():
    _, t = _keys()
    (key,) = t.of_type("AWS::KMS::Key").values()
    logs_statement = key["Properties"]["KeyPolicy"]["Statement"][1]
    assert logs_statement["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}
    assert logs_statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"
    }


def test_named_services_use_the_key_only_for_this_account():
    _, t = _keys(key_services=("cloudwatch.amazonaws.com",))
    (key,) = t.of_type("AWS::KMS::Key").values()
    services = key["Properties"]["KeyPolicy"]["Statement"][2]
    assert services["Principal"] == {"Service": ["cloudwatch.amazonaws.com"]}
    assert services["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_budgets_gets_the_documented_key_statement_without_a_source_condition():
    # AWS Budgets' guide ("Protecting your Amazon SNS budget alerts data with SSE and AWS KMS",
    # budgets-sns-policy.html) documents kms:GenerateDataKey* and kms:Decrypt for
    # budgets.amazonaws.com with no condition; a condition its calls do not meet would drop every
    # budget alert silently. The other publishers keep their aws:SourceAccount statement.
    _, t = _keys(key_services=ALARM_PUBLISHERS)
    (key,) = t.of_type("AWS::KMS::Key").values()
    statements = {s["Sid"]: s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    budgets = statements["GrantBudgetsEncryptsTopicMessages"]
    assert budgets == {
        "Sid": "GrantBudgetsEncryptsTopicMessages",
        "Effect": "Allow",
        "Principal": {"Service": "budgets.amazonaws.com"},
        "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
        "Resource": ["*"],
    }
    others = statements["GrantServicesEncrypt"]
    assert others["Principal"] == {"Service": ["cloudwatch.amazonaws.com"]}
    assert others["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_the_key_policy_names_budgets_in_no_statement_that_has_a_condition():
    _, t = _keys(key_services=("budgets.amazonaws.com",))
    (key,) = t.of_type("AWS::KMS::Key").values()
    sids = [s["Sid"] for s in key["Properties"]["KeyPolicy"]["Statement"]]
    assert "GrantServicesEncrypt" not in sids  # no conditioned statement left empty or holding Budgets
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        if "budgets.amazonaws.com" in str(statement.get("Principal")):
            assert "Condition" not in statement


def test_pending_window_outside_what_kms_accepts_is_rejected():
    with pytest.raises(InputError, match="pending_window_days"):
        _keys(pending_window_days=3)


def test_gate_zero_cfn_lint_and_checkov_findings(tmp_path):
    stack, _ = _keys(key_services=ALARM_PUBLISHERS)
    text = stack.to_json()
    assert cfn_lint(text, ["eu-west-1", "eu-central-1", "us-east-1"], file="t.json") == []
    path = tmp_path / "t.json"
    path.write_text(text)
    assert checkov([path], root=tmp_path) == []
