"""The export: every file of ``output/service-catalog/`` rendered and checked, then written.

:func:`build_export` reads the template ``build`` wrote (``output/<env>/<stack>.json``, refused
when missing or stale, as ``deploy`` refuses it), builds the app artifacts it records (each key
becomes the Default of its key parameter, so a changed app is a new version), makes the product
(:mod:`.product`), adds its version to the history, builds the portfolio (:mod:`.portfolio`)
and the manifest (product name, version, artifact description, the S3 key the product template
lives at, its hash, what the export added to the stack's template, what the launch role is and
is not granted, and the app artifacts the product installs). :func:`lint_export` puts both
templates through the gates of ``build``; :func:`write_export` writes each file atomically.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnbuild.build.lint import Finding, LintCache, skip_problems
from cfnbuild.build.provisioning import LaunchScope, ProvisioningActions
from cfnbuild.build.stack import Stack
from cfnbuild.deliver.catalog.form import SSM_TYPE
from cfnbuild.deliver.catalog.launch_role import (
    expansion_of,
    launch_scope,
    launched_types,
    template_transforms,
    transform_name,
)
from cfnbuild.deliver.catalog.layout import (
    CATALOG_DIR,
    KEY_PREFIX,
    MANIFEST_FILE,
    PORTFOLIO_FILE,
    PRODUCT_FILE,
    STACK_SUFFIX,
    VERSIONS_FILE,
    CatalogError,
    json_text,
    project_path,
)
from cfnbuild.deliver.catalog.portfolio import Portfolio, PortfolioInputs
from cfnbuild.deliver.catalog.product import History, Product, Version, product_template, project_version
from cfnbuild.deploy import artifacts
from cfnbuild.deploy.engine import CACHE_DIR
from cfnbuild.errors import UsageError
from cfnbuild.files import read_json, write_atomic
from cfnbuild.project.app import Project
from cfnbuild.project.config import EnvironmentConfig
from cfnbuild.project.writer import render, stale_files

DEFAULT_KEEP = 5
MAX_KEEP = 50  # Service Catalog allows 100 provisioning artifacts per product; leave room


@dataclass(frozen=True)
class Export:
    """Everything one export writes, rendered and checked, not yet written."""

    directory: Path
    environment: str
    stack: str
    stack_name: str
    product: Product
    product_sha256: str
    version: Version
    history: History
    portfolio: dict[str, Any]
    manifest: dict[str, Any]
    artifacts: tuple[artifacts.BuiltArtifact, ...] = ()
    artifact_buckets: dict[str, str] = field(default_factory=dict)

    def staged_product(self, bucket: str) -> str:
        """``product.json`` as staged in ``bucket``: each artifact's bucket parameter defaults to it."""
        if not self.artifacts:
            return self.product.text
        template: dict[str, Any] = json.loads(self.product.text)
        for artifact in self.artifacts:
            template["Parameters"][self.artifact_buckets[artifact.parameter]]["Default"] = bucket
        return json_text(template)

    @property
    def templates(self) -> dict[Path, str]:
        """The two templates (what the gates check) and their text."""
        return {
            self.directory / PRODUCT_FILE: self.product.text,
            self.directory / PORTFOLIO_FILE: json_text(self.portfolio),
        }

    @property
    def files(self) -> dict[Path, str]:
        """Each file and its text, in the order they are written."""
        return {
            **self.templates,
            self.directory / MANIFEST_FILE: json_text(self.manifest),
            self.directory / VERSIONS_FILE: self.history.text,
        }

    @property
    def catalog_stack_name(self) -> str:
        """The portfolio stack's name: ``<stack name>-catalog``."""
        return f"{self.stack_name}-{STACK_SUFFIX}"


def read_stack_template(project: Project, environment: str, stack: str) -> tuple[dict[str, Any], str]:
    """The template ``build`` wrote for ``stack``; refused when missing or stale, as ``deploy`` refuses it."""
    path = project.template_path(environment, stack)
    rel = project_path(project, path)
    # Read first: a damaged template is named with where it is damaged, not just called stale.
    template = read_json(path, root=project.root, environment=environment)
    rendered = [r for r in render(project, [environment]) if r.stack == stack]
    if any(problem.startswith(rel + ":") for problem in stale_files(project, rendered)):
        raise UsageError(
            f"{rel} is stale; run 'cfnbuild build --env {environment}' and review the diff before exporting"
        )
    return template, rel


def product_source(project: Project, environment: str, stack: str) -> tuple[dict[str, Any], str]:
    """The template the product ships, and how messages name it.

    A project that declares a catalog composition (``App.catalog``) ships that, rendered now from
    the same blueprints as its stacks: a catalog end user launches one product, and nothing there
    would fill one product's inputs from another's outputs. Any other project ships the template
    ``build`` wrote for ``stack``.
    """
    spec = project.app.catalog
    if spec is None:
        project.app.stack(stack)
        return read_stack_template(project, environment, stack)
    if stack != spec.name:
        raise UsageError(
            f"--stack {stack}: this project's Service Catalog product is its catalog composition {spec.name!r} "
            "(every stack in one, since a catalog user launches one product); leave --stack out"
        )
    rendered: dict[str, Any] = json.loads(spec.build(project.config(environment)).to_json())
    return rendered, f"the catalog composition {spec.name} of {environment}"


def describe_version(template: Mapping[str, Any], environment: str) -> str:
    """The artifact's description: the first line of the stack's Description, and the environment."""
    first = str(template.get("Description", "")).strip().splitlines()
    return f"{first[0] if first else 'cfnbuild stack'} ({environment})"


def ssm_parameter_names(template: Mapping[str, Any]) -> tuple[str, ...]:
    """Every SSM parameter the template's SSM-typed parameters may name (their allowed values, else their default).

    A parameter the blueprint constrains by AllowedPattern gives its default: the launch role
    can resolve that one, the one the launch form offers.
    """
    names: set[str] = set()
    for definition in template.get("Parameters", {}).values():
        if str(definition.get("Type", "")).startswith(SSM_TYPE):
            allowed = definition.get("AllowedValues") or ([definition["Default"]] if definition.get("Default") else [])
            names.update(str(v) for v in allowed)
    return tuple(sorted(names))


def build_export(project: Project, environment: str, stack: str, *, keep: int = DEFAULT_KEEP) -> Export:
    """Render every file of the export for ``stack`` in ``environment`` (nothing is written)."""
    if not 1 <= keep <= MAX_KEEP:
        raise UsageError(f"--keep {keep}: keep 1 to {MAX_KEEP} versions")
    config: EnvironmentConfig = project.config(environment)
    stack_template, source = product_source(project, environment, stack)
    built, buckets = build_artifacts(project, stack_template, source)
    for artifact in built:
        stack_template["Parameters"][artifact.parameter]["Default"] = artifact.key
    product = product_template(stack_template)
    sha = hashlib.sha256(product.text.encode("utf-8")).hexdigest()
    directory = project.output_dir / CATALOG_DIR
    description = describe_version(stack_template, environment)
    history = load_history(project, directory, environment, stack)
    version = history.find(sha) or new_version(project, sha, description)
    history = history.with_version(version, keep)
    stack_name = config.stack_name(stack)
    scope, resource_types = launch_needs(product, source)
    inputs = PortfolioInputs(
        product_name=stack_name,
        product_description=description,
        versions=history.versions,
        resource_types=resource_types,
        regions=tuple(config.regions),
        ssm_parameters=ssm_parameter_names(product.template),
        launch_scope=scope,
        display_name=f"{config.project} ({environment})"[:100],
        provider_name=(config.tags.get("Owner") or config.project)[:50],
    )
    offered, portfolio = build_portfolio(config, environment, stack, inputs, source)
    manifest = {
        "product": stack_name,
        "environment": environment,
        "stack": stack,
        "source": source,
        "version": version.version,
        "description": version.description,
        "template_sha256": sha,
        "key": version.key,
        "portfolio_stack": f"{stack_name}-{STACK_SUFFIX}",
        "regions": list(config.regions),
        "versions": [v.version for v in history.versions],
        "added_constraints": product.added_constraints,
        "added_rules": list(product.added_rules),
        "launch_role": launch_role_manifest(product, resource_types, scope, offered.provisioning),
    }
    if built:
        manifest["artifacts"] = artifacts_manifest(built, buckets)
    return Export(
        directory=directory,
        environment=environment,
        stack=stack,
        stack_name=stack_name,
        product=product,
        product_sha256=sha,
        version=version,
        history=history,
        portfolio=portfolio,
        manifest=manifest,
        artifacts=tuple(built),
        artifact_buckets=buckets,
    )


def load_history(project: Project, directory: Path, environment: str, stack: str) -> History:
    """The versions ``directory`` holds (none yet: an empty history); refused when they are another stack's."""
    versions_path = directory / VERSIONS_FILE
    history = History.load(versions_path, root=project.root)
    if history is None:
        return History(environment, stack)
    if (history.environment, history.stack) != (environment, stack):
        raise CatalogError(
            f"{project_path(project, versions_path)} holds the versions of {history.stack} in {history.environment}, "
            f"not of {stack} in {environment}; export with --env {history.environment} --stack {history.stack}, "
            f"or move {project_path(project, directory)}/ away to start the catalog of {stack} in {environment}"
        )
    return history


def new_version(project: Project, sha: str, description: str) -> Version:
    """The version a product template not offered yet becomes: the project's version and the template's hash."""
    return Version(
        version=f"{project_version(project)}+{sha[:12]}",
        template_sha256=sha,
        key=f"{KEY_PREFIX}/{sha}/{PRODUCT_FILE}",
        description=description,
    )


def launch_needs(product: Product, source: str) -> tuple[LaunchScope, tuple[str, ...]]:
    """What the launch role needs beyond the types (:func:`.launch_role.launch_scope`), and the types a launch makes."""
    try:
        return launch_scope(product.template), launched_types(product.template)
    except CatalogError as exc:
        raise CatalogError(f"{source}: {exc}") from None


def build_portfolio(
    config: EnvironmentConfig, environment: str, stack: str, inputs: PortfolioInputs, source: str
) -> tuple[Portfolio, dict[str, Any]]:
    """The portfolio blueprint, built in the stack ``<stack>-catalog``, and that stack's template."""
    catalog = Stack(
        f"{stack}-{STACK_SUFFIX}",
        description=f"Service Catalog portfolio offering {inputs.product_name} (built by cfnbuild)",
        project=config.project,
        environment=environment,
        tags=config.tags,
    )
    try:
        offered = Portfolio(catalog, inputs)
        return offered, catalog.to_dict()
    except ValueError as exc:  # a resource type whose permissions cannot be derived
        raise CatalogError(f"{source}: {exc}") from None


def launch_role_manifest(
    product: Product, resource_types: Sequence[str], scope: LaunchScope, provisioning: ProvisioningActions
) -> dict[str, Any]:
    """The manifest's ``launch_role``: what the role is granted, what it is not and why, and the transforms."""
    return {
        "resource_types": list(resource_types),
        "not_granted_unknown_to_iam": list(provisioning.unknown),
        "not_granted_unused": list(provisioning.unused),
        "services": list(scope.services or ()),
        "passes_roles_to": list(scope.passed_to),
        "keys_used_via": {service: list(actions) for service, actions in scope.key_uses},
        "transforms": {
            name: {
                "expands_to": list(expansion.resource_types),
                "change_sets_through": [transform_name(t) for t in (name, *expansion.transforms)],
                "applications": list(expansion.applications),
            }
            for name, expansion in zip(
                template_transforms(product.template), expansion_of(product.template), strict=True
            )
        },
    }


def artifacts_manifest(built: Sequence[artifacts.BuiltArtifact], buckets: Mapping[str, str]) -> dict[str, Any]:
    """The manifest's ``artifacts``: each app artifact's key and the parameter naming the bucket it is staged in."""
    return {
        a.parameter: {"key": a.key, "bucket_parameter": buckets[a.parameter], "staged_in": "the staging bucket"}
        for a in built
    }


def build_artifacts(
    project: Project, template: Mapping[str, Any], source: str
) -> tuple[list[artifacts.BuiltArtifact], dict[str, str]]:
    """Build every artifact the stack records; and, for each, the parameter naming the bucket it is staged in.

    Refused when the stack declares no such parameter (String, Default ``""``): a launched
    product could then only look in its own bucket, which starts empty.
    """
    declared: Mapping[str, Any] = template.get("Parameters", {})
    buckets: dict[str, str] = {}
    for parameter in sorted(artifacts.recorded_artifacts(template)):
        name = artifacts.bucket_parameter(parameter)
        definition = declared.get(name)
        if not definition or definition.get("Type") != "String" or definition.get("Default") != "":
            raise CatalogError(
                f"{source}: artifact {parameter} has no parameter {name} (Type String, Default ''), so a launched "
                f"product could look for it only in its own, empty bucket; add {name} in its blueprint and fetch "
                "the artifact from it when it is not empty"
            )
        buckets[parameter] = name
    built = artifacts.build(
        template, project_root=project.root, cache_dir=project.root / CACHE_DIR / "artifacts" / CATALOG_DIR, skip=set()
    )
    return built, buckets


def lint_export(project: Project, export: Export, regions: Sequence[str]) -> list[Finding]:
    """cfn-lint (E, W, I for ``regions``, cached like build's) and the skip-reason check over both templates."""
    cache = LintCache(project.root / CACHE_DIR / "cfn-lint")
    findings: list[Finding] = []
    for path, text in export.templates.items():
        rel = project_path(project, path)
        findings += cache.cfn_lint(text, regions, file=rel)
        findings += skip_problems(text, file=rel)
    return findings


def write_export(export: Export) -> list[Path]:
    """Write every file of the export (atomically each); return those that changed."""
    return [path for path, text in export.files.items() if write_atomic(path, text)]
