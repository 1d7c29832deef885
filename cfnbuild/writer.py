"""Render stacks and write them: deterministic bytes, atomic files, and the staleness check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cfnbuild.app import Project
from cfnbuild.files import write_atomic

__all__ = ["Rendered", "remove_orphans", "render", "stale_files", "write_atomic"]

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
        for spec in project.app.stacks:
            stack = spec.build(config)
            rendered.append(
                Rendered(
                    env,
                    spec.name,
                    project.template_path(env, spec.name),
                    stack.to_json(),
                    tuple(config.regions),
                )
            )
    return rendered


def stale_files(project: Project, rendered: list[Rendered]) -> list[str]:
    """Every file that differs from what build would write, is missing, or is no longer built."""
    problems = []
    expected = {item.path for item in rendered}
    for item in rendered:
        rel = item.path.relative_to(project.root)
        if not item.path.is_file():
            problems.append(f"{rel}: missing")
        elif item.path.read_bytes() != item.text.encode("utf-8"):
            problems.append(f"{rel}: differs from what build writes")
    for env in sorted({item.environment for item in rendered}):
        for path in sorted((project.output_dir / env).glob("*.json")):
            if path not in expected and not path.name.endswith(NOT_BUILT_SUFFIXES):
                problems.append(f"{path.relative_to(project.root)}: no stack builds it any more")
    return problems


def remove_orphans(project: Project, rendered: list[Rendered]) -> list[Path]:
    """Delete templates of stacks that no longer exist in the built environments."""
    expected = {item.path for item in rendered}
    removed = []
    for env in sorted({item.environment for item in rendered}):
        for path in sorted((project.output_dir / env).glob("*.json")):
            if path not in expected and not path.name.endswith(NOT_BUILT_SUFFIXES):
                path.unlink()
                removed.append(path)
    return removed
