"""The budget blueprint, asserted the way the CDK's assertions module does."""

import re
import shutil
from pathlib import Path

import pytest
from troposphere import Ref

from blueprints.budget import ENVIRONMENT_TAG, Budget, BudgetInputs
from blueprints.encryption import Keys, KeysInputs
from blueprints.observability import ALARM_PUBLISHERS, Logging, LoggingInputs
from cfnbuild import InputError, Stack
from cfnbuild.build.lint import cfn_lint, checkov
from cfnbuild.build.tags import standard_tags
from cfnbuild.errors import CfnbuildError
from cfnbuild.project.app import load_project
from tests.assertions import Match, TemplateAssert

ROOT = Path(__file__).resolve().parents[2]
PROJECT = load_project(ROOT)

TOPIC = {"Ref": "AlarmTopic"}
HAS_AMOUNT = {"Fn::Not": [{"Fn::Equals": [{"Ref": "MonthlyBudgetUsd"}, "0"]}]}
HAS_BUDGET = {"Fn::And": [HAS_AMOUNT, {"Condition": "InBudgetRegion"}]}
IN_BUDGET_REGION = {
    "Fn::Or": [
        {"Fn::Equals": [{"Ref": "BudgetRegion"}, ""]},
        {"Fn::Equals": [{"Ref": "BudgetRegion"}, {"Ref": "AWS::Region"}]},
    ]
}


def _stack(environment: str = "dev", **inputs) -> Stack:
    stack = Stack("cost", description="d", project="p", environment=environment)
    inputs.setdefault("topic_arn", Ref("AlarmTopic"))
    Budget(stack, BudgetInputs(**inputs))
    return stack


def _budget(environment: str = "dev", **inputs) -> TemplateAssert:
    return TemplateAssert(_stack(environment, **inputs).to_dict())


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
                    "CostFilters": {"TagKeyValue": ["user:Environment$dev"]},
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
            "Export": Match.absent(),
        },
    )


def test_seed_17_with_no_amount_the_condition_is_false_so_no_budget_is_created():
    t = _budget()
    parameter = t.template["Parameters"]["MonthlyBudgetUsd"]
    assert parameter["Default"] == 0
    # HasBudget needs Not(Equals(MonthlyBudgetUsd, "0")): false for the default.
    assert t.template["Conditions"]["HasBudget"] == HAS_BUDGET
    assert str(parameter["Default"]) == HAS_AMOUNT["Fn::Not"][0]["Fn::Equals"][1]
    (budget,) = t.of_type("AWS::Budgets::Budget").values()
    assert budget["Condition"] == "HasBudget"
    assert t.template["Outputs"]["BudgetName"]["Condition"] == "HasBudget"


def test_the_budget_counts_only_the_cost_tagged_with_its_own_environment():
    # The legacy filter map's documented tag form (AWS CLI reference, create-budget example):
    # "user:<key>$<value>", the key being the Environment tag every resource carries.
    for environment in ("dev", "staging", "prod"):
        t = _budget(environment, monthly_limit_usd=10)
        (budget,) = t.of_type("AWS::Budgets::Budget").values()
        assert budget["Properties"]["Budget"]["CostFilters"] == {"TagKeyValue": [f"user:Environment${environment}"]}
        assert "FilterExpression" not in budget["Properties"]["Budget"]


def test_the_filter_key_is_the_environment_tag_the_engine_applies():
    assert ENVIRONMENT_TAG in standard_tags("p", "dev")
    assert standard_tags("p", "dev")[ENVIRONMENT_TAG] == "dev"


def test_the_budget_is_made_only_in_the_region_the_budget_region_parameter_names():
    t = _budget(monthly_limit_usd=10)
    parameter = t.template["Parameters"]["BudgetRegion"]
    assert (parameter["Type"], parameter["Default"]) == ("String", "")
    assert re.fullmatch(parameter["AllowedPattern"], "eu-central-1")
    assert re.fullmatch(parameter["AllowedPattern"], "")
    assert not re.fullmatch(parameter["AllowedPattern"], "eu-west")
    assert t.template["Conditions"]["InBudgetRegion"] == IN_BUDGET_REGION
    assert t.template["Conditions"]["HasBudget"] == HAS_BUDGET
    (budget,) = t.of_type("AWS::Budgets::Budget").values()
    assert budget["Condition"] == "HasBudget"
    assert t.template["Outputs"]["BudgetName"]["Condition"] == "HasBudget"


def test_the_condition_holds_in_the_named_region_only():
    # The conditions evaluated the way CloudFormation does, for prod's two regions.
    t = _budget("prod", monthly_limit_usd=10)
    conditions = t.template["Conditions"]

    def holds(name: str, values: dict) -> bool:
        return _evaluate(conditions[name], values, conditions)

    sent = {"MonthlyBudgetUsd": "2500", "BudgetRegion": "eu-west-1"}
    assert holds("HasBudget", {**sent, "AWS::Region": "eu-west-1"})
    assert not holds("HasBudget", {**sent, "AWS::Region": "eu-central-1"})
    assert not holds("HasBudget", {**sent, "MonthlyBudgetUsd": "0", "AWS::Region": "eu-west-1"})
    # A stack made without cfnbuild's deploy (BudgetRegion left empty) still gets its budget.
    assert holds("HasBudget", {"MonthlyBudgetUsd": "2500", "BudgetRegion": "", "AWS::Region": "us-east-1"})


def _evaluate(node, values: dict, conditions: dict):
    """Fn::And/Or/Not/Equals, Ref and Condition over given parameter values: enough for these conditions."""
    if isinstance(node, str):
        return node
    ((function, argument),) = node.items()
    if function == "Ref":
        return values[argument]
    if function == "Condition":
        return _evaluate(conditions[argument], values, conditions)
    parts = [_evaluate(a, values, conditions) for a in argument]
    return {
        "Fn::And": lambda: all(parts),
        "Fn::Or": lambda: any(parts),
        "Fn::Not": lambda: not parts[0],
        "Fn::Equals": lambda: str(parts[0]) == str(parts[1]),
    }[function]()


def test_each_environment_sends_its_first_region_as_the_budget_region():
    for environment, first in (("dev", "eu-west-1"), ("prod", "eu-west-1")):
        assert PROJECT.config(environment).deploy.parameters["BudgetRegion"] == first


def test_a_budget_region_outside_the_environments_regions_is_one_line_naming_the_key(tmp_path):
    root = _project_copy(tmp_path)
    config = root / "config" / "prod.toml"
    config.write_text(config.read_text() + '\n[deploy.parameters]\nBudgetRegion = "us-east-1"\n')
    with pytest.raises(CfnbuildError) as raised:
        load_project(root).config("prod")
    message = str(raised.value)
    assert "deploy.parameters.BudgetRegion" in message
    assert "'us-east-1' is not one of this environment's regions (eu-west-1, eu-central-1)" in message


def test_a_budget_region_among_the_environments_regions_is_kept(tmp_path):
    root = _project_copy(tmp_path)
    config = root / "config" / "prod.toml"
    config.write_text(config.read_text() + '\n[deploy.parameters]\nBudgetRegion = "eu-central-1"\n')
    assert load_project(root).config("prod").deploy.parameters["BudgetRegion"] == "eu-central-1"


def _project_copy(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(ROOT / "config", root / "config")
    return root


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
