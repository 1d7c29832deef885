import json
from dataclasses import dataclass

import pytest
from troposphere import Ref, logs, rds, s3

from cfnbuild import Blueprint, InputError, LogicalIdClash, Stack, setting
from cfnbuild.inputs import describe_inputs
from cfnbuild.stateful import stateful_resources


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
        match=r"'Bucket' is claimed twice in stack 'demo': by blueprint Buckets and by blueprint Buckets",
    ):
        Buckets(stack, BucketInputs())


def test_prefix_lets_one_blueprint_be_used_twice():
    stack = _stack()
    Buckets(stack, BucketInputs(), prefix="Assets")
    Buckets(stack, BucketInputs(), prefix="Logs")
    assert sorted(stack.to_dict()["Resources"]) == ["AssetsBucket", "LogsBucket"]
    assert sorted(stack.to_dict()["Outputs"]) == ["AssetsBucketName", "LogsBucketName"]


def test_outputs_are_exported_under_the_stack_name():
    stack = _stack()
    Buckets(stack, BucketInputs())
    assert stack.to_dict()["Outputs"]["BucketName"] == {
        "Description": "Name of the bucket.",
        "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-BucketName"}},
        "Value": {"Ref": "Bucket"},
    }


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
        assert resources[name]["DeletionPolicy"] == "Retain"
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
