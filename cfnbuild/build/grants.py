"""IAM grants: the only way a template in this project gets a permission.

Each helper adds exactly-scoped statements, over awacs actions, on the ARN of a resource the
stack created, built with ``${AWS::Partition}``; the named action lists say what each grant
means, like the CDK's ``BUCKET_READ_ACTIONS``. ``*`` is used only for actions that support no
resource-level permission (:data:`NO_RESOURCE_LEVEL_ACTIONS`), and then under a condition where
one exists. Every statement's ``Sid`` starts with ``Grant``, so a test can prove that no policy
in ``output/`` was written by hand.

Example::

    role = ServiceRole(blueprint, "App", services=["ec2.amazonaws.com"])
    role.grant_bucket_read(assets_bucket)
    role.grant_secret_read(db_secret)
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import awacs.autoscaling
import awacs.cloudformation
import awacs.ec2
import awacs.kms
import awacs.logs
import awacs.s3
import awacs.secretsmanager
import awacs.sns
import awacs.ssm
import awacs.sts
from awacs import cloudwatch
from awacs.aws import (
    Action,
    Allow,
    ArnLike,
    Bool,
    Condition,
    Deny,
    Policy,
    PolicyDocument,
    Principal,
    Statement,
    StringEquals,
)
from troposphere import AWSHelperFn, AWSObject, GetAtt, Parameter, Ref, Sub, encode_to_dict, iam

from cfnbuild.build.managed_policies import policy_path
from cfnbuild.build.naming import logical_id, partition_arn

if TYPE_CHECKING:
    from cfnbuild.build.blueprint import Blueprint

SID_PREFIX = "Grant"
POLICY_VERSION = "2012-10-17"

BUCKET_LIST_ACTIONS: tuple[Action, ...] = (awacs.s3.ListBucket, awacs.s3.GetBucketLocation)
OBJECT_READ_ACTIONS: tuple[Action, ...] = (awacs.s3.GetObject, awacs.s3.GetObjectVersion)
OBJECT_WRITE_ACTIONS: tuple[Action, ...] = (
    awacs.s3.PutObject,
    awacs.s3.AbortMultipartUpload,
    awacs.s3.DeleteObject,
)
SECRET_READ_ACTIONS: tuple[Action, ...] = (
    awacs.secretsmanager.GetSecretValue,
    awacs.secretsmanager.DescribeSecret,
)
LOG_WRITE_ACTIONS: tuple[Action, ...] = (
    awacs.logs.CreateLogStream,
    awacs.logs.PutLogEvents,
    awacs.logs.DescribeLogStreams,
)
KMS_DECRYPT_ACTIONS: tuple[Action, ...] = (awacs.kms.Decrypt,)
LIFECYCLE_ACTION_COMPLETE_ACTIONS: tuple[Action, ...] = (awacs.autoscaling.CompleteLifecycleAction,)
SECURITY_GROUP_REVOKE_ACTIONS: tuple[Action, ...] = (
    awacs.ec2.RevokeSecurityGroupEgress,
    awacs.ec2.RevokeSecurityGroupIngress,
)
AUTOMATION_START_ACTIONS: tuple[Action, ...] = (awacs.ssm.StartAutomationExecution,)
AUTOMATION_READ_ACTIONS: tuple[Action, ...] = (awacs.ssm.GetAutomationExecution,)
KMS_ENCRYPT_ACTIONS: tuple[Action, ...] = (
    awacs.kms.Encrypt,
    awacs.kms.GenerateDataKey,
    awacs.kms.Decrypt,
)

# Actions that AWS documents as supporting no resource-level permission ("Resource types: none"
# in the Service Authorization Reference); only these may be granted on "*".
NO_RESOURCE_LEVEL_ACTIONS = frozenset(
    {
        "cloudwatch:PutMetricData",
        "ec2:DescribeInstances",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeTags",
        "ec2:DescribeVolumes",
        "logs:DescribeLogGroups",
    }
)


def _json(action: Action) -> str:
    return str(action.JSONrepr())


class Grants:
    """The statements granted to one principal; rendered as one inline policy document."""

    def __init__(self) -> None:
        self.statements: list[Statement] = []

    def _allow(
        self,
        verb: str,
        target: AWSObject | str,
        actions: Sequence[Action],
        resources: list[Any],
        condition: Condition | None = None,
    ) -> None:
        name = target if isinstance(target, str) else target.title
        sid = SID_PREFIX + logical_id(verb, name)
        if any(st.Sid == sid for st in self.statements):
            return  # the same grant twice is one grant
        if resources == ["*"]:
            unsupported = sorted(_json(a) for a in actions if _json(a) not in NO_RESOURCE_LEVEL_ACTIONS)
            if unsupported:
                raise ValueError(
                    f"{', '.join(unsupported)} support resource-level permissions; grant them on an ARN, not '*'"
                )
        kwargs: dict[str, Any] = {
            "Sid": sid,
            "Effect": Allow,
            "Action": list(actions),
            "Resource": resources,
        }
        if condition is not None:
            kwargs["Condition"] = condition
        self.statements.append(Statement(**kwargs))

    def grant_bucket_read(self, bucket: AWSObject, *, prefix: str = "", kms_key: AWSObject | None = None) -> None:
        """List the bucket and read the object versions under ``prefix`` (all by default)."""
        self._allow("ListBucket", bucket, BUCKET_LIST_ACTIONS, [bucket_arn(bucket)])
        self._allow("ReadObjects", bucket, OBJECT_READ_ACTIONS, [bucket_arn(bucket, _objects(prefix))])
        if kms_key is not None:
            self.grant_key_decrypt(kms_key)

    def grant_bucket_read_write(self, bucket: AWSObject, *, prefix: str = "", kms_key: AWSObject | None = None) -> None:
        """Read as :meth:`grant_bucket_read`, and put and delete objects under ``prefix`` (never the bucket)."""
        self.grant_bucket_read(bucket, prefix=prefix)
        self._allow("WriteObjects", bucket, OBJECT_WRITE_ACTIONS, [bucket_arn(bucket, _objects(prefix))])
        if kms_key is not None:
            self._allow("EncryptWith", kms_key, KMS_ENCRYPT_ACTIONS, [GetAtt(kms_key, "Arn")])

    def grant_secret_read(self, secret: AWSObject, *, kms_key: AWSObject | None = None) -> None:
        """Read the value of one Secrets Manager secret (``Ref`` of a secret is its ARN)."""
        self._allow("ReadSecret", secret, SECRET_READ_ACTIONS, [Ref(secret)])
        if kms_key is not None:
            self.grant_key_decrypt(kms_key)

    def grant_log_group_write(self, log_group: AWSObject) -> None:
        """Create streams in one log group and put events into them."""
        self._allow("WriteLogs", log_group, LOG_WRITE_ACTIONS, [log_group_arn(log_group)])

    def grant_key_decrypt(self, key: AWSObject) -> None:
        """Decrypt with one KMS key."""
        self._allow("DecryptWith", key, KMS_DECRYPT_ACTIONS, [GetAtt(key, "Arn")])

    def grant_metrics_put(self, namespace: str) -> None:
        """Put CloudWatch metrics, only into ``namespace`` (the action has no resource-level scope)."""
        condition = Condition(StringEquals("cloudwatch:namespace", namespace))
        self._allow("PutMetrics", namespace, [cloudwatch.PutMetricData], ["*"], condition)

    def grant_security_group_revoke(self, name: str, group_id: AWSHelperFn) -> None:
        """Remove inbound and outbound rules of one security group (``group_id``: its ID; ``name`` labels the grant)."""
        arn = partition_arn("ec2", "security-group/${GroupId}", GroupId=group_id)
        self._allow("RevokeRules", name, SECURITY_GROUP_REVOKE_ACTIONS, [arn])

    def grant_automation_run(self, document: str) -> None:
        """Start one Automation runbook (any version) and read its executions.

        An execution's ID exists only once it starts, so executions are granted as
        ``automation-execution/*`` of this account and region (Service Authorization Reference,
        AWS Systems Manager: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssystemsmanager.html).
        """
        definition = partition_arn("ssm", f"automation-definition/{document}:*")
        self._allow("StartAutomation", document, AUTOMATION_START_ACTIONS, [definition])
        executions = partition_arn("ssm", "automation-execution/*")
        self._allow("ReadAutomation", document, AUTOMATION_READ_ACTIONS, [executions])

    def grant_unscoped(self, verb: str, actions: Sequence[Action]) -> None:
        """Grant actions that support no resource-level permission (e.g. ``ec2:DescribeTags``) on ``*``.

        Refused for any action outside :data:`NO_RESOURCE_LEVEL_ACTIONS`.
        """
        self._allow(verb, "Any", actions, ["*"])

    def document(self) -> PolicyDocument:
        """The policy document of every statement granted so far."""
        return PolicyDocument(Version=POLICY_VERSION, Statement=list(self.statements))


def _objects(prefix: str) -> str:
    if prefix.startswith("/") or "*" in prefix:
        raise ValueError(f"prefix {prefix!r}: give a plain key prefix like 'releases/' (no leading '/', no '*')")
    return prefix + "*"


def bucket_arn(bucket: AWSObject | Parameter, objects: str | None = None) -> GetAtt | Sub:
    """The ARN of a bucket (a created one's ``Arn``), or of ``objects`` (a key pattern) inside it.

    Objects are written ``${Bucket.Arn}/pattern``: the same ARN for AWS as one assembled from
    the partition and the bucket's name, and the form that security rule packs can follow back
    to the bucket. A parameter that names a bucket made elsewhere gives the ARN assembled from
    the partition and its value.
    """
    if getattr(bucket, "resource_type", None) != "AWS::S3::Bucket":  # a parameter naming a bucket made elsewhere
        resource = "${Bucket}" if objects is None else "${Bucket}/" + objects
        return partition_arn("s3", resource, region=False, account=False, Bucket=Ref(bucket))
    if objects is None:
        return GetAtt(bucket, "Arn")
    return Sub(f"${{{bucket.title}.Arn}}/{objects}")


def log_group_arn(log_group: AWSObject) -> Sub:
    """The ARN of a created log group's streams (``...:log-group:NAME:*``)."""
    return partition_arn("logs", "log-group:${LogGroup}:*", LogGroup=Ref(log_group))


def aws_managed_policy_arn(name: str) -> Sub:
    """The ARN of an AWS managed policy, e.g. ``service-role/AmazonRDSEnhancedMonitoringRole``.

    The name (and its path) is checked against IAM's list (:mod:`cfnbuild.build.managed_policies`):
    a policy IAM does not have fails the build with a did-you-mean, not the deploy.
    """
    return Sub("arn:${AWS::Partition}:iam::aws:policy/" + policy_path(name))


def service_trust_policy(services: Sequence[str], *, source_arn: AWSHelperFn | str | None = None) -> Policy:
    """A trust policy that lets ``services`` (``ec2.amazonaws.com``, ...) assume the role.

    With ``source_arn`` (the resources of this account that the service acts for, e.g.
    ``arn:…:ec2:…:vpc-flow-log/*``) the service may assume it only on behalf of this account's
    resources: ``aws:SourceAccount`` and ``aws:SourceArn``, as AWS recommends against the
    confused deputy ("The confused deputy problem", IAM User Guide).
    """
    condition = None
    if source_arn is not None:
        condition = Condition(
            [StringEquals("aws:SourceAccount", Ref("AWS::AccountId")), ArnLike("aws:SourceArn", source_arn)]
        )
    statement = Statement(
        Sid=SID_PREFIX + "AssumeRole",
        Effect=Allow,
        Principal=Principal("Service", sorted(services)),
        Action=[awacs.sts.AssumeRole],
    )
    if condition is not None:
        statement.Condition = condition
    return PolicyDocument(Version=POLICY_VERSION, Statement=[statement])


class ServiceRole(Grants):
    """An IAM role assumed by AWS services, whose permissions come only from grants.

    The statements are attached as one inline policy when the stack renders, so blueprints made
    later can still grant to the role; a role granted nothing gets no policy.
    """

    def __init__(
        self,
        blueprint: Blueprint[Any],
        name: str,
        *,
        services: Sequence[str],
        managed_policies: Sequence[str] = (),
        managed_policy_reason: str = "",
        source_arn: AWSHelperFn | str | None = None,
    ) -> None:
        super().__init__()
        props: dict[str, Any] = {"AssumeRolePolicyDocument": service_trust_policy(services, source_arn=source_arn)}
        if managed_policies:
            if len(managed_policy_reason.strip()) < 20:
                raise ValueError(
                    f"role {name!r}: say why it needs the AWS managed policies {list(managed_policies)} "
                    "(managed_policy_reason=...); rule packs flag every AWS managed policy on a role"
                )
            props["ManagedPolicyArns"] = [aws_managed_policy_arn(p) for p in managed_policies]
        self.blueprint = blueprint
        self.role = blueprint.add(iam.Role(blueprint.lid(name, "Role"), **props))
        if managed_policies:
            # cdk-nag names each finding after the policy ARN it flags (AwsSolutions-IAM4[Policy::...]).
            blueprint.accept_finding(
                self.role,
                ["AwsSolutions-IAM4"],
                managed_policy_reason,
                applies_to=[f"Policy::arn:<AWS::Partition>:iam::aws:policy/{p}" for p in managed_policies],
            )
        blueprint.stack.before_render(self._attach_policy)

    @property
    def arn(self) -> GetAtt:
        """The role's ARN."""
        return GetAtt(self.role, "Arn")

    @property
    def ref(self) -> Ref:
        """The role's name."""
        return Ref(self.role)

    def _attach_policy(self) -> None:
        if not self.statements:
            return
        self.role.Policies = [iam.Policy(PolicyName="grants", PolicyDocument=self.document())]
        self.blueprint.accept_finding(self.role, INLINE_POLICY_RULES, INLINE_POLICY_REASON)
        wildcards = [
            f"{statement.Sid} on {pattern}"
            for statement in self.statements
            for pattern in (re.sub(r"\$\{([^}]+)\}", r"<\1>", _pattern(r)) for r in statement.Resource)
            if "*" in pattern
        ]
        if wildcards:
            self.blueprint.accept_finding(
                self.role,
                ["AwsSolutions-IAM5"],
                "Each wildcard is the narrowest form its grant can take (objects under one prefix of the "
                "stack's bucket, the streams of one of the stack's log groups, one group found by its "
                "CloudFormation tags), and '*' stands only for actions without resource-level permissions, "
                "which cfnbuild's grant helpers refuse for any other action: " + "; ".join(wildcards),
            )


# Rule packs that flag any inline policy. The grants of a role are its own: one inline policy,
# created, changed and deleted with the role, and never attachable to another identity - AWS
# recommends inline policies for exactly that one-to-one relationship.
INLINE_POLICY_RULES = (
    "HIPAA.Security-IAMNoInlinePolicy",
    "NIST.800.53.R5-IAMNoInlinePolicy",
    "PCI.DSS.321-IAMNoInlinePolicy",
)
INLINE_POLICY_REASON = (
    "The role's grants are its own: one inline policy created, changed and deleted with the role and "
    "never attachable to another identity, the one-to-one relationship for which AWS recommends inline "
    "policies (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_managed-vs-inline.html)."
)


def _pattern(resource: Any) -> str:
    """A resource of a statement as a reader sees it: the ARN pattern of a Sub, ``X.Arn`` of a GetAtt."""
    if isinstance(resource, str):
        return resource
    rendered = resource.to_dict() if hasattr(resource, "to_dict") else resource
    if isinstance(rendered, dict) and "Fn::Sub" in rendered:
        sub = rendered["Fn::Sub"]
        return sub if isinstance(sub, str) else str(sub[0])
    if isinstance(rendered, dict) and "Fn::GetAtt" in rendered:
        return ".".join(rendered["Fn::GetAtt"])
    if isinstance(rendered, dict) and "Fn::If" in rendered:
        return " or ".join(_pattern(branch) for branch in rendered["Fn::If"][1:])
    return json.dumps(rendered, sort_keys=True)


KEY_ADMIN_ACTIONS: tuple[Action, ...] = (awacs.kms.Action("*"),)
KEY_SERVICE_ACTIONS: tuple[Action, ...] = (
    awacs.kms.Encrypt,
    awacs.kms.Decrypt,
    awacs.kms.ReEncryptFrom,
    awacs.kms.ReEncryptTo,
    awacs.kms.GenerateDataKey,
    awacs.kms.GenerateDataKeyWithoutPlaintext,
    awacs.kms.DescribeKey,
)


def key_policy(*, logs: bool = False, services: Sequence[str] = ()) -> PolicyDocument:
    """The key policy of a customer managed KMS key.

    The account administers the key and delegates its use to IAM (the default policy AWS
    documents, so grants on roles work). ``logs`` lets CloudWatch Logs in this region encrypt log
    groups of this account with it, bound by the encryption context; ``services`` (e.g.
    ``sns.amazonaws.com``, ``cloudwatch.amazonaws.com``) may use it for their own encryption,
    only through this account. In a key policy, ``Resource: "*"`` means this key.

    AWS Budgets is the exception: it gets the statement its guide documents for an encrypted
    topic, ``kms:GenerateDataKey*`` and ``kms:Decrypt`` with no condition ("Protecting your Amazon
    SNS budget alerts data with SSE and AWS KMS",
    https://docs.aws.amazon.com/cost-management/latest/userguide/budgets-sns-policy.html; the SNS
    guide's statement for AWS services publishing to encrypted topics has none either,
    https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html). Those calls are made for
    Budgets while SNS encrypts what it publishes, and AWS does not document that they carry
    ``aws:SourceAccount``; a condition they fail would drop every budget alert without a trace.
    What keeps other accounts' budgets out is the topic policy, where Budgets' guide does condition
    ``SNS:Publish`` on ``aws:SourceAccount`` (and the key encrypts only topics of this account).
    """
    statements = [
        Statement(
            Sid=SID_PREFIX + "AccountAdministersKey",
            Effect=Allow,
            Principal=Principal("AWS", Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")),
            Action=list(KEY_ADMIN_ACTIONS),
            Resource=["*"],
        )
    ]
    if logs:
        statements.append(
            Statement(
                Sid=SID_PREFIX + "CloudWatchLogsEncrypts",
                Effect=Allow,
                Principal=Principal("Service", Sub("logs.${AWS::Region}.amazonaws.com")),
                Action=list(KEY_SERVICE_ACTIONS),
                Resource=["*"],
                Condition=Condition(
                    ArnLike(
                        "kms:EncryptionContext:aws:logs:arn",
                        partition_arn("logs", "log-group:*"),
                    )
                ),
            )
        )
    budgets_service = "budgets.amazonaws.com"
    conditioned = sorted(set(services) - {budgets_service})
    if conditioned:
        statements.append(
            Statement(
                Sid=SID_PREFIX + "ServicesEncrypt",
                Effect=Allow,
                Principal=Principal("Service", conditioned),
                Action=list(KEY_SERVICE_ACTIONS),
                Resource=["*"],
                Condition=Condition(StringEquals("aws:SourceAccount", Ref("AWS::AccountId"))),
            )
        )
    if budgets_service in services:
        statements.append(
            Statement(
                Sid=SID_PREFIX + "BudgetsEncryptsTopicMessages",
                Effect=Allow,
                Principal=Principal("Service", budgets_service),
                Action=[awacs.kms.Action("GenerateDataKey*"), awacs.kms.Decrypt],
                Resource=["*"],
            )
        )
    return PolicyDocument(Version=POLICY_VERSION, Statement=statements)


class ResourcePolicy:
    """The statements of a resource policy (a bucket's or a topic's), built only by these helpers.

    Attach with ``s3.BucketPolicy(PolicyDocument=policy.document())`` or
    ``sns.TopicPolicy(PolicyDocument=policy.document())``.
    """

    def __init__(self) -> None:
        self.statements: list[Statement] = []

    def _add(self, sid: str, **kwargs: Any) -> None:
        if any(st.Sid == SID_PREFIX + sid for st in self.statements):
            return
        self.statements.append(Statement(Sid=SID_PREFIX + sid, **kwargs))

    def deny_insecure_transport(self, bucket: AWSObject) -> None:
        """Deny every request to the bucket and its objects that does not use TLS."""
        self._add(
            logical_id("DenyInsecureTransport", bucket.title),
            Effect=Deny,
            Principal=Principal("*"),
            Action=[awacs.s3.Action("*")],
            Resource=[bucket_arn(bucket), bucket_arn(bucket, "*")],
            Condition=Condition(Bool("aws:SecureTransport", False)),
        )

    def allow_service_put_objects(self, bucket: AWSObject, service: str, *, prefix: str = "") -> None:
        """Let AWS ``service`` (``logging.s3.amazonaws.com``, say) put objects under ``prefix``; this account only."""
        self._add(
            logical_id(service.split(".", maxsplit=1)[0], "PutObjects", bucket.title),
            Effect=Allow,
            Principal=Principal("Service", service),
            Action=[awacs.s3.PutObject],
            Resource=[bucket_arn(bucket, _objects(prefix))],
            Condition=Condition(StringEquals("aws:SourceAccount", Ref("AWS::AccountId"))),
        )

    def allow_account_put_objects(
        self, bucket: AWSObject, account: AWSHelperFn, name: str, *, prefix: str = ""
    ) -> None:
        """Let an AWS-owned account (looked up, never literal: e.g. a region's ELB log account) put objects."""
        self._add(
            logical_id(name, "PutObjects", bucket.title),
            Effect=Allow,
            Principal=Principal("AWS", account),
            Action=[awacs.s3.PutObject],
            Resource=[bucket_arn(bucket, _objects(prefix))],
        )

    def allow_services_publish(self, topic: AWSObject, services: Sequence[str]) -> None:
        """Let AWS ``services`` (e.g. ``cloudwatch.amazonaws.com``) publish to the topic, for this account only."""
        self._add(
            logical_id("ServicesPublish", topic.title),
            Effect=Allow,
            Principal=Principal("Service", sorted(services)),
            Action=[awacs.sns.Publish],
            Resource=[Ref(topic)],
            Condition=Condition(StringEquals("aws:SourceAccount", Ref("AWS::AccountId"))),
        )

    def document(self) -> PolicyDocument:
        """The policy document of every statement added so far."""
        return PolicyDocument(Version=POLICY_VERSION, Statement=list(self.statements))

    def deny_insecure_publish(self, topic: AWSObject) -> None:
        """Deny publishing to the topic by anyone over a connection without TLS (AWS services use TLS)."""
        self._add(
            logical_id("DenyInsecurePublish", topic.title),
            Effect=Deny,
            Principal=Principal("*"),
            Action=[awacs.sns.Publish],
            Resource=[Ref(topic)],
            Condition=Condition(Bool("aws:SecureTransport", False)),
        )

    def allow_service_put_account_logs(self, bucket: AWSObject, service: str, *, prefix: str = "") -> None:
        """Let AWS ``service`` put log objects under ``<prefix>AWSLogs/<this account>/``, and nowhere else.

        For log delivery that AWS documents with the account in the key path instead of a source
        condition, e.g. Elastic Load Balancing access logs
        (``logdelivery.elasticloadbalancing.amazonaws.com``, which need not send
        ``aws:SourceAccount``): the account ID in the path is what limits delivery to this
        account's resources. ``prefix`` is empty or ends with ``/``.
        """
        if prefix and not prefix.endswith("/"):
            raise ValueError(f"prefix {prefix!r}: end it with '/' (log delivery adds 'AWSLogs/...' after it)")
        self._add(
            logical_id(service.split(".", maxsplit=1)[0], "PutAccountLogs", bucket.title),
            Effect=Allow,
            Principal=Principal("Service", service),
            Action=[awacs.s3.PutObject],
            Resource=[bucket_arn(bucket, _objects(prefix + "AWSLogs/${AWS::AccountId}/"))],
        )


def grant_bucket_prefixes(
    grants: Grants,
    bucket: AWSObject,
    *,
    read: Sequence[str] = (),
    read_write: Sequence[str] = (),
) -> None:
    """List ``bucket``; read objects under each ``read`` prefix; read, put and delete under each ``read_write`` one.

    Each prefix gets statements of its own whose Sids name it (``GrantReadObjectsAssetsReleases``),
    so one principal can hold different access to several prefixes of one bucket. (Calling
    :meth:`Grants.grant_bucket_read` twice with different prefixes keeps only the first: its Sids
    name only the bucket, and the same Sid twice is taken as the same grant.)
    """
    objects = {prefix: _objects(prefix) for prefix in (*read, *read_write)}  # refuses bad prefixes first
    targets = {prefix: logical_id(bucket.title, prefix) for prefix in objects}
    for prefix, target in targets.items():
        clash = [other for other, name in targets.items() if name == target and other != prefix]
        if clash:
            raise ValueError(f"prefixes {prefix!r} and {clash[0]!r} would share statement IDs; rename one")
    grants._allow("ListBucket", bucket, BUCKET_LIST_ACTIONS, [bucket_arn(bucket)])
    for prefix, pattern in objects.items():
        resources = [bucket_arn(bucket, pattern)]
        grants._allow("ReadObjects", targets[prefix], OBJECT_READ_ACTIONS, resources)
        if prefix in read_write:
            grants._allow("WriteObjects", targets[prefix], OBJECT_WRITE_ACTIONS, resources)


# --------------------------------------------------------------------------------------------
# Provisioning roles: a role that CloudFormation stacks are made with (a Service Catalog launch
# role). Everything below is added for that one kind of role.

PROVISIONING_HANDLERS = ("create", "read", "update", "delete")
MANAGED_POLICY_MAX_CHARS = 6_144  # IAM quota: one managed policy's JSON, whitespace not counted
MANAGED_POLICIES_PER_ROLE = 10  # IAM's default quota of managed policies attached to one role
_PROVISIONING_POLICY_BUDGET = 5_900  # leaves room for the document's envelope
STACK_OPERATION_ACTIONS: tuple[Action, ...] = (
    awacs.cloudformation.CreateStack,
    awacs.cloudformation.UpdateStack,
    awacs.cloudformation.DeleteStack,
    awacs.cloudformation.DescribeStacks,
    awacs.cloudformation.DescribeStackEvents,
    awacs.cloudformation.DescribeStackResource,
    awacs.cloudformation.DescribeStackResources,
    awacs.cloudformation.ListStackResources,
    awacs.cloudformation.GetTemplate,
    awacs.cloudformation.SetStackPolicy,
    awacs.cloudformation.CreateChangeSet,
    awacs.cloudformation.DescribeChangeSet,
    awacs.cloudformation.ExecuteChangeSet,
    awacs.cloudformation.DeleteChangeSet,
    awacs.cloudformation.ListChangeSets,
    awacs.cloudformation.TagResource,
    awacs.cloudformation.UntagResource,
)
# Both take a template rather than a stack (ValidateTemplate has no resource type at all, and
# GetTemplateSummary none when given a template URL), so they can only be granted on "*".
TEMPLATE_INSPECTION_ACTIONS: tuple[Action, ...] = (
    awacs.cloudformation.ValidateTemplate,
    awacs.cloudformation.GetTemplateSummary,
)
SSM_PARAMETER_READ_ACTIONS: tuple[Action, ...] = (awacs.ssm.GetParameters,)
# The tag Service Catalog puts on the copies of product templates in its own bucket.
SERVICE_CATALOG_TEMPLATE_TAG = "s3:ExistingObjectTag/servicecatalog:provisioning"


@dataclass(frozen=True)
class ProvisioningActions:
    """What creating, updating, deleting and reading some resource types takes, per their schemas."""

    actions: tuple[str, ...]  # sorted; none already covered by a wildcard action in the set
    unknown: tuple[str, ...]  # named by a schema but not an IAM action cfn-lint knows: not granted
    unused: tuple[str, ...] = ()  # named by a schema, not granted: the product does not need it (grant_provisioning)


@cache
def _iam_actions() -> dict[str, frozenset[str]]:
    """Every IAM action cfn-lint knows (its W3037 reference), lower case, by service prefix."""
    # cfn-lint is imported here, not with the module: loading a project (which imports its
    # blueprints, and so this module) should not cost every command the ~0.4 s cfn-lint takes.
    from cfnlint.data import AdditionalSpecs  # noqa: PLC0415
    from cfnlint.helpers import load_resource  # noqa: PLC0415

    services = load_resource(AdditionalSpecs, "Policies.json")
    return {prefix: frozenset(spec.get("Actions", {})) for prefix, spec in services.items()}


def _known_action(action: str) -> bool:
    service, _, name = action.lower().partition(":")
    known = _iam_actions().get(service)
    if not known or not name:
        return False
    if "*" in name or "?" in name:
        return any(fnmatch.fnmatchcase(candidate, name) for candidate in known)
    return name in known


def provisioning_actions(
    resource_types: Iterable[str], *, regions: Sequence[str] = ("us-east-1",), withheld: Iterable[str] = ()
) -> ProvisioningActions:
    """The IAM actions CloudFormation needs to create, update, delete and read ``resource_types``.

    Read from each type's resource schema as cfn-lint ships it (``handlers.<op>.permissions`` for
    the create, read, update and delete handlers), in every region of ``regions`` (a type's schema
    may differ by region). Actions are matched without regard to case, as IAM does; one that a
    wildcard action of the set already covers (``ec2:DescribeVpcs`` under ``ec2:Describe*``) is
    left out, which changes nothing the role may do. An action IAM does not know (a schema's
    slip such as ``s3:REST.PUT.OBJECT``; cfn-lint's own action list is the reference) is not
    granted but returned in ``unknown``. A type without a schema, or whose schema has no
    handlers, raises ``ValueError``: its permissions cannot be derived. ``withheld`` actions are
    left out before the wildcard check, so that a withheld wildcard (``ssm:Get*``) does not take
    the exact actions it covers (``ssm:GetCalendarState``) with it.
    """
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER  # noqa: PLC0415  (see _iam_actions)
    from cfnlint.schema.manager import ResourceNotFoundError  # noqa: PLC0415

    wanted: dict[str, str] = {}
    for resource_type in sorted(set(resource_types)):
        for region in regions:
            try:
                schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
            except ResourceNotFoundError:
                raise ValueError(
                    f"{resource_type} has no resource schema in {region}; cannot derive its permissions"
                ) from None
            handlers = schema.get("handlers") or {}
            if not any(op in handlers for op in PROVISIONING_HANDLERS):
                raise ValueError(f"the {resource_type} schema lists no handler permissions; cannot derive them")
            for op in PROVISIONING_HANDLERS:
                for action in (handlers.get(op) or {}).get("permissions", []):
                    wanted.setdefault(action.lower(), action)
    left_out = {action.lower() for action in withheld}
    known = {key: action for key, action in wanted.items() if _known_action(action) and key not in left_out}
    wildcards = [key for key in known if "*" in key or "?" in key]
    kept = [
        action
        for key, action in known.items()
        if not any(other != key and fnmatch.fnmatchcase(key, other) for other in wildcards)
    ]
    unknown = [action for key, action in wanted.items() if key not in known]
    return ProvisioningActions(tuple(sorted(kept, key=str.lower)), tuple(sorted(unknown, key=str.lower)))


def _allow_anywhere(
    grants: Grants, verb: str, target: str, actions: Sequence[Action], condition: Condition | None = None
) -> None:
    """A statement on ``"*"`` for actions that support resource-level permissions.

    Only the documented exceptions below use it; :meth:`Grants._allow` refuses this on purpose.
    """
    sid = SID_PREFIX + logical_id(verb, target)
    if any(st.Sid == sid for st in grants.statements):
        return
    kwargs: dict[str, Any] = {"Sid": sid, "Effect": Allow, "Action": list(actions), "Resource": ["*"]}
    if condition is not None:
        kwargs["Condition"] = condition
    grants.statements.append(Statement(**kwargs))


def _document_chars(document: PolicyDocument) -> int:
    return len(json.dumps(encode_to_dict(document), separators=(",", ":")))


@cache
def _action_resource_types() -> dict[str, dict[str, tuple[str, ...]]]:
    """For each IAM action cfn-lint knows (lower case, by service prefix), the resource types it can be scoped to.

    cfn-lint's copy of the Service Authorization Reference: an action with no resource type is
    one AWS documents as taking only ``"*"`` ("If there is no value for this column, you must
    specify all resources", https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html).
    """
    from cfnlint.data import AdditionalSpecs  # noqa: PLC0415  (see _iam_actions)
    from cfnlint.helpers import load_resource  # noqa: PLC0415

    services = load_resource(AdditionalSpecs, "Policies.json")
    return {
        prefix: {name: tuple(spec.get("Resources", [])) for name, spec in spec_.get("Actions", {}).items()}
        for prefix, spec_ in services.items()
    }


def action_resource_types(action: str) -> tuple[str, ...]:
    """The resource types ``action`` (``iam:PassRole``) can be scoped to; ``()`` when it takes only ``"*"``.

    Raises ``ValueError`` for an action IAM does not know.
    """
    service, _, name = action.lower().partition(":")
    known = _action_resource_types().get(service, {})
    if name not in known:
        raise ValueError(f"{action} is not an IAM action cfn-lint knows; cannot tell what it can be scoped to")
    return known[name]


@dataclass(frozen=True)
class LaunchScope:
    """What the stacks a provisioning role makes are called, and what their IAM roles and KMS keys need.

    ``stack_names`` is the name pattern of the launched stacks (Service Catalog's ``SC-*``): the
    roles, instance profiles and managed policies such a stack makes are named after it (a name
    CloudFormation generates, or one :func:`cfnbuild.build.naming.physical_name` builds, starts with the
    stack name), so IAM actions are granted on ``role/<path>SC-*`` and the like. ``paths`` are the
    IAM paths those use. ``passed_to`` are the services the product's roles trust, the only ones
    ``iam:PassRole`` may hand them to (``iam:PassedToService``); ``attached_policies`` the managed
    policy ARNs the product's roles attach, the only ones ``iam:AttachRolePolicy`` may attach
    (``iam:PolicyARN``). ``key_uses`` is, per service prefix (``rds``), the KMS actions the role
    needs on keys of this account for that service to encrypt with them on its behalf, granted
    only through that service (``kms:ViaService``). ``services`` are the IAM service prefixes the
    product uses: actions the schemas name for any other service are not granted (``None``: all).
    ``transforms`` are the AWS transforms (``SecretsManager-2024-09-16``) the product template
    declares, whose change sets the role may create (:func:`grant_transforms`), and
    ``applications`` the Serverless Application Repository applications their expansion deploys;
    ``withheld`` schema actions not granted although a type lists them (what an expansion's types
    would read that the product never gives them, such as function code in an S3 bucket).
    """

    stack_names: str = "SC-*"
    paths: tuple[str, ...] = ("/",)
    passed_to: tuple[Any, ...] = ()
    attached_policies: tuple[Any, ...] = ()
    key_uses: tuple[tuple[str, tuple[str, ...]], ...] = ()
    services: tuple[str, ...] | None = None
    transforms: tuple[str, ...] = ()
    applications: tuple[str, ...] = ()
    withheld: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9-]+\*", self.stack_names):
            raise ValueError(
                f"stack_names {self.stack_names!r}: give a name prefix and '*', like 'SC-*' (letters, digits, '-')"
            )
        for transform in self.transforms:
            if not re.fullmatch(r"[A-Za-z]+-\d{4}-\d{2}-\d{2}", transform):
                raise ValueError(
                    f"transform {transform!r}: give an AWS transform's name without 'AWS::', like "
                    "'SecretsManager-2024-09-16'"
                )
        for application in self.applications:
            if not re.fullmatch(r"[A-Za-z0-9-]+\*?", application) or application == "*":
                raise ValueError(
                    f"application {application!r}: give a Serverless Application Repository application name or "
                    "name prefix and '*', like 'SecretsManager*'"
                )
        for path in self.paths:
            if not re.fullmatch(r"/([A-Za-z0-9+=,.@_-]+/)*", path):
                raise ValueError(f"IAM path {path!r}: give a path like '/' or '/app/' (IAM's path syntax)")


@dataclass(frozen=True)
class Provisioning:
    """The managed policies :func:`grant_provisioning` made, and what they grant."""

    scoped: tuple[iam.ManagedPolicy, ...]  # every statement names ARNs (or a condition-bound service)
    unscoped: tuple[iam.ManagedPolicy, ...]  # statements on "*": the documented exception, checkov skips needed
    actions: ProvisioningActions


# IAM actions the launch role gets on the names of the launched stacks' resources, by the resource
# type the Service Authorization Reference scopes them to.
_IAM_NAMED_TYPES = ("role", "instance-profile", "policy")
# Service-linked roles live under this path, named by AWS, trusted only by their service and
# granted only what AWS defines (https://docs.aws.amazon.com/IAM/latest/UserGuide/using-service-linked-roles.html).
SERVICE_LINKED_ROLES = "role/aws-service-role/*"


def _iam_statements(grants: Grants, actions: Sequence[str], scope: LaunchScope) -> tuple[list[str], list[str]]:
    """Add the IAM statements, each on the launched stacks' names.

    Returns the actions that take only ``"*"``, and those the product does not need: ``iam:PassRole``
    when its roles trust no service, ``iam:AttachRolePolicy`` when they attach no managed policy.
    """
    by_type: dict[str, list[str]] = {}
    unscopable: list[str] = []
    for action in actions:
        name = action.split(":", 1)[1].lower()
        if name in ("passrole", "attachrolepolicy", "createservicelinkedrole"):
            by_type.setdefault(name, []).append(action)
            continue
        types = action_resource_types(action)
        kind = next((t for t in _IAM_NAMED_TYPES if t in types), None)
        if not types:
            unscopable.append(action)
        elif kind is None:
            raise ValueError(
                f"{action} acts on {', '.join(types)}; a launch role is granted IAM actions only on the roles, "
                "instance profiles and policies its stacks make"
            )
        else:
            by_type.setdefault(kind, []).append(action)

    def names(kind: str) -> list[Sub]:
        return [partition_arn("iam", f"{kind}{path}{scope.stack_names}", region=False) for path in scope.paths]

    target = scope.stack_names.replace("*", "")
    for kind in _IAM_NAMED_TYPES:
        if kind in by_type:
            grants._allow(logical_id("Manage", kind), target, [_action(a) for a in by_type[kind]], names(kind))
    if "attachrolepolicy" in by_type and scope.attached_policies:
        # Only the managed policies the product's roles attach (iam:PolicyARN,
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#ck_PolicyARN).
        condition = Condition(ArnLike("iam:PolicyARN", list(scope.attached_policies)))
        actions_ = [_action(a) for a in by_type["attachrolepolicy"]]
        grants._allow("AttachRolePolicies", target, actions_, names("role"), condition)
    if "passrole" in by_type and scope.passed_to:
        # Only to the services the product's roles trust (iam:PassedToService,
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html).
        condition = Condition(StringEquals("iam:PassedToService", list(scope.passed_to)))
        grants._allow("PassRoles", target, [_action(a) for a in by_type["passrole"]], names("role"), condition)
    if "createservicelinkedrole" in by_type:
        resources = [partition_arn("iam", SERVICE_LINKED_ROLES, region=False)]
        linked = [_action(a) for a in by_type["createservicelinkedrole"]]
        grants._allow("Create", "ServiceLinkedRoles", linked, resources)
    unneeded = by_type.get("passrole", []) if not scope.passed_to else []
    unneeded += by_type.get("attachrolepolicy", []) if not scope.attached_policies else []
    return unscopable, unneeded


def _kms_statements(grants: Grants, actions: Sequence[str], scope: LaunchScope) -> list[str]:
    """Add the KMS statements on this account's keys (and aliases); return the actions that take only ``"*"``.

    Key ARNs hold key IDs that KMS makes at creation, not names, so no pattern can single out
    the keys a launched stack makes: the management actions of the product's key types are
    granted on the keys and aliases of this account and region, and each service's use of a key
    (``key_uses``) only through that service (``kms:ViaService``,
    https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service).
    The stack's tag on the key (``aws:cloudformation:stack-name``) cannot bind them instead:
    "it might take up to five minutes for tag and alias changes to affect KMS key authorization"
    (https://docs.aws.amazon.com/kms/latest/developerguide/tag-authorization.html), and the key's
    create handler calls ``kms:PutKeyPolicy`` and ``kms:EnableKeyRotation`` right after
    ``kms:CreateKey``, as a failed first create's rollback calls ``kms:ScheduleKeyDeletion``.
    """
    keys = partition_arn("kms", "key/*")
    by_types: dict[tuple[str, ...], list[str]] = {}
    unscopable: list[str] = []
    for action in actions:
        types = tuple(t for t in action_resource_types(action) if t in ("key", "alias"))
        if not action_resource_types(action):
            unscopable.append(action)
        elif not types:
            raise ValueError(f"{action} acts on {', '.join(action_resource_types(action))}; not a key or an alias")
        else:
            by_types.setdefault(types, []).append(action)
    for types, grouped in sorted(by_types.items()):
        resources = [partition_arn("kms", f"{t}/*") for t in types]
        named = [{"key": "Keys", "alias": "Aliases"}[t] for t in types]
        grants._allow(logical_id("Manage", *named), "InAccount", [_action(a) for a in grouped], resources)
    for service, uses in sorted(scope.key_uses):
        if uses:
            via = Condition(StringEquals("kms:ViaService", Sub(f"{service}.${{AWS::Region}}.amazonaws.com")))
            grants._allow("UseKeysVia", service, [_action(a) for a in sorted(set(uses))], [keys], via)
    return unscopable


def _stack_statements(grants: Grants, actions: Sequence[str], scope: LaunchScope) -> list[str]:
    """Add the CloudFormation statement on the launched stacks (and the nested stacks they make); return the rest.

    A nested stack (an ``AWS::CloudFormation::Stack`` of the product, or the one a transform's
    expansion holds) is named by CloudFormation after its parent, ``<parent>-<logical id>-<random>``
    (nested stacks: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-nested-stacks.html;
    the guide shows such names but states no rule, so this is what CloudFormation does rather than
    a documented promise), so ``stack/SC-*`` names it as it names the launched stack, and the roles
    it makes (``<nested stack>-<logical id>-<random>``) are ``role/SC-*``. Returns the actions that
    take only ``"*"``.
    """
    scoped: list[str] = []
    unscopable: list[str] = []
    for action in actions:
        types = action_resource_types(action)
        if not types:
            unscopable.append(action)
        elif "stack" in types:
            scoped.append(action)
        else:
            raise ValueError(f"{action} acts on {', '.join(types)}; a launch role is granted stack actions only")
    if scoped:
        resources = [partition_arn("cloudformation", f"stack/{scope.stack_names}")]
        target = scope.stack_names.replace("*", "")
        grants._allow("ManageNestedStacks", target, [_action(a) for a in scoped], resources)
    return unscopable


def _function_statements(grants: Grants, actions: Sequence[str], scope: LaunchScope) -> list[str]:
    """Add the Lambda statement on the launched stacks' functions; return the actions that take only ``"*"``.

    On ``"*"``, ``lambda:UpdateFunctionCode`` would let the role rewrite any function of the
    account (privilege escalation, checkov CKV_AWS_110), so the function actions are granted on
    ``function:SC-*``: a function CloudFormation names is ``<stack>-<logical id>-<random>``, and a
    nested stack's starts with its parent's name (see :func:`_stack_statements`).
    """
    scoped: list[str] = []
    unscopable: list[str] = []
    for action in actions:
        types = action_resource_types(action)
        if "function" in types:
            scoped.append(action)
        else:
            unscopable.append(action)
    if scoped:
        resources = [partition_arn("lambda", f"function:{scope.stack_names}")]
        target = scope.stack_names.replace("*", "")
        grants._allow("ManageFunctions", target, [_action(a) for a in scoped], resources)
    return unscopable


# Creating a change set of a template that declares a transform is authorised on the transform
# too: "To allow AWS::Serverless transforms to create a change set, the policy should include the
# arn:aws:cloudformation:<region>:aws:transform/Serverless-2016-10-31 resource-level permission"
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-iam-template.html); the
# transforms AWS hosts are owned by the account "aws".
TRANSFORM_CHANGE_SET_ACTIONS: tuple[Action, ...] = (awacs.cloudformation.CreateChangeSet,)
# What deploying a Serverless Application Repository application as a nested stack asks of the
# caller: the application, a CloudFormation template made of it, and that template's status
# (https://docs.aws.amazon.com/serverlessrepo/latest/devguide/serverlessrepo-api-permissions-ref.html);
# all three take the application's ARN.
APPLICATION_DEPLOY_ACTIONS: tuple[Action, ...] = (
    Action("serverlessrepo", "GetApplication"),
    Action("serverlessrepo", "CreateCloudFormationTemplate"),
    Action("serverlessrepo", "GetCloudFormationTemplate"),
)


def grant_transforms(grants: Grants, scope: LaunchScope) -> None:
    """Create change sets through the transforms ``scope`` names, and deploy the applications their expansion uses.

    A transform's ARN is ``arn:${AWS::Partition}:cloudformation:${AWS::Region}:aws:transform/<name>``;
    the applications are AWS's, in an account and Region the template does not name, so their
    ARNs leave both open and only the name (prefix) binds them.
    """
    if scope.transforms:
        resources = [
            Sub(f"arn:${{AWS::Partition}}:cloudformation:${{AWS::Region}}:aws:transform/{name}")
            for name in sorted(set(scope.transforms))
        ]
        grants._allow("ExpandTemplates", "Transforms", TRANSFORM_CHANGE_SET_ACTIONS, resources)
    if scope.applications:
        resources = [
            Sub(f"arn:${{AWS::Partition}}:serverlessrepo:*:*:applications/{name}")
            for name in sorted(set(scope.applications))
        ]
        grants._allow("Deploy", "Applications", APPLICATION_DEPLOY_ACTIONS, resources)


def _pack(statements: Sequence[Statement]) -> list[Grants]:
    """The statements in as few documents under IAM's managed-policy quota as their order allows."""
    chunks: list[Grants] = [Grants()]
    for statement in statements:
        chunks[-1].statements.append(statement)
        if _document_chars(chunks[-1].document()) > _PROVISIONING_POLICY_BUDGET and len(chunks[-1].statements) > 1:
            chunks[-1].statements.pop()
            chunks.append(Grants())
            chunks[-1].statements.append(statement)
    return [chunk for chunk in chunks if chunk.statements]


def _star_statements(by_service: Mapping[str, list[str]]) -> list[Statement]:
    """One statement on ``"*"`` per service, split where one would not fit a policy."""
    statements: list[Statement] = []
    for service, actions in sorted(by_service.items()):
        parts = [actions]
        while True:  # a service too large for one policy is split into statements that fit
            trial = Grants()
            _allow_anywhere(trial, "Provision", service, [_action(a) for a in parts[-1]])
            if _document_chars(trial.document()) <= _PROVISIONING_POLICY_BUDGET or len(parts[-1]) == 1:
                break
            half = len(parts[-1]) // 2
            parts[-1:] = [parts[-1][:half], parts[-1][half:]]
        for index, part in enumerate(parts, start=1):
            holder = Grants()
            _allow_anywhere(
                holder, "Provision", service if len(parts) == 1 else f"{service}{index}", [_action(a) for a in part]
            )
            statements += holder.statements
    return statements


def grant_provisioning(
    blueprint: Blueprint[Any],
    role: ServiceRole,
    resource_types: Iterable[str],
    *,
    regions: Sequence[str] = ("us-east-1",),
    name: str = "Provisioning",
    scope: LaunchScope | None = None,
) -> Provisioning:
    """Let ``role`` create, update, delete and read resources of ``resource_types``, in stacks named like ``scope``.

    The actions are exactly :func:`provisioning_actions` of the types, less those of services the
    product does not use (``scope.services``). IAM actions are granted on the roles, instance
    profiles and policies the launched stacks make (named after them: ``role/SC-*``),
    ``iam:PassRole`` only to the services the product's roles trust and ``iam:AttachRolePolicy``
    only for the policies they attach; KMS actions on this account's keys, a service's use of
    them only through that service (:func:`_kms_statements`). KMS actions that the schemas of
    other types name (an encrypted database's ``kms:CreateGrant``) are not granted unbound: the
    product's ``scope.key_uses`` say which services use keys, and grant them bound to the service.

    The rest is the one documented exception to "grants are scoped to a resource ARN": the
    other services' resources are created at launch, in a stack that does not exist yet, with
    IDs made at creation (a VPC, an instance, a load balancer), so no ARN can name them; they are
    granted on ``"*"``, one statement per service, together with the IAM and KMS actions that
    support no resource-level permission at all (``kms:CreateKey``, ``iam:ListRoles``).

    The statements go into as many ``AWS::IAM::ManagedPolicy`` resources as IAM's 6,144-character
    quota per policy needs (the scoped ones apart from those on ``"*"``, so that only the latter
    carry checkov skips), attached to the role (an inline policy could not hold them: a role's
    inline policies share 10,240 characters).
    """
    scope = scope or LaunchScope()
    types = sorted(set(resource_types))
    everything = provisioning_actions(types, regions=regions)
    derived = provisioning_actions(types, regions=regions, withheld=scope.withheld)
    by_service, unused = _sort_provisioning_actions(derived.actions, types, regions, scope)
    unused += [a for a in everything.actions if a.lower() in {w.lower() for w in scope.withheld}]
    scoped = Grants()
    star, unneeded = _iam_statements(scoped, by_service.pop("iam", []), scope)
    unused += unneeded
    star += _kms_statements(scoped, by_service.pop("kms", []), scope)
    star += _stack_statements(scoped, by_service.pop("cloudformation", []), scope)
    star += _function_statements(scoped, by_service.pop("lambda", []), scope)
    grant_transforms(scoped, scope)
    for action in star:  # only actions with no resource type at all (action_resource_types)
        by_service.setdefault(action.split(":", 1)[0].lower(), []).append(action)
    scoped_chunks = _pack(scoped.statements)
    star_chunks = _pack(_star_statements(by_service))
    if len(scoped_chunks) + len(star_chunks) > MANAGED_POLICIES_PER_ROLE:
        raise ValueError(
            f"the provisioning actions of {len(types)} resource types need {len(scoped_chunks) + len(star_chunks)} "
            f"managed policies; a role takes {MANAGED_POLICIES_PER_ROLE}: split the product into smaller stacks"
        )

    kept = tuple(a for a in derived.actions if a not in unused)
    actions = ProvisioningActions(kept, derived.unknown, tuple(sorted(unused, key=str.lower)))
    return Provisioning(
        scoped=_policies(
            blueprint, role, scoped_chunks, f"Scoped{name}", "Manage the IAM roles, instance profiles and KMS keys"
        ),
        unscoped=_policies(blueprint, role, star_chunks, name, "Create, update, delete and read the other resources"),
        actions=actions,
    )


def _sort_provisioning_actions(
    actions: Iterable[str], types: Sequence[str], regions: Sequence[str], scope: LaunchScope
) -> tuple[dict[str, list[str]], list[str]]:
    """The provisioning actions to grant, by service, and those left out (withheld, unused, KMS bound to a service)."""
    key_types = [t for t in types if t.startswith("AWS::KMS::")]
    key_actions = {a.lower() for a in provisioning_actions(key_types, regions=regions).actions} if key_types else set()
    used = None if scope.services is None else {s.lower() for s in scope.services}
    bound_uses = {a.lower() for _, uses in scope.key_uses for a in uses}
    withheld = {a.lower() for a in scope.withheld}
    by_service: dict[str, list[str]] = {}
    unused: list[str] = []
    for action in actions:
        service = action.split(":", 1)[0].lower()
        if action.lower() in withheld:
            unused.append(action)
        elif service == "kms" and action.lower() not in key_actions:
            if action.lower() not in bound_uses:  # granted through its service only, when a key is used
                unused.append(action)
        elif used is not None and service not in used:
            unused.append(action)
        else:
            by_service.setdefault(service, []).append(action)
    return by_service, unused


def _policies(
    blueprint: Blueprint[Any], role: ServiceRole, chunks: list[Grants], label: str, what: str
) -> tuple[iam.ManagedPolicy, ...]:
    """One managed policy per chunk of statements, attached to ``role``."""
    made = []
    for index, chunk in enumerate(chunks, start=1):
        policy = iam.ManagedPolicy(
            blueprint.lid(role.role.title, label, index),
            Description=f"{what} a stack made with {role.role.title} holds",
            PolicyDocument=chunk.document(),
            Roles=[role.ref],
        )
        made.append(blueprint.add(policy))
    return tuple(made)


def _action(action: str) -> Action:
    service, _, name = action.partition(":")
    return Action(service, name)


def grant_stack_operations(grants: Grants, stack_names: str = "SC-*") -> None:
    """Create, update, delete, watch and tag the stacks named like ``stack_names`` in this account and region.

    Also validate and summarise templates (:data:`TEMPLATE_INSPECTION_ACTIONS`), which take a
    template rather than a stack and so can only be granted on ``"*"``. ``SC-*`` is how Service
    Catalog names the stacks of provisioned products.
    """
    if not re.fullmatch(r"[A-Za-z0-9*-]+", stack_names) or stack_names == "*":
        raise ValueError(
            f"stack_names {stack_names!r}: give a stack name pattern like 'SC-*' (letters, digits, '-', '*')"
        )
    resources = [partition_arn("cloudformation", f"stack/{stack_names}")]
    grants._allow("OperateStacks", stack_names.replace("*", ""), STACK_OPERATION_ACTIONS, resources)
    _allow_anywhere(grants, "InspectTemplates", "Any", TEMPLATE_INSPECTION_ACTIONS)


def grant_service_catalog_template_read(grants: Grants) -> None:
    """Read the copies of product templates that Service Catalog keeps in its own bucket.

    The bucket is service-owned and its name is not published, so the statement is on ``"*"``;
    it is bound to objects carrying the ``servicecatalog:provisioning=true`` tag, the condition
    AWS documents for launch roles.
    """
    condition = Condition(StringEquals(SERVICE_CATALOG_TEMPLATE_TAG, "true"))
    _allow_anywhere(grants, "ReadServiceCatalogTemplates", "Any", [awacs.s3.GetObject], condition)


def grant_ssm_parameters_read(grants: Grants, names: Sequence[str]) -> None:
    """Read the SSM parameters ``names`` (CloudFormation resolves ``AWS::SSM::Parameter::Value<...>`` parameters so).

    Public parameters (``/aws/service/...``) belong to no account, so their ARNs leave it empty.
    """
    resources: list[Any] = []
    for parameter in sorted(set(names)):
        if not re.fullmatch(r"[A-Za-z0-9_./-]{1,2048}", parameter) or "*" in parameter:
            raise ValueError(f"SSM parameter name {parameter!r}: give an exact name like '/aws/service/...'")
        path = parameter if parameter.startswith("/") else "/" + parameter
        resources.append(partition_arn("ssm", "parameter" + path, account=not path.startswith("/aws/")))
    if resources:
        grants._allow("ReadParameters", "Ssm", SSM_PARAMETER_READ_ACTIONS, resources)


def grant_lifecycle_actions_complete(grants: Grants, group_logical_id: str) -> None:
    """Complete the lifecycle actions of this stack's Auto Scaling group ``group_logical_id``, and of no other group.

    The group's ARN holds a UUID made when the group is created
    (``arn:…:autoScalingGroup:<uuid>:autoScalingGroupName/<name>``) and its name is made by
    CloudFormation, so only a ``Ref``/``GetAtt`` could name it, and the role an instance of the
    group runs with cannot reference the group: the group needs the launch template, which
    needs the instance profile, which needs the role (a cycle). The statement therefore names
    every group of this account and region, bound by two tags CloudFormation puts on every group
    it creates: ``aws:cloudformation:stack-id`` (this stack) and ``aws:cloudformation:logical-id``
    (this group). Tags with the ``aws:`` prefix are reserved for AWS and cannot be added, changed
    or removed by anyone, so no other group can be made to match (AWS's own managed policy
    AWSGlueConsoleFullAccess binds ``ec2:TerminateInstances`` the same way, on
    ``ec2:ResourceTag/aws:cloudformation:stack-id`` and ``…:logical-id``). CompleteLifecycleAction
    takes the ``autoScalingGroup`` resource type and the ``autoscaling:ResourceTag/${TagKey}``
    condition key (Service Authorization Reference).
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2autoscaling.html
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-autoscaling-autoscalinggroup-tagproperty.html
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-resource-tags.html
    """
    if not re.fullmatch(r"[A-Za-z0-9]{1,255}", group_logical_id):
        raise ValueError(f"group {group_logical_id!r}: give the logical ID of the stack's Auto Scaling group")
    condition = Condition(
        StringEquals(
            {
                "autoscaling:ResourceTag/aws:cloudformation:stack-id": Ref("AWS::StackId"),
                "autoscaling:ResourceTag/aws:cloudformation:logical-id": group_logical_id,
            }
        )
    )
    resources = [partition_arn("autoscaling", "autoScalingGroup:*:autoScalingGroupName/*")]
    grants._allow("CompleteLifecycleActions", group_logical_id, LIFECYCLE_ACTION_COMPLETE_ACTIONS, resources, condition)


def grant_parameter_bucket_read(
    grants: Grants,
    parameter: str,
    *,
    condition: str,
    prefix: str,
    otherwise: AWSObject,
) -> None:
    """Read objects under ``prefix`` of the bucket a template parameter names, when ``condition`` holds.

    For a bucket the stack does not make (named at launch, e.g. where a Service Catalog export
    staged a release): the ARN is ``arn:${AWS::Partition}:s3:::${<parameter>}/<prefix>*``. When
    ``condition`` is false (the parameter is empty) the statement names the same prefix of
    ``otherwise``, a bucket of the stack, instead: IAM refuses a statement with no resource, so
    the branch cannot be ``AWS::NoValue``. ``otherwise`` is typically already readable there.
    """
    from troposphere import If  # noqa: PLC0415 - appended helper: the import block above is left as it was

    pattern = _objects(prefix)
    if not re.fullmatch(r"[A-Za-z0-9]+", parameter):
        raise ValueError(f"parameter {parameter!r}: give the logical ID of a template parameter")
    external = partition_arn("s3", "${" + parameter + "}/" + pattern, region=False, account=False)
    resource = If(condition, external, bucket_arn(otherwise, pattern))
    grants._allow("ReadObjects", logical_id(parameter, prefix), OBJECT_READ_ACTIONS, [resource])
