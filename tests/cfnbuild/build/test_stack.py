import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from troposphere import Ref, logs, rds, s3

from cfnbuild import App, Blueprint, EnvironmentConfig, InputError, LogicalIdClash, Stack, StackSpec, setting
from cfnbuild.build.inputs import describe_inputs
from cfnbuild.build.stack import BuildError, building
from cfnbuild.build.stateful import stateful_resources
from cfnbuild.cli.main import main
from cfnbuild.errors import CheckFailed, ConfigError


def _stack() -> Stack:
    return Stack("demo", description="demo stack", project="shop", environment="dev")


@dataclass(frozen=True)
class BucketInputs:
    versioned: bool = setting(True, "Keep every version of every object.")


class Buckets(Blueprint[BucketInputs]):
    bucket_name: Ref

    def build(self) -> None:
        bucket = self.add(s3.Bucket(self.lid("Bucket")), stateful=True)
        self.bucket_name = Ref(bucket)
        self.output("BucketName", self.bucket_name, "Name of the bucket.")


def test_logical_id_clash_names_both_claimants():
    stack = _stack()
    Buckets(stack, BucketInputs())
    with pytest.raises(
        LogicalIdClash,
        match=r"'Bucket' is claimed twice: by blueprint Buckets and by blueprint Buckets",
    ):
        Buckets(stack, BucketInputs())


def test_prefix_lets_one_blueprint_be_used_twice():
    stack = _stack()
    Buckets(stack, BucketInputs(), prefix="Assets")
    Buckets(stack, BucketInputs(), prefix="Logs")
    assert sorted(stack.to_dict()["Resources"]) == ["AssetsBucket", "LogsBucket"]
    assert sorted(stack.to_dict()["Outputs"]) == ["AssetsBucketName", "LogsBucketName"]


def test_outputs_have_no_export_unless_asked():
    stack = _stack()
    Buckets(stack, BucketInputs())
    expected = {"Description": "Name of the bucket.", "Value": {"Ref": "Bucket"}}
    assert stack.to_dict()["Outputs"]["BucketName"] == expected


def test_an_output_asked_to_export_is_exported_under_the_stack_name():
    stack = _stack()
    stack.add_output("Plain", "v", "Not exported.", owner="test")
    stack.add_output("Shared", "v", "Exported.", owner="test", export=True)
    outputs = stack.to_dict()["Outputs"]
    assert "Export" not in outputs["Plain"]
    assert outputs["Shared"]["Export"] == {"Name": {"Fn::Sub": "${AWS::StackName}-Shared"}}


def test_a_blueprint_output_asked_to_export_is_exported_with_its_prefix():
    stack = _stack()
    blueprint = Buckets(stack, BucketInputs(), prefix="Logs")
    blueprint.output("Shared", "v", "Exported.", export=True)
    assert stack.to_dict()["Outputs"]["LogsShared"]["Export"] == {"Name": {"Fn::Sub": "${AWS::StackName}-LogsShared"}}


def test_output_without_description_is_rejected():
    with pytest.raises(InputError, match="needs a description"):
        _stack().add_output("X", "v", "", owner="test")


def test_stateful_bucket_and_log_group_are_retained_on_delete_and_replacement():
    stack = _stack()
    stack.add_resource(s3.Bucket("Bucket"), owner="t", stateful=True)
    stack.add_resource(logs.LogGroup("Logs"), owner="t", stateful=True)
    stack.add_resource(s3.Bucket("Scratch"), owner="t")
    resources = stack.to_dict()["Resources"]
    for name in ("Bucket", "Logs"):
        assert resources[name]["DeletionPolicy"] == "RetainExceptOnCreate"
        assert resources[name]["UpdateReplacePolicy"] == "Retain"
        assert resources[name]["Metadata"]["cfnbuild"] == {"stateful": True}
    assert "DeletionPolicy" not in resources["Scratch"]


def test_stateful_database_is_snapshotted_on_delete_and_replacement():
    stack = _stack()
    stack.add_resource(rds.DBCluster("Db", Engine="aurora-mysql"), owner="t", stateful=True)
    resource = stack.to_dict()["Resources"]["Db"]
    assert resource["DeletionPolicy"] == "Snapshot"
    assert resource["UpdateReplacePolicy"] == "Snapshot"


def test_stateful_marks_are_read_back_from_the_rendered_template():
    stack = _stack()
    stack.add_resource(rds.DBCluster("Db", Engine="aurora-mysql"), owner="t", stateful=True)
    stack.add_resource(s3.Bucket("Scratch"), owner="t")
    assert stateful_resources(stack.to_dict()) == {"Db": "AWS::RDS::DBCluster"}


def test_check_skip_needs_a_reason_and_lands_in_metadata():
    stack = _stack()
    bucket = stack.add_resource(s3.Bucket("Bucket"), owner="t")
    with pytest.raises(InputError, match="needs a reason"):
        stack.skip_check(bucket, "CKV_AWS_18", "no")
    stack.skip_check(bucket, "CKV_AWS_18", "this bucket receives the access logs of the others")
    assert stack.to_dict()["Resources"]["Bucket"]["Metadata"] == {
        "checkov": {
            "skip": [
                {
                    "comment": "this bucket receives the access logs of the others",
                    "id": "CKV_AWS_18",
                }
            ]
        }
    }


def test_an_accepted_rule_pack_finding_needs_a_reason_and_a_rule_id_and_lands_where_the_packs_read_it():
    stack = _stack()
    bucket = stack.add_resource(s3.Bucket("Bucket"), owner="t")
    with pytest.raises(InputError, match="needs a reason"):
        stack.accept_finding(bucket, ["AwsSolutions-S1"], "no")
    with pytest.raises(InputError, match="is not a rule id"):
        stack.accept_finding(bucket, ["S1 please"], "this bucket receives the access logs of the others")
    reason = "this bucket receives the access logs of the others"
    stack.accept_finding(bucket, ["NIST.800.53.R5-S3BucketLoggingEnabled", "AwsSolutions-S1"], reason)
    stack.accept_finding(bucket, ["AwsSolutions-IAM5"], reason, applies_to=["Resource::*"])
    assert stack.to_dict()["Resources"]["Bucket"]["Metadata"] == {
        "cdk_nag": {
            "rules_to_suppress": [
                {"id": "AwsSolutions-IAM5", "reason": reason, "applies_to": ["Resource::*"]},
                {"id": "AwsSolutions-S1", "reason": reason},
                {"id": "NIST.800.53.R5-S3BucketLoggingEnabled", "reason": reason},
            ]
        }
    }


def test_rendering_is_byte_identical_across_builds():
    def build() -> str:
        stack = _stack()
        Buckets(stack, BucketInputs(), prefix="B")
        Buckets(stack, BucketInputs(), prefix="A")
        return stack.to_json()

    first, second = build(), build()
    assert first == second
    assert first.endswith("}\n")
    assert json.dumps(json.loads(first), indent=2, sort_keys=True) + "\n" == first


@dataclass(frozen=True)
class Undocumented:
    size: int = 3


def test_blueprint_inputs_must_document_every_field():
    with pytest.raises(TypeError, match=r"Undocumented.size has no documentation"):
        Buckets(_stack(), Undocumented())  # type: ignore[arg-type]


def test_describe_inputs_lists_type_default_and_doc():
    (row,) = describe_inputs(BucketInputs)
    assert (row.name, row.default, row.doc) == (
        "versioned",
        "True",
        "Keep every version of every object.",
    )


def test_validate_rejects_incompatible_inputs_with_what_to_change():
    @dataclass(frozen=True)
    class SizeInputs:
        size: int = setting(3, "How many.")

    class Sized(Blueprint[SizeInputs]):
        def validate(self) -> None:
            if self.inputs.size > 5:
                raise self.invalid("size", f"is {self.inputs.size}; use 5 or fewer")

        def build(self) -> None:
            pass

    with pytest.raises(InputError, match="Sized input 'size': is 9; use 5 or fewer"):
        Sized(_stack(), SizeInputs(size=9))


# ------------------------------------------- failures while an environment's stack is built, via the CLI


class CaseConfig(EnvironmentConfig):
    """The test app's config: which mistake its one blueprint makes."""

    case: str = "good"


@dataclass(frozen=True)
class CaseInputs:
    case: str = setting("good", "Which mistake build() makes.")


class Mistakes(Blueprint[CaseInputs]):
    def build(self) -> None:
        case = self.inputs.case
        if case == "troposphere validator":
            self.add(logs.LogGroup(self.lid("Logs"), RetentionInDays=8))
        elif case == "troposphere type":
            self.add(s3.Bucket(self.lid("Bucket"), Tags=5))
        elif case == "required at render":
            self.add(s3.Bucket(self.lid("Bucket"), VersioningConfiguration=s3.VersioningConfiguration()))
        elif case == "bad logical ID":
            self.add(s3.Bucket("Assets-Bucket"))
        elif case == "clash":
            self.add(s3.Bucket(self.lid("Bucket")))
            self.add(s3.Bucket(self.lid("Bucket")))
        elif case == "attribute bug":
            self.inputs.no_such_input  # type: ignore[attr-defined]  # noqa: B018
        elif case == "own type error":
            self.add(s3.Bucket(self.lid("Bucket"), BucketName="assets-" + 5))  # type: ignore[operator]
        else:
            self.add(s3.Bucket(self.lid("Bucket")))


def build_mistakes(config: CaseConfig) -> Stack:
    stack = Stack("store", description="A bucket.", project=config.project, environment=config.environment)
    Mistakes(stack, CaseInputs(config.case))
    return stack


app = App(config_model=CaseConfig, stacks=[StackSpec("store", build_mistakes)])


def _project(tmp_path: Path, case: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(f'[tool.cfnbuild]\napp = "{__name__}:app"\n')
    (tmp_path / "config").mkdir()
    (tmp_path / "config/dev.toml").write_text(f'project = "shop"\nregions = ["eu-west-1"]\ncase = "{case}"\n')
    return tmp_path


def _build(tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]) -> tuple[object, str]:
    with pytest.raises(SystemExit) as exited:
        main(["--project", str(_project(tmp_path, case)), "build", "--env", "dev"])
    return exited.value.code, capsys.readouterr().err


def test_troposphere_validator_error_names_blueprint_resource_and_property_in_one_line(tmp_path, capsys):
    code, err = _build(tmp_path, "troposphere validator", capsys)
    allowed = "1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653"
    # One line: troposphere's own note on stderr ("function validator ... threw exception") is dropped.
    assert (code, err) == (
        2,
        "error: dev: stack store: blueprint Mistakes: resource Logs (AWS::Logs::LogGroup): RetentionInDays is int 8: "
        f"Integer must be one of following: {allowed}; change the RetentionInDays blueprint Mistakes sets "
        "(or the input it comes from)\n",
    )


def test_troposphere_type_error_names_the_type_expected_and_given(tmp_path, capsys):
    code, err = _build(tmp_path, "troposphere type", capsys)
    assert (code, err) == (
        2,
        "error: dev: stack store: blueprint Mistakes: resource Bucket (AWS::S3::Bucket): Tags is int 5, "
        "expected Tags; give Tags a value of type Tags\n",
    )


def test_required_property_missing_at_render_names_the_resource_and_its_blueprint(tmp_path, capsys):
    code, err = _build(tmp_path, "required at render", capsys)
    assert (code, err) == (
        2,
        "error: dev: stack store: blueprint Mistakes: resource Bucket (AWS::S3::Bucket): "
        "in s3.VersioningConfiguration: required property Status is not set; "
        "set Status where blueprint Mistakes makes it\n",
    )


def test_a_logical_id_troposphere_refuses_is_named_with_the_fix(tmp_path, capsys):
    code, err = _build(tmp_path, "bad logical ID", capsys)
    assert (code, err) == (
        2,
        "error: dev: stack store: blueprint Mistakes: resource Assets-Bucket (AWS::S3::Bucket): logical ID "
        "'Assets-Bucket' is not alphanumeric; use letters and digits only, as self.lid() makes\n",
    )


def test_logical_id_clash_names_environment_and_stack(tmp_path, capsys):
    code, err = _build(tmp_path, "clash", capsys)
    assert (code, err) == (
        2,
        "error: dev: stack store: logical ID 'Bucket' is claimed twice: by blueprint Mistakes and by blueprint "
        "Mistakes (resource); give one of them another name or prefix\n",
    )


def test_a_bug_in_a_blueprint_keeps_its_traceback(tmp_path):
    with pytest.raises(AttributeError, match="no_such_input"):
        main(["--project", str(_project(tmp_path, "attribute bug")), "build", "--env", "dev"])


def test_a_blueprints_own_type_error_is_not_disguised_as_troposphere_s(tmp_path):
    with pytest.raises(TypeError, match="can only concatenate str"):
        main(["--project", str(_project(tmp_path, "own type error")), "build", "--env", "dev"])


def test_building_passes_a_config_error_unchanged_and_keeps_an_error_s_exit_code():
    with pytest.raises(ConfigError) as config_error, building("dev", "store"):
        raise ConfigError("config/dev.toml", [("compute.max_size", "is 0", "use 1 to 100")])
    assert str(config_error.value) == "config/dev.toml: compute.max_size: is 0; use 1 to 100"
    with pytest.raises(BuildError) as build_error, building("dev", "store"):
        raise CheckFailed("two problems\nin two lines")
    assert str(build_error.value) == "dev: stack store: two problems\ndev: stack store: in two lines"
    assert build_error.value.exit_code == 1


def test_stack_function_built_directly_names_no_place_but_through_its_spec_does():
    config = CaseConfig(project="shop", regions=["eu-west-1"], environment="dev", case="clash")
    with pytest.raises(LogicalIdClash):
        build_mistakes(config)
    with pytest.raises(BuildError, match=r"^dev: stack store: logical ID 'Bucket' is claimed twice"):
        app.stacks[0].build(config)
