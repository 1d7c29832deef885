"""cfn-lint's data files (resource schemas, IAM actions), read without importing cfn-lint.

Rendering reads the CloudFormation resource schemas cfn-lint ships (where a type keeps its tags,
what its handlers need) and cfn-lint's IAM action reference. Importing cfn-lint to reach them
costs about half a second of CPU and some 30 MiB (its package imports its whole runtime, sympy
among it), which a build already pays once in the lint server it forks workers from; so the
process that renders reads the same files directly, found the way cfn-lint's
``ProviderSchemaManager`` finds them (its bundled schemas, or the ones ``cfn-lint --update-specs``
downloaded when those are newer). ``tests/cfnbuild/build/test_cfn_data.py`` proves the schemas
read here equal the manager's.
"""

from __future__ import annotations

import json
import os
import sys
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any


@cache
def _package_dir() -> Path:
    """cfn-lint's package directory, found without running its ``__init__``."""
    spec = find_spec("cfnlint")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("reading cfn-lint's resource schemas: cfn-lint is not installed; pip install cfn-lint")
    return Path(next(iter(spec.submodule_search_locations)))


def _cache_dir() -> Path:
    """Where ``cfn-lint --update-specs`` keeps the schemas it downloads (``cfnlint.helpers.get_cache_dir``)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA", os.path.expanduser("~\\AppData\\Local"))
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))
    return Path(base, "aws", "cfn-lint", "schemas")


def _schema_date(directory: Path) -> str:
    try:
        with open(directory / "version.json", encoding="utf-8") as handle:
            return str(json.load(handle).get("schema_date", ""))
    except (FileNotFoundError, json.JSONDecodeError, AttributeError):
        return ""


def _has_providers(directory: Path) -> bool:
    providers = directory / "providers"
    return providers.exists() and any(providers.glob("*.json"))


@cache
def _schema_dir() -> Path:
    """The schema set cfn-lint uses: the newer of its bundled one and its downloaded one (as its manager picks)."""
    bundled = _package_dir() / "data" / "schemas"
    downloaded = _cache_dir()
    if _has_providers(bundled) and _has_providers(downloaded):
        return downloaded if _schema_date(downloaded) > _schema_date(bundled) else bundled
    return bundled if _has_providers(bundled) else downloaded


@cache
def _provider_types(region: str) -> dict[str, str]:
    """The schema file (a content hash) of each resource type in ``region``, SAM's types included."""
    providers = _schema_dir() / "providers"
    types: dict[str, str] = {}
    if (providers / "us-east-1.json").exists():
        path = providers / f"{region}.json"
        if not path.exists():
            path = providers / "us-east-1.json"
        with open(path, encoding="utf-8") as handle:
            types = json.load(handle)
    try:
        with open(providers / "sam.json", encoding="utf-8") as handle:
            types.update(json.load(handle))
    except FileNotFoundError:
        pass
    return types


def _normal_type(resource_type: str) -> str:
    if resource_type.startswith("Custom::"):
        return "AWS::CloudFormation::CustomResource"
    return resource_type


@cache
def resource_schema(region: str, resource_type: str) -> dict[str, Any] | None:
    """``resource_type``'s CloudFormation resource schema in ``region``, as cfn-lint has it; ``None`` if it has none.

    The returned dict is shared: do not change it.
    """
    digest = _provider_types(region).get(_normal_type(resource_type))
    if not digest:
        return None
    try:
        with open(_schema_dir() / "resources" / f"{digest}.json", encoding="utf-8") as handle:
            schema: dict[str, Any] = json.load(handle)
    except (OSError, json.JSONDecodeError):
        return None
    return schema


@cache
def iam_policies() -> dict[str, Any]:
    """cfn-lint's IAM reference (``cfnlint/data/AdditionalSpecs/Policies.json``): each service's actions."""
    with open(_package_dir() / "data" / "AdditionalSpecs" / "Policies.json", encoding="utf-8") as handle:
        policies: dict[str, Any] = json.load(handle)
    return policies
