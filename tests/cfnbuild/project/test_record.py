"""Build records: a deploy proves a template current without rendering, and any changed input of
the render (a source, a file it read, a directory it listed, the config, the template itself, the
project's place) makes it render and compare again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cfnbuild.build.forked import can_fork
from cfnbuild.project.app import load_project
from cfnbuild.project.record import record_path, verified
from tests.inprocess import build_here

APP = """
from dataclasses import dataclass
from pathlib import Path

from troposphere import sns

from cfnbuild import App, Blueprint, EnvironmentConfig, Stack, StackSpec, setting


class Config(EnvironmentConfig):
    label_file: str  # a file outside the project: its text is the topic's display name
    names_dir: str  # a directory outside the project: one more topic per file in it


@dataclass(frozen=True)
class Inputs:
    label: str = setting("", "Display name of the first topic.")
    names: tuple[str, ...] = setting((), "One more topic per name.")


class Topics(Blueprint[Inputs]):
    def build(self) -> None:
        self.add(sns.Topic("Topic", DisplayName=self.inputs.label))
        for name in self.inputs.names:
            self.add(sns.Topic(f"Topic{name.capitalize()}", DisplayName=name))


def build(config: Config) -> Stack:
    stack = Stack("rec", description="rec", project=config.project, environment=config.environment)
    names = tuple(sorted(p.stem for p in Path(config.names_dir).glob("*.txt")))
    Topics(stack, Inputs(label=Path(config.label_file).read_text().strip(), names=names))
    return stack


app = App(config_model=Config, stacks=[StackSpec("rec", build)])
"""


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path]:
    """A project whose app (package ``recapp_<n>``) reads a file and lists a directory outside it, built."""
    root, outside = tmp_path / "project", tmp_path / "outside"
    package = f"recapp_{abs(hash(str(tmp_path))) % 10**8}"  # unique: tests share one interpreter
    (root / package / "files").mkdir(parents=True)
    (root / package / "__init__.py").write_text(APP)
    (root / package / "files/notes.txt").write_text("read by nobody\n")
    (root / "pyproject.toml").write_text(f'[tool.cfnbuild]\napp = "{package}:app"\ndefault_env = "dev"\n')
    (outside / "names").mkdir(parents=True)
    (outside / "label.txt").write_text("first\n")
    (outside / "names/alpha.txt").write_text("")
    (root / "config").mkdir()
    (root / "config/dev.toml").write_text(
        f'project = "rec"\nregions = ["eu-west-1"]\nlabel_file = "{outside / "label.txt"}"\n'
        f'names_dir = "{outside / "names"}"\n[deploy]\nstack_name_suffix = "x"\n'
    )
    build_here(root, "--env", "dev")  # the builds each test makes next run as processes of their own
    return root, outside


def _build(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "cfnbuild", "--project", str(root), "build", "--env", "dev", *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_build_writes_a_record_that_holds_while_nothing_changed(built):
    root, _ = built
    record = verified(root, "dev")
    assert record is not None
    assert record.stacks == ["rec"]
    assert record.settings["project"] == "rec"
    assert record.settings["deploy"]["stack_name_suffix"] == "x"
    assert record.vouches_for("rec", (root / "output/dev/rec.json").read_text())
    # A file the render never looks at is not an input.
    (root / "notes").mkdir()
    (root / "notes/todo.txt").write_text("later\n")
    assert verified(root, "dev") is not None


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


CHANGES = {
    "the app's source": lambda root, outside: _append(next(root.glob("recapp_*/__init__.py")), "# edited\n"),
    "a new file in the app's package": lambda root, outside: (next(root.glob("recapp_*")) / "files/new.txt").write_text(
        "x"
    ),
    "the config file": lambda root, outside: _append(root / "config/dev.toml", "# edited\n"),
    "the template": lambda root, outside: _append(root / "output/dev/rec.json", " "),
    "a file the render read outside the project": lambda root, outside: (outside / "label.txt").write_text("second\n"),
    "a file added to a directory the render listed": lambda root, outside: (outside / "names/beta.txt").write_text(""),
    "the record itself": lambda root, outside: record_path(root, "dev").write_text("{"),
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_a_record_stops_holding_when_an_input_of_the_render_changes(built, change):
    root, outside = built
    CHANGES[change](root, outside)
    assert verified(root, "dev") is None


def test_a_record_does_not_hold_for_a_copy_of_the_project_elsewhere(built, tmp_path):
    root, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    assert verified(copy, "dev") is None
    assert verified(root, "dev") is not None


def test_build_check_of_a_current_output_writes_the_record(built):
    root, _ = built
    record_path(root, "dev").unlink()
    result = _build(root, "--check")
    assert "is up to date" in result.stdout
    assert verified(root, "dev") is not None


def test_the_deploy_view_of_a_recorded_environment_imports_neither_the_app_nor_pydantic(built):
    root, _ = built
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from cfnbuild.project.app import load_project\n"
        f"view = load_project(Path({str(root)!r})).deploy_view('dev')\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'recapp', 'troposphere', 'awacs', 'cfnlint', "
        "'pydantic'} | {m for m in sys.modules if m.startswith('recapp_')})\n"
        "print(json.dumps([view.stacks, view.settings.stack_name('rec'), view.record is not None, loaded]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [["rec"], "rec-dev-x", True, []]


def test_without_a_holding_record_the_deploy_view_comes_from_the_full_config(built):
    root, outside = built
    (outside / "label.txt").write_text("changed\n")
    view = load_project(root).deploy_view("dev")
    assert view.record is None
    assert view.stacks == ["rec"]
    assert view.settings.stack_name("rec") == "rec-dev-x"


def test_editing_another_environments_config_leaves_the_record_holding(built):
    root, _ = built
    prod = root / "config/prod.toml"
    prod.write_text((root / "config/dev.toml").read_text())
    result = subprocess.run(
        [sys.executable, "-m", "cfnbuild", "--project", str(root), "build", "--all"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert verified(root, "dev") is not None
    assert verified(root, "prod") is not None
    _append(prod, "# edited\n")
    assert verified(root, "dev") is not None
    assert verified(root, "prod") is None


DAMAGED_RECORDS = {
    "not JSON": ("{", "Expecting property name enclosed in double quotes: line 1 column 2"),
    "not an object": ("[]", "an array, not an object"),
    "no format": ("{}", "no 'format'"),
    "no inputs": ('{"format": 2}', "no 'root'"),
    "a stack that is not one": (None, "stacks item 0: no 'sha256'"),
}


@pytest.mark.parametrize("damage", DAMAGED_RECORDS, ids=list(DAMAGED_RECORDS))
def test_a_damaged_build_record_is_no_record_warned_once_and_the_next_build_writes_it_again(
    built, monkeypatch, capsys, damage
):
    root, _ = built
    monkeypatch.chdir(root)
    record = record_path(root, "dev")
    content, reason = DAMAGED_RECORDS[damage]
    if content is None:
        data = json.loads(record.read_text())
        del data["stacks"][0]["sha256"]
        content = json.dumps(data)
    record.write_text(content)
    assert verified(root, "dev") is None
    assert verified(root, "dev") is None
    assert capsys.readouterr().err == (
        f"warning: .cfnbuild-cache/build/dev.json is not a valid cache entry ({reason}); recomputing it\n"
    )
    _build(root)
    assert verified(root, "dev") is not None


def test_a_record_another_version_wrote_is_no_record_and_no_warning(built, capsys):
    root, _ = built
    record_path(root, "dev").write_text('{"format": 0, "stacks": "another layout"}')
    assert verified(root, "dev") is None
    assert capsys.readouterr().err == ""


def test_a_build_whose_record_cannot_be_written_warns_once_and_succeeds(built):
    """A file where the records' directory should be: what a read-only cache is to root, whom chmod does not stop."""
    root, _ = built
    shutil.rmtree(root / ".cfnbuild-cache/build")
    (root / ".cfnbuild-cache/build").write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "cfnbuild", "--project", str(root), "build", "--env", "dev"],
        capture_output=True,
        text=True,
        check=False,
        cwd=root,
    )
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: cannot write to the cache .cfnbuild-cache/build/ (.cfnbuild-cache/build is a file, not a "
        "directory); carrying on without caching"
    ]
    assert verified(root, "dev") is None  # no record: a deploy renders and compares


def test_a_search_for_installed_distributions_is_no_input_of_the_render(tmp_path):
    # networkx 3 (loaded by cfn-lint) reads entry points on import: importlib.metadata lists each
    # sys.path entry, the project root among them. Those listings must not become inputs, or
    # any file added beside the project would invalidate every record.
    import importlib.metadata
    import os

    from cfnbuild.project.record import PROCESS_INPUTS, recording

    searched, listed = tmp_path / "site", tmp_path / "data"
    searched.mkdir()
    listed.mkdir()
    with recording():
        list(importlib.metadata.distributions(path=[str(searched)]))
        os.listdir(listed)
    assert str(searched) not in PROCESS_INPUTS.directories
    assert str(listed) in PROCESS_INPUTS.directories  # a listing by the render's own code counts


# ----------------------------------------------------------------------------- a build with nothing to do
RENDERERS = ("troposphere", "awacs", "cfnlint", "pydantic")


def _build_in_a_fresh_interpreter(root: Path, *args: str, pythonpath: Path | None = None) -> tuple[str, list[str]]:
    """``cfnbuild build ARGS`` in a new interpreter: its output, and which renderers (and app) it imported."""
    code = (
        "import json, sys\n"
        "from cfnbuild.cli.main import main\n"
        "try:\n"
        f"    main(['--project', {str(root)!r}, 'build', *{list(args)!r}])\n"
        "finally:\n"
        f"    loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({RENDERERS!r}))\n"
        "    loaded += sorted(m for m in sys.modules if m.startswith('recapp_'))\n"
        "    print('LOADED ' + json.dumps(loaded))\n"
    )
    env = {**os.environ}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    # Run from the project's parent: ``-c`` puts the working directory first on sys.path.
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env, cwd=root.parent
    )
    assert result.returncode == 0, result.stderr
    output, _, loaded = result.stdout.rpartition("LOADED ")
    return output, json.loads(loaded)


def test_a_build_with_nothing_changed_answers_from_the_record_without_importing_any_renderer(built):
    root, _ = built
    output, loaded = _build_in_a_fresh_interpreter(root, "--env", "dev")
    assert output.startswith(
        "nothing changed since the last build: 1 template(s) for dev are as recorded in .cfnbuild-cache/build/; "
        "cfn-lint 0 matches (cached) in "
    )
    assert loaded == []  # neither troposphere, awacs, cfn-lint, pydantic nor the app's blueprints


BUILD_INPUTS = {
    **{name: CHANGES[name] for name in CHANGES if name not in ("the template", "the record itself")},
    "the lint cache": lambda root, outside: shutil.rmtree(root / ".cfnbuild-cache/cfn-lint"),
    "a template no stack builds": lambda root, outside: (root / "output/dev/old.json").write_text("{}\n"),
}


@pytest.mark.parametrize("change", BUILD_INPUTS, ids=list(BUILD_INPUTS))
def test_any_changed_input_makes_the_next_build_render_again(built, change):
    root, outside = built
    BUILD_INPUTS[change](root, outside)
    output, loaded = _build_in_a_fresh_interpreter(root, "--env", "dev")
    assert output.startswith("built 1 template(s) for dev: ")
    # It rendered: in a forked child, while this process loaded cfn-lint (and no renderer), or here.
    assert loaded == ["cfnlint"] if can_fork() else "troposphere" in loaded
    assert _build_in_a_fresh_interpreter(root, "--env", "dev")[0].startswith("nothing changed since the last build")


def test_a_changed_cfnbuild_makes_the_next_build_render_again(built, tmp_path):
    """cfnbuild's own modules are inputs: a copy of it, first on the path, is edited between two builds."""
    root, _ = built
    import cfnbuild

    lib = tmp_path / "lib"
    shutil.copytree(Path(cfnbuild.__file__).parent, lib / "cfnbuild", ignore=shutil.ignore_patterns("__pycache__"))
    output, _ = _build_in_a_fresh_interpreter(root, "--env", "dev", pythonpath=lib)
    assert output.startswith("built 1 template(s) for dev: ")  # another copy of cfnbuild recorded the last build
    assert _build_in_a_fresh_interpreter(root, "--env", "dev", pythonpath=lib)[0].startswith("nothing changed")
    _append(lib / "cfnbuild/build/stack.py", "# another version\n")
    output, _ = _build_in_a_fresh_interpreter(root, "--env", "dev", pythonpath=lib)
    assert output.startswith("built 1 template(s) for dev: ")


def test_an_edit_that_changes_one_environments_template_renders_the_changed_ones_and_lints_only_that_one(built):
    root, _ = built
    (root / "config/prod.toml").write_text((root / "config/dev.toml").read_text())
    _build_in_a_fresh_interpreter(root, "--all")  # both environments built and recorded
    app = next(root.glob("recapp_*/__init__.py"))
    app.write_text(
        app.read_text().replace(
            "    return stack\n",
            '    if config.environment == "prod":\n'
            '        stack.template.add_resource(sns.Topic("Extra"))\n'
            "    return stack\n",
        )
    )
    output, _ = _build_in_a_fresh_interpreter(root, "--all")
    # Both records fell with the app's source: both render; dev's template is the one it was, so
    # the lint cache answers it, and only prod's is linted and written.
    assert output.startswith(
        "built 2 template(s) for dev, prod: 1 written, 1 unchanged; cfn-lint 0 matches (1 cached, 1 linted)"
    )
    config_only = root / "config/prod.toml"
    _append(config_only, "# edited\n")
    output, _ = _build_in_a_fresh_interpreter(root, "--all")
    assert output.startswith(
        "built 1 template(s) for prod: 0 written, 1 unchanged; dev unchanged since the last build; "
        "cfn-lint 0 matches (1 cached, 0 linted)"
    )
