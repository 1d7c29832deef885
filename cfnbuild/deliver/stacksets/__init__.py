"""StackSets delivery: one template, built and linted once, to many accounts and regions.

``cfnbuild stackset plan`` says what a delivery would do; ``cfnbuild stackset deploy`` does it
(the commands are :mod:`cfnbuild.cli.stackset`'s). Each concern is its own module:

* :mod:`.options` - what is asked for: :class:`Delivery` (accounts, regions, roles) and its
  :class:`Preferences` (concurrency, failure tolerance, region order), checked by
  :func:`parse_delivery`;
* :mod:`.plan` - what is deployed (:class:`DeployedStackSet`, :class:`Instance`) compared with
  what is asked: :func:`build_plan` makes a :class:`StackSetPlan` of :class:`Row` and
  :class:`Step`, the account x region grid cut into exact :func:`rectangles`;
* :mod:`.render` - :func:`render_plan`, the plan as the terminal shows it;
* :mod:`.operation` - :class:`StackSetDelivery`: reading the stack set, each step's call, the
  watch on its operation and the per-instance results (:class:`OperationOutcome`,
  :class:`InstanceResult`, :class:`OperationTimeout`).

Each module imports only those listed before it; none imports the CLI.

What a delivery does:

* the template is the one ``build`` wrote (refused when missing or stale, like ``deploy``), its
  parameters resolved as ``deploy`` resolves them (config ``[deploy] parameters``, ``--param``,
  deploy-time lookups) and its tags the standard ones; over 51,200 bytes it goes through the
  staging bucket;
* a stack set that does not exist is created (``CreateStackSet``, SELF_MANAGED permissions,
  AWS's administration and execution roles unless others are named); one whose template,
  parameters, tags or roles differ is updated (``UpdateStackSet``) for the named instances that
  exist; named instances that do not exist are created (``CreateStackInstances``); named
  instances left OUTDATED by an earlier operation are updated again (``UpdateStackInstances``);
* instances that exist but were not named are left as they are: nothing is ever deleted
  implicitly. A template change cannot reach only some instances, though: AWS marks every
  instance OUTDATED before it updates the named ones, and the plan says so;
* every operation carries its own ``OperationId`` (the idempotency token), is watched with our
  own jittered poll loop until it ends, and its per-instance results are printed as they come;
  the end is a table of every named instance. An operation that ends FAILED (failures beyond the
  tolerance) or STOPPED is an error naming each failed instance and its reason.

AWS reference: CreateStackSet, UpdateStackSet, CreateStackInstances, UpdateStackInstances,
DescribeStackSetOperation, ListStackSetOperationResults, ListStackInstances and
StackSetOperationPreferences -
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackSetOperationPreferences.html

Emulator (moto 5.2) limits: every operation ends SUCCEEDED at once (no RUNNING, FAILED or
STOPPED operation, no failed instance, so no failure tolerance to exceed), an operation's results
carry the operation's status, ``OperationId`` on CreateStackInstances is ignored (the answer's id
is the one to follow, as here), and instance stacks are not updated by an update. It names each
instance's stack ``StackSet:<name>``, which no real stack can be called, and lists each instance
with a random StackId; :mod:`cfnbuild.local.emulator` corrects both.
"""

from cfnbuild.deliver.stacksets.operation import (
    HEARTBEAT_SECONDS,
    OPERATION_GOING,
    InstanceResult,
    OperationOutcome,
    OperationTimeout,
    StackSetDelivery,
)
from cfnbuild.deliver.stacksets.options import (
    DEFAULT_ADMINISTRATION_ROLE,
    DEFAULT_EXECUTION_ROLE,
    Delivery,
    Pair,
    Preferences,
    RegionOrder,
    parse_delivery,
)
from cfnbuild.deliver.stacksets.plan import (
    Api,
    Change,
    DeployedStackSet,
    Instance,
    Row,
    StackSetPlan,
    Step,
    build_plan,
    rectangles,
)
from cfnbuild.deliver.stacksets.render import render_plan

__all__ = [
    "DEFAULT_ADMINISTRATION_ROLE",
    "DEFAULT_EXECUTION_ROLE",
    "HEARTBEAT_SECONDS",
    "OPERATION_GOING",
    "Api",
    "Change",
    "Delivery",
    "DeployedStackSet",
    "Instance",
    "InstanceResult",
    "OperationOutcome",
    "OperationTimeout",
    "Pair",
    "Preferences",
    "RegionOrder",
    "Row",
    "StackSetDelivery",
    "StackSetPlan",
    "Step",
    "build_plan",
    "parse_delivery",
    "rectangles",
    "render_plan",
]
