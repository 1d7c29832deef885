"""The Service Catalog launch role: what the role a product is launched with must be granted.

Read from the product template: the resource types a launch makes (its own, and those the
transforms it declares expand into, :data:`TRANSFORM_EXPANSIONS`), the IAM service prefixes of
those types (:func:`service_of_type`), the IAM paths of its roles and the services they trust,
the managed policies they attach, and the KMS actions its resources encrypted with a customer
managed key need (:data:`KMS_USE_BY_SERVICE`). :func:`launch_scope` gathers them for
:func:`cfnbuild.build.provisioning.grant_provisioning`; the portfolio (:mod:`.portfolio`) builds the
role itself.

AWS reference: launch roles (https://docs.aws.amazon.com/servicecatalog/latest/adminguide/constraints-launch.html).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from troposphere import encode_to_dict

from cfnbuild.build.naming import partition_arn
from cfnbuild.build.provisioning import LaunchScope, provisioning_actions
from cfnbuild.deliver.catalog.layout import CatalogError
from cfnbuild.deliver.catalog.template import references, resource_schema

# How Service Catalog names the stacks of provisioned products (SC-<account>-pp-<id>): the policies
# AWS publishes for its end users scope stack actions to stack/SC-*
# (https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSServiceCatalogEndUserFullAccess.html).
# What such a stack names (CloudFormation's generated names, cfnbuild.physical_name) starts with it.
SERVICE_CATALOG_STACKS = "SC-*"

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
# Schema actions never granted on "*", whatever the product makes. The Auto Scaling group's schema
# lists ssm:Get* so that a group can resolve the SSM parameters its launch template names; the
# product's own parameters are resolved by CloudFormation with ssm:GetParameters granted on those
# parameters only (provisioning.grant_ssm_parameters_read). On "*" it would read every parameter in the
# account, SecureStrings included.
ALWAYS_WITHHELD = ("ssm:Get*",)
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
                "cfnbuild/deliver/catalog/launch_role.py "
                "with the AWS document that says what it makes, or leave it out of the stack"
            )
        expansions.append(TRANSFORM_EXPANSIONS[name])
    return tuple(expansions)


def transform_name(transform: str) -> str:
    """A transform's name as its ARN spells it: ``AWS::SecretsManager-2024-09-16`` → ``SecretsManager-2024-09-16``."""
    return transform.removeprefix("AWS::")


_NAMED_IAM_TYPES = ("AWS::IAM::Role", "AWS::IAM::InstanceProfile", "AWS::IAM::ManagedPolicy")


def service_of_type(resource_type: str) -> str:
    """The IAM service prefix of a resource type (``AWS::ElasticLoadBalancingV2::Listener`` → ``elasticloadbalancing``).

    The prefix its schema's handlers name that its namespace spells, else the one they name most
    (``AWS::CertificateManager::*`` → ``acm``).
    """
    namespace = resource_type.split("::")[1].lower() if resource_type.count("::") == 2 else resource_type.lower()
    schema = resource_schema(resource_type)
    if schema is None:
        return namespace
    handlers = schema.get("handlers")
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
                    "cfnbuild/deliver/catalog/launch_role.py with "
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
        transforms.update(transform_name(t) for t in (name, *expansion.transforms))
        applications.update(expansion.applications)
        withheld.update(expansion.withheld)
    withheld -= _own_actions(resources)
    withheld.update(ALWAYS_WITHHELD)
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
