"""Render stacks and write them: deterministic bytes, atomic files, the staleness check and build records.

:func:`unchanged` answers a build with nothing to do from the build records alone, without
importing the app, troposphere, awacs, cfn-lint or pydantic.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfnbuild.build.lint import LintCache, skip_problems
from cfnbuild.errors import UsageError, WriteFailed
from cfnbuild.files import os_reason, shown, write_atomic
from cfnbuild.project.app import DeploySettings, Project
from cfnbuild.project.record import (
    Built,
    Record,
    fingerprint_inputs,
    record_path,
    recording,
    verified,
    write_records,
)
from cfnbuild.project.stack_graph import stack_graph

__all__ = [
    "RenderOutcome",
    "Rendered",
    "check_current",
    "record_outcome",
    "record_rendered",
    "remove_orphans",
    "render",
    "render_outcome",
    "stale_files",
    "unchanged",
    "write_atomic",
]

# Files in output/<env>/ that build does not write (deploy writes the outputs files).
NOT_BUILT_SUFFIXES = (".outputs.json",)


@dataclass(frozen=True)
class Rendered:
    """One rendered template, not yet written."""

    environment: str
    stack: str
    path: Path
    text: str
    regions: tuple[str, ...]


def render(project: Project, environments: list[str]) -> list[Rendered]:
    """Validate every environment's config first, then build every stack of each."""
    configs = {env: project.config(env) for env in environments}
    rendered = []
    for env, config in configs.items():
        templates: dict[str, dict[str, Any]] = {}
        for spec in project.app.stacks:
            with recording():  # what the render reads, for the build record
                stack = spec.build(config)
                text = stack.to_json()
            rendered.append(
                Rendered(
                    env,
                    spec.name,
                    project.template_path(env, spec.name),
                    text,
                    tuple(config.regions),
                )
            )
            templates[spec.name] = json.loads(text)
        stack_graph(templates, environment=env)  # a reference no order can deploy is a build error
    return rendered


@dataclass(frozen=True)
class RenderOutcome:
    """What a render gave, with what its build records say: taken in the process that rendered.

    Plain data, so that a forked child can render and send it back
    (:func:`cfnbuild.build.forked.render_beside`): the templates, the fingerprints of every
    input of the render, and each environment's config file and the settings a deploy reads.
    """

    rendered: list[Rendered]
    inputs: dict[str, Any]
    config_files: dict[str, Path]
    settings: dict[str, dict[str, Any]]


def render_outcome(project: Project, environments: list[str]) -> RenderOutcome:
    """:func:`render` ``environments``, and fingerprint its inputs right after (see :func:`record_outcome`)."""
    return _outcome(project, render(project, environments))


def _outcome(project: Project, rendered: list[Rendered]) -> RenderOutcome:
    """What the build records of ``rendered`` say, taken in this process (which rendered it).

    The inputs are what this process opened and listed while recording, every module it loaded,
    ``pyproject.toml`` and the files of the app's package, whether the render opened them or not.
    """
    built = sorted({item.environment for item in rendered})
    inputs = fingerprint_inputs(project.root, files=[project.root / "pyproject.toml"], trees=project.app_directories())
    return RenderOutcome(
        rendered,
        inputs,
        {env: project.config_path(env) for env in built},
        {env: DeploySettings.of(project.config(env)).to_json() for env in built},
    )


def record_outcome(project: Project, outcome: RenderOutcome) -> None:
    """Write the build records of a :class:`RenderOutcome` (once output/ holds exactly its templates)."""
    write_records(
        project.root,
        [Built(item.environment, item.stack, item.path, item.text) for item in outcome.rendered],
        config_files=outcome.config_files,
        settings=outcome.settings,
        inputs=outcome.inputs,
    )


def _built_files(project: Project, environment: str) -> set[Path]:
    """The templates in output/<environment>/: the JSON files there that deploy did not write."""
    directory = project.output_dir / environment
    return {p for p in directory.glob("*.json") if not p.name.endswith(NOT_BUILT_SUFFIXES)}


def unchanged(project: Project, environment: str, *, lint_cache: LintCache | None) -> Record | None:
    """The build record of ``environment`` when a build would change nothing there; ``None`` otherwise.

    Nothing changed when the record holds (every input of the render and every template as
    recorded, see :func:`cfnbuild.project.record.verified`, which a deploy trusts too), output/<env>/
    holds no other template, and, with ``lint_cache``, cfn-lint's cached answer for each template is
    "no match" (cfn-lint's version and the rule selection are part of its key) and no checkov skip
    lacks its reason. What it reads: the record, the files it names, the templates and the cache.
    """
    record = verified(project.root, environment)
    if record is None:
        return None
    if _built_files(project, environment) != {path for path, _ in record.templates.values()}:
        return None  # a template no stack builds (a build removes it)
    if lint_cache is None:
        return record
    regions = [str(region) for region in record.settings.get("regions", [])]
    for path, _ in record.templates.values():
        file = str(path.relative_to(project.root))
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None  # changed under us since the record was checked: build, which names the problem
        if lint_cache.lookup(text, regions, file=file) != [] or skip_problems(text, file=file):
            return None
    return record


def stale_files(project: Project, rendered: list[Rendered], *, orphans: bool = True) -> list[str]:
    """Every file that differs from what build would write, is missing, or (``orphans``) is no longer built."""
    problems = []
    expected = {item.path for item in rendered}
    for item in rendered:
        rel = item.path.relative_to(project.root)
        try:
            current = item.path.read_bytes() if item.path.is_file() else None
        except OSError as exc:  # stale as far as anyone can tell; build says why it cannot write it
            problems.append(f"{rel}: cannot be read ({os_reason(exc)})")
            continue
        if current is None:
            problems.append(f"{rel}: missing")
        elif current != item.text.encode("utf-8"):
            problems.append(f"{rel}: differs from what build writes")
    for env in sorted({item.environment for item in rendered} if orphans else ()):
        for path in sorted((project.output_dir / env).glob("*.json")):
            if path not in expected and not path.name.endswith(NOT_BUILT_SUFFIXES):
                problems.append(f"{path.relative_to(project.root)}: no stack builds it any more")
    return problems


def remove_orphans(project: Project, rendered: list[Rendered]) -> list[Path]:
    """Delete templates of stacks that no longer exist in the built environments.

    Raises :class:`~cfnbuild.errors.WriteFailed` naming a template that cannot be deleted.
    """
    expected = {item.path for item in rendered}
    removed = []
    for env in sorted({item.environment for item in rendered}):
        for path in sorted((project.output_dir / env).glob("*.json")):
            if path not in expected and not path.name.endswith(NOT_BUILT_SUFFIXES):
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue  # gone already
                except OSError as exc:
                    reason = os_reason(exc)
                    raise WriteFailed(
                        f"cannot remove {shown(path)} (its stack is gone): {reason}; remove it by hand",
                        path=path,
                        reason=reason,
                    ) from None
                removed.append(path)
    return removed


def record_rendered(project: Project, rendered: list[Rendered]) -> None:
    """Write the build record of each environment in ``rendered``.

    Call it only when the files in output/ are exactly ``rendered``: after build wrote them, or
    when a check found them current.
    """
    record_outcome(project, _outcome(project, rendered))


def check_current(project: Project, environment: str, stack: str, say: Callable[[str], None]) -> None:
    """Render ``environment`` and refuse a written template of ``stack`` that differs from it.

    For a deploy that no build record vouches for: when every file of the environment is
    current, the environment is recorded, so the next deploy of this checkout need not render.
    """
    rel = project.template_path(environment, stack).relative_to(project.root)
    why = "an input changed since build" if record_path(project.root, environment).is_file() else "none written yet"
    say(f"no build record vouches for {rel} ({why}): rendering to compare")
    rendered = render(project, [environment])
    # Only this stack's file: the other stacks' templates are theirs to check when they are deployed.
    if stale_files(project, [r for r in rendered if r.stack == stack], orphans=False):
        raise UsageError(
            f"{rel} is stale; run 'cfnbuild build --env {environment}' and review the diff before deploying"
        )
    if not stale_files(project, rendered):
        record_rendered(project, rendered)
