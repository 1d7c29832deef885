"""The in-process build that deploy tests set up with is the CLI's build.

Its output and build record are the ones a process of its own writes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import blueprints.app  # noqa: F401  (this process holds the repository's blueprints, as a worker running their tests does)
from tests.cfnbuild.deploy.test_engine import MINI_APP
from tests.inprocess import build_here, run_here

ROOT = Path(__file__).resolve().parent.parent


def _build_of_its_own(root: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cfnbuild", "--project", str(root), "build", "--env", "dev"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_flagship_copy_built_here_is_the_committed_output_and_a_build_of_its_own_finds_nothing_changed(project_dir):
    own = '"""The project\'s own copy."""\n'  # not the repository's bytes: the record must name this file
    (project_dir / "blueprints/__init__.py").write_text(own)
    said = build_here(project_dir, "--env", "dev")
    assert "wrote output/dev/webapp.json" in said
    for name in ("network", "data", "webapp"):
        built = (project_dir / f"output/dev/{name}.json").read_bytes()
        assert built == (ROOT / f"output/dev/{name}.json").read_bytes(), name
    assert _build_of_its_own(project_dir).startswith("nothing changed since the last build")
    assert sys.modules["blueprints"].__file__ == str(ROOT / "blueprints/__init__.py")  # this process's own, back


def test_two_projects_with_an_app_module_of_one_name_each_build_their_own_app(tmp_path):
    for name in ("first", "second"):
        root = tmp_path / name
        (root / "config").mkdir(parents=True)
        (root / "pyproject.toml").write_text('[tool.cfnbuild]\napp = "mini_app:app"\ndefault_env = "dev"\n')
        (root / "mini_app.py").write_text(MINI_APP.replace('description="mini"', f'description="{name}"'))
        (root / "config/dev.toml").write_text('project = "mini"\nregions = ["eu-west-1"]\n')
        build_here(root)
        assert f'"Description": "{name}"' in (root / "output/dev/mini.json").read_text()
        assert _build_of_its_own(root).startswith("nothing changed since the last build")
    assert "mini_app" not in sys.modules


def test_a_failing_command_here_gives_its_exit_code_and_its_one_line(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.cfnbuild]\napp = "mini_app:app"\n')
    result = run_here("--project", str(tmp_path), "build")
    assert result.returncode == 2
    assert result.stderr.startswith("error: "), result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
