"""The blueprint contract.

A blueprint is one domain of a stack (the network, the database, ...). It takes a frozen,
documented inputs dataclass (see :func:`cfnbuild.setting`), rejects incompatible inputs when it
is made with a sentence that says what to change, adds its resources to the stack, and exposes
what it made as typed attributes holding troposphere references, which the next blueprint takes
as inputs. Outputs are registered where the resource is made, with no ``Export`` unless asked
(``export=True``: its name derived from the stack name). A blueprint never reads files or calls AWS.

Example::

    @dataclass(frozen=True)
    class QueueInputs:
        retention_days: int = setting(4, "How long an unread message is kept.")


    class Queue(Blueprint[QueueInputs]):
        queue_url: Ref

        def validate(self) -> None:
            if not 1 <= self.inputs.retention_days <= 14:
                raise self.invalid("retention_days", "must be 1 to 14 days")

        def build(self) -> None:
            queue = self.add(sqs.Queue(self.lid("Queue"), MessageRetentionPeriod=...))
            self.queue_url = Ref(queue)
            self.output("QueueUrl", self.queue_url, "The queue's URL.")
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, Generic, TypeVar

from troposphere import AWSHelperFn, AWSObject, Output, Parameter, Ref

from cfnbuild.build.inputs import describe_inputs, input_problems
from cfnbuild.build.naming import logical_id
from cfnbuild.build.stack import Stack
from cfnbuild.errors import InputError

InputsT = TypeVar("InputsT")
ResourceT = TypeVar("ResourceT", bound=AWSObject)


class Blueprint(ABC, Generic[InputsT]):
    """Base class of every blueprint; subclasses implement :meth:`build` (and :meth:`validate`).

    ``prefix`` is put before every logical ID the blueprint makes, so one blueprint can be used
    twice in a stack.
    """

    _cfnbuild_blueprint = True  # how the stack's error messages recognise a blueprint (stack.BLUEPRINT_MARK)

    def __init__(self, stack: Stack, inputs: InputsT, *, prefix: str = "") -> None:
        if not dataclasses.is_dataclass(inputs) or isinstance(inputs, type):
            raise TypeError(f"{type(self).__name__} takes an inputs dataclass instance, got {inputs!r}")
        describe_inputs(type(inputs))  # every input must be documented
        self.stack = stack
        self.inputs = inputs
        self.prefix = prefix
        # Refused here, where the fix is plain, rather than deep in build() or in troposphere.
        problems = input_problems(inputs)
        if problems:
            raise InputError("\n".join(f"{self._name} input {p.path!r}: {p}" for p in problems))
        self.validate()
        self.build()

    @property
    def owner(self) -> str:
        """How errors name this blueprint."""
        label = f"{self.prefix} " if self.prefix else ""
        return f"blueprint {label}{type(self).__name__}"

    @property
    def _name(self) -> str:
        """How an input error names this blueprint: its class, and its prefix when it has one."""
        return f"{type(self).__name__} (prefix {self.prefix})" if self.prefix else type(self).__name__

    def validate(self) -> None:
        """Reject inputs the blueprint cannot build; raise :meth:`invalid`. Default: accept."""

    @abstractmethod
    def build(self) -> None:
        """Add the blueprint's resources, conditions and outputs to the stack."""

    def invalid(self, field: str, problem: str) -> InputError:
        """An error naming this blueprint's input ``field``, to ``raise`` from :meth:`validate`."""
        return InputError(f"{self._name} input {field!r}: {problem}")

    def lid(self, *parts: str | int) -> str:
        """A logical ID for this blueprint: its prefix plus ``parts`` in CamelCase."""
        return logical_id(self.prefix, *parts) if self.prefix else logical_id(*parts)

    def add(self, resource: ResourceT, *, stateful: bool = False, depends_on: Sequence[str] = ()) -> ResourceT:
        """Add ``resource`` to the stack; ``stateful`` keeps its data on delete and replacement.

        ``depends_on`` names resources CloudFormation must create first although nothing in
        ``resource`` references them (say why where you pass it); none gives no DependsOn at all.
        """
        if depends_on:
            resource.DependsOn = list(depends_on)
        return self.stack.add_resource(resource, owner=self.owner, stateful=stateful)

    def parameter(self, name: str, **properties: Any) -> Parameter:
        """Add a template parameter named ``name`` (with this blueprint's prefix)."""
        return self.stack.add_parameter(Parameter(self.lid(name), **properties), owner=self.owner)

    def condition(self, name: str, condition: AWSHelperFn) -> str:
        """Add a template condition; returns its name."""
        return self.stack.add_condition(self.lid(name), condition, owner=self.owner)

    def rule(self, name: str, rule: dict[str, Any]) -> None:
        """Add a template rule."""
        self.stack.add_rule(self.lid(name), rule, owner=self.owner)

    def lookup(self, parameter: str, *, kind: str, **arguments: str) -> None:
        """Have the deploy engine look up parameter ``parameter``'s value (see :mod:`cfnbuild.deploy.lookups`)."""
        self.stack.add_lookup(self.lid(parameter), kind=kind, **arguments)

    def use(self, stack: str, output: str) -> Ref:
        """A ``Ref`` to output ``output`` of the project's stack ``stack`` (see :meth:`cfnbuild.Stack.use`)."""
        return self.stack.use(stack, output, owner=self.owner)

    def output(
        self, name: str, value: Any, description: str, *, condition: str | None = None, export: bool = False
    ) -> Output:
        """Add an output named ``name`` (with this blueprint's prefix); exported only with ``export=True``.

        See :meth:`cfnbuild.Stack.add_output`: the project's stacks take outputs as parameters
        (:meth:`use`), an Export is for stacks outside the project and locks this one.
        """
        return self.stack.add_output(
            self.lid(name), value, description, owner=self.owner, condition=condition, export=export
        )

    def skip_check(self, resource: AWSObject, check_id: str, reason: str) -> None:
        """Record on ``resource`` that checkov's ``check_id`` does not apply, and why."""
        self.stack.skip_check(resource, check_id, reason)

    def accept_finding(
        self, resource: AWSObject, rules: Iterable[str], reason: str, *, applies_to: Iterable[str] = ()
    ) -> None:
        """Record on ``resource`` that rule-pack findings ``rules`` are accepted, and why (see the Stack method)."""
        self.stack.accept_finding(resource, rules, reason, applies_to=applies_to)
