"""The rooms of cfnbuild/ and the direction of their imports.

Each folder is one job (see its ``__init__`` docstring). Imports only go down:

    cli  →  deliver  →  deploy  →  project  →  build  →  the root modules (errors, files, regions)
                                   local  →  the root modules

Deploy reads the project's records and build's data types (stateful marks, tags, lookup kinds),
never a blueprint (when no build record vouches for a template, the project's writer renders it
to compare); build imports nothing above it; nothing imports the CLI. Every
import counts — at module level, inside a function (lazy) and under ``TYPE_CHECKING`` — and no
two modules import each other, directly or round a circle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "cfnbuild"
# The root holds only what every room uses, and the package's entry points.
ROOT_MODULES = {
    "cfnbuild",
    "cfnbuild.__main__",
    "cfnbuild.errors",
    "cfnbuild.files",
    "cfnbuild.regions",
    "cfnbuild.sessions",  # boto3 sessions on one loader of botocore's data: the deploy's and the emulator's
}
LAYERS = {"core": 0, "build": 1, "local": 1, "project": 2, "deploy": 3, "deliver": 4, "cli": 5}
# What each room may import besides itself and the root modules.
ALLOWED = {
    "core": set(),
    "build": set(),
    "local": set(),
    "project": {"build"},
    "deploy": {"build", "project"},
    "deliver": {"build", "project", "deploy"},
    "cli": {"build", "project", "deploy", "deliver", "local"},
}
# Build modules deploy may use: data types and their helpers, none of which renders a template.
BUILD_DATA_FOR_DEPLOY = {
    "cfnbuild.build.stateful",
    "cfnbuild.build.tags",
    "cfnbuild.build.lookups",
    "cfnbuild.build.references",
}
MAX_MODULE_LINES = 600
# Modules past the line limit that still hold one concern, each with that concern.
ONE_CONCERN_OVER_LIMIT = {
    "cfnbuild.build.grants": "the typed IAM grants: one method per kind of access, each scoped to its resource",
    "cfnbuild.build.provisioning": "a provisioning role's actions, from the schemas, scoped and packed into policies",
    "blueprints.compute": "the app servers: launch template, Auto Scaling group, its launch hook and scaling",
    "blueprints.database": "Aurora MySQL: cluster, instances, parameter groups, secret and its rotation, log groups",
}
MAX_FUNCTION_LINES = 80


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def room(module: str) -> str:
    if module in ROOT_MODULES:
        return "core"
    parts = module.split(".")
    assert len(parts) >= 2, f"{module} is in no room; put it in one of {sorted(LAYERS)}"
    assert parts[1] in LAYERS, f"{module} is in no room; put it in one of {sorted(LAYERS)}"
    return parts[1]


def imports(module: str) -> Iterator[tuple[str, int]]:
    """Every cfnbuild module ``module`` imports, with the line, wherever the import statement is."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "cfnbuild":
                    yield _known(alias.name), node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            if base.split(".")[0] != "cfnbuild":
                continue
            for alias in node.names:
                child = f"{base}.{alias.name}"
                yield (child if child in MODULES else _known(base)), node.lineno


def _known(name: str) -> str:
    """``name``, or the nearest enclosing module that exists (``pkg.mod.attr`` → ``pkg.mod``)."""
    while name not in MODULES and "." in name:
        name = name.rpartition(".")[0]
    return name


def problem(importer: str, imported: str) -> str | None:  # noqa: PLR0911  (one return per rule, in order)
    """Why ``importer`` may not import ``imported``, or None."""
    if imported == importer:
        return None
    source, target = room(importer), room(imported)
    if importer == "cfnbuild.__main__" and imported == "cfnbuild.cli.main":
        return None  # python -m cfnbuild
    if target == "cli" and source != "cli":
        return "nothing imports the CLI"
    if importer == "cfnbuild":
        return None  # the public API names what the rooms define (lazily, PEP 562)
    if target in (source, "core"):
        return None
    if target not in ALLOWED[source]:
        return f"{source} may import only {', '.join(sorted(ALLOWED[source])) or 'the root modules'}"
    if source == "deploy" and target == "build" and imported not in BUILD_DATA_FOR_DEPLOY:
        return f"deploy never renders: of build it uses only {', '.join(sorted(BUILD_DATA_FOR_DEPLOY))}"
    return None


def test_every_module_is_in_a_room_with_a_docstring_saying_its_job() -> None:
    folders = {path.parent for path in MODULES.values()}
    missing = sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").is_file())
    assert not missing, f"folders without __init__.py (not a package, so not installed): {missing}"
    for module, path in MODULES.items():
        room(module)
        if path.name == "__init__.py":
            assert ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))), f"{path}: say the room's job"


def test_imports_only_go_down_the_rooms() -> None:
    wrong = sorted(
        {
            f"{MODULES[importer].relative_to(ROOT)}:{line}: imports {imported} — {why}"
            for importer in MODULES
            for imported, line in imports(importer)
            if (why := problem(importer, imported))
        }
    )
    assert not wrong, "\n".join(wrong)


def test_no_modules_import_each_other_round_a_circle() -> None:
    graph = {module: {imported for imported, _ in imports(module) if imported != module} for module in MODULES}
    # Packages import their parts to re-export them; a part importing its package's names is
    # the circle to catch, so a package's own re-exports are not edges.
    graph = {m: {i for i in targets if not m or not i.startswith(m + ".")} for m, targets in graph.items()}
    circles = _circles(graph)
    assert not circles, "import circles: " + "; ".join(" → ".join([*c, c[0]]) for c in circles)


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_checks_catch_an_upward_import_and_a_circle() -> None:
    assert problem("cfnbuild.build.stack", "cfnbuild.deploy.engine") == "build may import only the root modules"
    assert problem("cfnbuild.deploy.engine", "cfnbuild.build.blueprint").startswith("deploy never renders")
    assert problem("cfnbuild.deliver.catalog", "cfnbuild.cli.targets") == "nothing imports the CLI"
    assert problem("cfnbuild.cli.main", "cfnbuild.deploy.engine") is None
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# Every module of the engine, the blueprints and the app.
ALL_MODULES = {
    **MODULES,
    **{
        module_name(path): path
        for folder in ("blueprints", "flask_app")
        for path in sorted((ROOT / folder).rglob("*.py"))
    },
}


@pytest.mark.parametrize("module", sorted(ALL_MODULES))
def test_a_module_over_the_line_limit_holds_one_named_concern(module: str) -> None:
    lines = len(ALL_MODULES[module].read_text(encoding="utf-8").splitlines())
    if module in ONE_CONCERN_OVER_LIMIT:
        assert lines > MAX_MODULE_LINES, f"{module} is within the limit now; drop it from ONE_CONCERN_OVER_LIMIT"
    else:
        assert lines <= MAX_MODULE_LINES, (
            f"{ALL_MODULES[module].relative_to(ROOT)} has {lines} lines (limit {MAX_MODULE_LINES}): split it by concern"
        )


def test_no_function_is_longer_than_the_limit() -> None:
    long = []
    for directory in ("cfnbuild", "blueprints", "flask_app"):
        for path in sorted((ROOT / directory).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)
