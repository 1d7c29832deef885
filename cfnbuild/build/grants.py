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

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import awacs.autoscaling
import awacs.cloudformation
import awacs.ec2
import awacs.kms
import awacs.logs
import awacs.s3
import awacs.secretsmanager
import awacs.sns
import awacs.sqs
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
from troposphere import AWSHelperFn, AWSObject, GetAtt, Parameter, Ref, Sub, iam

from cfnbuild.build.external import Resource, StackResource, arn_of, ref_of
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
        target: Resource | str,
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

    def grant_bucket_read(self, bucket: Resource, *, prefix: str = "", kms_key: Resource | None = None) -> None:
        """List the bucket and read the object versions under ``prefix`` (all by default)."""
        self._allow("ListBucket", bucket, BUCKET_LIST_ACTIONS, [bucket_arn(bucket)])
        self._allow("ReadObjects", bucket, OBJECT_READ_ACTIONS, [bucket_arn(bucket, _objects(prefix))])
        if kms_key is not None:
            self.grant_key_decrypt(kms_key)

    def grant_bucket_read_write(self, bucket: Resource, *, prefix: str = "", kms_key: Resource | None = None) -> None:
        """Read as :meth:`grant_bucket_read`, and put and delete objects under ``prefix`` (never the bucket)."""
        self.grant_bucket_read(bucket, prefix=prefix)
        self._allow("WriteObjects", bucket, OBJECT_WRITE_ACTIONS, [bucket_arn(bucket, _objects(prefix))])
        if kms_key is not None:
            self._allow("EncryptWith", kms_key, KMS_ENCRYPT_ACTIONS, [arn_of(kms_key)])

    def grant_secret_read(self, secret: Resource, *, kms_key: Resource | None = None) -> None:
        """Read the value of one Secrets Manager secret (``Ref`` of a secret is its ARN)."""
        self._allow("ReadSecret", secret, SECRET_READ_ACTIONS, [ref_of(secret)])
        if kms_key is not None:
            self.grant_key_decrypt(kms_key)

    def grant_log_group_write(self, log_group: Resource) -> None:
        """Create streams in one log group and put events into them."""
        self._allow("WriteLogs", log_group, LOG_WRITE_ACTIONS, [log_group_arn(log_group)])

    def grant_key_decrypt(self, key: Resource) -> None:
        """Decrypt with one KMS key."""
        self._allow("DecryptWith", key, KMS_DECRYPT_ACTIONS, [arn_of(key)])

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


def bucket_arn(bucket: Resource | Parameter, objects: str | None = None) -> GetAtt | Ref | Sub:
    """The ARN of a bucket (a created one's ``Arn``), or of ``objects`` (a key pattern) inside it.

    Objects are written ``${Bucket.Arn}/pattern``: the same ARN for AWS as one assembled from
    the partition and the bucket's name, and the form that security rule packs can follow back
    to the bucket. A bucket of another stack of the project (a :class:`StackResource`) gives the
    parameter carrying its ARN, ``${DataAssetsBucketArn}/pattern`` for objects. A parameter that
    names a bucket made elsewhere gives the ARN assembled from the partition and its value.
    """
    if isinstance(bucket, StackResource):
        if bucket.resource_type != "AWS::S3::Bucket":
            raise ValueError(f"{bucket.logical_id} of stack {bucket.stack} is a {bucket.resource_type}, not a bucket")
        return bucket.arn if objects is None else Sub(f"${{{bucket.arn_parameter}}}/{objects}")
    if getattr(bucket, "resource_type", None) != "AWS::S3::Bucket":  # a parameter naming a bucket made elsewhere
        resource = "${Bucket}" if objects is None else "${Bucket}/" + objects
        return partition_arn("s3", resource, region=False, account=False, Bucket=Ref(bucket))
    if objects is None:
        return GetAtt(bucket, "Arn")
    return Sub(f"${{{bucket.title}.Arn}}/{objects}")


def log_group_arn(log_group: Resource) -> Sub:
    """The ARN of a log group's streams (``...:log-group:NAME:*``), of this stack or of another one."""
    return partition_arn("logs", "log-group:${LogGroup}:*", LogGroup=ref_of(log_group))


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

    def deny_insecure_queue_access(self, queues: Sequence[AWSObject]) -> None:
        """Deny every request to the queues over a connection without TLS.

        SQS's guide: "Enforce encryption of data in transit" with ``aws:SecureTransport``
        (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-security-best-practices.html).
        Attach with ``sqs.QueuePolicy(Queues=[Ref(q) ...], PolicyDocument=policy.document())``.
        """
        self._add(
            logical_id("DenyInsecureAccess", *(queue.title for queue in queues)),
            Effect=Deny,
            Principal=Principal("*"),
            Action=[awacs.sqs.Action("*")],
            Resource=[GetAtt(queue, "Arn") for queue in queues],
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
    bucket: Resource,
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
    otherwise: Resource,
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
