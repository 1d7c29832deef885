"""cfn-lint's data read without importing cfn-lint: the same schemas and IAM reference cfn-lint itself loads."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cfnlint.data import AdditionalSpecs
from cfnlint.helpers import load_resource
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from cfnbuild.build.cfn_data import iam_policies, resource_schema

TYPES = (
    "AWS::S3::Bucket",
    "AWS::EC2::VPC",
    "AWS::AutoScaling::AutoScalingGroup",
    "AWS::RDS::DBCluster",
    "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "AWS::Serverless::Function",
    "Custom::Anything",
)


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "eu-central-1", "cn-north-1"])
@pytest.mark.parametrize("resource_type", TYPES)
def test_resource_schema_is_the_schema_cfn_lint_loads(region: str, resource_type: str) -> None:
    expected = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
    assert resource_schema(region, resource_type) == expected


def test_every_us_east_1_type_reads_as_cfn_lint_reads_it() -> None:
    for resource_type in PROVIDER_SCHEMA_MANAGER.get_resource_types("us-east-1")[::25]:
        expected = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
        assert resource_schema("us-east-1", resource_type) == expected, resource_type


def test_a_type_cfn_lint_does_not_know_has_no_schema() -> None:
    assert resource_schema("us-east-1", "AWS::Nothing::Here") is None


def test_iam_policies_are_cfn_lints_iam_reference() -> None:
    assert iam_policies() == load_resource(AdditionalSpecs, "Policies.json")


def test_reading_a_schema_does_not_import_cfn_lint() -> None:
    code = (
        "import sys\n"
        "from cfnbuild.build.cfn_data import resource_schema, iam_policies\n"
        "from cfnbuild.build.tags import tag_property\n"
        "assert resource_schema('eu-west-1', 'AWS::S3::Bucket')['typeName'] == 'AWS::S3::Bucket'\n"
        "assert tag_property('AWS::S3::Bucket') == ('Tags', 'list')\n"
        "assert iam_policies()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'cfnlint')))\n"
    )
    result = subprocess.run([sys.executable, "-c", "import json\n" + code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []
