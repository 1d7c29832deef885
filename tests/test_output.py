"""The committed output/ is what the blueprints build, and it passes every gate."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cfnbuild.build.lint import LintCache, checkov, skip_problems
from cfnbuild.project.app import load_project
from cfnbuild.project.writer import render, stale_files

ROOT = Path(__file__).resolve().parent.parent
PROJECT = load_project(ROOT)
RENDERED = render(PROJECT, PROJECT.environments())
IDS = [f"{r.environment}/{r.stack}" for r in RENDERED]


def test_output_is_not_stale_golden_files():
    stale = stale_files(PROJECT, RENDERED)
    assert not stale, "output/ is stale; run 'python -m cfnbuild build --all' and commit:\n" + "\n".join(stale)


@pytest.mark.parametrize("item", RENDERED, ids=IDS)
def test_zero_cfn_lint_matches_for_every_configured_region(item, tmp_path):
    findings = LintCache(tmp_path).cfn_lint(item.text, item.regions, file=str(item.path))
    findings += skip_problems(item.text, file=str(item.path))
    assert not findings, "\n".join(map(str, findings))


def test_zero_checkov_failures():
    findings = checkov([r.path for r in RENDERED], root=ROOT)
    assert not findings, "\n".join(map(str, findings))


LITERALS = {
    "region": re.compile(
        r"\b(?:us|eu|ap|sa|ca|me|af|il|mx|cn)(?:-gov)?-(?:north|south|east|west|central|northeast|southeast|southwest|northwest)-\d\b"
    ),
    "account id": re.compile(r"(?<![\d.])\d{12}(?![\d.])"),
    "availability zone": re.compile(r"\b[a-z]{2}-[a-z]+-\d[a-f]\b"),
    "AMI id": re.compile(r"\bami-[0-9a-f]{8,17}\b"),
    "literal partition ARN": re.compile(r"arn:aws(?:-cn|-us-gov)?:"),
}


@pytest.mark.parametrize("item", RENDERED, ids=IDS)
def test_no_literal_region_account_az_ami_or_arn_in_any_template(item):
    found = {name: pattern.findall(item.text) for name, pattern in LITERALS.items()}
    assert not any(found.values()), f"{item.path}: {found}"


@pytest.mark.parametrize("item", RENDERED, ids=IDS)
def test_every_iam_statement_comes_from_a_grant_helper(item):
    template = json.loads(item.text)
    documents = []
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        documents += [props[k] for k in ("AssumeRolePolicyDocument", "PolicyDocument", "KeyPolicy") if k in props]
        documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
    assert documents
    for document in documents:
        for statement in document["Statement"]:
            assert statement.get("Sid", "").startswith("Grant"), statement


def test_the_committed_service_catalog_export_is_not_stale():
    from cfnbuild.deliver.catalog import build_export

    export = build_export(PROJECT, "prod", "webapp")
    stale = [str(p.relative_to(ROOT)) for p, text in export.files.items() if not p.is_file() or p.read_text() != text]
    assert not stale, "run 'cfnbuild export --service-catalog --env prod' and commit: " + ", ".join(stale)


def _walk(node: object) -> list[object]:
    found = [node]
    if isinstance(node, dict):
        for value in node.values():
            found += _walk(value)
    elif isinstance(node, list):
        for value in node:
            found += _walk(value)
    return found


@pytest.mark.parametrize("item", RENDERED, ids=IDS)
def test_policies_are_written_the_way_rule_packs_read_them(item):
    template = json.loads(item.text)
    buckets = {k for k, v in template["Resources"].items() if v["Type"] == "AWS::S3::Bucket"}
    inputs = set(template.get("Metadata", {}).get("cfnbuild", {}).get("inputs", {}))
    nodes = _walk(template["Resources"])
    secure = [n["aws:SecureTransport"] for n in nodes if isinstance(n, dict) and "aws:SecureTransport" in n]
    assert all(value is False for value in secure), secure  # a boolean, not the string "false"
    subs = [n["Fn::Sub"] for n in nodes if isinstance(n, dict) and isinstance(n.get("Fn::Sub"), str | list)]
    texts = [sub if isinstance(sub, str) else sub[0] for sub in subs]
    # No bucket's ARN is assembled from its name: objects are ${Bucket.Arn}/..., the bucket its Arn; a
    # bucket of another stack is ${<its ARN parameter>}/... .
    assert not [t for t in texts if t.startswith("arn:${AWS::Partition}:s3:::${Bucket}")], texts
    if buckets:  # the data stack: its bucket and topic policies refuse requests without TLS
        assert secure, "no TLS-only statement found"
        assert any(re.fullmatch(rf"\$\{{({'|'.join(buckets)})\.Arn\}}/.+", t) for t in texts)
    elif "DataAssetsBucketArn" in inputs:  # the web app's grants on the data stack's bucket
        assert any(re.fullmatch(r"\$\{DataAssetsBucketArn\}/.+", t) for t in texts), texts
