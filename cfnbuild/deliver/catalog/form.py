"""Service Catalog export: one stack of the project as a product, in a portfolio that offers it.

``cfnbuild export --service-catalog [--env ENV] [--upload]`` reads the template ``build`` wrote
(``output/<env>/<stack>.json``, refused when missing or stale, as ``deploy`` does) and writes,
atomically and deterministically, ``output/service-catalog/``:

- ``product.json``: that template, plus what a catalog's end users see when they launch it —
  ``Metadata.AWS::CloudFormation::Interface`` (a parameter group per concern, a label for every
  parameter), a constraint on every parameter (where the stack has none: what the resource
  properties the parameter is given to accept, read from the resource schemas cfn-lint ships,
  else a conservative one by type and name; each listed in the manifest so the blueprint can
  own it), and the stack's Rules plus the generic ones derived from its Conditions.
- ``portfolio.json``: a template with the portfolio, the product (a provisioning artifact per
  kept version), their association, the principal that may launch it (a parameter) and a launch
  role constraint whose role is granted exactly what the product's resource types need (derived
  from the resource schemas cfn-lint ships; see :func:`cfnbuild.build.grants.grant_provisioning`).
- ``manifest.json``: product name, version, artifact description, the S3 key the product
  template lives at (content-addressed, in the staging bucket), its hash, what the export
  added to the stack's template, and the app artifacts the product installs.
- ``versions.json``: the versions the portfolio offers (the last ``--keep``), committed, so the
  portfolio template lists every kept version and an unchanged product adds none.

A launched product starts with a new, empty bucket of its own, so the app artifacts the stack
records (:func:`cfnbuild.deploy.artifacts.recorded_artifacts`) cannot be uploaded there the way
``deploy`` does. The export builds each one (deterministic: its key holds its content hash) and
makes its key the Default of its key parameter in ``product.json``, so a changed app is a new
version; ``--upload`` puts the artifact in the staging bucket under that key and stages the
product with the staging bucket's name as the Default of the artifact's bucket parameter
(:func:`cfnbuild.deploy.artifacts.bucket_parameter`). That name holds the account and region, so
it is set only in the staged copy: the staged template at ``service-catalog/<sha256>/product.json``
is ``product.json`` (whose hash the key holds) with that one Default, a function of the key and
the bucket it lies in.

Both templates pass the gates of ``build`` before anything is written (cfn-lint E, W and I for
every region of the config; checkov skips only in Metadata with reasons). ``--upload`` puts the
product template into the staging bucket (unchanged bytes are not uploaded again) and creates or
updates the portfolio stack ``<stack name>-catalog`` through the deploy engine: the same no-op
check, plan, confirmation and event watching as ``cfnbuild deploy``.

AWS references: AWS::CloudFormation::Interface
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-cloudformation-interface.html),
template Rules (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html),
launch roles (https://docs.aws.amazon.com/servicecatalog/latest/adminguide/constraints-launch.html).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import tomllib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import ClientError
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
from cfnlint.schema.manager import ResourceNotFoundError
from troposphere import GetAtt, Ref, Sub, encode_to_dict, servicecatalog

from cfnbuild.build.blueprint import Blueprint
from cfnbuild.build.grants import (
    LaunchScope,
    ProvisioningActions,
    ServiceRole,
    grant_provisioning,
    grant_service_catalog_template_read,
    grant_ssm_parameters_read,
    grant_stack_operations,
    provisioning_actions,
)
from cfnbuild.build.inputs import setting
from cfnbuild.build.lint import Finding, LintCache, skip_problems
from cfnbuild.build.naming import partition_arn
from cfnbuild.build.stack import Stack
from cfnbuild.build.tags import standard_tags
from cfnbuild.cli.targets import Where, engine_for, target_options
from cfnbuild.deploy import artifacts
from cfnbuild.deploy.aws import error_code
from cfnbuild.deploy.engine import (
    CACHE_DIR,
    FAILED_CREATE_STATES,
    DeployedStack,
    Engine,
    Prepared,
    Refused,
    Request,
    _check_parameter,
)
from cfnbuild.deploy.staging import EXPIRY_DAYS, StagingBucket
from cfnbuild.errors import CheckFailed, UsageError
from cfnbuild.files import os_reason, read_json, write_atomic
from cfnbuild.project.app import Project
from cfnbuild.project.config import EnvironmentConfig
from cfnbuild.project.writer import render, stale_files

CATALOG_DIR = "service-catalog"  # under the project's output directory
KEY_PREFIX = "service-catalog"  # in the staging bucket: service-catalog/<sha256>/product.json
PRODUCT_FILE = "product.json"
PORTFOLIO_FILE = "portfolio.json"
MANIFEST_FILE = "manifest.json"
VERSIONS_FILE = "versions.json"
DEFAULT_KEEP = 5
MAX_KEEP = 50  # Service Catalog allows 100 provisioning artifacts per product; leave room
STACK_SUFFIX = "catalog"
INTERFACE = "AWS::CloudFormation::Interface"
CAPABILITIES = ["CAPABILITY_IAM"]
CONSTRAINT_KEYS = ("AllowedValues", "AllowedPattern", "MinLength", "MaxLength", "MinValue", "MaxValue")
SSM_TYPE = "AWS::SSM::Parameter::Value<"
STAGING_BUCKET_PARAMETER = "StagingBucketName"
PRINCIPAL_PARAMETER = "PrincipalArn"
# How Service Catalog names the stacks of provisioned products (SC-<account>-pp-<id>): the policies
# AWS publishes for its end users scope stack actions to stack/SC-*
# (https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSServiceCatalogEndUserFullAccess.html).
# What such a stack names (CloudFormation's generated names, cfnbuild.physical_name) starts with it.
SERVICE_CATALOG_STACKS = "SC-*"
SCHEMA_REGION = "us-east-1"  # property constraints are the same in every region; read the base set

# Which concern a resource type belongs to, by type prefix; the first match wins, so specific
# prefixes come before their service's catch-all.
CONCERN_OF_TYPE: tuple[tuple[str, str], ...] = (
    ("AWS::EC2::LaunchTemplate", "Compute"),
    ("AWS::EC2::Instance", "Compute"),
    ("AWS::AutoScaling::", "Compute"),
    ("AWS::Lambda::", "Compute"),
    ("AWS::ECS::", "Compute"),
    ("AWS::EKS::", "Compute"),
    ("AWS::ElasticLoadBalancingV2::", "Load balancing"),
    ("AWS::ElasticLoadBalancing::", "Load balancing"),
    ("AWS::Route53::", "Domain and certificates"),
    ("AWS::CertificateManager::", "Domain and certificates"),
    ("AWS::CloudFront::", "Domain and certificates"),
    ("AWS::EC2::", "Network"),
    ("AWS::RDS::", "Database"),
    ("AWS::DynamoDB::", "Database"),
    ("AWS::ElastiCache::", "Database"),
    ("AWS::DocDB::", "Database"),
    ("AWS::S3::", "Storage"),
    ("AWS::EFS::", "Storage"),
    ("AWS::KMS::", "Security"),
    ("AWS::IAM::", "Security"),
    ("AWS::SecretsManager::", "Security"),
    ("AWS::WAFv2::", "Security"),
    ("AWS::CloudWatch::", "Monitoring and alerts"),
    ("AWS::Logs::", "Monitoring and alerts"),
    ("AWS::SNS::", "Monitoring and alerts"),
    ("AWS::Budgets::", "Cost"),
    ("AWS::CE::", "Cost"),
)
OTHER_CONCERN = "Other settings"
CONCERN_ORDER = (
    "Network",
    "Compute",
    "Load balancing",
    "Domain and certificates",
    "Database",
    "Storage",
    "Security",
    "Monitoring and alerts",
    "Cost",
    OTHER_CONCERN,
)
# Words a parameter name spells in CamelCase that a label writes otherwise.
ACRONYMS = {
    word.lower(): word
    for word in (
        "ACM", "ALB", "AMI", "API", "ARN", "AZ", "AZs", "CIDR", "CPU", "DB", "DNS", "EC2", "HTTP", "HTTPS", "IAM",
        "ID", "IDs", "IP", "KMS", "NAT", "RDS", "S3", "SNS", "SQS", "SSM", "TLS", "TTL", "URL", "VPC",
    )
}  # fmt: skip
UNITS = {"usd": "(USD)", "seconds": "(seconds)", "minutes": "(minutes)", "hours": "(hours)", "days": "(days)",
         "percent": "(%)", "gb": "(GB)", "mb": "(MB)"}  # fmt: skip
LABEL_OVERRIDES: dict[str, str] = {}  # parameter name → label, for a name the rules above render badly
_WORDS = re.compile(r"[A-Z]+\d*(?![a-z])|[A-Z]?[a-z]+\d*|\d+")
_SUB_NAME = re.compile(r"\$\{([A-Za-z0-9:]+)\}")

# Conservative constraints for parameters the stack left unconstrained, by name suffix.
S3_KEY_PATTERN = r"^[A-Za-z0-9!_.*'()-][A-Za-z0-9!_.*'()/-]{0,1023}$"
ARN_PATTERN = r"^arn:[a-z0-9-]+:[a-z0-9-]+:[a-z0-9-]*:(\d{12})?:[A-Za-z0-9+=,.@_/:*-]+$"
EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}$"
CIDR_PATTERN = r"^(\d{1,3}\.){3}\d{1,3}/\d{1,2}$"
MAX_FREE_TEXT = 1024
PRINCIPAL_PATTERN = r"^arn:aws[a-z-]*:iam::\d{12}:(role|user|group)/[A-Za-z0-9+=,.@_/-]{1,512}$"
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"

# What checkov reports on a policy that grants provisioning actions on "*", and why each finding
# is the documented exception rather than a mistake (see cfnbuild.build.grants.grant_provisioning). The
# IAM and KMS statements are in policies of their own, scoped, and carry no skip; with iam:PassRole
# and the other IAM actions off "*", privilege escalation (CKV_AWS_110) is no longer reported.
_STAR = (
    "the product's resources are created by Service Catalog at launch, in a stack that does not exist yet, "
    "with IDs made at creation, so no ARN can name them; the actions are exactly those the resource schemas of "
    "the product's types list for the services it uses, and of IAM and KMS only those that support no "
    "resource-level permission"
)
PROVISIONING_SKIPS: dict[str, str] = {
    "CKV_AWS_107": f"credentials-exposing actions on '*': {_STAR}",
    "CKV_AWS_108": f"data-reading actions on '*': {_STAR}",
    "CKV_AWS_109": f"permission-management actions on '*' (e.g. bucket and key policies of the product): {_STAR}",
    "CKV_AWS_111": f"write actions on '*': {_STAR}",
}


class CatalogError(UsageError):
    """The export cannot be made from what the project holds; the message says what to change."""


# ------------------------------------------------------------------------------ the product


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) of every mapping inside ``node``."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield str(key), value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def references(node: Any) -> tuple[set[str], set[str]]:
    """The names ``node`` refers to (``Ref`` and ``Fn::Sub``) and the conditions it uses."""
    refs: set[str] = set()
    conditions: set[str] = set()
    for key, value in _walk(node):
        if key == "Ref" and isinstance(value, str):
            refs.add(value)
        elif key == "Fn::Sub":
            text, variables = (value, {}) if isinstance(value, str) else (value[0], value[1] if len(value) > 1 else {})
            if isinstance(text, str):
                refs.update(set(_SUB_NAME.findall(text)) - set(variables or {}))
        elif key == "Fn::If" and isinstance(value, list) and value and isinstance(value[0], str):
            conditions.add(value[0])
        elif key == "Condition" and isinstance(value, str):
            conditions.add(value)
    return refs, conditions


def _condition_parameters(template: Mapping[str, Any]) -> dict[str, set[str]]:
    """The parameters each condition depends on, through the conditions it uses."""
    definitions: Mapping[str, Any] = template.get("Conditions", {})
    resolved: dict[str, set[str]] = {}

    def resolve(name: str, seen: frozenset[str]) -> set[str]:
        if name in resolved:
            return resolved[name]
        if name in seen or name not in definitions:
            return set()
        refs, used = references(definitions[name])
        found = set(refs)
        for other in used:
            found |= resolve(other, seen | {name})
        resolved[name] = found
        return found

    for name in definitions:
        resolve(name, frozenset())
    return resolved


def concern_of(resource_type: str) -> str:
    """The concern a resource type belongs to (its parameters' group in the launch form)."""
    return next((concern for prefix, concern in CONCERN_OF_TYPE if resource_type.startswith(prefix)), OTHER_CONCERN)


def parameter_concerns(template: Mapping[str, Any]) -> dict[str, str]:
    """Each parameter's concern: the one of the resources it shapes most (a direct reference counts twice)."""
    parameters = set(template.get("Parameters", {}))
    through = _condition_parameters(template)
    weights: dict[str, Counter[str]] = {name: Counter() for name in parameters}
    for resource in template.get("Resources", {}).values():
        concern = concern_of(str(resource.get("Type", "")))
        refs, conditions = references(resource)
        for name in refs & parameters:
            weights[name][concern] += 2
        for condition in conditions:
            for name in through.get(condition, set()) & parameters:
                weights[name][concern] += 1
    result = {}
    for name, counter in weights.items():
        if not counter:
            result[name] = OTHER_CONCERN
            continue
        best = max(counter.values())
        result[name] = min((c for c, w in counter.items() if w == best), key=CONCERN_ORDER.index)
    return result


def parameter_label(name: str, definition: Mapping[str, Any]) -> str:
    """A label for the launch form, from the parameter's name: ``MonthlyBudgetUsd`` → ``Monthly budget (USD)``."""
    if name in LABEL_OVERRIDES:
        return LABEL_OVERRIDES[name]
    words = _WORDS.findall(name) or [name]
    shown = []
    for index, word in enumerate(words):
        lower = word.lower()
        if index == len(words) - 1 and index > 0 and lower in UNITS:
            shown.append(UNITS[lower])
        elif lower in ACRONYMS:
            shown.append(ACRONYMS[lower])
        else:
            shown.append(word.capitalize() if index == 0 else lower)
    label = " ".join(shown)
    if str(definition.get("Type", "")).startswith(SSM_TYPE):
        label += " (SSM parameter)"
    return label


def interface(template: Mapping[str, Any]) -> dict[str, Any]:
    """``AWS::CloudFormation::Interface``: a group per concern, in a fixed order, and a label for every parameter."""
    parameters: Mapping[str, Any] = template.get("Parameters", {})
    concerns = parameter_concerns(template)
    groups = [
        {"Label": {"default": concern}, "Parameters": sorted(n for n in parameters if concerns[n] == concern)}
        for concern in CONCERN_ORDER
        if any(concerns[n] == concern for n in parameters)
    ]
    labels = {name: {"default": parameter_label(name, definition)} for name, definition in sorted(parameters.items())}
    return {"ParameterGroups": groups, "ParameterLabels": labels}


def is_constrained(definition: Mapping[str, Any]) -> bool:
    """Whether a parameter limits its values (AWS-specific types are checked against the account by CloudFormation)."""
    kind = str(definition.get("Type", "String"))
    if any(key in definition for key in CONSTRAINT_KEYS):
        return True
    return (kind.startswith(("AWS::", "List<AWS::"))) and not kind.startswith(SSM_TYPE)


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """``schema`` with a local ``$ref`` (``#/definitions/X``) followed."""
    seen = 0
    while isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/definitions/") and seen < 10:
        schema = root.get("definitions", {}).get(schema["$ref"].rsplit("/", 1)[1], {})
        seen += 1
    return schema


def property_schemas(template: Mapping[str, Any]) -> dict[str, list[tuple[str, Mapping[str, Any]]]]:
    """For each parameter given whole to a resource property (``{"Ref": P}``), where and that property's schema.

    Read from the resource schemas cfn-lint ships; a value chosen by ``Fn::If`` counts for both
    branches. A parameter only spliced into a string (``Fn::Sub``) is not listed.
    """
    parameters = set(template.get("Parameters", {}))
    found: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}

    def walk(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any], where: str) -> None:
        schema = _resolve(schema, root)
        if isinstance(value, Mapping):
            if set(value) == {"Ref"} and value["Ref"] in parameters:
                found.setdefault(value["Ref"], []).append((where, schema))
                return
            if set(value) == {"Fn::If"} and isinstance(value["Fn::If"], list) and len(value["Fn::If"]) == 3:
                for branch in value["Fn::If"][1:]:
                    walk(branch, schema, root, where)
                return
            properties = schema.get("properties", {})
            for key, item in value.items():
                if key in properties:
                    walk(item, properties[key], root, f"{where}.{key}")
        elif isinstance(value, list):
            for item in value:
                walk(item, schema.get("items", {}), root, where)

    for logical_id, resource in sorted(template.get("Resources", {}).items()):
        try:
            root = PROVIDER_SCHEMA_MANAGER.get_resource_schema(SCHEMA_REGION, str(resource.get("Type"))).schema
        except ResourceNotFoundError:
            continue
        walk(resource.get("Properties", {}), {"properties": root.get("properties", {})}, root, logical_id)
    return found


def _satisfies(default: Any, constraint: Mapping[str, Any]) -> bool:
    """Whether a parameter's default passes ``constraint`` (a constraint its own default fails is useless)."""
    if default is None:
        return True
    if "AllowedValues" in constraint:
        return str(default) in [str(v) for v in constraint["AllowedValues"]]
    number = float(default) if "MinValue" in constraint or "MaxValue" in constraint else None
    if number is not None and "MinValue" in constraint and number < float(constraint["MinValue"]):
        return False
    if number is not None and "MaxValue" in constraint and number > float(constraint["MaxValue"]):
        return False
    return not ("MaxLength" in constraint and len(str(default)) > int(constraint["MaxLength"]))


def schema_constraint(
    name: str, definition: Mapping[str, Any], uses: Sequence[tuple[str, Mapping[str, Any]]]
) -> tuple[dict[str, Any], str] | None:
    """The constraint the properties a parameter is given to impose themselves (enum, minimum/maximum, maxLength).

    Where the parameter feeds several properties, the tightest bounds of all; None when the
    schemas say nothing, or what they say fails the parameter's own default.
    """
    kind = str(definition.get("Type", "String"))
    if kind not in ("String", "Number") or not uses:
        return None
    where = ", ".join(sorted({place for place, _ in uses}))
    enums = [schema["enum"] for _, schema in uses if isinstance(schema.get("enum"), list)]
    constraint: dict[str, Any] = {}
    if enums and len(enums) == len(uses):
        allowed = [v for v in enums[0] if all(v in other for other in enums[1:])]
        constraint = {"AllowedValues": [str(v) if kind == "String" else v for v in allowed]}
    elif kind == "Number":
        lows = [schema["minimum"] for _, schema in uses if isinstance(schema.get("minimum"), int | float)]
        highs = [schema["maximum"] for _, schema in uses if isinstance(schema.get("maximum"), int | float)]
        if lows:
            constraint["MinValue"] = max(lows)
        if highs:
            constraint["MaxValue"] = min(highs)
    else:
        longest = [schema["maxLength"] for _, schema in uses if isinstance(schema.get("maxLength"), int)]
        if longest:
            constraint["MaxLength"] = min(longest)
    if not constraint or not _satisfies(definition.get("Default"), constraint):
        return None
    shown = "; ".join(f"{key} {value}" for key, value in constraint.items())
    constraint["ConstraintDescription"] = _describe(constraint)
    return constraint, f"{shown} (from the schema of {where})"


def _describe(constraint: Mapping[str, Any]) -> str:
    """A ConstraintDescription for a derived constraint, in the launch form's words."""
    if "AllowedValues" in constraint:
        return "one of " + ", ".join(str(v) for v in constraint["AllowedValues"])
    if "MaxLength" in constraint:
        return f"at most {constraint['MaxLength']} characters"
    low, high = constraint.get("MinValue"), constraint.get("MaxValue")
    if low is not None and high is not None:
        return f"a number from {low} to {high}"
    return f"a number of at least {low}" if low is not None else f"a number of at most {high}"


def added_constraint(name: str, definition: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """A conservative constraint for an unconstrained parameter, and a note saying what it is.

    Raises :class:`CatalogError` for a parameter no conservative rule fits: its blueprint must
    constrain it.
    """
    kind = str(definition.get("Type", "String"))
    default = definition.get("Default")
    optional = default == ""
    if kind.startswith(SSM_TYPE):
        if not isinstance(default, str) or not default:
            raise CatalogError(
                f"parameter {name} ({kind}) has no default to allow; give it AllowedValues in its blueprint"
            )
        return (
            {"AllowedValues": [default], "ConstraintDescription": f"the SSM parameter {default}"},
            "AllowedValues: its default only (end users cannot pick another SSM parameter)",
        )
    if kind == "Number":
        if default is not None and float(default) < 0:
            raise CatalogError(f"parameter {name} (Number) has a negative default; give it MinValue in its blueprint")
        return {"MinValue": 0, "ConstraintDescription": "a number, 0 or more"}, "MinValue: 0"
    if kind != "String":
        raise CatalogError(f"parameter {name} ({kind}) has no constraint; give it AllowedPattern in its blueprint")
    for suffix, pattern, what in (
        ("Key", S3_KEY_PATTERN, "an S3 object key"),
        ("Arn", ARN_PATTERN, "an ARN"),
        ("Email", EMAIL_PATTERN, "an e-mail address"),
        ("Cidr", CIDR_PATTERN, "an IPv4 CIDR block"),
    ):
        if name.endswith(suffix):
            allowed = f"^({pattern[1:-1]})?$" if optional else pattern
            return (
                {"AllowedPattern": allowed, "ConstraintDescription": what + (", or empty" if optional else "")},
                f"AllowedPattern: {what}",
            )
    return (
        {"MaxLength": MAX_FREE_TEXT, "ConstraintDescription": f"at most {MAX_FREE_TEXT} characters"},
        f"MaxLength: {MAX_FREE_TEXT}",
    )


def _not_empty(name: str) -> dict[str, Any]:
    return {"Fn::Not": [{"Fn::Equals": [{"Ref": name}, ""]}]}


def _not_empty_parameter(term: Any) -> str | None:
    """``P`` when ``term`` is ``Fn::Not [Fn::Equals [Ref P, ""]]`` (either operand order)."""
    if not isinstance(term, Mapping) or set(term) != {"Fn::Not"}:
        return None
    inner = term["Fn::Not"]
    if not (isinstance(inner, list) and len(inner) == 1 and isinstance(inner[0], Mapping)):
        return None
    equals = inner[0].get("Fn::Equals")
    if not (isinstance(equals, list) and len(equals) == 2 and "" in equals):
        return None
    other = equals[1] if equals[0] == "" else equals[0]
    if isinstance(other, Mapping) and set(other) == {"Ref"} and isinstance(other["Ref"], str):
        return other["Ref"]
    return None


def paired_parameter_rules(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Rules for optional parameters that only act together, derived from the stack's Conditions.

    A condition ``Fn::And`` of "P is not empty" terms means each P does nothing without the
    others; a launch form should say so rather than build something else silently. A pair the
    stack's own Rules already cover (a rule whose condition names P and whose assertions name Q)
    gets nothing new.
    """
    parameters: Mapping[str, Any] = template.get("Parameters", {})
    existing: Mapping[str, Any] = template.get("Rules", {})
    covered = set()
    for rule in existing.values():
        when, _ = references(rule.get("RuleCondition", {}))
        then, _ = references(rule.get("Assertions", []))
        covered |= {(a, b) for a in when for b in then}
    rules: dict[str, dict[str, Any]] = {}
    for condition, definition in sorted(template.get("Conditions", {}).items()):
        terms = definition.get("Fn::And") if isinstance(definition, Mapping) else None
        if not isinstance(terms, list):
            continue
        names = [_not_empty_parameter(term) for term in terms]
        if len(names) < 2 or None in names:
            continue
        together = [n for n in names if n is not None and parameters.get(n, {}).get("Default") == ""]
        if len(together) != len(names):
            continue
        for first in together:
            for second in together:
                name = f"{first}Needs{second}"
                if first == second or (first, second) in covered or name in existing or name in rules:
                    continue
                rules[name] = {
                    "RuleCondition": _not_empty(first),
                    "Assertions": [
                        {
                            "Assert": _not_empty(second),
                            "AssertDescription": (
                                f"{first} takes effect only together with {second} (condition {condition}); "
                                f"give {second} too, or leave {first} empty"
                            ),
                        }
                    ],
                }
    return rules


@dataclass(frozen=True)
class Product:
    """The product template and what the export added to the stack's template."""

    template: dict[str, Any]
    added_constraints: dict[str, str]
    added_rules: tuple[str, ...]

    @property
    def text(self) -> str:
        """The template as written: the same JSON layout as ``build`` writes."""
        return _json(self.template)


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
        return _json(
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


# ------------------------------------------------------------------------------ what a launch needs

# Services a type's own service calls on at launch whatever the template sets, by IAM prefix.
COMPANION_SERVICES: dict[str, tuple[str, ...]] = {
    # A budget is checked against the account's billing view: "Allows Budgets to verify access to
    # Billing Views" (https://docs.aws.amazon.com/aws-managed-policy/latest/reference/BudgetsServiceRolePolicy.html);
    # the budget schema's create handler lists billing:GetBillingViewData.
    "budgets": ("billing",),
}

# The KMS actions the launching role needs on a customer managed key so that a service can
# encrypt the product's resource with it on its behalf, by the service's IAM prefix; granted only
# through that service (kms:ViaService). An empty tuple: the service uses the key as itself,
# through the key policy, and the caller needs nothing. A service missing here is refused with
# the fix (add it with the AWS document that lists the actions).
KMS_USE_BY_SERVICE: dict[str, tuple[str, ...]] = {
    # "To use the KMS key for a secret on your behalf, the user must have kms:GenerateDataKey and
    # kms:Decrypt" (creating the secret, putting a value, and GetSecretValue, which also serves
    # {{resolve:secretsmanager:...}}):
    # https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html#security-encryption-authz
    "secretsmanager": ("kms:Decrypt", "kms:GenerateDataKey"),
    # "To create an Aurora resource with a customer managed key, a user must have permissions to
    # call kms:CreateGrant and kms:DescribeKey" (storage and Performance Insights keys alike):
    # https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Overview.Encryption.Keys.html#Overview.Encryption.Keys.Authorizing
    "rds": ("kms:CreateGrant", "kms:DescribeKey"),
    # EBS volumes encrypted with a customer managed key (a launch template's block devices):
    # https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html#ebs-encryption-permissions
    "ec2": (
        "kms:CreateGrant",
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:ReEncrypt*",
    ),
    # CloudWatch Logs encrypts with the key as logs.<region>.amazonaws.com, which the key policy
    # must allow; the caller needs no KMS permission:
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
    "logs": (),
    # Publishers (here CloudWatch alarms, through the key policy) need the key, not whoever
    # creates or subscribes to the topic: https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html
    "sns": (),
    # A bucket's default encryption names the key; whoever writes objects needs it, and the
    # launch role writes none: https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html
    "s3": (),
}
# CloudFormation resolves {{resolve:secretsmanager:...}} with the launching role's credentials
# (GetSecretValue, so kms:Decrypt through Secrets Manager for a secret under a customer key):
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/dynamic-references-secretsmanager.html
SM_DYNAMIC_REFERENCE = "{{resolve:secretsmanager:"
_PSEUDO = {"AWS::Partition", "AWS::Region", "AWS::AccountId", "AWS::URLSuffix"}


@dataclass(frozen=True)
class Expansion:
    """What an AWS transform adds to the launched stack when CloudFormation processes the template.

    ``resource_types`` are the types the processed template (and the nested stacks it holds)
    makes, granted from their schemas like the product's own; ``passed_to`` the services the roles
    it makes trust; ``attached_policies`` the managed policies those roles attach; ``transforms``
    every transform the expansion runs through (itself, and one its output declares);
    ``applications`` the Serverless Application Repository applications it deploys.
    """

    resource_types: tuple[str, ...]
    passed_to: tuple[str, ...] = ()
    attached_policies: tuple[Any, ...] = ()
    transforms: tuple[str, ...] = ()
    applications: tuple[str, ...] = ()
    withheld: tuple[str, ...] = ()


# Service Catalog provisions a product template that declares a transform: AWS documents a
# transform made for exactly that, AWS::ServiceCatalog, which "during provisioning" of a product
# replaces references to other provisioned products' outputs
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/transform-aws-servicecatalog.html),
# and ProvisionProduct takes no Capabilities to acknowledge (it has none to pass:
# https://docs.aws.amazon.com/servicecatalog/latest/dg/API_ProvisionProduct.html), so Service
# Catalog creates the stack through a change set itself, as a transform requires
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/transform-section-structure.html).
# What it cannot do is know what the expansion makes: the launch role is derived from the product
# template's types, so each transform the export accepts says here what it expands into; any other
# transform is refused (its expansion would need permissions no one derived).
_SECRETS_MANAGER_ROTATION = Expansion(
    # "The Lambda function is placed in a nested stack in the processed template. It uses a
    # function template from the AWS Secrets Manager Rotation Lambda Functions repository"
    # (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/transform-aws-secretsmanager.html):
    # the nested stack (AWS::CloudFormation::Stack), the function, its execution role, and the
    # permission that lets Secrets Manager invoke it (a rotation function's resource policy,
    # https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotating-secrets-required-permissions-function.html).
    resource_types=(
        "AWS::CloudFormation::Stack",
        "AWS::IAM::Role",
        "AWS::Lambda::Function",
        "AWS::Lambda::Permission",
    ),
    # The execution role is Lambda's (https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html);
    # a function in a VPC makes its network interfaces with that role's permissions, which AWS
    # gives in AWSLambdaVPCAccessExecutionRole (https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html),
    # and its logs with AWSLambdaBasicExecutionRole's.
    passed_to=("lambda.amazonaws.com",),
    attached_policies=(
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"},
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"},
    ),
    # The rotation templates are published as Serverless Application Repository applications
    # named SecretsManager<template> (https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_available-rotation-templates.html),
    # deployed as a nested stack through AWS SAM's transform.
    transforms=("AWS::Serverless-2016-10-31",),
    applications=("SecretsManager*",),
    # The function schema's s3:GetObject(Version) read code from a bucket the template names; the
    # application's code is not in a bucket of this account, and on "*" they would read every
    # object the account can. Withheld (see the report: not proved on AWS).
    withheld=("s3:GetObject", "s3:GetObjectVersion"),
)
# Keyed by the literal value of the template's Transform (a transform's value cannot be a
# parameter or function, ibid.); both dates the HostedRotationLambda reference accepts.
TRANSFORM_EXPANSIONS: dict[str, Expansion] = {
    "AWS::SecretsManager-2020-07-23": _SECRETS_MANAGER_ROTATION,
    "AWS::SecretsManager-2024-09-16": _SECRETS_MANAGER_ROTATION,
}


def template_transforms(template: Mapping[str, Any]) -> tuple[str, ...]:
    """The transforms the template declares at its top level (a string, or a list of them)."""
    declared = template.get("Transform")
    if declared is None:
        return ()
    names = declared if isinstance(declared, list) else [declared]
    if not all(isinstance(name, str) for name in names):
        raise CatalogError(
            f"Transform {json.dumps(declared)}: a transform's name must be a literal string (a Name/Parameters "
            "macro cannot be told what it expands into); declare the transform by its name"
        )
    return tuple(names)


def expansion_of(template: Mapping[str, Any]) -> tuple[Expansion, ...]:
    """What each transform the template declares expands into; an unknown transform is refused with the fix."""
    expansions = []
    for name in template_transforms(template):
        if name not in TRANSFORM_EXPANSIONS:
            raise CatalogError(
                f"Transform {name}: what it expands into at launch is not known, so the launch role cannot be granted "
                "it and a Service Catalog launch would fail; add it to TRANSFORM_EXPANSIONS in "
                "cfnbuild/deliver/catalog.py "
                "with the AWS document that says what it makes, or leave it out of the stack"
            )
        expansions.append(TRANSFORM_EXPANSIONS[name])
    return tuple(expansions)


def _transform_name(transform: str) -> str:
    """A transform's name as its ARN spells it: ``AWS::SecretsManager-2024-09-16`` → ``SecretsManager-2024-09-16``."""
    return transform.removeprefix("AWS::")


_NAMED_IAM_TYPES = ("AWS::IAM::Role", "AWS::IAM::InstanceProfile", "AWS::IAM::ManagedPolicy")


def service_of_type(resource_type: str) -> str:
    """The IAM service prefix of a resource type (``AWS::ElasticLoadBalancingV2::Listener`` → ``elasticloadbalancing``).

    The prefix its schema's handlers name that its namespace spells, else the one they name most
    (``AWS::CertificateManager::*`` → ``acm``).
    """
    namespace = resource_type.split("::")[1].lower() if resource_type.count("::") == 2 else resource_type.lower()
    try:
        handlers = PROVIDER_SCHEMA_MANAGER.get_resource_schema(SCHEMA_REGION, resource_type).schema.get("handlers")
    except ResourceNotFoundError:
        return namespace
    counts: Counter[str] = Counter(
        action.split(":", 1)[0].lower()
        for handler in (handlers or {}).values()
        for action in (handler or {}).get("permissions", [])
    )
    spelt = [prefix for prefix in counts if namespace.startswith(prefix)]
    if spelt:
        return max(spelt, key=len)
    if not counts:
        return namespace
    return min(counts, key=lambda prefix: (-counts[prefix], prefix))


def product_services(resource_types: Sequence[str]) -> tuple[str, ...]:
    """The IAM service prefixes a product uses: its types' services and their companions."""
    services = {service_of_type(t) for t in resource_types}
    services |= {companion for s in list(services) for companion in COMPANION_SERVICES.get(s, ())}
    return tuple(sorted(services))


def _stable(values: Sequence[Any]) -> tuple[Any, ...]:
    unique = {json.dumps(v, sort_keys=True): v for v in values}
    return tuple(unique[k] for k in sorted(unique))


def _trusted_services(document: Any) -> list[Any]:
    statements = document.get("Statement", []) if isinstance(document, Mapping) else []
    found: list[Any] = []
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        services = principal.get("Service", []) if isinstance(principal, Mapping) else []
        found += services if isinstance(services, list) else [services]
    return found


def _attached_policy(logical_id: str, value: Any, resources: Mapping[str, Any], stack_names: str) -> Any:
    """A managed policy ARN a role of the product attaches, as the portfolio template can write it."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        refs, _ = references(value)
        if refs <= _PSEUDO:
            return value
    target = value.get("Ref") if isinstance(value, Mapping) else None
    if isinstance(target, str) and resources.get(target, {}).get("Type") == "AWS::IAM::ManagedPolicy":
        path = resources[target].get("Properties", {}).get("Path", "/")
        return encode_to_dict(partition_arn("iam", f"policy{path}{stack_names}", region=False))
    raise CatalogError(
        f"{logical_id}: ManagedPolicyArns entry {json.dumps(value)} cannot be named in the launch role's policy "
        "(its iam:AttachRolePolicy names the policies the product attaches); write it as a Fn::Sub over pseudo "
        "parameters (arn:${AWS::Partition}:iam::aws:policy/...) or a Ref to an AWS::IAM::ManagedPolicy of the stack"
    )


def _key_properties(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every property under ``node`` that names a KMS key (``KmsKeyId``, ``KMSMasterKeyID``, ...), with its path."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            lower = str(key).lower()
            if "kms" in lower and "key" in lower and not isinstance(value, bool | int):
                yield f"{where}.{key}", value
            else:
                yield from _key_properties(value, f"{where}.{key}")
    elif isinstance(node, list):
        for item in node:
            yield from _key_properties(item, where)


def _customer_key(value: Any) -> bool:
    """Whether a key property's value may name a customer managed key (not empty, no AWS managed alias)."""
    if isinstance(value, str):
        return bool(value) and not (value.startswith("alias/aws/") or ":alias/aws/" in value)
    if isinstance(value, Mapping) and set(value) == {"Fn::If"} and isinstance(value["Fn::If"], list):
        return any(_customer_key(branch) for branch in value["Fn::If"][1:])
    return bool(value != {"Ref": "AWS::NoValue"})


def launch_scope(template: Mapping[str, Any], *, stack_names: str = SERVICE_CATALOG_STACKS) -> LaunchScope:
    """What the launch role needs beyond the product's types, read from the product template.

    The IAM paths of its roles, instance profiles and policies; the services its roles trust
    (``iam:PassRole`` hands roles only to those); the managed policies its roles attach; per
    service, the KMS actions its resources encrypted with a customer managed key need
    (:data:`KMS_USE_BY_SERVICE`); and the services it uses at all.
    """
    resources: Mapping[str, Any] = template.get("Resources", {})
    paths: set[str] = set()
    passed: list[Any] = []
    attached: list[Any] = []
    uses: dict[str, set[str]] = {}
    for logical_id, resource in sorted(resources.items()):
        kind = str(resource.get("Type", ""))
        properties = resource.get("Properties", {}) or {}
        if kind in _NAMED_IAM_TYPES:
            path = properties.get("Path", "/")
            if not isinstance(path, str):
                raise CatalogError(
                    f"{logical_id} ({kind}): Path is {json.dumps(path)}; the launch role is granted IAM actions on "
                    f"<path>{stack_names} only, so write the path as a plain string"
                )
            paths.add(path)
        if kind == "AWS::IAM::Role":
            passed += _trusted_services(properties.get("AssumeRolePolicyDocument"))
            attached += [
                _attached_policy(logical_id, v, resources, stack_names) for v in properties.get("ManagedPolicyArns", [])
            ]
        if kind == "AWS::IAM::ManagedPolicy" and (properties.get("Roles") or []):
            attached.append(_attached_policy(logical_id, {"Ref": logical_id}, resources, stack_names))
        for where, value in _key_properties(properties, logical_id):
            if not _customer_key(value):
                continue
            service = service_of_type(kind)
            if service not in KMS_USE_BY_SERVICE:
                raise CatalogError(
                    f"{where} ({kind}) names a KMS key, and which KMS actions {service} needs from the role that "
                    f"launches it is not known; add {service!r} to KMS_USE_BY_SERVICE in "
                    "cfnbuild/deliver/catalog.py with "
                    "the AWS document that lists them"
                )
            uses.setdefault(service, set()).update(KMS_USE_BY_SERVICE[service])
    if SM_DYNAMIC_REFERENCE in json.dumps(template):
        uses.setdefault("secretsmanager", set()).add("kms:Decrypt")
    types = {str(r.get("Type", "")) for r in resources.values()}
    transforms: set[str] = set()
    applications: set[str] = set()
    withheld: set[str] = set()
    for name, expansion in zip(template_transforms(template), expansion_of(template), strict=True):
        types.update(expansion.resource_types)
        passed += expansion.passed_to
        attached += expansion.attached_policies
        transforms.update(_transform_name(t) for t in (name, *expansion.transforms))
        applications.update(expansion.applications)
        withheld.update(expansion.withheld)
    withheld -= _own_actions(resources)
    return LaunchScope(
        stack_names=stack_names,
        paths=tuple(sorted(paths or {"/"})),
        passed_to=_stable(passed),
        attached_policies=_stable(attached),
        key_uses=tuple((service, tuple(sorted(actions))) for service, actions in sorted(uses.items())),
        services=product_services(sorted(types)),
        transforms=tuple(sorted(transforms)),
        applications=tuple(sorted(applications)),
        withheld=tuple(sorted(withheld)),
    )


def _own_actions(resources: Mapping[str, Any]) -> set[str]:
    """The schema actions the template's own resources need: an expansion never withholds those."""
    types = {str(r.get("Type", "")) for r in resources.values()}
    try:
        return set(provisioning_actions(sorted(types)).actions)
    except ValueError:  # a type without a schema: grant_provisioning refuses it, naming it
        return set()


def launched_types(template: Mapping[str, Any]) -> tuple[str, ...]:
    """The resource types a launch makes: the template's, and those its transforms expand into."""
    types = {str(r["Type"]) for r in template.get("Resources", {}).values()}
    for expansion in expansion_of(template):
        types.update(expansion.resource_types)
    return tuple(sorted(types))


# ------------------------------------------------------------------------------ the portfolio


@dataclass(frozen=True)
class PortfolioInputs:
    """What the portfolio offers, and the defaults of its launch-time parameters."""

    product_name: str = setting(doc="The product's name in the catalog.")
    product_description: str = setting(doc="What the product is, shown to end users.")
    versions: tuple[Version, ...] = setting(doc="Every version offered, oldest first: one provisioning artifact each.")
    resource_types: tuple[str, ...] = setting(
        doc="The resource types the product makes: the launch role may manage these."
    )
    regions: tuple[str, ...] = setting(
        ("us-east-1",), "Regions whose resource schemas the launch role's actions come from."
    )
    ssm_parameters: tuple[str, ...] = setting((), "SSM parameters the product's template resolves at launch.")
    display_name: str = setting("", "Default of the PortfolioDisplayName parameter.")
    provider_name: str = setting(
        "", "Default of the ProviderName parameter (the portfolio's provider, the product's owner)."
    )
    launch_scope: LaunchScope | None = setting(
        None,
        "The names the launched stacks give and what the product's roles and keys need (see launch_scope); "
        "None: SC-* stacks, no role passed, no policy attached, no key used, every service the schemas name.",
    )


class Portfolio(Blueprint[PortfolioInputs]):
    """A Service Catalog portfolio offering one product, with a principal and a launch role constraint."""

    portfolio_id: Ref
    product_id: Ref
    launch_role_arn: GetAtt
    provisioning: ProvisioningActions

    def validate(self) -> None:
        """Refuse what Service Catalog would refuse later, with the fix."""
        i = self.inputs
        if not i.versions:
            raise self.invalid("versions", "is empty; export at least one version of the product")
        if len({v.version for v in i.versions}) != len(i.versions):
            raise self.invalid("versions", "names a version twice; each provisioning artifact needs its own name")
        if not 1 <= len(i.display_name) <= 100:
            raise self.invalid("display_name", f"is {len(i.display_name)} characters; Service Catalog takes 1 to 100")
        if not 1 <= len(i.provider_name) <= 50:
            raise self.invalid("provider_name", f"is {len(i.provider_name)} characters; Service Catalog takes 1 to 50")

    def build(self) -> None:
        """Parameters, portfolio, product, associations, launch role and its constraint, outputs."""
        parameters = self.parameters()
        portfolio = self.add(
            servicecatalog.Portfolio(
                self.lid("Portfolio"),
                DisplayName=Ref(parameters["display"]),
                ProviderName=Ref(parameters["provider"]),
                Description=self.inputs.product_description,
            )
        )
        product = self.product(parameters)
        association = self.add(
            servicecatalog.PortfolioProductAssociation(
                self.lid("ProductAssociation"), PortfolioId=Ref(portfolio), ProductId=Ref(product)
            )
        )
        self.add(
            servicecatalog.PortfolioPrincipalAssociation(
                self.lid("PrincipalAssociation"),
                PortfolioId=Ref(portfolio),
                PrincipalARN=Ref(parameters["principal"]),
                PrincipalType="IAM",
            )
        )
        role = self.launch_role()
        constraint = servicecatalog.LaunchRoleConstraint(
            self.lid("LaunchConstraint"),
            PortfolioId=Ref(portfolio),
            ProductId=Ref(product),
            RoleArn=role.arn,
            Description="Launch, update and terminate the product with the launch role, not the user's credentials",
        )
        # Service Catalog accepts a constraint only for a product already in the portfolio; the
        # constraint refers to both but not to their association, so the order must be stated.
        constraint.DependsOn = [association.title]
        self.add(constraint)
        self.portfolio_id, self.product_id, self.launch_role_arn = Ref(portfolio), Ref(product), role.arn
        self.output("PortfolioId", self.portfolio_id, "ID of the Service Catalog portfolio.")
        self.output("ProductId", self.product_id, "ID of the Service Catalog product.")
        self.output("LaunchRoleArn", self.launch_role_arn, "ARN of the role the product is launched with.")

    def parameters(self) -> dict[str, Any]:
        """The launch-time parameters: names, the principal, and the staging bucket."""
        return {
            "display": self.parameter(
                "PortfolioDisplayName",
                Type="String",
                Default=self.inputs.display_name,
                MinLength=1,
                MaxLength=100,
                Description="The portfolio's name in the catalog.",
            ),
            "provider": self.parameter(
                "ProviderName",
                Type="String",
                Default=self.inputs.provider_name,
                MinLength=1,
                MaxLength=50,
                Description="Who provides the portfolio; also the product's owner.",
            ),
            "principal": self.parameter(
                PRINCIPAL_PARAMETER,
                Type="String",
                AllowedPattern=PRINCIPAL_PATTERN,
                ConstraintDescription="the ARN of an IAM role, user or group: arn:<partition>:iam::<account>:role/Name",
                Description="The IAM role, user or group that may launch the product.",
            ),
            "bucket": self.parameter(
                STAGING_BUCKET_PARAMETER,
                Type="String",
                AllowedPattern=BUCKET_PATTERN,
                ConstraintDescription="an S3 bucket name (cfnbuild export --upload sets it)",
                Description="The staging bucket holding the product templates (set by cfnbuild export --upload).",
            ),
        }

    def product(self, parameters: Mapping[str, Any]) -> servicecatalog.CloudFormationProduct:
        """The product, with one provisioning artifact per version, each read from the staging bucket."""
        artifacts = [
            servicecatalog.ProvisioningArtifactProperties(
                Name=version.version,
                Description=version.description,
                Info=servicecatalog.Info(
                    LoadTemplateFromURL=Sub(
                        "https://${Bucket}.s3.${AWS::Region}.${AWS::URLSuffix}/" + version.key,
                        Bucket=Ref(parameters["bucket"]),
                    )
                ),
                Type="CLOUD_FORMATION_TEMPLATE",
            )
            for version in self.inputs.versions
        ]
        return self.add(
            servicecatalog.CloudFormationProduct(
                self.lid("Product"),
                Name=self.inputs.product_name,
                Owner=Ref(parameters["provider"]),
                Description=self.inputs.product_description,
                ProvisioningArtifactParameters=artifacts,
            )
        )

    def launch_role(self) -> ServiceRole:
        """The role Service Catalog launches the product with: stacks, templates, and the product's types only.

        It reads the product's template from Service Catalog's own copy ("read access to the
        CloudFormation template in a service-owned Amazon S3 bucket",
        https://docs.aws.amazon.com/servicecatalog/latest/adminguide/getstarted-launchconstraint.html),
        made when the provisioning artifact is (by whoever deploys the portfolio), so it needs
        nothing of the staging bucket.
        """
        i = self.inputs
        role = ServiceRole(self, "Launch", services=["servicecatalog.amazonaws.com"])
        grant_stack_operations(role, SERVICE_CATALOG_STACKS)
        grant_service_catalog_template_read(role)
        grant_ssm_parameters_read(role, i.ssm_parameters)
        scope = i.launch_scope or LaunchScope(stack_names=SERVICE_CATALOG_STACKS)
        granted = grant_provisioning(self, role, i.resource_types, regions=i.regions, scope=scope)
        for policy in granted.unscoped:
            for check, reason in sorted(PROVISIONING_SKIPS.items()):
                self.skip_check(policy, check, reason)
            self.accept_finding(policy, ["AwsSolutions-IAM5"], f"actions and resources with wildcards: {_STAR}")
        for policy in granted.scoped:
            self.accept_finding(
                policy,
                ["AwsSolutions-IAM5"],
                "The IAM statements name the roles, instance profiles and policies of the stacks Service "
                "Catalog launches (SC-*, the names it gives them), and the KMS statements this account's "
                "and Region's keys through the services that encrypt with them (kms:ViaService): no "
                "ARN of a key or role made at launch is known before the launch.",
            )
        self.provisioning = granted.actions
        return role


# ------------------------------------------------------------------------------ the export


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
        return _json(template)

    @property
    def templates(self) -> dict[Path, str]:
        """The two templates (what the gates check) and their text."""
        return {
            self.directory / PRODUCT_FILE: self.product.text,
            self.directory / PORTFOLIO_FILE: _json(self.portfolio),
        }

    @property
    def files(self) -> dict[Path, str]:
        """Each file and its text, in the order they are written."""
        return {
            **self.templates,
            self.directory / MANIFEST_FILE: _json(self.manifest),
            self.directory / VERSIONS_FILE: self.history.text,
        }

    @property
    def catalog_stack_name(self) -> str:
        """The portfolio stack's name: ``<stack name>-catalog``."""
        return f"{self.stack_name}-{STACK_SUFFIX}"


def _json(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def _rel(project: Project, path: Path) -> str:
    try:
        return str(path.relative_to(project.root))
    except ValueError:
        return str(path)


def read_stack_template(project: Project, environment: str, stack: str) -> tuple[dict[str, Any], str]:
    """The template ``build`` wrote for ``stack``; refused when missing or stale, as ``deploy`` refuses it."""
    path = project.template_path(environment, stack)
    rel = _rel(project, path)
    # Read first: a damaged template is named with where it is damaged, not just called stale.
    template = read_json(path, root=project.root, environment=environment)
    rendered = [r for r in render(project, [environment]) if r.stack == stack]
    if any(problem.startswith(rel + ":") for problem in stale_files(project, rendered)):
        raise UsageError(
            f"{rel} is stale; run 'cfnbuild build --env {environment}' and review the diff before exporting"
        )
    return template, rel


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
    project.app.stack(stack)
    stack_template, source = read_stack_template(project, environment, stack)
    built, buckets = build_artifacts(project, stack_template, source)
    for artifact in built:
        stack_template["Parameters"][artifact.parameter]["Default"] = artifact.key
    product = product_template(stack_template)
    text = product.text
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    directory = project.output_dir / CATALOG_DIR
    versions_path = directory / VERSIONS_FILE
    history = History.load(versions_path, root=project.root)
    if history is None:
        history = History(environment, stack)
    elif (history.environment, history.stack) != (environment, stack):
        raise CatalogError(
            f"{_rel(project, versions_path)} holds the versions of {history.stack} in {history.environment}, "
            f"not of {stack} in {environment}; export with --env {history.environment} --stack {history.stack}, "
            f"or move {_rel(project, directory)}/ away to start the catalog of {stack} in {environment}"
        )
    version = history.find(sha) or Version(
        version=f"{project_version(project)}+{sha[:12]}",
        template_sha256=sha,
        key=f"{KEY_PREFIX}/{sha}/{PRODUCT_FILE}",
        description=describe_version(stack_template, environment),
    )
    history = history.with_version(version, keep)
    stack_name = config.stack_name(stack)
    owner = config.tags.get("Owner") or config.project
    try:
        scope = launch_scope(product.template)
        resource_types = launched_types(product.template)
    except CatalogError as exc:
        raise CatalogError(f"{source}: {exc}") from None
    inputs = PortfolioInputs(
        product_name=stack_name,
        product_description=describe_version(stack_template, environment),
        versions=history.versions,
        resource_types=resource_types,
        regions=tuple(config.regions),
        ssm_parameters=ssm_parameter_names(product.template),
        launch_scope=scope,
        display_name=f"{config.project} ({environment})"[:100],
        provider_name=owner[:50],
    )
    catalog = Stack(
        f"{stack}-{STACK_SUFFIX}",
        description=f"Service Catalog portfolio offering {stack_name} (built by cfnbuild)",
        project=config.project,
        environment=environment,
        tags=config.tags,
    )
    try:
        offered = Portfolio(catalog, inputs)
        portfolio = catalog.to_dict()
    except ValueError as exc:  # a resource type whose permissions cannot be derived
        raise CatalogError(f"{source}: {exc}") from None
    unknown = list(offered.provisioning.unknown)
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
        "launch_role": {
            "resource_types": list(resource_types),
            "not_granted_unknown_to_iam": unknown,
            "not_granted_unused": list(offered.provisioning.unused),
            "services": list(scope.services or ()),
            "passes_roles_to": list(scope.passed_to),
            "keys_used_via": {service: list(actions) for service, actions in scope.key_uses},
            "transforms": {
                name: {
                    "expands_to": list(expansion.resource_types),
                    "change_sets_through": [_transform_name(t) for t in (name, *expansion.transforms)],
                    "applications": list(expansion.applications),
                }
                for name, expansion in zip(
                    template_transforms(product.template), expansion_of(product.template), strict=True
                )
            },
        },
    }
    if built:
        manifest["artifacts"] = {
            a.parameter: {"key": a.key, "bucket_parameter": buckets[a.parameter], "staged_in": "the staging bucket"}
            for a in built
        }
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
        rel = _rel(project, path)
        findings += cache.cfn_lint(text, regions, file=rel)
        findings += skip_problems(text, file=rel)
    return findings


def write_export(export: Export) -> list[Path]:
    """Write every file of the export (atomically each); return those that changed."""
    return [path for path, text in export.files.items() if write_atomic(path, text)]


# ------------------------------------------------------------------------------ the upload


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
        write_atomic(self.outputs_file, _json(document))
        self.err.print(f"wrote {_rel(self.project, self.outputs_file)} ({len(outputs)} outputs)", markup=False)


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
    versions_file = _rel(engine.project, export.directory / VERSIONS_FILE)
    check_staged(staging, export, deployed_versions(engine, export.catalog_stack_name), versions_file=versions_file)
    engine.catalog_parameters[STAGING_BUCKET_PARAMETER] = staging.name
    return engine.deploy(request)


# ------------------------------------------------------------------------------ the command


def _params(values: Sequence[str]) -> dict[str, str]:
    parsed = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param {item!r}: write it as KEY=VALUE")
        parsed[key] = value
    return parsed


def _only_stack(project: Project) -> str:
    names = [spec.name for spec in project.app.stacks]
    if len(names) != 1:
        raise UsageError(f"this project has stacks {', '.join(names)}; choose one with --stack")
    return names[0]


@click.command(name="export")
@target_options
@click.option("--service-catalog", "service_catalog", is_flag=True, help="Export as a Service Catalog product.")
@click.option(
    "--upload", "do_upload", is_flag=True, help="Stage the product template and create or update the portfolio stack."
)
@click.option(
    "--keep",
    type=int,
    default=DEFAULT_KEEP,
    show_default=True,
    help="How many versions the portfolio offers (the newest).",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A portfolio parameter, e.g. PrincipalArn=... (repeatable).",
)
@click.option("--yes", is_flag=True, help="With --upload: do not ask for confirmation (CI).")
@click.option("--wait", is_flag=True, help="With --upload: wait for a busy portfolio stack instead of refusing.")
@click.option(
    "--recreate-failed", is_flag=True, help="With --upload: recreate a portfolio stack whose creation failed."
)
@click.pass_context
def export_command(
    ctx: click.Context,
    /,
    *,
    service_catalog: bool,
    do_upload: bool,
    keep: int,
    params: tuple[str, ...],
    yes: bool,
    wait: bool,
    recreate_failed: bool,
    **kwargs: Any,
) -> None:
    """Export a stack as a Service Catalog product and portfolio, to output/service-catalog/.

    Reads the template build wrote (refused when missing or stale) and writes product.json (the
    template with a launch form: parameter groups and labels, a constraint on every parameter,
    rules), portfolio.json (portfolio, product with one artifact per kept version, principal,
    launch role granted exactly what the product's resource types need), manifest.json and
    versions.json; both templates pass cfn-lint first, or nothing is written. With --upload the
    product template goes to the staging bucket and the portfolio stack <stack>-<env>-catalog is
    deployed like 'cfnbuild deploy' deploys: plan, confirmation, events. An unchanged product
    adds no version and changes nothing.

    \b
    Example:
      cfnbuild export --service-catalog --env prod
      cfnbuild export --service-catalog --env prod --upload --param PrincipalArn=arn:aws:iam::111122223333:role/Dev
    """
    if not service_catalog:
        raise UsageError("say what to export: --service-catalog (the only format so far)")
    where = Where(*(kwargs.pop(k) for k in ("env", "stack", "region", "profile", "endpoint_url", "local")))
    if not do_upload:
        used = [flag for flag, value in _upload_only(where, params, yes, wait, recreate_failed) if value]
        if used:
            raise UsageError(f"{', '.join(used)} only apply with --upload; add --upload or leave them out")
    project: Project = ctx.obj["project_loader"]()
    environment = where.env or project.default_environment
    if environment is None:
        raise UsageError("give --env ENV (or set [tool.cfnbuild] default_env in pyproject.toml)")
    stack = where.stack or _only_stack(project)
    err = ctx.obj["err"]
    with err.status("rendering the Service Catalog export…"):
        export = build_export(project, environment, stack, keep=keep)
    regions = project.config(environment).regions
    with err.status(f"linting {PRODUCT_FILE} and {PORTFOLIO_FILE} with cfn-lint…"):
        findings = lint_export(project, export, regions)
    if findings:
        for finding in findings:
            err.print(str(finding), markup=False)
        raise CheckFailed(f"{len(findings)} cfn-lint finding(s) in the export; nothing was written")
    for name, note in sorted(export.product.added_constraints.items()):
        err.print(f"{PRODUCT_FILE}: {name} had no constraint; added {note} (the blueprint should own it)", markup=False)
    written = write_export(export)
    for path in written:
        err.print(f"wrote {_rel(project, path)}", markup=False)
    offered = ", ".join(v.version for v in export.history.versions)
    ctx.obj["out"].print(
        f"Service Catalog export of {export.stack_name}: version {export.version.version}; the portfolio offers "
        f"{offered}; {len(written)} file(s) written, {len(export.files) - len(written)} unchanged",
        markup=False,
    )
    if not do_upload:
        return
    with engine_for(ctx, where) as (engine, env, _):
        config = project.config(env)
        catalog = CatalogEngine(
            project=engine.project,
            aws=engine.aws,
            out=engine.out,
            err=engine.err,
            poll=engine.poll,
            sleep=engine.sleep,
            confirm=engine.confirm,
            reporter=engine.reporter,
            catalog_stack=export.catalog_stack_name,
            catalog_template=export.portfolio,
            catalog_tags=standard_tags(config.project, env, config.tags),
            outputs_file=export.directory / f"portfolio.{engine.aws.target.region}.outputs.json",
        )
        request = Request(
            env,
            stack,
            param_overrides=_params(params),
            yes=yes or where.local,
            wait=wait,
            recreate_failed=recreate_failed,
        )
        outputs = upload(catalog, export, request)
    for key, value in sorted(outputs.items()):
        ctx.obj["out"].print(f"{key} = {value}", markup=False)


def _upload_only(
    where: Where, params: Sequence[str], yes: bool, wait: bool, recreate_failed: bool
) -> list[tuple[str, object]]:
    return [
        ("--region", where.region),
        ("--profile", where.profile),
        ("--endpoint-url", where.endpoint_url),
        ("--local", where.local),
        ("--param", params),
        ("--yes", yes),
        ("--wait", wait),
        ("--recreate-failed", recreate_failed),
    ]


__all__ = [
    "CatalogEngine",
    "CatalogError",
    "Export",
    "History",
    "Portfolio",
    "PortfolioInputs",
    "Product",
    "Version",
    "build_export",
    "export_command",
    "interface",
    "lint_export",
    "paired_parameter_rules",
    "parameter_label",
    "product_template",
    "stage",
    "upload",
    "write_export",
]
