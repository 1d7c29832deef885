"""The logging and alarms blueprints, asserted the way the CDK's assertions module does."""

import json

import pytest
from troposphere import Parameter, Ref, encode_to_dict, sns

from blueprints.encryption import Keys, KeysInputs
from blueprints.observability import (
    ALARM_PUBLISHERS,
    LOG_GROUPS,
    Alarms,
    AlarmsInputs,
    Logging,
    LoggingInputs,
)
from cfnbuild import InputError, Stack
from cfnbuild.build.grants import ResourcePolicy
from cfnbuild.build.lint import cfn_lint, checkov
from tests.assertions import Match, TemplateAssert, matches

KEY_ARN = {"Fn::GetAtt": ["LogsKey", "Arn"]}
TOPIC = {"Ref": "AlarmTopic"}
# Stand-ins for what the load balancer and database blueprints hand over.
FAKE_INPUTS = {
    "load_balancer_full_name": "LoadBalancerFullName",
    "target_group_full_name": "TargetGroupFullName",
    "db_cluster_identifier": "DbClusterIdentifier",
}


def _stack() -> Stack:
    return Stack("obs", description="d", project="p", environment="dev")


def _logging_stack(*, key: bool = True, **inputs) -> tuple[Stack, Logging]:
    stack = _stack()
    if key:
        keys = Keys(stack, KeysInputs(key_services=ALARM_PUBLISHERS))
        inputs.setdefault("kms_key_arn", keys.logs_key_arn)
    return stack, Logging(stack, LoggingInputs(**inputs))


def _logging(**inputs) -> TemplateAssert:
    stack, _ = _logging_stack(**inputs)
    return TemplateAssert(stack.to_dict())


def _full_stack(**alarm_inputs) -> tuple[Stack, Alarms]:
    stack, logging = _logging_stack(alarm_email="ops@example.com")
    for name in FAKE_INPUTS.values():
        stack.add_parameter(Parameter(name, Type="String", Description="test stand-in"), owner="test")
    alarms = Alarms(
        stack,
        AlarmsInputs(
            topic_arn=logging.topic_arn,
            **{field: Ref(name) for field, name in FAKE_INPUTS.items()},
            **alarm_inputs,
        ),
    )
    return stack, alarms


def _alarms(**alarm_inputs) -> TemplateAssert:
    stack, _ = _full_stack(**alarm_inputs)
    return TemplateAssert(stack.to_dict())


# --- Logging -------------------------------------------------------------------------------


def test_seed_09_centralized_log_groups_are_retained_encrypted_and_output():
    t = _logging(retention_days=90)
    groups = t.of_type("AWS::Logs::LogGroup")
    assert sorted(groups) == ["AppLogGroup", "BootstrapLogGroup", "NginxAccessLogGroup", "NginxErrorLogGroup"]
    for logical_id, group in groups.items():
        assert group["DeletionPolicy"] == "RetainExceptOnCreate", logical_id
        assert group["UpdateReplacePolicy"] == "Retain", logical_id
        assert matches(
            {"RetentionInDays": 90, "KmsKeyId": KEY_ARN, "LogGroupName": Match.absent()}, group["Properties"]
        ), logical_id
    for output in ("AppLogGroupName", "NginxAccessLogGroupName", "NginxErrorLogGroupName", "BootstrapLogGroupName"):
        t.has_output(
            output,
            {
                "Value": {"Ref": output.removesuffix("Name")},
                "Export": Match.absent(),
                "Description": Match.any(),
            },
        )


def test_log_groups_attribute_is_keyed_by_the_short_names():
    _, logging = _logging_stack()
    assert tuple(logging.log_groups) == LOG_GROUPS
    assert logging.log_groups["nginx-access"].title == "NginxAccessLogGroup"


def test_without_a_key_the_log_groups_use_aws_owned_keys():
    _logging(key=False).all_resources_properties("AWS::Logs::LogGroup", {"KmsKeyId": Match.absent()})


@pytest.mark.parametrize("days", [0, 31, 10000])
def test_a_retention_cloudwatch_logs_does_not_offer_is_rejected(days):
    with pytest.raises(InputError, match=rf"Logging input 'retention_days': is {days}, which CloudWatch Logs"):
        _logging(retention_days=days)


def test_the_alarm_topic_is_encrypted_with_the_key_and_named_by_cloudformation():
    t = _logging()
    t.resource_count_is("AWS::SNS::Topic", 1)
    t.has_resource_properties(
        "AWS::SNS::Topic",
        {"KmsMasterKeyId": KEY_ARN, "TopicName": Match.absent(), "Subscription": Match.absent()},
    )
    t.has_output("AlarmTopicArn", {"Value": TOPIC, "Export": Match.absent()})


def test_topic_policy_lets_only_cloudwatch_and_budgets_of_this_account_publish_and_only_over_tls():
    t = _logging()
    (policy,) = t.of_type("AWS::SNS::TopicPolicy").values()
    assert policy["Properties"]["Topics"] == [TOPIC]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert allows == [
        {
            "Sid": "GrantServicesPublishAlarmTopic",
            "Effect": "Allow",
            "Principal": {"Service": ["budgets.amazonaws.com", "cloudwatch.amazonaws.com"]},
            "Action": ["sns:Publish"],
            "Resource": [TOPIC],
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
        }
    ]
    denies = [s for s in statements if s["Effect"] == "Deny"]
    assert denies == [
        {
            "Sid": "GrantDenyInsecurePublishAlarmTopic",
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["sns:Publish"],
            "Resource": [TOPIC],
            "Condition": {"Bool": {"aws:SecureTransport": False}},
        }
    ]


def test_the_key_policy_lets_both_publishers_use_the_key_sns_encrypts_with():
    t = _logging()
    (key,) = t.of_type("AWS::KMS::Key").values()
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    # CloudWatch in the conditioned statement, Budgets in the one its guide documents (no condition).
    by_service = {}
    for statement in statements:
        principal = statement["Principal"]
        named = principal.get("Service", []) if isinstance(principal, dict) else []
        for service in [named] if isinstance(named, str) else named:
            by_service[service] = statement
    assert set(ALARM_PUBLISHERS) <= set(by_service)
    # SNS calls these two as the publisher when it encrypts a message for an encrypted topic.
    assert {"kms:GenerateDataKey", "kms:Decrypt"} <= set(by_service["cloudwatch.amazonaws.com"]["Action"])
    assert {"kms:GenerateDataKey*", "kms:Decrypt"} == set(by_service["budgets.amazonaws.com"]["Action"])


def test_deny_insecure_publish_denies_every_principal_without_tls_on_that_topic_only():
    policy = ResourcePolicy()
    policy.deny_insecure_publish(sns.Topic("Alerts"))
    policy.deny_insecure_publish(sns.Topic("Alerts"))  # the same statement twice is one
    (statement,) = encode_to_dict(policy.document())["Statement"]
    assert statement == {
        "Sid": "GrantDenyInsecurePublishAlerts",
        "Effect": "Deny",
        "Principal": "*",
        "Action": ["sns:Publish"],
        "Resource": [{"Ref": "Alerts"}],
        "Condition": {"Bool": {"aws:SecureTransport": False}},
    }


def test_an_email_subscription_exists_only_when_an_address_is_configured():
    with_email = _logging(alarm_email="ops@example.com")
    with_email.resource_count_is("AWS::SNS::Subscription", 1)
    with_email.has_resource_properties(
        "AWS::SNS::Subscription",
        {"TopicArn": TOPIC, "Protocol": "email", "Endpoint": "ops@example.com"},
    )
    _logging().resource_count_is("AWS::SNS::Subscription", 0)


def test_a_malformed_alarm_email_is_rejected():
    with pytest.raises(InputError, match="Logging input 'alarm_email': 'ops' is not an e-mail address"):
        _logging(alarm_email="ops")


def test_without_a_key_the_topic_records_why_it_is_not_encrypted():
    t = _logging(key=False)
    (topic,) = t.of_type("AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" not in topic["Properties"]
    (skip,) = topic["Metadata"]["checkov"]["skip"]
    assert skip["id"] == "CKV_AWS_26"


# --- Alarms --------------------------------------------------------------------------------


def _alarm(t: TemplateAssert, logical_id: str) -> dict:
    return t.of_type("AWS::CloudWatch::Alarm")[logical_id]["Properties"]


def test_every_alarm_notifies_the_topic_on_alarm_and_on_ok_and_says_what_it_means():
    t = _alarms()
    t.resource_count_is("AWS::CloudWatch::Alarm", 5)
    t.all_resources_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmActions": [TOPIC],
            "OKActions": [TOPIC],
            "ActionsEnabled": True,
            "AlarmDescription": Match.any(),
            "TreatMissingData": Match.any(),
        },
    )


def test_both_5xx_sources_alarm_on_their_sum_per_five_minutes_and_no_data_is_no_error():
    t = _alarms(alb_5xx_threshold=25)
    for logical_id, metric in (
        ("LoadBalancer5xxAlarm", "HTTPCode_ELB_5XX_Count"),
        ("Target5xxAlarm", "HTTPCode_Target_5XX_Count"),
    ):
        alarm = {k: v for k, v in _alarm(t, logical_id).items() if k not in ("AlarmDescription", "Tags")}
        assert alarm == {
            "ActionsEnabled": True,
            "AlarmActions": [TOPIC],
            "OKActions": [TOPIC],
            "Namespace": "AWS/ApplicationELB",
            "MetricName": metric,
            "Statistic": "Sum",
            "Dimensions": [{"Name": "LoadBalancer", "Value": {"Ref": "LoadBalancerFullName"}}],
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 25,
            "Period": 300,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "TreatMissingData": "notBreaching",
        }


def test_unhealthy_targets_alarm_on_the_target_group_of_the_load_balancer_for_several_minutes():
    alarm = _alarm(_alarms(), "UnhealthyTargetsAlarm")
    assert alarm["MetricName"] == "UnHealthyHostCount"
    assert alarm["Dimensions"] == [
        {"Name": "LoadBalancer", "Value": {"Ref": "LoadBalancerFullName"}},
        {"Name": "TargetGroup", "Value": {"Ref": "TargetGroupFullName"}},
    ]
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "Maximum",
        "GreaterThanThreshold",
        0,
    )
    assert alarm["EvaluationPeriods"] >= 3
    assert alarm["DatapointsToAlarm"] == alarm["EvaluationPeriods"]


def test_database_alarms_watch_the_cluster_by_its_identifier():
    t = _alarms(db_cpu_percent=70, db_free_memory_mib=512)
    cpu = _alarm(t, "DatabaseCpuAlarm")
    memory = _alarm(t, "DatabaseFreeMemoryAlarm")
    for alarm in (cpu, memory):
        assert alarm["Namespace"] == "AWS/RDS"
        assert alarm["Dimensions"] == [{"Name": "DBClusterIdentifier", "Value": {"Ref": "DbClusterIdentifier"}}]
        assert alarm["TreatMissingData"] == "breaching"
    assert (cpu["MetricName"], cpu["Statistic"], cpu["ComparisonOperator"], cpu["Threshold"]) == (
        "CPUUtilization",
        "Maximum",
        "GreaterThanThreshold",
        70,
    )
    # FreeableMemory is in bytes: 512 MiB.
    assert (memory["MetricName"], memory["Statistic"], memory["ComparisonOperator"], memory["Threshold"]) == (
        "FreeableMemory",
        "Minimum",
        "LessThanThreshold",
        512 * 1024 * 1024,
    )


def test_seed_07_no_alarm_topic_or_log_group_carries_a_literal_name():
    stack, _ = _full_stack()
    text = stack.to_json()
    template = json.loads(text)
    for resource in template["Resources"].values():
        for name_property in ("AlarmName", "TopicName", "LogGroupName"):
            assert name_property not in resource.get("Properties", {})
    assert "AlarmName" not in text


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"alb_5xx_threshold": 0}, "Alarms input 'alb_5xx_threshold': is 0; use 1 or more"),
        ({"db_cpu_percent": 101}, "Alarms input 'db_cpu_percent': is 101; use 1 to 100"),
        ({"db_free_memory_mib": 0}, "Alarms input 'db_free_memory_mib': is 0; use 1 or more"),
    ],
)
def test_thresholds_a_metric_cannot_reach_are_rejected(inputs, message):
    with pytest.raises(InputError, match=message):
        _alarms(**inputs)


def test_alarms_attribute_holds_each_alarm_by_short_name():
    _, alarms = _full_stack()
    assert {name: alarm.title for name, alarm in alarms.alarms.items()} == {
        "LoadBalancer5xx": "LoadBalancer5xxAlarm",
        "Target5xx": "Target5xxAlarm",
        "UnhealthyTargets": "UnhealthyTargetsAlarm",
        "DatabaseCpu": "DatabaseCpuAlarm",
        "DatabaseFreeMemory": "DatabaseFreeMemoryAlarm",
    }


# --- Gate ----------------------------------------------------------------------------------


def test_gate_zero_cfn_lint_and_checkov_findings(tmp_path):
    stack, _ = _full_stack()
    text = stack.to_json()
    assert cfn_lint(text, ["eu-west-1", "eu-central-1", "us-east-1"], file="t.json") == []
    path = tmp_path / "observability.json"
    path.write_text(text)
    assert checkov([path], root=tmp_path) == []
