"""The stack policy derived from the stateful marks.

Every resource the blueprints marked stateful is protected from replacement and deletion by an
update; everything else may be updated. ``--allow-replace LOGICAL_ID`` lifts the protection of
the named resources for one deploy only: the engine sets the relaxed policy before it executes
the change set and puts the strict one back afterwards, whatever happened.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from cfnbuild.build.stateful import stateful_resources


def stack_policy(template: Mapping[str, Any], *, allow: Iterable[str] = ()) -> dict[str, Any]:
    """The policy for ``template``: allow all updates, deny Replace and Delete of stateful resources."""
    allowed = set(allow)
    protected = [logical_id for logical_id in stateful_resources(template) if logical_id not in allowed]
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": "Update:*", "Principal": "*", "Resource": "*"},
    ]
    if protected:
        statements.append(
            {
                "Effect": "Deny",
                "Action": ["Update:Replace", "Update:Delete"],
                "Principal": "*",
                "Resource": [f"LogicalResourceId/{logical_id}" for logical_id in sorted(protected)],
            }
        )
    return {"Statement": statements}


def policy_body(policy: Mapping[str, Any]) -> str:
    """The policy as the compact, key-sorted JSON CloudFormation stores."""
    return json.dumps(policy, sort_keys=True, separators=(",", ":"))


def same_policy(deployed: str | None, wanted: Mapping[str, Any]) -> bool:
    """Whether the deployed policy body says the same as ``wanted``."""
    if not deployed:
        return False
    try:
        return bool(json.loads(deployed) == json.loads(policy_body(wanted)))
    except json.JSONDecodeError:
        return False
