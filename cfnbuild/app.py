"""A project: its configuration model, its stacks, and where their files live.

The CLI finds the project through ``[tool.cfnbuild]`` in ``pyproject.toml``::

    [tool.cfnbuild]
    app = "blueprints.app:app"  # an importable cfnbuild.App
    config_dir = "config"  # one <env>.toml per environment
    output_dir = "output"  # generated templates, committed
"""

from __future__ import annotations

import importlib
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic

from cfnbuild.config import ConfigT, EnvironmentConfig, find_environments, load_config
from cfnbuild.errors import UsageError
from cfnbuild.stack import Stack


@dataclass(frozen=True)
class StackSpec(Generic[ConfigT]):
    """One stack of a project: its short name and the function that builds it from a config."""

    name: str
    build: Callable[[ConfigT], Stack]
    description: str = ""


@dataclass(frozen=True)
class App(Generic[ConfigT]):
    """A project's definition: the config model every environment file must satisfy, and its stacks."""

    config_model: type[ConfigT]
    stacks: Sequence[StackSpec[ConfigT]]

    def stack(self, name: str) -> StackSpec[ConfigT]:
        """The stack called ``name``."""
        for spec in self.stacks:
            if spec.name == name:
                return spec
        known = ", ".join(s.name for s in self.stacks)
        raise UsageError(f"unknown stack {name!r}; this project has: {known}")


@dataclass(frozen=True)
class Project:
    """A loaded project rooted at ``root``."""

    root: Path
    app: App[Any]
    config_dir: Path
    output_dir: Path
    default_environment: str | None = None
    _configs: dict[str, EnvironmentConfig] = field(default_factory=dict, compare=False, repr=False)

    def environments(self) -> list[str]:
        """Every environment with a config file."""
        return find_environments(self.config_dir)

    def config(self, environment: str) -> EnvironmentConfig:
        """The validated config of ``environment`` (read once)."""
        if environment not in self._configs:
            known = self.environments()
            if environment not in known:
                raise UsageError(
                    f"unknown environment {environment!r}; known: {', '.join(known) or '(none)'} "
                    f"(one file per environment in {self.config_dir}/)"
                )
            path = self.config_dir / f"{environment}.toml"
            self._configs[environment] = load_config(path, self.app.config_model)
        return self._configs[environment]

    def template_path(self, environment: str, stack: str) -> Path:
        """Where the template of ``stack`` in ``environment`` is written."""
        return self.output_dir / environment / f"{stack}.json"


def load_project(start: Path | None = None) -> Project:
    """Find ``pyproject.toml`` at or above ``start`` and load its ``[tool.cfnbuild]`` project."""
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
    reference = settings["app"]
    module_name, _, attribute = reference.partition(":")
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))
    try:
        app = getattr(importlib.import_module(module_name), attribute or "app")
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"{pyproject}: [tool.cfnbuild] app = {reference!r} cannot be loaded ({exc})") from exc
    if not isinstance(app, App):
        raise UsageError(f"{pyproject}: [tool.cfnbuild] app = {reference!r} is not a cfnbuild.App")
    return Project(
        root=directory,
        app=app,
        config_dir=directory / settings.get("config_dir", "config"),
        output_dir=directory / settings.get("output_dir", "output"),
        default_environment=settings.get("default_env"),
    )
