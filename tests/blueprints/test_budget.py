"""The budget blueprint, asserted the way the CDK's assertions module does."""

import pytest
from troposphere import Ref

from blueprints.budget import Budget, BudgetInputs
from blueprints.encryption import Keys, KeysInputs
from blueprints.observability import ALARM_PUBLISHERS, Logging, LoggingInputs
from cfnbuild import InputError, Stack
from cfnbuild.lint import cfn_lint, checkov
from tests.assertions import Match, TemplateAssert

TOPIC = {"Ref": "AlarmTopic"}
HAS_BUDGET = {"Fn::Not": [{"Fn::Equals": [{"Ref": "MonthlyBudgetUsd"}, "0"]}]}


def _stack(**inputs) -> Stack:
    stack = Stack("cost", description="d", project="p", environment="dev")
    inputs.setdefault("topic_arn", Ref("AlarmTopic"))
    Budget(stack, BudgetInputs(**inputs))
    return stack


def _budget(**inputs) -> TemplateAssert:
    return TemplateAssert(_stack(**inputs).to_dict())


def _notification(kind: str, percent: int, subscribers: list) -> dict:
    return {
        "Notification": {
            "NotificationType": kind,
            "ComparisonOperator": "GREATER_THAN",
            "Threshold": percent,
            "ThresholdType": "PERCENTAGE",
        },
        "Subscribers": subscribers,
    }


def test_seed_17_with_an_amount_a_monthly_cost_budget_warns_on_actual_and_forecast_spend():
    t = _budget(monthly_limit_usd=250, email="ops@example.com")
    parameter = t.template["Parameters"]["MonthlyBudgetUsd"]
    assert (parameter["Type"], parameter["MinValue"], parameter["Default"]) == ("Number", 0, 250)
    assert t.template["Conditions"]["HasBudget"] == HAS_BUDGET
    t.resource_count_is("AWS::Budgets::Budget", 1)
    subscribers = [
        {"SubscriptionType": "SNS", "Address": TOPIC},
        {"SubscriptionType": "EMAIL", "Address": "ops@example.com"},
    ]
    t.has_resource(
        "AWS::Budgets::Budget",
        {
            "Condition": "HasBudget",
            "Properties": {
                "Budget": {
                    "BudgetType": "COST",
                    "TimeUnit": "MONTHLY",
                    "BudgetLimit": {"Amount": {"Ref": "MonthlyBudgetUsd"}, "Unit": "USD"},
                    "BudgetName": Match.absent(),
                },
                "NotificationsWithSubscribers": [
                    _notification("ACTUAL", 80, subscribers),
                    _notification("FORECASTED", 100, subscribers),
                ],
            },
        },
    )
    t.has_output(
        "BudgetName",
        {
            "Condition": "HasBudget",
            "Value": {"Ref": "MonthlyBudget"},
            "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-BudgetName"}},
        },
    )


def test_seed_17_with_no_amount_the_condition_is_false_so_no_budget_is_created():
    t = _budget()
    parameter = t.template["Parameters"]["MonthlyBudgetUsd"]
    assert parameter["Default"] == 0
    # HasBudget is Not(Equals(MonthlyBudgetUsd, "0")): false for the default.
    assert t.template["Conditions"]["HasBudget"] == HAS_BUDGET
    assert str(parameter["Default"]) == t.template["Conditions"]["HasBudget"]["Fn::Not"][0]["Fn::Equals"][1]
    (budget,) = t.of_type("AWS::Budgets::Budget").values()
    assert budget["Condition"] == "HasBudget"
    assert t.template["Outputs"]["BudgetName"]["Condition"] == "HasBudget"


def test_thresholds_follow_the_inputs():
    t = _budget(monthly_limit_usd=10, actual_threshold_percent=50, forecast_threshold_percent=120)
    (budget,) = t.of_type("AWS::Budgets::Budget").values()
    notifications = [n["Notification"] for n in budget["Properties"]["NotificationsWithSubscribers"]]
    assert [(n["NotificationType"], n["Threshold"]) for n in notifications] == [("ACTUAL", 50), ("FORECASTED", 120)]


def test_the_email_subscriber_is_added_only_when_an_address_is_configured():
    topic_only = _budget(monthly_limit_usd=10)
    email_only = _budget(monthly_limit_usd=10, topic_arn=None, email="ops@example.com")
    for t, expected in (
        (topic_only, [{"SubscriptionType": "SNS", "Address": TOPIC}]),
        (email_only, [{"SubscriptionType": "EMAIL", "Address": "ops@example.com"}]),
    ):
        (budget,) = t.of_type("AWS::Budgets::Budget").values()
        for notification in budget["Properties"]["NotificationsWithSubscribers"]:
            assert notification["Subscribers"] == expected


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"topic_arn": None}, "Budget input 'topic_arn': a budget must notify someone"),
        ({"monthly_limit_usd": -1}, "Budget input 'monthly_limit_usd': is -1; use 0"),
        ({"actual_threshold_percent": 0}, "Budget input 'actual_threshold_percent': is 0; use 1 to 1000"),
        ({"forecast_threshold_percent": 1001}, "Budget input 'forecast_threshold_percent': is 1001; use 1 to 1000"),
        ({"email": "not an address"}, "Budget input 'email': 'not an address' is not an e-mail address"),
    ],
)
def test_incompatible_inputs_are_rejected_when_the_blueprint_is_made(inputs, message):
    with pytest.raises(InputError, match=message):
        _budget(**inputs)


def test_gate_zero_cfn_lint_and_checkov_findings(tmp_path):
    stack = Stack("cost", description="d", project="p", environment="dev")
    keys = Keys(stack, KeysInputs(key_services=ALARM_PUBLISHERS))
    logging = Logging(stack, LoggingInputs(kms_key_arn=keys.logs_key_arn))
    Budget(stack, BudgetInputs(monthly_limit_usd=100, email="ops@example.com", topic_arn=logging.topic_arn))
    text = stack.to_json()
    assert cfn_lint(text, ["eu-west-1", "eu-central-1", "us-east-1"], file="t.json") == []
    path = tmp_path / "budget.json"
    path.write_text(text)
    assert checkov([path], root=tmp_path) == []
