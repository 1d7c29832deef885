"""The staging bucket: where templates too large to send inline, and app artifacts, wait.

One bucket per account and region, made on first use and named from both (nothing to
configure): encrypted, versioned, every public access blocked, TLS only; staged templates
expire after 90 days, app releases are kept. Objects are content-addressed (their key holds
their SHA-256), so uploading the same bytes twice uploads nothing.

Its name can be guessed, so someone else could create it first in their own account ("bucket
sniping"): every call names the expected owner (``ExpectedBucketOwner``), and S3 refuses the
call, instead of taking the template, when the bucket is not this account's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from cfnbuild.deploy.aws import Aws, error_code
from cfnbuild.errors import UsageError

INLINE_TEMPLATE_LIMIT = 51_200  # bytes CloudFormation accepts in TemplateBody
EXPIRY_DAYS = 90
TEMPLATES = "templates"  # the key prefix of staged templates


def bucket_name(account_id: str, region: str) -> str:
    """The staging bucket of one account and region."""
    return f"cfnbuild-staging-{account_id}-{region}"


def _tls_only_policy(bucket: str, partition: str) -> str:
    arn = f"arn:{partition}:s3:::{bucket}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [arn, f"{arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": False}},
                }
            ],
        }
    )


class StagingBucket:
    """The account's staging bucket in the target region."""

    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.s3 = aws.client("s3")
        self.account = aws.account_id()
        self.name = bucket_name(self.account, aws.target.region)
        self._owner = {"ExpectedBucketOwner": self.account}
        self._ready = False

    def ensure(self) -> None:
        """Create and harden the bucket if it does not exist yet."""
        if self._ready:
            return
        try:
            self.s3.head_bucket(Bucket=self.name, **self._owner)
        except ClientError as exc:
            if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise self._explained(exc) from None
            self._create()
        self._ready = True

    def _explained(self, exc: ClientError) -> Exception:
        if error_code(exc) in ("403", "AccessDenied"):
            return UsageError(
                f"s3://{self.name}: access denied — the bucket belongs to another account (someone may have "
                f"created it to catch templates), or these credentials of account {self.account} may not use it; "
                "cfnbuild uploads nothing there"
            )
        return exc

    def _create(self) -> None:
        region = self.aws.target.region
        kwargs: dict[str, Any] = {"Bucket": self.name}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        self.s3.create_bucket(**kwargs)
        self.s3.put_public_access_block(
            Bucket=self.name,
            **self._owner,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        self.s3.put_bucket_encryption(
            Bucket=self.name,
            **self._owner,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        self.s3.put_bucket_versioning(Bucket=self.name, VersioningConfiguration={"Status": "Enabled"}, **self._owner)
        self.s3.put_bucket_lifecycle_configuration(
            Bucket=self.name,
            **self._owner,
            LifecycleConfiguration={
                "Rules": [
                    {
                        # Staged templates are read once, by the change set that uses them.
                        "ID": "expire-staged-templates",
                        "Status": "Enabled",
                        "Filter": {"Prefix": f"{TEMPLATES}/"},
                        "Expiration": {"Days": EXPIRY_DAYS},
                    },
                    {
                        # Releases stay: instances a Service Catalog product launches, or scales
                        # out to, fetch theirs at boot, long after it was staged.
                        "ID": "expire-replaced-versions",
                        "Status": "Enabled",
                        "Filter": {"Prefix": ""},
                        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                    },
                ]
            },
        )
        if str(self.s3.meta.endpoint_url).startswith("http://"):
            return  # a plain-HTTP endpoint (the emulator) could not reach a TLS-only bucket at all
        partition = self.aws.session().get_partition_for_region(region)
        self.s3.put_bucket_policy(Bucket=self.name, Policy=_tls_only_policy(self.name, partition), **self._owner)

    def put(self, key_prefix: str, body: bytes, *, suffix: str) -> str:
        """Upload ``body`` under a content-addressed key (unless it is there); return the key.

        The bucket is assumed to exist (one call when the object is there too, two when it is
        not); only when S3 says there is no bucket is it made, and the upload made again.
        """
        digest = hashlib.sha256(body).hexdigest()
        key = f"{key_prefix}/{digest}{suffix}"
        try:
            self.s3.head_object(Bucket=self.name, Key=key, **self._owner)
            self._ready = True
            return key
        except ClientError as exc:
            if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
                raise self._explained(exc) from None
        try:
            self._put_object(key, body)
        except ClientError as exc:
            if error_code(exc) != "NoSuchBucket":
                raise self._explained(exc) from None
            self.ensure()
            self._put_object(key, body)
        self._ready = True
        return key

    def _put_object(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.name, Key=key, Body=body, ServerSideEncryption="AES256", **self._owner)

    def url(self, key: str) -> str:
        """The HTTPS URL CloudFormation reads a staged template from."""
        endpoint = self.s3.meta.endpoint_url.rstrip("/")
        return f"{endpoint}/{self.name}/{key}"


def template_argument(aws: Aws, body: str, say: Callable[[str], None]) -> dict[str, str]:
    """``TemplateBody`` when CloudFormation takes ``body`` inline, else ``TemplateURL`` of its staged copy.

    ``say`` gets the one line that names the staged object ("template is N bytes: staged as s3://…").
    """
    size = len(body.encode())
    if size <= INLINE_TEMPLATE_LIMIT:
        return {"TemplateBody": body}
    staging = StagingBucket(aws)
    key = staging.put(TEMPLATES, body.encode(), suffix=".json")
    say(f"template is {size} bytes: staged as s3://{staging.name}/{key}")
    return {"TemplateURL": staging.url(key)}
