"""The gates: cfn-lint in-process with a cache, checkov over the written files."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cfnbuild.build.lint import LintCache, cfn_lint, checkov, checkov_command, skip_problems

BAD_APP = """
from dataclasses import dataclass

from troposphere import s3

from cfnbuild import App, Blueprint, EnvironmentConfig, Stack, StackSpec, setting


@dataclass(frozen=True)
class Inputs:
    unused_parameter: bool = setting(True, "Add a parameter nothing uses (cfn-lint W2001).")


class Sloppy(Blueprint[Inputs]):
    def build(self) -> None:
        self.add(s3.Bucket(self.lid("Bucket")))
        if self.inputs.unused_parameter:
            self.parameter("Unused", Type="String")


def build(config: EnvironmentConfig) -> Stack:
    stack = Stack("sloppy", description="d", project=config.project, environment=config.environment)
    Sloppy(stack, Inputs())
    return stack


app = App(config_model=EnvironmentConfig, stacks=[StackSpec("sloppy", build)])
"""


def _bad_project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[tool.cfnbuild]\napp = "sloppy_app:app"\n')
    (tmp_path / "sloppy_app.py").write_text(BAD_APP)
    (tmp_path / "config").mkdir()
    (tmp_path / "config/dev.toml").write_text('project = "sloppy"\nregions = ["eu-west-1"]\n')
    return tmp_path


def test_a_cfn_lint_match_fails_the_build_naming_file_path_rule_and_message_and_writes_nothing(
    tmp_path,
):
    project = _bad_project(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "cfnbuild", "--project", str(project), "build"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "output/dev/sloppy.json: Parameters/Unused: cfn-lint W2001: Parameter Unused not used" in result.stderr
    assert "1 cfn-lint finding(s); nothing was written" in result.stderr
    assert not (project / "output").exists()


def test_informational_rules_run_too():
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"Name": {"Value": {"Fn::Join": ["", ["topic-", {"Fn::GetAtt": ["Topic", "TopicName"]}]]}}},
    }
    rules = {f.rule for f in cfn_lint(json.dumps(template), ["eu-west-1"], file="t.json")}
    assert rules == {"I1022"}  # prefer Fn::Sub over Fn::Join with an empty delimiter


def test_cfn_lint_suppressions_in_metadata_are_refused():
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Bucket": {
                "Type": "AWS::S3::Bucket",
                "Metadata": {"cfn-lint": {"config": {"ignore_checks": ["W1"]}}},
            }
        },
    }
    (finding,) = cfn_lint(json.dumps(template), ["eu-west-1"], file="t.json")
    assert "cfn-lint suppressions are not allowed" in finding.message


def test_a_template_cfn_lint_cannot_read_is_one_finding_with_its_line_not_a_crash():
    duplicate = '{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"},\n "Topic": {"Type": "AWS::SNS::Topic"}}}'
    findings = cfn_lint(duplicate, ["eu-west-1"], file="t.json")
    assert {(f.rule, f.path) for f in findings} == {("E0000", "line 1"), ("E0000", "line 2")}
    assert all("Duplicate found 'Topic'" in f.message for f in findings)
    (truncated,) = cfn_lint('{"Resources": {', ["eu-west-1"], file="t.json")
    assert (truncated.rule, truncated.path.startswith("line ")) == ("E0000", True)
    (not_an_object,) = cfn_lint("[1, 2]", ["eu-west-1"], file="t.json")
    assert not_an_object.message == "Template needs to be an object."


def test_lint_cache_answers_an_unchanged_template_without_linting(tmp_path):
    cache = LintCache(tmp_path)
    text = json.dumps(
        {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Parameters": {"P": {"Type": "String"}},
            "Resources": {"B": {"Type": "AWS::SNS::Topic"}},
        }
    )
    first = cache.cfn_lint(text, ["eu-west-1"], file="a.json")
    second = cache.cfn_lint(text, ["eu-west-1"], file="b.json")
    assert (cache.misses, cache.hits) == (1, 1)
    assert [f.rule for f in first] == [f.rule for f in second] == ["W2001"]
    assert second[0].file == "b.json"
    cache.cfn_lint(text, ["eu-west-1", "us-east-1"], file="a.json")
    assert cache.misses == 2  # other regions, another key


def test_checkov_skip_without_a_reason_is_a_finding():
    template = {
        "Resources": {
            "Bucket": {
                "Type": "AWS::S3::Bucket",
                "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_18"}]}},
            }
        }
    }
    (finding,) = skip_problems(json.dumps(template), file="t.json")
    assert (finding.rule, finding.path) == ("CKV_AWS_18", "Resources/Bucket/Metadata")


def test_checkov_reports_failed_checks_with_file_and_resource(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(
        json.dumps(
            {
                "AWSTemplateFormatVersion": "2010-09-09",
                "Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}},
            }
        )
    )
    findings = checkov([path], root=tmp_path)
    assert findings, "an unencrypted, unversioned bucket must fail checkov"
    assert {f.file for f in findings} == {"t.json"}
    assert "CKV_AWS_21" in {f.rule for f in findings}  # versioning
    assert all(f.path == "AWS::S3::Bucket.Bucket" for f in findings)


def test_checkov_runs_its_checks_in_its_one_process_unless_the_user_says_otherwise(monkeypatch):
    monkeypatch.delenv("CHECKOV_PARALLELIZATION_TYPE", raising=False)
    assert checkov_command(["t.json"])[1]["CHECKOV_PARALLELIZATION_TYPE"] == "none"  # no pool beside our own
    monkeypatch.setenv("CHECKOV_PARALLELIZATION_TYPE", "thread")
    assert checkov_command(["t.json"])[1]["CHECKOV_PARALLELIZATION_TYPE"] == "thread"


def test_checkov_honours_a_metadata_skip_with_a_reason(tmp_path):
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Bucket": {
                "Type": "AWS::S3::Bucket",
                "Metadata": {
                    "checkov": {"skip": [{"id": "CKV_AWS_21", "comment": "scratch bucket, versions not wanted"}]}
                },
            }
        },
    }
    path = tmp_path / "t.json"
    path.write_text(textwrap.dedent(json.dumps(template)))
    assert "CKV_AWS_21" not in {f.rule for f in checkov([path], root=tmp_path)}


def test_a_region_the_installed_cfn_lint_cannot_lint_for_is_named_with_the_fix():
    template = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    (finding,) = cfn_lint(json.dumps(template), ["eu-west-1", "xx-future-1"], file="t.json")
    assert finding.file == "t.json"
    assert "cannot lint for xx-future-1" in finding.message
    assert "upgrade cfn-lint" in finding.message


SNS_TEMPLATE = json.dumps(
    {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {"P": {"Type": "String"}},
        "Resources": {"B": {"Type": "AWS::SNS::Topic"}},
    }
)


def test_corrupt_lint_cache_entry_is_a_miss_warned_once_and_overwritten(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cache = LintCache(tmp_path / "cfn-lint")
    cache.cfn_lint(SNS_TEMPLATE, ["eu-west-1"], file="a.json")
    (entry,) = (tmp_path / "cfn-lint").iterdir()
    good = entry.read_text()
    entry.write_text('[{"file": "a.json", "rule": ')  # cut short, as a write that was not atomic leaves it

    again = LintCache(tmp_path / "cfn-lint")
    assert [f.rule for f in again.cfn_lint(SNS_TEMPLATE, ["eu-west-1"], file="a.json")] == ["W2001"]
    assert (again.misses, again.hits) == (1, 0)
    assert capsys.readouterr().err == (
        f"warning: cfn-lint/{entry.name} is not a valid cache entry (Expecting value: line 1 column 29); "
        "recomputing it\n"
    )
    assert entry.read_text() == good  # overwritten with a good entry

    again.cfn_lint(SNS_TEMPLATE, ["eu-west-1"], file="a.json")
    assert (again.misses, again.hits) == (1, 1)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "Expecting value: line 1 column 1"),
        ('{"rule": "W2001"}', "an object, not an array of findings"),
        ('[{"rule": "W2001"}]', "item 0 is not a finding with file, message, path, rule, tool"),
        (
            '[{"file": "a", "message": 1, "path": "p", "rule": "r", "tool": "t"}]',
            "item 0 has a value that is not a string",
        ),
    ],
    ids=["empty", "not an array", "missing keys", "wrong type"],
)
def test_a_lint_cache_entry_of_the_wrong_shape_is_named_with_its_reason_and_relinted(
    tmp_path, monkeypatch, capsys, content, reason
):
    monkeypatch.chdir(tmp_path)
    cache = LintCache(tmp_path / "cfn-lint")
    cache.cfn_lint(SNS_TEMPLATE, ["eu-west-1"], file="a.json")
    (entry,) = (tmp_path / "cfn-lint").iterdir()
    good = entry.read_text()
    entry.write_text(content)
    assert [f.rule for f in cache.cfn_lint(SNS_TEMPLATE, ["eu-west-1"], file="a.json")] == ["W2001"]
    assert capsys.readouterr().err == (
        f"warning: cfn-lint/{entry.name} is not a valid cache entry ({reason}); recomputing it\n"
    )
    assert entry.read_text() == good


def test_a_lint_cache_that_cannot_be_written_is_warned_about_once_and_linting_goes_on(tmp_path, monkeypatch, capsys):
    """A file where the cache directory should be: what a read-only cache looks like to root, whom chmod
    does not stop."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfn-lint").write_text("")
    cache = LintCache(tmp_path / "cfn-lint")
    assert [f.rule for f in cache.cfn_lint(SNS_TEMPLATE, ["eu-west-1"], file="a.json")] == ["W2001"]
    assert [f.rule for f in cache.cfn_lint(SNS_TEMPLATE, ["eu-west-1", "us-east-1"], file="a.json")] == ["W2001"]
    assert (cache.misses, cache.hits) == (2, 0)
    assert capsys.readouterr().err == (
        "warning: cannot write to the cache cfn-lint/ (cfn-lint is a file, not a directory); "
        "carrying on without caching\n"
    )


def test_one_process_lints_template_after_template_with_its_rules_loaded_once_and_the_same_answers():
    from cfnbuild.build.lint import _rules

    unused = json.dumps(
        {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Parameters": {"P": {"Type": "String"}},
            "Resources": {"T": {"Type": "AWS::SNS::Topic"}},
        }
    )
    clean = json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"T": {"Type": "AWS::SNS::Topic"}}})
    rules = _rules()
    first = cfn_lint(unused, ["eu-west-1"], file="a.json")
    assert cfn_lint(clean, ["eu-west-1"], file="b.json") == []
    assert cfn_lint(unused, ["eu-west-1"], file="a.json") == first
    assert [f.rule for f in first] == ["W2001"]
    assert _rules() is rules  # loaded once for the process


PROBLEMS = {
    "Parameters": {"Unused": {"Type": "String"}},
    "Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"NoSuchProperty": "x"}},
        "Table": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST",
            },
        },
        "Subnet": {
            "Type": "AWS::EC2::Subnet",
            "Properties": {"VpcId": "vpc-123", "CidrBlock": "10.0.0.0/33", "AvailabilityZone": "eu-west-1a"},
        },
        "Instance": {
            "Type": "AWS::EC2::Instance",
            "Properties": {"ImageId": "ami-12345678", "InstanceType": "t9.nothing", "SubnetId": {"Ref": "Subnet"}},
        },
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": 10}},
        "Policy": {  # W3037 and I3510, the rules that share cfn-lint's decoded IAM reference
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": "p",
                "Groups": ["g"],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": ["s3:GetObjectt"], "Resource": "*"},
                        {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": "arn:aws:sns:us-east-1:1:t"},
                    ],
                },
            },
        },
    },
    "Outputs": {"Arn": {"Value": {"Fn::GetAtt": ["Bucket", "NoSuchAttribute"]}}},
}


@pytest.mark.parametrize("regions", [("eu-west-1",), ("eu-west-1", "eu-central-1"), ("us-east-1", "cn-north-1")])
def test_findings_on_a_template_with_known_problems_are_plain_cfn_lint_apis_for_every_region(regions):
    """The same E, W and I findings as ``cfnlint.api.lint`` with the rule selection and every region."""
    from cfnlint.api import ManualArgs, lint

    text = json.dumps(PROBLEMS, indent=2)
    plain = lint(text, config=ManualArgs(regions=list(regions), include_checks=["I"]))
    expected = {(m.rule.id, "/".join(str(p) for p in m.path), m.message) for m in plain}
    ours = cfn_lint(text, regions, file="problems.json")
    assert {(f.rule, f.path, f.message) for f in ours} == expected
    assert len(ours) == len(expected)  # one finding per rule, place and message
    assert {rule[0][0] for rule in expected} >= {"E", "W", "I"}  # the template does exercise every kind
    assert {rule[0] for rule in expected} >= {"W3037", "I3510"}


def test_the_rules_reading_cfn_lints_iam_reference_share_one_decoded_copy_and_cfn_lint_is_left_as_it_was():
    import cfnlint.helpers

    from cfnbuild.build.lint import _rules

    rules = _rules()
    assert rules.data["W3037"]._service_map is rules.data["I3510"].service_map
    assert cfnlint.helpers.load_resource.__module__ == "cfnlint.helpers"
