"""Build artifacts the stack's instances install, and put them where the stack says.

A blueprint records an artifact in the template with :meth:`cfnbuild.Stack.add_artifact`: the
parameter that carries its S3 key, the logical ID of the bucket it goes to (a bucket the stack
itself creates), and the builder (``"package.module:function"``, called as
``builder(project_root, out_dir, prefix=prefix)`` and returning an object with ``path`` and
``key``). Keys are content-addressed, so the key is known before the bucket exists and an
unchanged build uploads nothing.

The bucket may also be one another stack of the project makes (the data stack's assets bucket,
taken with :meth:`cfnbuild.Stack.use_resource`): the record then names the parameter carrying its
name (``bucket_parameter``), whose value the deploy knows before this stack's change set runs
(the upstream stack is deployed first), so the upload happens before the execution.

A stack may also take the bucket as a parameter, for launches that do not go through ``deploy``
(a Service Catalog product): :func:`bucket_parameter` names it (``AppArtifactKey`` →
``AppArtifactBucket``), with Default ``""`` meaning the recorded bucket. ``deploy`` leaves it
empty; ``cfnbuild export --service-catalog --upload`` stages the artifact and sets it.

On a stack's first deploy the bucket does not exist until the stack makes it: the upload then
happens while the deploy is watched, the moment the bucket's CREATE_COMPLETE event arrives (the
instances wait for their artifact), and once more after success in case no resource events
were seen (the emulator emits none).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from cfnbuild.build.stateful import METADATA_KEY
from cfnbuild.deploy.aws import error_code
from cfnbuild.deploy.events import Reporter
from cfnbuild.errors import UsageError
from cfnbuild.files import read_cache_entry, shape_problem, write_cache_entry
from cfnbuild.project.app import put_first_on_path
from cfnbuild.project.record import FORMAT, file_sha256, fingerprint_inputs, inputs_hold, inputs_problem, recording

ARTIFACTS_KEY = "artifacts"
RECORD_NAME = "record.json"  # beside the built artifact, in the cache


@dataclass
class BuiltArtifact:
    """A built artifact waiting for its bucket."""

    parameter: str
    bucket: str  # logical ID of a bucket of the stack ("" when bucket_parameter names it)
    path: Path
    key: str
    uploaded_to: str | None = None
    bucket_parameter: str = ""  # the parameter carrying the name of a bucket of another stack


def recorded_artifacts(template: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Parameter → {bucket or bucket_parameter, builder, prefix}, as the template records them."""
    metadata = (template.get("Metadata") or {}).get(METADATA_KEY) or {}
    return dict(metadata.get(ARTIFACTS_KEY) or {})


def _elsewhere(spec: Mapping[str, str]) -> dict[str, str]:
    """``bucket_parameter`` of a recorded artifact whose bucket another stack makes (none otherwise)."""
    return {"bucket_parameter": spec["bucket_parameter"]} if spec.get("bucket_parameter") else {}


def bucket_parameter(parameter: str) -> str:
    """The parameter naming another bucket for the artifact whose key ``parameter`` carries: ``XKey`` → ``XBucket``."""
    if not parameter.endswith("Key") or parameter == "Key":
        raise UsageError(
            f"artifact parameter {parameter!r}: name it <Something>Key, so its bucket is <Something>Bucket"
        )
    return parameter.removesuffix("Key") + "Bucket"


def build(template: Mapping[str, Any], *, project_root: Path, cache_dir: Path, skip: set[str]) -> list[BuiltArtifact]:
    """Build every recorded artifact whose parameter is not in ``skip`` (given explicitly).

    Each build is recorded like a template's (:mod:`cfnbuild.project.record`): the files it read, the
    directories it listed and the modules loaded, with the artifact's key and SHA-256. While that
    record holds the artifact is not built again (nor its builder imported): same inputs, same bytes.
    """
    built = []
    for parameter, spec in sorted(recorded_artifacts(template).items()):
        if parameter in skip:
            continue
        out_dir = cache_dir / parameter
        cached = _recorded(out_dir, project_root, spec)
        if cached is not None:
            path, key = cached
            built.append(BuiltArtifact(parameter, spec.get("bucket", ""), path, key, **_elsewhere(spec)))
            continue
        with recording():  # what the builder reads: the record's inputs
            artifact = _run_builder(parameter, spec, project_root, out_dir)
        built.append(
            BuiltArtifact(parameter, spec.get("bucket", ""), Path(artifact.path), str(artifact.key), **_elsewhere(spec))
        )
        _record(out_dir, project_root, spec, built[-1])
    return built


def _run_builder(parameter: str, spec: Mapping[str, str], project_root: Path, out_dir: Path) -> Any:
    module_name, _, function = spec["builder"].partition(":")
    put_first_on_path(project_root)  # the builder is project code, like the app
    try:
        builder = getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"artifact {parameter}: builder {spec['builder']!r} cannot be loaded ({exc})") from None
    try:
        return builder(project_root, out_dir, prefix=spec["prefix"])
    except Exception as exc:  # the builder's own error says what to change
        raise UsageError(f"artifact {parameter}: {exc}") from None


_RECORD_SHAPE: dict[str, type] = {"path": str, "key": str, "sha256": str, "builder": str, "prefix": str}


def _recorded(out_dir: Path, project_root: Path, spec: Mapping[str, str]) -> tuple[Path, str] | None:
    """The path and key of the artifact built before from the same inputs, if its record holds.

    A record that cannot be read or is not one cfnbuild wrote is warned about once and is no
    record: the artifact is built again and the record overwritten.
    """
    record = out_dir / RECORD_NAME
    data = read_cache_entry(record, _record_problem)
    if data is None:
        return None
    same_builder = (data.get("builder"), data.get("prefix")) == (spec["builder"], spec["prefix"])
    if not same_builder or not inputs_hold(data, project_root):
        return None
    path = Path(data["path"])
    if file_sha256(path) != data["sha256"]:
        return None
    return path, str(data["key"])


def _record_problem(data: Any) -> str | None:
    """What is wrong with an artifact record's shape, or ``None``."""
    problem = inputs_problem(data)
    if problem is None and data["format"] == FORMAT:
        problem = shape_problem(data, _RECORD_SHAPE)
    return problem


def _record(out_dir: Path, project_root: Path, spec: Mapping[str, str], artifact: BuiltArtifact) -> None:
    record = {
        **fingerprint_inputs(project_root),
        "builder": spec["builder"],
        "prefix": spec["prefix"],
        "path": str(artifact.path.resolve()),
        "key": artifact.key,
        "sha256": file_sha256(artifact.path),
    }
    write_cache_entry(out_dir / RECORD_NAME, json.dumps(record, sort_keys=True, indent=0))


def upload(
    s3: Any, bucket_name: str, artifact: BuiltArtifact, *, new_bucket: bool = False, expected_owner: str | None = None
) -> bool:
    """Put the artifact in the bucket unless the same key is there; return whether it uploaded.

    ``new_bucket``: the bucket was just created, so nothing is there to look for first.
    ``expected_owner``: the account the bucket must belong to (S3 refuses the calls otherwise).
    """
    artifact.uploaded_to = bucket_name
    owner = {"ExpectedBucketOwner": expected_owner} if expected_owner else {}
    if not new_bucket:
        try:
            s3.head_object(Bucket=bucket_name, Key=artifact.key, **owner)
            return False
        except ClientError as exc:
            if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
                raise
    body = artifact.path.read_bytes()
    s3.put_object(Bucket=bucket_name, Key=artifact.key, Body=body, ServerSideEncryption="AES256", **owner)
    return True


@dataclass
class UploadOnBucketReady:
    """A reporter that uploads each artifact as soon as its bucket is created, then reports on."""

    inner: Reporter
    s3: Any
    pending: list[BuiltArtifact]
    say: Any
    done: list[BuiltArtifact] = field(default_factory=list)

    def event(self, event: Mapping[str, Any], duration: float | None) -> None:
        """Pass the event on; when it completes a pending artifact's bucket, upload."""
        self.inner.event(event, duration)
        if event.get("ResourceStatus") not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            return
        for artifact in list(self.pending):
            if (
                artifact.bucket
                and event.get("LogicalResourceId") == artifact.bucket
                and event.get("PhysicalResourceId")
            ):
                created = event.get("ResourceStatus") == "CREATE_COMPLETE"
                if upload(self.s3, str(event["PhysicalResourceId"]), artifact, new_bucket=created):
                    self.say(f"uploaded {artifact.parameter} to s3://{event['PhysicalResourceId']}/{artifact.key}")
                self.pending.remove(artifact)
                self.done.append(artifact)

    def waiting(self, status: str, elapsed: float) -> None:
        """Pass the heartbeat on."""
        self.inner.waiting(status, elapsed)

    def close(self) -> None:
        """Close the inner reporter."""
        self.inner.close()
