import pytest
from troposphere import Ref

from cfnbuild.build.naming import export_name, logical_id, partition_arn, physical_name, stack_suffix


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("app", "subnet", 1), "AppSubnet1"),
        (("per-az", "nat"), "PerAzNat"),
        (("NatGateway", 2), "NatGateway2"),
        (("flow_log", "group"), "FlowLogGroup"),
    ],
)
def test_logical_id_is_alphanumeric_camel_case(parts, expected):
    assert logical_id(*parts) == expected


def test_logical_id_rejects_empty_parts():
    with pytest.raises(ValueError, match="cannot make a logical ID"):
        logical_id("-", "")


def test_stack_suffix_is_taken_from_the_stack_id_uuid():
    assert stack_suffix().to_dict() == {
        "Fn::Select": [
            0,
            {
                "Fn::Split": [
                    "-",
                    {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]},
                ]
            },
        ]
    }


def test_physical_name_is_stack_name_plus_parts_plus_stack_unique_suffix():
    rendered = physical_name("db", "params").to_dict()
    parts = rendered["Fn::Join"][1]
    assert rendered["Fn::Join"][0] == "-"
    assert parts[0] == {"Ref": "AWS::StackName"}
    assert parts[1:3] == ["db", "params"]
    assert parts[3] == stack_suffix().to_dict()


def test_physical_name_rejects_characters_that_break_names():
    with pytest.raises(ValueError, match="may only hold"):
        physical_name("my bucket")


def test_export_name_is_derived_from_the_stack_name():
    assert export_name("VpcId").to_dict() == {"Fn::Sub": "${AWS::StackName}-VpcId"}


def test_partition_arn_uses_pseudo_parameters_never_literals():
    arn = partition_arn("s3", "${Bucket}/*", region=False, account=False, Bucket=Ref("Assets")).to_dict()
    assert arn == {"Fn::Sub": ["arn:${AWS::Partition}:s3:::${Bucket}/*", {"Bucket": {"Ref": "Assets"}}]}
    regional = partition_arn("logs", "log-group:*").to_dict()
    assert regional == {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"}
