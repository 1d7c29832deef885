"""Every shipped environment of the flagship deploys on the embedded emulator, as one region, as
several, and as a stack set; what the emulator cannot have is said once, in one line.

The flagship's prod names a hosted zone of its account (``Z0123456789ABCDEFGHIJ``, for
``app.example.com``) that no emulator holds: the deploy makes a zone for the domain there and
sends its ID, and the certificate, its DNS validation, the alias record and the HTTPS listener
are all made, not dropped. Each test deploys a copy of the project whose stacks carry the test's
own suffix, so they share the session's emulator without meeting; the app artifact's key is
given (its build is another test's job), so nothing is built from the checkout here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from rich.console import Console

from cfnbuild.deliver.multiregion import deploy_regions
from cfnbuild.deliver.stacksets import Delivery, Preferences, StackSetDelivery
from cfnbuild.deploy.aws import Aws, Target
from cfnbuild.deploy.engine import Engine, Request
from cfnbuild.deploy.events import PollSettings
from cfnbuild.local.emulator import THROWAWAY_CREDENTIALS
from cfnbuild.project.app import load_project
from cfnbuild.project.writer import record_rendered, render

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[3]
FAST = PollSettings(min_seconds=0.01, max_seconds=0.02, timeout_seconds=60)
ARTIFACT = {"AppArtifactKey": "releases/0000000000000000/app.tar.gz"}
WEST, CENTRAL = "eu-west-1", "eu-central-1"
ADMIN = "123456789012"  # the emulator's own account
DOMAIN = "app.example.com"  # prod's [dns] domain
CONFIG_ZONE = "Z0123456789ABCDEFGHIJ"  # prod's [dns] hosted_zone_id
ZONE_LINE = f"parameter HostedZoneId: the emulator has no hosted zone {CONFIG_ZONE}; "
PROTECTION_LINE = "termination protection: the emulator has no UpdateTerminationProtection; on AWS it is turned on"


STACKS = ("network", "data", "webapp")  # the flagship's stacks, in deploy order


def _flagship(tmp_path: Path, environment: str, suffix: str) -> Path:
    """A copy of the project's settings and configs, ``environment``'s templates built there, its stacks suffixed."""
    settings = ['app = "blueprints.app:app"', 'config_dir = "config"', 'output_dir = "output"', 'default_env = "dev"']
    (tmp_path / "pyproject.toml").write_text("[tool.cfnbuild]\n" + "\n".join(settings) + "\n")
    shutil.copytree(ROOT / "config", tmp_path / "config")
    config = tmp_path / "config" / f"{environment}.toml"
    text = config.read_text()
    # prod's [deploy] table is its last; staging and dev have none.
    deploy = "" if re.search(r"^\[deploy\]", text, re.MULTILINE) else "\n[deploy]\n"
    config.write_text(f'{text}{deploy}stack_name_suffix = "{suffix}"\n')
    # Built here, not copied: the network and data stacks name their resources after the web app's deployed
    # stack, which carries the suffix (the previous release's name: see blueprints/webapp.py).
    project = load_project(tmp_path)
    rendered = render(project, [environment])
    for item in rendered:
        item.path.parent.mkdir(parents=True, exist_ok=True)
        item.path.write_text(item.text)
    record_rendered(project, rendered)
    return tmp_path


def _engine(
    root: Path, emulator: Any, environment: str, region: str = WEST, stack: str = "webapp"
) -> tuple[Engine, Console]:
    project = load_project(root)
    name = project.deploy_view(environment).settings.stack_name(stack)
    target = Target(name, region, endpoint_url=emulator.endpoint_url, credentials=dict(THROWAWAY_CREDENTIALS))
    err = Console(record=True, width=400)
    return Engine(project, Aws(target), Console(record=True, width=200), err, poll=FAST), err


def _upstream(root: Path, emulator: Any, environment: str, region: str = WEST) -> None:
    """Deploy the network and data stacks, whose outputs the web-app stack takes."""
    for stack in STACKS[:-1]:
        engine, err = _engine(root, emulator, environment, region, stack)
        engine.deploy(Request(environment, stack, yes=True))
        assert "Traceback" not in err.export_text()


def _client(emulator: Any, service: str, region: str = WEST) -> Any:
    session = boto3.session.Session(region_name=region, **THROWAWAY_CREDENTIALS)
    return session.client(service, endpoint_url=emulator.endpoint_url)  # type: ignore[call-overload]


def _resources(emulator: Any, stack_name: str, region: str = WEST) -> dict[str, str]:
    summaries = _client(emulator, "cloudformation", region).list_stack_resources(StackName=stack_name)
    return {r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in summaries["StackResourceSummaries"]}


def _check_https(emulator: Any, stack_name: str, region: str) -> dict[str, Any]:
    """The stack's listeners: 443 serves HTTPS with the stack's issued certificate, 80 redirects to it."""
    resources = _resources(emulator, stack_name, region)
    elbv2 = _client(emulator, "elbv2", region)
    listeners = {
        listener["Port"]: listener
        for listener in elbv2.describe_listeners(LoadBalancerArn=resources["LoadBalancer"])["Listeners"]
    }
    assert sorted(listeners) == [80, 443], listeners
    https = listeners[443]
    assert https["Protocol"] == "HTTPS"
    assert [c["CertificateArn"] for c in https["Certificates"]] == [resources["Certificate"]]
    assert listeners[80]["DefaultActions"][0]["Type"] == "redirect"
    assert listeners[80]["DefaultActions"][0]["RedirectConfig"]["Port"] == "443"
    certificate = _client(emulator, "acm", region).describe_certificate(CertificateArn=resources["Certificate"])
    assert certificate["Certificate"]["DomainName"] == DOMAIN
    assert certificate["Certificate"]["Status"] == "ISSUED", "its validation record is in its zone"
    assert resources["Certificate"].startswith(f"arn:aws:acm:{region}:{ADMIN}:certificate/")
    return certificate["Certificate"]


def _zone_records(emulator: Any, zone_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    records = _client(emulator, "route53").list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {(r["Name"].rstrip("."), r["Type"]): r for r in records}  # the emulator keeps a stack's without the dot


def test_prod_deploys_on_the_emulator_with_its_certificate_validated_its_alias_record_and_the_https_listener(
    tmp_path, emulator
):
    root = _flagship(tmp_path, "prod", "single")
    _upstream(root, emulator, "prod")
    engine, err = _engine(root, emulator, "prod")
    engine.deploy(Request("prod", "webapp", param_overrides=ARTIFACT, yes=True))
    stack = _client(emulator, "cloudformation").describe_stacks(StackName="webapp-prod-single")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    certificate = _check_https(emulator, "webapp-prod-single", WEST)
    zone_id = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["HostedZoneId"]
    assert zone_id != CONFIG_ZONE
    zone = _client(emulator, "route53").get_hosted_zone(Id=zone_id)["HostedZone"]
    assert zone["Name"] == f"{DOMAIN}."
    records = _zone_records(emulator, zone_id)
    alias = records[(DOMAIN, "A")]["AliasTarget"]
    load_balancer = _resources(emulator, "webapp-prod-single")["LoadBalancer"]
    dns_name = _client(emulator, "elbv2").describe_load_balancers(LoadBalancerArns=[load_balancer])["LoadBalancers"]
    assert alias["DNSName"].rstrip(".") == dns_name[0]["DNSName"]
    validation = certificate["DomainValidationOptions"][0]["ResourceRecord"]
    assert records[(validation["Name"].rstrip("."), "CNAME")]["ResourceRecords"] == [{"Value": validation["Value"]}]
    said = err.export_text()
    assert said.count(ZONE_LINE) == 1, said
    assert f"; made {zone_id} for {DOMAIN} in it and deploying with that (on AWS the deploy uses {CONFIG_ZONE})" in said
    assert said.count(PROTECTION_LINE) == 1, said
    assert "Traceback" not in said
    written = json.loads((root / "output/prod/webapp.outputs.json").read_text())
    assert written["Outputs"]["AppUrl"] == f"https://{DOMAIN}"
    data = json.loads((root / "output/prod/data.outputs.json").read_text())
    assert "DbClusterEndpoint" in data["NotReturned"], "an Aurora cluster is a placeholder in the emulator"


def test_a_second_prod_deploy_reuses_the_zone_it_made_and_changes_nothing_and_a_delete_removes_the_certificate(
    tmp_path, emulator
):
    root = _flagship(tmp_path, "prod", "again")
    _upstream(root, emulator, "prod")
    _engine(root, emulator, "prod")[0].deploy(Request("prod", "webapp", param_overrides=ARTIFACT, yes=True))
    engine, err = _engine(root, emulator, "prod")
    engine.deploy(Request("prod", "webapp", param_overrides=ARTIFACT, yes=True))
    said = err.export_text()
    assert f"parameter HostedZoneId: the emulator has no hosted zone {CONFIG_ZONE}; reusing " in said, said
    stack = _client(emulator, "cloudformation").describe_stacks(StackName="webapp-prod-again")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", "nothing changed, so no change set was executed"
    zones = _client(emulator, "route53").list_hosted_zones_by_name(DNSName=DOMAIN)["HostedZones"]
    assert [z["Name"] for z in zones].count(f"{DOMAIN}.") == 1
    certificate = _resources(emulator, "webapp-prod-again")["Certificate"]
    cloudformation = _client(emulator, "cloudformation")
    try:
        cloudformation.delete_stack(StackName="webapp-prod-again")
    except cloudformation.exceptions.ClientError as error:
        # moto cannot delete routes and gateway attachments, so it answers DependencyViolation for
        # the VPC while it removes the stack (tests/test_deploy_emulator.py says the same).
        if error.response["Error"]["Code"] != "DependencyViolation":
            raise
    left = [c["CertificateArn"] for c in _client(emulator, "acm").list_certificates()["CertificateSummaryList"]]
    assert certificate not in left


def test_staging_deploys_on_the_emulator_serving_plain_http_with_no_certificate(tmp_path, emulator):
    root = _flagship(tmp_path, "staging", "single")
    _upstream(root, emulator, "staging")
    engine, err = _engine(root, emulator, "staging")
    engine.deploy(Request("staging", "webapp", param_overrides=ARTIFACT, yes=True))
    stack = _client(emulator, "cloudformation").describe_stacks(StackName="webapp-staging-single")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    resources = _resources(emulator, "webapp-staging-single")
    assert "Certificate" not in resources or not resources["Certificate"], "staging has no [dns] domain"
    listeners = _client(emulator, "elbv2").describe_listeners(LoadBalancerArn=resources["LoadBalancer"])["Listeners"]
    assert [(listener["Port"], listener["Protocol"]) for listener in listeners] == [(80, "HTTP")]
    assert listeners[0]["DefaultActions"][0]["Type"] == "forward"
    said = err.export_text()
    assert "HostedZoneId" not in said, said
    assert "termination protection" not in said, said


def test_prod_deploys_to_two_regions_on_the_emulator_each_with_its_certificate_and_https_listener(tmp_path, emulator):
    root = _flagship(tmp_path, "prod", "regions")
    for region in (WEST, CENTRAL):
        _upstream(root, emulator, "prod", region)
    errs: dict[str, Console] = {}

    def make(region: str) -> Engine:
        engine, errs[region] = _engine(root, emulator, "prod", region)
        return engine

    out = Console(record=True, width=200)
    request = Request("prod", "webapp", param_overrides=ARTIFACT, yes=True)
    results = deploy_regions(
        make, request, [WEST, CENTRAL], max_parallel=2, continue_on_error=False, out=out, confirm=None
    )
    assert [(r.region, r.result) for r in results] == [(WEST, "deployed"), (CENTRAL, "deployed")], out.export_text()
    arns = [_check_https(emulator, "webapp-prod-regions", region)["CertificateArn"] for region in (WEST, CENTRAL)]
    assert [arn.split(":")[3] for arn in arns] == [WEST, CENTRAL], "a certificate is regional"
    assert errs[WEST].export_text().count(ZONE_LINE) == 1
    assert f"{ZONE_LINE}reusing " in errs[CENTRAL].export_text(), "Route 53 is global: one zone serves both regions"
    for region in (WEST, CENTRAL):
        outputs = json.loads((root / f"output/prod/webapp.{region}.outputs.json").read_text())
        assert outputs["Region"] == region
        assert outputs["Outputs"]["AppUrl"] == f"https://{DOMAIN}"


def test_the_flagship_is_delivered_as_a_stack_set_on_the_emulator(tmp_path, emulator):
    root = _flagship(tmp_path, "dev", "stackset")
    _upstream(root, emulator, "dev")  # the stack set's template takes their outputs
    engine, _ = _engine(root, emulator, "dev")
    delivery = StackSetDelivery(
        engine, Request("dev", "webapp", param_overrides=ARTIFACT, yes=True), Delivery((ADMIN,), (WEST,), Preferences())
    )
    outcomes = delivery.deploy()
    assert [o.status for o in outcomes] == ["SUCCEEDED"], outcomes
    cloudformation = _client(emulator, "cloudformation")
    summaries = cloudformation.list_stack_instances(StackSetName="webapp-dev-stackset")["Summaries"]
    assert [(s["Account"], s["Region"], s["Status"]) for s in summaries] == [(ADMIN, WEST, "CURRENT")]
    stack = cloudformation.describe_stacks(StackName=summaries[0]["StackId"])["Stacks"][0]
    assert stack["StackName"].startswith("StackSet-webapp-dev-stackset-")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    resources = _resources(emulator, summaries[0]["StackId"])
    assert resources["LoadBalancer"].startswith("arn:aws:elasticloadbalancing:")
    network = cloudformation.describe_stacks(StackName="network-dev-stackset")["Stacks"][0]
    vpc_id = {o["OutputKey"]: o["OutputValue"] for o in network["Outputs"]}["VpcId"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["NetworkVpcId"] == vpc_id
    outputs = {o["OutputKey"] for o in stack.get("Outputs", [])}
    assert {"AlbDnsName", "AutoScalingGroupName"} <= outputs, "outputs of placeholders are left out, not the stack's"


def test_deploy_env_prod_local_completes_saying_each_thing_the_emulator_lacks_in_one_line(tmp_path):
    root = _flagship(tmp_path, "prod", "cli")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    command = [sys.executable, "-m", "cfnbuild", "--project", str(root), "deploy", "--env", "prod", "--local"]
    result = subprocess.run(
        [*command, "--param", f"AppArtifactKey={ARTIFACT['AppArtifactKey']}"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    said = result.stdout + result.stderr
    assert result.returncode == 0, said
    assert "Traceback" not in said
    # The whole graph, in order; each stack's own notes are kept quiet by the graph run, the plans are shown.
    order = [said.index(f"{stack}-prod-cli AWS::CloudFormation::Stack CREATE_COMPLETE") for stack in STACKS]
    assert order == sorted(order), said
    assert re.search(r"│ webapp\s+│ deployed\s+│", said), said
    assert said.count(ZONE_LINE) == 1, said
    written = json.loads((root / "output/prod/webapp.outputs.json").read_text())
    assert written["Outputs"]["AppUrl"] == f"https://{DOMAIN}"
