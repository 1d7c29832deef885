"""The upload: stage the product template in the staging bucket and deploy the portfolio stack.

``--upload`` puts each app artifact and the product template into the staging bucket (both
content-addressed, so unchanged bytes are not uploaded again), refuses when a kept version new
to the portfolio has no template there, and creates or updates the portfolio stack
``<stack name>-catalog`` through the deploy engine (:class:`CatalogEngine`): the same no-op
check, plan, confirmation and event watching as ``cfnbuild deploy``.

A launched product starts with a new, empty bucket of its own, so its app artifacts are read
from the staging bucket: the staged template at ``service-catalog/<sha256>/product.json`` is
``product.json`` (whose hash the key holds) with the staging bucket's name as the Default of
each artifact's bucket parameter (:func:`cfnbuild.deploy.artifacts.bucket_parameter`). That
name holds the account and region, so it is set only in the staged copy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from cfnbuild.deliver.catalog.export import Export
from cfnbuild.deliver.catalog.layout import (
    PORTFOLIO_FILE,
    PRODUCT_FILE,
    VERSIONS_FILE,
    CatalogError,
    json_text,
    project_path,
)
from cfnbuild.deliver.catalog.portfolio import STAGING_BUCKET_PARAMETER
from cfnbuild.deploy import artifacts
from cfnbuild.deploy.aws import error_code
from cfnbuild.deploy.engine import (
    FAILED_CREATE_STATES,
    DeployedStack,
    Engine,
    Prepared,
    Refused,
    Request,
    _check_parameter,
)
from cfnbuild.deploy.staging import EXPIRY_DAYS, StagingBucket
from cfnbuild.errors import UsageError
from cfnbuild.files import write_atomic

CAPABILITIES = ["CAPABILITY_IAM"]


@dataclass
class CatalogEngine(Engine):
    """The deploy engine, pointed at the portfolio template instead of a project stack.

    Only what a project stack has and the portfolio has not is replaced: where the template and
    its parameters come from (:meth:`prepare`), the stack's name, and where the outputs go.
    The no-op check, plan, refusals, confirmation, execution and event watching are the
    engine's own.
    """

    catalog_stack: str = ""
    catalog_template: dict[str, Any] = field(default_factory=dict)
    catalog_parameters: dict[str, str] = field(default_factory=dict)
    catalog_tags: dict[str, str] = field(default_factory=dict)
    outputs_file: Path | None = None

    def stack_name(self, request: Request) -> str:
        """The portfolio stack's name."""
        return self.catalog_stack

    def prepare(self, request: Request, deployed: DeployedStack | None) -> Prepared:
        """The portfolio template, with its parameters: given, else as deployed, else their defaults."""
        template = self.catalog_template
        declared: Mapping[str, Any] = template.get("Parameters", {})
        for name in request.param_overrides:
            if name not in declared:
                known = ", ".join(sorted(set(declared) - set(self.catalog_parameters)))
                raise UsageError(f"--param {name}: {PORTFOLIO_FILE} has no parameter {name!r}; it has: {known}")
            if name in self.catalog_parameters:
                raise UsageError(f"--param {name}: cfnbuild export --upload sets {name} itself; leave it out")
        given = {**self.catalog_parameters, **request.param_overrides}
        values: dict[str, str] = {}
        previous: set[str] = set()
        for name, definition in sorted(declared.items()):
            if name in given:
                values[name] = given[name]
                _check_parameter(name, definition, values[name], f"--param {name}")
            elif deployed is not None and name in deployed.parameters:
                previous.add(name)  # an upload never reverts a value given to an earlier one
            elif "Default" not in definition:
                what = definition.get("ConstraintDescription") or definition.get("Description", "")
                raise UsageError(
                    f"{PORTFOLIO_FILE}: parameter {name} has no default and no value; "
                    f"pass --param {name}=VALUE ({what})"
                )
        body = json.dumps(template, sort_keys=True, separators=(",", ":"))
        return Prepared(
            template=template,
            body=body,
            template_hash=hashlib.sha256(body.encode()).hexdigest(),
            parameters=values,
            previous=frozenset(previous),
            tags=dict(self.catalog_tags),
            capabilities=list(CAPABILITIES),
            termination_protection=False,
            policy=None,
        )

    def _write_outputs(
        self, request: Request, stack_name: str, stack_id: str, outputs: Mapping[str, str], template: Mapping[str, Any]
    ) -> None:
        """Write the portfolio stack's outputs next to the export, one file per region."""
        if self.outputs_file is None:
            return
        declared = set(template.get("Outputs", {}))
        document: dict[str, Any] = {
            "StackName": stack_name,
            "StackId": stack_id,
            "Region": self.aws.target.region,
            "Outputs": dict(sorted(outputs.items())),
        }
        missing = sorted(declared - set(outputs))
        if missing:
            document["NotReturned"] = missing
        write_atomic(self.outputs_file, json_text(document))
        self.err.print(f"wrote {project_path(self.project, self.outputs_file)} ({len(outputs)} outputs)", markup=False)


def deployed_versions(engine: Engine, stack_name: str) -> set[str]:
    """The versions the deployed portfolio already offers (their artifacts exist, their templates were read)."""
    deployed = engine.describe(stack_name)
    if deployed is None or deployed.status in FAILED_CREATE_STATES:
        return set()  # nothing offered yet (a failed creation is deleted and made anew)
    template = engine.deployed_template(stack_name) or {}
    names: set[str] = set()
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::ServiceCatalog::CloudFormationProduct":
            for artifact in resource.get("Properties", {}).get("ProvisioningArtifactParameters", []):
                names.add(str(artifact.get("Name")))
    return names


def check_staged(staging: StagingBucket, export: Export, offered: set[str], *, versions_file: str) -> None:
    """Refuse when a version new to the portfolio has no template in the staging bucket (nothing changed yet).

    Service Catalog copies a template when it makes the artifact, so versions the deployed
    portfolio already offers (``offered``) need theirs no more.
    """
    missing = []
    for version in export.history.versions:
        if version.version in offered or version.template_sha256 == export.product_sha256:
            continue
        try:
            staging.s3.head_object(Bucket=staging.name, Key=version.key, ExpectedBucketOwner=staging.account)
        except ClientError as exc:
            if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
                raise
            missing.append(version)
    if missing:
        names = ", ".join(v.version for v in missing)
        raise Refused(
            f"version(s) {names} in {versions_file} have no template in s3://{staging.name} "
            f"(exported but never uploaded to {staging.aws.target.region}, or expired after {EXPIRY_DAYS} days), so "
            "their provisioning artifacts cannot be made; nothing was changed. Remove them from "
            f"{VERSIONS_FILE} and export again, or upload them from the commit that exported them"
        )


def stage(staging: StagingBucket, export: Export, say: Any) -> str:
    """Put the app artifacts and the product template in the staging bucket; return the template's key.

    Both are content-addressed (the artifact's key holds its hash, the template's the hash of
    ``product.json``), so what is there already is not uploaded again.
    """
    key = export.version.key
    text = export.product.text
    if hashlib.sha256(text.encode("utf-8")).hexdigest() != export.version.template_sha256 or not key.endswith(
        f"/{export.version.template_sha256}/{PRODUCT_FILE}"
    ):
        raise CatalogError(f"{PRODUCT_FILE} does not have the hash its key {key} names; export again")
    staging.ensure()
    for artifact in export.artifacts:
        uploaded = artifacts.upload(staging.s3, staging.name, artifact, expected_owner=staging.account)
        verb = "uploaded" if uploaded else "already staged:"
        say(f"{verb} {artifact.parameter} s3://{staging.name}/{artifact.key}")
    try:
        staging.s3.head_object(Bucket=staging.name, Key=key, ExpectedBucketOwner=staging.account)
    except ClientError as exc:
        if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
            raise
        body = export.staged_product(staging.name).encode("utf-8")
        staging.s3.put_object(
            Bucket=staging.name,
            Key=key,
            Body=body,
            ServerSideEncryption="AES256",
            ExpectedBucketOwner=staging.account,
        )
    return key


def upload(engine: CatalogEngine, export: Export, request: Request) -> dict[str, str]:
    """Stage the artifacts and the product template (unchanged ones are not uploaded) and deploy the portfolio."""
    staging = StagingBucket(engine.aws)
    key = stage(staging, export, lambda line: engine.err.print(line, markup=False))
    engine.err.print(f"product template {export.version.version} is at s3://{staging.name}/{key}", markup=False)
    versions_file = project_path(engine.project, export.directory / VERSIONS_FILE)
    check_staged(staging, export, deployed_versions(engine, export.catalog_stack_name), versions_file=versions_file)
    engine.catalog_parameters[STAGING_BUCKET_PARAMETER] = staging.name
    return engine.deploy(request)
