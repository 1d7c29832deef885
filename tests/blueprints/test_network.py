"""The network blueprint, asserted the way the CDK's assertions module does."""

import re

import pytest

from blueprints.network import Network, NetworkInputs, plan_subnets
from cfnbuild import InputError, Invalid, Stack
from tests.assertions import Match, TemplateAssert


def _network(**inputs) -> TemplateAssert:
    stack = Stack("net", description="d", project="p", environment="dev")
    Network(stack, NetworkInputs(**inputs))
    return TemplateAssert(stack.to_dict())


def test_vpc_takes_its_block_from_the_inputs_with_dns_on():
    t = _network(cidr="10.42.0.0/16")
    t.has_resource_properties(
        "AWS::EC2::VPC",
        {"CidrBlock": "10.42.0.0/16", "EnableDnsHostnames": True, "EnableDnsSupport": True},
    )


@pytest.mark.parametrize("zones", [2, 3])
def test_three_tiers_of_subnets_one_per_zone_from_the_zones_parameter_else_getazs(zones):
    t = _network(az_count=zones)
    t.resource_count_is("AWS::EC2::Subnet", 3 * zones)
    for index in range(zones):
        t.has_resource_properties(
            "AWS::EC2::Subnet",
            {
                "AvailabilityZone": {
                    "Fn::If": [
                        "HasZones",
                        {"Fn::Select": [index, {"Fn::Split": [",", {"Ref": "AvailabilityZones"}]}]},
                        {"Fn::Select": [index, {"Fn::GetAZs": ""}]},
                    ]
                },
                "MapPublicIpOnLaunch": False,
            },
        )
    assert t.template["Conditions"]["HasZones"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AvailabilityZones"}, ""]}]}


@pytest.mark.parametrize("zones", [2, 3])
def test_the_zones_are_a_lookup_of_as_many_zones_as_the_config_asks_for(zones):
    t = _network(az_count=zones)
    assert t.template["Metadata"]["cfnbuild"]["lookups"]["AvailabilityZones"] == {
        "count": str(zones),
        "kind": "availability-zones",
    }
    parameter = t.template["Parameters"]["AvailabilityZones"]
    assert (parameter["Type"], parameter["Default"]) == ("String", "")
    pattern = re.compile(parameter["AllowedPattern"])
    names = ["eu-west-1a", "eu-west-1b", "eu-west-1c", "us-gov-west-1a"]
    assert pattern.fullmatch(",".join(names[:zones]))
    assert pattern.fullmatch("")
    assert not pattern.fullmatch(",".join(names[: zones - 1]))
    assert not pattern.fullmatch(",".join(names[: zones + 1]))


def test_no_subnet_gives_instances_a_public_address():
    _network(az_count=3).all_resources_properties("AWS::EC2::Subnet", {"MapPublicIpOnLaunch": False})


def test_nat_mode_is_a_parameter_and_extra_nat_gateways_sit_under_the_per_az_condition():
    t = _network(az_count=3, nat_mode="per-az")
    assert t.template["Parameters"]["NatMode"]["AllowedValues"] == ["single", "per-az"]
    assert t.template["Parameters"]["NatMode"]["Default"] == "per-az"
    assert t.template["Conditions"]["PerAzNat"] == {"Fn::Equals": [{"Ref": "NatMode"}, "per-az"]}
    gateways = t.of_type("AWS::EC2::NatGateway")
    assert "Condition" not in gateways["NatGateway1"]
    assert gateways["NatGateway2"]["Condition"] == "PerAzNat"
    assert gateways["NatGateway3"]["Condition"] == "PerAzNat"
    assert t.of_type("AWS::EC2::EIP")["NatAddress3"]["Condition"] == "PerAzNat"


def test_seed_12_private_subnets_route_to_the_internet_through_nat():
    t = _network(az_count=2)
    t.has_resource_properties(
        "AWS::EC2::Route",
        {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": {"Ref": "NatGateway1"}},
    )
    t.has_resource_properties(
        "AWS::EC2::Route",
        {
            "DestinationCidrBlock": "0.0.0.0/0",
            "NatGatewayId": {"Fn::If": ["PerAzNat", {"Ref": "NatGateway2"}, {"Ref": "NatGateway1"}]},
        },
    )
    associations = t.of_type("AWS::EC2::SubnetRouteTableAssociation")
    for tier in ("App", "Data"):
        for index in (1, 2):
            assert associations[f"{tier}SubnetRoutes{index}"]["Properties"] == {
                "RouteTableId": {"Ref": f"PrivateRouteTable{index}"},
                "SubnetId": {"Ref": f"{tier}Subnet{index}"},
            }


def test_public_default_route_goes_to_the_internet_gateway():
    _network().has_resource_properties(
        "AWS::EC2::Route",
        {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": {"Ref": "InternetGateway"}},
    )


def test_seed_18_depends_on_only_where_cloudformation_cannot_infer_the_order():
    t = _network(az_count=3)
    with_depends = {k: v["DependsOn"] for k, v in t.resources.items() if "DependsOn" in v}
    assert with_depends == {
        "PublicDefaultRoute": ["InternetGatewayAttachment"],
        "NatAddress1": ["InternetGatewayAttachment"],
        "NatAddress2": ["InternetGatewayAttachment"],
        "NatAddress3": ["InternetGatewayAttachment"],
    }


def test_s3_gateway_endpoint_serves_every_route_table():
    t = _network(az_count=2)
    t.has_resource_properties(
        "AWS::EC2::VPCEndpoint",
        {
            "VpcEndpointType": "Gateway",
            "ServiceName": {"Fn::Sub": "com.amazonaws.${AWS::Region}.s3"},
            "RouteTableIds": [
                {"Ref": "PublicRouteTable"},
                {"Ref": "PrivateRouteTable1"},
                {"Ref": "PrivateRouteTable2"},
            ],
        },
    )


def test_flow_logs_go_to_a_retained_group_through_a_role_granted_only_that_group():
    t = _network(flow_log_retention_days=30)
    t.has_resource(
        "AWS::Logs::LogGroup",
        {
            "DeletionPolicy": "RetainExceptOnCreate",
            "UpdateReplacePolicy": "Retain",
            "Properties": {"RetentionInDays": 30},
        },
    )
    t.has_resource_properties(
        "AWS::EC2::FlowLog",
        {
            "ResourceType": "VPC",
            "TrafficType": "ALL",
            "LogGroupName": {"Ref": "FlowLogGroup"},
            "DeliverLogsPermissionArn": {"Fn::GetAtt": ["FlowLogsRole", "Arn"]},
        },
    )
    role = t.of_type("AWS::IAM::Role")["FlowLogsRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": ["vpc-flow-logs.amazonaws.com"]}
    (policy,) = role["Policies"]
    statement, describe = policy["PolicyDocument"]["Statement"]
    # DescribeLogGroups is in the documented minimum and has no resource-level permission.
    assert describe == {
        "Sid": "GrantDescribeLogGroupsAny",
        "Effect": "Allow",
        "Action": ["logs:DescribeLogGroups"],
        "Resource": ["*"],
    }
    assert statement["Resource"] == [
        {
            "Fn::Sub": [
                "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${LogGroup}:*",
                {"LogGroup": {"Ref": "FlowLogGroup"}},
            ]
        }
    ]


def test_outputs_are_for_the_next_stack_with_no_export():
    t = _network()
    for name in (
        "VpcId",
        "VpcCidr",
        "PublicSubnetIds",
        "AppSubnetIds",
        "DataSubnetIds",
        "FlowLogGroupName",
    ):
        t.has_output(
            name,
            {
                "Export": Match.absent(),
                "Description": Match.any(),
            },
        )


def test_carved_subnets_are_a_sixteenth_of_the_vpc_and_do_not_overlap():
    plan = plan_subnets("10.0.0.0/16", 3)
    assert plan == {
        "public": ("10.0.0.0/20", "10.0.16.0/20", "10.0.32.0/20"),
        "app": ("10.0.64.0/20", "10.0.80.0/20", "10.0.96.0/20"),
        "data": ("10.0.128.0/20", "10.0.144.0/20", "10.0.160.0/20"),
    }


def test_overlapping_explicit_subnets_are_rejected_naming_the_tier():
    with pytest.raises(Invalid, match=r"app subnet 10\.0\.0\.0/24 overlaps public subnet 10\.0\.0\.0/20") as info:
        plan_subnets("10.0.0.0/16", 2, {"app": ("10.0.0.0/24", "10.0.1.0/24")})
    assert info.value.key == "app_subnets"


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"az_count": 4}, "Network input 'az_count': is 4; span 2 or 3 Availability Zones"),
        ({"nat_mode": "lots"}, "Network input 'nat_mode': is 'lots'; use 'single' or 'per-az'"),
        ({"cidr": "10.0.0.0/12"}, "Network input 'cidr': VPC block 10.0.0.0/12 is /12"),
        ({"cidr": "nonsense"}, "Network input 'cidr': 'nonsense' is not a valid CIDR block"),
    ],
)
def test_incompatible_inputs_are_rejected_when_the_blueprint_is_made(inputs, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _network(**inputs)


def test_the_flow_log_role_is_assumed_only_for_this_accounts_flow_logs():
    role = _network().of_type("AWS::IAM::Role")["FlowLogsRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {
            "aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:vpc-flow-log/*"}
        },
    }


def test_the_default_security_group_is_emptied_by_aws_runbook_through_an_association():
    t = _network()
    t.has_resource_properties(
        "AWS::SSM::Association",
        {
            "Name": "AWSConfigRemediation-RemoveVPCDefaultSecurityGroupRules",
            "Parameters": {
                "GroupId": [{"Fn::GetAtt": ["Vpc", "DefaultSecurityGroup"]}],
                "AutomationAssumeRole": [{"Fn::GetAtt": ["CloseDefaultSecurityGroupRole", "Arn"]}],
            },
        },
    )
    t.resource_count_is("AWS::Lambda::Function", 0)
    t.resource_count_is("AWS::CloudFormation::CustomResource", 0)


def test_the_runbook_role_holds_exactly_the_documented_permissions_revoking_on_the_default_group_only():
    role = _network().of_type("AWS::IAM::Role")["CloseDefaultSecurityGroupRole"]["Properties"]
    (policy,) = role["Policies"]
    granted = {
        action: statement["Resource"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in statement["Action"]
    }
    # The runbook's "Required IAM permissions", and nothing else.
    assert sorted(granted) == [
        "ec2:DescribeSecurityGroups",
        "ec2:RevokeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupIngress",
        "ssm:GetAutomationExecution",
        "ssm:StartAutomationExecution",
    ]
    group = [
        {
            "Fn::Sub": [
                "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:security-group/${GroupId}",
                {"GroupId": {"Fn::GetAtt": ["Vpc", "DefaultSecurityGroup"]}},
            ]
        }
    ]
    assert granted["ec2:RevokeSecurityGroupIngress"] == granted["ec2:RevokeSecurityGroupEgress"] == group
    assert granted["ec2:DescribeSecurityGroups"] == ["*"]  # no resource-level permission
    assert granted["ssm:StartAutomationExecution"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:automation-definition/"
            "AWSConfigRemediation-RemoveVPCDefaultSecurityGroupRules:*"
        }
    ]


def test_the_runbook_role_is_assumed_only_by_this_accounts_automation():
    role = _network().of_type("AWS::IAM::Role")["CloseDefaultSecurityGroupRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": ["ssm.amazonaws.com"]}
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {
            "aws:SourceArn": {
                "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:automation-execution/*"
            }
        },
    }


@pytest.mark.parametrize(
    ("resource", "rule", "cited"),
    [
        ("Vpc", "VPCDefaultSecurityGroupClosed", "CloseDefaultSecurityGroup"),
        ("PublicDefaultRoute", "VPCNoUnrestrictedRouteToIGW", "private subnets"),
    ],
)
def test_rule_pack_findings_the_network_answers_are_accepted_with_their_reason(resource, rule, cited):
    accepted = _network().resources[resource]["Metadata"]["cdk_nag"]["rules_to_suppress"]
    assert [a["id"] for a in accepted] == [
        f"{pack}-{rule}" for pack in ("HIPAA.Security", "NIST.800.53.R5", "PCI.DSS.321")
    ]
    assert all(cited in a["reason"] for a in accepted)
