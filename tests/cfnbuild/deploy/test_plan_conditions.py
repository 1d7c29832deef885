"""Plans exact on the emulator too: each resource's Condition decided from the parameter values.

moto lists every resource of a template in a change set, whatever its Condition; AWS lists only
what it makes. The plan evaluates the conditions itself (cfnbuild/deploy/plan/conditions.py).
The flagship's conditions are checked against what each environment's config means, written
out here from the config (not from the evaluator), and against the emulator's own deploy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from cfnbuild.deploy.aws import Aws, Target
from cfnbuild.deploy.engine import Engine, Request
from cfnbuild.deploy.events import PollSettings
from cfnbuild.deploy.plan import build_plan, load_plan, render_markdown, render_text, save_plan
from cfnbuild.deploy.plan.conditions import truths_for
from cfnbuild.local.emulator import THROWAWAY_CREDENTIALS
from cfnbuild.project.app import load_project
from tests.inprocess import build_here

ROOT = Path(__file__).resolve().parents[3]
ACCOUNT = "123456789012"
ZONES = {"eu-west-1": "eu-west-1a,eu-west-1b,eu-west-1c", "eu-central-1": "eu-central-1a,eu-central-1b"}


def _stack_arn(region: str, name: str = "webapp-dev") -> str:
    return f"arn:aws:cloudformation:{region}:{ACCOUNT}:stack/{name}/6e4b6a10-0d1f-11ef-9a0b-0a1b2c3d4e5f"


STACKS = ("network", "data", "webapp")  # the flagship's, in deploy order


def _flagship_cases() -> list[tuple[str, str, bool]]:
    project = load_project(ROOT)
    return [
        (env, region, answered)
        for env in project.environments()
        for region in project.config(env).regions
        for answered in (True, False)
    ]


def _expected(config: Any, region: str, values: dict[str, str]) -> dict[str, bool]:
    """What each condition of the flagship means, from the config alone (read off blueprints/*.py).

    HasDomain (loadbalancer.py): [dns] names a domain and its hosted zone → certificate, HTTPS
    listener and DNS record. PerAzNat (network.py): nat_mode "per-az" → a NAT gateway per zone.
    InBudgetRegion/HasBudget (budget.py, config.py): the budget is made in the first region of
    ``regions`` only, and only with a limit. HasZones (network.py): the zone lookup answered.
    HasDbEngineVersion (database.py): the engine-version lookup answered. HasArtifactBucket
    (compute.py): the config names a bucket of its own for the app artifact.
    """
    in_budget_region = region == config.regions[0]
    return {
        "HasDomain": bool(config.dns.domain and config.dns.hosted_zone_id),
        "PerAzNat": config.network.nat_mode == "per-az",
        "InBudgetRegion": in_budget_region,
        "HasBudget": bool(config.budget.monthly_limit_usd) and in_budget_region,
        "HasZones": bool(values["AvailabilityZones"]),
        "HasDbEngineVersion": bool(values["DbEngineVersion"]),
        "HasArtifactBucket": bool(config.deploy.parameters.get("AppArtifactBucket")),
    }


@pytest.mark.parametrize(("env", "region", "answered"), _flagship_cases())
def test_every_condition_of_the_flagship_is_decided_as_its_config_means(env, region, answered):
    project = load_project(ROOT)
    config = project.config(env)
    truths: dict[str, bool] = {}
    for stack in STACKS:  # each stack's conditions, decided with what the deploy sends that stack
        template = json.loads(project.template_path(env, stack).read_text())
        # What the deploy sends: the defaults, the config's [deploy] parameters, the lookups' answers
        # ("" when a lookup could not run: the region's default).
        values = {name: str(spec["Default"]) for name, spec in template["Parameters"].items() if "Default" in spec}
        values.update({k: v for k, v in config.deploy.parameters.items() if k in template["Parameters"]})
        values["AvailabilityZones"] = ZONES[region] if answered else ""
        values["DbEngineVersion"] = "8.0.mysql_aurora.3.08.0" if answered else ""
        decided = truths_for(template, values, {"StackId": _stack_arn(region, f"{stack}-{env}")}, f"{stack}-{env}")
        assert not set(decided) & set(truths), "each condition lives in one stack"
        truths.update(decided)

    assert truths == _expected(config, region, values)


def _template(resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "Parameters": {"Mode": {"Type": "String", "Default": "one"}},
        "Conditions": {
            "Two": {"Fn::Equals": [{"Ref": "Mode"}, "two"]},
            "InFirstZone": {"Fn::Equals": [{"Fn::Select": [0, {"Fn::GetAZs": ""}]}, "eu-west-1a"]},
        },
        "Resources": resources,
    }


RESOURCES = {
    "Always": {"Type": "AWS::SNS::Topic"},
    "Second": {"Type": "AWS::S3::Bucket", "Condition": "Two", "Metadata": {"cfnbuild": {"stateful": True}}},
    "Undecided": {"Type": "AWS::SQS::Queue", "Condition": "InFirstZone"},
}


def _change(logical_id: str, action: str) -> dict[str, Any]:
    resource = {"Action": action, "LogicalResourceId": logical_id, "ResourceType": RESOURCES[logical_id]["Type"]}
    return {"Type": "Resource", "ResourceChange": resource}


def _plan(changes: list[dict[str, Any]], *, mode: str, old_mode: str | None) -> Any:
    old = _template(RESOURCES) if old_mode is not None else None
    return build_plan(
        stack_name="webapp-dev",
        change_set={"ChangeSetId": "cs", "StackId": _stack_arn("eu-west-1"), "Changes": changes},
        new_template=_template(RESOURCES),
        old_template=old,
        new_parameters={"Mode": mode},
        old_parameters={"Mode": old_mode} if old_mode is not None else {},
        new_tags={},
        old_tags={},
        template_hash="h",
        stack_last_updated=None,
    )


def _actions(plan: Any) -> dict[str, str]:
    return {change.logical_id: change.action for change in plan.resources}


def test_an_add_whose_condition_is_false_is_no_add_but_said_once_and_an_undecided_one_stays():
    plan = _plan([_change(name, "Add") for name in RESOURCES], mode="one", old_mode=None)

    assert _actions(plan) == {"Always": "Add", "Undecided": "Add"}
    assert plan.counts()["add"] == 2
    assert [(n.logical_id, n.condition) for n in plan.not_created] == [("Second", "Two")]
    console = Console(record=True, width=200)
    render_text(plan, console)
    assert "not created (1, their condition is false): Two: Second" in console.export_text()
    assert "not created (1, their condition is false): Two: Second" in render_markdown(plan)


def test_a_modify_whose_condition_turns_false_is_a_remove_and_a_stateful_one_a_danger():
    plan = _plan([_change("Second", "Modify")], mode="one", old_mode="two")

    (second,) = plan.resources
    assert (second.action, second.danger) == ("Remove", True)
    assert "REMOVED" in second.danger_reason


def test_a_condition_that_flips_unlisted_is_listed_as_aws_would_and_a_remove_of_what_never_was_is_dropped():
    turned_on = _plan([], mode="two", old_mode="one")
    assert _actions(turned_on) == {"Second": "Add"}
    turned_off = _plan([], mode="one", old_mode="two")
    assert _actions(turned_off) == {"Second": "Remove"}
    never_made = _plan([_change("Second", "Remove")], mode="one", old_mode="one")
    assert _actions(never_made) == {}


def test_a_saved_plan_keeps_what_is_not_created(tmp_path):
    plan = _plan([_change(name, "Add") for name in RESOURCES], mode="one", old_mode=None)
    save_plan(plan, tmp_path / "p.json")

    assert load_plan(tmp_path / "p.json").not_created == plan.not_created


def _built_copy(project_dir: Path, suffix: str) -> Path:
    shutil.copy(ROOT / "pyproject.toml", project_dir / "pyproject.toml")  # the artifact is built from it
    shutil.copytree(ROOT / "flask_app", project_dir / "flask_app")
    config = project_dir / "config/dev.toml"
    config.write_text(config.read_text() + f'\n[deploy]\nstack_name_suffix = "{suffix}"\n')
    build_here(project_dir, "--env", "dev")
    return project_dir


def test_the_plan_on_the_emulator_adds_exactly_what_the_deploy_makes(project_dir, emulator):
    root = _built_copy(project_dir, "exact")
    fast = PollSettings(min_seconds=0.01, max_seconds=0.05, timeout_seconds=120)
    # What the emulator made, from moto itself (in this process): the resources its own evaluation
    # of each Condition lets through. Its ListStackResources cannot say: it lists every resource of
    # the template, a blank entry for each one not made (false condition, or a type moto lacks).
    from moto.cloudformation.models import cloudformation_backends  # the emulator's state, in this process

    not_created: set[str] = set()
    engines = {}
    for name in STACKS:  # in order: each takes the outputs of the ones before
        target = Target(
            f"{name}-dev-exact",
            "eu-west-1",
            endpoint_url=emulator.endpoint_url,
            credentials=dict(THROWAWAY_CREDENTIALS),
        )
        out, err = Console(record=True, width=200), Console(record=True, width=200)
        engine = engines[name] = Engine(load_project(root), Aws(target), out, err, poll=fast)
        staged = engine.stage(Request("dev", name, yes=True))
        assert staged.plan is not None
        engine.execute(staged)
        stack = cloudformation_backends[ACCOUNT]["eu-west-1"].get_stack(f"{name}-dev-exact")
        resources = stack.resource_map._resource_json_map  # the executed template's
        conditions = stack.resource_map.lazy_condition_map
        made = {
            logical_id
            for logical_id, resource in resources.items()
            if "Condition" not in resource or conditions[resource["Condition"]]
        }
        modelled = set(stack.resource_map._parsed_resources) & set(resources)
        added = {change.logical_id for change in staged.plan.resources if change.action == "Add"}
        assert staged.plan.counts()["add"] == len(made), name
        assert added == made, name
        assert modelled <= added, name
        not_created |= {n.logical_id for n in staged.plan.not_created}
    # dev: no domain, one NAT gateway (config/dev.toml)
    assert not_created == {
        "Certificate", "DnsRecord", "HttpsListener", "NatAddress2", "NatGateway2",
    }  # fmt: skip

    # NatMode per-az turns PerAzNat true: AWS adds the second zone's NAT gateway and address,
    # which the emulator's change set does not list (the template is unchanged).
    per_az, _ = engines["network"].plan(Request("dev", "network", param_overrides={"NatMode": "per-az"}), keep=False)
    assert {c.logical_id for c in per_az.resources if c.action == "Add"} == {"NatAddress2", "NatGateway2"}
    assert per_az.counts()["remove"] == 0
