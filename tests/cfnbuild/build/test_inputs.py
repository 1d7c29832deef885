"""Blueprint inputs of the wrong type are refused when the blueprint is made, naming the field and the fix."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
from troposphere import AWSHelperFn, AWSObject, GetAtt, Ref, s3, sqs

from blueprints import budget, compute, database, encryption, loadbalancer, network, observability, security, storage
from cfnbuild import Blueprint, EnvironmentConfig, InputError, Stack, setting
from cfnbuild.build.inputs import input_problems
from cfnbuild.cli.main import main
from cfnbuild.project.app import App, StackSpec


@dataclass(frozen=True)
class Kinds:
    count: int = setting(1, "A whole number.")
    ratio: float = setting(0.5, "A number.")
    label: str = setting("a", "Text.")
    enabled: bool = setting(True, "A switch.")
    mode: Literal["single", "per-az"] = setting("single", "A choice.")
    names: tuple[str, ...] = setting((), "Any number of strings.")
    pair: tuple[str, int] = setting(("a", 1), "A string and a number.")
    ids: Sequence[AWSHelperFn] = setting((), "References.")
    groups: Mapping[str, AWSObject] = setting(factory=dict, doc="Resources by name.")
    env: Mapping[str, AWSHelperFn | str] = setting(factory=dict, doc="References or strings by name.")
    key: AWSHelperFn | None = setting(None, "An optional reference.")
    limit: int | None = setting(None, "An optional whole number.")


def _problems(**values: object) -> list[str]:
    return [f"{p.path}: {p}" for p in input_problems(Kinds(**values))]  # type: ignore[arg-type]


def test_values_of_every_declared_kind_pass():
    queue = sqs.Queue("Queue")
    assert not _problems(
        count=3,
        ratio=2,  # an int is a float
        label="b",
        enabled=False,
        mode="per-az",
        names=("a", "b"),
        pair=("b", 2),
        ids=[Ref(queue), GetAtt(queue, "Arn")],  # a list is a Sequence
        groups={"q": queue},
        env={"A": Ref(queue), "B": "text"},
        key=Ref(queue),
        limit=5,
    )


@pytest.mark.parametrize(
    ("values", "line"),
    [
        ({"count": "7"}, "count: expected int, got str '7'; pass a whole number"),
        ({"count": True}, "count: expected int, got bool True; pass a whole number"),
        ({"ratio": False}, "ratio: expected float, got bool False; pass a number"),
        ({"label": 5}, "label: expected str, got int 5; pass a string"),
        ({"enabled": 1}, "enabled: expected bool, got int 1; pass True or False"),
        ({"mode": "many"}, "mode: is 'many'; use 'single' or 'per-az'"),
        ({"names": ["a"]}, "names: expected tuple[str, ...], got list ['a']; pass a tuple (not a list: tuple(values))"),
        ({"names": ("a", 3)}, "names[1]: expected str, got int 3; pass a string"),
        ({"pair": ("a",)}, "pair: has 1 items; pass a tuple of 2"),
        (
            {"ids": "subnet-1"},
            "ids: expected Sequence[AWSHelperFn], got str 'subnet-1'; "
            "pass a tuple or list of them (a single string is not a list)",
        ),
        (
            {"ids": ["subnet-1"]},
            "ids[0]: expected AWSHelperFn, got str 'subnet-1'; "
            "pass a reference such as Ref(resource) or GetAtt(resource, 'Arn') (another blueprint's output)",
        ),
        (
            {"groups": {"q": Ref("Queue")}},
            "groups['q']: expected AWSObject, got Ref; "
            "pass the resource object itself (e.g. a blueprint's attribute holding it), not its name or a Ref",
        ),
        (
            {"env": {"A": 1}},
            "env['A']: expected AWSHelperFn | str, got int 1; pass a reference such as Ref(resource) or "
            "GetAtt(resource, 'Arn') (another blueprint's output) or a string",
        ),
        (
            {"key": sqs.Queue("Queue")},
            "key: expected AWSHelperFn | None, got Queue 'Queue'; pass a reference such as Ref(resource) or "
            "GetAtt(resource, 'Arn') (another blueprint's output) or None",
        ),
        ({"limit": "5"}, "limit: expected int | None, got str '5'; pass a whole number or None"),
    ],
)
def test_a_wrong_type_names_the_field_the_type_expected_and_given_and_the_fix(values, line):
    assert _problems(**values) == [line]


def test_every_wrong_field_is_named():
    assert [line.split(":")[0] for line in _problems(count="1", label=2)] == ["count", "label"]


def test_an_annotation_that_does_not_resolve_is_not_checked():
    class LocalOnly:
        pass

    @dataclass(frozen=True)
    class Local:
        known: int = setting(1, "Resolves in the module.")
        local: LocalOnly | None = setting(None, "Names a class only this function knows.")

    assert [p.path for p in input_problems(Local(known="1", local="anything"))] == ["known"]  # type: ignore[arg-type]


# Every blueprint's inputs with their defaults, and the references a stack passes between them:
# what builds today must still pass the check.
@pytest.mark.parametrize(
    "inputs_type",
    [
        budget.BudgetInputs,
        compute.ComputeInputs,
        database.DatabaseInputs,
        encryption.KeysInputs,
        loadbalancer.LoadBalancerInputs,
        network.NetworkInputs,
        observability.LoggingInputs,
        observability.AlarmsInputs,
        security.SecurityGroupsInputs,
        storage.StorageInputs,
    ],
)
def test_every_blueprint_default_passes(inputs_type):
    required = {
        field.name: _sample(field.type)
        for field in dataclasses.fields(inputs_type)
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    }
    assert input_problems(inputs_type(**required)) == []


def _sample(annotation: str) -> object:
    bucket = s3.Bucket("Bucket")
    return {
        "AWSHelperFn": Ref(bucket),
        "AWSObject": bucket,
        "Sequence[AWSHelperFn]": (Ref(bucket),),
        "Mapping[str, AWSObject]": {"app": bucket},
        # A resource of this stack or, as cfnbuild.build.external.StackResource, of another one.
        "Resource": bucket,
        "Mapping[str, Resource]": {"app": bucket},
    }[annotation]


# ---------------------------------------------------------------------------------- through the CLI


class CaseConfig(EnvironmentConfig):
    """The test app's config: which blueprint inputs its one stack is built with."""

    case: str = "good"


@dataclass(frozen=True)
class LogGroupsInputs:
    retention_days: int = setting(7, "Days events are kept, 1 to 365.")
    kms_key_arn: AWSHelperFn | None = setting(None, "Key that encrypts the group.")


class LogGroups(Blueprint[LogGroupsInputs]):
    def validate(self) -> None:
        if not 1 <= self.inputs.retention_days <= 365:
            raise self.invalid("retention_days", f"is {self.inputs.retention_days}; use 1 to 365")

    def build(self) -> None:
        self.add(s3.Bucket(self.lid("Bucket")))


CASES: dict[str, dict[str, object]] = {
    "good": {},
    "wrong type": {"retention_days": "7"},
    "wrong reference": {"kms_key_arn": "arn:aws:kms:eu-west-1:111122223333:key/1"},
    "refused by validate": {"retention_days": 400},
}


def build(config: CaseConfig) -> Stack:
    stack = Stack("logs", description="Log groups.", project=config.project, environment=config.environment)
    LogGroups(stack, LogGroupsInputs(**CASES[config.case]))  # type: ignore[arg-type]
    return stack


app = App(config_model=CaseConfig, stacks=[StackSpec("logs", build)])


def _build(tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    (tmp_path / "pyproject.toml").write_text(f'[tool.cfnbuild]\napp = "{__name__}:app"\n')
    (tmp_path / "config").mkdir()
    (tmp_path / "config/dev.toml").write_text(f'project = "shop"\nregions = ["eu-west-1"]\ncase = "{case}"\n')
    with pytest.raises(SystemExit) as exited:
        main(["--project", str(tmp_path), "build", "--env", "dev"])
    code = exited.value.code
    return code if isinstance(code, int) else 1, capsys.readouterr().err


def test_wrong_typed_input_is_one_line_naming_environment_stack_blueprint_and_field(tmp_path, capsys):
    code, err = _build(tmp_path, "wrong type", capsys)
    assert (code, err) == (
        2,
        "error: dev: stack logs: LogGroups input 'retention_days': expected int, got str '7'; pass a whole number\n",
    )


def test_a_string_for_a_reference_input_is_refused_with_what_to_pass(tmp_path, capsys):
    code, err = _build(tmp_path, "wrong reference", capsys)
    assert code == 2
    assert err == (
        "error: dev: stack logs: LogGroups input 'kms_key_arn': expected AWSHelperFn | None, got str "
        "'arn:aws:kms:eu-west-1:111122223333:key/1'; pass a reference such as Ref(resource) or "
        "GetAtt(resource, 'Arn') (another blueprint's output) or None\n"
    )


def test_validate_refusal_names_environment_and_stack(tmp_path, capsys):
    code, err = _build(tmp_path, "refused by validate", capsys)
    assert (code, err) == (2, "error: dev: stack logs: LogGroups input 'retention_days': is 400; use 1 to 365\n")


def test_the_test_app_builds_with_good_inputs():
    stack = app.stacks[0].build(CaseConfig(project="shop", regions=["eu-west-1"], environment="dev"))
    assert list(stack.to_dict()["Resources"]) == ["Bucket"]


def test_a_wrong_type_is_refused_before_validate_would_trip_over_it():
    stack = Stack("logs", description="Log groups.", project="shop", environment="dev")
    # validate() compares retention_days with numbers: a str would be a TypeError there.
    with pytest.raises(InputError) as info:
        LogGroups(stack, LogGroupsInputs(retention_days="7"), prefix="Audit")  # type: ignore[arg-type]
    assert str(info.value) == (
        "LogGroups (prefix Audit) input 'retention_days': expected int, got str '7'; pass a whole number"
    )
    assert not stack.template.resources
