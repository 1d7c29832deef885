"""Environment configuration: one TOML file per environment, validated before anything is built.

A project describes its configuration as a pydantic model derived from
:class:`EnvironmentConfig`; the loader reads ``config/<env>.toml``, validates it strictly (no
unknown keys, no type coercion) and turns every problem into a :class:`~cfnbuild.errors.ConfigError`
that names the file, the key and the fix. The reusable types below (:data:`Cidr`,
:data:`Email`, :data:`DomainName`, :data:`Region`) carry their own checks and messages.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo

from cfnbuild.errors import ConfigError
from cfnbuild.project.names import deployed_stack_name
from cfnbuild.regions import KNOWN_REGIONS, is_known

ConfigT = TypeVar("ConfigT", bound="EnvironmentConfig")

_ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}$")
_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class Invalid(ValueError):
    """A value that fails a check: ``problem`` says what is wrong, ``fix`` what to write instead.

    Raised from a model validator, ``key`` names the field at fault (relative to the model).
    """

    def __init__(self, problem: str, fix: str, *, key: str = "") -> None:
        super().__init__(f"{problem}; {fix}")
        self.problem, self.fix, self.key = problem, fix, key


def check_cidr(value: str) -> str:
    """An IPv4 network in CIDR notation with no host bits set, e.g. ``10.0.0.0/16``."""
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise Invalid(f"{value!r} is not a valid IPv4 CIDR block ({exc})", "write it like '10.0.0.0/16'") from None
    return str(network)


def check_email(value: str) -> str:
    """An e-mail address for notifications."""
    if not _EMAIL.match(value):
        raise Invalid(f"{value!r} is not an e-mail address", "write it like 'ops@example.com'")
    return value


def check_domain(value: str) -> str:
    """A fully qualified DNS name, lower case, without a trailing dot."""
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise Invalid(
            f"{value!r} is not a valid domain name",
            "write a lower-case name like 'app.example.com' (no scheme, no trailing dot)",
        )
    return value


def check_region(value: str) -> str:
    """An AWS region cfn-lint knows."""
    if not is_known(value):
        close = difflib.get_close_matches(value, sorted(KNOWN_REGIONS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "write a region code like 'eu-west-1'"
        raise Invalid(f"{value!r} is not an AWS region", hint)
    return value


Cidr = Annotated[str, AfterValidator(check_cidr)]
Email = Annotated[str, AfterValidator(check_email)]
DomainName = Annotated[str, AfterValidator(check_domain)]
Region = Annotated[str, AfterValidator(check_region)]
# ``examples`` is what an error about a malformed value shows the reader (see :func:`explain`).
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,30}$", examples=["webapp"])]


class Section(BaseModel):
    """Base of every config section: strict types, unknown keys rejected, frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Capability = Literal["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]


class DeployConfig(Section):
    """``[deploy]``: how ``cfnbuild deploy`` ships this environment's stacks."""

    stack_name_suffix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9-]{0,40}$",
        examples=["blue"],
        description="Appended to '<stack>-<env>' to name the stack.",
    )
    termination_protection: bool = Field(default=False, description="Refuse to delete the stack (prod: true).")
    protect_stateful: bool = Field(
        default=True, description="A stack policy that denies Replace and Delete of every stateful resource."
    )
    capabilities: list[Capability] = Field(default_factory=lambda: ["CAPABILITY_IAM"], description="Acknowledged.")  # type: ignore[arg-type]  # pydantic's stub cannot see the literal
    parameters: dict[str, str] = Field(default_factory=dict, description="Template parameter values.")


class EnvironmentConfig(Section):
    """The keys every environment file has; a project's model adds its own sections."""

    environment: str = Field(default="", description="Set by the loader from the file name.")
    project: Name = Field(description="Short project name, used in tags.")
    regions: list[Region] = Field(min_length=1, description="Regions to deploy to; the first is the default.")
    tags: dict[str, str] = Field(default_factory=dict, description="Extra tags on every taggable resource.")
    deploy: DeployConfig = Field(default_factory=DeployConfig, description="[deploy] section.")

    def stack_name(self, stack: str) -> str:
        """The deployed name of ``stack`` in this environment: ``<stack>-<env>[-<suffix>]``."""
        return deployed_stack_name(stack, self.environment, self.deploy.stack_name_suffix)

    @property
    def region(self) -> str:
        """The default deploy region."""
        return self.regions[0]


def _key(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) if not isinstance(part, int) else f"[{part}]" for part in loc).replace(".[", "[")


def _model_of(annotation: Any) -> Any:
    """The model class inside ``annotation`` (``Section``, ``Section | None``), else ``annotation``."""
    args = getattr(annotation, "__args__", ())
    return next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), annotation)


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed at ``loc`` (the parent of an unknown key)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = _model_of(field.annotation)
    return sorted(k for k in getattr(current, "model_fields", {}) if k != "environment")


def _field_at(model: type[BaseModel], loc: tuple[Any, ...]) -> FieldInfo | None:
    """The declaration of the key at ``loc``; None for a list item, a table's own key or an unknown key."""
    current: Any = model
    field: FieldInfo | None = None
    for part in loc:
        fields = getattr(current, "model_fields", None)
        if isinstance(part, int) or fields is None or part not in fields:
            return None
        field = fields[part]
        current = _model_of(field.annotation)
    return field


def _toml(value: Any) -> str:
    """``value`` in TOML's words: what kind of value the reader wrote, and the value."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a table"
    kinds = {str: "the string", int: "the integer", float: "the number", list: "an array"}
    kind = next((words for type_, words in kinds.items() if isinstance(value, type_)), "")
    return f"{kind} {_short(value)}" if kind else _short(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _range(field: FieldInfo | None, ctx: dict[str, Any]) -> str:
    """The values a number key accepts, e.g. ``1 to 100``: both of the field's bounds, not just the one crossed."""
    bounds: dict[str, Any] = dict(ctx)
    for constraint in field.metadata if field is not None else ():
        for name in ("ge", "gt", "le", "lt"):
            if getattr(constraint, name, None) is not None:
                bounds[name] = getattr(constraint, name)
    # For whole numbers an exclusive bound is an inclusive one a step further, which reads better.
    low = _inclusive(bounds.get("ge"), bounds.get("gt"), 1)
    high = _inclusive(bounds.get("le"), bounds.get("lt"), -1)
    if low is not None and high is not None:
        return f"{low} to {high}"
    phrases = [
        f"{low} or more" if low is not None else f"more than {bounds['gt']}" if "gt" in bounds else "",
        f"{high} or less" if high is not None else f"less than {bounds['lt']}" if "lt" in bounds else "",
    ]
    return " and ".join(phrase for phrase in phrases if phrase) or "another value"


def _inclusive(inclusive: Any, exclusive: Any, step: int) -> Any:
    if inclusive is not None:
        return inclusive
    if isinstance(exclusive, int) and not isinstance(exclusive, bool):
        return exclusive + step
    return None


def _number_fix(value: Any, field: FieldInfo | None) -> str:
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return f"write {int(value)} without quotes"
    if isinstance(value, float) and value.is_integer():
        return f"write {int(value)}, without a decimal point"
    span = _range(field, {})
    return f"write a whole number ({span})" if span else "write a whole number, like 3"


def _quoted(value: Any) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return f'write it in quotes: "{text}"' if isinstance(value, int | float) else "write a string in quotes"


def _with_quotes_off(value: Any, expected: str) -> str:
    # A number or boolean written in quotes is the commonest way to miss a choice of numbers.
    return f"use {expected}, without quotes" if isinstance(value, str) and "'" not in expected else f"use {expected}"


def _length(value: Any, ctx: dict[str, Any], *, text: bool, short: bool) -> tuple[str, str]:
    actual = ctx.get("actual_length", len(value) if hasattr(value, "__len__") else 0)
    limit = ctx.get("min_length" if short else "max_length")
    noun = ("character" if text else "item") + ("" if limit == 1 else "s")
    problem = "is empty" if not actual else f"is {actual} characters long" if text else f"has {actual} items"
    return problem, f"give at {'least' if short else 'most'} {limit} {noun}"


def _pattern(value: Any, ctx: dict[str, Any], field: FieldInfo | None) -> tuple[str, str]:
    # A regular expression is exact but hard to read; the field's example shows the form.
    examples = field.examples if field is not None and field.examples else []
    fix = f"write it like {examples[0]!r}" if examples else "write a value of that form"
    return f"is {_short(value)}, which does not match the pattern {ctx.get('pattern')}", fix


def _bound(value: Any, ctx: dict[str, Any], field: FieldInfo | None) -> tuple[str, str]:
    return f"is {value}", f"use {_range(field, ctx)}"


def _integer(value: Any, ctx: dict[str, Any], field: FieldInfo | None) -> tuple[str, str]:
    return f"expected an integer, got {_toml(value)}", _number_fix(value, field)


def _choice(value: Any, ctx: dict[str, Any], field: FieldInfo | None) -> tuple[str, str]:
    return f"is {_short(value)}", _with_quotes_off(value, str(ctx.get("expected")))


def _missing(value: Any, ctx: dict[str, Any], field: FieldInfo | None) -> tuple[str, str]:
    fix = f"add it ({field.description.rstrip('.')})" if field is not None and field.description else "add it"
    return "required key is missing", fix


def _typed(
    expected: str, fix: Callable[[Any], str]
) -> Callable[[Any, dict[str, Any], FieldInfo | None], tuple[str, str]]:
    """A wording for a value of the wrong TOML type: what was expected, what was written, the fix."""

    def worded(value: Any, ctx: dict[str, Any], field: FieldInfo | None) -> tuple[str, str]:
        return f"expected {expected}, got {_toml(value)}", fix(value)

    return worded


def _bracketed(value: Any) -> str:
    return f'write it in brackets: ["{value}"]' if isinstance(value, str) else 'write an array like ["a", "b"]'


# pydantic's error kinds → (problem, fix) in cfnbuild's words.
_WORDINGS: dict[str, Callable[[Any, dict[str, Any], FieldInfo | None], tuple[str, str]]] = {
    "greater_than": _bound,
    "greater_than_equal": _bound,
    "less_than": _bound,
    "less_than_equal": _bound,
    "int_type": _integer,
    "int_parsing": _integer,
    "int_from_float": _integer,
    "literal_error": _choice,
    "enum": _choice,
    "too_short": lambda value, ctx, field: _length(value, ctx, text=False, short=True),
    "too_long": lambda value, ctx, field: _length(value, ctx, text=False, short=False),
    "string_too_short": lambda value, ctx, field: _length(value, ctx, text=True, short=True),
    "string_too_long": lambda value, ctx, field: _length(value, ctx, text=True, short=False),
    "string_pattern_mismatch": _pattern,
    "missing": _missing,
    "string_type": _typed("a string", _quoted),
    "bool_type": _typed("true or false", lambda value: "write true or false, without quotes"),
    "bool_parsing": _typed("true or false", lambda value: "write true or false, without quotes"),
    "float_type": _typed("a number", lambda value: "write a number, like 1.5"),
    "float_parsing": _typed("a number", lambda value: "write a number, like 1.5"),
    "list_type": _typed("an array", _bracketed),
}


def explain(error: dict[str, Any], model: type[BaseModel]) -> tuple[str, str, str]:
    """Turn one pydantic error into (key, problem, fix), in cfnbuild's words rather than pydantic's."""
    loc = tuple(error["loc"])
    key = _key(loc)
    kind = error["type"]
    value = error.get("input")
    ctx = dict(error.get("ctx") or {})
    if kind == "extra_forbidden":
        known = _known_keys(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        fix = f"did you mean {close[0]!r}?" if close else "remove it"
        return key, "unknown key", f"{fix} (known keys here: {', '.join(known)})"
    cause = ctx.get("error")
    if isinstance(cause, Invalid):
        if cause.key:
            key = ".".join(part for part in (key, cause.key) if part)
        return key, cause.problem, cause.fix
    if kind in ("dict_type", "model_type"):
        lines = ' of key = "value" lines' if kind == "dict_type" else ""
        return key, f"expected a table, got {_toml(value)}", f"write it as a [{key}] table{lines}"
    field = _field_at(model, loc)
    if kind in _WORDINGS:
        problem, fix = _WORDINGS[kind](value, ctx, field)
        return key, problem, fix
    # A kind not worded above: pydantic's sentence, lower-cased into ours, and the key's meaning.
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    problem = f"is {_short(value)}: {message[:1].lower()}{message[1:]}" if "input" in error else message
    meaning = f" ({field.description.rstrip('.')})" if field is not None and field.description else ""
    return key, problem, f"write a value that fits{meaning}"


def load_config(path: Path, model: type[ConfigT]) -> ConfigT:
    """Read and validate one environment file; the environment's name is the file's stem."""
    environment = path.stem
    if not _ENV_NAME.match(environment):
        raise ConfigError(
            str(path),
            [
                (
                    "",
                    f"{environment!r} is not a valid environment name",
                    "name the file like 'dev.toml' (lower case, digits, '-')",
                )
            ],
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [("", f"is not valid TOML ({exc})", "fix the syntax at that line")]) from None
    except OSError as exc:
        raise ConfigError(str(path), [("", f"cannot be read ({exc.strerror})", "check the path")]) from None
    if "environment" in raw:
        raise ConfigError(
            str(path),
            [
                (
                    "environment",
                    "is set by the file name",
                    f"remove the key; this file is environment {environment!r}",
                )
            ],
        )
    try:
        return model.model_validate({**raw, "environment": environment})
    except ValidationError as exc:
        raise ConfigError(str(path), [explain(dict(err), model) for err in exc.errors()]) from None
