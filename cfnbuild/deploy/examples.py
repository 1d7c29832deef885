"""Example values that must not reach AWS: domains and e-mail addresses no one can own.

RFC 2606 and RFC 6761 reserve ``example.com``, ``example.net``, ``example.org`` and the
``.example``, ``.test``, ``.invalid`` and ``.localhost`` names for documentation and tests. A
shipped config may use them so that it builds and deploys to the embedded emulator; against AWS
they are a deploy that cannot work: a certificate for ``app.example.com`` waits for a DNS
validation that never comes (the stack hangs for hours), and alerts sent to
``oncall@example.com`` reach no one. The deploy engine refuses them before it creates a change
set, naming where each one is and what to set instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

RESERVED_DOMAINS = ("example.com", "example.net", "example.org")  # RFC 2606, section 3
RESERVED_TOP_LEVEL = ("example", "test", "invalid", "localhost")  # RFC 2606, section 2
_NAME = re.compile(r"(?:[^@\s]+@)?[a-z0-9-]+(?:\.[a-z0-9-]+)+", re.IGNORECASE)


def is_reserved_example(value: str) -> bool:
    """Whether ``value`` is a domain name, or an e-mail address, under a name reserved for examples."""
    text = value.strip().rstrip(".").lower()
    if not _NAME.fullmatch(text):
        return False
    domain = text.rsplit("@", 1)[-1]
    return (
        domain in RESERVED_DOMAINS
        or domain.endswith(tuple(f".{reserved}" for reserved in RESERVED_DOMAINS))
        or domain.rsplit(".", 1)[-1] in RESERVED_TOP_LEVEL
    )


def reserved_examples(template: Mapping[str, Any], parameters: Mapping[str, str]) -> list[tuple[str, str]]:
    """Where the deploy would send a reserved example value: ``(place, value)`` pairs.

    ``parameters`` are the values the deploy sends; a parameter it does not send is sent as
    its Default. Resource properties are searched whole; descriptions and Metadata, which may
    show examples to a reader, are not.
    """
    found: list[tuple[str, str]] = []
    for name, definition in sorted(template.get("Parameters", {}).items()):
        value = parameters.get(name, definition.get("Default"))
        if isinstance(value, str) and is_reserved_example(value):
            found.append((f"parameter {name}", value))
    for logical_id, resource in sorted(template.get("Resources", {}).items()):
        for path, value in _strings(resource.get("Properties", {}), logical_id):
            if is_reserved_example(value):
                found.append((path, value))
    return found


def _strings(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{path}[{index}]")
