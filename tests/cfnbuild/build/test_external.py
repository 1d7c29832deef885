"""A handle on a resource of another stack: grants and artifacts scope to exactly it, by the parameters carrying it."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from troposphere import Parameter, s3

from cfnbuild import Blueprint, ServiceRole, Stack
from cfnbuild.build.external import StackResource, arn_of, ref_of, type_of
from cfnbuild.build.grants import Grants, bucket_arn, grant_bucket_prefixes
from cfnbuild.errors import InputError


def _stack(name: str = "webapp") -> Stack:
    return Stack(name, description="test", project="p", environment="dev")


@dataclass(frozen=True)
class _NoInputs:
    """A blueprint of this test takes nothing."""


class _Role(Blueprint[_NoInputs]):
    """A role granted access to the resources of another stack it is given."""

    def __init__(self, stack: Stack, resources: dict[str, StackResource]) -> None:
        self.resources = resources
        super().__init__(stack, _NoInputs())

    def build(self) -> None:
        role = ServiceRole(self, "App", services=["ec2.amazonaws.com"])
        grant_bucket_prefixes(role, self.resources["bucket"], read=["releases/"], read_write=["uploads/"])
        role.grant_secret_read(self.resources["secret"])
        role.grant_key_decrypt(self.resources["key"])
        role.grant_log_group_write(self.resources["logs"])


def _handles(stack: Stack) -> dict[str, StackResource]:
    return {
        "bucket": stack.use_resource(
            "data", "AssetsBucket", "AWS::S3::Bucket", ref="AssetsBucketName", arn="AssetsBucketArn"
        ),
        "secret": stack.use_resource("data", "DbSecret", "AWS::SecretsManager::Secret", ref="DbSecretArn"),
        "key": stack.use_resource("network", "LogsKey", "AWS::KMS::Key", ref="LogsKeyArn", arn="LogsKeyArn"),
        "logs": stack.use_resource("data", "AppLogGroup", "AWS::Logs::LogGroup", ref="AppLogGroupName"),
    }


def test_use_resource_takes_its_values_as_stack_use_parameters_recorded_as_inputs():
    stack = _stack()
    handle = stack.use_resource(
        "data", "AssetsBucket", "AWS::S3::Bucket", ref="AssetsBucketName", arn="AssetsBucketArn"
    )
    assert handle == StackResource(
        "data", "AssetsBucket", "AWS::S3::Bucket", "DataAssetsBucketName", "DataAssetsBucketArn"
    )
    rendered = stack.to_dict()
    assert rendered["Metadata"]["cfnbuild"]["inputs"] == {
        "DataAssetsBucketArn": {"output": "AssetsBucketArn", "stack": "data"},
        "DataAssetsBucketName": {"output": "AssetsBucketName", "stack": "data"},
    }
    assert rendered["Parameters"]["DataAssetsBucketName"]["Type"] == "String"
    assert (handle.title, type_of(handle)) == ("AssetsBucket", "AWS::S3::Bucket")
    assert ref_of(handle).to_dict() == {"Ref": "DataAssetsBucketName"}
    assert arn_of(handle).to_dict() == {"Ref": "DataAssetsBucketArn"}


def test_grants_on_handles_name_exactly_those_resources_by_the_parameters_never_a_wildcard_resource():
    stack = _stack()
    _Role(stack, _handles(stack))
    statements = stack.to_dict()["Resources"]["AppRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    resources = {statement["Sid"]: statement["Resource"] for statement in statements}
    assert resources["GrantListBucketAssetsBucket"] == [{"Ref": "DataAssetsBucketArn"}]
    assert resources["GrantReadObjectsAssetsBucketReleases"] == [{"Fn::Sub": "${DataAssetsBucketArn}/releases/*"}]
    assert resources["GrantWriteObjectsAssetsBucketUploads"] == [{"Fn::Sub": "${DataAssetsBucketArn}/uploads/*"}]
    assert resources["GrantReadSecretDbSecret"] == [{"Ref": "DataDbSecretArn"}]
    assert resources["GrantDecryptWithLogsKey"] == [{"Ref": "NetworkLogsKeyArn"}]
    assert resources["GrantWriteLogsAppLogGroup"] == [
        {
            "Fn::Sub": [
                "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${LogGroup}:*",
                {"LogGroup": {"Ref": "DataAppLogGroupName"}},
            ]
        }
    ]
    assert "*" not in [resource for listed in resources.values() for resource in listed]


def test_a_handle_without_an_arn_output_refuses_its_arn_unless_its_ref_is_the_arn():
    stack = _stack()
    secret = stack.use_resource("data", "DbSecret", "AWS::SecretsManager::Secret", ref="DbSecretArn")
    logs = stack.use_resource("data", "AppLogGroup", "AWS::Logs::LogGroup", ref="AppLogGroupName")
    assert secret.arn.to_dict() == {"Ref": "DataDbSecretArn"}
    with pytest.raises(ValueError, match=r"^AppLogGroup of stack data: no output carries its ARN; pass arn="):
        _ = logs.arn
    with pytest.raises(ValueError, match="is a AWS::Logs::LogGroup, not a bucket"):
        bucket_arn(logs, "x/*")


def test_the_same_grant_on_a_handle_and_on_the_resource_itself_has_the_same_statement_id():
    here, there = Grants(), Grants()
    here.grant_key_decrypt(
        StackResource("network", "LogsKey", "AWS::KMS::Key", "NetworkLogsKeyArn", "NetworkLogsKeyArn")
    )
    stack = _stack("network")
    bucket = stack.add_resource(s3.Bucket("LogsKey"), owner="test")  # any resource titled LogsKey
    there.grant_bucket_read(bucket)
    assert here.statements[0].Sid == "GrantDecryptWithLogsKey"
    assert json.dumps(bucket_arn(bucket).to_dict()) == '{"Fn::GetAtt": ["LogsKey", "Arn"]}'


def test_an_artifact_for_a_bucket_of_another_stack_is_recorded_by_the_parameter_carrying_its_name():
    stack = _stack()
    stack.add_parameter(Parameter("AppArtifactKey", Type="String", Default=""), owner="test")
    bucket = stack.use_resource("data", "AssetsBucket", "AWS::S3::Bucket", ref="AssetsBucketName")
    stack.add_artifact("AppArtifactKey", bucket=bucket, builder="pkg.mod:build", prefix="releases/")
    assert stack.to_dict()["Metadata"]["cfnbuild"]["artifacts"] == {
        "AppArtifactKey": {
            "bucket_parameter": "DataAssetsBucketName",
            "builder": "pkg.mod:build",
            "prefix": "releases/",
        }
    }


def test_an_artifact_for_a_handle_that_is_no_bucket_is_refused():
    stack = _stack()
    stack.add_parameter(Parameter("AppArtifactKey", Type="String", Default=""), owner="test")
    secret = stack.use_resource("data", "DbSecret", "AWS::SecretsManager::Secret", ref="DbSecretArn")
    with pytest.raises(InputError, match="the bucket must be an AWS::S3::Bucket of this stack or a handle on one"):
        stack.add_artifact("AppArtifactKey", bucket=secret, builder="pkg.mod:build", prefix="releases/")
