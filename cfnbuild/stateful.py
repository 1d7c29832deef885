"""The stateful mark: resources that hold data the stack must never lose by accident.

A blueprint marks a resource stateful once, where it makes it. From that mark the engine sets
``DeletionPolicy`` and ``UpdateReplacePolicy`` (``Snapshot`` where the type supports it,
``Retain`` otherwise) and records the mark in the resource's Metadata, where the deploy engine
reads it back from the written template to build the stack policy and the plan's danger marks.
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


def retention_policy(resource_type: str) -> str:
    """The DeletionPolicy/UpdateReplacePolicy for a stateful resource of ``resource_type``."""
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
