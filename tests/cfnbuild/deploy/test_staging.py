"""The staging bucket: content-addressed uploads in as few calls as the bucket's state allows,
and never into a bucket another account owns.

The emulator ignores ``ExpectedBucketOwner`` (it answers as if every bucket were the caller's),
so the owner check and S3's refusal are scripted with botocore's Stubber; the create-on-first-use
path runs against the emulator.
"""

from __future__ import annotations

import hashlib
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from cfnbuild.deploy.aws import Aws, Target
from cfnbuild.deploy.staging import TEMPLATES, StagingBucket
from cfnbuild.errors import UsageError
from cfnbuild.local.emulator import THROWAWAY_CREDENTIALS

ACCOUNT = "123456789012"
BUCKET = f"cfnbuild-staging-{ACCOUNT}-eu-west-1"
BODY = b'{"Resources": {}}'
KEY = f"{TEMPLATES}/{hashlib.sha256(BODY).hexdigest()}.json"


def _stubbed() -> tuple[StagingBucket, Stubber]:
    session = boto3.session.Session(region_name="eu-west-1", **THROWAWAY_CREDENTIALS)
    aws = Aws(Target("any", "eu-west-1", credentials=dict(THROWAWAY_CREDENTIALS)))
    aws._clients["s3"] = session.client("s3")
    aws._clients["sts"] = sts = session.client("sts")
    with Stubber(sts) as identity:
        identity.add_response(
            "get_caller_identity",
            {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/deployer", "UserId": "AIDAEXAMPLE"},
        )
        staging = StagingBucket(aws)
    return staging, Stubber(aws._clients["s3"])


def _owned(**params: Any) -> dict[str, Any]:
    return {**params, "ExpectedBucketOwner": ACCOUNT}


def test_a_template_already_staged_costs_one_call_naming_the_owner():
    staging, s3 = _stubbed()
    s3.add_response("head_object", {}, _owned(Bucket=BUCKET, Key=KEY))
    with s3:
        assert staging.put(TEMPLATES, BODY, suffix=".json") == KEY
    s3.assert_no_pending_responses()


def test_a_new_template_in_an_existing_bucket_is_looked_for_then_put_without_checking_the_bucket():
    staging, s3 = _stubbed()
    s3.add_client_error("head_object", "404", http_status_code=404, expected_params=_owned(Bucket=BUCKET, Key=KEY))
    s3.add_response("put_object", {}, _owned(Bucket=BUCKET, Key=KEY, Body=ANY, ServerSideEncryption="AES256"))
    with s3:
        staging.put(TEMPLATES, BODY, suffix=".json")
    s3.assert_no_pending_responses()


def test_a_bucket_someone_else_owns_is_refused_with_the_reason_and_nothing_is_put():
    staging, s3 = _stubbed()
    s3.add_client_error("head_object", "403", http_status_code=403, expected_params=_owned(Bucket=BUCKET, Key=KEY))
    with s3, pytest.raises(UsageError, match=rf"s3://{BUCKET}: access denied — the bucket belongs to another account"):
        staging.put(TEMPLATES, BODY, suffix=".json")
    s3.assert_no_pending_responses()  # no put_object was scripted: one would have failed the stub


def test_the_first_upload_of_an_account_creates_the_bucket_then_puts(emulator):
    aws = Aws(Target("any", "eu-west-1", endpoint_url=emulator.endpoint_url, credentials=dict(THROWAWAY_CREDENTIALS)))
    staging = StagingBucket(aws)
    s3 = emulator.client("s3")
    if staging.name in [b["Name"] for b in s3.list_buckets()["Buckets"]]:  # another test of the session made it
        for version in s3.list_object_versions(Bucket=staging.name).get("Versions", []):
            s3.delete_object(Bucket=staging.name, Key=version["Key"], VersionId=version["VersionId"])
        s3.delete_bucket(Bucket=staging.name)
    key = staging.put(TEMPLATES, BODY, suffix=".json")
    assert s3.get_object(Bucket=staging.name, Key=key)["Body"].read() == BODY
    assert s3.get_bucket_versioning(Bucket=staging.name)["Status"] == "Enabled"
    assert staging.put(TEMPLATES, BODY, suffix=".json") == key  # the same bytes: nothing new
    assert len(s3.list_object_versions(Bucket=staging.name, Prefix=key)["Versions"]) == 1
