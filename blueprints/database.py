"""The database: an encrypted Aurora MySQL 3 cluster, one writer and N readers, in the data subnets.

Inputs: :class:`DatabaseInputs`. Outputs: ``cluster``, ``secret`` (the troposphere resources),
``secret_arn`` (``Ref`` of the secret), ``endpoint``, ``reader_endpoint``, ``port`` (``GetAtt``),
``cluster_identifier`` (``Ref``), ``monitoring_role_arn``; and the exported Outputs
``DbClusterEndpoint``, ``DbReaderEndpoint``, ``DbPort``, ``DbSecretArn``, ``DbClusterIdentifier``.

The master credentials live in a Secrets Manager secret that this stack makes (no literal name,
so stacks never collide: failure-analysis item 1) with a generated password; the cluster reads
them through ``{{resolve:secretsmanager:...}}`` references, so the password is never in a
parameter, an output or the template, and a ``SecretTargetAttachment`` adds the cluster's
host, port and database name to the secret's JSON for the app. The secret is ours, not
RDS-managed (``ManageMasterUserPassword``), so the app role can be granted read on exactly it.
Rotation is not set up yet.

The engine version is never a literal (item 3): it comes from the ``DbEngineVersion``
parameter, whose empty default means "the region's default"; the deploy engine fills it with
the newest Aurora MySQL 3 version the region offers (a ``rds-engine-version`` lookup, see
:mod:`cfnbuild.lookups`). Enhanced monitoring runs under a role made here, trusted by
``monitoring.rds.amazonaws.com`` (item 4). TLS is required by the cluster parameter group.
AWS docs: https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.CreateInstance.html
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from troposphere import AWSHelperFn, Equals, GetAtt, If, Not, Ref, Sub, rds, secretsmanager

from cfnbuild import Blueprint, ServiceRole, setting
from cfnbuild.naming import partition_arn

ENGINE = "aurora-mysql"
ENGINE_MAJOR = "3"  # Aurora MySQL 3 is MySQL 8.0 compatible
PARAMETER_GROUP_FAMILY = "aurora-mysql8.0"
PORT = 3306
MONITORING_INTERVALS = (1, 5, 10, 15, 30, 60)
LOG_EXPORTS = ("audit", "error", "general", "slowquery")
MYSQL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
MAX_READERS = 15
PERFORMANCE_INSIGHTS_RETENTION_DAYS = 7  # the free tier
PASSWORD_LENGTH = 32
# RDS refuses '/', '"', '@' and space in a MySQL master password; the rest of RFC 3986's
# reserved and unsafe characters would need escaping in a connection URL, and quotes and
# backslashes in a shell or an option file. What remains: letters, digits, '-', '.', '_'.
PASSWORD_EXCLUDED_CHARACTERS = "\"'`\\/@:;?#[]{}()<>|^~!$&*+,=% "  # noqa: S105  (characters, not a password)
# The cluster parameters each exported log needs, or the exported log stays empty.
LOG_PARAMETERS: dict[str, dict[str, str]] = {
    "audit": {"server_audit_logging": "1", "server_audit_events": "CONNECT,QUERY_DCL,QUERY_DDL"},
    "general": {"general_log": "1"},
    "slowquery": {"slow_query_log": "1", "long_query_time": "2"},
}


@dataclass(frozen=True)
class DatabaseInputs:
    """Inputs of :class:`Database`."""

    subnet_ids: Sequence[AWSHelperFn] = setting(
        doc="The private data subnets (at least two zones) the cluster's instances run in."
    )
    security_group_id: AWSHelperFn = setting(doc="The database security group (allows 3306 from the app only).")
    instance_class: str = setting("db.t4g.medium", "Instance class of the writer and every reader.")
    reader_count: int = setting(1, "Reader instances besides the writer, 0 to 15 (1+: failover in seconds).")
    backup_retention_days: int = setting(7, "Days automated backups are kept, 1 to 35.")
    deletion_protection: bool = setting(False, "Refuse to delete the cluster (prod: true).")
    monitoring_interval_seconds: int = setting(60, "Enhanced monitoring granularity: 1, 5, 10, 15, 30 or 60 s.")
    performance_insights: bool = setting(True, "Turn on Performance Insights (7 days, free tier) on each instance.")
    database_name: str = setting("app", "Name of the database created in the cluster.")
    master_username: str = setting(
        "app_admin", "The master user's name (its password is generated); fixed once the cluster exists."
    )
    log_exports: tuple[str, ...] = setting(
        ("audit", "error", "slowquery"), "Logs exported to CloudWatch Logs: audit, error, general, slowquery."
    )
    kms_key_arn: AWSHelperFn | None = setting(
        None, "KMS key ARN for storage, Performance Insights and the secret; None: AWS managed keys."
    )


class Database(Blueprint[DatabaseInputs]):
    """The secret, parameter and subnet groups, Aurora MySQL cluster, instances and monitoring role."""

    cluster: rds.DBCluster
    secret: secretsmanager.Secret
    secret_arn: Ref
    endpoint: GetAtt
    reader_endpoint: GetAtt
    port: GetAtt
    cluster_identifier: Ref
    monitoring_role: ServiceRole
    monitoring_role_arn: GetAtt
    instances: list[rds.DBInstance]
    attachment: secretsmanager.SecretTargetAttachment  # adds host/port/dbname to the secret

    def validate(self) -> None:
        """Counts and periods RDS accepts, names MySQL accepts, exports Aurora MySQL offers."""
        inputs = self.inputs
        if len(inputs.subnet_ids) < 2:
            raise self.invalid("subnet_ids", f"lists {len(inputs.subnet_ids)}; give subnets in at least two zones")
        if not 0 <= inputs.reader_count <= MAX_READERS:
            raise self.invalid("reader_count", f"is {inputs.reader_count}; use 0 to {MAX_READERS}")
        if not 1 <= inputs.backup_retention_days <= 35:
            raise self.invalid("backup_retention_days", f"is {inputs.backup_retention_days}; use 1 to 35")
        if inputs.monitoring_interval_seconds not in MONITORING_INTERVALS:
            raise self.invalid(
                "monitoring_interval_seconds",
                f"is {inputs.monitoring_interval_seconds}; use one of {', '.join(map(str, MONITORING_INTERVALS))}",
            )
        if not inputs.instance_class.startswith("db.") or inputs.instance_class == "db.serverless":
            raise self.invalid(
                "instance_class", f"is {inputs.instance_class!r}; use a provisioned DB class like 'db.t4g.medium'"
            )
        for field, longest in (("database_name", 64), ("master_username", 16)):
            value = getattr(inputs, field)
            if not MYSQL_NAME.fullmatch(value) or len(value) > longest:
                raise self.invalid(
                    field, f"is {value!r}; use a letter, then letters, digits or '_' ({longest} characters at most)"
                )
        unknown = sorted(set(inputs.log_exports) - set(LOG_EXPORTS))
        if unknown:
            raise self.invalid("log_exports", f"has {', '.join(unknown)}; choose from {', '.join(LOG_EXPORTS)}")

    def build(self) -> None:
        """Resources in dependency order; each piece is its own method so a subclass can change one."""
        engine_version = self.engine_version()
        self.secret = self.master_secret()
        parameter_group = self.parameter_group()
        subnet_group = self.subnet_group()
        self.cluster = self.db_cluster(engine_version, parameter_group, subnet_group)
        self.attachment = self.secret_attachment()
        self.monitoring_role = self.monitoring()
        self.instances = self.db_instances()

    def engine_version(self) -> If:
        """The ``DbEngineVersion`` parameter, its lookup, and the value the cluster gets from it."""
        parameter = self.parameter(
            "DbEngineVersion",
            Type="String",
            Default="",
            AllowedPattern=rf"^(\d+\.\d+\.mysql_aurora\.{ENGINE_MAJOR}(\.\d+)+)?$",
            ConstraintDescription="an Aurora MySQL 3 version such as the ones DescribeDBEngineVersions lists, or empty",
            Description=(
                "Aurora MySQL 3 engine version; empty: the region's default. cfnbuild deploy fills it with "
                "the newest version the region offers."
            ),
        )
        self.lookup("DbEngineVersion", kind="rds-engine-version", engine=ENGINE, major=ENGINE_MAJOR)
        given = self.condition("HasDbEngineVersion", Not(Equals(Ref(parameter), "")))
        return If(given, Ref(parameter), Ref("AWS::NoValue"))

    def master_secret(self) -> secretsmanager.Secret:
        """The master credentials: a generated password under the master username; no literal name."""
        props: dict[str, object] = {
            "Description": Sub("Master credentials of the ${AWS::StackName} Aurora MySQL cluster"),
            "GenerateSecretString": secretsmanager.GenerateSecretString(
                SecretStringTemplate=json.dumps({"username": self.inputs.master_username}, sort_keys=True),
                GenerateStringKey="password",
                PasswordLength=PASSWORD_LENGTH,
                ExcludeCharacters=PASSWORD_EXCLUDED_CHARACTERS,
                RequireEachIncludedType=True,
            ),
        }
        if self.inputs.kms_key_arn is not None:
            props["KmsKeyId"] = self.inputs.kms_key_arn
        secret = self.add(secretsmanager.Secret(self.lid("DbSecret"), **props), stateful=True)
        self.secret_arn = Ref(secret)
        self.output("DbSecretArn", self.secret_arn, "ARN of the secret holding the database credentials.")
        if self.inputs.kms_key_arn is None:
            self.skip_check(
                secret,
                "CKV_AWS_149",
                "kms_key_arn was not given: the secret is encrypted with the AWS managed key aws/secretsmanager "
                "by the stack author's choice; pass kms_key_arn for a customer managed key",
            )
        return secret

    def parameter_group(self) -> rds.DBClusterParameterGroup:
        """Cluster parameters: TLS required, and the logging each exported log needs."""
        parameters = {"require_secure_transport": "ON"}
        for log in self.inputs.log_exports:
            parameters.update(LOG_PARAMETERS.get(log, {}))
        return self.add(
            rds.DBClusterParameterGroup(
                self.lid("DbClusterParameterGroup"),
                Description=Sub("Aurora MySQL 3 parameters of ${AWS::StackName}: TLS required"),
                Family=PARAMETER_GROUP_FAMILY,
                Parameters=dict(sorted(parameters.items())),
            )
        )

    def subnet_group(self) -> rds.DBSubnetGroup:
        """The data subnets the instances may run in."""
        return self.add(
            rds.DBSubnetGroup(
                self.lid("DbSubnetGroup"),
                DBSubnetGroupDescription=Sub("Private data subnets of ${AWS::StackName}"),
                SubnetIds=list(self.inputs.subnet_ids),
            )
        )

    def db_cluster(
        self,
        engine_version: If,
        parameter_group: rds.DBClusterParameterGroup,
        subnet_group: rds.DBSubnetGroup,
    ) -> rds.DBCluster:
        """The cluster: encrypted, IAM authentication on, logs exported; snapshotted on delete and replace."""
        inputs = self.inputs
        credential = "{{resolve:secretsmanager:${Secret}:SecretString:%s}}"
        props: dict[str, object] = {
            "Engine": ENGINE,
            "EngineVersion": engine_version,
            "DatabaseName": inputs.database_name,
            "MasterUsername": Sub(credential % "username", Secret=Ref(self.secret)),
            "MasterUserPassword": Sub(credential % "password", Secret=Ref(self.secret)),
            "Port": PORT,
            "DBClusterParameterGroupName": Ref(parameter_group),
            "DBSubnetGroupName": Ref(subnet_group),
            "VpcSecurityGroupIds": [inputs.security_group_id],
            "StorageEncrypted": True,
            "EnableIAMDatabaseAuthentication": True,
            "EnableCloudwatchLogsExports": sorted(set(inputs.log_exports)),
            "BackupRetentionPeriod": inputs.backup_retention_days,
            "DeletionProtection": inputs.deletion_protection,
            "CopyTagsToSnapshot": True,
        }
        if inputs.kms_key_arn is not None:
            props["KmsKeyId"] = inputs.kms_key_arn
        cluster = self.add(rds.DBCluster(self.lid("DbCluster"), **props), stateful=True)
        self.cluster_identifier = Ref(cluster)
        self.endpoint = GetAtt(cluster, "Endpoint.Address")
        self.reader_endpoint = GetAtt(cluster, "ReadEndpoint.Address")
        self.port = GetAtt(cluster, "Endpoint.Port")
        self.output("DbClusterEndpoint", self.endpoint, "Writer endpoint (host name) of the Aurora cluster.")
        self.output("DbReaderEndpoint", self.reader_endpoint, "Reader endpoint (host name) of the Aurora cluster.")
        self.output("DbPort", self.port, "Port the Aurora cluster listens on.")
        self.output("DbClusterIdentifier", self.cluster_identifier, "Identifier of the Aurora cluster (for alarms).")
        return cluster

    def secret_attachment(self) -> secretsmanager.SecretTargetAttachment:
        """Adds the cluster's host, port, engine and database name to the secret's JSON."""
        return self.add(
            secretsmanager.SecretTargetAttachment(
                self.lid("DbSecretAttachment"),
                SecretId=Ref(self.secret),
                TargetId=Ref(self.cluster),
                TargetType="AWS::RDS::DBCluster",
            )
        )

    def monitoring(self) -> ServiceRole:
        """The role enhanced monitoring publishes OS metrics with (AWS's managed policy for it)."""
        role = ServiceRole(
            self,
            "DbMonitoring",
            services=["monitoring.rds.amazonaws.com"],
            managed_policies=["service-role/AmazonRDSEnhancedMonitoringRole"],
            # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Monitoring.OS.Enabling.html
            managed_policy_reason=(
                "AmazonRDSEnhancedMonitoringRole is the policy AWS documents for the role RDS assumes to "
                "publish Enhanced Monitoring metrics; it grants only writes to the RDS log groups (RDSOSMetrics)."
            ),
            # "Protecting against the confused deputy problem" (Amazon RDS User Guide, Enhanced
            # Monitoring): assumed only for this account's DB instances.
            source_arn=partition_arn("rds", "db:*"),
        )
        self.monitoring_role_arn = role.arn
        return role

    def db_instances(self) -> list[rds.DBInstance]:
        """The writer, then the readers; private, monitored, minor versions applied automatically."""
        writer = self.db_instance("DbWriter", promotion_tier=0)
        readers = [
            # Only the cluster is referenced, so CloudFormation would create all instances at
            # once and any could become the writer; the readers wait for the writer instead.
            self.db_instance(f"DbReader{index}", promotion_tier=1, depends_on=writer)
            for index in range(1, self.inputs.reader_count + 1)
        ]
        return [writer, *readers]

    def db_instance(
        self, name: str, *, promotion_tier: int, depends_on: rds.DBInstance | None = None
    ) -> rds.DBInstance:
        """One cluster instance. Its data lives in the cluster volume, so it is not stateful."""
        inputs = self.inputs
        props: dict[str, object] = {
            "DBClusterIdentifier": Ref(self.cluster),
            "Engine": ENGINE,
            "DBInstanceClass": inputs.instance_class,
            "PubliclyAccessible": False,
            "AutoMinorVersionUpgrade": True,
            "PromotionTier": promotion_tier,
            "MonitoringInterval": inputs.monitoring_interval_seconds,
            "MonitoringRoleArn": self.monitoring_role.arn,
            "EnablePerformanceInsights": inputs.performance_insights,
        }
        if inputs.performance_insights:
            props["PerformanceInsightsRetentionPeriod"] = PERFORMANCE_INSIGHTS_RETENTION_DAYS
            if inputs.kms_key_arn is not None:
                props["PerformanceInsightsKMSKeyId"] = inputs.kms_key_arn
        if depends_on is not None:
            props["DependsOn"] = [depends_on.title]
        # An Aurora instance cannot be snapshotted on its own (the cluster is); saying Delete
        # outright is what CloudFormation does by default for a cluster member.
        return self.add(rds.DBInstance(self.lid(name), DeletionPolicy="Delete", UpdateReplacePolicy="Delete", **props))
