"""The storage blueprint: hardened, retained buckets that only the stack's own grants name."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from troposphere import encode_to_dict, s3

from blueprints.storage import Storage, StorageInputs
from cfnbuild import InputError, ServiceRole, Stack
from cfnbuild.build.grants import ResourcePolicy
from cfnbuild.build.lint import cfn_lint, checkov
from tests.assertions import Match, TemplateAssert

BUCKETS = ("AssetsBucket", "LogBucket")


def _stack(**inputs: Any) -> tuple[Stack, Storage]:
    stack = Stack("st", description="d", project="p", environment="dev")
    return stack, Storage(stack, StorageInputs(**inputs))


def _storage(**inputs: Any) -> TemplateAssert:
    stack, _ = _stack(**inputs)
    return TemplateAssert(stack.to_dict())


def _with_reader() -> tuple[Stack, Storage]:
    """Storage plus an app role granted read on the assets bucket, as the compute blueprint does."""
    stack, storage = _stack()
    role = ServiceRole(storage, "App", services=["ec2.amazonaws.com"])
    role.grant_bucket_read(storage.assets_bucket)
    return stack, storage


def _sub(bucket: str, resource: str) -> dict[str, Any]:
    """A bucket's ARN (its Arn attribute), or ``${Bucket.Arn}/…`` of objects in it, as the grants write them."""
    return {"Fn::GetAtt": [bucket, "Arn"]} if not resource else {"Fn::Sub": f"${{{bucket}.Arn}}{resource}"}


def _statements(template: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every statement of every policy in the template: role policies, bucket policies, key policies."""
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        documents = [props[k] for k in ("PolicyDocument", "KeyPolicy", "AssumeRolePolicyDocument") if k in props]
        documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
        for document in documents:
            yield from document["Statement"]


def _bucket_policy(t: TemplateAssert, bucket: str) -> list[dict[str, Any]]:
    (policy,) = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for r in t.of_type("AWS::S3::BucketPolicy").values()
        if r["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    return policy


def test_both_buckets_are_versioned_encrypted_private_and_acl_free():
    _storage().all_resources_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            # ALB access logs support only SSE-S3 on their bucket.
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "AccessControl": Match.absent(),
            "BucketName": Match.absent(),
        },
    )


def test_assets_noncurrent_versions_and_stale_uploads_expire():
    t = _storage(noncurrent_version_days=14)
    rules = t.resources["AssetsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rules[0] == {
        "Id": "ExpireNoncurrentVersions",
        "Status": "Enabled",
        "NoncurrentVersionExpiration": {"NoncurrentDays": 14},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    }
    assert {"Id": "RemoveExpiredDeleteMarkers", "Status": "Enabled", "ExpiredObjectDeleteMarker": True} in rules
    assert not any("ExpirationInDays" in r for r in rules)  # current assets never expire


def test_logs_expire_after_the_retention_period():
    t = _storage(log_retention_days=90, noncurrent_version_days=10)
    rules = t.resources["LogBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rules[0] == {
        "Id": "ExpireLogs",
        "Status": "Enabled",
        "ExpirationInDays": 90,
        "NoncurrentVersionExpiration": {"NoncurrentDays": 10},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    }


def test_assets_server_access_logs_go_to_the_log_bucket_under_their_prefix():
    t = _storage(access_log_prefix="logs/s3")
    assert t.resources["AssetsBucket"]["Properties"]["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": "LogBucket"},
        "LogFilePrefix": "logs/s3/",
    }
    assert "LoggingConfiguration" not in t.resources["LogBucket"]["Properties"]


def test_both_bucket_policies_deny_requests_without_tls():
    t = _storage()
    for bucket in BUCKETS:
        assert {
            "Sid": f"GrantDenyInsecureTransport{bucket}",
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["s3:*"],
            "Resource": [_sub(bucket, ""), _sub(bucket, "/*")],
            "Condition": {"Bool": {"aws:SecureTransport": False}},
        } in _bucket_policy(t, bucket)


def test_log_bucket_lets_s3_logging_deliver_for_this_account_only_under_its_prefix():
    t = _storage(access_log_prefix="s3-access")
    assert {
        "Sid": "GrantLoggingPutObjectsLogBucket",
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": ["s3:PutObject"],
        "Resource": [_sub("LogBucket", "/s3-access/*")],
        "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
    } in _bucket_policy(t, "LogBucket")


def test_log_bucket_lets_elb_deliver_this_accounts_alb_logs_in_every_region_without_an_account_id():
    t = _storage(alb_log_prefix="web/alb")
    statements = _bucket_policy(t, "LogBucket")
    assert {
        "Sid": "GrantLogdeliveryPutAccountLogsLogBucket",
        "Effect": "Allow",
        "Principal": {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"},
        "Action": ["s3:PutObject"],
        "Resource": [_sub("LogBucket", "/web/alb/AWSLogs/${AWS::AccountId}/*")],
    } in statements
    # No per-region ELB account principal, so no literal account ID and no region mapping.
    assert not [s for s in statements if "AWS" in (s.get("Principal") or {})]
    assert "Mappings" not in t.template
    assert not re.search(r"(?<![\d.])\d{12}(?![\d.])", json.dumps(t.template))


def test_the_log_bucket_policy_is_exposed_for_the_alb_to_depend_on():
    _, storage = _stack(alb_log_prefix="edge")
    assert isinstance(storage.log_bucket_policy, s3.BucketPolicy)
    assert storage.log_bucket_policy.title == "LogBucketPolicy"
    assert storage.log_bucket_policy.Bucket.to_dict() == {"Ref": "LogBucket"}
    assert storage.alb_log_prefix == "edge"


def test_typed_attributes_reference_the_created_buckets():
    _, storage = _stack()
    assert isinstance(storage.assets_bucket, s3.Bucket)
    assert isinstance(storage.log_bucket, s3.Bucket)
    assert storage.assets_bucket_name.to_dict() == {"Ref": "AssetsBucket"}
    assert storage.assets_bucket_arn.to_dict() == {"Fn::GetAtt": ["AssetsBucket", "Arn"]}
    assert storage.log_bucket_name.to_dict() == {"Ref": "LogBucket"}
    assert storage.log_bucket_arn.to_dict() == {"Fn::GetAtt": ["LogBucket", "Arn"]}


def test_outputs_are_for_the_next_stack_with_no_export():
    t = _storage()
    for name, value in (
        ("AssetsBucketName", {"Ref": "AssetsBucket"}),
        ("AssetsBucketArn", {"Fn::GetAtt": ["AssetsBucket", "Arn"]}),
        ("LogBucketName", {"Ref": "LogBucket"}),
        ("LogBucketArn", {"Fn::GetAtt": ["LogBucket", "Arn"]}),
    ):
        t.has_output(
            name,
            {
                "Value": value,
                "Export": Match.absent(),
                "Description": Match.any(),
            },
        )


def test_only_the_log_bucket_skips_the_access_logging_check_with_a_reason():
    t = _storage()
    skips = {name: r.get("Metadata", {}).get("checkov", {}).get("skip", []) for name, r in t.resources.items()}
    assert {name: [s["id"] for s in found] for name, found in skips.items() if found} == {"LogBucket": ["CKV_AWS_18"]}
    assert "access-log destination" in skips["LogBucket"][0]["comment"]


def test_seed_02_buckets_are_created_by_the_stack_retained_and_referenced_only_through_the_resource():
    stack, _ = _with_reader()
    template = stack.to_dict()
    t = TemplateAssert(template)
    t.resource_count_is("AWS::S3::Bucket", 2)
    for bucket in BUCKETS:
        resource = t.resources[bucket]
        # Created here, named by CloudFormation, and kept when the stack or the resource goes.
        assert "BucketName" not in resource["Properties"]
        assert resource["DeletionPolicy"] == "RetainExceptOnCreate"
        assert resource["UpdateReplacePolicy"] == "Retain"
        assert resource["Metadata"]["cfnbuild"] == {"stateful": True}
    # Nothing names a bucket by a literal: no string holds an S3 ARN or bucket URI of its own.
    text = json.dumps(template)
    assert not re.search(r"arn:aws[a-z-]*:s3", text)
    assert not re.search(r"s3:::(?!\$\{Bucket\})", text)
    assert "s3://" not in text
    # Every place that names a bucket does so through Ref/GetAtt of a bucket in this template.
    references = [r["Properties"]["Bucket"] for r in t.of_type("AWS::S3::BucketPolicy").values()]
    references.append(t.resources["AssetsBucket"]["Properties"]["LoggingConfiguration"]["DestinationBucketName"])
    references += [o["Value"] for o in template["Outputs"].values()]
    for reference in references:
        target = reference.get("Ref") or reference.get("Fn::GetAtt", [None])[0]
        assert target in BUCKETS, reference


def test_seed_10_every_s3_arn_in_every_policy_is_built_from_a_bucket_of_this_template():
    stack, _ = _with_reader()
    template = stack.to_dict()
    buckets = {k for k, v in template["Resources"].items() if v["Type"] == "AWS::S3::Bucket"}
    s3_resources = []
    for statement in _statements(template):
        actions = statement.get("Action", [])
        if not any(str(a).startswith("s3:") for a in actions):
            continue
        assert statement["Resource"] != ["*"], statement
        for resource in statement["Resource"]:
            assert isinstance(resource, dict), f"literal resource {resource!r} in {statement['Sid']}"
            if "Fn::GetAtt" in resource:  # the bucket itself
                bucket, attribute = resource["Fn::GetAtt"]
                assert attribute == "Arn", resource
                objects = ""
            else:  # objects in it: ${Bucket.Arn}/pattern
                found = re.fullmatch(r"\$\{(\w+)\.Arn\}(/.*)", resource["Fn::Sub"])
                assert found, resource
                bucket, objects = found.groups()
            assert bucket in buckets, resource
            s3_resources.append((statement["Sid"], bucket, objects))
    # The role's grant is among them, on the assets bucket only.
    assert ("GrantReadObjectsAssetsBucket", "AssetsBucket", "/*") in s3_resources
    assert ("GrantListBucketAssetsBucket", "AssetsBucket", "") in s3_resources


def test_every_policy_statement_comes_from_a_grant_helper():
    stack, _ = _with_reader()
    for statement in _statements(stack.to_dict()):
        assert statement["Sid"].startswith("Grant"), statement


def test_account_log_delivery_grant_scopes_to_this_accounts_path_under_the_prefix():
    policy = ResourcePolicy()
    policy.allow_service_put_account_logs(s3.Bucket("Logs"), "logdelivery.elasticloadbalancing.amazonaws.com")
    policy.allow_service_put_account_logs(
        s3.Bucket("Logs"), "logdelivery.elasticloadbalancing.amazonaws.com", prefix="alb/"
    )
    statements = encode_to_dict(policy.document())["Statement"]
    # One grant per service and bucket; the first prefix wins, as with the other helpers.
    assert statements == [
        {
            "Sid": "GrantLogdeliveryPutAccountLogsLogs",
            "Effect": "Allow",
            "Principal": {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"},
            "Action": ["s3:PutObject"],
            "Resource": [_sub("Logs", "/AWSLogs/${AWS::AccountId}/*")],
        }
    ]


@pytest.mark.parametrize("prefix", ["alb", "/alb/", "alb/*"])
def test_account_log_delivery_grant_rejects_a_prefix_it_cannot_scope(prefix):
    with pytest.raises(ValueError, match="prefix"):
        ResourcePolicy().allow_service_put_account_logs(s3.Bucket("Logs"), "logging.s3.amazonaws.com", prefix=prefix)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"noncurrent_version_days": 0}, "Storage input 'noncurrent_version_days': is 0; use a whole number"),
        ({"log_retention_days": -5}, "Storage input 'log_retention_days': is -5; use a whole number"),
        ({"alb_log_prefix": "/alb"}, "Storage input 'alb_log_prefix': is '/alb'; use path segments"),
        ({"access_log_prefix": "logs/"}, "Storage input 'access_log_prefix': is 'logs/'; use path segments"),
        ({"access_log_prefix": ""}, "Storage input 'access_log_prefix': is ''; use path segments"),
        ({"alb_log_prefix": "x/AWSLogs"}, "Storage input 'alb_log_prefix': must not contain 'AWSLogs'"),
        ({"alb_log_prefix": "logs", "access_log_prefix": "logs/s3"}, "'logs/s3' overlaps alb_log_prefix 'logs'"),
        ({"alb_log_prefix": "same", "access_log_prefix": "same"}, "'same' overlaps alb_log_prefix 'same'"),
    ],
)
def test_incompatible_inputs_are_rejected_when_the_blueprint_is_made(inputs, message):
    with pytest.raises(InputError, match=re.escape(message)):
        _storage(**inputs)


def test_gate_zero_cfn_lint_and_checkov_findings(tmp_path: Path):
    stack, _ = _with_reader()
    text = stack.to_json()
    findings = cfn_lint(text, ["eu-west-1", "eu-central-1", "us-east-1"], file="t.json")
    assert not findings, "\n".join(map(str, findings))
    path = tmp_path / "t.json"
    path.write_text(text)
    findings = checkov([path], root=tmp_path)
    assert not findings, "\n".join(map(str, findings))
