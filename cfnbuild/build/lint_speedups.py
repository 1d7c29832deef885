"""Faster equivalents of five of cfn-lint's internals, each used only over the exact code it replaces.

A profile of cfn-lint linting the flagship's templates spends about a third of its time on
work that gives the same answer every time:

- ``cfnlint.jsonschema.validators.create`` builds a new dataclass (generating and compiling its
  methods) for every extended validator, about a thousand times for nine templates, although
  the few distinct combinations of keyword functions repeat. Here a class is built once per
  combination and reused (the class holds nothing but those functions and the function filter,
  which cfn-lint never changes in place).
- ``evolve`` of the validator, of ``Context`` and of ``FunctionFilter`` asks
  :func:`dataclasses.fields` for the field list on each of hundreds of thousands of calls, then
  calls the class with every field as a keyword. Here the list of fields is read once per
  class, and the validator's and ``Context``'s copies fill the new instance as their
  ``__init__`` would, without the call (:func:`_copying_evolve`).
- E3062 checks an RDS instance's class against a 5 MB schema of 980 ``if``/``then`` pairs,
  one per engine and version, evaluating all 980 ``if`` s for every instance and region. An
  ``if`` whose ``Engine`` constant is not the instance's engine fails, and with no ``else`` says
  nothing; here only the pairs of the instance's engine (70) are evaluated, in their order.
- E1101's ``cfnLint`` keyword loops over every child rule and each of its keywords for every
  keyword of every value it checks. Here the child rules are indexed by keyword once, and the
  index is rebuilt whenever the set of child rules changes.

Each replacement is installed only where the source of the function it replaces hashes to the
value it was written against (recorded below, from cfn-lint 1.58.0); any other cfn-lint keeps
its own code for that part, and linting is as correct as before, only slower. The findings are
the same either way: ``tests/cfnbuild/build/test_lint_speedups.py`` lints a corpus of broken
templates with and without these and compares every finding. ``CFNBUILD_LINT_SPEEDUPS=0`` turns
them all off. The JSON fast path for decoding is in :func:`cfnbuild.build.lint.decode_template`.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Callable
from dataclasses import fields
from typing import Any

# sha256 of ``inspect.getsource`` of each function replaced here, as cfn-lint 1.58.0 has it.
KNOWN_SOURCES = {
    "validators.create": "2d1dd51fbc7a640b01868d3224cefa20d9815bcf85ef8e0b16fbc79fd839eabe",
    "Context.evolve": "05aa695393629cc4baba47d15ef539cecbceeaf2e36b7ebb2fa7e13496084085",
    "FunctionFilter.evolve": "58dfb27d5ccfea4455de3ea80108ba9d0320a63e2f2275e12bde671dbd8d6f0c",
    "CfnLint.cfnLint": "23947c8987cd5a17a598e63b579c6826d57ec83fbad47c0f21953fe5c39dcb63",
    "E3062.validate": "151287fd5b22e3768bcced35c45cbe4ac04d7feb7dfa8e82540133cc1b9fd19d",
}
# E3062's replacement also relies on the code it calls: the schema rule it extends.
CFN_LINT_JSON_SCHEMA_VALIDATE = "3878814cd909086e798b4d85d6b3b6e121b29141ee31f22ab6b954ecef2c5d3b"
DISABLE_VARIABLE = "CFNBUILD_LINT_SPEEDUPS"

_installed: dict[str, bool] = {}


def enabled() -> bool:
    """Whether the speedups may be installed (``CFNBUILD_LINT_SPEEDUPS=0`` says no)."""
    return os.environ.get(DISABLE_VARIABLE, "1").strip().lower() not in {"0", "false", "no", "off"}


def source_matches(name: str, function: Callable[..., Any]) -> bool:
    """Whether ``function``'s source is the one the replacement for ``name`` was written against."""
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):  # no source to compare (a frozen or compiled install): keep cfn-lint's
        return False
    return hashlib.sha256(source.encode()).hexdigest() == KNOWN_SOURCES[name]


def install(rules: Any) -> dict[str, bool]:
    """Install every replacement whose original matches; which ones are in place, by name.

    ``rules`` is the loaded rule collection (E1101's class is loaded from a file by cfn-lint's
    rule loader, so it is found through its instance). Idempotent.
    """
    if not enabled():
        return dict.fromkeys(KNOWN_SOURCES, False)
    import cfnlint.context.context as context_module  # noqa: PLC0415  (cfn-lint only where it lints)
    import cfnlint.jsonschema._filter as filter_module  # noqa: PLC0415
    import cfnlint.jsonschema.validators as validators_module  # noqa: PLC0415

    if "validators.create" not in _installed:
        _installed["validators.create"] = _install_create(validators_module)
    if "Context.evolve" not in _installed:
        _installed["Context.evolve"] = _install_evolve("Context.evolve", context_module.Context)
    if "FunctionFilter.evolve" not in _installed:
        _installed["FunctionFilter.evolve"] = _install_evolve("FunctionFilter.evolve", filter_module.FunctionFilter)
    e1101 = getattr(rules, "data", {}).get("E1101")
    if e1101 is not None and not _installed.get("CfnLint.cfnLint"):
        _installed["CfnLint.cfnLint"] = _install_keyword_index(type(e1101))
    e3062 = getattr(rules, "data", {}).get("E3062")
    if e3062 is not None and not _installed.get("E3062.validate"):
        _installed["E3062.validate"] = _install_engine_index(e3062)
    return {name: _installed.get(name, False) for name in KNOWN_SOURCES}


def _fast_evolve(cls: type) -> Callable[..., Any]:
    """``evolve`` for a dataclass: a copy with the given fields changed, every other init field kept."""
    names = tuple(f.name for f in fields(cls) if f.init)

    def evolve(self: Any, **kwargs: Any) -> Any:
        for name in names:
            if name not in kwargs:
                kwargs[name] = getattr(self, name)
        return self.__class__(**kwargs)

    evolve.__doc__ = getattr(cls, "evolve").__doc__  # noqa: B009  (the method being replaced)
    return evolve


def _copying_evolve(cls: type, slow: Callable[..., Any], *, post_init: bool) -> Callable[..., Any]:
    """``evolve`` that fills a new instance's ``__dict__`` as the dataclass's ``__init__`` would.

    The generated ``__init__`` of these dataclasses only assigns each field (``init=False``
    ones from factories that hand out the same objects for the class, so the copy keeps
    ``self``'s), then calls ``__post_init__`` if there is one; this does the same without the
    keyword-argument call and, for a frozen class, its ``object.__setattr__`` per field. A name
    that is not an init field goes to ``slow`` (cfn-lint's way), which says what is wrong.
    """
    init_names = frozenset(f.name for f in fields(cls) if f.init)
    every_field = tuple(f.name for f in fields(cls))
    new_object = object.__new__

    def evolve(self: Any, **kwargs: Any) -> Any:
        if not init_names.issuperset(kwargs):
            return slow(self, **kwargs)
        new = new_object(self.__class__)
        values = new.__dict__
        source = self.__dict__
        for name in every_field:
            values[name] = kwargs[name] if name in kwargs else source[name]
        if post_init:
            new.__post_init__()
        return new

    evolve.__doc__ = slow.__doc__
    return evolve


def _install_evolve(name: str, cls: type) -> bool:
    original = cls.__dict__.get("evolve")
    if original is None or not source_matches(name, original):
        return False
    fast = _fast_evolve(cls)
    if name == "Context.evolve":  # Context's evolve merges ref_values into a copy first
        plain = _copying_evolve(cls, fast, post_init=False)  # no __post_init__, no init=False field

        def fast(self: Any, **kwargs: Any) -> Any:
            if "ref_values" in kwargs:
                merged = self.ref_values.copy()
                merged.update(kwargs["ref_values"])
                kwargs["ref_values"] = merged
            return plain(self, **kwargs)

    cls.evolve = fast  # type: ignore[attr-defined]
    return True


def _frozen(value: Any) -> Any:
    """A hashable stand-in for a field value of a function filter (lists become tuples)."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    return value


def _install_create(module: Any) -> bool:
    original = module.create
    if not source_matches("validators.create", original):
        return False
    classes: dict[Any, type] = {}

    def create(validators: Any = None, function_filter: Any = None, fn_resolvers: Any = None) -> type:
        try:
            key = (
                tuple((validators or {}).items()),
                None
                if function_filter is None
                else tuple((f.name, _frozen(getattr(function_filter, f.name))) for f in fields(function_filter)),
                tuple((fn_resolvers or {}).items()),
            )
            return classes[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable keyword function: build the class as cfn-lint does
            return _with_fast_evolve(original(validators, function_filter, fn_resolvers))
        cls = classes[key] = _with_fast_evolve(original(validators, function_filter, fn_resolvers))
        return cls

    create.__doc__ = original.__doc__
    module.create = create
    for value in list(vars(module).values()):  # the validators built when the module was imported
        if isinstance(value, type) and "extend" in vars(value) and "evolve" in vars(value):
            _with_fast_evolve(value)
    return True


def _with_fast_evolve(cls: type) -> type:
    cls.evolve = _copying_evolve(cls, _fast_evolve(cls), post_init=True)  # type: ignore[attr-defined]
    return cls


def _install_keyword_index(cls: type) -> bool:
    original = cls.__dict__.get("cfnLint")
    if original is None or not source_matches("CfnLint.cfnLint", original):
        return False
    from cfnlint.jsonschema._utils import Unset  # noqa: PLC0415

    def cfn_lint_keyword(self: Any, validator: Any, keywords: Any, instance: Any, schema: Any) -> Any:
        validator = validator.evolve(function_filter=validator.function_filter.evolve(add_cfn_lint_keyword=False))
        rules = self.child_rules.values()
        identities = tuple(map(id, rules))  # by identity: rules compare equal by their ID alone
        cached = self.__dict__.get("_cfnbuild_keyword_index")
        if cached is None or cached[0] != identities:
            index: dict[str, list[Any]] = {}
            for rule in rules:
                if rule is None or not rule.id:
                    continue
                for rule_keyword in rule.keywords:  # a rule listed under a keyword twice runs twice, as before
                    index.setdefault(rule_keyword, []).append(rule)
            # the rules are kept with their identities, so that no identity is reused while cached
            cached = self.__dict__["_cfnbuild_keyword_index"] = (identities, index, tuple(rules))
        index = cached[1]
        for keyword in keywords:
            for rule in index.get(keyword, ()):
                for err in rule.validate(validator, keyword, instance, schema):
                    if err.rule is None and isinstance(err.validator, Unset):
                        err.rule = rule
                    yield err

    cfn_lint_keyword.__doc__ = original.__doc__
    cls.cfnLint = cfn_lint_keyword  # type: ignore[attr-defined]
    return True


def _engine_index(schema: Any) -> dict[str, dict[str, Any]] | None:
    """E3062's schema split by engine: for each engine, the schema with only its pairs, in order.

    ``None`` unless every entry is an ``if`` (whose ``Engine`` has a string ``const``) with a
    ``then`` and no ``else``: the shape the replacement is exact for.
    """
    entries = schema.get("allOf") if isinstance(schema, dict) else None
    if not isinstance(entries, list) or set(schema) - {"allOf", "description"}:
        return None
    by_engine: dict[str, list[Any]] = {}
    for entry in entries:
        engine = (((entry.get("if") or {}).get("properties") or {}).get("Engine") or {}).get("const")
        if set(entry) != {"if", "then"} or not isinstance(engine, str):
            return None
        by_engine.setdefault(engine, []).append(entry)
    return {engine: {**schema, "allOf": pairs} for engine, pairs in by_engine.items()}


def _install_engine_index(rule: Any) -> bool:
    cls = type(rule)
    original = cls.__dict__.get("validate")
    base = next((klass for klass in cls.__mro__[1:] if "validate" in klass.__dict__), None)
    if original is None or base is None or not source_matches("E3062.validate", original):
        return False
    base_source = inspect.getsource(base.__dict__["validate"]).encode()
    if hashlib.sha256(base_source).hexdigest() != CFN_LINT_JSON_SCHEMA_VALIDATE:
        return False
    index = _engine_index(getattr(rule, "_schema", None))
    if index is None or getattr(rule, "_use_schema_arg", True):
        return False
    nothing = {**rule._schema, "allOf": []}  # an engine no pair names: no ``if`` can hold

    def validate(self: Any, validator: Any, keywords: Any, instance: Any, schema: Any) -> Any:
        engine = instance.get("Engine") if isinstance(instance, dict) else None
        if not isinstance(engine, str):  # no engine, or a function: every pair, as cfn-lint does
            yield from original(self, validator, keywords, instance, schema)
            return
        full = self._schema
        self._schema = index.get(engine.lower(), nothing)  # the rule compares the engine lower-cased
        try:
            yield from original(self, validator, keywords, instance, schema)
        finally:
            self._schema = full

    validate.__doc__ = original.__doc__
    cls.validate = validate
    return True
