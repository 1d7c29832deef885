"""cfn-lint with cfnbuild's speedups finds exactly what cfn-lint without them finds.

The corpus is the flagship's own templates, each broken in many ways at once by a seeded set of
mutations (unknown, missing and mistyped properties, values outside their enums and patterns,
references to nothing, broken intrinsic functions, stateful resources without their policies),
so that dozens of different rules have something to say. Each side lints it in its own process:
the speedups replace cfn-lint's code for the whole process, and ``CFNBUILD_LINT_SPEEDUPS=0``
keeps them out of the other.
"""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cfnbuild.build import lint_speedups

ROOT = Path(__file__).resolve().parents[3]

TEMPLATES = ("output/prod/network.json", "output/prod/data.json", "output/prod/webapp.json", "output/dev/webapp.json")
REGIONS = ("eu-west-1", "eu-central-1")

# Lints each file named on the command line and prints, as JSON, every finding and which
# speedups were in place.
LINT_SCRIPT = """
import json, sys
from dataclasses import asdict
from cfnbuild.build import lint, lint_speedups
rules = lint._rules()
out = {"installed": lint_speedups.install(rules), "findings": {}}
for argument in sys.argv[1:]:
    path, _, regions = argument.partition("=")
    text = open(path, encoding="utf-8").read()
    out["findings"][path] = [asdict(f) for f in lint.cfn_lint(text, regions.split(","), file=path)]
print(json.dumps(out))
"""


def _some_property(rng: random.Random, properties: dict[str, Any]) -> str:
    return rng.choice(sorted(properties) or ["Name"])


def _unknown_property(rng: random.Random, name: str, resource: dict[str, Any], properties: dict[str, Any]) -> None:
    properties["NotAPropertyOfThisType"] = "x"


def _missing_property(rng: random.Random, name: str, resource: dict[str, Any], properties: dict[str, Any]) -> None:
    if properties:
        del properties[rng.choice(sorted(properties))]


def _mistyped_property(rng: random.Random, name: str, resource: dict[str, Any], properties: dict[str, Any]) -> None:
    key = _some_property(rng, properties)
    properties[key] = 12345 if isinstance(properties.get(key), str) else "not-the-right-type"


def _ref_to_nothing(rng: random.Random, name: str, resource: dict[str, Any], properties: dict[str, Any]) -> None:
    properties[_some_property(rng, properties)] = {"Ref": "NothingByThisName"}


def _getatt_to_nothing(rng: random.Random, name: str, resource: dict[str, Any], properties: dict[str, Any]) -> None:
    properties[_some_property(rng, properties)] = {"Fn::GetAtt": [name, "NoSuchAttribute"]}


def _sub_of_nothing(rng: random.Random, name: str, resource: dict[str, Any], properties: dict[str, Any]) -> None:
    properties[_some_property(rng, properties)] = {"Fn::Sub": "${NotDefinedAnywhere}-x"}


def _no_policies(rng: random.Random, name: str, resource: dict[str, Any], properties: dict[str, Any]) -> None:
    resource.pop("DeletionPolicy", None)
    resource.pop("UpdateReplacePolicy", None)
    resource["DependsOn"] = ["NoSuchResource"]


def _unknown_condition(rng: random.Random, name: str, resource: dict[str, Any], properties: dict[str, Any]) -> None:
    resource["Condition"] = "NoSuchCondition"


def _broken_if(rng: random.Random, name: str, resource: dict[str, Any], properties: dict[str, Any]) -> None:
    properties[_some_property(rng, properties)] = {"Fn::If": ["NoSuchCondition", 1]}


MUTATIONS = (
    _unknown_property,
    _missing_property,
    _mistyped_property,
    _ref_to_nothing,
    _getatt_to_nothing,
    _sub_of_nothing,
    _no_policies,
    _unknown_condition,
    _broken_if,
)


def _mutations(rng: random.Random, template: dict[str, Any], variant: int = 0) -> None:
    """Break ``template`` in place: a handful of generic mutations on a seeded choice of resources."""
    resources = template["Resources"]
    for name in rng.sample(sorted(resources), min(len(resources), 24)):
        resource = resources[name]
        rng.choice(MUTATIONS)(rng, name, resource, resource.setdefault("Properties", {}))
    for resource in resources.values():  # values outside enums, patterns and ranges the schemas know
        properties = resource.get("Properties", {})
        if variant and isinstance(properties.get("Engine"), str):  # a real engine, spelt in capitals
            properties["Engine"] = properties["Engine"].upper()
            if resource.get("Type") == "AWS::RDS::DBInstance":  # a version: E3062 knows its classes
                properties["EngineVersion"] = "8.0.mysql_aurora.3.04.0"
        for key, bad in (
            ("DBInstanceClass", "db.m1.small" if variant else "db.nonsense.large"),
            ("Engine", "not-an-engine" if not variant else properties.get("Engine")),
            ("InstanceType", "t9.galactic"),
            ("CidrBlock", "10.0.0.0/99"),
            ("RetentionInDays", 4),
            ("Protocol", "GOPHER"),
            ("Port", 70000),
        ):
            if key in properties:
                properties[key] = bad
    _template_mutations(template)


def _template_mutations(template: dict[str, Any]) -> None:
    """Problems outside any one resource's properties: parameters, mappings, outputs, policies."""
    template.setdefault("Parameters", {})["Unused"] = {"Type": "String", "Default": "c", "AllowedValues": ["a", "b"]}
    template.setdefault("Conditions", {})["AlsoUnused"] = {"Fn::Equals": [{"Ref": "Unused"}, "a", "b"]}
    template["Outputs"] = {
        **template.get("Outputs", {}),
        "BrokenJoin": {"Value": {"Fn::Join": [",", {"Ref": "NotAList"}]}},
        "BrokenSelect": {"Value": {"Fn::Select": [7, ["a", "b"]]}},
        "BrokenMap": {"Value": {"Fn::FindInMap": ["NoSuchMap", "k", "v"]}},
        "BrokenSplit": {"Value": {"Fn::Split": [",", 3]}},
        "BrokenBase64": {"Value": {"Fn::Base64": {"Fn::GetAZs": 5}}},
        "BrokenExport": {"Value": "x", "Export": {"Name": {"Fn::GetAtt": ["Nothing", "Arn"]}}},
    }
    for resource in template["Resources"].values():  # an action no service has, on a made-up ARN
        document = resource.get("Properties", {}).get("PolicyDocument")
        if isinstance(document, dict) and isinstance(document.get("Statement"), list):
            document["Statement"].append(
                {"Effect": "Allow", "Action": ["s3:NotAnAction", "iam:*"], "Resource": "arn:aws:s3:::x"}
            )
            document["Statement"].append({"Effect": "Maybe", "NotAction": "ec2:RunInstances"})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    directory = tmp_path_factory.mktemp("corpus")
    rng = random.Random(15)  # noqa: S311  (a seeded corpus, not a secret)
    paths = []
    for index, name in enumerate(TEMPLATES):
        template = json.loads((ROOT / name).read_text())
        for variant in range(2):
            broken = copy.deepcopy(template)
            _mutations(rng, broken, variant)
            path = directory / f"{index}-{variant}.json"
            path.write_text(json.dumps(broken, indent=1))
            paths.append(str(path))
    return paths


def _regions(path: str) -> tuple[str, ...]:
    """Both regions for the first variant of each template, one for the second.

    One region matters: cfn-lint's RDS rules lower-case the engine in the template they check, so
    a second region's pass sees what the first left.
    """
    return REGIONS if path.endswith("-0.json") else REGIONS[:1]


def _python(script: str, *args: str, speedups: bool = True) -> Any:
    """Run ``script`` in a new interpreter (speedups on or off there) and decode the JSON it prints."""
    env = {**os.environ, lint_speedups.DISABLE_VARIABLE: "1" if speedups else "0"}
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def _lint(paths: list[str], *, speedups: bool) -> dict[str, Any]:
    arguments = [f"{path}={','.join(_regions(path))}" for path in paths]
    return dict(_python(LINT_SCRIPT, *arguments, speedups=speedups))


def test_speedups_find_exactly_what_cfn_lint_finds_on_a_broken_corpus(corpus: list[str]) -> None:
    plain = _lint(corpus, speedups=False)
    fast = _lint(corpus, speedups=True)
    assert not any(plain["installed"].values()), plain["installed"]
    missing = [name for name, on in fast["installed"].items() if not on]
    assert not missing, (
        f"the installed cfn-lint changed the code these speedups replace ({', '.join(missing)}); "
        "compare its source with the replacement in cfnbuild/build/lint_speedups.py and record the new hash"
    )
    rules = {finding["rule"] for findings in plain["findings"].values() for finding in findings}
    assert len(rules) >= 25, f"the corpus should break many rules, it broke {sorted(rules)}"
    assert "E3062" in rules  # the class the engine's version has not, which the engine index must find
    for path in corpus:
        assert fast["findings"][path] == plain["findings"][path], path


def test_a_replacement_is_used_only_over_the_source_it_was_written_against() -> None:
    """A cfn-lint whose code differs keeps that code: here Context.evolve's recorded hash is not its own."""
    script = """
import json
import cfnlint.context.context as context_module
from cfnbuild.build import lint_speedups
original = context_module.Context.__dict__["evolve"]
matched = lint_speedups.source_matches("Context.evolve", original)
lint_speedups.KNOWN_SOURCES["Context.evolve"] = "0" * 64
from cfnbuild.build import lint
installed = lint_speedups.install(lint._rules())
kept = context_module.Context.__dict__["evolve"] is original
print(json.dumps([matched, installed, kept]))
"""
    matched, installed, kept = _python(script)
    assert matched  # the recorded hash is that of the installed cfn-lint's code
    assert installed["Context.evolve"] is False
    assert kept
    assert installed["validators.create"] is True  # the others, whose code matches, are in place


def test_speedups_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(lint_speedups.DISABLE_VARIABLE, "0")
    assert not lint_speedups.enabled()
    assert lint_speedups.install(object()) == dict.fromkeys(lint_speedups.KNOWN_SOURCES, False)
    monkeypatch.setenv(lint_speedups.DISABLE_VARIABLE, "1")
    assert lint_speedups.enabled()


def test_the_keyword_index_follows_a_change_of_child_rules() -> None:
    """E1101 indexes its children once, and again when they change: a rule swapped in later is run."""
    script = """
import json
from cfnlint.jsonschema import ValidationError
from cfnbuild.build import lint
rules = lint._rules()
text = open("output/dev/data.json", encoding="utf-8").read()
before = lint.cfn_lint(text, ["eu-west-1"], file="t")
indexed = "_cfnbuild_keyword_index" in rules.data["E1101"].__dict__

class Stand_in(type(rules.data["E3062"])):
    def validate(self, validator, keywords, instance, schema):
        yield ValidationError("the stand-in ran")

rules.data["E3062"] = Stand_in()
after = lint.cfn_lint(text, ["eu-west-1"], file="t")
print(json.dumps([indexed, [f.message for f in before], sorted({(f.rule, f.message) for f in after})]))
"""
    indexed, before, after = _python(script)
    assert indexed
    assert before == []
    assert after == [["E3062", "the stand-in ran"]]
