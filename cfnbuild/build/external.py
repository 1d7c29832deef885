"""A resource of another stack of the project, as one stack sees it: a typed handle on its values.

When a blueprint made in one stack needs a resource another stack makes (a role granted access to
a bucket of the data stack, say), it cannot take the troposphere object: ``Ref`` and ``GetAtt`` of
a resource name only resources of the same template. :meth:`cfnbuild.Stack.use_resource` gives a
:class:`StackResource` instead: the resource's type, its logical ID in the stack that makes it,
and the parameters (filled by ``cfnbuild deploy`` from that stack's outputs, see
:meth:`cfnbuild.Stack.use`) that carry its ``Ref`` value and its ARN. The grant helpers
(:mod:`cfnbuild.build.grants`) and the blueprints take either, through :func:`ref_of` and
:func:`arn_of`, so a policy still names exactly that resource by its ARN, never ``*``.

Example::

    bucket = stack.use_resource(
        "data", "AssetsBucket", "AWS::S3::Bucket", ref="AssetsBucketName", arn="AssetsBucketArn"
    )
    role.grant_bucket_read(bucket)  # Resource: {"Ref": "DataAssetsBucketArn"}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from troposphere import AWSObject, GetAtt, Ref

# Types whose Ref already is their ARN (CloudFormation's "Return values" of each type).
REF_IS_ARN = frozenset(
    {
        "AWS::SecretsManager::Secret",
        "AWS::SNS::Topic",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "AWS::ElasticLoadBalancingV2::TargetGroup",
    }
)


@dataclass(frozen=True)
class StackResource:
    """A resource of the project's stack ``stack``, known to this stack through two String parameters.

    ``ref_parameter`` holds what ``Ref`` of the resource returns (a bucket's or a log group's
    name, a secret's ARN, a key's ID); ``arn_parameter`` its ARN (the same parameter when ``Ref``
    is the ARN, or none is known: then :attr:`arn` is ``Ref`` for the types whose ``Ref`` is the ARN and
    refused for the others). ``logical_id`` is its ID in ``stack`` (the grants' statement IDs name it, as
    they would name a resource of this stack).
    """

    stack: str
    logical_id: str
    resource_type: str
    ref_parameter: str
    arn_parameter: str = ""

    @property
    def title(self) -> str:
        """The logical ID in the producing stack (what a troposphere resource calls its title)."""
        return self.logical_id

    @property
    def ref(self) -> Ref:
        """What ``Ref`` of the resource returns, as this stack sees it."""
        return Ref(self.ref_parameter)

    @property
    def arn(self) -> Ref:
        """The resource's ARN, as this stack sees it."""
        if self.arn_parameter:
            return Ref(self.arn_parameter)
        if self.resource_type in REF_IS_ARN:
            return self.ref
        raise ValueError(
            f"{self.logical_id} of stack {self.stack}: no output carries its ARN; pass arn= to Stack.use_resource"
        )


Resource: TypeAlias = AWSObject | StackResource
"""A resource of this stack, or one of another stack of the project."""


def ref_of(resource: Resource) -> Ref:
    """``Ref`` of a resource of this stack, or the parameter carrying it for one of another stack."""
    return resource.ref if isinstance(resource, StackResource) else Ref(resource)


def arn_of(resource: Resource) -> GetAtt | Ref:
    """The ARN of a resource: ``GetAtt X.Arn`` (``Ref`` where Ref is the ARN) here, the parameter elsewhere."""
    if isinstance(resource, StackResource):
        return resource.arn
    if resource.resource_type in REF_IS_ARN:
        return Ref(resource)
    return GetAtt(resource, "Arn")


def type_of(resource: object) -> str | None:
    """The CloudFormation type of a resource or a handle on one; ``None`` for anything else."""
    value = getattr(resource, "resource_type", None)
    return value if isinstance(value, str) else None
