"""The flagship split into network → data → webapp replaces nothing of the previous release.

``tests/data/previous-release/<env>/webapp.json`` is the single ``webapp`` stack as it was deployed
before the split. The upgrade moves its resources into the ``network`` and ``data`` stacks by
(logical ID, type), so every resource must keep both, and no create-only property may change
value once each template's parameters and pseudo parameters are resolved as they are deployed:
an input parameter of ``stack.use`` by the producer's output, ``AWS::StackName`` by the stack's
deployed name. Create-only properties come from the types' registry schemas, as the deploy's
plan reads them (:func:`cfnbuild.deploy.plan.template_diff._create_only_properties`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from blueprints.webapp import LAYERS, build_all_in_one
from cfnbuild.build.references import template_inputs
from cfnbuild.deploy.plan.template_diff import _create_only_properties
from cfnbuild.deploy.policy import stack_policy
from cfnbuild.project.app import load_project

ROOT = Path(__file__).resolve().parent.parent
PREVIOUS = ROOT / "tests/data/previous-release"
ENVIRONMENTS = ("dev", "staging", "prod")
APP = "webapp"


@cache
def _project() -> Any:
    return load_project(ROOT)


def _previous(env: str) -> dict[str, Any]:
    return json.loads((PREVIOUS / env / "webapp.json").read_text())


def _split(env: str) -> dict[str, dict[str, Any]]:
    return {name: json.loads((ROOT / "output" / env / f"{name}.json").read_text()) for name in LAYERS}


class _Resolver:
    """Values of a template as deployed: inputs by the producer's output, the stack's name as a literal."""

    def __init__(self, templates: Mapping[str, Mapping[str, Any]], names: Mapping[str, str]) -> None:
        self.templates, self.names = templates, names

    def __call__(self, value: Any, stack: str) -> Any:
        if isinstance(value, list):
            return [self(item, stack) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return self._ref(value["Ref"], stack)
        if set(value) == {"Fn::Sub"}:
            return self._sub(value["Fn::Sub"], stack)
        if set(value) in ({"Fn::Split"}, {"Fn::Select"}):
            return self._list(value, stack)
        return {key: self(item, stack) for key, item in value.items()}

    def _list(self, value: dict[str, Any], stack: str) -> Any:
        """Split of a Join by the same separator is the joined list; Select of a list is its item."""
        if "Fn::Split" in value:
            separator, joined = value["Fn::Split"][0], self(value["Fn::Split"][1], stack)
            if isinstance(joined, dict) and joined.get("Fn::Join", [None])[0] == separator:
                return joined["Fn::Join"][1]
            return {"Fn::Split": [separator, joined]}
        index, items = value["Fn::Select"][0], self(value["Fn::Select"][1], stack)
        return items[int(index)] if isinstance(items, list) else {"Fn::Select": [index, items]}

    def _ref(self, name: str, stack: str) -> Any:
        if name == "AWS::StackName":
            return self.names[stack]
        inputs = template_inputs(self.templates[stack])
        if name in inputs:
            producer = inputs[name].stack
            return self(self.templates[producer]["Outputs"][inputs[name].output]["Value"], producer)
        return {"Ref": name}

    def _sub(self, sub: Any, stack: str) -> Any:
        text, variables = (sub, {}) if isinstance(sub, str) else (sub[0], dict(sub[1]))
        resolved = {key: self(item, stack) for key, item in variables.items()}
        for name in re.findall(r"\$\{([A-Za-z0-9:]+)\}", text):
            if name not in resolved and (name == "AWS::StackName" or name in template_inputs(self.templates[stack])):
                resolved[name] = self._ref(name, stack)
        left = {}
        for key, item in resolved.items():
            inline = _inline(item)
            if inline is None:
                left[key] = item
            else:
                text = text.replace("${" + key + "}", inline)
        return {"Fn::Sub": [text, left] if left else text}


def _inline(value: Any) -> str | None:
    """How a value reads inside a Sub string: itself, ${X} for a Ref, ${X.Attr} for a GetAtt; None otherwise."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return "${" + value["Ref"] + "}"
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    return None


_ABSENT = object()


def _at(properties: Mapping[str, Any], path: str) -> Any:
    """The value of a create-only path (``/properties/A/B``); a path through a list compares its top property."""
    parts = path.split("/")[2:]
    if "*" in parts:
        parts = parts[:1]
    value: Any = properties
    for part in parts:
        if not isinstance(value, Mapping) or part not in value:
            return _ABSENT
        value = value[part]
    return value


def _owner(split: Mapping[str, Mapping[str, Any]], logical_id: str) -> list[str]:
    return [name for name, template in split.items() if logical_id in template.get("Resources", {})]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_resource_of_the_previous_release_is_in_exactly_one_stack_with_its_logical_id_and_type(env):
    previous, split = _previous(env)["Resources"], _split(env)
    for logical_id, resource in previous.items():
        owners = _owner(split, logical_id)
        assert len(owners) == 1, f"{env}: {logical_id} is in {owners or 'no stack'}"
        assert split[owners[0]]["Resources"][logical_id]["Type"] == resource["Type"], logical_id
    assert sum(len(t["Resources"]) for t in split.values()) == len(previous), "the split adds no resource"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_create_only_property_of_any_resource_changes_value_from_the_previous_release(env):
    settings = _project().config(env)
    names = {name: settings.stack_name(name) for name in LAYERS}
    previous, split = _previous(env), _split(env)
    before = _Resolver({APP: previous}, {APP: names[APP]})
    after = _Resolver(split, names)
    checked, changed = 0, []
    for logical_id, resource in sorted(previous["Resources"].items()):
        (owner,) = _owner(split, logical_id)
        old = before(resource.get("Properties") or {}, APP)
        new = after(split[owner]["Resources"][logical_id].get("Properties") or {}, owner)
        for path in sorted(_create_only_properties(resource["Type"])):
            checked += 1
            if _at(old, path) != _at(new, path):
                changed.append(f"{logical_id} ({owner}) {path}: {_at(old, path)!r} -> {_at(new, path)!r}")
    assert checked > 100, "the schemas name create-only properties of most types"
    assert not changed, f"{env}: the upgrade would replace:\n" + "\n".join(changed)


def test_the_resolver_sees_a_changed_create_only_value_through_a_parameter():
    """The proof above can fail: a description naming the new stack, reached through an input, differs."""
    producer = {"Outputs": {"Name": {"Value": {"Fn::Sub": "group of ${AWS::StackName}"}}}}
    consumer = {"Metadata": {"cfnbuild": {"inputs": {"NetName": {"output": "Name", "stack": "net"}}}}}
    resolve = _Resolver({"net": producer, "app": consumer}, {"net": "net-dev", "app": "app-dev"})
    previous = _Resolver({"app": {}}, {"app": "app-dev"})
    assert resolve({"Ref": "NetName"}, "app") == {"Fn::Sub": "group of net-dev"}
    assert previous({"Fn::Sub": "group of ${AWS::StackName}"}, "app") == {"Fn::Sub": "group of app-dev"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_network_and_data_stacks_never_name_their_own_stack_but_the_web_apps(env):
    split = _split(env)
    webapp_name = _project().config(env).stack_name(APP)
    for name in ("network", "data"):
        text = json.dumps(split[name]["Resources"])
        assert "AWS::StackName" not in text, f"{name}: a moved resource would change its name"
        assert webapp_name in text, f"{name}: names and descriptions keep the web-app's deployed name"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_values_cross_stacks_only_through_stack_use_parameters(env):
    split = _split(env)
    for name, template in split.items():
        text = json.dumps(template)
        assert "Fn::ImportValue" not in text, name
        for parameter, source in template_inputs(template).items():
            assert template["Parameters"][parameter]["Type"] == "String"
            assert LAYERS.index(source.stack) < LAYERS.index(name), f"{name} takes {parameter} from downstream"
            assert source.output in split[source.stack]["Outputs"], f"{source.stack} lacks {source.output}"
        for logical_id, resource in template["Resources"].items():
            for needed in resource.get("DependsOn", []):
                assert needed in template["Resources"], f"{name}: {logical_id} depends on {needed} of another stack"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_stateful_stack_has_its_own_stack_policy_and_together_they_protect_what_the_previous_one_did(env):
    split = _split(env)
    denied = {name: _denied(stack_policy(template)) for name, template in split.items()}
    assert {"LogsKey", "FlowLogGroup"} <= denied["network"]
    assert {"DbCluster", "DbSecret", "AssetsBucket", "LogBucket", "AppLogGroup"} <= denied["data"]
    assert not denied["network"] & denied["data"]
    assert denied["network"] | denied["data"] | denied[APP] == _denied(stack_policy(_previous(env)))


def _denied(policy: Mapping[str, Any]) -> set[str]:
    return {
        resource.removeprefix("LogicalResourceId/")
        for statement in policy["Statement"]
        if statement["Effect"] == "Deny"
        for resource in statement["Resource"]
    }


def test_prod_protects_every_stack_from_deletion_and_every_environment_keeps_stateful_resources():
    project = _project()
    for env in ENVIRONMENTS:
        view = project.deploy_view(env)
        assert view.stacks == list(LAYERS), "the graph deploys network, data, webapp in this order"
        assert view.settings.deploy.protect_stateful, env
        assert view.settings.deploy.termination_protection is (env == "prod"), env


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_all_in_one_composition_is_the_previous_release_but_for_its_exports(env):
    """The catalog's one product: the same composition with every layer in one stack. (Outputs are no longer
    exported unless asked, since the previous release was built: the only difference.)"""
    previous = _previous(env)
    for output in previous["Outputs"].values():
        output.pop("Export", None)
    assert build_all_in_one(_project().config(env)).to_dict() == previous
