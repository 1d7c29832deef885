"""cfnbuild's own region list stays the one cfn-lint lints for."""

from __future__ import annotations

import subprocess
import sys

from cfnlint.helpers import REGIONS

from cfnbuild.regions import AZ_COUNT, KNOWN_REGIONS, is_known


def test_every_region_cfnbuild_lists_can_be_linted_by_the_installed_cfn_lint():
    assert sorted(KNOWN_REGIONS - set(REGIONS)) == []


def test_a_region_only_a_newer_cfn_lint_knows_is_accepted_through_cfn_lint(monkeypatch):
    # As if cfn-lint had added eu-west-1 after regions.py was written.
    monkeypatch.setattr("cfnbuild.regions.KNOWN_REGIONS", KNOWN_REGIONS - {"eu-west-1"})
    assert is_known("eu-west-1")
    assert not is_known("xx-nowhere-1")


def test_every_region_with_an_az_count_is_a_known_region():
    assert set(AZ_COUNT) <= KNOWN_REGIONS


def test_validating_a_config_region_does_not_import_cfn_lint():
    code = (
        "import sys\n"
        "from cfnbuild.project.config import check_region\n"
        "check_region('eu-west-1')\n"
        "print(sorted(m for m in sys.modules if m == 'cfnlint' or m.startswith('cfnlint.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_public_name_of_the_package_imports_lazily_and_is_listed():
    import importlib

    import cfnbuild

    assert sorted(cfnbuild.__all__) == sorted(cfnbuild._EXPORTS)
    for name, module in cfnbuild._EXPORTS.items():
        assert getattr(cfnbuild, name) is getattr(importlib.import_module(module), name)
