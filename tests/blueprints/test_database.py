"""The database blueprint, asserted the way the CDK's assertions module does."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from troposphere import Ref, ec2

from blueprints.config import WebAppConfig
from blueprints.database import (
    BACKTRACK_DOC,
    BACKUPS_DOC,
    DELETION_POLICY_DOC,
    LOGGING_DOC,
    PASSWORD_EXCLUDED_CHARACTERS,
    SECURITY_GROUPS_DOC,
    Database,
    DatabaseInputs,
)
from blueprints.encryption import Keys, KeysInputs
from blueprints.network import Network, NetworkInputs
from cfnbuild import InputError, Stack
from cfnbuild.build.lint import cfn_lint, checkov
from cfnbuild.deploy.lookups import resolve_lookups
from cfnbuild.errors import ConfigError
from cfnbuild.project.config import load_config
from tests.assertions import Match, TemplateAssert

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "staging", "prod")
SUBNETS = [Ref("DataSubnet1"), Ref("DataSubnet2")]
SECURITY_GROUP = Ref("DbSecurityGroup")
VPC = Ref("Vpc")
BASE = {"subnet_ids": SUBNETS, "security_group_id": SECURITY_GROUP, "vpc_id": VPC}
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
    Database(stack, DatabaseInputs(**{**BASE, **inputs}))
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
            vpc_id=net.vpc_id,
            kms_key_arn=keys.logs_key_arn if keys else None,
            rotation_depends_on=tuple(route.title for route in net.nat_routes),
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
        Database(stack, DatabaseInputs(**BASE))
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
    Database(stack, DatabaseInputs(**BASE))
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
        t.has_output(name, {"Export": Match.absent(), "Description": Match.any()})
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
    with_depends = {k: v["DependsOn"] for k, v in t.of_type("AWS::RDS::DBInstance").items() if "DependsOn" in v}
    assert with_depends["DbReader1"] == with_depends["DbReader2"] == ["DbWriter"]
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
    assert sorted(skips) == ["DbAuditLogGroup", "DbErrorLogGroup", "DbSecret", "DbSlowqueryLogGroup"]
    (skip,) = skips.pop("DbSecret")
    assert skip["id"] == "CKV_AWS_149"
    assert "aws/secretsmanager" in skip["comment"]
    for (log_skip,) in skips.values():
        assert log_skip["id"] == "CKV_AWS_158"
        assert "kms_key_arn was not given" in log_skip["comment"]


def test_typed_outputs_for_the_next_blueprints():
    stack = _stack()
    db = Database(stack, DatabaseInputs(**BASE))
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
        ({"rotation_days": 0}, "'rotation_days': is 0; use 1 to 1000"),
        ({"rotation_days": 1001}, "'rotation_days': is 1001; use 1 to 1000"),
        ({"log_retention_days": 8}, "'log_retention_days': is 8; use one of 1, 3, 5, 7, 14"),
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


# -- rotation ----------------------------------------------------------------------------------


def test_the_secret_rotates_through_the_hosted_mysql_single_user_function_every_rotation_days():
    t = _db(rotation_days=45, kms_key_arn=Ref("DataKey"))
    assert t.template["Transform"] == "AWS::SecretsManager-2024-09-16"
    t.resource_count_is("AWS::SecretsManager::RotationSchedule", 1)
    t.has_resource_properties(
        "AWS::SecretsManager::RotationSchedule",
        {
            "SecretId": {"Ref": "DbSecret"},
            "RotationRules": {"AutomaticallyAfterDays": 45},
            "RotationLambdaARN": Match.absent(),
            "HostedRotationLambda": {
                "RotationType": "MySQLSingleUser",
                "VpcSubnetIds": {"Fn::Join": [",", [{"Ref": "DataSubnet1"}, {"Ref": "DataSubnet2"}]]},
                "VpcSecurityGroupIds": {"Fn::GetAtt": ["DbRotationSecurityGroup", "GroupId"]},
                # New passwords keep to the alphabet RDS, URLs and shells accept.
                "ExcludeCharacters": PASSWORD_EXCLUDED_CHARACTERS,
                "KmsKeyArn": {"Ref": "DataKey"},
                "RotationLambdaName": Match.absent(),  # a literal name would collide between stacks
            },
        },
    )


def test_the_rotation_waits_for_the_attachment_the_writer_the_way_in_and_the_given_routes():
    t = _db(rotation_depends_on=("PrivateDefaultRoute1", "PrivateDefaultRoute2"))
    (rotation,) = t.of_type("AWS::SecretsManager::RotationSchedule").values()
    assert rotation["DependsOn"] == [
        "DbSecretAttachment",
        "DbWriter",
        "DbFromRotationIngress",
        "PrivateDefaultRoute1",
        "PrivateDefaultRoute2",
    ]
    assert "DeletionPolicy" not in rotation  # a schedule holds no data


def test_the_rotation_function_reaches_only_the_database_and_https():
    t = _db()
    group = t.of_type("AWS::EC2::SecurityGroup")["DbRotationSecurityGroup"]["Properties"]
    assert group["VpcId"] == {"Ref": "Vpc"}
    assert group["SecurityGroupEgress"] == [
        {
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "CidrIp": "0.0.0.0/0",
            "Description": "HTTPS to the Secrets Manager API through NAT",
        }
    ]
    assert "SecurityGroupIngress" not in group  # nothing connects to the function
    rotation_id = {"Fn::GetAtt": ["DbRotationSecurityGroup", "GroupId"]}
    t.has_resource_properties(
        "AWS::EC2::SecurityGroupEgress",
        {
            "GroupId": rotation_id,
            "FromPort": 3306,
            "ToPort": 3306,
            "DestinationSecurityGroupId": {"Ref": "DbSecurityGroup"},
        },
    )
    t.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {"GroupId": {"Ref": "DbSecurityGroup"}, "FromPort": 3306, "ToPort": 3306, "SourceSecurityGroupId": rotation_id},
    )


# -- the exported logs' groups -----------------------------------------------------------------


def test_each_exported_log_has_its_group_under_the_name_rds_writes_to_encrypted_retained_and_stateful():
    t = _db(log_exports=("audit", "error", "general", "slowquery"), log_retention_days=365, kms_key_arn=Ref("K"))
    groups = t.of_type("AWS::Logs::LogGroup")
    names = {
        log: {"Fn::Sub": [f"/aws/rds/cluster/${{Cluster}}/{log}", {"Cluster": {"Ref": "DbCluster"}}]}
        for log in ("audit", "error", "general", "slowquery")
    }
    assert {g["Properties"]["LogGroupName"]["Fn::Sub"][0].rsplit("/", 1)[1] for g in groups.values()} == set(names)
    for name in names.values():
        t.has_resource(
            "AWS::Logs::LogGroup",
            {
                "DeletionPolicy": "RetainExceptOnCreate",
                "UpdateReplacePolicy": "Retain",
                "Metadata": {"cfnbuild": {"stateful": True}},
                "Properties": {"LogGroupName": name, "RetentionInDays": 365, "KmsKeyId": {"Ref": "K"}},
            },
        )
    cluster = t.of_type("AWS::RDS::DBCluster")["DbCluster"]["Properties"]
    assert cluster["EnableCloudwatchLogsExports"] == sorted(names)
    assert "DBClusterIdentifier" not in cluster  # naming the cluster would replace a deployed one


def test_only_the_exported_logs_get_groups():
    groups = _db(log_exports=("error",)).of_type("AWS::Logs::LogGroup")
    assert list(groups) == ["DbErrorLogGroup"]


def test_the_writer_waits_for_the_log_groups_so_rds_never_creates_them_itself():
    t = _db(reader_count=1)
    instances = t.of_type("AWS::RDS::DBInstance")
    assert instances["DbWriter"]["DependsOn"] == ["DbAuditLogGroup", "DbErrorLogGroup", "DbSlowqueryLogGroup"]
    assert instances["DbReader1"]["DependsOn"] == ["DbWriter"]  # and so, through it, on the groups


# -- accepted rule-pack findings ---------------------------------------------------------------

LOGGING_RULES = {f"{pack}-RDSLoggingEnabled" for pack in ("HIPAA.Security", "NIST.800.53.R5", "PCI.DSS.321")}
DELETION_RULES = {
    "AwsSolutions-RDS10",
    "HIPAA.Security-RDSInstanceDeletionProtectionEnabled",
    "NIST.800.53.R5-RDSInstanceDeletionProtectionEnabled",
}
BACKUP_PLAN_RULES = {"HIPAA.Security-RDSInBackupPlan", "NIST.800.53.R5-RDSInBackupPlan"}


def _accepted(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The rule-pack acceptances in a resource's Metadata, by rule id."""
    entries = resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    return {entry["id"]: entry for entry in entries}


def _cluster(t: TemplateAssert) -> dict[str, Any]:
    (cluster,) = t.of_type("AWS::RDS::DBCluster").values()
    return cluster


def test_the_unexported_general_log_is_accepted_only_while_the_audit_log_is_exported():
    accepted = _accepted(_cluster(_db()))
    assert set(accepted) >= LOGGING_RULES
    for rule in LOGGING_RULES:
        # Only the general log's finding: a pack reporting another missing export stays open.
        assert accepted[rule]["applies_to"] == ["LogExport::general"]
        assert LOGGING_DOC in accepted[rule]["reason"]
        assert "CONNECT,QUERY_DCL,QUERY_DDL" in accepted[rule]["reason"]
    every_log = _accepted(_cluster(_db(log_exports=("audit", "error", "general", "slowquery"))))
    no_audit = _accepted(_cluster(_db(log_exports=("error", "slowquery"))))
    assert not LOGGING_RULES & set(every_log)
    assert not LOGGING_RULES & set(no_audit)


def test_deletion_protection_is_accepted_only_while_the_config_turns_it_off_and_the_cluster_snapshots():
    t = _db(deletion_protection=False)
    cluster = _cluster(t)
    assert cluster["Properties"]["DeletionProtection"] is False
    assert cluster["DeletionPolicy"] == cluster["UpdateReplacePolicy"] == "Snapshot"
    accepted = _accepted(cluster)
    assert set(accepted) >= DELETION_RULES
    for rule in DELETION_RULES:
        reason = accepted[rule]["reason"]
        assert "database.deletion_protection = false" in reason
        assert "Snapshot" in reason
        assert DELETION_POLICY_DOC in reason
    protected = _cluster(_db(deletion_protection=True))
    assert protected["Properties"]["DeletionProtection"] is True
    assert not DELETION_RULES & set(_accepted(protected))


def test_the_default_port_and_backtrack_off_are_accepted_with_the_documents_that_say_why():
    cluster = _cluster(_db(backup_retention_days=21))
    assert cluster["Properties"]["Port"] == 3306
    assert "BacktrackWindow" not in cluster["Properties"]
    accepted = _accepted(cluster)
    port = accepted["AwsSolutions-RDS11"]["reason"]
    assert "3306" in port
    assert SECURITY_GROUPS_DOC in port
    backtrack = accepted["AwsSolutions-RDS14"]["reason"]
    assert "Aurora MySQL 3 supports it" in backtrack
    assert BACKTRACK_DOC in backtrack
    assert BACKUPS_DOC in backtrack
    assert "kept 21 day(s)" in backtrack


def test_every_instance_is_accepted_outside_a_backup_plan_because_the_cluster_volume_is_backed_up():
    t = _db(reader_count=2, backup_retention_days=30)
    instances = t.of_type("AWS::RDS::DBInstance")
    assert sorted(instances) == ["DbReader1", "DbReader2", "DbWriter"]
    for instance in instances.values():
        accepted = _accepted(instance)
        assert set(accepted) == BACKUP_PLAN_RULES
        for entry in accepted.values():
            assert "last 30 day(s)" in entry["reason"]
            assert BACKUPS_DOC in entry["reason"]
    # The cluster they serve is the one that is backed up and snapshotted.
    cluster = _cluster(t)
    assert cluster["Properties"]["BackupRetentionPeriod"] == 30
    assert cluster["DeletionPolicy"] == "Snapshot"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_environments_template_accepts_no_deletion_protection_exactly_when_its_config_turns_it_off(environment):
    config = tomllib.loads((ROOT / "config" / f"{environment}.toml").read_text())["database"]
    t = TemplateAssert(json.loads((ROOT / "output" / environment / "data.json").read_text()))
    cluster = _cluster(t)
    assert cluster["Properties"]["DeletionProtection"] is config["deletion_protection"]
    accepted = set(_accepted(cluster))
    if config["deletion_protection"]:
        assert not DELETION_RULES & accepted
    else:
        assert accepted >= DELETION_RULES


# -- the shipped templates and configs ---------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_environments_template_rotates_and_retains_as_its_config_says(environment):
    config = tomllib.loads((ROOT / "config" / f"{environment}.toml").read_text())["database"]
    t = TemplateAssert(json.loads((ROOT / "output" / environment / "data.json").read_text()))
    assert t.template["Transform"] == "AWS::SecretsManager-2024-09-16"
    t.has_resource_properties(
        "AWS::SecretsManager::RotationSchedule",
        {
            "SecretId": {"Ref": "DbSecret"},
            "RotationRules": {"AutomaticallyAfterDays": config["rotation_days"]},
            "HostedRotationLambda": {
                "RotationType": "MySQLSingleUser",
                "KmsKeyArn": {"Ref": "NetworkLogsKeyArn"},
            },
        },
    )
    (rotation,) = t.of_type("AWS::SecretsManager::RotationSchedule").values()
    # The NAT routes the rotation function needs are the network stack's: the data stack takes the network's
    # outputs, so the deploy's order makes the routes first (no DependsOn can cross stacks).
    assert not {"PrivateDefaultRoute1", "PrivateDefaultRoute2"} & set(rotation["DependsOn"])
    assert set(rotation["DependsOn"]) <= set(t.resources), "every DependsOn names a resource of this stack"
    inputs = t.template["Metadata"]["cfnbuild"]["inputs"]
    assert inputs["NetworkDataSubnetIds"] == {"output": "DataSubnetIds", "stack": "network"}
    cluster_groups = {
        logical_id: group
        for logical_id, group in t.of_type("AWS::Logs::LogGroup").items()
        if "/aws/rds/cluster/" in json.dumps(group["Properties"].get("LogGroupName", ""))
    }
    assert sorted(cluster_groups) == ["DbAuditLogGroup", "DbErrorLogGroup", "DbSlowqueryLogGroup"]
    for group in cluster_groups.values():
        assert group["Properties"]["RetentionInDays"] == config["log_retention_days"]
        assert group["Properties"]["KmsKeyId"] == {"Ref": "NetworkLogsKeyArn"}


def test_the_environments_rotate_on_their_own_periods():
    periods = {
        env: tomllib.loads((ROOT / "config" / f"{env}.toml").read_text())["database"]["rotation_days"]
        for env in ENVIRONMENTS
    }
    assert periods == {"dev": 14, "staging": 30, "prod": 30}


CONFIG = """\
project = "webapp"
regions = ["eu-west-1"]

[load_balancer]
allow_plain_http = true
"""


def _config_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "dev.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, WebAppConfig)
    (line,) = str(info.value).splitlines()
    return line.removeprefix(f"{path}: ")


def test_rotation_days_default_to_30_and_deploys_acknowledge_the_transform_by_default(tmp_path):
    path = tmp_path / "dev.toml"
    path.write_text(CONFIG)
    config = load_config(path, WebAppConfig)
    assert config.database.rotation_days == 30
    assert config.database.log_retention_days == 30
    assert config.deploy.capabilities == ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
    path.write_text(CONFIG + '[deploy]\nstack_name_suffix = "blue"\n')
    assert load_config(path, WebAppConfig).deploy.capabilities == ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]


@pytest.mark.parametrize(
    ("section", "line"),
    [
        ("[database]\nrotation_days = 0\n", "database.rotation_days: rotation_days is 0, outside what Secrets Manager "
         "accepts; rotate every 1 to 1000 days"),
        ("[database]\nrotation_days = 1001\n", "database.rotation_days: rotation_days is 1001, outside what Secrets "
         "Manager accepts; rotate every 1 to 1000 days"),
        ("[database]\nlog_retention_days = 10\n", "database.log_retention_days: log_retention_days is 10, which "
         "CloudWatch Logs does not offer; use one of 1, 3, 5"),
        ("[deploy]\ncapabilities = ['CAPABILITY_IAM']\n", "deploy.capabilities: capabilities lack "
         "CAPABILITY_AUTO_EXPAND, which the template's AWS::SecretsManager transform"),
    ],
)  # fmt: skip
def test_a_bad_rotation_retention_or_capability_is_one_line_naming_the_key_and_the_fix(tmp_path, section, line):
    assert _config_error(tmp_path, CONFIG + section).startswith(line)


def test_rotation_days_at_the_bounds_are_accepted(tmp_path):
    path = tmp_path / "dev.toml"
    for days in (1, 1000):
        path.write_text(CONFIG + f"[database]\nrotation_days = {days}\n")
        assert load_config(path, WebAppConfig).database.rotation_days == days
