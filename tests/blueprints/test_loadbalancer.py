"""The load balancer blueprint, asserted the way the CDK's assertions module does."""

import json

import pytest
from troposphere import Parameter, Ref

from blueprints.encryption import Keys, KeysInputs
from blueprints.loadbalancer import DEFAULT_SSL_POLICY, LoadBalancer, LoadBalancerInputs
from blueprints.network import Network, NetworkInputs
from cfnbuild import InputError, Stack
from cfnbuild.build.lint import cfn_lint, checkov
from tests.assertions import Match, TemplateAssert

REGIONS = ["eu-west-1", "eu-central-1", "us-east-1"]


def _stack(**inputs) -> tuple[Stack, LoadBalancer]:
    """A stack with keys and a network; the ALB's security group and log bucket come in as parameters."""
    stack = Stack("lb", description="d", project="p", environment="dev")
    keys = Keys(stack, KeysInputs())
    net = Network(stack, NetworkInputs(flow_log_key_arn=keys.logs_key_arn))
    stack.add_parameter(Parameter("AlbSecurityGroupId", Type="AWS::EC2::SecurityGroup::Id"), owner="test")
    stack.add_parameter(Parameter("LogBucketName", Type="String"), owner="test")
    defaults = {
        "vpc_id": net.vpc_id,
        "subnet_ids": net.public_subnet_ids,
        "security_group_id": Ref("AlbSecurityGroupId"),
        "log_bucket_name": Ref("LogBucketName"),
    }
    lb = LoadBalancer(stack, LoadBalancerInputs(**{**defaults, **inputs}))
    return stack, lb


def _lb(**inputs) -> TemplateAssert:
    return TemplateAssert(_stack(**inputs)[0].to_dict())


def test_gate_zero_cfn_lint_and_checkov_findings(tmp_path):
    for domain in ({}, {"domain_name": "app.example.com", "hosted_zone_id": "Z0123456789ABC"}):
        text = _stack(**domain)[0].to_json()
        assert cfn_lint(text, REGIONS, file="t.json") == [], domain
        (tmp_path / f"lb{len(domain)}.json").write_text(text)
    assert checkov(sorted(tmp_path.glob("lb*.json")), root=tmp_path) == []


def test_internet_facing_alb_in_the_public_subnets_drops_invalid_headers_and_logs_every_request():
    t = _lb(log_prefix="logs/alb", idle_timeout_seconds=120)
    t.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "Type": "application",
            "Scheme": "internet-facing",
            "Subnets": [{"Ref": "PublicSubnet1"}, {"Ref": "PublicSubnet2"}],
            "SecurityGroups": [{"Ref": "AlbSecurityGroupId"}],
        },
    )
    (alb,) = t.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    attributes = {a["Key"]: a["Value"] for a in alb["Properties"]["LoadBalancerAttributes"]}
    assert attributes == {
        "access_logs.s3.enabled": "true",
        "access_logs.s3.bucket": {"Ref": "LogBucketName"},
        "access_logs.s3.prefix": "logs/alb",
        "deletion_protection.enabled": "false",
        "idle_timeout.timeout_seconds": "120",
        "routing.http.drop_invalid_header_fields.enabled": "true",
    }


def test_deletion_protection_comes_from_the_inputs():
    (alb,) = _lb(deletion_protection=True).of_type("AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    assert {"Key": "deletion_protection.enabled", "Value": "true"} in alb["Properties"]["LoadBalancerAttributes"]


def test_seed_18_alb_waits_only_for_what_it_is_told_the_log_bucket_policy():
    t = _lb(depends_on=("LogBucketPolicy",))
    t.has_resource("AWS::ElasticLoadBalancingV2::LoadBalancer", {"DependsOn": ["LogBucketPolicy"]})
    lb_resources = {
        k: v
        for k, v in _lb().resources.items()
        if v["Type"].startswith(("AWS::ElasticLoadBalancingV2", "AWS::Route53"))
    }
    assert not any("DependsOn" in v for v in lb_resources.values())


def test_seed_08_target_group_health_checks_are_generous_enough_for_a_cold_start():
    t = _lb()
    t.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {
            "HealthCheckEnabled": True,
            "HealthCheckPath": "/health",
            "HealthCheckTimeoutSeconds": 10,
            "HealthCheckIntervalSeconds": 30,
            "UnhealthyThresholdCount": 5,
            "HealthyThresholdCount": 2,
            "Matcher": {"HttpCode": "200"},
            "TargetGroupAttributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "30"}],
        },
    )
    (group,) = t.of_type("AWS::ElasticLoadBalancingV2::TargetGroup").values()
    props = group["Properties"]
    # A target must fail for well over two minutes before it is taken out (seed: 5 s timeout, 2 failures).
    assert props["HealthCheckTimeoutSeconds"] >= 10
    assert props["UnhealthyThresholdCount"] * props["HealthCheckIntervalSeconds"] >= 120


def test_seed_14_target_group_sends_http_to_nginx_on_port_80():
    stack, lb = _stack()
    t = TemplateAssert(stack.to_dict())
    t.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {
            "Port": 80,
            "Protocol": "HTTP",
            "TargetType": "instance",
            "HealthCheckPort": "traffic-port",
            "VpcId": {"Ref": "Vpc"},
        },
    )
    assert lb.target_port == 80
    # Never gunicorn's or Flask's own port: nginx in front of them takes the traffic.
    assert '"Port": 5000' not in json.dumps(t.template)
    assert '"Port": 8000' not in json.dumps(t.template)


def test_seed_11_domain_switches_on_a_dns_validated_certificate_https_and_an_alias_record():
    t = _lb(domain_name="app.example.com", hosted_zone_id="Z0123456789ABC")
    assert t.template["Parameters"]["DomainName"]["Default"] == "app.example.com"
    assert t.template["Parameters"]["HostedZoneId"]["Default"] == "Z0123456789ABC"
    assert t.template["Conditions"]["HasDomain"] == {
        "Fn::And": [
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "DomainName"}, ""]}]},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "HostedZoneId"}, ""]}]},
        ]
    }
    t.has_resource(
        "AWS::CertificateManager::Certificate",
        {
            "Condition": "HasDomain",
            "Properties": {
                "DomainName": {"Ref": "DomainName"},
                "ValidationMethod": "DNS",
                "DomainValidationOptions": [
                    {"DomainName": {"Ref": "DomainName"}, "HostedZoneId": {"Ref": "HostedZoneId"}}
                ],
            },
        },
    )
    t.has_resource(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Condition": "HasDomain",
            "Properties": {
                "Port": 443,
                "Protocol": "HTTPS",
                "SslPolicy": DEFAULT_SSL_POLICY,
                "Certificates": [{"CertificateArn": {"Ref": "Certificate"}}],
                "DefaultActions": [{"Type": "forward", "TargetGroupArn": {"Ref": "TargetGroup"}}],
            },
        },
    )
    t.has_resource(
        "AWS::Route53::RecordSet",
        {
            "Condition": "HasDomain",
            "Properties": {
                "HostedZoneId": {"Ref": "HostedZoneId"},
                "Name": {"Ref": "DomainName"},
                "Type": "A",
                "AliasTarget": {
                    "DNSName": {"Fn::GetAtt": ["LoadBalancer", "DNSName"]},
                    "HostedZoneId": {"Fn::GetAtt": ["LoadBalancer", "CanonicalHostedZoneID"]},
                    "EvaluateTargetHealth": True,
                },
            },
        },
    )


def test_seed_11_every_certificate_resource_sits_under_the_domain_condition():
    t = _lb()
    for resource_type in ("AWS::CertificateManager::Certificate", "AWS::Route53::RecordSet"):
        for logical_id, resource in t.of_type(resource_type).items():
            assert resource.get("Condition") == "HasDomain", logical_id
    assert t.of_type("AWS::ElasticLoadBalancingV2::Listener")["HttpsListener"]["Condition"] == "HasDomain"
    assert t.template["Parameters"]["DomainName"]["Default"] == ""


def test_seed_11_rules_refuse_a_domain_without_its_zone_and_a_zone_without_a_domain():
    rules = _lb().template["Rules"]
    assert rules["DomainNeedsHostedZone"]["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "DomainName"}, ""]}]}
    assert rules["DomainNeedsHostedZone"]["Assertions"][0]["Assert"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "HostedZoneId"}, ""]}]
    }
    assert rules["HostedZoneNeedsDomain"]["Assertions"][0]["Assert"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "DomainName"}, ""]}]
    }


def test_http_listener_redirects_to_https_with_a_domain_and_forwards_without_one():
    t = _lb()
    listener = t.of_type("AWS::ElasticLoadBalancingV2::Listener")["HttpListener"]
    assert "Condition" not in listener
    assert listener["Properties"]["Port"] == 80
    assert listener["Properties"]["Protocol"] == "HTTP"
    condition, with_domain, without_domain = listener["Properties"]["DefaultActions"]["Fn::If"]
    assert condition == "HasDomain"
    assert with_domain == [
        {
            "Type": "redirect",
            "RedirectConfig": {
                "Protocol": "HTTPS",
                "Port": "443",
                "Host": "#{host}",
                "Path": "/#{path}",
                "Query": "#{query}",
                "StatusCode": "HTTP_301",
            },
        }
    ]
    assert without_domain == [{"Type": "forward", "TargetGroupArn": {"Ref": "TargetGroup"}}]


def test_https_listener_uses_a_tls_1_3_policy():
    (policy,) = [
        r["Properties"]["SslPolicy"]
        for r in _lb().of_type("AWS::ElasticLoadBalancingV2::Listener").values()
        if r["Properties"]["Protocol"] == "HTTPS"
    ]
    assert policy.startswith("ELBSecurityPolicy-TLS13-")


def test_no_checkov_skip_is_needed_for_the_listeners():
    for logical_id, resource in _lb().of_type("AWS::ElasticLoadBalancingV2::Listener").items():
        assert "checkov" not in (resource.get("Metadata") or {}), logical_id


def test_outputs_have_no_export_and_the_url_follows_the_domain():
    t = _lb()
    for name in ("AlbDnsName", "AppUrl", "AlbArn", "TargetGroupArn"):
        t.has_output(name, {"Export": Match.absent(), "Description": Match.any()})
    t.has_output("AlbDnsName", {"Value": {"Fn::GetAtt": ["LoadBalancer", "DNSName"]}})
    t.has_output("AlbArn", {"Value": {"Ref": "LoadBalancer"}})
    t.has_output("TargetGroupArn", {"Value": {"Ref": "TargetGroup"}})
    t.has_output(
        "AppUrl",
        {
            "Value": {
                "Fn::If": [
                    "HasDomain",
                    {"Fn::Sub": ["https://${Domain}", {"Domain": {"Ref": "DomainName"}}]},
                    {"Fn::Sub": ["http://${Name}", {"Name": {"Fn::GetAtt": ["LoadBalancer", "DNSName"]}}]},
                ]
            }
        },
    )


def test_attributes_hand_typed_references_to_the_next_blueprints():
    _, lb = _stack()
    assert lb.load_balancer.title == "LoadBalancer"
    assert lb.target_group.title == "TargetGroup"
    assert lb.target_group_arn.to_dict() == {"Ref": "TargetGroup"}
    assert lb.dns_name.to_dict() == {"Fn::GetAtt": ["LoadBalancer", "DNSName"]}
    assert lb.load_balancer_full_name.to_dict() == {"Fn::GetAtt": ["LoadBalancer", "LoadBalancerFullName"]}
    assert lb.target_group_full_name.to_dict() == {"Fn::GetAtt": ["TargetGroup", "TargetGroupFullName"]}
    assert lb.has_domain == "HasDomain"
    assert lb.url.to_dict()["Fn::If"][0] == "HasDomain"


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"health_check_timeout_seconds": 30}, "'health_check_timeout_seconds': is 30, not below"),
        ({"health_check_interval_seconds": 400}, "'health_check_interval_seconds': is 400; use 5 to 300"),
        ({"unhealthy_threshold": 1}, "'unhealthy_threshold': is 1; use 2 to 10"),
        ({"healthy_threshold": 11}, "'healthy_threshold': is 11; use 2 to 10"),
        ({"target_port": 0}, "'target_port': is 0; use a port from 1 to 65535"),
        ({"target_port": 70000}, "'target_port': is 70000"),
        ({"idle_timeout_seconds": 0}, "'idle_timeout_seconds': is 0"),
        ({"domain_name": "app.example.com"}, "'hosted_zone_id': is empty but domain_name is set"),
        ({"hosted_zone_id": "Z0123456789ABC"}, "'domain_name': is empty but hosted_zone_id is set"),
        ({"domain_name": "App.Example.com", "hosted_zone_id": "Z01"}, "'domain_name': is 'App.Example.com'"),
        ({"domain_name": "app.example.com", "hosted_zone_id": "zone"}, "'hosted_zone_id': is 'zone'"),
        ({"log_prefix": "/alb/"}, "'log_prefix': is '/alb/'"),
        ({"log_prefix": "AWSLogs"}, "'log_prefix': is 'AWSLogs'"),
        ({"health_check_path": "health"}, "'health_check_path': is 'health'"),
        ({"ssl_policy": "ELBSecurityPolicy-2016-08"}, "'ssl_policy': is 'ELBSecurityPolicy-2016-08'"),
        ({"subnet_ids": [Ref("PublicSubnet1")]}, "'subnet_ids': lists 1"),
    ],
)
def test_incompatible_inputs_are_rejected_when_the_blueprint_is_made(inputs, message):
    with pytest.raises(InputError, match="LoadBalancer input " + message.replace("(", r"\(").replace(")", r"\)")):
        _stack(**inputs)
