"""The one place where names are made: logical IDs, physical names and export names.

Physical names are left to CloudFormation wherever the resource type allows it. Where a name is
needed, it is derived from the stack name plus a suffix unique to the stack (the first block of
the stack's UUID, taken from ``AWS::StackId``), so two stacks from the same template never
collide in one account and region. No name is ever a bare literal.
"""

from __future__ import annotations

import re

from troposphere import AWSHelperFn, Join, Ref, Select, Split, Sub

_LOGICAL_ID_PART = re.compile(r"[^A-Za-z0-9]+")
LOGICAL_ID_MAX = 255


def logical_id(*parts: str | int) -> str:
    """Join ``parts`` into an alphanumeric CamelCase logical ID (``"app", "subnet", 1`` → ``AppSubnet1``).

    Raises ``ValueError`` for an empty result or one longer than CloudFormation allows.
    """
    words: list[str] = []
    for part in parts:
        for word in _LOGICAL_ID_PART.split(str(part)):
            if word:
                words.append(word[0].upper() + word[1:])
    result = "".join(words)
    if not result or len(result) > LOGICAL_ID_MAX:
        raise ValueError(f"cannot make a logical ID from {parts!r}")
    return result


def stack_suffix() -> Select:
    """The first 8 hex digits of the stack's UUID: unique per stack, stable for its lifetime."""
    return Select(0, Split("-", Select(2, Split("/", Ref("AWS::StackId")))))


def physical_name(*parts: str, separator: str = "-") -> Join:
    """A physical name ``<stack name>-<parts...>-<stack suffix>``.

    Use it only where a resource type requires a name; check the type's length limit, which a
    long stack name may exceed.
    """
    for part in parts:
        if not re.fullmatch(r"[A-Za-z0-9-]+", part):
            raise ValueError(f"name part {part!r} may only hold letters, digits and '-'")
    return Join(separator, [Ref("AWS::StackName"), *parts, stack_suffix()])


def export_name(output_name: str) -> Sub:
    """The export name of an output exported with ``export=True``: ``<stack name>-<output name>``."""
    return Sub("${AWS::StackName}-" + output_name)


def partition_arn(
    service: str,
    resource: str,
    *,
    region: bool = True,
    account: bool = True,
    **values: AWSHelperFn | str,
) -> Sub:
    """An ARN built from pseudo parameters: ``arn:${AWS::Partition}:service:region:account:resource``.

    ``region``/``account`` leave those fields empty for global services (S3 buckets have
    neither, IAM has no region). ``resource`` may reference ``values`` as ``${Name}``, e.g.
    ``partition_arn("s3", "${Bucket}/*", region=False, account=False, Bucket=Ref(bucket))``.
    """
    region_part = "${AWS::Region}" if region else ""
    account_part = "${AWS::AccountId}" if account else ""
    arn = f"arn:${{AWS::Partition}}:{service}:{region_part}:{account_part}:{resource}"
    return Sub(arn, **values) if values else Sub(arn)


def stack_named(text: str, name: str = "") -> Sub:
    """``text`` with each ``${StackName}`` the deployed stack's name: ``AWS::StackName``, or ``name`` when given.

    A resource moved into another stack keeps the name it was made under (``name``: the stack it
    came from, e.g. ``webapp-prod``), so a create-only description stays the same and nothing is
    replaced; with no ``name`` it renders ``${AWS::StackName}`` as before.
    """
    if name:
        return Sub(text, StackName=name)
    return Sub(text.replace("${StackName}", "${AWS::StackName}"))
