"""Artifacts reach the bucket the stack creates: before the deploy when it exists, the moment it
is created otherwise (the emulator emits no resource events, so that moment is scripted here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from cfnbuild.deploy.artifacts import (
    RECORD_NAME,
    BuiltArtifact,
    UploadOnBucketReady,
    build,
    recorded_artifacts,
    upload,
)
from cfnbuild.deploy.events import make_reporter
from cfnbuild.errors import UsageError

ROOT = Path(__file__).resolve().parents[3]


def test_the_webapp_template_records_its_artifact_for_the_data_stacks_assets_bucket_by_its_parameter():
    template = json.loads((ROOT / "output/dev/webapp.json").read_text())
    assert template["Metadata"]["cfnbuild"]["inputs"]["DataAssetsBucketName"] == {
        "output": "AssetsBucketName",
        "stack": "data",
    }
    assert recorded_artifacts(template) == {
        "AppArtifactKey": {
            "bucket_parameter": "DataAssetsBucketName",
            "builder": "blueprints.artifact:build_artifact",
            "prefix": "releases/",
        }
    }


def test_build_runs_the_recorded_builder_and_keys_are_content_addressed(tmp_path):
    template = json.loads((ROOT / "output/dev/webapp.json").read_text())
    first = build(template, project_root=ROOT, cache_dir=tmp_path / "a", skip=set())
    second = build(template, project_root=ROOT, cache_dir=tmp_path / "b", skip=set())
    assert [a.key for a in first] == [a.key for a in second]
    assert first[0].key.startswith("releases/")
    assert first[0].path.read_bytes() == second[0].path.read_bytes()


def test_an_artifact_built_from_unchanged_inputs_is_reused_and_a_changed_source_is_built_again(app_sources, tmp_path):
    template = json.loads((ROOT / "output/dev/webapp.json").read_text())
    project, cache = app_sources, tmp_path / "cache"
    (first,) = build(template, project_root=project, cache_dir=cache, skip=set())
    built_at = first.path.stat().st_mtime_ns
    (again,) = build(template, project_root=project, cache_dir=cache, skip=set())
    assert (again.key, again.path) == (first.key, first.path)
    assert again.path.stat().st_mtime_ns == built_at  # not written again: the record vouched for it

    (project / "flask_app/__init__.py").write_text((project / "flask_app/__init__.py").read_text() + "# edited\n")
    (changed,) = build(template, project_root=project, cache_dir=cache, skip=set())
    assert changed.key != first.key


def test_a_tampered_artifact_is_built_again(app_sources, tmp_path):
    template = json.loads((ROOT / "output/dev/webapp.json").read_text())
    project, cache = app_sources, tmp_path / "cache"
    (first,) = build(template, project_root=project, cache_dir=cache, skip=set())
    original = first.path.read_bytes()
    first.path.write_bytes(b"not the release")
    (again,) = build(template, project_root=project, cache_dir=cache, skip=set())
    assert again.key == first.key
    assert again.path.read_bytes() == original


def test_an_explicit_value_skips_the_build(tmp_path):
    template = json.loads((ROOT / "output/dev/webapp.json").read_text())
    assert build(template, project_root=ROOT, cache_dir=tmp_path, skip={"AppArtifactKey"}) == []


def test_an_unloadable_builder_names_the_artifact(tmp_path):
    template = {
        "Metadata": {
            "cfnbuild": {"artifacts": {"Key": {"bucket": "B", "builder": "nope.nothing:here", "prefix": "r/"}}}
        }
    }
    with pytest.raises(UsageError, match=r"artifact Key: builder 'nope\.nothing:here' cannot be loaded"):
        build(template, project_root=ROOT, cache_dir=tmp_path, skip=set())


def test_upload_happens_when_the_bucket_is_created_and_only_once(emulator, tmp_path):
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket="assets-upload-test", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    path = tmp_path / "app.tar.gz"
    path.write_bytes(b"release")
    artifact = BuiltArtifact("AppArtifactKey", "AssetsBucket", path, "releases/abc/app.tar.gz")
    said: list[str] = []
    reporter = UploadOnBucketReady(make_reporter(Console(record=True), live=False), s3, [artifact], said.append)
    reporter.event(
        {"LogicalResourceId": "Vpc", "ResourceStatus": "CREATE_COMPLETE", "ResourceType": "AWS::EC2::VPC"}, 1.0
    )
    assert reporter.pending == [artifact]
    bucket_done = {
        "LogicalResourceId": "AssetsBucket",
        "PhysicalResourceId": "assets-upload-test",
        "ResourceStatus": "CREATE_COMPLETE",
        "ResourceType": "AWS::S3::Bucket",
    }
    reporter.event(bucket_done, 2.0)
    assert reporter.pending == []
    assert s3.get_object(Bucket="assets-upload-test", Key="releases/abc/app.tar.gz")["Body"].read() == b"release"
    assert said == ["uploaded AppArtifactKey to s3://assets-upload-test/releases/abc/app.tar.gz"]
    assert upload(s3, "assets-upload-test", artifact) is False  # same key: nothing uploaded again


def test_the_bucket_parameter_of_a_key_parameter_is_named_after_it():
    from cfnbuild.deploy.artifacts import bucket_parameter

    assert bucket_parameter("AppArtifactKey") == "AppArtifactBucket"
    template = json.loads((ROOT / "output/dev/webapp.json").read_text())
    for parameter in recorded_artifacts(template):
        declared = template["Parameters"][bucket_parameter(parameter)]
        assert declared["Default"] == "", "deploy leaves it empty: the recorded bucket"
    with pytest.raises(UsageError, match="name it <Something>Key"):
        bucket_parameter("AppArtifact")


def test_the_staging_bucket_expires_staged_templates_but_keeps_releases(emulator):
    from cfnbuild.deploy.aws import Aws, Target
    from cfnbuild.deploy.staging import StagingBucket
    from cfnbuild.local.emulator import THROWAWAY_CREDENTIALS

    aws = Aws(Target("any", "eu-west-1", endpoint_url=emulator.endpoint_url, credentials=dict(THROWAWAY_CREDENTIALS)))
    staging = StagingBucket(aws)
    staging.ensure()
    rules = emulator.client("s3").get_bucket_lifecycle_configuration(Bucket=staging.name)["Rules"]
    expiring = [rule["Filter"].get("Prefix", "") for rule in rules if "Expiration" in rule]
    assert expiring == ["templates/"]  # releases/ (the instances' artifacts) never expire


def test_a_corrupt_artifact_record_is_a_miss_warned_once_and_overwritten(app_sources, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    template = json.loads((ROOT / "output/dev/webapp.json").read_text())
    project, cache = app_sources, tmp_path / "cache"
    (first,) = build(template, project_root=project, cache_dir=cache, skip=set())
    record = cache / "AppArtifactKey" / RECORD_NAME
    record.write_text('{"key": ')  # cut short
    (again,) = build(template, project_root=project, cache_dir=cache, skip=set())
    assert again.key == first.key
    assert capsys.readouterr().err == (
        f"warning: cache/AppArtifactKey/{RECORD_NAME} is not a valid cache entry "
        "(Expecting value: line 1 column 9); recomputing it\n"
    )
    assert json.loads(record.read_text())["key"] == first.key  # overwritten with a good record
    built_at = again.path.stat().st_mtime_ns
    (third,) = build(template, project_root=project, cache_dir=cache, skip=set())
    assert third.path.stat().st_mtime_ns == built_at  # the new record vouches for it
    assert capsys.readouterr().err == ""


def test_an_artifact_record_of_the_wrong_shape_names_what_is_wrong(app_sources, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    template = json.loads((ROOT / "output/dev/webapp.json").read_text())
    project, cache = app_sources, tmp_path / "cache"
    build(template, project_root=project, cache_dir=cache, skip=set())
    record = cache / "AppArtifactKey" / RECORD_NAME
    data = json.loads(record.read_text())
    data["sha256"] = None
    record.write_text(json.dumps(data))
    build(template, project_root=project, cache_dir=cache, skip=set())
    assert capsys.readouterr().err == (
        f"warning: cache/AppArtifactKey/{RECORD_NAME} is not a valid cache entry "
        "('sha256' is null, not a string); recomputing it\n"
    )
    assert isinstance(json.loads(record.read_text())["sha256"], str)
