"""The plan's IAM-widening and security-group check: access a change grants that was not granted before.

:func:`access_widened` compares a resource's old and new definitions (parameter Refs resolved by
:func:`resolve`) and returns one sentence per widening:

- IAM: identity, trust and resource policies gaining actions, resources or principals, losing a
  Deny or a condition (a statement is read into grants; a new grant counts only when no old one
  covers it, with IAM's wildcard matching), managed policies attached, policies applied to more
  roles, users or groups; a policy too dynamic to read is called out for review;
- security groups: ingress and egress rules opened (a group's own rules and the standalone
  ingress/egress resources), ``0.0.0.0/0`` and ``::/0`` called out, and the default allow-all
  egress rule a VPC group gets when it declares none
  (https://docs.aws.amazon.com/vpc/latest/userguide/default-security-group.html).

Policy grammar: "IAM JSON policy elements reference",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_WORLD = frozenset({"0.0.0.0/0", "::/0"})
_IDENTITY_WITH_INLINE = frozenset({"AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"})
_IDENTITY_POLICIES = frozenset(
    {
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::RolePolicy",
        "AWS::IAM::UserPolicy",
        "AWS::IAM::GroupPolicy",
    }
)
_RESOURCE_POLICIES = {
    "AWS::S3::BucketPolicy": "PolicyDocument",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::SQS::QueuePolicy": "PolicyDocument",
    "AWS::KMS::Key": "KeyPolicy",
    "AWS::SecretsManager::ResourcePolicy": "ResourcePolicy",
    "AWS::ECR::Repository": "RepositoryPolicyText",
}
# Policies that stand apart from what they protect: removing one (with its Deny statements) can widen access.
_STANDALONE_POLICIES = _IDENTITY_POLICIES | {
    "AWS::S3::BucketPolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::SecretsManager::ResourcePolicy",
}
_ATTACHMENTS = {"Roles": "role", "Users": "user", "Groups": "group", "RoleName": "role", "UserName": "user"}
_SUB_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_:.]+)\}")


def access_widened(
    logical_id: str, resource_type: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> list[str]:
    """One sentence per access the change from ``old`` to ``new`` (None: absent) grants that was not granted."""
    if new is None and resource_type not in _STANDALONE_POLICIES:
        return []  # the resource goes, and its access with it
    old_properties = (old or {}).get("Properties") or {}
    new_properties = (new or {}).get("Properties") or {}
    existed = old is not None
    sentences: list[str] = []
    if resource_type in _IDENTITY_WITH_INLINE:
        sentences += _policy_widening(
            logical_id,
            "identity",
            [p.get("PolicyDocument") for p in _items(old_properties.get("Policies")) if isinstance(p, dict)],
            [p.get("PolicyDocument") for p in _items(new_properties.get("Policies")) if isinstance(p, dict)],
            existed,
        )
        sentences += _policy_widening(
            logical_id,
            "trust",
            [old_properties.get("AssumeRolePolicyDocument")] if old_properties else [],
            [new_properties.get("AssumeRolePolicyDocument")] if new_properties else [],
            existed,
        )
        sentences += _added(logical_id, "attaches managed policy", old_properties, new_properties, "ManagedPolicyArns")
    elif resource_type in _IDENTITY_POLICIES:
        sentences += _policy_widening(
            logical_id,
            "identity",
            [old_properties.get("PolicyDocument")] if old_properties else [],
            [new_properties.get("PolicyDocument")] if new_properties else [],
            existed,
        )
        for key, what in _ATTACHMENTS.items():
            sentences += _added(logical_id, f"applies to {what}", old_properties, new_properties, key)
    elif resource_type in _RESOURCE_POLICIES:
        key = _RESOURCE_POLICIES[resource_type]
        sentences += _policy_widening(
            logical_id,
            "resource",
            [old_properties.get(key)] if key in old_properties else [],
            [new_properties.get(key)] if key in new_properties else [],
            existed,
        )
    elif resource_type == "AWS::EC2::SecurityGroup":
        sentences += _rules_widening(
            logical_id, _group_rules(old_properties) if old else [], _group_rules(new_properties) if new else []
        )
    elif resource_type in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
        direction = "ingress" if resource_type.endswith("Ingress") else "egress"
        group = _describe(new_properties.get("GroupId") or new_properties.get("GroupName")).removesuffix(".GroupId")
        old_rules = [_rule(old_properties, direction)] if old_properties else []
        new_rules = [_rule(new_properties, direction)] if new_properties else []
        sentences += _rules_widening(f"{logical_id} ({group})", old_rules, new_rules)
    return sentences


# --------------------------------------------------------------------------------------------
# Reading template values: Fn::If branches, parameter Refs, short readable names
# --------------------------------------------------------------------------------------------


def _items(value: Any) -> list[Any]:
    """A list property's items, with both branches of any Fn::If and no AWS::NoValue."""
    result = []
    for item in _branches(value):
        if isinstance(item, list):
            for element in item:
                result.extend(_branches(element))
        elif item is not None:
            result.append(item)
    return result


def _branches(node: Any) -> list[Any]:
    """Every value ``node`` may take: both branches of an Fn::If, AWS::NoValue dropped."""
    if isinstance(node, dict) and len(node) == 1:
        if "Fn::If" in node and isinstance(node["Fn::If"], list) and len(node["Fn::If"]) == 3:
            return _branches(node["Fn::If"][1]) + _branches(node["Fn::If"][2])
        if node.get("Ref") == "AWS::NoValue":
            return []
    return [node]


def resolve(node: Any, values: Mapping[str, Any]) -> Any:
    """``node`` with Refs to parameters (and ${Parameter} in Fn::Sub) replaced by their values."""
    if isinstance(node, list):
        return [resolve(item, values) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1 and isinstance(node.get("Ref"), str) and node["Ref"] in values:
        return values[node["Ref"]]
    if len(node) == 1 and "Fn::Sub" in node:
        argument = node["Fn::Sub"]
        text, variables = (argument, {}) if isinstance(argument, str) else ([*_as_list(argument), {}][:2])
        if isinstance(text, str) and isinstance(variables, dict):

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                value = values.get(name)
                return value if name not in variables and isinstance(value, str) else match.group(0)

            text = _SUB_VARIABLE.sub(substitute, text)
            return {"Fn::Sub": [text, resolve(variables, values)] if variables else text}
    return {key: resolve(value, values) for key, value in node.items()}


def _describe(value: Any) -> str:
    """A short readable form of a template value: a Ref as the name it refers to, ARNs shortened."""
    if value is None:
        return ""
    if isinstance(value, str):
        return _short_arn(value)
    if isinstance(value, list):
        return ", ".join(_describe(item) for item in value)
    described = _describe_function(value) if isinstance(value, dict) and len(value) == 1 else None
    return described if described is not None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _describe_function(node: Mapping[str, Any]) -> str | None:
    ((key, argument),) = node.items()
    if key == "Ref":
        return str(argument)
    if key == "Fn::GetAtt":
        parts = [str(part) for part in argument] if isinstance(argument, list) else str(argument).split(".", 1)
        return parts[0] if parts[1:] in ([], ["Arn"]) else f"{parts[0]}.{'.'.join(parts[1:])}"
    if key == "Fn::Sub":
        return _describe_sub(argument)
    if key == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
        return _short_arn(str(argument[0]).join(_describe(part) for part in _as_list(argument[1])))
    if key == "Fn::ImportValue":
        return f"import {_describe(argument)}"
    return None


def _describe_sub(argument: Any) -> str | None:
    if not isinstance(argument, (str, list)) or not argument:
        return None
    text, variables = (argument, {}) if isinstance(argument, str) else ([*argument, {}][:2])
    if not isinstance(variables, dict):
        return None

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        return _describe(variables[name]) if name in variables else match.group(0)

    return _short_arn(_SUB_VARIABLE.sub(substitute, str(text)))


def _short_arn(text: str) -> str:
    shortened = re.sub(r"^arn:(\$\{AWS::Partition\}|aws[a-z-]*):", "", text)
    if shortened == text:
        return text
    if shortened.startswith("s3:::"):
        return shortened.removeprefix("s3:::")
    if re.fullmatch(r"iam::(\$\{AWS::AccountId\})?:root", shortened):
        return "this account (root)"
    return shortened.replace("${AWS::Region}:", "").replace("${AWS::AccountId}:", "")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _added(logical_id: str, verb: str, old: Mapping[str, Any], new: Mapping[str, Any], key: str) -> list[str]:
    before = {_describe(item) for item in _items(old.get(key))}
    return [f"{logical_id}: {verb} {name}" for name in sorted({_describe(i) for i in _items(new.get(key))} - before)]


# --------------------------------------------------------------------------------------------
# IAM: statements read into grants; a new grant counts when no old one covers it
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class _Grant:
    effect: str
    principal: str  # "" in an identity policy: the principal is the role, user or group
    action: str
    resource: str  # "" where a statement has none (a trust policy)
    condition: str  # canonical JSON of the Condition block, "" for none


def _statements(documents: Iterable[Any]) -> tuple[list[Mapping[str, Any]], set[str]]:
    """The statements of policy documents, and any part too dynamic to read (as canonical JSON)."""
    statements: list[Mapping[str, Any]] = []
    opaque: set[str] = set()
    for document in documents:
        for doc in _branches(document):
            if doc is None:
                continue
            parsed = doc
            if isinstance(doc, str):
                try:
                    parsed = json.loads(doc)
                except ValueError:
                    opaque.add(doc)
                    continue
            if not isinstance(parsed, dict) or "Statement" not in parsed:
                opaque.add(json.dumps(parsed, sort_keys=True))
                continue
            for statement in _items(parsed["Statement"]):
                if isinstance(statement, dict):
                    statements.append(statement)
                else:
                    opaque.add(json.dumps(statement, sort_keys=True))
    return statements, opaque


def _grants(statements: Iterable[Mapping[str, Any]], kind: str) -> set[_Grant]:
    grants = set()
    for statement in statements:
        effect = _describe(statement.get("Effect", "Allow"))
        if "NotAction" in statement:
            actions = [f"every action except {_describe(statement['NotAction'])}"]
        else:
            actions = [_describe(action) for action in _items(statement.get("Action"))]
        if "NotResource" in statement:
            resources = [f"every resource except {_describe(statement['NotResource'])}"]
        else:
            resources = [_describe(resource) for resource in _items(statement.get("Resource"))] or [""]
        principals = [""] if kind == "identity" else _principals(statement)
        condition = json.dumps(statement["Condition"], sort_keys=True) if statement.get("Condition") else ""
        grants |= {
            _Grant(effect, principal, action, resource, condition)
            for principal in principals
            for action in actions
            for resource in resources
        }
    return grants


def _principals(statement: Mapping[str, Any]) -> list[str]:
    if "NotPrincipal" in statement:
        return [f"everyone except {_describe(statement['NotPrincipal'])}"]
    principal = statement.get("Principal")
    if principal is None:
        return [""]
    if principal == "*":
        return ["*"]
    if not isinstance(principal, dict):
        return [_describe(principal)]
    names = []
    for kind, value in sorted(principal.items()):
        for item in _items(value):
            described = _describe(item)
            names.append("*" if described == "*" else f"{kind} {described}")
    return names


def _wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcard matching: ``*`` any run of characters, ``?`` one character."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _covers(broad: _Grant, narrow: _Grant) -> bool:
    """Whether ``broad`` allows (or denies) everything ``narrow`` does."""
    return (
        broad.effect == narrow.effect
        and broad.principal in (narrow.principal, "*")
        and _wildcard_match(broad.action, narrow.action, ignore_case=True)
        and _wildcard_match(broad.resource, narrow.resource)
        and broad.condition in ("", narrow.condition)
    )


def _policy_widening(
    logical_id: str, kind: str, old_documents: list[Any], new_documents: list[Any], existed: bool
) -> list[str]:
    old_statements, old_opaque = _statements(old_documents)
    new_statements, new_opaque = _statements(new_documents)
    old_grants, new_grants = _grants(old_statements, kind), _grants(new_statements, kind)
    sentences = []
    if new_opaque - old_opaque:
        sentences.append(f"{logical_id}: its {kind} policy changes in a way cfnbuild cannot analyse; review it")
    allowed = [
        grant
        for grant in sorted(new_grants)
        if grant.effect == "Allow" and not any(_covers(old, grant) for old in old_grants)
    ]
    undenied = [
        grant
        for grant in sorted(old_grants)
        if grant.effect == "Deny" and not any(_covers(new, grant) for new in new_grants)
    ]
    groups: dict[tuple[str, str, str], dict[str, set[str]]] = {}
    for grant in allowed:
        markers = _markers(grant, old_grants, existed)
        groups.setdefault(("allow", grant.principal, markers), {}).setdefault(grant.resource, set()).add(grant.action)
    for grant in undenied:
        groups.setdefault(("deny", grant.principal, ""), {}).setdefault(grant.resource, set()).add(grant.action)
    # One sentence per set of actions on a set of resources, naming every principal it goes to.
    merged: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], list[str]] = {}
    for (effect, principal, markers), by_resource in sorted(groups.items()):
        by_actions: dict[tuple[str, ...], list[str]] = {}
        for resource, granted in sorted(by_resource.items()):
            by_actions.setdefault(tuple(sorted(granted)), []).append(resource)
        for actions, on in by_actions.items():
            merged.setdefault((effect, markers, actions, tuple(on)), []).append(principal)
    for (effect, markers, actions, resources), principals in sorted(merged.items()):
        sentences.append(
            _grant_sentence(
                logical_id,
                kind=kind,
                effect=effect,
                principals=principals,
                actions=actions,
                resources=resources,
                markers=markers,
            )
        )
    return sentences


def _markers(grant: _Grant, old_grants: set[_Grant], existed: bool) -> str:
    same_but_condition = existed and any(
        old.effect == "Allow"
        and old.principal == grant.principal
        and old.action.lower() == grant.action.lower()
        and old.resource == grant.resource
        for old in old_grants
    )
    markers = ["condition changed" if same_but_condition else "new"]
    if "*" in grant.action or grant.action.startswith("every action"):
        markers.append("wildcard action")
    if grant.resource == "*" or grant.resource.startswith("every resource"):
        markers.append("any resource")
    if grant.condition:
        markers.append("with a condition")
    return "; ".join(markers)


def _grant_sentence(
    logical_id: str,
    *,
    kind: str,
    effect: str,
    principals: list[str],
    actions: tuple[str, ...],
    resources: tuple[str, ...],
    markers: str,
) -> str:
    what = ", ".join(actions)
    where = f" on {', '.join(resources)}" if any(resources) else ""
    who = ", ".join("anyone (*)" if principal == "*" else principal or "its principals" for principal in principals)
    if effect == "deny":
        to = f" to {who}" if kind != "identity" else ""
        return f"{logical_id}: no longer denies {what}{where}{to} (Deny removed)"
    if kind == "identity":
        return f"{logical_id}: grants {what}{where} ({markers})"
    if kind == "trust":
        how = "" if actions == ("sts:AssumeRole",) else f" with {what}"
        return f"{logical_id}: can be assumed by {who}{how} ({markers})"
    return f"{logical_id}: lets {who} {what}{where} ({markers})"


# --------------------------------------------------------------------------------------------
# Security groups: rules, peers and ports
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    direction: str  # "ingress" | "egress"
    protocol: str  # "tcp", "udp", "icmp", "icmpv6", "all", or a protocol number
    ports: tuple[int, int] | str | None  # None: every port (or every ICMP type)
    peer: str
    default: bool = False  # the allow-all egress rule a group gets when it declares none


_PROTOCOLS = {"-1": "all", "all": "all", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}
_PEER_KEYS = {
    "ingress": ("CidrIp", "CidrIpv6", "SourceSecurityGroupId", "SourceSecurityGroupName", "SourcePrefixListId"),
    "egress": ("CidrIp", "CidrIpv6", "DestinationSecurityGroupId", "DestinationPrefixListId"),
}


def _rule(entry: Mapping[str, Any], direction: str) -> _Rule:
    protocol = _PROTOCOLS.get(str(_describe(entry.get("IpProtocol", "-1"))).lower(), str(entry.get("IpProtocol")))
    peer = next((_describe(entry[key]) for key in _PEER_KEYS[direction] if key in entry), "?").removesuffix(".GroupId")
    ports: tuple[int, int] | str | None = None
    if protocol != "all":
        low: Any = entry.get("FromPort")
        high: Any = entry.get("ToPort", low)
        try:
            low_port, high_port = int(low), int(high)
        except (TypeError, ValueError):
            ports = None if low is None else f"{_describe(low)}-{_describe(high)}"
        else:
            full_range = protocol in ("tcp", "udp") and (low_port, high_port) == (0, 65535)
            ports = None if low_port == -1 or full_range else (low_port, high_port)
    return _Rule(direction, protocol, ports, peer)


def _group_rules(properties: Mapping[str, Any]) -> list[_Rule]:
    rules = [
        _rule(entry, "ingress") for entry in _items(properties.get("SecurityGroupIngress")) if isinstance(entry, dict)
    ]
    egress = [
        _rule(entry, "egress") for entry in _items(properties.get("SecurityGroupEgress")) if isinstance(entry, dict)
    ]
    # A VPC security group that declares no egress rule gets one that allows everything out.
    return rules + (egress or [_Rule("egress", "all", None, "0.0.0.0/0", default=True)])


def _peer_covers(broad: str, narrow: str) -> bool:
    if broad == narrow:
        return True
    try:
        broad_net, narrow_net = ipaddress.ip_network(broad, strict=False), ipaddress.ip_network(narrow, strict=False)
    except ValueError:
        return False
    return broad_net.version == narrow_net.version and narrow_net.subnet_of(broad_net)  # type: ignore[arg-type]


def _rule_covers(broad: _Rule, narrow: _Rule) -> bool:
    if broad.direction != narrow.direction or not _peer_covers(broad.peer, narrow.peer):
        return False
    if broad.protocol == "all":
        return True
    if broad.protocol != narrow.protocol:
        return False
    if broad.ports is None or broad.ports == narrow.ports:
        return True
    if isinstance(broad.ports, tuple) and isinstance(narrow.ports, tuple) and broad.protocol in ("tcp", "udp"):
        return broad.ports[0] <= narrow.ports[0] and narrow.ports[1] <= broad.ports[1]
    return False


def _is_loopback(peer: str) -> bool:
    try:
        return ipaddress.ip_network(peer, strict=False).is_loopback
    except ValueError:
        return False


def _rules_widening(label: str, old_rules: list[_Rule], new_rules: list[_Rule]) -> list[str]:
    sentences = []
    for rule in new_rules:
        if _is_loopback(rule.peer) or any(_rule_covers(old, rule) for old in old_rules):
            continue
        ports = _ports_text(rule)
        verb = f"opens {ports} to" if rule.direction == "ingress" else f"allows {ports} out to"
        markers = [
            marker
            for marker, present in (
                ("anywhere", rule.peer in _WORLD),
                ("default egress rule: the group declares none", rule.default),
            )
            if present
        ]
        suffix = f" ({'; '.join(markers)})" if markers else ""
        sentence = f"{label}: {verb} {_peer_text(rule.peer)}{suffix}"
        if sentence not in sentences:
            sentences.append(sentence)
    return sentences


def _peer_text(peer: str) -> str:
    """The peer as a sentence names it: a value an upstream stack gives once deployed is said to be one."""
    if re.fullmatch(r"from stack \S+ \(not deployed yet\)", peer):  # references.waiting_value
        return f"the group or range {peer}"
    return peer


def _ports_text(rule: _Rule) -> str:
    if rule.protocol == "all":
        return "all traffic"
    if rule.protocol in ("icmp", "icmpv6"):
        return (
            rule.protocol if rule.ports is None else f"{rule.protocol} type {_port_range(rule.ports, first_only=True)}"
        )
    if rule.ports is None:
        return f"all ports/{rule.protocol}"
    return f"{_port_range(rule.ports)}/{rule.protocol}"


def _port_range(ports: tuple[int, int] | str, *, first_only: bool = False) -> str:
    if isinstance(ports, str):
        return ports
    low, high = ports
    return str(low) if first_only or low == high else f"{low}-{high}"
