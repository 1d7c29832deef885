"""Storage: the app's assets bucket and the bucket that receives the stack's access logs.

Inputs: :class:`StorageInputs`. Outputs: ``assets_bucket``, ``log_bucket`` (the ``s3.Bucket``
resources, for grants), ``log_bucket_policy`` (the ``s3.BucketPolicy``: the load balancer must
``DependsOn`` it, because creating an ALB with access logs checks that it can write to the bucket
and CloudFormation cannot infer that order), ``assets_bucket_name``, ``assets_bucket_arn``,
``log_bucket_name``, ``log_bucket_arn``, ``alb_log_prefix`` (the value of the ALB's
``access_logs.s3.prefix`` attribute); and the exported Outputs ``AssetsBucketName``,
``AssetsBucketArn``, ``LogBucketName``, ``LogBucketArn``.

Both buckets are created by the stack, named by CloudFormation and kept on delete
(failure-analysis item 2); everything that names them (grants, policies, logging, outputs) does
so through ``Ref``/``GetAtt`` of the resource, never a literal (item 10). Both are versioned,
encrypted with S3-managed keys (ELB access logs support only SSE-S3 on their bucket), closed to
the public, ACL-free (``BucketOwnerEnforced``) and refuse requests without TLS.

The log bucket takes S3 server access logs of the assets bucket (``<access_log_prefix>/``,
delivered by ``logging.s3.amazonaws.com`` for this account only) and the ALB's access logs
(``<alb_log_prefix>/AWSLogs/<account>/``, delivered by
``logdelivery.elasticloadbalancing.amazonaws.com``). AWS now recommends that service principal
in every Region; the per-Region Elastic Load Balancing accounts of Regions opened before August
2022 are a legacy form it still accepts, so the template needs no account ID at all.
AWS docs: https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html
and https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from troposphere import GetAtt, Ref, s3

from cfnbuild import Blueprint, setting
from cfnbuild.build.grants import ResourcePolicy

S3_LOG_DELIVERY = "logging.s3.amazonaws.com"
ELB_LOG_DELIVERY = "logdelivery.elasticloadbalancing.amazonaws.com"
ABORT_MULTIPART_DAYS = 7
# The rule packs (besides AWS Solutions) whose findings are accepted by the same reason.
COMPLIANCE_PACKS = ("HIPAA.Security", "NIST.800.53.R5", "PCI.DSS.321")
# A key prefix: path segments of letters, digits, '.', '_' and '-', without leading or trailing '/'.
_PREFIX = re.compile(r"[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*")


@dataclass(frozen=True)
class StorageInputs:
    """Inputs of :class:`Storage`."""

    noncurrent_version_days: int = setting(
        30, "Days an overwritten or deleted object version is kept before it expires (both buckets)."
    )
    log_retention_days: int = setting(365, "Days a log object stays in the log bucket before it expires.")
    alb_log_prefix: str = setting("alb", "Key prefix of the ALB access logs in the log bucket (no '/' at the ends).")
    access_log_prefix: str = setting(
        "s3-access", "Key prefix of the assets bucket's server access logs in the log bucket (no '/' at the ends)."
    )


class Storage(Blueprint[StorageInputs]):
    """A retained, hardened assets bucket, and a retained log bucket that S3 and the ALB deliver to."""

    assets_bucket: s3.Bucket
    assets_bucket_policy: s3.BucketPolicy
    log_bucket: s3.Bucket
    log_bucket_policy: s3.BucketPolicy
    assets_bucket_name: Ref
    assets_bucket_arn: GetAtt
    log_bucket_name: Ref
    log_bucket_arn: GetAtt
    alb_log_prefix: str

    def validate(self) -> None:
        """Positive day counts; plain, distinct, non-nested prefixes the log services accept."""
        inputs = self.inputs
        for field in ("noncurrent_version_days", "log_retention_days"):
            days = getattr(inputs, field)
            if days < 1:  # the type (int, not bool) is checked when the blueprint is made
                raise self.invalid(field, f"is {days!r}; use a whole number of days, at least 1")
        for field in ("alb_log_prefix", "access_log_prefix"):
            prefix = getattr(inputs, field)
            if not _PREFIX.fullmatch(prefix):
                raise self.invalid(
                    field,
                    f"is {prefix!r}; use path segments of letters, digits, '.', '_' and '-' "
                    "joined by '/', with no '/' at either end",
                )
        if "AWSLogs" in inputs.alb_log_prefix:
            raise self.invalid("alb_log_prefix", "must not contain 'AWSLogs' (the ALB adds it after the prefix)")
        alb, access = inputs.alb_log_prefix + "/", inputs.access_log_prefix + "/"
        if alb.startswith(access) or access.startswith(alb):
            raise self.invalid(
                "access_log_prefix",
                f"{inputs.access_log_prefix!r} overlaps alb_log_prefix {inputs.alb_log_prefix!r}; "
                "give each log source its own prefix",
            )

    def build(self) -> None:
        """The log bucket first: the assets bucket logs into it."""
        self.alb_log_prefix = self.inputs.alb_log_prefix
        self.log_bucket = self.logs()
        self.log_bucket_policy = self.logs_policy(self.log_bucket)
        self.assets_bucket = self.assets(self.log_bucket)
        self.assets_bucket_policy = self.assets_policy(self.assets_bucket)

    def hardened(self, name: str, rules: list[s3.LifecycleRule], **extra: object) -> s3.Bucket:
        """A retained bucket named by CloudFormation: versioned, SSE-S3, private, ACL-free."""
        return self.add(
            s3.Bucket(
                self.lid(name, "Bucket"),
                VersioningConfiguration=s3.VersioningConfiguration(Status="Enabled"),
                BucketEncryption=s3.BucketEncryption(
                    ServerSideEncryptionConfiguration=[
                        s3.ServerSideEncryptionRule(
                            ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(SSEAlgorithm="AES256")
                        )
                    ]
                ),
                PublicAccessBlockConfiguration=s3.PublicAccessBlockConfiguration(
                    BlockPublicAcls=True,
                    BlockPublicPolicy=True,
                    IgnorePublicAcls=True,
                    RestrictPublicBuckets=True,
                ),
                OwnershipControls=s3.OwnershipControls(
                    Rules=[s3.OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]
                ),
                LifecycleConfiguration=s3.LifecycleConfiguration(Rules=[*rules, self.delete_marker_rule()]),
                **extra,
            ),
            stateful=True,
        )

    def noncurrent_rule(self, rule_id: str, **expiry: int) -> s3.LifecycleRule:
        """Expire noncurrent versions (and ``expiry``), and abort uploads left incomplete."""
        return s3.LifecycleRule(
            Id=rule_id,
            Status="Enabled",
            NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(
                NoncurrentDays=self.inputs.noncurrent_version_days
            ),
            AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(DaysAfterInitiation=ABORT_MULTIPART_DAYS),
            **expiry,
        )

    @staticmethod
    def delete_marker_rule() -> s3.LifecycleRule:
        """Remove delete markers whose versions have all expired (S3 allows this only in its own rule)."""
        return s3.LifecycleRule(Id="RemoveExpiredDeleteMarkers", Status="Enabled", ExpiredObjectDeleteMarker=True)

    def accept_single_region(self, bucket: s3.Bucket) -> None:
        """Both buckets live in the stack's Region only; say so where the rule packs ask for a replica."""
        self.accept_finding(
            bucket,
            [f"{pack}-S3BucketReplicationEnabled" for pack in COMPLIANCE_PACKS],
            "Versioned, kept on stack delete and on replacement, old versions expiring on the configured "
            "schedule, in the stack's own Region: a replica needs a bucket in a second Region, which a "
            "regional stack cannot own. Deploy the environment to a second Region (deploy --regions) "
            "for a copy of the stack there.",
        )

    def logs(self) -> s3.Bucket:
        """The log bucket; its logs expire after ``log_retention_days``."""
        bucket = self.hardened(
            "Log",
            [self.noncurrent_rule("ExpireLogs", ExpirationInDays=self.inputs.log_retention_days)],
        )
        self.skip_check(
            bucket,
            "CKV_AWS_18",
            "This is the access-log destination bucket; logging it into itself would log every log "
            "delivery (S3 advises against a bucket being its own log target) and there is no other "
            "log bucket to send to.",
        )
        self.accept_finding(
            bucket,
            [f"{pack}-S3DefaultEncryptionKMS" for pack in COMPLIANCE_PACKS],
            "Encrypted with S3-managed keys because the ALB delivers its access logs here, and ELB "
            "supports only SSE-S3 on an access-log bucket "
            "(https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html).",
        )
        self.accept_single_region(bucket)
        self.log_bucket_name = Ref(bucket)
        self.log_bucket_arn = GetAtt(bucket, "Arn")
        self.output("LogBucketName", self.log_bucket_name, "Name of the bucket that receives S3 and ALB access logs.")
        self.output("LogBucketArn", self.log_bucket_arn, "ARN of the bucket that receives S3 and ALB access logs.")
        return bucket

    def logs_policy(self, bucket: s3.Bucket) -> s3.BucketPolicy:
        """TLS only; S3 server access logging and ALB access logs may deliver under their prefixes."""
        policy = ResourcePolicy()
        policy.deny_insecure_transport(bucket)
        policy.allow_service_put_objects(bucket, S3_LOG_DELIVERY, prefix=self.inputs.access_log_prefix + "/")
        self.alb_log_delivery(policy, bucket)
        return self.add(
            s3.BucketPolicy(self.lid("LogBucketPolicy"), Bucket=Ref(bucket), PolicyDocument=policy.document())
        )

    def alb_log_delivery(self, policy: ResourcePolicy, bucket: s3.Bucket) -> None:
        """Let Elastic Load Balancing deliver this account's ALB access logs under ``alb_log_prefix``.

        The statement AWS documents, with no source condition: the account ID in the key path is
        what limits delivery to this account's load balancers.
        """
        policy.allow_service_put_account_logs(bucket, ELB_LOG_DELIVERY, prefix=self.inputs.alb_log_prefix + "/")

    def assets(self, log_bucket: s3.Bucket) -> s3.Bucket:
        """The assets bucket; old versions expire, requests are logged to the log bucket."""
        bucket = self.hardened(
            "Assets",
            [self.noncurrent_rule("ExpireNoncurrentVersions")],
            LoggingConfiguration=s3.LoggingConfiguration(
                DestinationBucketName=Ref(log_bucket),
                LogFilePrefix=self.inputs.access_log_prefix + "/",
            ),
        )
        self.accept_finding(
            bucket,
            [f"{pack}-S3DefaultEncryptionKMS" for pack in COMPLIANCE_PACKS],
            "Encrypted at rest with S3-managed keys (AES-256). Who may read is decided by the bucket policy "
            "(TLS only, no public access) and the instance role's prefix grants; a KMS key would add a key "
            "grant to every reader and a KMS request per object without narrowing that set.",
        )
        self.accept_single_region(bucket)
        self.assets_bucket_name = Ref(bucket)
        self.assets_bucket_arn = GetAtt(bucket, "Arn")
        self.output("AssetsBucketName", self.assets_bucket_name, "Name of the app's assets bucket.")
        self.output("AssetsBucketArn", self.assets_bucket_arn, "ARN of the app's assets bucket.")
        return bucket

    def assets_policy(self, bucket: s3.Bucket) -> s3.BucketPolicy:
        """TLS only; access itself comes from grants on the roles that need it."""
        policy = ResourcePolicy()
        policy.deny_insecure_transport(bucket)
        return self.add(
            s3.BucketPolicy(self.lid("AssetsBucketPolicy"), Bucket=Ref(bucket), PolicyDocument=policy.document())
        )
