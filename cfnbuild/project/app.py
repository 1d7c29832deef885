"""A project: its configuration model, its stacks, and where their files live.

The CLI finds the project through ``[tool.cfnbuild]`` in ``pyproject.toml``::

    [tool.cfnbuild]
    app = "blueprints.app:app"  # an importable cfnbuild.App
    config_dir = "config"  # one <env>.toml per environment
    output_dir = "output"  # generated templates, committed
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from cfnbuild.errors import UsageError
from cfnbuild.project.names import deployed_stack_name
from cfnbuild.project.record import Record, recording, verified

if TYPE_CHECKING:
    from cfnbuild.build.stack import Stack
    from cfnbuild.project.config import EnvironmentConfig


# A project's config model (string bound: cfnbuild.project.config, and pydantic with it, load on first use).
ConfigT = TypeVar("ConfigT", bound="EnvironmentConfig")


@dataclass(frozen=True)
class StackSpec(Generic[ConfigT]):
    """One stack of a project: its short name and the function that builds it from a config.

    ``build`` is wrapped so that a failure while it runs (a blueprint's refused inputs, a
    troposphere check) is one line naming the environment and the stack: whoever builds the
    stack, the CLI or a test, gets the same error (see :func:`cfnbuild.build.stack.building`).
    """

    name: str
    build: Callable[[ConfigT], Stack]
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.build, _Placed):
            object.__setattr__(self, "build", _Placed(self.name, self.build))


@dataclass(frozen=True)
class _Placed(Generic[ConfigT]):
    """A stack function whose expected failures name the environment and the stack."""

    name: str
    function: Callable[[ConfigT], Stack]

    def __call__(self, config: ConfigT) -> Stack:
        # Loaded here, not with this module: a deploy of a built template builds no stack.
        from cfnbuild.build.stack import building  # noqa: PLC0415

        with building(config.environment, self.name):
            return self.function(config)


@dataclass(frozen=True)
class App(Generic[ConfigT]):
    """A project's definition: the config model every environment file must satisfy, and its stacks.

    ``catalog``, when given, is what ``cfnbuild export --service-catalog`` ships instead of one of
    ``stacks``: a composition of the same blueprints in ONE stack, because a catalog end user
    launches one product and nothing fills one stack's inputs from another's outputs there. It is
    rendered for the export only (never written to ``output/<env>/``, never deployed by ``deploy``).
    """

    config_model: type[ConfigT]
    stacks: Sequence[StackSpec[ConfigT]]
    catalog: StackSpec[ConfigT] | None = None

    def stack(self, name: str) -> StackSpec[ConfigT]:
        """The stack called ``name``."""
        for spec in self.stacks:
            if spec.name == name:
                return spec
        known = ", ".join(s.name for s in self.stacks)
        raise UsageError(f"unknown stack {name!r}; this project has: {known}")


@dataclass(frozen=True)
class DeploySection:
    """``[deploy]`` of an environment's config, as plain data (see :class:`cfnbuild.project.config.DeployConfig`)."""

    stack_name_suffix: str
    termination_protection: bool
    protect_stateful: bool
    capabilities: tuple[str, ...]
    parameters: Mapping[str, str]


@dataclass(frozen=True)
class DeploySettings:
    """The keys of an environment's config that a deploy reads: :class:`EnvironmentConfig`'s own.

    Plain data, so that a build record can carry them and a deploy of a built template needs
    neither the project's config model nor pydantic.
    """

    environment: str
    project: str
    regions: tuple[str, ...]
    tags: Mapping[str, str]
    deploy: DeploySection

    @classmethod
    def of(cls, config: EnvironmentConfig) -> DeploySettings:
        """The settings of a validated config."""
        d = config.deploy
        return cls(
            environment=config.environment,
            project=config.project,
            regions=tuple(config.regions),
            tags=dict(config.tags),
            deploy=DeploySection(
                d.stack_name_suffix,
                d.termination_protection,
                d.protect_stateful,
                tuple(d.capabilities),
                dict(d.parameters),
            ),
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeploySettings:
        """The settings :meth:`to_json` wrote."""
        d = data["deploy"]
        return cls(
            environment=str(data["environment"]),
            project=str(data["project"]),
            regions=tuple(data["regions"]),
            tags=dict(data["tags"]),
            deploy=DeploySection(
                str(d["stack_name_suffix"]),
                bool(d["termination_protection"]),
                bool(d["protect_stateful"]),
                tuple(d["capabilities"]),
                dict(d["parameters"]),
            ),
        )

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON-ready data."""
        return {
            "environment": self.environment,
            "project": self.project,
            "regions": list(self.regions),
            "tags": dict(self.tags),
            "deploy": {**dataclasses.asdict(self.deploy), "capabilities": list(self.deploy.capabilities)},
        }

    def stack_name(self, stack: str) -> str:
        """The deployed name of ``stack`` in this environment: ``<stack>-<env>[-<suffix>]``."""
        return deployed_stack_name(stack, self.environment, self.deploy.stack_name_suffix)

    @property
    def region(self) -> str:
        """The default deploy region."""
        return self.regions[0]


@dataclass(frozen=True)
class DeployView:
    """What a deploy needs of one environment: its config, its stacks, and the proof of its templates.

    ``record`` is the environment's build record when it holds (see :mod:`cfnbuild.project.record`): the
    templates in output/ are then known to be what build writes now, without rendering, and the
    settings are the ones the record carries. Without it the caller renders and compares.
    """

    settings: DeploySettings
    stacks: list[str]
    record: Record | None


@dataclass(frozen=True)
class Project:
    """A loaded project rooted at ``root``; its app is imported when first needed."""

    root: Path
    app_reference: str
    config_dir: Path
    output_dir: Path
    default_environment: str | None = None
    _configs: dict[str, EnvironmentConfig] = field(default_factory=dict, compare=False, repr=False)
    _views: dict[str, DeployView] = field(default_factory=dict, compare=False, repr=False)

    @property
    def pyproject(self) -> Path:
        """The project's ``pyproject.toml``."""
        return self.root / "pyproject.toml"

    @cached_property
    def app(self) -> App[Any]:
        """The project's :class:`App`, imported on first use (a deploy of a built template never needs it).

        The app is project code, imported from the project directory, not installed (see
        :func:`put_first_on_path`).
        """
        module_name, _, attribute = self.app_reference.partition(":")
        put_first_on_path(self.root)
        try:
            with recording():  # what importing the app reads is an input of its renders
                app = getattr(importlib.import_module(module_name), attribute or "app")
        except SyntaxError as exc:  # the project's own code: where, and what Python says
            where = f"{exc.filename}:{exc.lineno}" if exc.filename else self.app_reference
            raise UsageError(
                f"{where}: {exc.msg}; fix the syntax there (importing the app {self.app_reference!r})"
            ) from exc
        except (ImportError, AttributeError) as exc:
            raise UsageError(
                f"{self.pyproject}: [tool.cfnbuild] app = {self.app_reference!r} cannot be loaded ({exc})"
            ) from exc
        if not isinstance(app, App):
            raise UsageError(f"{self.pyproject}: [tool.cfnbuild] app = {self.app_reference!r} is not a cfnbuild.App")
        return app

    def app_directories(self) -> list[Path]:
        """The directory of the app's top-level package (none for a single-module app)."""
        self.app  # noqa: B018  (imported, so that the package is in sys.modules)
        package = sys.modules.get(self.app_reference.partition(":")[0].split(".")[0])
        return [Path(entry) for entry in getattr(package, "__path__", None) or ()]

    def environments(self) -> list[str]:
        """Every environment with a config file."""
        if not self.config_dir.is_dir():
            raise UsageError(f"{self.config_dir}: no such directory; create it with one <env>.toml per environment")
        return sorted(p.stem for p in self.config_dir.glob("*.toml"))

    def config_path(self, environment: str) -> Path:
        """The config file of ``environment``; a clear error when there is none."""
        known = self.environments()
        if environment not in known:
            raise UsageError(
                f"unknown environment {environment!r}; known: {', '.join(known) or '(none)'} "
                f"(one file per environment in {self.config_dir}/)"
            )
        return self.config_dir / f"{environment}.toml"

    def config(self, environment: str) -> EnvironmentConfig:
        """The validated config of ``environment`` (read once)."""
        if environment not in self._configs:
            # pydantic is imported here, not with this module: a deploy of a built template needs
            # only the settings its build record carries.
            from cfnbuild.project.config import load_config  # noqa: PLC0415

            path = self.config_path(environment)
            self._configs[environment] = load_config(path, self.app.config_model)
        return self._configs[environment]

    def deploy_view(self, environment: str) -> DeployView:
        """The settings and stacks of ``environment`` for a deploy, from its build record when that holds.

        A holding record carries the settings the project's full config model gave for the
        config file's very bytes, so a deploy of a built template imports neither the app (its
        blueprints, troposphere, cfn-lint) nor the config model. Without one: the full config and
        the app's stacks.
        """
        if environment not in self._views:
            self.config_path(environment)  # an unknown environment is named first
            record = verified(self.root, environment)
            if record is None:
                settings = DeploySettings.of(self.config(environment))
                view = DeployView(settings, [spec.name for spec in self.app.stacks], None)
            else:
                view = DeployView(DeploySettings.from_json(record.settings), record.stacks, record)
            self._views[environment] = view
        return self._views[environment]

    def template_path(self, environment: str, stack: str) -> Path:
        """Where the template of ``stack`` in ``environment`` is written."""
        return self.output_dir / environment / f"{stack}.json"


def put_first_on_path(root: Path) -> None:
    """Put the project directory ``root`` first on ``sys.path``, to import project code from it.

    A project's code (its app, an artifact builder the template names) is imported from the
    project directory, not installed, so that its package wins over one of the same name that is
    installed or elsewhere on the path. cfnbuild itself is imported by then and finds its
    submodules through its own ``__path__``: a ``cfnbuild/`` in the project directory changes nothing.
    """
    if not sys.path or sys.path[0] != str(root):
        sys.path.insert(0, str(root))


def load_project(start: Path | None = None) -> Project:
    """Find ``pyproject.toml`` at or above ``start`` and read its ``[tool.cfnbuild]`` settings."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            break
    else:
        raise UsageError(f"no pyproject.toml at or above {here}; run cfnbuild inside a project")
    settings = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get("cfnbuild")
    if not settings or "app" not in settings:
        raise UsageError(f'{pyproject}: [tool.cfnbuild] app is missing; add app = "package.module:app"')
    return Project(
        root=directory,
        app_reference=settings["app"],
        config_dir=directory / settings.get("config_dir", "config"),
        output_dir=directory / settings.get("output_dir", "output"),
        default_environment=settings.get("default_env"),
    )
