"""The change set as AWS would list it: each resource's Condition decided from the parameters.

AWS evaluates a template's Conditions before it lists a change set's resources: a resource
whose condition is false is not made, so it is no Add; one whose condition turns false is a
Remove; one whose condition turns true is an Add. An emulator may list every resource of the
template whatever its condition (moto does). :func:`as_aws_lists` corrects the listing from
the conditions the parameter values decide (:func:`.evaluate.condition_truths`), so the plan's
counts are what will really be made.

What a reviewer sees: a resource the change set listed as an Add whose condition is false is
left out of the plan's resources and kept in ``Plan.not_created`` with its condition, rendered
as one line ("not created, condition false: HasDomain: Certificate, …"), so the counts and the
table are exact and nothing listed disappears unsaid. A condition the parameters do not decide
(it needs a value cfnbuild does not know) leaves the resource as the change set listed it.

Conditions and the Condition attribute:
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/conditions-section-structure.html
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cfnbuild.deploy.plan.evaluate import condition_truths, pseudo_parameters, resource_exists
from cfnbuild.deploy.plan.model import MASK, NotCreated

Truths = Mapping[str, bool | None]


def truths_for(
    template: Mapping[str, Any], values: Mapping[str, str], change_set: Mapping[str, Any] | None, stack_name: str
) -> dict[str, bool | None]:
    """The template's conditions decided from the effective parameter ``values`` and the stack's pseudo parameters.

    A masked (NoEcho, read back as ``****``) value decides nothing. The Region, account and
    partition come from the change set's StackId.
    """
    known = {name: value for name, value in values.items() if value != MASK}
    pseudo = pseudo_parameters(str((change_set or {}).get("StackId", "")), stack_name)
    return condition_truths(template, {**known, **pseudo})


def as_aws_lists(
    raw_changes: Sequence[Mapping[str, Any]],
    *,
    new_resources: Mapping[str, Any],
    old_resources: Mapping[str, Any] | None,
    new_truths: Truths,
    old_truths: Truths,
) -> tuple[list[dict[str, Any]], tuple[NotCreated, ...]]:
    """``raw_changes`` (DescribeChangeSet's ResourceChange entries) as AWS would list them, and what is not made.

    ``old_resources`` is None for a stack that does not exist yet. An Add whose condition is false
    goes to the second list; a Modify whose condition turns false becomes a Remove, one whose
    condition was false becomes an Add; a Remove of a resource that was never made is dropped;
    a resource whose condition flips but that the change set did not list is added as AWS lists it.
    """
    changes: list[dict[str, Any]] = []
    not_created: list[NotCreated] = []
    for raw in raw_changes:
        logical_id = str(raw.get("LogicalResourceId", ""))
        # Not in the new template (a listing cfnbuild cannot place): left as the change set has it.
        makes = _exists(new_resources, logical_id, new_truths) if logical_id in new_resources else None
        had = _exists(old_resources, logical_id, old_truths)
        action = str(raw.get("Action", ""))
        modify = action in ("Modify", "Dynamic")
        if makes is False and (action == "Add" or (modify and had is False)):
            resource = new_resources.get(logical_id) or {}
            resource_type = str(raw.get("ResourceType") or resource.get("Type", ""))
            not_created.append(NotCreated(logical_id, resource_type, str(resource.get("Condition", ""))))
        elif modify and makes is False and had is True:
            changes.append(_listed_as(raw, "Remove"))
        elif modify and makes is True and had is False:
            changes.append(_listed_as(raw, "Add"))
        elif not (action == "Remove" and had is False):
            changes.append(dict(raw))
    if old_resources is not None:
        listed = {str(raw.get("LogicalResourceId", "")) for raw in raw_changes}
        changes += _unlisted_flips(listed, new_resources, old_resources, new_truths, old_truths)
    return changes, tuple(sorted(not_created, key=lambda item: (item.condition, item.logical_id)))


def _exists(resources: Mapping[str, Any] | None, logical_id: str, truths: Truths) -> bool | None:
    """Whether the resource is (or will be) made: False when absent, else its condition's truth."""
    if resources is None or logical_id not in resources:
        return False
    return resource_exists(resources[logical_id], truths)


def _listed_as(raw: Mapping[str, Any], action: str) -> dict[str, Any]:
    """A change re-listed as an Add or a Remove: such a change carries no property details or replacement."""
    changed = {key: value for key, value in raw.items() if key not in ("Details", "Replacement", "Scope")}
    return {**changed, "Action": action}


def _unlisted_flips(
    listed: set[str],
    new_resources: Mapping[str, Any],
    old_resources: Mapping[str, Any],
    new_truths: Truths,
    old_truths: Truths,
) -> list[dict[str, Any]]:
    """Resources the change set did not list whose condition flips: a Remove or an Add on AWS."""
    flips = []
    for logical_id in sorted((set(new_resources) & set(old_resources)) - listed):
        had = _exists(old_resources, logical_id, old_truths)
        makes = _exists(new_resources, logical_id, new_truths)
        if had is True and makes is False:
            action, resource = "Remove", old_resources[logical_id]
        elif had is False and makes is True:
            action, resource = "Add", new_resources[logical_id]
        else:
            continue
        flips.append({"LogicalResourceId": logical_id, "ResourceType": resource.get("Type", ""), "Action": action})
    return flips
