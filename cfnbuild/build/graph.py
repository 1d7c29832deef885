"""The dependency graph of a rendered template, and its critical path.

CloudFormation creates a resource as soon as everything it references (``Ref``, ``Fn::GetAtt``,
``Fn::Sub``) and everything in its ``DependsOn`` exists, so the deploy takes at least as long as
the slowest chain of dependencies. :func:`critical_path` finds that chain, weighting each
resource by the typical creation time of its type, so a change that lengthens the deploy shows
in review (``cfnbuild graph``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

# Typical time CloudFormation takes to create one resource of a type, in seconds. These are
# estimates, not measurements: AWS publishes no table. Where the AWS documentation states a
# duration, the entry cites it; the others are the order of magnitude seen in stack events of
# stacks like this one, and are marked "estimate". A type not listed counts DEFAULT_SECONDS.
TYPICAL_SECONDS: dict[str, tuple[int, str]] = {
    "AWS::RDS::DBCluster": (
        420,
        "estimate; Aurora User Guide, 'Creating an Aurora DB cluster': several minutes",
    ),
    "AWS::RDS::DBInstance": (
        540,
        "estimate; Aurora: 'it can take up to 20 minutes for the new instance to be available' (Aurora User Guide)",
    ),
    "AWS::CertificateManager::Certificate": (
        300,
        "estimate; DNS validation 'can take up to 30 minutes' (ACM User Guide, DNS validation)",
    ),
    "AWS::EC2::NatGateway": (
        120,
        "estimate; NAT gateways start in the 'pending' state for a few minutes (VPC User Guide)",
    ),
    "AWS::AutoScaling::AutoScalingGroup": (
        420,
        "estimate; waits for instance signals (CreationPolicy), bounded by its timeout",
    ),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": (180, "estimate; 'provisioning' until active"),
    "AWS::Route53::RecordSet": (60, "estimate; waits for the change to reach INSYNC (Route 53 API GetChange)"),
    "AWS::CloudFront::Distribution": (900, "estimate; deployment to edge locations"),
    "AWS::KMS::Key": (30, "estimate"),
    "AWS::SecretsManager::Secret": (10, "estimate"),
    "AWS::EC2::VPC": (15, "estimate"),
    "AWS::EC2::Subnet": (10, "estimate"),
    "AWS::EC2::InternetGateway": (15, "estimate"),
    "AWS::EC2::VPCGatewayAttachment": (20, "estimate"),
    "AWS::EC2::EIP": (10, "estimate"),
    "AWS::EC2::Route": (20, "estimate"),
    "AWS::EC2::SecurityGroup": (10, "estimate"),
    "AWS::EC2::LaunchTemplate": (5, "estimate"),
    "AWS::IAM::Role": (20, "estimate; IAM is eventually consistent and CloudFormation waits for propagation"),
    "AWS::IAM::InstanceProfile": (120, "estimate; CloudFormation waits for the profile to propagate"),
    "AWS::S3::Bucket": (20, "estimate"),
    "AWS::Logs::LogGroup": (5, "estimate"),
    "AWS::SNS::Topic": (10, "estimate"),
    "AWS::ElasticLoadBalancingV2::TargetGroup": (15, "estimate"),
    "AWS::ElasticLoadBalancingV2::Listener": (5, "estimate"),
}
DEFAULT_SECONDS = 5

_SUB_NAME = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


def typical_seconds(resource_type: str) -> int:
    """The typical creation time of ``resource_type``."""
    return TYPICAL_SECONDS.get(resource_type, (DEFAULT_SECONDS, "default"))[0]


def _references(node: Any) -> Iterator[str]:
    """Every logical ID ``node`` references through Ref, GetAtt or Sub."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                yield value
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".", 1)[0]
                yield target
            elif key == "Fn::Sub":
                text, variables = (value, {}) if isinstance(value, str) else (value[0], value[1])
                local = set(variables)
                yield from (name for name in _SUB_NAME.findall(text) if name not in local)
                yield from _references(variables)
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def references(node: Any) -> set[str]:
    """Every logical ID ``node`` (an output's Value, a property) references through Ref, GetAtt or Sub."""
    return set(_references(node))


def dependencies(template: Mapping[str, Any]) -> dict[str, set[str]]:
    """Logical ID → the resources it must wait for (references and DependsOn)."""
    resources = template.get("Resources", {})
    graph: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        depends = resource.get("DependsOn", [])
        wanted = set([depends] if isinstance(depends, str) else depends)
        wanted |= set(_references(resource.get("Properties", {})))
        graph[logical_id] = {name for name in wanted if name in resources and name != logical_id}
    return graph


@dataclass(frozen=True)
class PathStep:
    """One resource on the critical path."""

    logical_id: str
    resource_type: str
    seconds: int
    finished_at: int


def critical_path(template: Mapping[str, Any]) -> list[PathStep]:
    """The chain of dependencies that takes longest to create, first resource first."""
    graph = dependencies(template)
    resources = template.get("Resources", {})

    @cache
    def finish(logical_id: str) -> tuple[int, str | None]:
        own = typical_seconds(resources[logical_id]["Type"])
        best: tuple[int, str | None] = (0, None)
        for dependency in sorted(graph[logical_id]):
            candidate = (finish(dependency)[0], dependency)
            if candidate[0] > best[0]:
                best = candidate
        return best[0] + own, best[1]

    if not resources:
        return []
    last = max(sorted(resources), key=lambda name: finish(name)[0])
    chain: list[str] = []
    current: str | None = last
    while current is not None:
        chain.append(current)
        current = finish(current)[1]
    chain.reverse()
    return [
        PathStep(name, resources[name]["Type"], typical_seconds(resources[name]["Type"]), finish(name)[0])
        for name in chain
    ]


def to_dot(template: Mapping[str, Any], *, name: str) -> str:
    """The dependency graph in Graphviz dot: an arrow from each resource to what it waits for."""
    lines = [f"digraph {name} {{", "  rankdir=LR;"]
    resources = template.get("Resources", {})
    for logical_id, waits_for in sorted(dependencies(template).items()):
        label = f"{logical_id}\\n{resources[logical_id]['Type']}"
        lines.append(f'  "{logical_id}" [label="{label}"];')
        lines.extend(f'  "{logical_id}" -> "{dependency}";' for dependency in sorted(waits_for))
    lines.append("}")
    return "\n".join(lines) + "\n"
