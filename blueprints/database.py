"""The database: an encrypted Aurora MySQL 3 cluster, one writer and N readers, in the data subnets.

Inputs: :class:`DatabaseInputs`. Outputs: ``cluster``, ``secret`` (the troposphere resources),
``secret_arn`` (``Ref`` of the secret), ``endpoint``, ``reader_endpoint``, ``port`` (``GetAtt``),
``cluster_identifier`` (``Ref``), ``monitoring_role_arn``, ``rotation`` (the rotation schedule),
``log_groups`` (the exported logs' groups by log type); and the exported Outputs
``DbClusterEndpoint``, ``DbReaderEndpoint``, ``DbPort``, ``DbSecretArn``, ``DbClusterIdentifier``.

The master credentials live in a Secrets Manager secret that this stack makes (no literal name,
so stacks never collide: failure-analysis item 1) with a generated password; the cluster reads
them through ``{{resolve:secretsmanager:...}}`` references, so the password is never in a
parameter, an output or the template, and a ``SecretTargetAttachment`` adds the cluster's
host, port and database name to the secret's JSON for the app. The secret is ours, not
RDS-managed (``ManageMasterUserPassword``), so the app role can be granted read on exactly it.

The secret rotates (:meth:`Database.secret_rotation`): Secrets Manager's hosted rotation function
for MySQL, single user, every ``rotation_days``, running in the data subnets and reaching the
Secrets Manager API through the NAT routes. Why this and not RDS-managed rotation
(``ManageMasterUserPassword`` with ``MasterUserSecret``), which needs no Lambda function:

- RDS-managed rotation means a second, RDS-owned secret (``rds!cluster-…``). Ours cannot be
  removed: it is stateful, so the stack policy and the deploy engine refuse its deletion, and it
  would linger holding a password that no longer works. The app role's grant, made by the
  compute blueprint from this secret resource, would have to move to
  ``GetAtt Cluster.MasterUserSecret.SecretArn`` (no grant helper takes an ARN attribute), and the
  RDS-owned secret holds only ``username`` and ``password``, not the host the instances read.
- Its period cannot be set from the template. RDS rotates every 7 days by default
  (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/rds-secrets-manager.html,
  "Overview of managing master user passwords"); ``MasterUserSecret`` has only ``KmsKeyId`` and
  ``SecretArn``, and the RotationSchedule reference sends RDS master user credentials to
  ``MasterUserSecret`` instead of documenting RotationRules without a function for them
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-secretsmanager-rotationschedule.html).
  A per-environment period is what the config asks for.
- The hosted function keeps everything as it is: the same secret, ARN, grant and JSON (host,
  port, dbname from the attachment). Its cost: the ``AWS::SecretsManager`` transform (an
  AWS-hosted macro that puts the function in a nested stack, so deploys acknowledge
  ``CAPABILITY_AUTO_EXPAND``; see ``blueprints/config.py``), a security group that may reach the
  database, and a function per stack
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/transform-aws-secretsmanager.html).
  The emulator ignores the transform and leaves the schedule a placeholder.

Single user rotation changes the master password in place: a connection opened with the old
password after the change is refused (MySQL error 1045) until the client reads the secret again,
which the app does once per refused login (:mod:`flask_app.db`).

The exported logs land in log groups this stack makes (:meth:`Database.log_groups_of_exports`),
encrypted, retained ``log_retention_days`` and stateful, under the names RDS writes to; the
instances wait for them, so RDS never creates them itself.

What the rule packs ask for and this blueprint does not do is answered on the resource, each
where it applies (:meth:`Database.accept_findings`): the general log left unexported, deletion
protection off where the config turns it off, the default port, backtrack off, and the
instances outside an AWS Backup plan (the cluster volume is what is backed up).

The engine version is never a literal (item 3): it comes from the ``DbEngineVersion``
parameter, whose empty default means "the region's default"; the deploy engine fills it with
the newest Aurora MySQL 3 version the region offers (a ``rds-engine-version`` lookup, see
:mod:`cfnbuild.deploy.lookups`). Enhanced monitoring runs under a role made here, trusted by
``monitoring.rds.amazonaws.com`` (item 4). TLS is required by the cluster parameter group.
AWS docs: https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.CreateInstance.html
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from troposphere import AWSHelperFn, Equals, GetAtt, If, Join, Not, Ref, Sub, Tags, ec2, logs, rds, secretsmanager

from blueprints.config import LOG_RETENTION_DAYS, ROTATION_DAYS_MAX, ROTATION_DAYS_MIN
from cfnbuild import Blueprint, ServiceRole, setting
from cfnbuild.build.naming import partition_arn, stack_named

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
# Where Aurora MySQL publishes each exported log: "/aws/rds/cluster/cluster-name/log_type"
# (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Integrating.CloudWatch.html);
# the cluster's name is its identifier, which Ref of AWS::RDS::DBCluster returns.
CLUSTER_LOG_GROUP = "/aws/rds/cluster/${Cluster}/%s"
# The transform that expands HostedRotationLambda; the property's reference names this version
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-secretsmanager-rotationschedule-hostedrotationlambda.html).
ROTATION_TRANSFORM = "AWS::SecretsManager-2024-09-16"
# Secrets Manager's rotation template for one MySQL user that changes its own password
# (https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_available-rotation-templates.html).
ROTATION_TYPE = "MySQLSingleUser"
HTTPS = 443
ANYWHERE = "0.0.0.0/0"
# The rule packs whose findings :meth:`Database.accept_findings` answers (cdk-nag's prefixes).
AWS_SOLUTIONS, HIPAA, NIST, PCI = "AwsSolutions", "HIPAA.Security", "NIST.800.53.R5", "PCI.DSS.321"
# The AWS documents those answers rest on.
LOGGING_DOC = "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-mysql-troubleshooting-logging.html"
AUDIT_DOC = "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Auditing.html"
BACKUPS_DOC = "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Managing.Backups.html"
OVERVIEW_DOC = "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Overview.html"
BACKTRACK_DOC = "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Managing.Backtrack.html"
BACKTRACK_ON_CREATE_DOC = "https://repost.aws/knowledge-center/aurora-mysql-cluster-backtrack"
DELETE_DOC = "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_DeleteCluster.html"
DELETION_POLICY_DOC = "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html"
SECURITY_GROUPS_DOC = "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Overview.RDSSecurityGroups.html"


@dataclass(frozen=True)
class DatabaseInputs:
    """Inputs of :class:`Database`."""

    subnet_ids: Sequence[AWSHelperFn] = setting(
        doc="The private data subnets (at least two zones) the cluster's instances run in."
    )
    security_group_id: AWSHelperFn = setting(doc="The database security group (allows 3306 from the app only).")
    vpc_id: AWSHelperFn = setting(doc="The VPC of the subnets; the rotation function's security group lives in it.")
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
        None,
        "KMS key ARN for storage, Performance Insights, the secret and the exported logs' groups; "
        "None: AWS managed keys.",
    )
    rotation_days: int = setting(30, "Days between rotations of the master password, 1 to 1000.")
    rotation_depends_on: tuple[str, ...] = setting(
        (),
        "Logical IDs the rotation schedule waits for besides the database: the data subnets' NAT routes, "
        "through which the rotation function reaches the Secrets Manager API.",
    )
    log_retention_days: int = setting(30, "Days the exported logs' groups keep events (a CloudWatch Logs value).")
    named_after: str = setting(
        "",
        "The deployed stack name its Name tags and descriptions carry; empty: its own (AWS::StackName). "
        "A stack split off another keeps the other's, so no create-only value changes.",
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
    log_groups: dict[str, logs.LogGroup]
    rotation_group: ec2.SecurityGroup
    rotation: secretsmanager.RotationSchedule

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
        if not ROTATION_DAYS_MIN <= inputs.rotation_days <= ROTATION_DAYS_MAX:
            raise self.invalid(
                "rotation_days", f"is {inputs.rotation_days}; use {ROTATION_DAYS_MIN} to {ROTATION_DAYS_MAX}"
            )
        if inputs.log_retention_days not in LOG_RETENTION_DAYS:
            raise self.invalid(
                "log_retention_days",
                f"is {inputs.log_retention_days}; use one of {', '.join(map(str, LOG_RETENTION_DAYS))}",
            )

    def build(self) -> None:
        """Resources in dependency order; each piece is its own method so a subclass can change one."""
        engine_version = self.engine_version()
        self.secret = self.master_secret()
        parameter_group = self.parameter_group()
        subnet_group = self.subnet_group()
        self.cluster = self.db_cluster(engine_version, parameter_group, subnet_group)
        self.attachment = self.secret_attachment()
        self.monitoring_role = self.monitoring()
        self.log_groups = self.log_groups_of_exports()
        self.instances = self.db_instances()
        self.rotation = self.secret_rotation()
        self.accept_findings()

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
            "Description": stack_named(
                "Master credentials of the ${StackName} Aurora MySQL cluster", self.inputs.named_after
            ),
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
                Description=stack_named(
                    "Aurora MySQL 3 parameters of ${StackName}: TLS required", self.inputs.named_after
                ),
                Family=PARAMETER_GROUP_FAMILY,
                Parameters=dict(sorted(parameters.items())),
            )
        )

    def subnet_group(self) -> rds.DBSubnetGroup:
        """The data subnets the instances may run in."""
        return self.add(
            rds.DBSubnetGroup(
                self.lid("DbSubnetGroup"),
                DBSubnetGroupDescription=stack_named("Private data subnets of ${StackName}", self.inputs.named_after),
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

    def log_groups_of_exports(self) -> dict[str, logs.LogGroup]:
        """A log group for each exported log, under the name RDS publishes it to; stateful.

        Left to RDS, these groups are created on the first export, unencrypted, kept forever
        and left behind when the stack is deleted. Made here, they are encrypted with the
        stack's key (its policy lets CloudWatch Logs use it for any ``log-group:*`` of this
        account and region, so ``/aws/rds/cluster/…`` is covered; see ``cfnbuild.build.grants.key_policy``),
        retained ``log_retention_days`` and kept on delete.

        The race with RDS: the names need the cluster's identifier, so the groups come after
        the cluster; the instances wait for the groups (:meth:`db_instances`). An Aurora
        cluster without a DB instance runs no database engine — the instances are what run
        it and the cluster is only the storage volume
        (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Overview.html) —
        so there is nothing to export before the first instance exists, and RDS finds the
        groups already there. The cluster keeps its generated identifier: setting
        ``DBClusterIdentifier`` would replace it.

        A stack deployed before the groups were in the template: RDS has already made them,
        so the update fails on the first one ("… already exists") and rolls back, leaving the
        groups and their events as they were. Either import the existing groups into the stack
        (a change set of type IMPORT with these logical IDs and names, then deploy) to keep
        their events, or delete them (``aws logs delete-log-group --log-group-name
        /aws/rds/cluster/<cluster>/<log>``) and deploy again, losing what they hold
        (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/resource-import.html).
        """
        inputs = self.inputs
        groups: dict[str, logs.LogGroup] = {}
        for log in sorted(set(inputs.log_exports)):
            props: dict[str, object] = {
                "LogGroupName": Sub(CLUSTER_LOG_GROUP % log, Cluster=Ref(self.cluster)),
                "RetentionInDays": inputs.log_retention_days,
            }
            if inputs.kms_key_arn is not None:
                props["KmsKeyId"] = inputs.kms_key_arn
            group = self.add(logs.LogGroup(self.lid("Db", log.capitalize(), "LogGroup"), **props), stateful=True)
            if inputs.kms_key_arn is None:
                self.skip_check(
                    group,
                    "CKV_AWS_158",
                    "kms_key_arn was not given: CloudWatch Logs encrypts the group with its own key by the "
                    "stack author's choice; pass kms_key_arn for a customer managed key",
                )
            groups[log] = group
        return groups

    def db_instances(self) -> list[rds.DBInstance]:
        """The writer, then the readers; private, monitored, minor versions applied automatically."""
        # The writer is the first instance, so the first engine to run and export: it waits for
        # the log groups (see log_groups_of_exports), and the readers wait for it.
        writer = self.db_instance(
            "DbWriter", promotion_tier=0, depends_on=[group.title for group in self.log_groups.values()]
        )
        readers = [
            # Only the cluster is referenced, so CloudFormation would create all instances at
            # once and any could become the writer; the readers wait for the writer instead.
            self.db_instance(f"DbReader{index}", promotion_tier=1, depends_on=[writer.title])
            for index in range(1, self.inputs.reader_count + 1)
        ]
        return [writer, *readers]

    def db_instance(self, name: str, *, promotion_tier: int, depends_on: Sequence[str] = ()) -> rds.DBInstance:
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
        if depends_on:
            props["DependsOn"] = list(depends_on)
        # An Aurora instance cannot be snapshotted on its own (the cluster is); saying Delete
        # outright is what CloudFormation does by default for a cluster member.
        return self.add(rds.DBInstance(self.lid(name), DeletionPolicy="Delete", UpdateReplacePolicy="Delete", **props))

    def accept_findings(self) -> None:
        """Answer the rule packs' database findings that are choices, each where it applies, with its document.

        Fixed elsewhere, not accepted: storage encryption, IAM authentication, TLS, the exported
        logs, enhanced monitoring, private instances, backups kept ``backup_retention_days``.
        What is left is what this blueprint chooses not to do (see :meth:`accept_cluster_findings`
        and :meth:`accept_instance_findings`); each acceptance is written only where its
        finding applies and its reason is true: the general log only while it is not exported
        and the audit log is, deletion protection only while it is off.
        """
        self.accept_cluster_findings()
        self.accept_instance_findings()

    def accept_cluster_findings(self) -> None:
        """The cluster: the general log, deletion protection, the default port and backtrack."""
        inputs, cluster = self.inputs, self.cluster
        # The general log's answer is the audit log: without that export, both findings stay open.
        if "general" not in inputs.log_exports and "audit" in inputs.log_exports:
            self.accept_finding(
                cluster,
                [f"{pack}-RDSLoggingEnabled" for pack in (HIPAA, NIST, PCI)],
                "The general log is not exported: it records every SQL statement the engine runs, so it "
                "would copy the data of every INSERT and UPDATE into CloudWatch Logs and grow with the "
                f"traffic (AWS: it 'can grow very large', {LOGGING_DOC}). Who connected and every change "
                "to schema and privileges are in the exported audit log (server_audit_events "
                f"{LOG_PARAMETERS['audit']['server_audit_events']}, {AUDIT_DOC}), with the error and slow query "
                "logs; add 'general' to log_exports to export it.",
                applies_to=["LogExport::general"],
            )
        if not inputs.deletion_protection:
            self.accept_finding(
                cluster,
                [f"{AWS_SOLUTIONS}-RDS10", *(f"{pack}-RDSInstanceDeletionProtectionEnabled" for pack in (HIPAA, NIST))],
                "Deletion protection is off because this environment's config sets "
                "database.deletion_protection = false, so that the environment can be torn down; set it "
                f"to true (prod's config does) to turn it on ({DELETE_DOC}). Deleting or replacing the "
                "cluster still keeps its data: its DeletionPolicy and UpdateReplacePolicy are Snapshot, "
                f"so CloudFormation takes a final snapshot first ({DELETION_POLICY_DOC}), and cfnbuild "
                "deploy refuses either change unless it is named with --allow-replace.",
            )
        self.accept_finding(
            cluster,
            [f"{AWS_SOLUTIONS}-RDS11"],
            f"The cluster listens on MySQL's port {PORT}: no instance is publicly accessible, they run in the "
            "private data subnets, and the database security group admits that port only from the groups "
            "let in (in the web app: the app instances and the rotation function). Security groups are what AWS "
            f"documents for controlling access to a DB cluster ({SECURITY_GROUPS_DOC}); another port "
            "would hide nothing from a client that may connect, and nothing else can reach it.",
        )
        self.accept_finding(
            cluster,
            [f"{AWS_SOLUTIONS}-RDS14"],
            "Backtrack is off. Aurora MySQL 3 supports it, but it rewinds the whole cluster in place (every "
            "write after the chosen time is lost, in every table) and AWS says it 'is not a replacement for "
            f"backing up' ({BACKTRACK_DOC}); it is billed per change record kept, and an existing cluster "
            f"gains it only through a restore into a new cluster ({BACKTRACK_ON_CREATE_DOC}), a replacement "
            "of this stateful resource. Recovery is point-in-time restore from Aurora's continuous automated "
            f"backups, kept {inputs.backup_retention_days} day(s) (backup_retention_days, {BACKUPS_DOC}).",
        )

    def accept_instance_findings(self) -> None:
        """Each instance: no AWS Backup plan, because the data it serves is the cluster's, which is backed up."""
        days = self.inputs.backup_retention_days
        for instance in self.instances:
            self.accept_finding(
                instance,
                [f"{pack}-RDSInBackupPlan" for pack in (HIPAA, NIST)],
                "An Aurora DB instance holds no data of its own: it runs the engine over the cluster volume "
                f"({OVERVIEW_DOC}). That volume is backed up continuously by Aurora's automated backups, "
                f"restorable to any point in the last {days} day(s) (backup_retention_days, {BACKUPS_DOC}), "
                "and the cluster's DeletionPolicy and UpdateReplacePolicy Snapshot keep a final snapshot on "
                "delete and on replacement; an AWS Backup plan would copy the same volume again.",
            )

    def secret_rotation(self) -> secretsmanager.RotationSchedule:
        """The master secret rotates every ``rotation_days`` through Secrets Manager's hosted function.

        ``HostedRotationLambda`` with ``MySQLSingleUser``: the transform makes the function (in
        a nested stack) in the data subnets with its own security group, which may reach the
        database and HTTPS (the Secrets Manager API, through the data subnets' NAT routes). New
        passwords leave out the same characters as the generated one, and the function may use
        the secret's key. The schedule waits for the secret's attachment (rotation needs the
        connection information it adds to the secret's JSON,
        https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-secretsmanager-secrettargetattachment.html,
        and the RotationSchedule reference asks for this ``DependsOn``), the
        writer (the first rotation runs when the schedule is made), the rule that lets the
        function in, and the NAT routes (``rotation_depends_on``).
        AWS docs: https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_lambda.html
        """
        inputs = self.inputs
        self.stack.template.set_transform(ROTATION_TRANSFORM)
        self.rotation_group = self.rotation_security_group()
        hosted: dict[str, object] = {
            "RotationType": ROTATION_TYPE,
            "VpcSubnetIds": Join(",", list(inputs.subnet_ids)),
            "VpcSecurityGroupIds": GetAtt(self.rotation_group, "GroupId"),
            "ExcludeCharacters": PASSWORD_EXCLUDED_CHARACTERS,
        }
        if inputs.kms_key_arn is not None:
            hosted["KmsKeyArn"] = inputs.kms_key_arn
        return self.add(
            secretsmanager.RotationSchedule(
                self.lid("DbSecretRotation"),
                SecretId=Ref(self.secret),
                HostedRotationLambda=secretsmanager.HostedRotationLambda(**hosted),
                RotationRules=secretsmanager.RotationRules(AutomaticallyAfterDays=inputs.rotation_days),
            ),
            depends_on=[
                self.attachment.title,
                self.instances[0].title,
                self.lid("DbFromRotationIngress"),
                *inputs.rotation_depends_on,
            ],
        )

    def rotation_security_group(self) -> ec2.SecurityGroup:
        """The rotation function's group: out to the database and to HTTPS; the database lets it in.

        As in :mod:`blueprints.security`, the rules between groups are separate resources, so
        no group references another.
        """
        inputs = self.inputs
        group = self.add(
            ec2.SecurityGroup(
                self.lid("DbRotationSecurityGroup"),
                GroupDescription="Secret rotation function: the database and the Secrets Manager API",
                VpcId=inputs.vpc_id,
                SecurityGroupEgress=[
                    ec2.SecurityGroupRule(
                        IpProtocol="tcp",
                        FromPort=HTTPS,
                        ToPort=HTTPS,
                        CidrIp=ANYWHERE,
                        Description="HTTPS to the Secrets Manager API through NAT",
                    )
                ],
                Tags=Tags(Name=stack_named("${StackName}-dbrotation", self.inputs.named_after)),
            )
        )
        group_id = GetAtt(group, "GroupId")
        self.add(
            ec2.SecurityGroupEgress(
                self.lid("DbRotationToDbEgress"),
                GroupId=group_id,
                IpProtocol="tcp",
                FromPort=PORT,
                ToPort=PORT,
                DestinationSecurityGroupId=inputs.security_group_id,
                Description="To the database",
            )
        )
        self.add(
            ec2.SecurityGroupIngress(
                self.lid("DbFromRotationIngress"),
                GroupId=inputs.security_group_id,
                IpProtocol="tcp",
                FromPort=PORT,
                ToPort=PORT,
                SourceSecurityGroupId=group_id,
                Description="From the secret rotation function",
            )
        )
        return group
