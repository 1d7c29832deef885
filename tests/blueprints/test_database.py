"""The database blueprint, asserted the way the CDK's assertions module does."""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from troposphere import Ref, ec2

from blueprints.database import Database, DatabaseInputs
from blueprints.encryption import Keys, KeysInputs
from blueprints.network import Network, NetworkInputs
from cfnbuild import InputError, Stack
from cfnbuild.lint import cfn_lint, checkov
from cfnbuild.lookups import resolve_lookups
from tests.assertions import Match, TemplateAssert

SUBNETS = [Ref("DataSubnet1"), Ref("DataSubnet2")]
SECURITY_GROUP = Ref("DbSecurityGroup")
REGIONS = ["eu-west-1", "eu-central-1", "us-east-1"]
ENGINE_VERSION = re.compile(r"\d+\.\d+\.mysql_aurora\.\d+")
# The properties that give each type a physical name; CloudFormation makes one unique per stack
# when they are left out.
NAME_PROPERTIES = {
    "AWS::SecretsManager::Secret": "Name",
    "AWS::RDS::DBCluster": "DBClusterIdentifier",
    "AWS::RDS::DBInstance": "DBInstanceIdentifier",
    "AWS::RDS::DBSubnetGroup": "DBSubnetGroupName",
    "AWS::RDS::DBClusterParameterGroup": "DBClusterParameterGroupName",
    "AWS::IAM::Role": "RoleName",
}


def _stack(name: str = "webapp") -> Stack:
    return Stack(name, description="d", project="p", environment="dev")


def _db(**inputs: Any) -> TemplateAssert:
    stack = _stack()
    inputs = {"subnet_ids": SUBNETS, "security_group_id": SECURITY_GROUP, **inputs}
    Database(stack, DatabaseInputs(**inputs))
    return TemplateAssert(stack.to_dict())


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _full_stack(*, kms: bool, **inputs: Any) -> Stack:
    """The database with what it needs: the network's data subnets, a security group, a key."""
    stack = _stack()
    keys = Keys(stack, KeysInputs()) if kms else None
    net = Network(stack, NetworkInputs(flow_log_key_arn=keys.logs_key_arn if keys else None))
    group = stack.add_resource(
        ec2.SecurityGroup(
            "DbSecurityGroup",
            GroupDescription="Aurora MySQL: 3306 from inside the VPC",
            VpcId=net.vpc_id,
            SecurityGroupIngress=[
                ec2.SecurityGroupRule(
                    IpProtocol="tcp", FromPort=3306, ToPort=3306, CidrIp=net.vpc_cidr, Description="MySQL"
                )
            ],
        ),
        owner="test",
    )
    Database(
        stack,
        DatabaseInputs(
            subnet_ids=net.data_subnet_ids,
            security_group_id=Ref(group),
            kms_key_arn=keys.logs_key_arn if keys else None,
            **inputs,
        ),
    )
    return stack


# -- seed items --------------------------------------------------------------------------------


def test_seed_01_secret_and_every_db_resource_leave_their_name_to_cloudformation():
    t = _db(reader_count=2)
    t.has_resource_properties("AWS::SecretsManager::Secret", {"Name": Match.absent()})
    for resource_type, name_property in NAME_PROPERTIES.items():
        assert t.of_type(resource_type), resource_type
        t.all_resources_properties(resource_type, {name_property: Match.absent()})


def test_seed_01_two_stacks_from_one_template_carry_no_name_that_could_collide():
    # Nothing in the database's resources depends on the stack: the same template deploys
    # twice into one account and region, and CloudFormation names each copy's secret anew.
    first, second = _stack("webapp-blue"), _stack("webapp-green")
    for stack in (first, second):
        Database(stack, DatabaseInputs(subnet_ids=SUBNETS, security_group_id=SECURITY_GROUP))
    assert first.to_dict()["Resources"] == second.to_dict()["Resources"]
    secret = TemplateAssert(first.to_dict()).of_type("AWS::SecretsManager::Secret")["DbSecret"]
    assert not any("webapp" in s for s in _strings(secret))


def test_seed_03_engine_version_is_never_a_literal_and_falls_back_to_the_region_default():
    t = _db()
    t.has_resource_properties(
        "AWS::RDS::DBCluster",
        {
            "Engine": "aurora-mysql",
            "EngineVersion": {"Fn::If": ["HasDbEngineVersion", {"Ref": "DbEngineVersion"}, {"Ref": "AWS::NoValue"}]},
        },
    )
    parameter = t.template["Parameters"]["DbEngineVersion"]
    assert (parameter["Type"], parameter["Default"]) == ("String", "")
    assert parameter["Description"]
    assert t.template["Conditions"]["HasDbEngineVersion"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "DbEngineVersion"}, ""]}]
    }
    assert t.template["Metadata"]["cfnbuild"]["lookups"] == {
        "DbEngineVersion": {"engine": "aurora-mysql", "kind": "rds-engine-version", "major": "3"}
    }
    literal_versions = [s for s in _strings(t.template) if ENGINE_VERSION.search(s)]
    assert literal_versions == []
    t.all_resources_properties("AWS::RDS::DBInstance", {"EngineVersion": Match.absent()})


def test_seed_03_the_looked_up_version_is_one_the_parameter_accepts(tmp_path):
    """The emulator lacks DescribeDBEngineVersions, hence the Stubber on a real RDS client."""
    stack = _stack()
    Database(stack, DatabaseInputs(subnet_ids=SUBNETS, security_group_id=SECURITY_GROUP))
    template = stack.to_dict()
    session = boto3.Session(region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing")  # noqa: S106
    client = session.client("rds", region_name="eu-west-1")
    session.client = lambda *args, **kwargs: client  # type: ignore[method-assign]
    versions = ["8.0.mysql_aurora.3.9.1", "8.0.mysql_aurora.3.10.0", "5.7.mysql_aurora.2.12.4"]
    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_db_engine_versions",
            {"DBEngineVersions": [{"EngineVersion": v, "Status": "available"} for v in versions]},
            {"Engine": "aurora-mysql"},
        )
        values = resolve_lookups(template, region="eu-west-1", session=session, cache_dir=tmp_path).parameter_values()
    assert values == {"DbEngineVersion": "8.0.mysql_aurora.3.10.0"}
    pattern = template["Parameters"]["DbEngineVersion"]["AllowedPattern"]
    assert re.fullmatch(pattern, values["DbEngineVersion"])
    assert re.fullmatch(pattern, "")
    assert not re.fullmatch(pattern, "5.7.mysql_aurora.2.12.4")


def test_seed_04_every_monitored_instance_has_a_role_rds_monitoring_may_assume():
    t = _db(reader_count=2, monitoring_interval_seconds=15)
    instances = t.of_type("AWS::RDS::DBInstance")
    assert len(instances) == 3
    roles = t.of_type("AWS::IAM::Role")
    for instance in instances.values():
        props = instance["Properties"]
        assert props["MonitoringInterval"] == 15
        role_id, attribute = props["MonitoringRoleArn"]["Fn::GetAtt"]
        assert attribute == "Arn"
        role = roles[role_id]["Properties"]
        (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": ["monitoring.rds.amazonaws.com"]}
        assert statement["Action"] == ["sts:AssumeRole"]
        assert role["ManagedPolicyArns"] == [
            {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"}
        ]
        assert props["EnablePerformanceInsights"] is True
        assert props["PerformanceInsightsRetentionPeriod"] == 7


def test_seed_16_outputs_expose_the_secret_arn_never_its_value():
    t = _db()
    for name in ("DbClusterEndpoint", "DbReaderEndpoint", "DbPort", "DbSecretArn", "DbClusterIdentifier"):
        t.has_output(name, {"Export": {"Name": {"Fn::Sub": "${AWS::StackName}-" + name}}, "Description": Match.any()})
    t.has_output("DbSecretArn", {"Value": {"Ref": "DbSecret"}})
    t.has_output("DbClusterEndpoint", {"Value": {"Fn::GetAtt": ["DbCluster", "Endpoint.Address"]}})
    t.has_output("DbReaderEndpoint", {"Value": {"Fn::GetAtt": ["DbCluster", "ReadEndpoint.Address"]}})
    t.has_output("DbPort", {"Value": {"Fn::GetAtt": ["DbCluster", "Endpoint.Port"]}})
    t.has_output("DbClusterIdentifier", {"Value": {"Ref": "DbCluster"}})
    outputs_and_parameters = json.dumps([t.template["Outputs"], t.template["Parameters"]])
    assert "resolve:secretsmanager" not in outputs_and_parameters
    assert "SecretString" not in outputs_and_parameters
    assert "password" not in outputs_and_parameters.lower()


# -- the resources -----------------------------------------------------------------------------


def test_master_credentials_are_generated_and_read_through_dynamic_references():
    t = _db(master_username="owner")
    t.has_resource(
        "AWS::SecretsManager::Secret",
        {
            "DeletionPolicy": "RetainExceptOnCreate",
            "UpdateReplacePolicy": "Retain",
            "Metadata": {"cfnbuild": {"stateful": True}},
            "Properties": {
                "GenerateSecretString": {
                    "SecretStringTemplate": '{"username": "owner"}',
                    "GenerateStringKey": "password",
                    "PasswordLength": 32,
                    "ExcludeCharacters": Match.any(),
                }
            },
        },
    )
    excluded = t.of_type("AWS::SecretsManager::Secret")["DbSecret"]["Properties"]["GenerateSecretString"][
        "ExcludeCharacters"
    ]
    for character in "/@\" '\\:?#%&+=":  # RDS refuses the first four; URLs and shells dislike the rest
        assert character in excluded
    reference = "{{resolve:secretsmanager:${Secret}:SecretString:%s}}"
    t.has_resource_properties(
        "AWS::RDS::DBCluster",
        {
            "MasterUsername": {"Fn::Sub": [reference % "username", {"Secret": {"Ref": "DbSecret"}}]},
            "MasterUserPassword": {"Fn::Sub": [reference % "password", {"Secret": {"Ref": "DbSecret"}}]},
            "ManageMasterUserPassword": Match.absent(),
        },
    )


def test_the_secret_is_attached_to_the_cluster_so_it_gains_host_port_and_dbname():
    _db().has_resource_properties(
        "AWS::SecretsManager::SecretTargetAttachment",
        {"SecretId": {"Ref": "DbSecret"}, "TargetId": {"Ref": "DbCluster"}, "TargetType": "AWS::RDS::DBCluster"},
    )


def test_cluster_is_encrypted_private_to_its_subnets_and_snapshotted():
    t = _db(backup_retention_days=14, deletion_protection=True, database_name="notes")
    t.has_resource(
        "AWS::RDS::DBCluster",
        {
            "DeletionPolicy": "Snapshot",
            "UpdateReplacePolicy": "Snapshot",
            "Properties": {
                "StorageEncrypted": True,
                "KmsKeyId": Match.absent(),
                "EnableIAMDatabaseAuthentication": True,
                "EnableCloudwatchLogsExports": ["audit", "error", "slowquery"],
                "BackupRetentionPeriod": 14,
                "DeletionProtection": True,
                "CopyTagsToSnapshot": True,
                "DatabaseName": "notes",
                "Port": 3306,
                "DBSubnetGroupName": {"Ref": "DbSubnetGroup"},
                "DBClusterParameterGroupName": {"Ref": "DbClusterParameterGroup"},
                "VpcSecurityGroupIds": [{"Ref": "DbSecurityGroup"}],
            },
        },
    )
    t.has_resource_properties(
        "AWS::RDS::DBSubnetGroup", {"SubnetIds": [{"Ref": "DataSubnet1"}, {"Ref": "DataSubnet2"}]}
    )


def test_parameter_group_requires_tls_and_turns_on_the_exported_logs():
    t = _db(log_exports=("audit", "error", "general", "slowquery"))
    t.has_resource_properties(
        "AWS::RDS::DBClusterParameterGroup",
        {
            "Family": "aurora-mysql8.0",
            "Parameters": {
                "require_secure_transport": "ON",
                "server_audit_logging": "1",
                "server_audit_events": Match.any(),
                "general_log": "1",
                "slow_query_log": "1",
                "long_query_time": Match.any(),
            },
        },
    )
    only_errors = _db(log_exports=("error",)).of_type("AWS::RDS::DBClusterParameterGroup")
    assert only_errors["DbClusterParameterGroup"]["Properties"]["Parameters"] == {"require_secure_transport": "ON"}


def test_instances_are_private_cluster_members_and_readers_wait_for_the_writer():
    t = _db(reader_count=2, instance_class="db.r6g.large")
    t.resource_count_is("AWS::RDS::DBInstance", 3)
    t.all_resources_properties(
        "AWS::RDS::DBInstance",
        {
            "DBClusterIdentifier": {"Ref": "DbCluster"},
            "Engine": "aurora-mysql",
            "DBInstanceClass": "db.r6g.large",
            "PubliclyAccessible": False,
            "AutoMinorVersionUpgrade": True,
            "DBInstanceIdentifier": Match.absent(),
        },
    )
    instances = t.of_type("AWS::RDS::DBInstance")
    assert instances["DbWriter"]["Properties"]["PromotionTier"] == 0
    with_depends = {k: v["DependsOn"] for k, v in t.resources.items() if "DependsOn" in v}
    assert with_depends == {"DbReader1": ["DbWriter"], "DbReader2": ["DbWriter"]}
    for instance in instances.values():
        # Aurora data lives in the cluster volume (snapshotted); an instance is not stateful.
        assert (instance["DeletionPolicy"], instance["UpdateReplacePolicy"]) == ("Delete", "Delete")
        assert "cfnbuild" not in instance.get("Metadata", {})


def test_no_readers_means_a_writer_alone():
    t = _db(reader_count=0)
    assert list(t.of_type("AWS::RDS::DBInstance")) == ["DbWriter"]


def test_performance_insights_can_be_turned_off():
    _db(performance_insights=False).all_resources_properties(
        "AWS::RDS::DBInstance",
        {"EnablePerformanceInsights": False, "PerformanceInsightsRetentionPeriod": Match.absent()},
    )


def test_a_kms_key_encrypts_storage_performance_insights_and_the_secret():
    key = Ref("DataKey")
    t = _db(kms_key_arn=key)
    t.has_resource_properties("AWS::RDS::DBCluster", {"KmsKeyId": {"Ref": "DataKey"}, "StorageEncrypted": True})
    t.has_resource_properties("AWS::SecretsManager::Secret", {"KmsKeyId": {"Ref": "DataKey"}})
    t.all_resources_properties("AWS::RDS::DBInstance", {"PerformanceInsightsKMSKeyId": {"Ref": "DataKey"}})
    assert not any("checkov" in r.get("Metadata", {}) for r in t.resources.values())


def test_without_a_kms_key_the_only_checkov_skip_names_the_aws_managed_key():
    skips = {
        logical_id: resource["Metadata"]["checkov"]["skip"]
        for logical_id, resource in _db().resources.items()
        if "checkov" in resource.get("Metadata", {})
    }
    assert list(skips) == ["DbSecret"]
    ((skip,),) = skips.values()
    assert skip["id"] == "CKV_AWS_149"
    assert "aws/secretsmanager" in skip["comment"]


def test_typed_outputs_for_the_next_blueprints():
    stack = _stack()
    db = Database(stack, DatabaseInputs(subnet_ids=SUBNETS, security_group_id=SECURITY_GROUP))
    assert db.secret_arn.to_dict() == {"Ref": "DbSecret"}
    assert db.cluster_identifier.to_dict() == {"Ref": "DbCluster"}
    assert db.endpoint.to_dict() == {"Fn::GetAtt": ["DbCluster", "Endpoint.Address"]}
    assert db.reader_endpoint.to_dict() == {"Fn::GetAtt": ["DbCluster", "ReadEndpoint.Address"]}
    assert db.port.to_dict() == {"Fn::GetAtt": ["DbCluster", "Endpoint.Port"]}
    assert db.monitoring_role_arn.to_dict() == {"Fn::GetAtt": ["DbMonitoringRole", "Arn"]}
    assert (db.cluster.title, db.secret.title) == ("DbCluster", "DbSecret")


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"subnet_ids": [Ref("A")]}, "'subnet_ids': lists 1; give subnets in at least two zones"),
        ({"reader_count": 16}, "'reader_count': is 16; use 0 to 15"),
        ({"reader_count": -1}, "'reader_count': is -1; use 0 to 15"),
        ({"backup_retention_days": 0}, "'backup_retention_days': is 0; use 1 to 35"),
        ({"backup_retention_days": 36}, "'backup_retention_days': is 36; use 1 to 35"),
        ({"monitoring_interval_seconds": 0}, "'monitoring_interval_seconds': is 0; use one of 1, 5, 10, 15, 30, 60"),
        ({"instance_class": "t3.small"}, "'instance_class': is 't3.small'; use a provisioned DB class"),
        ({"instance_class": "db.serverless"}, "'instance_class': is 'db.serverless'; use a provisioned DB class"),
        ({"database_name": "1app"}, "'database_name': is '1app'; use a letter, then letters, digits or '_'"),
        ({"master_username": "admin-user"}, "'master_username': is 'admin-user'; use a letter"),
        ({"master_username": "a" * 17}, r"'master_username': is 'a{17}'; .*\(16 characters at most\)"),
        ({"log_exports": ("error", "iam-db-auth-error")}, "'log_exports': has iam-db-auth-error; choose from"),
    ],
)
def test_incompatible_inputs_are_rejected_when_the_blueprint_is_made(inputs, message):
    with pytest.raises(InputError, match="Database input " + message):
        _db(**inputs)


# -- the gate ----------------------------------------------------------------------------------


def test_gate_cfn_lint_and_checkov_find_nothing(tmp_path):
    stack = _full_stack(kms=True, reader_count=2, deletion_protection=True)
    text = stack.to_json()
    assert cfn_lint(text, REGIONS, file="t.json") == []
    path = tmp_path / "t.json"
    path.write_text(text)
    assert checkov([path], root=tmp_path) == []


def test_gate_cfn_lint_finds_nothing_without_a_key_or_readers():
    stack = _full_stack(kms=False, reader_count=0, performance_insights=False, log_exports=("error",))
    assert cfn_lint(stack.to_json(), REGIONS, file="t.json") == []


def test_the_monitoring_role_is_assumed_only_for_this_accounts_db_instances():
    roles = _db().of_type("AWS::IAM::Role")
    (role,) = [r for r in roles.values() if "monitoring.rds.amazonaws.com" in str(r)]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": ["monitoring.rds.amazonaws.com"]}
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {"aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:db:*"}},
    }
