"""What the export writes and where: its directory, files and staging key, and the JSON they hold.

The export lives in ``output/service-catalog/`` of the project; the staging bucket holds each
product template at ``service-catalog/<sha256>/product.json``. Every part of the export refuses
with :class:`CatalogError`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cfnbuild.errors import UsageError
from cfnbuild.project.app import Project

CATALOG_DIR = "service-catalog"  # under the project's output directory
KEY_PREFIX = "service-catalog"  # in the staging bucket: service-catalog/<sha256>/product.json
PRODUCT_FILE = "product.json"
PORTFOLIO_FILE = "portfolio.json"
MANIFEST_FILE = "manifest.json"
VERSIONS_FILE = "versions.json"
STACK_SUFFIX = "catalog"  # the portfolio stack: <stack name>-catalog


class CatalogError(UsageError):
    """The export cannot be made from what the project holds; the message says what to change."""


def json_text(document: Any) -> str:
    """``document`` as the export writes it: the same JSON layout as ``build`` writes."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def project_path(project: Project, path: Path) -> str:
    """``path`` as messages show it: relative to the project's root when it lies under it."""
    try:
        return str(path.relative_to(project.root))
    except ValueError:
        return str(path)
