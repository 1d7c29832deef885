"""The web application firewall, asserted on the built templates the way the CDK's assertions module does.

The emulator (moto) models no AWS::WAFv2 type, so nothing here deploys: the web ACL, its
association, its logging and the log group are checked in the templates cfnbuild builds from the
committed configs (dev, staging, prod) and from a stack holding only the blueprint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from troposphere import Parameter, Ref

from blueprints.config import LOG_RETENTION_DAYS, WebAppConfig
from blueprints.encryption import Keys, KeysInputs
from blueprints.waf import LOG_GROUP_PREFIX, Waf, WafInputs
from blueprints.webapp import build_webapp
from cfnbuild import InputError, Stack
from cfnbuild.build.lint import cfn_lint, checkov
from cfnbuild.build.stateful import is_stateful
from cfnbuild.errors import ConfigError
from cfnbuild.project.config import load_config
from tests.assertions import Match, TemplateAssert

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
REGIONS = ["eu-west-1", "eu-central-1", "us-east-1"]
MANAGED_GROUPS = [
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
]


def _stack(**inputs: Any) -> Stack:
    """A stack with the key and the blueprint; the ALB's ARN comes in as a parameter."""
    stack = Stack("waf", description="d", project="p", environment="staging")
    keys = Keys(stack, KeysInputs())
    stack.add_parameter(Parameter("AlbArn", Type="String"), owner="test")
    Waf(stack, WafInputs(**{"load_balancer_arn": Ref("AlbArn"), "kms_key_arn": keys.logs_key_arn, **inputs}))
    return stack


def _config(environment: str, text: str | None = None, tmp_path: Path | None = None) -> WebAppConfig:
    source = CONFIG / f"{environment}.toml"
    if text is None:
        return load_config(source, WebAppConfig)
    assert tmp_path is not None
    path = tmp_path / f"{environment}.toml"
    path.write_text(text)
    return load_config(path, WebAppConfig)


def _built(environment: str) -> TemplateAssert:
    return TemplateAssert(build_webapp(_config(environment)).to_dict())


def _resolve(value: Any, stack_name: str, stack_id: str) -> Any:
    """Evaluate the few intrinsic functions a physical name is built from (Join, Select, Split, Ref)."""
    if isinstance(value, list):
        return [_resolve(v, stack_name, stack_id) for v in value]
    if not isinstance(value, dict):
        return value
    ((function, argument),) = value.items()
    if function == "Ref":
        return {"AWS::StackName": stack_name, "AWS::StackId": stack_id}[argument]
    args = _resolve(argument, stack_name, stack_id)
    if function == "Fn::Join":
        return args[0].join(args[1])
    if function == "Fn::Split":
        return args[1].split(args[0])
    if function == "Fn::Select":
        return args[1][args[0]]
    raise AssertionError(f"unexpected {function} in a name")


def _rules(t: TemplateAssert, statement: str) -> list[dict[str, Any]]:
    """The ``statement`` parts (``RateBasedStatement``, ...) of the one web ACL's rules, in order."""
    (acl,) = t.of_type("AWS::WAFv2::WebACL").values()
    return [r["Statement"][statement] for r in acl["Properties"]["Rules"] if statement in r["Statement"]]


# --- gates ----------------------------------------------------------------------------------------


def test_gate_zero_cfn_lint_and_checkov_findings_including_the_log4j_rule_check(tmp_path):
    text = _stack().to_json()
    assert cfn_lint(text, REGIONS, file="t.json") == []
    (tmp_path / "waf.json").write_text(text)
    # checkov runs its WAF checks over the ACL (CKV_AWS_192: KnownBadInputs with Log4JRCE blocking)
    # and its log-group checks (retention, KMS key) with nothing skipped in Metadata.
    assert checkov([tmp_path / "waf.json"], root=tmp_path) == []
    assert "checkov" not in text


# --- the web ACL ---------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_staging_and_prod_have_a_regional_web_acl_allowing_by_default_with_the_four_rules(environment):
    t = _built(environment)
    t.resource_count_is("AWS::WAFv2::WebACL", 1)
    t.has_resource_properties(
        "AWS::WAFv2::WebACL",
        {
            "Scope": "REGIONAL",
            "DefaultAction": {"Allow": {}},
            "Name": Match.absent(),  # left to CloudFormation: two stacks never collide
            "VisibilityConfig": {
                "CloudWatchMetricsEnabled": True,
                "SampledRequestsEnabled": True,
                "MetricName": {"Fn::Sub": "${AWS::StackName}"},
            },
        },
    )
    (acl,) = t.of_type("AWS::WAFv2::WebACL").values()
    rules = acl["Properties"]["Rules"]
    assert [r["Priority"] for r in rules] == [0, 1, 2, 3]
    managed = _rules(t, "ManagedRuleGroupStatement")
    assert sorted(g["Name"] for g in managed) == MANAGED_GROUPS
    assert all(g["VendorName"] == "AWS" for g in managed)
    assert [r["Name"] for r in rules if "RateBasedStatement" in r["Statement"]] == ["RateLimitPerIp"]


def test_managed_groups_keep_their_own_block_actions_and_the_rate_rule_blocks():
    (acl,) = _built("prod").of_type("AWS::WAFv2::WebACL").values()
    overrides = {}
    for rule in acl["Properties"]["Rules"]:
        if "ManagedRuleGroupStatement" in rule["Statement"]:
            assert rule["OverrideAction"] == {"None": {}}, rule["Name"]  # Count would only watch
            assert "Action" not in rule
            statement = rule["Statement"]["ManagedRuleGroupStatement"]
            assert "ExcludedRules" not in statement, rule["Name"]  # Log4JRCE and the rest stay blocking
            overrides[statement["Name"]] = statement.get("RuleActionOverrides", [])
        else:
            assert rule["Action"] == {"Block": {}}
            assert "OverrideAction" not in rule
    # Only the core rule set's 8 KB body rule is turned to Count, nothing else.
    assert overrides == {
        "AWSManagedRulesAmazonIpReputationList": [],
        "AWSManagedRulesCommonRuleSet": [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}],
        "AWSManagedRulesKnownBadInputsRuleSet": [],
    }


def test_the_8_kb_body_rule_counts_because_a_valid_note_is_larger_than_8_kb():
    # WAF inspects a body's first 8,192 bytes and the core rule set blocks anything larger; a note
    # the API accepts (BODY_MAX_LENGTH characters, at least one byte each) does not fit.
    from flask_app.models import BODY_MAX_LENGTH

    assert len(json.dumps({"title": "t", "body": "x" * BODY_MAX_LENGTH}).encode()) > 8192
    (common,) = [
        g for g in _rules(_built("staging"), "ManagedRuleGroupStatement") if g["Name"].endswith("CommonRuleSet")
    ]
    assert [o["Name"] for o in common["RuleActionOverrides"]] == ["SizeRestrictions_BODY"]


def test_block_large_bodies_leaves_the_core_rule_set_untouched():
    groups = _rules(TemplateAssert(_stack(block_large_bodies=True).to_dict()), "ManagedRuleGroupStatement")
    assert [g for g in groups if "RuleActionOverrides" in g] == []


def test_every_rule_publishes_metrics_and_samples_under_its_own_metric_name():
    (acl,) = _built("staging").of_type("AWS::WAFv2::WebACL").values()
    names = []
    for rule in acl["Properties"]["Rules"]:
        visibility = rule["VisibilityConfig"]
        assert visibility["CloudWatchMetricsEnabled"] is True
        assert visibility["SampledRequestsEnabled"] is True
        assert visibility["MetricName"] not in ("All", "Default_Action")  # reserved by WAF
        names.append(visibility["MetricName"])
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_rate_rule_limits_each_client_address_to_the_configured_requests_per_5_minutes(environment):
    configured = _config(environment).waf.rate_limit_per_5_min
    (rate,) = _rules(_built(environment), "RateBasedStatement")
    assert rate == {"Limit": configured, "AggregateKeyType": "IP", "EvaluationWindowSec": 300}


def test_rate_limit_follows_the_config_file(tmp_path):
    text = (CONFIG / "staging.toml").read_text().replace("rate_limit_per_5_min = 2000", "rate_limit_per_5_min = 600")
    assert "rate_limit_per_5_min = 600" in text
    template = TemplateAssert(build_webapp(_config("staging", text, tmp_path)).to_dict())
    assert [rate["Limit"] for rate in _rules(template, "RateBasedStatement")] == [600]


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_web_acl_is_associated_with_the_load_balancer(environment):
    t = _built(environment)
    t.resource_count_is("AWS::WAFv2::WebACLAssociation", 1)
    t.has_resource_properties(
        "AWS::WAFv2::WebACLAssociation",
        {"ResourceArn": {"Ref": "LoadBalancer"}, "WebACLArn": {"Fn::GetAtt": ["WebAcl", "Arn"]}},
    )
    assert t.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer").keys() == {"LoadBalancer"}
    t.has_output("WebAclArn", {"Value": {"Fn::GetAtt": ["WebAcl", "Arn"]}})


# --- logging -------------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_blocked_requests_are_logged_to_a_retained_encrypted_aws_waf_logs_group(environment):
    t = _built(environment)
    config = _config(environment)
    # The one named group with WAF's prefix (the database's exported logs have named groups too).
    (group_id,) = [
        k
        for k, v in t.of_type("AWS::Logs::LogGroup").items()
        if LOG_GROUP_PREFIX in json.dumps(v.get("Properties", {}).get("LogGroupName", ""))
    ]
    group = t.resources[group_id]
    props = group["Properties"]
    assert props["RetentionInDays"] == config.waf.log_retention_days
    assert props["KmsKeyId"] == {"Ref": "NetworkLogsKeyArn"}  # the network stack's key
    assert is_stateful(group)
    assert group["DeletionPolicy"] == "RetainExceptOnCreate"
    assert group["UpdateReplacePolicy"] == "Retain"
    stack_id = "arn:aws:cloudformation:r:a:stack/s/1a2b3c4d-0-0-0-0"
    name = _resolve(props["LogGroupName"], f"webapp-{environment}", stack_id)
    assert name == f"{LOG_GROUP_PREFIX}webapp-{environment}-1a2b3c4d"
    t.has_resource_properties(
        "AWS::WAFv2::LoggingConfiguration",
        {
            "ResourceArn": {"Fn::GetAtt": ["WebAcl", "Arn"]},
            # The group's ARN as WAF writes it: without the ":*" that GetAtt Arn of a log group has.
            "LogDestinationConfigs": [
                {
                    "Fn::Sub": [
                        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${LogGroup}",
                        {"LogGroup": {"Ref": group_id}},
                    ]
                }
            ],
        },
    )
    t.has_output("WafLogGroupName", {"Value": {"Ref": group_id}})


def test_logging_filter_keeps_only_blocked_and_counted_requests_and_redacts_credentials():
    (logging,) = _built("prod").of_type("AWS::WAFv2::LoggingConfiguration").values()
    props = logging["Properties"]
    log_filter = props["LoggingFilter"]
    assert log_filter["DefaultBehavior"] == "DROP"  # allowed requests are not logged
    (keep,) = log_filter["Filters"]
    assert keep["Behavior"] == "KEEP"
    assert keep["Requirement"] == "MEETS_ANY"
    actions = {c["ActionCondition"]["Action"] for c in keep["Conditions"]}
    assert actions == {"BLOCK", "COUNT", "EXCLUDED_AS_COUNT"}
    assert "ALLOW" not in actions
    redacted = [field["SingleHeader"]["Name"] for field in props["RedactedFields"]]
    assert redacted == ["authorization", "cookie"]


def test_the_template_writes_no_log_resource_policy_of_its_own():
    # WAF adds the log group's resource policy itself when the logging configuration is created.
    t = _built("prod")
    t.resource_count_is("AWS::Logs::ResourcePolicy", 0)


# --- switched per environment --------------------------------------------------------------------


def test_dev_has_no_firewall_so_it_stays_cheap():
    assert _config("dev").waf.enabled is False
    t = _built("dev")
    resources = json.dumps(t.resources)
    assert "AWS::WAFv2::" not in resources
    assert LOG_GROUP_PREFIX not in resources
    assert "WebAclArn" not in t.template["Outputs"]
    assert "WafLogGroupName" not in t.template["Outputs"]


def test_turning_the_firewall_off_in_prod_removes_every_waf_resource(tmp_path):
    text = (CONFIG / "prod.toml").read_text().replace("[waf]\nenabled = true", "[waf]\nenabled = false")
    assert "[waf]\nenabled = false" in text
    t = TemplateAssert(build_webapp(_config("prod", text, tmp_path)).to_dict())
    for resource_type in ("AWS::WAFv2::WebACL", "AWS::WAFv2::WebACLAssociation", "AWS::WAFv2::LoggingConfiguration"):
        t.resource_count_is(resource_type, 0)
    assert "WafLogGroup" not in t.resources


def test_an_environment_without_a_waf_section_gets_the_firewall(tmp_path):
    text = (CONFIG / "staging.toml").read_text()
    text = text[: text.index("[waf]")]
    config = _config("staging", text, tmp_path)
    assert config.waf.enabled is True
    assert config.waf.rate_limit_per_5_min == 2000
    TemplateAssert(build_webapp(config).to_dict()).resource_count_is("AWS::WAFv2::WebACL", 1)


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "key", "message"),
    [
        ("rate_limit_per_5_min = 9", "waf.rate_limit_per_5_min", "use 10 to 2,000,000,000 requests per 5 minutes"),
        ("rate_limit_per_5_min = 2000000001", "waf.rate_limit_per_5_min", "outside what AWS WAF accepts"),
        ('rate_limit_per_5_min = "2000"', "waf.rate_limit_per_5_min", "expected an integer"),
        ("log_retention_days = 10", "waf.log_retention_days", "which CloudWatch Logs does not offer"),
        ('enabled = "yes"', "waf.enabled", "expected"),
        ("rate_limit = 100", "waf.rate_limit", "unknown key; did you mean 'rate_limit_per_5_min'?"),
    ],
)
def test_bad_waf_config_is_one_line_naming_the_file_the_key_and_the_fix(tmp_path, line, key, message):
    path = tmp_path / "staging.toml"
    text = (CONFIG / "staging.toml").read_text()
    path.write_text(text[: text.index("[waf]")] + f"[waf]\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, WebAppConfig)
    lines = str(info.value).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: {key}: "), lines[0]
    assert message in lines[0], lines[0]
    assert info.value.exit_code == 2


@pytest.mark.parametrize("limit", [9, 0, -1, 2_000_000_001])
def test_blueprint_refuses_a_rate_limit_waf_does_not_accept(limit):
    with pytest.raises(InputError, match=r"Waf input 'rate_limit_per_5_min': is .*; WAF takes 10 to 2,000,000,000"):
        _stack(rate_limit_per_5_min=limit)


@pytest.mark.parametrize("limit", [10, 2_000_000_000])
def test_blueprint_takes_the_bounds_themselves(limit):
    rates = _rules(TemplateAssert(_stack(rate_limit_per_5_min=limit).to_dict()), "RateBasedStatement")
    assert [rate["Limit"] for rate in rates] == [limit]


def test_blueprint_refuses_a_retention_cloudwatch_logs_does_not_offer():
    assert 10 not in LOG_RETENTION_DAYS
    with pytest.raises(InputError, match=r"Waf input 'log_retention_days': is 10, which CloudWatch Logs"):
        _stack(log_retention_days=10)
