"""The product's launch form: what a catalog's end users see and may enter when they launch it.

``Metadata.AWS::CloudFormation::Interface`` groups the parameters by concern (the resources each
one shapes most) and labels every one from its name; a parameter the stack left unconstrained
gets a constraint — what the resource properties it is given to accept, read from the resource
schemas cfn-lint ships, else a conservative one by type and name — and optional parameters that
only act together get a rule saying so, derived from the stack's Conditions.

AWS references: AWS::CloudFormation::Interface
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-cloudformation-interface.html),
template Rules (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from cfnbuild.deliver.catalog.layout import CatalogError
from cfnbuild.deliver.catalog.template import references, resource_schema

INTERFACE = "AWS::CloudFormation::Interface"
CONSTRAINT_KEYS = ("AllowedValues", "AllowedPattern", "MinLength", "MaxLength", "MinValue", "MaxValue")
SSM_TYPE = "AWS::SSM::Parameter::Value<"


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

# Conservative constraints for parameters the stack left unconstrained, by name suffix.
S3_KEY_PATTERN = r"^[A-Za-z0-9!_.*'()-][A-Za-z0-9!_.*'()/-]{0,1023}$"
ARN_PATTERN = r"^arn:[a-z0-9-]+:[a-z0-9-]+:[a-z0-9-]*:(\d{12})?:[A-Za-z0-9+=,.@_/:*-]+$"
EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}$"
CIDR_PATTERN = r"^(\d{1,3}\.){3}\d{1,3}/\d{1,2}$"
MAX_FREE_TEXT = 1024


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
        root = resource_schema(str(resource.get("Type")))
        if root is None:
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
