"""Service Catalog export: one stack of the project as a product, in a portfolio that offers it.

``cfnbuild export --service-catalog [--env ENV] [--upload]`` (the command is
:mod:`cfnbuild.cli.export`) reads the template ``build`` wrote and writes, atomically and
deterministically, ``output/service-catalog/``: ``product.json`` (that template with a launch
form), ``portfolio.json`` (the portfolio, its product with a provisioning artifact per kept
version, the principal that may launch it, and the launch role constraint), ``manifest.json``
(what was exported and what the export added) and ``versions.json`` (the versions the portfolio
offers). Both templates pass the gates of ``build`` before anything is written; ``--upload``
stages the product template and deploys the portfolio stack through the deploy engine.

Where each part lives:

- :mod:`.form` — the launch form: parameter groups by concern, labels, the constraints read from
  the resource schemas (or conservative ones by type and name), rules for paired parameters.
- :mod:`.product` — the product template (the stack's template with the form), its versions
  (``versions.json``) and the project's version.
- :mod:`.launch_role` — the Service Catalog launch role's permissions: what a launch makes
  (transforms and their expansions), the services of its types, the roles it passes and the
  policies they attach, the KMS keys it uses (:func:`.launch_role.launch_scope`).
- :mod:`.portfolio` — the portfolio blueprint (:class:`.portfolio.Portfolio`): portfolio,
  product, principal, and the launch role with its constraint.
- :mod:`.export` — rendering every file of the export (:func:`.export.build_export`), the app
  artifacts, the lint gate and the writing.
- :mod:`.upload` — staging in the staging bucket and deploying the portfolio stack
  (:class:`.upload.CatalogEngine`).
- :mod:`.layout` (the directory, files, staging key, JSON layout and :class:`CatalogError`) and
  :mod:`.template` (what a template refers to, the resource schemas) serve them all.

Imports go one way: :mod:`.layout` and :mod:`.template` are used by the rest; :mod:`.form` by
:mod:`.product`; :mod:`.product` and :mod:`.launch_role` by :mod:`.portfolio`; all of them by
:mod:`.export`, and that by :mod:`.upload`. Nothing here imports the CLI.

AWS references: AWS::CloudFormation::Interface
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-cloudformation-interface.html),
template Rules (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html),
launch roles (https://docs.aws.amazon.com/servicecatalog/latest/adminguide/constraints-launch.html).
"""

from cfnbuild.deliver.catalog.export import (
    DEFAULT_KEEP,
    MAX_KEEP,
    Export,
    build_artifacts,
    build_export,
    lint_export,
    write_export,
)
from cfnbuild.deliver.catalog.form import INTERFACE, interface, paired_parameter_rules, parameter_label
from cfnbuild.deliver.catalog.launch_role import (
    KMS_USE_BY_SERVICE,
    SERVICE_CATALOG_STACKS,
    TRANSFORM_EXPANSIONS,
    Expansion,
    launch_scope,
    launched_types,
    product_services,
    service_of_type,
)
from cfnbuild.deliver.catalog.layout import (
    CATALOG_DIR,
    KEY_PREFIX,
    MANIFEST_FILE,
    PORTFOLIO_FILE,
    PRODUCT_FILE,
    VERSIONS_FILE,
    CatalogError,
)
from cfnbuild.deliver.catalog.portfolio import PROVISIONING_SKIPS, Portfolio, PortfolioInputs
from cfnbuild.deliver.catalog.product import History, Product, Version, product_template, project_version
from cfnbuild.deliver.catalog.template import references
from cfnbuild.deliver.catalog.upload import CatalogEngine, stage, upload

__all__ = [
    "CATALOG_DIR",
    "DEFAULT_KEEP",
    "INTERFACE",
    "KEY_PREFIX",
    "KMS_USE_BY_SERVICE",
    "MANIFEST_FILE",
    "MAX_KEEP",
    "PORTFOLIO_FILE",
    "PRODUCT_FILE",
    "PROVISIONING_SKIPS",
    "SERVICE_CATALOG_STACKS",
    "TRANSFORM_EXPANSIONS",
    "VERSIONS_FILE",
    "CatalogEngine",
    "CatalogError",
    "Expansion",
    "Export",
    "History",
    "Portfolio",
    "PortfolioInputs",
    "Product",
    "Version",
    "build_artifacts",
    "build_export",
    "interface",
    "launch_scope",
    "launched_types",
    "lint_export",
    "paired_parameter_rules",
    "parameter_label",
    "product_services",
    "product_template",
    "project_version",
    "references",
    "service_of_type",
    "stage",
    "upload",
    "write_export",
]
