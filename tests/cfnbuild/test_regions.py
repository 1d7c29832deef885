"""cfnbuild's own region list stays the one cfn-lint lints for."""

from __future__ import annotations

from cfnlint.helpers import REGIONS

from cfnbuild.regions import AZ_COUNT, KNOWN_REGIONS


def test_known_regions_are_exactly_the_regions_the_installed_cfn_lint_lints_for():
    # When a cfn-lint upgrade adds or drops a region, this fails until regions.py follows.
    assert sorted(KNOWN_REGIONS ^ set(REGIONS)) == []


def test_every_region_with_an_az_count_is_a_known_region():
    assert set(AZ_COUNT) <= KNOWN_REGIONS
