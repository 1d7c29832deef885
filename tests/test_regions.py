"""The stack is region-agnostic: built for other regions it is the same template, free of any
region literal, and it lints clean there too."""

from __future__ import annotations

import pytest

from blueprints.webapp import build_webapp
from cfnbuild.build.lint import cfn_lint
from cfnbuild.project.app import load_project
from tests.test_output import LITERALS, ROOT

PROJECT = load_project(ROOT)
OTHER_REGIONS = ["us-east-1", "us-west-2", "ap-southeast-2", "sa-east-1", "ca-central-1"]


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_each_environment_built_for_other_regions_is_the_same_region_free_template(environment):
    config = PROJECT.config(environment)
    committed = (PROJECT.template_path(environment, "webapp")).read_text()
    elsewhere = build_webapp(config.model_copy(update={"regions": OTHER_REGIONS})).to_json()
    assert elsewhere == committed, "the template must not depend on the regions it is deployed to"
    found = {name: pattern.findall(elsewhere) for name, pattern in LITERALS.items()}
    assert not any(found.values()), found


def test_the_prod_template_lints_clean_in_other_regions():
    text = PROJECT.template_path("prod", "webapp").read_text()
    findings = cfn_lint(text, OTHER_REGIONS, file="output/prod/webapp.json")
    assert not findings, "\n".join(map(str, findings))
