"""The product: the stack's template made launchable, and the versions the portfolio offers.

:func:`product_template` is the stack's template with the launch form (:mod:`.form`) added;
:class:`History` is ``versions.json``, the versions the portfolio offers (the last ``--keep``),
committed, so the portfolio template lists every kept version and an unchanged product adds none.
"""

from __future__ import annotations

import importlib.metadata
import json
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cfnbuild.deliver.catalog.form import (
    INTERFACE,
    added_constraint,
    interface,
    is_constrained,
    paired_parameter_rules,
    property_schemas,
    schema_constraint,
)
from cfnbuild.deliver.catalog.layout import CatalogError, json_text
from cfnbuild.files import os_reason
from cfnbuild.project.app import Project


@dataclass(frozen=True)
class Product:
    """The product template and what the export added to the stack's template."""

    template: dict[str, Any]
    added_constraints: dict[str, str]
    added_rules: tuple[str, ...]

    @property
    def text(self) -> str:
        """The template as written: the same JSON layout as ``build`` writes."""
        return json_text(self.template)


def product_template(stack_template: Mapping[str, Any]) -> Product:
    """The stack's template with the launch-form interface, a constraint on every parameter, and generic rules."""
    template: dict[str, Any] = json.loads(json.dumps(stack_template))
    added: dict[str, str] = {}
    uses = property_schemas(template)
    for name, definition in sorted(template.get("Parameters", {}).items()):
        if not is_constrained(definition):
            derived = schema_constraint(name, definition, uses.get(name, []))
            constraint, note = derived or added_constraint(name, definition)
            definition.update(constraint)
            added[name] = note
    rules = paired_parameter_rules(template)
    if rules:
        template["Rules"] = dict(sorted({**template.get("Rules", {}), **rules}.items()))
    if template.get("Parameters"):
        metadata = template.setdefault("Metadata", {})
        metadata[INTERFACE] = interface(template)
    return Product(template, added, tuple(sorted(rules)))


# ------------------------------------------------------------------------------ versions


@dataclass(frozen=True)
class Version:
    """One version of the product: a provisioning artifact of the portfolio's product."""

    version: str
    template_sha256: str
    key: str
    description: str


@dataclass(frozen=True)
class History:
    """``versions.json``: which product the directory holds, and the versions the portfolio offers (oldest first)."""

    environment: str
    stack: str
    versions: tuple[Version, ...] = ()

    @classmethod
    def load(cls, path: Path, *, root: Path) -> History | None:
        """Read ``versions.json``; None when there is none yet."""
        if not path.is_file():
            return None
        rel = path.relative_to(root)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            versions = tuple(Version(**item) for item in data["versions"])
            return cls(str(data["environment"]), str(data["stack"]), versions)
        except OSError as exc:
            raise CatalogError(f"cannot read {rel}: {os_reason(exc)}; restore it from version control") from None
        except (ValueError, KeyError, TypeError) as exc:  # ValueError: not JSON, or not UTF-8
            raise CatalogError(
                f"{rel} is not a versions file cfnbuild wrote ({exc}); restore it from version control"
            ) from None

    def with_version(self, version: Version, keep: int) -> History:
        """The history with ``version`` (unless its template is already offered), keeping ``keep`` in all.

        ``version`` itself is always kept (an older template exported again is offered again);
        of the others, the newest.
        """
        current = version.template_sha256
        known = any(v.template_sha256 == current for v in self.versions)
        listed = self.versions if known else (*self.versions, version)
        others = [v for v in listed if v.template_sha256 != current]
        chosen = set(others[max(0, len(others) - keep + 1) :])
        return History(
            self.environment, self.stack, tuple(v for v in listed if v.template_sha256 == current or v in chosen)
        )

    def find(self, sha256: str) -> Version | None:
        """The version whose template has this hash."""
        return next((v for v in self.versions if v.template_sha256 == sha256), None)

    @property
    def text(self) -> str:
        """The file's JSON."""
        return json_text(
            {"environment": self.environment, "stack": self.stack, "versions": [asdict(v) for v in self.versions]}
        )


def project_version(project: Project) -> str:
    """The project's version: ``[project] version`` of its pyproject.toml, else its installed distribution's.

    The project's version (not cfnbuild's) is what the product's authors bump; ``0.0.0`` when
    the project declares none.
    """
    pyproject = project.root / "pyproject.toml"
    try:
        metadata = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        metadata = {}
    if isinstance(metadata.get("version"), str):
        return str(metadata["version"])
    if isinstance(metadata.get("name"), str):
        try:
            return importlib.metadata.version(metadata["name"])
        except importlib.metadata.PackageNotFoundError:
            pass
    return "0.0.0"
