"""The dependency graph of a rendered template, and its critical path.

CloudFormation creates a resource as soon as everything it references (``Ref``, ``Fn::GetAtt``,
``Fn::Sub``) and everything in its ``DependsOn`` exists, so the deploy takes at least as long as
the slowest chain of dependencies. :func:`critical_path` finds that chain, weighting each
resource by the typical creation time of its type, so a change that lengthens the deploy shows
in review (``cfnbuild graph``).

Across the stacks of a project, :func:`stacks_critical_path` places each stack's own critical
path after the stacks it takes outputs of: the deploy runs independent stacks side by side
(:mod:`cfnbuild.deliver.graph_run`), so the slowest chain of stacks is what the deploy of the
whole environment takes at least.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from cfnbuild.build.references import template_inputs

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


@dataclass(frozen=True)
class StackLeg:
    """One stack on the critical path across stacks: its own critical path, placed in time.

    ``starts_at`` is when the last stack it takes outputs of is done (a stack's deploy starts
    when all of them are); ``finished_at`` adds the stack's own critical path. ``steps`` keep
    their ``finished_at`` within the stack (from 0).
    """

    stack: str
    steps: tuple[PathStep, ...]
    starts_at: int
    finished_at: int

    @property
    def seconds(self) -> int:
        """The stack's own critical path: how long its resources take to create, at least."""
        return self.finished_at - self.starts_at


def stacks_critical_path(
    templates: Mapping[str, Mapping[str, Any]], upstreams: Mapping[str, Sequence[str]]
) -> list[StackLeg]:
    """The chain of stacks that takes longest to deploy, first stack first.

    ``templates`` maps stack → template, ``upstreams`` stack → the stacks it takes outputs of
    (:class:`cfnbuild.project.stack_graph.StackGraph`, which refuses circles). A stack starts
    when every stack it takes outputs of is done and lasts its own :func:`critical_path`, so
    stacks that do not depend on each other overlap and only the slowest chain counts.
    """
    paths = {stack: critical_path(template) for stack, template in templates.items()}

    @cache
    def finish(stack: str) -> tuple[int, str | None]:
        own = paths[stack][-1].finished_at if paths[stack] else 0
        best: tuple[int, str | None] = (0, None)
        for upstream in upstreams.get(stack, ()):
            if (done := finish(upstream)[0]) > best[0] or best[1] is None:
                best = (done, upstream)
        return best[0] + own, best[1]

    if not templates:
        return []
    last = max(templates, key=lambda stack: finish(stack)[0])  # the first of equals, in the given order
    chain: list[str] = []
    current: str | None = last
    while current is not None:
        chain.append(current)
        current = finish(current)[1]
    chain.reverse()
    legs = []
    for stack in chain:
        done = finish(stack)[0]
        own = paths[stack][-1].finished_at if paths[stack] else 0
        legs.append(StackLeg(stack, tuple(paths[stack]), done - own, done))
    return legs


def stacks_to_dot(templates: Mapping[str, Mapping[str, Any]], *, name: str) -> str:
    """Every stack's dependency graph in one Graphviz dot graph, a cluster (subgraph) per stack.

    Nodes are ``<stack>.<logical ID>``. Each parameter taking another stack's output
    (``stack.use``) is a node of its stack, with an arrow from each resource that refers to it and
    a dashed arrow to the resources that output's Value refers to, so the dashed arrows across
    clusters are the stacks' order.
    """
    lines = [f"digraph {name} {{", "  rankdir=LR;"]
    across: list[str] = []
    for stack, template in templates.items():
        resources = template.get("Resources", {})
        lines.append(f'  subgraph "cluster_{stack}" {{')
        lines.append(f'    label="{stack}";')
        for logical_id, waits_for in sorted(dependencies(template).items()):
            label = f"{logical_id}\\n{resources[logical_id]['Type']}"
            lines.append(f'    "{stack}.{logical_id}" [label="{label}"];')
            lines.extend(f'    "{stack}.{logical_id}" -> "{stack}.{dependency}";' for dependency in sorted(waits_for))
        for parameter, used in template_inputs(template).items():
            label = f"{parameter}\\nfrom {used.stack}.{used.output}"
            lines.append(f'    "{stack}.{parameter}" [label="{label}", shape=note];')
            lines.extend(
                f'    "{stack}.{logical_id}" -> "{stack}.{parameter}";'
                for logical_id, resource in sorted(resources.items())
                if parameter in references(resource.get("Properties", {}))
            )
            upstream = templates.get(used.stack, {})
            value = (upstream.get("Outputs") or {}).get(used.output, {}).get("Value")
            targets = sorted(references(value) & set(upstream.get("Resources", {})))
            across.extend(f'  "{stack}.{parameter}" -> "{used.stack}.{target}" [style=dashed];' for target in targets)
        lines.append("  }")
    lines.extend(across)
    lines.append("}")
    return "\n".join(lines) + "\n"
