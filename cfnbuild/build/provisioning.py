"""Provisioning roles: the role CloudFormation stacks are made with (a Service Catalog launch role).

Its actions are read from the resource schemas of the types a product makes
(:func:`provisioning_actions`); :func:`grant_provisioning` scopes them — IAM to the roles,
instance profiles and policies the launched stacks make, ``iam:PassRole`` to the services those
roles trust, KMS through the services that use the keys, stacks to the ``SC-*`` stacks — and
packs them into managed policies that fit IAM's quotas. Everything here is for that one kind of
role; every other grant is :mod:`cfnbuild.build.grants`.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import awacs.autoscaling
import awacs.cloudformation
import awacs.ec2
import awacs.kms
import awacs.logs
import awacs.s3
import awacs.secretsmanager
import awacs.sns
import awacs.ssm
import awacs.sts
from awacs.aws import (
    Action,
    Allow,
    ArnLike,
    Condition,
    PolicyDocument,
    Statement,
    StringEquals,
)
from troposphere import Sub, encode_to_dict, iam

from cfnbuild.build.cfn_data import iam_policies, resource_schema
from cfnbuild.build.naming import logical_id, partition_arn

if TYPE_CHECKING:
    from cfnbuild.build.blueprint import Blueprint

from cfnbuild.build.grants import SID_PREFIX, Grants, ServiceRole

PROVISIONING_HANDLERS = ("create", "read", "update", "delete")
MANAGED_POLICY_MAX_CHARS = 6_144  # IAM quota: one managed policy's JSON, whitespace not counted
MANAGED_POLICIES_PER_ROLE = 10  # IAM's default quota of managed policies attached to one role
_PROVISIONING_POLICY_BUDGET = 5_900  # leaves room for the document's envelope
STACK_OPERATION_ACTIONS: tuple[Action, ...] = (
    awacs.cloudformation.CreateStack,
    awacs.cloudformation.UpdateStack,
    awacs.cloudformation.DeleteStack,
    awacs.cloudformation.DescribeStacks,
    awacs.cloudformation.DescribeStackEvents,
    awacs.cloudformation.DescribeStackResource,
    awacs.cloudformation.DescribeStackResources,
    awacs.cloudformation.ListStackResources,
    awacs.cloudformation.GetTemplate,
    awacs.cloudformation.SetStackPolicy,
    awacs.cloudformation.CreateChangeSet,
    awacs.cloudformation.DescribeChangeSet,
    awacs.cloudformation.ExecuteChangeSet,
    awacs.cloudformation.DeleteChangeSet,
    awacs.cloudformation.ListChangeSets,
    awacs.cloudformation.TagResource,
    awacs.cloudformation.UntagResource,
)
# Both take a template rather than a stack (ValidateTemplate has no resource type at all, and
# GetTemplateSummary none when given a template URL), so they can only be granted on "*".
TEMPLATE_INSPECTION_ACTIONS: tuple[Action, ...] = (
    awacs.cloudformation.ValidateTemplate,
    awacs.cloudformation.GetTemplateSummary,
)
SSM_PARAMETER_READ_ACTIONS: tuple[Action, ...] = (awacs.ssm.GetParameters,)
# The tag Service Catalog puts on the copies of product templates in its own bucket.
SERVICE_CATALOG_TEMPLATE_TAG = "s3:ExistingObjectTag/servicecatalog:provisioning"


@dataclass(frozen=True)
class ProvisioningActions:
    """What creating, updating, deleting and reading some resource types takes, per their schemas."""

    actions: tuple[str, ...]  # sorted; none already covered by a wildcard action in the set
    unknown: tuple[str, ...]  # named by a schema but not an IAM action cfn-lint knows: not granted
    unused: tuple[str, ...] = ()  # named by a schema, not granted: the product does not need it (grant_provisioning)


@cache
def _iam_actions() -> dict[str, frozenset[str]]:
    """Every IAM action cfn-lint knows (its W3037 reference), lower case, by service prefix."""
    # Read from cfn-lint's data without importing cfn-lint (about half a second), when first needed.
    services = iam_policies()
    return {prefix: frozenset(spec.get("Actions", {})) for prefix, spec in services.items()}


def _known_action(action: str) -> bool:
    service, _, name = action.lower().partition(":")
    known = _iam_actions().get(service)
    if not known or not name:
        return False
    if "*" in name or "?" in name:
        return any(fnmatch.fnmatchcase(candidate, name) for candidate in known)
    return name in known


def provisioning_actions(
    resource_types: Iterable[str], *, regions: Sequence[str] = ("us-east-1",), withheld: Iterable[str] = ()
) -> ProvisioningActions:
    """The IAM actions CloudFormation needs to create, update, delete and read ``resource_types``.

    Read from each type's resource schema as cfn-lint ships it (``handlers.<op>.permissions`` for
    the create, read, update and delete handlers), in every region of ``regions`` (a type's schema
    may differ by region). Actions are matched without regard to case, as IAM does; one that a
    wildcard action of the set already covers (``ec2:DescribeVpcs`` under ``ec2:Describe*``) is
    left out, which changes nothing the role may do. An action IAM does not know (a schema's
    slip such as ``s3:REST.PUT.OBJECT``; cfn-lint's own action list is the reference) is not
    granted but returned in ``unknown``. A type without a schema, or whose schema has no
    handlers, raises ``ValueError``: its permissions cannot be derived. ``withheld`` actions are
    left out before the wildcard check, so that a withheld wildcard (``ssm:Get*``) does not take
    the exact actions it covers (``ssm:GetCalendarState``) with it.
    """
    wanted: dict[str, str] = {}
    for resource_type in sorted(set(resource_types)):
        for region in regions:
            schema = resource_schema(region, resource_type)
            if schema is None:
                raise ValueError(f"{resource_type} has no resource schema in {region}; cannot derive its permissions")
            handlers = schema.get("handlers") or {}
            if not any(op in handlers for op in PROVISIONING_HANDLERS):
                raise ValueError(f"the {resource_type} schema lists no handler permissions; cannot derive them")
            for op in PROVISIONING_HANDLERS:
                for action in (handlers.get(op) or {}).get("permissions", []):
                    wanted.setdefault(action.lower(), action)
    left_out = {action.lower() for action in withheld}
    known = {key: action for key, action in wanted.items() if _known_action(action) and key not in left_out}
    wildcards = [key for key in known if "*" in key or "?" in key]
    kept = [
        action
        for key, action in known.items()
        if not any(other != key and fnmatch.fnmatchcase(key, other) for other in wildcards)
    ]
    unknown = [action for key, action in wanted.items() if key not in known]
    return ProvisioningActions(tuple(sorted(kept, key=str.lower)), tuple(sorted(unknown, key=str.lower)))


def _allow_anywhere(
    grants: Grants, verb: str, target: str, actions: Sequence[Action], condition: Condition | None = None
) -> None:
    """A statement on ``"*"`` for actions that support resource-level permissions.

    Only the documented exceptions below use it; :meth:`Grants._allow` refuses this on purpose.
    """
    sid = SID_PREFIX + logical_id(verb, target)
    if any(st.Sid == sid for st in grants.statements):
        return
    kwargs: dict[str, Any] = {"Sid": sid, "Effect": Allow, "Action": list(actions), "Resource": ["*"]}
    if condition is not None:
        kwargs["Condition"] = condition
    grants.statements.append(Statement(**kwargs))


def _document_chars(document: PolicyDocument) -> int:
    return len(json.dumps(encode_to_dict(document), separators=(",", ":")))


@cache
def _action_resource_types() -> dict[str, dict[str, tuple[str, ...]]]:
    """For each IAM action cfn-lint knows (lower case, by service prefix), the resource types it can be scoped to.

    cfn-lint's copy of the Service Authorization Reference: an action with no resource type is
    one AWS documents as taking only ``"*"`` ("If there is no value for this column, you must
    specify all resources", https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html).
    """
    services = iam_policies()
    return {
        prefix: {name: tuple(spec.get("Resources", [])) for name, spec in spec_.get("Actions", {}).items()}
        for prefix, spec_ in services.items()
    }


def action_resource_types(action: str) -> tuple[str, ...]:
    """The resource types ``action`` (``iam:PassRole``) can be scoped to; ``()`` when it takes only ``"*"``.

    Raises ``ValueError`` for an action IAM does not know.
    """
    service, _, name = action.lower().partition(":")
    known = _action_resource_types().get(service, {})
    if name not in known:
        raise ValueError(f"{action} is not an IAM action cfn-lint knows; cannot tell what it can be scoped to")
    return known[name]


@dataclass(frozen=True)
class LaunchScope:
    """What the stacks a provisioning role makes are called, and what their IAM roles and KMS keys need.

    ``stack_names`` is the name pattern of the launched stacks (Service Catalog's ``SC-*``): the
    roles, instance profiles and managed policies such a stack makes are named after it (a name
    CloudFormation generates, or one :func:`cfnbuild.build.naming.physical_name` builds, starts with the
    stack name), so IAM actions are granted on ``role/<path>SC-*`` and the like. ``paths`` are the
    IAM paths those use. ``passed_to`` are the services the product's roles trust, the only ones
    ``iam:PassRole`` may hand them to (``iam:PassedToService``); ``attached_policies`` the managed
    policy ARNs the product's roles attach, the only ones ``iam:AttachRolePolicy`` may attach
    (``iam:PolicyARN``). ``key_uses`` is, per service prefix (``rds``), the KMS actions the role
    needs on keys of this account for that service to encrypt with them on its behalf, granted
    only through that service (``kms:ViaService``). ``services`` are the IAM service prefixes the
    product uses: actions the schemas name for any other service are not granted (``None``: all).
    ``transforms`` are the AWS transforms (``SecretsManager-2024-09-16``) the product template
    declares, whose change sets the role may create (:func:`grant_transforms`), and
    ``applications`` the Serverless Application Repository applications their expansion deploys;
    ``withheld`` schema actions not granted although a type lists them (what an expansion's types
    would read that the product never gives them, such as function code in an S3 bucket).
    """

    stack_names: str = "SC-*"
    paths: tuple[str, ...] = ("/",)
    passed_to: tuple[Any, ...] = ()
    attached_policies: tuple[Any, ...] = ()
    key_uses: tuple[tuple[str, tuple[str, ...]], ...] = ()
    services: tuple[str, ...] | None = None
    transforms: tuple[str, ...] = ()
    applications: tuple[str, ...] = ()
    withheld: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9-]+\*", self.stack_names):
            raise ValueError(
                f"stack_names {self.stack_names!r}: give a name prefix and '*', like 'SC-*' (letters, digits, '-')"
            )
        for transform in self.transforms:
            if not re.fullmatch(r"[A-Za-z]+-\d{4}-\d{2}-\d{2}", transform):
                raise ValueError(
                    f"transform {transform!r}: give an AWS transform's name without 'AWS::', like "
                    "'SecretsManager-2024-09-16'"
                )
        for application in self.applications:
            if not re.fullmatch(r"[A-Za-z0-9-]+\*?", application) or application == "*":
                raise ValueError(
                    f"application {application!r}: give a Serverless Application Repository application name or "
                    "name prefix and '*', like 'SecretsManager*'"
                )
        for path in self.paths:
            if not re.fullmatch(r"/([A-Za-z0-9+=,.@_-]+/)*", path):
                raise ValueError(f"IAM path {path!r}: give a path like '/' or '/app/' (IAM's path syntax)")


@dataclass(frozen=True)
class Provisioning:
    """The managed policies :func:`grant_provisioning` made, and what they grant."""

    scoped: tuple[iam.ManagedPolicy, ...]  # every statement names ARNs (or a condition-bound service)
    unscoped: tuple[iam.ManagedPolicy, ...]  # statements on "*": the documented exception, checkov skips needed
    actions: ProvisioningActions


# IAM actions the launch role gets on the names of the launched stacks' resources, by the resource
# type the Service Authorization Reference scopes them to.
_IAM_NAMED_TYPES = ("role", "instance-profile", "policy")
# Service-linked roles live under this path, named by AWS, trusted only by their service and
# granted only what AWS defines (https://docs.aws.amazon.com/IAM/latest/UserGuide/using-service-linked-roles.html).
SERVICE_LINKED_ROLES = "role/aws-service-role/*"


def _iam_statements(grants: Grants, actions: Sequence[str], scope: LaunchScope) -> tuple[list[str], list[str]]:
    """Add the IAM statements, each on the launched stacks' names.

    Returns the actions that take only ``"*"``, and those the product does not need: ``iam:PassRole``
    when its roles trust no service, ``iam:AttachRolePolicy`` when they attach no managed policy.
    """
    by_type: dict[str, list[str]] = {}
    unscopable: list[str] = []
    for action in actions:
        name = action.split(":", 1)[1].lower()
        if name in ("passrole", "attachrolepolicy", "createservicelinkedrole"):
            by_type.setdefault(name, []).append(action)
            continue
        types = action_resource_types(action)
        kind = next((t for t in _IAM_NAMED_TYPES if t in types), None)
        if not types:
            unscopable.append(action)
        elif kind is None:
            raise ValueError(
                f"{action} acts on {', '.join(types)}; a launch role is granted IAM actions only on the roles, "
                "instance profiles and policies its stacks make"
            )
        else:
            by_type.setdefault(kind, []).append(action)

    def names(kind: str) -> list[Sub]:
        return [partition_arn("iam", f"{kind}{path}{scope.stack_names}", region=False) for path in scope.paths]

    target = scope.stack_names.replace("*", "")
    for kind in _IAM_NAMED_TYPES:
        if kind in by_type:
            grants._allow(logical_id("Manage", kind), target, [_action(a) for a in by_type[kind]], names(kind))
    if "attachrolepolicy" in by_type and scope.attached_policies:
        # Only the managed policies the product's roles attach (iam:PolicyARN,
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#ck_PolicyARN).
        condition = Condition(ArnLike("iam:PolicyARN", list(scope.attached_policies)))
        actions_ = [_action(a) for a in by_type["attachrolepolicy"]]
        grants._allow("AttachRolePolicies", target, actions_, names("role"), condition)
    if "passrole" in by_type and scope.passed_to:
        # Only to the services the product's roles trust (iam:PassedToService,
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html).
        condition = Condition(StringEquals("iam:PassedToService", list(scope.passed_to)))
        grants._allow("PassRoles", target, [_action(a) for a in by_type["passrole"]], names("role"), condition)
    if "createservicelinkedrole" in by_type:
        resources = [partition_arn("iam", SERVICE_LINKED_ROLES, region=False)]
        linked = [_action(a) for a in by_type["createservicelinkedrole"]]
        grants._allow("Create", "ServiceLinkedRoles", linked, resources)
    unneeded = by_type.get("passrole", []) if not scope.passed_to else []
    unneeded += by_type.get("attachrolepolicy", []) if not scope.attached_policies else []
    return unscopable, unneeded


def _kms_statements(grants: Grants, actions: Sequence[str], scope: LaunchScope) -> list[str]:
    """Add the KMS statements on this account's keys (and aliases); return the actions that take only ``"*"``.

    Key ARNs hold key IDs that KMS makes at creation, not names, so no pattern can single out
    the keys a launched stack makes: the management actions of the product's key types are
    granted on the keys and aliases of this account and region, and each service's use of a key
    (``key_uses``) only through that service (``kms:ViaService``,
    https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service).
    The stack's tag on the key (``aws:cloudformation:stack-name``) cannot bind them instead:
    "it might take up to five minutes for tag and alias changes to affect KMS key authorization"
    (https://docs.aws.amazon.com/kms/latest/developerguide/tag-authorization.html), and the key's
    create handler calls ``kms:PutKeyPolicy`` and ``kms:EnableKeyRotation`` right after
    ``kms:CreateKey``, as a failed first create's rollback calls ``kms:ScheduleKeyDeletion``.
    """
    keys = partition_arn("kms", "key/*")
    by_types: dict[tuple[str, ...], list[str]] = {}
    unscopable: list[str] = []
    for action in actions:
        types = tuple(t for t in action_resource_types(action) if t in ("key", "alias"))
        if not action_resource_types(action):
            unscopable.append(action)
        elif not types:
            raise ValueError(f"{action} acts on {', '.join(action_resource_types(action))}; not a key or an alias")
        else:
            by_types.setdefault(types, []).append(action)
    for types, grouped in sorted(by_types.items()):
        resources = [partition_arn("kms", f"{t}/*") for t in types]
        named = [{"key": "Keys", "alias": "Aliases"}[t] for t in types]
        grants._allow(logical_id("Manage", *named), "InAccount", [_action(a) for a in grouped], resources)
    for service, uses in sorted(scope.key_uses):
        if uses:
            via = Condition(StringEquals("kms:ViaService", Sub(f"{service}.${{AWS::Region}}.amazonaws.com")))
            grants._allow("UseKeysVia", service, [_action(a) for a in sorted(set(uses))], [keys], via)
    return unscopable


def _stack_statements(grants: Grants, actions: Sequence[str], scope: LaunchScope) -> list[str]:
    """Add the CloudFormation statement on the launched stacks (and the nested stacks they make); return the rest.

    A nested stack (an ``AWS::CloudFormation::Stack`` of the product, or the one a transform's
    expansion holds) is named by CloudFormation after its parent, ``<parent>-<logical id>-<random>``
    (nested stacks: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-nested-stacks.html;
    the guide shows such names but states no rule, so this is what CloudFormation does rather than
    a documented promise), so ``stack/SC-*`` names it as it names the launched stack, and the roles
    it makes (``<nested stack>-<logical id>-<random>``) are ``role/SC-*``. Returns the actions that
    take only ``"*"``.
    """
    scoped: list[str] = []
    unscopable: list[str] = []
    for action in actions:
        types = action_resource_types(action)
        if not types:
            unscopable.append(action)
        elif "stack" in types:
            scoped.append(action)
        else:
            raise ValueError(f"{action} acts on {', '.join(types)}; a launch role is granted stack actions only")
    if scoped:
        resources = [partition_arn("cloudformation", f"stack/{scope.stack_names}")]
        target = scope.stack_names.replace("*", "")
        grants._allow("ManageNestedStacks", target, [_action(a) for a in scoped], resources)
    return unscopable


def _function_statements(grants: Grants, actions: Sequence[str], scope: LaunchScope) -> list[str]:
    """Add the Lambda statement on the launched stacks' functions; return the actions that take only ``"*"``.

    On ``"*"``, ``lambda:UpdateFunctionCode`` would let the role rewrite any function of the
    account (privilege escalation, checkov CKV_AWS_110), so the function actions are granted on
    ``function:SC-*``: a function CloudFormation names is ``<stack>-<logical id>-<random>``, and a
    nested stack's starts with its parent's name (see :func:`_stack_statements`).
    """
    scoped: list[str] = []
    unscopable: list[str] = []
    for action in actions:
        types = action_resource_types(action)
        if "function" in types:
            scoped.append(action)
        else:
            unscopable.append(action)
    if scoped:
        resources = [partition_arn("lambda", f"function:{scope.stack_names}")]
        target = scope.stack_names.replace("*", "")
        grants._allow("ManageFunctions", target, [_action(a) for a in scoped], resources)
    return unscopable


# Creating a change set of a template that declares a transform is authorised on the transform
# too: "To allow AWS::Serverless transforms to create a change set, the policy should include the
# arn:aws:cloudformation:<region>:aws:transform/Serverless-2016-10-31 resource-level permission"
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-iam-template.html); the
# transforms AWS hosts are owned by the account "aws".
TRANSFORM_CHANGE_SET_ACTIONS: tuple[Action, ...] = (awacs.cloudformation.CreateChangeSet,)
# What deploying a Serverless Application Repository application as a nested stack asks of the
# caller: the application, a CloudFormation template made of it, and that template's status
# (https://docs.aws.amazon.com/serverlessrepo/latest/devguide/serverlessrepo-api-permissions-ref.html);
# all three take the application's ARN.
APPLICATION_DEPLOY_ACTIONS: tuple[Action, ...] = (
    Action("serverlessrepo", "GetApplication"),
    Action("serverlessrepo", "CreateCloudFormationTemplate"),
    Action("serverlessrepo", "GetCloudFormationTemplate"),
)


def grant_transforms(grants: Grants, scope: LaunchScope) -> None:
    """Create change sets through the transforms ``scope`` names, and deploy the applications their expansion uses.

    A transform's ARN is ``arn:${AWS::Partition}:cloudformation:${AWS::Region}:aws:transform/<name>``;
    the applications are AWS's, in an account and Region the template does not name, so their
    ARNs leave both open and only the name (prefix) binds them.
    """
    if scope.transforms:
        resources = [
            Sub(f"arn:${{AWS::Partition}}:cloudformation:${{AWS::Region}}:aws:transform/{name}")
            for name in sorted(set(scope.transforms))
        ]
        grants._allow("ExpandTemplates", "Transforms", TRANSFORM_CHANGE_SET_ACTIONS, resources)
    if scope.applications:
        resources = [
            Sub(f"arn:${{AWS::Partition}}:serverlessrepo:*:*:applications/{name}")
            for name in sorted(set(scope.applications))
        ]
        grants._allow("Deploy", "Applications", APPLICATION_DEPLOY_ACTIONS, resources)


def _pack(statements: Sequence[Statement]) -> list[Grants]:
    """The statements in as few documents under IAM's managed-policy quota as their order allows."""
    chunks: list[Grants] = [Grants()]
    for statement in statements:
        chunks[-1].statements.append(statement)
        if _document_chars(chunks[-1].document()) > _PROVISIONING_POLICY_BUDGET and len(chunks[-1].statements) > 1:
            chunks[-1].statements.pop()
            chunks.append(Grants())
            chunks[-1].statements.append(statement)
    return [chunk for chunk in chunks if chunk.statements]


def _star_statements(by_service: Mapping[str, list[str]]) -> list[Statement]:
    """One statement on ``"*"`` per service, split where one would not fit a policy."""
    statements: list[Statement] = []
    for service, actions in sorted(by_service.items()):
        parts = [actions]
        while True:  # a service too large for one policy is split into statements that fit
            trial = Grants()
            _allow_anywhere(trial, "Provision", service, [_action(a) for a in parts[-1]])
            if _document_chars(trial.document()) <= _PROVISIONING_POLICY_BUDGET or len(parts[-1]) == 1:
                break
            half = len(parts[-1]) // 2
            parts[-1:] = [parts[-1][:half], parts[-1][half:]]
        for index, part in enumerate(parts, start=1):
            holder = Grants()
            _allow_anywhere(
                holder, "Provision", service if len(parts) == 1 else f"{service}{index}", [_action(a) for a in part]
            )
            statements += holder.statements
    return statements


def grant_provisioning(
    blueprint: Blueprint[Any],
    role: ServiceRole,
    resource_types: Iterable[str],
    *,
    regions: Sequence[str] = ("us-east-1",),
    name: str = "Provisioning",
    scope: LaunchScope | None = None,
) -> Provisioning:
    """Let ``role`` create, update, delete and read resources of ``resource_types``, in stacks named like ``scope``.

    The actions are exactly :func:`provisioning_actions` of the types, less those of services the
    product does not use (``scope.services``). IAM actions are granted on the roles, instance
    profiles and policies the launched stacks make (named after them: ``role/SC-*``),
    ``iam:PassRole`` only to the services the product's roles trust and ``iam:AttachRolePolicy``
    only for the policies they attach; KMS actions on this account's keys, a service's use of
    them only through that service (:func:`_kms_statements`). KMS actions that the schemas of
    other types name (an encrypted database's ``kms:CreateGrant``) are not granted unbound: the
    product's ``scope.key_uses`` say which services use keys, and grant them bound to the service.

    The rest is the one documented exception to "grants are scoped to a resource ARN": the
    other services' resources are created at launch, in a stack that does not exist yet, with
    IDs made at creation (a VPC, an instance, a load balancer), so no ARN can name them; they are
    granted on ``"*"``, one statement per service, together with the IAM and KMS actions that
    support no resource-level permission at all (``kms:CreateKey``, ``iam:ListRoles``).

    The statements go into as many ``AWS::IAM::ManagedPolicy`` resources as IAM's 6,144-character
    quota per policy needs (the scoped ones apart from those on ``"*"``, so that only the latter
    carry checkov skips), attached to the role (an inline policy could not hold them: a role's
    inline policies share 10,240 characters).
    """
    scope = scope or LaunchScope()
    types = sorted(set(resource_types))
    everything = provisioning_actions(types, regions=regions)
    derived = provisioning_actions(types, regions=regions, withheld=scope.withheld)
    by_service, unused = _sort_provisioning_actions(derived.actions, types, regions, scope)
    unused += [a for a in everything.actions if a.lower() in {w.lower() for w in scope.withheld}]
    scoped = Grants()
    star, unneeded = _iam_statements(scoped, by_service.pop("iam", []), scope)
    unused += unneeded
    star += _kms_statements(scoped, by_service.pop("kms", []), scope)
    star += _stack_statements(scoped, by_service.pop("cloudformation", []), scope)
    star += _function_statements(scoped, by_service.pop("lambda", []), scope)
    grant_transforms(scoped, scope)
    for action in star:  # only actions with no resource type at all (action_resource_types)
        by_service.setdefault(action.split(":", 1)[0].lower(), []).append(action)
    scoped_chunks = _pack(scoped.statements)
    star_chunks = _pack(_star_statements(by_service))
    if len(scoped_chunks) + len(star_chunks) > MANAGED_POLICIES_PER_ROLE:
        raise ValueError(
            f"the provisioning actions of {len(types)} resource types need {len(scoped_chunks) + len(star_chunks)} "
            f"managed policies; a role takes {MANAGED_POLICIES_PER_ROLE}: split the product into smaller stacks"
        )

    kept = tuple(a for a in derived.actions if a not in unused)
    actions = ProvisioningActions(kept, derived.unknown, tuple(sorted(unused, key=str.lower)))
    return Provisioning(
        scoped=_policies(
            blueprint, role, scoped_chunks, f"Scoped{name}", "Manage the IAM roles, instance profiles and KMS keys"
        ),
        unscoped=_policies(blueprint, role, star_chunks, name, "Create, update, delete and read the other resources"),
        actions=actions,
    )


def _sort_provisioning_actions(
    actions: Iterable[str], types: Sequence[str], regions: Sequence[str], scope: LaunchScope
) -> tuple[dict[str, list[str]], list[str]]:
    """The provisioning actions to grant, by service, and those left out (withheld, unused, KMS bound to a service)."""
    key_types = [t for t in types if t.startswith("AWS::KMS::")]
    key_actions = {a.lower() for a in provisioning_actions(key_types, regions=regions).actions} if key_types else set()
    used = None if scope.services is None else {s.lower() for s in scope.services}
    bound_uses = {a.lower() for _, uses in scope.key_uses for a in uses}
    withheld = {a.lower() for a in scope.withheld}
    by_service: dict[str, list[str]] = {}
    unused: list[str] = []
    for action in actions:
        service = action.split(":", 1)[0].lower()
        if action.lower() in withheld:
            unused.append(action)
        elif service == "kms" and action.lower() not in key_actions:
            if action.lower() not in bound_uses:  # granted through its service only, when a key is used
                unused.append(action)
        elif used is not None and service not in used:
            unused.append(action)
        else:
            by_service.setdefault(service, []).append(action)
    return by_service, unused


def _policies(
    blueprint: Blueprint[Any], role: ServiceRole, chunks: list[Grants], label: str, what: str
) -> tuple[iam.ManagedPolicy, ...]:
    """One managed policy per chunk of statements, attached to ``role``."""
    made = []
    for index, chunk in enumerate(chunks, start=1):
        policy = iam.ManagedPolicy(
            blueprint.lid(role.role.title, label, index),
            Description=f"{what} a stack made with {role.role.title} holds",
            PolicyDocument=chunk.document(),
            Roles=[role.ref],
        )
        made.append(blueprint.add(policy))
    return tuple(made)


def _action(action: str) -> Action:
    service, _, name = action.partition(":")
    return Action(service, name)


def grant_stack_operations(grants: Grants, stack_names: str = "SC-*") -> None:
    """Create, update, delete, watch and tag the stacks named like ``stack_names`` in this account and region.

    Also validate and summarise templates (:data:`TEMPLATE_INSPECTION_ACTIONS`), which take a
    template rather than a stack and so can only be granted on ``"*"``. ``SC-*`` is how Service
    Catalog names the stacks of provisioned products.
    """
    if not re.fullmatch(r"[A-Za-z0-9*-]+", stack_names) or stack_names == "*":
        raise ValueError(
            f"stack_names {stack_names!r}: give a stack name pattern like 'SC-*' (letters, digits, '-', '*')"
        )
    resources = [partition_arn("cloudformation", f"stack/{stack_names}")]
    grants._allow("OperateStacks", stack_names.replace("*", ""), STACK_OPERATION_ACTIONS, resources)
    _allow_anywhere(grants, "InspectTemplates", "Any", TEMPLATE_INSPECTION_ACTIONS)


def grant_service_catalog_template_read(grants: Grants) -> None:
    """Read the copies of product templates that Service Catalog keeps in its own bucket.

    The bucket is service-owned and its name is not published, so the statement is on ``"*"``;
    it is bound to objects carrying the ``servicecatalog:provisioning=true`` tag, the condition
    AWS documents for launch roles.
    """
    condition = Condition(StringEquals(SERVICE_CATALOG_TEMPLATE_TAG, "true"))
    _allow_anywhere(grants, "ReadServiceCatalogTemplates", "Any", [awacs.s3.GetObject], condition)


def grant_ssm_parameters_read(grants: Grants, names: Sequence[str]) -> None:
    """Read the SSM parameters ``names`` (CloudFormation resolves ``AWS::SSM::Parameter::Value<...>`` parameters so).

    Public parameters (``/aws/service/...``) belong to no account, so their ARNs leave it empty.
    """
    resources: list[Any] = []
    for parameter in sorted(set(names)):
        if not re.fullmatch(r"[A-Za-z0-9_./-]{1,2048}", parameter) or "*" in parameter:
            raise ValueError(f"SSM parameter name {parameter!r}: give an exact name like '/aws/service/...'")
        path = parameter if parameter.startswith("/") else "/" + parameter
        resources.append(partition_arn("ssm", "parameter" + path, account=not path.startswith("/aws/")))
    if resources:
        grants._allow("ReadParameters", "Ssm", SSM_PARAMETER_READ_ACTIONS, resources)
