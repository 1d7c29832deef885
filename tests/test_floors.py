"""The dependency floors are true: pinned in tests/floors.txt, proven by the tox env `floors`.

The pins and pyproject's lower bounds must agree, and each floor's reason is a test here that
fails on the version below it: the tox env `floors` runs this file (with `build --check` and the
cfn-lint gate) against exactly the pinned versions, the unit env against the newest allowed.
"""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
FLOORS = ROOT / "tests/floors.txt"


def _lower_bounds() -> dict[str, Version]:
    """Each runtime dependency's name and the version its ``>=`` specifier names."""
    bounds = {}
    for line in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        requirement = Requirement(line)
        floors = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
        assert len(floors) == 1, f"{line}: a runtime dependency names exactly one lower bound (>=)"
        bounds[requirement.name] = floors[0]
    return bounds


def _pins() -> dict[str, Version]:
    """Each requirement in tests/floors.txt and the version its ``==`` pins."""
    pins = {}
    for line in FLOORS.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"tests/floors.txt: {line} pins with =="
        pins[requirement.name] = Version(spec.version)
    return pins


def test_floors_file_pins_every_runtime_dependency_at_its_pyproject_lower_bound():
    assert _pins() == _lower_bounds()


def test_tox_runs_the_floors_env_on_the_pins_with_build_check_and_the_lint_gate():
    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini")
    assert "floors" in [env.strip() for env in tox["tox"]["env_list"].split(",")]
    floors = tox["testenv:floors"]
    assert "-r tests/floors.txt" in floors["deps"].splitlines()
    assert floors["extras"].strip() == "", "the floors env installs the runtime dependencies only"
    commands = [line.strip() for line in floors["commands"].splitlines() if line.strip()]
    assert "cfnbuild build --all --check" in commands
    assert any(line.startswith("cfnbuild lint --all") for line in commands)
    assert any(line.startswith("pytest") and "tests/test_floors.py" in line for line in commands)


def test_cfn_lint_schemas_name_the_tag_property_of_every_type_output_tags():
    # cfn-lint 1.58: the first whose AWS::Budgets::Budget schema is taggable (ResourceTags);
    # below it the budget renders untagged and build --check fails. The listeners' Tags are in
    # the schemas since 1.54; below that cfn-lint fails output/ with E3002.
    from cfnbuild.build.tags import tag_property

    assert tag_property("AWS::Budgets::Budget") == ("ResourceTags", "list")
    assert tag_property("AWS::ElasticLoadBalancingV2::Listener") == ("Tags", "list")


def test_troposphere_accepts_every_log_retention_the_config_accepts():
    # troposphere 4.9.1: the first whose validator knows CloudWatch Logs' 1096 to 3288 days;
    # below it an environment asking for e.g. 2192 days passes our check and fails the render.
    from troposphere.validators.logs import validate_loggroup_retention_in_days

    from blueprints.config import LOG_RETENTION_DAYS

    for days in LOG_RETENTION_DAYS:
        assert validate_loggroup_retention_in_days(days) == days
