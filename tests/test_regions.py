"""The stacks are region-agnostic: built for other regions each is the same template, free of any
region literal, and it lints clean there too."""

from __future__ import annotations

import pytest

from blueprints.webapp import LAYERS
from cfnbuild.build.lint import cfn_lint
from cfnbuild.project.app import load_project
from tests.test_output import LITERALS, ROOT

PROJECT = load_project(ROOT)
OTHER_REGIONS = ["us-east-1", "us-west-2", "ap-southeast-2", "sa-east-1", "ca-central-1"]


@pytest.mark.parametrize("stack", LAYERS)
@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_each_stack_of_each_environment_built_for_other_regions_is_the_same_region_free_template(environment, stack):
    config = PROJECT.config(environment)
    committed = (PROJECT.template_path(environment, stack)).read_text()
    build = PROJECT.app.stack(stack).build
    elsewhere = build(config.model_copy(update={"regions": OTHER_REGIONS})).to_json()
    assert elsewhere == committed, "the template must not depend on the regions it is deployed to"
    found = {name: pattern.findall(elsewhere) for name, pattern in LITERALS.items()}
    assert not any(found.values()), found


@pytest.mark.parametrize("stack", LAYERS)
def test_each_prod_template_lints_clean_in_other_regions(stack):
    text = PROJECT.template_path("prod", stack).read_text()
    findings = cfn_lint(text, OTHER_REGIONS, file=f"output/prod/{stack}.json")
    assert not findings, "\n".join(map(str, findings))
