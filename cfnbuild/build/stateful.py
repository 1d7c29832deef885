"""The stateful mark: resources that hold data the stack must never lose by accident.

A blueprint marks a resource stateful once, where it makes it. From that mark the engine sets
``DeletionPolicy`` and ``UpdateReplacePolicy`` and records the mark in the resource's Metadata,
where the deploy engine reads it back from the written template to build the stack policy and
the plan's danger marks.

The policies: ``Snapshot`` where the type supports it (the database); otherwise
``RetainExceptOnCreate`` on delete — kept like ``Retain`` once the stack has been created, but
deleted when the stack's very first create rolls back, so a failed first attempt leaves no
empty buckets, keys, secrets or log groups outside any stack — and ``Retain`` on replacement
(UpdateReplacePolicy takes no RetainExceptOnCreate; a replaced resource is always an old one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

METADATA_KEY = "cfnbuild"

# Types whose DeletionPolicy may be Snapshot, from "DeletionPolicy attribute" in the
# CloudFormation User Guide:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html
SNAPSHOT_TYPES = frozenset(
    {
        "AWS::EC2::Volume",
        "AWS::ElastiCache::CacheCluster",
        "AWS::ElastiCache::ReplicationGroup",
        "AWS::Neptune::DBCluster",
        "AWS::RDS::DBCluster",
        "AWS::RDS::DBInstance",
        "AWS::Redshift::Cluster",
        "AWS::DocDB::DBCluster",
    }
)


def deletion_policy(resource_type: str) -> str:
    """The DeletionPolicy of a stateful resource of ``resource_type``: Snapshot, else RetainExceptOnCreate."""
    return "Snapshot" if resource_type in SNAPSHOT_TYPES else "RetainExceptOnCreate"


def update_replace_policy(resource_type: str) -> str:
    """The UpdateReplacePolicy of a stateful resource of ``resource_type``: Snapshot, else Retain."""
    return "Snapshot" if resource_type in SNAPSHOT_TYPES else "Retain"


def is_stateful(resource: Mapping[str, Any]) -> bool:
    """Whether a rendered template resource carries cfnbuild's stateful mark."""
    metadata = resource.get("Metadata") or {}
    mark = metadata.get(METADATA_KEY) or {}
    return bool(isinstance(mark, Mapping) and mark.get("stateful"))


def stateful_resources(template: Mapping[str, Any]) -> dict[str, str]:
    """Logical ID → type of every stateful resource in a rendered template."""
    return {
        logical_id: resource["Type"]
        for logical_id, resource in sorted(template.get("Resources", {}).items())
        if is_stateful(resource)
    }
