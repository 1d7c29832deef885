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
import sys
import types
import typing
import weakref
from collections import abc
from collections.abc import Callable, Sequence
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


@dataclasses.dataclass(frozen=True)
class InputProblem:
    """One input whose value is not of its declared type: ``path`` is the field (and item) at fault."""

    path: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.problem}; {self.fix}"


# Declared types whose values are containers of items: a str is one of them to Python, but a
# string given where a list of strings belongs is always a mistake.
_TEXT = (str, bytes, bytearray)
_ITEM_CONTAINERS = (abc.Sequence, abc.Collection, abc.Iterable, abc.Set)
_MAX_REPR = 60


def input_problems(inputs: Any) -> list[InputProblem]:
    """Every field of the inputs dataclass ``inputs`` whose value does not match its annotation.

    Checks what blueprints declare: ``int`` (a bool is not one), ``float``, ``str``, ``bool``,
    ``Literal``, ``X | None`` and other unions, ``tuple[...]``, ``Sequence``/``list``,
    ``Mapping``/``dict``, and classes such as troposphere's ``AWSHelperFn`` (Ref, GetAtt, ...)
    and ``AWSObject``. A type it cannot check (a TypeVar, a Protocol, an annotation that does not
    resolve) accepts every value: a check must never refuse inputs that build.
    """
    hints = _field_types(type(inputs))
    problems = []
    for field in dataclasses.fields(inputs):
        if field.name in hints:
            problem = _check(getattr(inputs, field.name), hints[field.name], field.name)
            if problem is not None:
                problems.append(problem)
    return problems


# Resolved once per inputs class; weak, so that a class made in a test goes with its test.
_FIELD_TYPES: weakref.WeakKeyDictionary[type[Any], dict[str, Any]] = weakref.WeakKeyDictionary()


def _field_types(inputs_type: type[Any]) -> dict[str, Any]:
    """The resolved annotation of each field; a field whose annotation does not resolve is left out."""
    if inputs_type not in _FIELD_TYPES:
        _FIELD_TYPES[inputs_type] = _resolve(inputs_type)
    return _FIELD_TYPES[inputs_type]


def _resolve(inputs_type: type[Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(inputs_type, include_extras=True)
    except (NameError, TypeError):
        # A class defined inside a function may name types only that function knows; resolve
        # what can be resolved field by field rather than checking nothing.
        pass
    namespace = vars(sys.modules[inputs_type.__module__]) if inputs_type.__module__ in sys.modules else {}
    resolved = {}
    for field in dataclasses.fields(inputs_type):
        annotation = field.type
        if isinstance(annotation, str):
            try:
                # The same evaluation typing.get_type_hints makes of the class's own annotation.
                annotation = eval(annotation, dict(namespace))  # noqa: S307
            except Exception:  # noqa: S112  (unresolvable: that field is not checked)
                continue
        resolved[field.name] = annotation
    return resolved


_ORIGIN_KINDS: dict[Any, str] = {
    typing.Annotated: "annotated",
    typing.Union: "union",
    types.UnionType: "union",
    typing.Literal: "literal",
    tuple: "tuple",
}


def _kind(declared: Any) -> str:
    """Which check a declared type needs: its ``typing`` form, or ``plain`` for a class or None."""
    origin = typing.get_origin(declared)
    if origin is None:
        return "plain"
    if origin in _ORIGIN_KINDS:
        return _ORIGIN_KINDS[origin]
    if isinstance(origin, type) and issubclass(origin, abc.Mapping):
        return "mapping"
    if isinstance(origin, type) and issubclass(origin, _ITEM_CONTAINERS):
        return "items"
    return "unchecked"  # Callable[...], type[...] and the like


def _check(value: Any, declared: Any, path: str) -> InputProblem | None:
    """The first part of ``value`` (itself or an item) that is not a ``declared``; None when all are."""
    return _CHECKS[_kind(declared)](value, declared, path)


def _check_annotated(value: Any, declared: Any, path: str) -> InputProblem | None:
    return _check(value, typing.get_args(declared)[0], path)


def _check_literal(value: Any, declared: Any, path: str) -> InputProblem | None:
    # Compare types too: True == 1, but True is not the literal 1.
    allowed = typing.get_args(declared)
    if any(value == choice and type(value) is type(choice) for choice in allowed):
        return None
    return InputProblem(path, f"is {_short(value)}", "use " + _either(allowed))


def _check_mapping(value: Any, declared: Any, path: str) -> InputProblem | None:
    if not isinstance(value, typing.get_origin(declared)):
        return _problem(value, declared, path)
    key_type, value_type = typing.get_args(declared) or (Any, Any)
    for key, item in value.items():
        problem = _check(key, key_type, f"{path} key {key!r}") or _check(item, value_type, f"{path}[{key!r}]")
        if problem is not None:
            return problem
    return None


def _check_items(value: Any, declared: Any, path: str) -> InputProblem | None:
    if not isinstance(value, typing.get_origin(declared)) or isinstance(value, _TEXT):
        return _problem(value, declared, path)
    (item_type,) = typing.get_args(declared) or (Any,)
    for index, item in enumerate(value):
        problem = _check(item, item_type, f"{path}[{index}]")
        if problem is not None:
            return problem
    return None


def _unchecked(value: Any, declared: Any, path: str) -> InputProblem | None:
    return None


def _check_union(value: Any, declared: Any, path: str) -> InputProblem | None:
    arms = typing.get_args(declared)
    problems = [_check(value, arm, path) for arm in arms]
    if any(problem is None for problem in problems):
        return None
    # When one arm matches the value's outer type and only an item is wrong, that item is the news.
    deeper = [problem for problem in problems if problem is not None and problem.path != path]
    if len(deeper) == 1:
        return deeper[0]
    return _problem(value, declared, path)


def _check_tuple(value: Any, declared: Any, path: str) -> InputProblem | None:
    args = typing.get_args(declared)
    if not isinstance(value, tuple):
        return _problem(value, declared, path)
    if len(args) == 2 and args[1] is Ellipsis:
        item_types = [args[0]] * len(value)
    elif args == ((),):
        item_types = []
    elif args:
        item_types = list(args)
        if len(value) != len(item_types):
            return InputProblem(path, f"has {len(value)} items", f"pass a tuple of {len(item_types)}")
    else:
        return None
    for index, (item, item_type) in enumerate(zip(value, item_types, strict=False)):
        problem = _check(item, item_type, f"{path}[{index}]")
        if problem is not None:
            return problem
    return None


def _check_plain(value: Any, declared: Any, path: str) -> InputProblem | None:
    if declared is Any or declared is object:
        return None
    if declared is None or declared is type(None):
        return None if value is None else _problem(value, None, path)
    supertype = getattr(declared, "__supertype__", None)  # a typing.NewType
    if supertype is not None:
        return _check(value, supertype, path)
    if not isinstance(declared, type):
        return None  # a TypeVar, a string that never resolved: not checked
    if declared is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif declared is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        try:
            ok = isinstance(value, declared)
        except TypeError:  # a Protocol that is not runtime-checkable
            return None
    return None if ok else _problem(value, declared, path)


_CHECKS: dict[str, Callable[[Any, Any, str], InputProblem | None]] = {
    "plain": _check_plain,
    "annotated": _check_annotated,
    "union": _check_union,
    "literal": _check_literal,
    "tuple": _check_tuple,
    "mapping": _check_mapping,
    "items": _check_items,
    "unchecked": _unchecked,
}


def _problem(value: Any, declared: Any, path: str) -> InputProblem:
    return InputProblem(path, f"expected {_type_name(declared)}, got {_got(value)}", f"pass {_wanted(declared)}")


def _type_name(declared: Any) -> str:
    if declared is None or declared is type(None):
        return "None"
    origin = typing.get_origin(declared)
    args = typing.get_args(declared)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(_type_name(arm) for arm in args)
    if origin is typing.Literal:
        return "Literal[" + ", ".join(map(repr, args)) + "]"
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        inner = ", ".join("..." if arg is Ellipsis else _type_name(arg) for arg in args)
        return f"{name}[{inner}]" if args else name
    return getattr(declared, "__name__", str(declared))


def _either(choices: Sequence[Any]) -> str:
    """``'a', 'b' or 'c'``."""
    texts = [repr(choice) for choice in choices]
    return texts[0] if len(texts) == 1 else f"{', '.join(texts[:-1])} or {texts[-1]}"


_WORDS: dict[Any, str] = {
    int: "a whole number",
    float: "a number",
    str: "a string",
    bool: "True or False",
    None: "None",
    type(None): "None",
}


def _wanted(declared: Any) -> str:
    """What to pass instead, in words."""
    kind = _kind(declared)
    args = typing.get_args(declared)
    if kind == "annotated":
        return _wanted(args[0])
    if kind == "union":
        return " or ".join(dict.fromkeys(_wanted(arm) for arm in args))
    if kind == "literal":
        return _either(args)
    if kind == "plain":
        return _WORDS.get(declared) or _troposphere_words(declared) or f"a {_type_name(declared)}"
    return {
        "tuple": "a tuple (not a list: tuple(values))",
        "mapping": "a dict",
        "items": "a tuple or list of them (a single string is not a list)",
    }.get(kind, f"a {_type_name(declared)}")


def _troposphere_words(declared: Any) -> str:
    """How to say a troposphere type to a blueprint author; empty for other types."""
    module = getattr(declared, "__module__", "")
    if not module.startswith("troposphere"):
        return ""
    from troposphere import AWSHelperFn, AWSObject  # noqa: PLC0415  (only troposphere types need it)

    if isinstance(declared, type) and issubclass(declared, AWSHelperFn):
        return "a reference such as Ref(resource) or GetAtt(resource, 'Arn') (another blueprint's output)"
    if isinstance(declared, type) and issubclass(declared, AWSObject):
        return "the resource object itself (e.g. a blueprint's attribute holding it), not its name or a Ref"
    return f"a troposphere {declared.__name__}"


def _got(value: Any) -> str:
    """``value``'s type and a short form of it."""
    kind = type(value).__name__
    title = getattr(value, "title", None)
    if type(value).__module__.startswith("troposphere"):
        # troposphere's repr is an address; its title (the logical ID) says which object it is.
        return f"{kind} {title!r}" if isinstance(title, str) else kind
    return f"{kind} {_short(value)}"


def _short(value: Any) -> str:
    """``repr(value)``, cut to a length that fits in one line of an error."""
    text = repr(value)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."
