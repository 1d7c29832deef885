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
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from cfnbuild.app import deployed_stack_name
from cfnbuild.errors import ConfigError
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
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")]


class Section(BaseModel):
    """Base of every config section: strict types, unknown keys rejected, frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Capability = Literal["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]


class DeployConfig(Section):
    """``[deploy]``: how ``cfnbuild deploy`` ships this environment's stacks."""

    stack_name_suffix: str = Field(
        default="", pattern=r"^[A-Za-z0-9-]{0,40}$", description="Appended to '<stack>-<env>' to name the stack."
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


_TYPE_WORDS = {
    "int_type": "an integer",
    "string_type": "a string in quotes",
    "bool_type": "true or false",
    "list_type": 'a list like ["a", "b"]',
    "dict_type": "a table",
    "model_type": "a table",
    "float_type": "a number",
    "literal_error": None,
}


def _key(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) if not isinstance(part, int) else f"[{part}]" for part in loc).replace(".[", "[")


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed at ``loc`` (the parent of an unknown key)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = field.annotation
        args = getattr(current, "__args__", ())
        current = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), current)
    return sorted(k for k in getattr(current, "model_fields", {}) if k != "environment")


def explain(error: dict[str, Any], model: type[BaseModel]) -> tuple[str, str, str]:
    """Turn one pydantic error into (key, problem, fix)."""
    loc = tuple(error["loc"])
    key = _key(loc)
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        known = _known_keys(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        fix = f"did you mean {close[0]!r}?" if close else "remove it"
        return key, "unknown key", f"{fix} (known keys here: {', '.join(known)})"
    if kind == "missing":
        return key, "required key is missing", "add it"
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, Invalid):
        if cause.key:
            key = ".".join(part for part in (key, cause.key) if part)
        return key, cause.problem, cause.fix
    if kind in _TYPE_WORDS and kind != "literal_error":
        return key, f"expected {_TYPE_WORDS[kind]}, got {value!r}", f"write {_TYPE_WORDS[kind]}"
    return key, f"{error['msg']} (got {value!r})", "change the value as the message says"


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
