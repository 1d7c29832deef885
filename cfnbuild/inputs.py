"""Typed, documented blueprint inputs.

A blueprint's inputs are a frozen dataclass; every field is declared with :func:`setting`, which
records its documentation next to its default so that ``describe_inputs`` (and the CLI's
``list --inputs``) can print the table a reader needs, the way runway's CFNgin variables do::

    @dataclass(frozen=True)
    class BucketInputs:
        versioned: bool = setting(True, "Keep every version of every object.")
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

DOC_KEY = "cfnbuild.doc"


def setting(default: Any = dataclasses.MISSING, doc: str = "", *, factory: Callable[[], Any] | None = None) -> Any:
    """Declare a documented input field; ``doc`` says what it does, the default is shown with it.

    Pass ``factory`` instead of ``default`` for mutable defaults, or neither for a required input.
    """
    if not doc:
        raise ValueError("every blueprint input needs a description")
    metadata = {DOC_KEY: doc}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class InputDoc:
    """One row of an inputs table."""

    name: str
    type: str
    default: str
    doc: str


def describe_inputs(inputs_type: type[Any]) -> list[InputDoc]:
    """Return the documented fields of an inputs dataclass, in declaration order.

    Raises ``TypeError`` naming the field when one was declared without :func:`setting`.
    """
    rows = []
    for field in dataclasses.fields(inputs_type):
        doc = field.metadata.get(DOC_KEY)
        if not doc:
            raise TypeError(
                f"{inputs_type.__name__}.{field.name} has no documentation: "
                "declare it with cfnbuild.setting(default, doc)"
            )
        if field.default is not dataclasses.MISSING:
            default = repr(field.default)
        elif field.default_factory is not dataclasses.MISSING:
            default = repr(field.default_factory())
        else:
            default = "(required)"
        type_name = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
        rows.append(InputDoc(field.name, str(type_name), default, doc))
    return rows
