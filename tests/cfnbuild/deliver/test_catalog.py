"""The Service Catalog export (``cfnbuild export --service-catalog``) and its grant helpers.

The export's templates are checked on the real project's dev template (what ships) and on a
small project of our own in tmp_path (fast to change between versions). ``--upload`` runs against
the emulator (moto in server mode). moto models none of the ``AWS::ServiceCatalog::*`` types in
CloudFormation: the portfolio, product, both associations and the launch constraint are left as
placeholders (they appear in ListStackResources with empty logical IDs, and the Service Catalog
API lists no portfolio); the launch role (``AWS::IAM::Role``) and its provisioning policies
(``AWS::IAM::ManagedPolicy``) are real, and so are the staging bucket, the change sets and the
stack. So these tests prove what the engine does (staging, change sets, no-op, versions kept in the
template), not that Service Catalog accepts the artifacts.
"""

from __future__ import annotations

import json
import re
import textwrap
from functools import cache
from pathlib import Path

import pytest
from rich.console import Console
from troposphere import encode_to_dict

from cfnbuild import Stack
from cfnbuild.build.grants import Grants
from cfnbuild.build.lint import cfn_lint, checkov, skip_problems
from cfnbuild.build.provisioning import (
    MANAGED_POLICY_MAX_CHARS,
    grant_service_catalog_template_read,
    grant_ssm_parameters_read,
    grant_stack_operations,
    provisioning_actions,
)
from cfnbuild.build.tags import standard_tags
from cfnbuild.cli.export import export_command
from cfnbuild.deliver.catalog import (
    INTERFACE,
    KEY_PREFIX,
    PROVISIONING_SKIPS,
    CatalogEngine,
    Version,
    build_export,
    paired_parameter_rules,
    parameter_label,
    product_template,
    project_version,
    upload,
    write_export,
)
from cfnbuild.deploy.aws import Aws, Target
from cfnbuild.deploy.engine import Refused, Request
from cfnbuild.deploy.events import PollSettings
from cfnbuild.deploy.staging import StagingBucket
from cfnbuild.errors import UsageError
from cfnbuild.files import write_atomic
from cfnbuild.local.emulator import THROWAWAY_CREDENTIALS
from cfnbuild.project.app import load_project
from cfnbuild.project.writer import render
from tests.assertions import Match, TemplateAssert

ROOT = Path(__file__).resolve().parents[3]
REGIONS = ["eu-west-1", "eu-central-1", "us-east-1"]
FAST = PollSettings(min_seconds=0.01, max_seconds=0.02, timeout_seconds=60)
PRINCIPAL = "arn:aws:iam::123456789012:role/Developers"

# A module name of its own: the test_engine mini project is imported as "mini_app".
MINI_MODULE = "catalog_mini_app"
MINI_APP = textwrap.dedent(
    """
    from dataclasses import dataclass

    from troposphere import And, Condition, Equals, GetAtt, Not, Ref, route53, sns, sqs

    from cfnbuild import App, Blueprint, EnvironmentConfig, Stack, StackSpec, setting


    class MiniConfig(EnvironmentConfig):
        topic_label: str = "v1"


    @dataclass(frozen=True)
    class Inputs:
        topic_label: str = setting("v1", "The topic's display name.")


    class Mini(Blueprint[Inputs]):
        def build(self) -> None:
            email = self.parameter("AlertEmail", Type="String", Default="", Description="Who gets the alerts.")
            seconds = self.parameter("RetentionSeconds", Type="Number", Default=345600, Description="Kept this long.")
            domain = self.parameter("DomainName", Type="String", Default="", Description="A name for the queue.")
            zone = self.parameter("HostedZoneId", Type="String", Default="", Description="The zone of DomainName.")
            self.parameter(
                "Tier", Type="String", Default="small", AllowedValues=["small", "large"], Description="Size."
            )
            has_email = self.condition("HasEmail", Not(Equals(Ref(email), "")))
            has_domain = self.condition(
                "HasDomain", And(Not(Equals(Ref(domain), "")), Not(Equals(Ref(zone), "")))
            )
            topic = self.add(sns.Topic("Topic", DisplayName=self.inputs.topic_label, KmsMasterKeyId="alias/aws/sns"))
            self.add(
                sns.SubscriptionResource(
                    "Subscription", Condition=has_email, Protocol="email", Endpoint=Ref(email), TopicArn=Ref(topic)
                )
            )
            queue = self.add(
                sqs.Queue("Queue", MessageRetentionPeriod=Ref(seconds), SqsManagedSseEnabled=True), stateful=True
            )
            self.add(
                route53.RecordSetType(
                    "Record",
                    Condition=has_domain,
                    HostedZoneId=Ref(zone),
                    Name=Ref(domain),
                    Type="TXT",
                    TTL="300",
                    ResourceRecords=[GetAtt(queue, "QueueName")],
                )
            )
            self.output("TopicArn", Ref(topic), "The topic.")
            self.output("TierName", Ref("Tier"), "The tier.")


    def build(config: MiniConfig) -> Stack:
        stack = Stack(
            "mini", description="Mini queue\\nand more", project=config.project, environment=config.environment
        )
        Mini(stack, Inputs(topic_label=config.topic_label))
        return stack


    app = App(config_model=MiniConfig, stacks=[StackSpec("mini", build)])
    """
)


# ------------------------------------------------------------------------------ helpers


def _mini(root: Path, *, label: str = "v1", suffix: str = "", build: bool = True) -> Path:
    """A small project in ``root`` (with its template built unless ``build`` is false)."""
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "mini-catalog"\nversion = "1.2.3"\n\n[tool.cfnbuild]\napp = "{MINI_MODULE}:app"\n'
        'default_env = "dev"\n'
    )
    (root / f"{MINI_MODULE}.py").write_text(MINI_APP)
    _configure(root, label=label, suffix=suffix, build=build)
    return root


def _configure(root: Path, *, label: str, suffix: str = "", build: bool = True) -> None:
    (root / "config").mkdir(exist_ok=True)
    lines = ['project = "mini"', 'regions = ["eu-west-1"]', f'topic_label = "{label}"', "[tags]", 'Owner = "team-x"']
    if suffix:
        lines += ["[deploy]", f'stack_name_suffix = "{suffix}"']
    (root / "config/dev.toml").write_text("\n".join(lines) + "\n")
    if build:
        project = load_project(root)
        for rendered in render(project, ["dev"]):
            assert not cfn_lint(rendered.text, ["eu-west-1"], file="mini.json")
            write_atomic(rendered.path, rendered.text)


def _export(root: Path, *, keep: int = 5) -> object:
    project = load_project(root)
    export = build_export(project, "dev", "mini", keep=keep)
    write_export(export)
    return export


def _catalog_dir(root: Path) -> Path:
    return root / "output" / "service-catalog"


def _read(root: Path, name: str) -> dict:
    return json.loads((_catalog_dir(root) / name).read_text())


def _cli(root: Path, *args: str, capsys) -> tuple[int, str, str]:
    """``cfnbuild --project ROOT export ...`` through cfnbuild.cli.main: exit code, stdout, stderr."""
    from cfnbuild.cli.main import main

    code = 0
    try:
        main(["--project", str(root), "export", *args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _engine(root: Path, emulator, export, *, confirm=None) -> tuple[CatalogEngine, Console]:
    project = load_project(root)
    target = Target("unused", "eu-west-1", endpoint_url=emulator.endpoint_url, credentials=dict(THROWAWAY_CREDENTIALS))
    out = Console(record=True, width=200, force_terminal=False)
    engine = CatalogEngine(
        project=project,
        aws=Aws(target),
        out=out,
        err=Console(record=True, width=200),
        poll=FAST,
        confirm=confirm,
        catalog_stack=export.catalog_stack_name,
        catalog_template=export.portfolio,
        catalog_tags=standard_tags("mini", "dev", {"Owner": "team-x"}),
        outputs_file=_catalog_dir(root) / "portfolio.eu-west-1.outputs.json",
    )
    return engine, out


def _body(body) -> dict:
    """A template body as boto3 returns it (it parses JSON bodies itself)."""
    return json.loads(body) if isinstance(body, str) else dict(body)


def _artifacts(template: dict) -> list[dict]:
    products = TemplateAssert(template).of_type("AWS::ServiceCatalog::CloudFormationProduct")
    assert len(products) == 1
    return next(iter(products.values()))["Properties"]["ProvisioningArtifactParameters"]


def _live_change_sets(emulator, stack_name: str) -> list:
    cloudformation = emulator.client("cloudformation")
    summaries = cloudformation.list_change_sets(StackName=stack_name)["Summaries"]
    return [s for s in summaries if s["StackName"] == stack_name and s.get("ExecutionStatus") != "EXECUTE_COMPLETE"]


@pytest.fixture(scope="module")
def real():
    """The export of the real project's prod stack (what output/service-catalog/ holds), in memory (nothing written)."""
    return build_export(load_project(ROOT), "prod", "webapp")


@pytest.fixture
def mini(tmp_path, request):
    suffix = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[-30:].strip("-")
    return _mini(tmp_path, suffix=suffix), f"mini-dev-{suffix}-catalog"


# ------------------------------------------------------------------------------ the product


def test_interface_has_a_group_per_concern_and_a_label_for_every_parameter(real):
    template = real.product.template
    parameters = set(template["Parameters"])
    interface = template["Metadata"][INTERFACE]
    grouped = [name for group in interface["ParameterGroups"] for name in group["Parameters"]]
    assert sorted(grouped) == sorted(parameters), "every parameter in exactly one group"
    assert len(grouped) == len(set(grouped))
    assert set(interface["ParameterLabels"]) == parameters
    groups = {group["Label"]["default"]: group["Parameters"] for group in interface["ParameterGroups"]}
    assert groups["Network"] == ["AvailabilityZones", "NatMode"]
    assert groups["Domain and certificates"] == ["DomainName", "HostedZoneId"]
    assert groups["Database"] == ["DbEngineVersion"]
    assert groups["Cost"] == ["BudgetRegion", "MonthlyBudgetUsd"]
    assert interface["ParameterLabels"]["MonthlyBudgetUsd"] == {"default": "Monthly budget (USD)"}
    assert interface["ParameterLabels"]["HostedZoneId"] == {"default": "Hosted zone ID"}


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("MonthlyBudgetUsd", "Monthly budget (USD)"),
        ("DbEngineVersion", "DB engine version"),
        ("NatMode", "NAT mode"),
        ("VPCId", "VPC ID"),
        ("S3Key", "S3 key"),
        ("RetentionSeconds", "Retention (seconds)"),
        ("Days", "Days"),
    ],
)
def test_labels_are_derived_from_the_name(name, label):
    assert parameter_label(name, {"Type": "String"}) == label


def test_ssm_parameter_labels_say_so():
    label = parameter_label("ImageId", {"Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"})
    assert label == "Image ID (SSM parameter)"


def test_every_parameter_is_constrained_and_the_added_ones_are_listed(real):
    keys = ("AllowedValues", "AllowedPattern", "MinLength", "MaxLength", "MinValue", "MaxValue")
    for name, definition in real.product.template["Parameters"].items():
        assert any(key in definition for key in keys), f"{name} has no constraint"
    image = real.product.template["Parameters"]["ImageId"]
    assert re.fullmatch(image["AllowedPattern"], image["Default"]), "the compute blueprint constrains it"
    assert real.manifest["added_constraints"] == {}, "every parameter of the stack has its own constraint"


def _all_in_one(environment: str) -> dict:
    """The flagship's catalog composition: every layer in one stack, rendered as the export renders it."""
    project = load_project(ROOT)
    assert project.app.catalog is not None
    return json.loads(project.app.catalog.build(project.config(environment)).to_json())


def test_the_product_is_the_all_in_one_composition_of_the_three_stacks_with_no_input_to_wire(real):
    """A catalog user launches one product: it holds every resource of network, data and webapp, and takes none
    of their outputs as parameters (nothing in the catalog would fill them)."""
    split = {n: json.loads((ROOT / f"output/prod/{n}.json").read_text()) for n in ("network", "data", "webapp")}
    every = {logical_id for template in split.values() for logical_id in template["Resources"]}
    assert set(real.product.template["Resources"]) == every
    assert "inputs" not in real.product.template["Metadata"].get("cfnbuild", {})
    assert real.manifest["stack"] == "webapp"
    assert real.manifest["source"] == "the catalog composition webapp of prod"


def test_an_export_of_one_stack_of_the_split_is_refused_naming_the_product_it_ships():
    with pytest.raises(UsageError, match=r"^--stack network: this project's Service Catalog product is its catalog"):
        build_export(load_project(ROOT), "prod", "network")


def test_the_stack_template_is_otherwise_unchanged(real):
    stack = _all_in_one("prod")
    product = real.product.template
    assert product["Resources"] == stack["Resources"]
    assert product["Outputs"] == stack["Outputs"]
    assert product["Conditions"] == stack["Conditions"]
    assert {k: v for k, v in product["Metadata"].items() if k != INTERFACE} == stack["Metadata"]


def test_the_stacks_own_rules_are_kept_and_cover_the_domain_pair(real):
    stack = _all_in_one("prod")
    assert real.product.template["Rules"] == stack["Rules"]
    assert "DomainNeedsHostedZone" in real.product.template["Rules"]
    assert real.manifest["added_rules"] == [], "the stack's rules already cover DomainName and HostedZoneId"


def test_paired_optional_parameters_get_rules_from_the_conditions_both_ways(tmp_path):
    root = _mini(tmp_path)
    export = build_export(load_project(root), "dev", "mini")
    rules = export.product.template["Rules"]
    assert sorted(rules) == ["DomainNameNeedsHostedZoneId", "HostedZoneIdNeedsDomainName"]
    rule = rules["DomainNameNeedsHostedZoneId"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "DomainName"}, ""]}]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "HostedZoneId"}, ""]}]}
    assert "HasDomain" in rule["Assertions"][0]["AssertDescription"]


def test_a_pair_the_stack_rules_already_cover_gets_no_new_rule():
    template = {
        "Parameters": {"A": {"Type": "String", "Default": ""}, "B": {"Type": "String", "Default": ""}},
        "Conditions": {"Both": {"Fn::And": [{"Fn::Not": [{"Fn::Equals": [{"Ref": n}, ""]}]} for n in "AB"]}},
        "Rules": {"Mine": {"RuleCondition": {"Fn::Not": [{"Fn::Equals": [{"Ref": "A"}, ""]}]},
                           "Assertions": [{"Assert": {"Fn::Not": [{"Fn::Equals": [{"Ref": "B"}, ""]}]}}]}},
    }  # fmt: skip
    assert list(paired_parameter_rules(template)) == ["BNeedsA"]


def test_constraints_come_from_the_property_schemas_then_from_the_name(tmp_path):
    root = _mini(tmp_path)
    export = build_export(load_project(root), "dev", "mini")
    parameters = export.product.template["Parameters"]
    assert parameters["RetentionSeconds"]["MinValue"] == 60, "what AWS::SQS::Queue MessageRetentionPeriod takes"
    assert parameters["RetentionSeconds"]["MaxValue"] == 1209600
    assert parameters["RetentionSeconds"]["ConstraintDescription"] == "a number from 60 to 1209600"
    assert parameters["HostedZoneId"]["MaxLength"] == 44, "what AWS::Route53::RecordSet HostedZoneId takes"
    email = parameters["AlertEmail"]["AllowedPattern"]
    assert re.fullmatch(email, "ops@example.com"), "no schema bound, so a pattern from the name"
    assert re.fullmatch(email, ""), "an optional value may stay empty"
    assert not re.fullmatch(email, "not an address")
    assert parameters["Tier"] == {
        "AllowedValues": ["small", "large"],
        "Default": "small",
        "Description": "Size.",
        "Type": "String",
    }, "a parameter the stack constrains is left as it is"
    added = export.manifest["added_constraints"]
    assert set(added) == {"AlertEmail", "DomainName", "HostedZoneId", "RetentionSeconds"}
    assert (
        added["RetentionSeconds"] == "MinValue 60; MaxValue 1209600 (from the schema of Queue.MessageRetentionPeriod)"
    )


def test_a_schema_bound_the_default_breaks_is_not_used():
    template = {
        "Parameters": {"Seconds": {"Type": "Number", "Default": 5}},
        "Resources": {
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": {"Ref": "Seconds"}}}
        },
    }
    product = product_template(template)
    assert product.template["Parameters"]["Seconds"]["MinValue"] == 0
    assert product.added_constraints == {"Seconds": "MinValue: 0"}


def test_a_parameter_no_conservative_rule_fits_is_refused_naming_it():
    template = {"Parameters": {"Keys": {"Type": "CommaDelimitedList"}}, "Resources": {}}
    with pytest.raises(UsageError, match=r"parameter Keys \(CommaDelimitedList\) has no constraint; give it"):
        product_template(template)


# ------------------------------------------------------------------------------ the portfolio


def _provisioning_policies(portfolio: dict) -> tuple[dict, dict]:
    """The launch role's managed policies: those whose every statement names ARNs, and those on "*"."""
    policies = TemplateAssert(portfolio).of_type("AWS::IAM::ManagedPolicy")
    scoped = {
        lid: p
        for lid, p in policies.items()
        if all(st["Resource"] != ["*"] for st in p["Properties"]["PolicyDocument"]["Statement"])
    }
    return scoped, {lid: p for lid, p in policies.items() if lid not in scoped}


def test_launch_role_grants_the_derived_actions_of_the_services_the_product_uses_and_no_others(real):
    from cfnbuild.build.provisioning import (
        APPLICATION_DEPLOY_ACTIONS,
        TRANSFORM_CHANGE_SET_ACTIONS,
        action_resource_types,
    )
    from cfnbuild.deliver.catalog import launch_scope, launched_types

    product_types = launched_types(real.product.template)
    own = {r["Type"] for r in real.product.template["Resources"].values()}
    assert set(product_types) - own == {"AWS::CloudFormation::Stack", "AWS::Lambda::Function",
                                        "AWS::Lambda::Permission"}, "the rotation transform's expansion"  # fmt: skip
    assert real.manifest["launch_role"]["resource_types"] == list(product_types)
    scoped, unscoped = _provisioning_policies(real.portfolio)
    assert scoped
    assert unscoped
    granted = []
    for policy in {**scoped, **unscoped}.values():
        assert policy["Properties"]["Roles"] == [{"Ref": "LaunchRole"}]
        document = policy["Properties"]["PolicyDocument"]
        assert len(json.dumps(document, separators=(",", ":"))) <= MANAGED_POLICY_MAX_CHARS
        for statement in document["Statement"]:
            granted += statement["Action"]
            if statement["Resource"] == ["*"]:
                assert statement["Sid"].startswith("GrantProvision")
                for action in statement["Action"]:
                    if action.startswith(("iam:", "kms:")):
                        assert action_resource_types(action) == (), f"{action} can be scoped, yet is on '*'"

    withheld = launch_scope(real.product.template).withheld
    derived = provisioning_actions(product_types, regions=["eu-west-1"], withheld=withheld)
    unused = real.manifest["launch_role"]["not_granted_unused"]
    key_uses = {a for actions in real.manifest["launch_role"]["keys_used_via"].values() for a in actions}
    expansion = {a.JSONrepr() for a in (*TRANSFORM_CHANGE_SET_ACTIONS, *APPLICATION_DEPLOY_ACTIONS)}
    assert set(granted) == (set(derived.actions) - set(unused)) | key_uses | expansion, (
        "the schemas' actions, the key uses, and the transforms' change sets and applications"
    )
    assert real.manifest["launch_role"]["not_granted_unknown_to_iam"] == list(derived.unknown)
    services = set(launch_scope(real.product.template).services or ())
    assert real.manifest["launch_role"]["services"] == sorted(services)
    withheld = set(launch_scope(real.product.template).withheld)
    assert withheld == {"s3:GetObject", "s3:GetObjectVersion", "ssm:Get*"}, (
        "the function code reads, and the Auto Scaling group's parameter reads: not on '*'"
    )
    for action in unused:
        service = action.split(":")[0]
        assert service not in services or service in ("iam", "kms") or action in withheld, (
            f"{action}: its service is used"
        )
    dropped = {a.split(":")[0] for a in unused}
    assert {"redshift", "docdb-elastic", "cognito-idp", "s3tables", "vpc-lattice"} <= dropped, "never used here"
    assert {"billing", "budgets", "ec2", "rds", "secretsmanager"} <= services


def test_launch_role_iam_statements_name_only_the_launched_stacks_roles_and_profiles(real):
    scoped, _ = _provisioning_policies(real.portfolio)
    statements = {
        st["Sid"]: st for policy in scoped.values() for st in policy["Properties"]["PolicyDocument"]["Statement"]
    }
    from cfnbuild.deliver.catalog import TRANSFORM_EXPANSIONS

    expansion = TRANSFORM_EXPANSIONS[real.product.template["Transform"]]
    role = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/SC-*"}
    trusted = sorted(
        {
            service
            for resource in real.product.template["Resources"].values()
            if resource["Type"] == "AWS::IAM::Role"
            for statement in resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]
            for service in statement["Principal"]["Service"]
        }
        | set(expansion.passed_to)  # the rotation function's role, which the transform's expansion makes
    )
    assert statements["GrantManageRoleSC"]["Resource"] == [role]
    assert "iam:PutRolePolicy" in statements["GrantManageRoleSC"]["Action"]
    assert statements["GrantManageInstanceProfileSC"]["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:instance-profile/SC-*"}
    ]
    assert statements["GrantPassRolesSC"] == {
        "Sid": "GrantPassRolesSC",
        "Effect": "Allow",
        "Action": ["iam:PassRole"],
        "Resource": [role],
        "Condition": {"StringEquals": {"iam:PassedToService": trusted}},
    }
    assert {"ec2.amazonaws.com", "monitoring.rds.amazonaws.com", "vpc-flow-logs.amazonaws.com"} <= set(trusted)
    attached = statements["GrantAttachRolePoliciesSC"]
    assert attached["Action"] == ["iam:AttachRolePolicy"]
    assert attached["Resource"] == [role]
    attachable = attached["Condition"]["ArnLike"]["iam:PolicyARN"]
    assert list(attached["Condition"]) == ["ArnLike"]
    assert sorted(json.dumps(p, sort_keys=True) for p in attachable) == sorted(
        {
            json.dumps(arn, sort_keys=True)
            for resource in real.product.template["Resources"].values()
            if resource["Type"] == "AWS::IAM::Role"
            for arn in resource["Properties"].get("ManagedPolicyArns", [])
        }
        | {json.dumps(arn, sort_keys=True) for arn in expansion.attached_policies}
    ), "exactly the managed policies the product's roles (and the rotation function's) attach"
    assert {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"} in attachable
    assert statements["GrantCreateServiceLinkedRoles"]["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/*"}
    ]
    for statement in statements.values():
        assert statement["Resource"] != ["*"]
    iam_on_any = [
        a
        for p in _provisioning_policies(real.portfolio)[1].values()
        for st in p["Properties"]["PolicyDocument"]["Statement"]
        for a in st["Action"]
        if a.startswith("iam:")
    ]
    assert iam_on_any == ["iam:ListRoles"], "the one IAM action with no resource-level permission"


def test_launch_role_uses_the_stacks_keys_only_through_the_services_that_encrypt_with_them(real):
    scoped, unscoped = _provisioning_policies(real.portfolio)
    statements = {
        st["Sid"]: st for policy in scoped.values() for st in policy["Properties"]["PolicyDocument"]["Statement"]
    }
    keys = [{"Fn::Sub": "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*"}]
    assert statements["GrantUseKeysViaSecretsmanager"] == {
        "Sid": "GrantUseKeysViaSecretsmanager",
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": keys,
        "Condition": {"StringEquals": {"kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}}},
    }
    assert statements["GrantUseKeysViaRds"]["Action"] == ["kms:CreateGrant", "kms:DescribeKey"]
    assert statements["GrantManageKeysInAccount"]["Resource"] == keys
    assert "kms:ScheduleKeyDeletion" in statements["GrantManageKeysInAccount"]["Action"]
    kms_on_any = [
        a
        for p in unscoped.values()
        for st in p["Properties"]["PolicyDocument"]["Statement"]
        for a in st["Action"]
        if a.startswith("kms:")
    ]
    assert kms_on_any == ["kms:CreateKey"], "a key has no ARN before it is made"
    uses = real.manifest["launch_role"]["keys_used_via"]
    assert uses["rds"] == ["kms:CreateGrant", "kms:DescribeKey"], "the cluster and Performance Insights"
    assert uses["secretsmanager"] == ["kms:Decrypt", "kms:GenerateDataKey"], "the database secret"
    assert uses["logs"] == uses["sns"] == [], "log groups and the alarm topic use the key through the key policy"


def test_launch_role_is_trusted_by_service_catalog_and_scopes_its_own_statements(real):
    t = TemplateAssert(real.portfolio)
    t.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    {"Principal": {"Service": ["servicecatalog.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}
                ]
            }
        },
    )
    statements = t.of_type("AWS::IAM::Role")["LaunchRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    by_sid = {statement["Sid"]: statement for statement in statements}
    stacks = by_sid["GrantOperateStacksSC"]
    assert stacks["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/SC-*"}
    ]
    for action in (
        "CreateStack",
        "UpdateStack",
        "DeleteStack",
        "DescribeStacks",
        "DescribeStackEvents",
        "SetStackPolicy",
    ):
        assert f"cloudformation:{action}" in stacks["Action"]
    on_any = sorted(sid for sid, statement in by_sid.items() if statement["Resource"] == ["*"])
    assert on_any == ["GrantInspectTemplatesAny", "GrantReadServiceCatalogTemplatesAny"], "only the documented ones"
    assert by_sid["GrantReadServiceCatalogTemplatesAny"]["Condition"] == {
        "StringEquals": {"s3:ExistingObjectTag/servicecatalog:provisioning": "true"}
    }
    assert not [sid for sid in by_sid if "StagingBucket" in sid], "launches read Service Catalog's copy of the template"
    image = real.product.template["Parameters"]["ImageId"]["Default"]
    assert by_sid["GrantReadParametersSsm"]["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}::parameter" + image}
    ]


def test_principal_association_takes_the_principal_from_a_pattern_constrained_parameter(real):
    t = TemplateAssert(real.portfolio)
    t.has_resource_properties(
        "AWS::ServiceCatalog::PortfolioPrincipalAssociation",
        {"PortfolioId": {"Ref": "Portfolio"}, "PrincipalARN": {"Ref": "PrincipalArn"}, "PrincipalType": "IAM"},
    )
    parameter = real.portfolio["Parameters"]["PrincipalArn"]
    assert "Default" not in parameter
    assert re.fullmatch(parameter["AllowedPattern"], PRINCIPAL)
    assert re.fullmatch(parameter["AllowedPattern"], "arn:aws-cn:iam::123456789012:group/Ops")
    for bad in ("*", "arn:aws:iam::123456789012:root", "arn:aws:iam::12345:role/x", "arn:aws:s3:::bucket"):
        assert not re.fullmatch(parameter["AllowedPattern"], bad), bad


def test_portfolio_names_come_from_parameters_with_project_defaults(real):
    t = TemplateAssert(real.portfolio)
    t.has_resource_properties(
        "AWS::ServiceCatalog::Portfolio",
        {"DisplayName": {"Ref": "PortfolioDisplayName"}, "ProviderName": {"Ref": "ProviderName"}},
    )
    assert real.portfolio["Parameters"]["PortfolioDisplayName"]["Default"] == "webapp (prod)"
    assert real.portfolio["Parameters"]["ProviderName"]["Default"] == "platform-team", "the config's Owner tag"
    t.has_resource_properties(
        "AWS::ServiceCatalog::CloudFormationProduct", {"Name": "webapp-prod", "Owner": {"Ref": "ProviderName"}}
    )


def test_seed_18_the_one_depends_on_is_the_constraint_waiting_for_the_product_association(real):
    depends = {k: v["DependsOn"] for k, v in real.portfolio["Resources"].items() if "DependsOn" in v}
    assert depends == {"LaunchConstraint": ["ProductAssociation"]}, "everything else is ordered by Ref/GetAtt"


def test_seed_10_launch_role_statements_name_only_what_the_portfolio_is_given_or_makes(real):
    from cfnbuild.deliver.catalog import references

    parameters = set(real.portfolio["Parameters"])
    role = real.portfolio["Resources"]["LaunchRole"]["Properties"]
    for statement in role["Policies"][0]["PolicyDocument"]["Statement"]:
        refs, _ = references(statement["Resource"])
        assert refs <= parameters | {"AWS::Partition", "AWS::Region", "AWS::AccountId"}, statement["Sid"]
        for resource in statement["Resource"]:
            assert resource == "*" or "Fn::Sub" in resource, "no literal ARN or bucket name"


def test_launch_constraint_uses_the_role_and_waits_for_the_product_association(real):
    TemplateAssert(real.portfolio).has_resource(
        "AWS::ServiceCatalog::LaunchRoleConstraint",
        {
            "DependsOn": ["ProductAssociation"],
            "Properties": {
                "PortfolioId": {"Ref": "Portfolio"},
                "ProductId": {"Ref": "Product"},
                "RoleArn": {"Fn::GetAtt": ["LaunchRole", "Arn"]},
                "LocalRoleName": Match.absent(),
            },
        },
    )


def test_each_kept_version_is_an_artifact_read_from_the_staging_bucket(tmp_path):
    root = _mini(tmp_path)
    first = _export(root)
    _configure(root, label="v2")
    second = _export(root)
    artifacts = _artifacts(second.portfolio)
    assert [a["Name"] for a in artifacts] == [first.version.version, second.version.version]
    for artifact, version in zip(artifacts, (first.version, second.version), strict=True):
        assert artifact["Info"]["LoadTemplateFromURL"] == {
            "Fn::Sub": [
                "https://${Bucket}.s3.${AWS::Region}.${AWS::URLSuffix}/" + version.key,
                {"Bucket": {"Ref": "StagingBucketName"}},
            ]
        }
        assert artifact["Type"] == "CLOUD_FORMATION_TEMPLATE"
        assert artifact["Description"] == "Mini queue (dev)"


# ------------------------------------------------------------------------------ manifest and versions


def test_manifest_names_product_version_key_and_hash(tmp_path):
    root = _mini(tmp_path)
    _export(root)
    manifest = _read(root, "manifest.json")
    text = (_catalog_dir(root) / "product.json").read_bytes()
    sha = __import__("hashlib").sha256(text).hexdigest()
    assert manifest["template_sha256"] == sha
    assert manifest["version"] == f"1.2.3+{sha[:12]}", "the project's version, then the template's hash"
    assert manifest["key"] == f"service-catalog/{sha}/product.json"
    assert manifest["product"] == "mini-dev"
    assert manifest["portfolio_stack"] == "mini-dev-catalog"
    assert manifest["description"] == "Mini queue (dev)"
    assert manifest["source"] == "output/dev/mini.json"


def test_project_version_falls_back_to_0_0_0_without_one(tmp_path):
    root = _mini(tmp_path, build=False)
    (root / "pyproject.toml").write_text(f'[tool.cfnbuild]\napp = "{MINI_MODULE}:app"\n')
    assert project_version(load_project(root)) == "0.0.0"


def test_an_unchanged_template_adds_no_version_and_a_changed_one_keeps_the_old(tmp_path):
    root = _mini(tmp_path)
    first = _export(root)
    again = _export(root)
    assert again.history.versions == first.history.versions == (first.version,)
    _configure(root, label="v2")
    second = _export(root)
    assert [v.version for v in second.history.versions] == [first.version.version, second.version.version]
    assert _read(root, "versions.json")["versions"][0]["version"] == first.version.version


def test_keep_offers_only_the_newest_versions_and_always_the_current(tmp_path):
    root = _mini(tmp_path)
    names = []
    for label in ("v1", "v2", "v3"):
        _configure(root, label=label)
        names.append(_export(root, keep=2).version.version)
    assert [a["Name"] for a in _artifacts(_read(root, "portfolio.json"))] == names[1:]
    _configure(root, label="v1")
    reverted = _export(root, keep=2)
    assert reverted.version.version == names[0], "the same template and project version: the same name"
    assert [v.version for v in reverted.history.versions] == [names[2], names[0]], "offered again, as the newest"


def test_two_exports_are_byte_identical(tmp_path, real):
    root = _mini(tmp_path)
    _export(root)
    first = {p.name: p.read_bytes() for p in _catalog_dir(root).iterdir()}
    _export(root)
    assert {p.name: p.read_bytes() for p in _catalog_dir(root).iterdir()} == first
    assert set(first) == {"product.json", "portfolio.json", "manifest.json", "versions.json"}
    again = build_export(load_project(ROOT), "prod", "webapp")
    assert again.files == real.files, "the real project's export renders the same bytes twice"
    for text in real.files.values():
        assert text.endswith("}\n")
        assert json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=True) + "\n" == text


# ------------------------------------------------------------------------------ gates


def test_gates_zero_cfn_lint_matches_on_both_templates(real):
    for path, text in real.templates.items():
        findings = cfn_lint(text, REGIONS, file=path.name) + skip_problems(text, file=path.name)
        assert not findings, "\n".join(map(str, findings))


def test_gates_zero_checkov_failures_and_every_skip_is_forced_by_the_provisioning_grant(real, tmp_path):
    """One checkov run over the export as written and over the portfolio with its skips removed."""
    for path, text in real.templates.items():
        (tmp_path / path.name).write_text(text)
    bare = json.loads(real.files[real.directory / "portfolio.json"])
    skipped = {
        logical_id: sorted(skip["id"] for skip in resource.pop("Metadata", {}).get("checkov", {}).get("skip", []))
        for logical_id, resource in bare["Resources"].items()
    }
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare/portfolio.json").write_text(json.dumps(bare))
    findings = checkov(
        [tmp_path / "product.json", tmp_path / "portfolio.json", tmp_path / "bare/portfolio.json"], root=tmp_path
    )
    shipped = [f for f in findings if not f.file.startswith("bare")]
    assert not shipped, "\n".join(map(str, shipped))
    forced = {(f.path.split(".", 1)[1], f.rule) for f in findings if f.file.startswith("bare")}
    _, policies = _provisioning_policies(bare)
    assert {resource for resource, _ in forced} <= set(policies), "only the policies on '*' need skips"
    assert {rule for _, rule in forced} == set(PROVISIONING_SKIPS), "each recorded skip is forced on some policy"
    for logical_id, ids in skipped.items():
        assert ids == (sorted(PROVISIONING_SKIPS) if logical_id in policies else []), logical_id


def test_seed_06_no_literal_region_account_or_arn_in_the_export(real):
    for path, text in real.templates.items():
        assert not re.search(r"arn:aws(-cn|-us-gov)?:", text), path
        # Twelve digits standing alone (not inside a content hash, which is hex and changes).
        assert not re.search(r"(?<![\w.])\d{12}(?![\w.])", text), path
        assert not re.search(r"\b(eu|us|ap)-(west|central|east)-\d\b", text), path


# ------------------------------------------------------------------------------ the command, offline


def test_export_writes_the_four_files_and_says_what_it_added(tmp_path, capsys):
    root = _mini(tmp_path)
    code, out, err = _cli(root, "--service-catalog", capsys=capsys)
    assert code == 0, err
    assert "Service Catalog export of mini-dev: version 1.2.3+" in out
    assert "product.json: AlertEmail had no constraint; added AllowedPattern: an e-mail address" in err
    assert sorted(p.name for p in _catalog_dir(root).iterdir()) == sorted(
        ["manifest.json", "portfolio.json", "product.json", "versions.json"]
    )
    code, out, err = _cli(root, "--service-catalog", capsys=capsys)
    assert code == 0
    assert "0 file(s) written, 4 unchanged" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "error: say what to export: --service-catalog (the only format so far)"),
        (("--service-catalog", "--local"), "error: --local only apply with --upload; add --upload or leave them out"),
        (("--service-catalog", "--keep", "0"), "error: --keep 0: keep 1 to 50 versions"),
        (("--service-catalog", "--env", "nope"), "error: unknown environment 'nope'; known: dev (one file per"),
        (("--service-catalog", "--stack", "other"), "error: unknown stack 'other'; this project has: mini"),
    ],
)
def test_bad_arguments_are_one_line_naming_the_option_and_write_nothing(tmp_path, capsys, args, message):
    root = _mini(tmp_path)
    code, _, err = _cli(root, *args, capsys=capsys)
    assert code == 2
    assert err.strip().startswith(message)
    assert len(err.strip().splitlines()) == 1
    assert not _catalog_dir(root).exists()


def test_a_missing_template_is_refused_naming_it_and_the_fix(tmp_path, capsys):
    root = _mini(tmp_path, build=False)
    code, _, err = _cli(root, "--service-catalog", capsys=capsys)
    assert code == 2
    assert err.strip() == "error: output/dev/mini.json does not exist; run 'cfnbuild build --env dev' first"
    assert not _catalog_dir(root).exists()


def test_a_stale_template_is_refused_like_deploy_refuses_it(tmp_path, capsys):
    root = _mini(tmp_path)
    _configure(root, label="changed", build=False)
    code, _, err = _cli(root, "--service-catalog", capsys=capsys)
    assert code == 2
    assert err.strip() == (
        "error: output/dev/mini.json is stale; run 'cfnbuild build --env dev' and review the diff before exporting"
    )
    assert not _catalog_dir(root).exists()


def test_versions_of_another_product_are_not_overwritten(tmp_path, capsys):
    root = _mini(tmp_path)
    _export(root)
    path = _catalog_dir(root) / "versions.json"
    path.write_text(path.read_text().replace('"environment": "dev"', '"environment": "prod"'))
    before = {p.name: p.read_bytes() for p in _catalog_dir(root).iterdir()}
    code, _, err = _cli(root, "--service-catalog", capsys=capsys)
    assert code == 2
    assert err.startswith(
        "error: output/service-catalog/versions.json holds the versions of mini in prod, not of mini in dev;"
    )
    assert {p.name: p.read_bytes() for p in _catalog_dir(root).iterdir()} == before


def test_an_unreadable_versions_file_is_named_with_the_fix(tmp_path, capsys):
    root = _mini(tmp_path)
    _catalog_dir(root).mkdir(parents=True)
    (_catalog_dir(root) / "versions.json").write_text("{not json")
    code, _, err = _cli(root, "--service-catalog", capsys=capsys)
    assert code == 2
    assert err.startswith("error: output/service-catalog/versions.json is not a versions file cfnbuild wrote")
    assert err.strip().endswith("restore it from version control")


def test_a_lint_finding_writes_nothing(tmp_path, capsys, monkeypatch):
    from cfnbuild.build.lint import Finding
    from cfnbuild.deliver import catalog

    root = _mini(tmp_path)
    finding = Finding("output/service-catalog/portfolio.json", "cfn-lint", "W9999", "Resources/X", "made up")
    monkeypatch.setattr(catalog, "lint_export", lambda *_: [finding])
    code, _, err = _cli(root, "--service-catalog", capsys=capsys)
    assert code == 1
    assert "output/service-catalog/portfolio.json: Resources/X: cfn-lint W9999: made up" in err
    assert "error: 1 cfn-lint finding(s) in the export; nothing was written" in err
    assert not _catalog_dir(root).exists()


def test_the_cli_lists_export_and_loads_it_when_asked():
    import click

    from cfnbuild.cli.main import cli

    context = click.Context(cli)
    assert "export" in cli.list_commands(context)
    assert cli.get_command(context, "export") is export_command


# ------------------------------------------------------------------------------ --upload, on the emulator

# moto warns of each ServiceCatalog type it leaves as a placeholder (see the module docstring).
placeholders = pytest.mark.filterwarnings("ignore:Tried to parse AWS::ServiceCatalog")


@placeholders
def test_upload_creates_the_portfolio_stack_on_the_emulator(mini, emulator):
    root, stack_name = mini
    export = _export(root)
    engine, out = _engine(root, emulator, export)
    upload(engine, export, Request("dev", "mini", param_overrides={"PrincipalArn": PRINCIPAL}, yes=True))
    cloudformation = emulator.client("cloudformation")
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    staging = StagingBucket(engine.aws)
    assert parameters["PrincipalArn"] == PRINCIPAL
    assert parameters["StagingBucketName"] == staging.name
    assert {t["Key"]: t["Value"] for t in stack["Tags"]}["ManagedBy"] == "cfnbuild"
    body = emulator.client("s3").get_object(Bucket=staging.name, Key=export.version.key)["Body"].read()
    assert body == (_catalog_dir(root) / "product.json").read_bytes(), "the staged template is product.json"
    assert "Plan to create stack " + stack_name in out.export_text()
    resources = cloudformation.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
    real_ones = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"]}
    assert set(real_ones) == {"LaunchRole", "LaunchRoleProvisioning1"}, (
        "moto leaves the ServiceCatalog types as placeholders"
    )
    attached = emulator.client("iam").list_attached_role_policies(RoleName=real_ones["LaunchRole"])["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [real_ones["LaunchRoleProvisioning1"]]
    outputs = json.loads((_catalog_dir(root) / "portfolio.eu-west-1.outputs.json").read_text())
    assert outputs["StackName"] == stack_name
    assert outputs["Outputs"]["LaunchRoleArn"].endswith(f":role/{real_ones['LaunchRole']}"), outputs
    assert outputs["NotReturned"] == ["PortfolioId", "ProductId"], "moto's ServiceCatalog placeholders have no ids"


@placeholders
def test_a_second_upload_with_no_change_creates_nothing(mini, emulator):
    root, stack_name = mini
    export = _export(root)
    engine, _ = _engine(root, emulator, export)
    upload(engine, export, Request("dev", "mini", param_overrides={"PrincipalArn": PRINCIPAL}, yes=True))
    cloudformation = emulator.client("cloudformation")
    events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
    staging = StagingBucket(engine.aws)
    staged = emulator.client("s3").head_object(Bucket=staging.name, Key=export.version.key)

    again = _export(root)
    engine, out = _engine(root, emulator, again)
    upload(engine, again, Request("dev", "mini", yes=True))  # PrincipalArn: as deployed
    assert f"{stack_name}: no changes" in out.export_text()
    assert _live_change_sets(emulator, stack_name) == []
    assert cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"] == events
    deployed = _body(cloudformation.get_template(StackName=stack_name)["TemplateBody"])
    assert [a["Name"] for a in _artifacts(deployed)] == [export.version.version], "no new artifact"
    restaged = emulator.client("s3").head_object(Bucket=staging.name, Key=export.version.key)
    assert restaged["VersionId"] == staged["VersionId"], "an unchanged template is not uploaded again"


@placeholders
def test_a_changed_product_adds_a_version_and_keeps_the_old(mini, emulator):
    root, stack_name = mini
    first = _export(root)
    engine, _ = _engine(root, emulator, first)
    upload(engine, first, Request("dev", "mini", param_overrides={"PrincipalArn": PRINCIPAL}, yes=True))
    _configure(root, label="v2", suffix=stack_name.removeprefix("mini-dev-").removesuffix("-catalog"))
    second = _export(root)
    engine, out = _engine(root, emulator, second)
    upload(engine, second, Request("dev", "mini", yes=True))
    cloudformation = emulator.client("cloudformation")
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    deployed = _body(cloudformation.get_template(StackName=stack_name)["TemplateBody"])
    assert [a["Name"] for a in _artifacts(deployed)] == [first.version.version, second.version.version]
    assert "Modify   Product" in out.export_text()
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert parameters["PrincipalArn"] == PRINCIPAL, "kept from the first upload"


@placeholders
def test_a_first_upload_without_the_principal_is_refused_naming_the_option(mini, emulator):
    root, stack_name = mini
    export = _export(root)
    engine, _ = _engine(root, emulator, export)
    with pytest.raises(
        UsageError, match=r"parameter PrincipalArn has no default and no value; pass --param PrincipalArn=VALUE"
    ):
        upload(engine, export, Request("dev", "mini", yes=True))
    with pytest.raises(emulator.client("cloudformation").exceptions.ClientError, match="does not exist"):
        emulator.client("cloudformation").describe_stacks(StackName=stack_name)


@placeholders
def test_a_bad_principal_is_refused_before_aws_is_asked(mini, emulator):
    root, _ = mini
    export = _export(root)
    engine, _ = _engine(root, emulator, export)
    with pytest.raises(UsageError, match=r"--param PrincipalArn: '\*' does not match PrincipalArn's pattern"):
        upload(engine, export, Request("dev", "mini", param_overrides={"PrincipalArn": "*"}, yes=True))


@placeholders
def test_a_version_never_staged_is_refused_before_anything_changes(mini, emulator):
    root, stack_name = mini
    _export(root)
    history = _read(root, "versions.json")
    ghost = Version("0.9.0+000000000000", "0" * 64, f"service-catalog/{'0' * 64}/product.json", "an old one")
    history["versions"].insert(0, ghost.__dict__)
    (_catalog_dir(root) / "versions.json").write_text(json.dumps(history))
    export = _export(root)
    assert export.history.versions[0].version == ghost.version
    engine, _ = _engine(root, emulator, export)
    with pytest.raises(
        Refused, match=r"version\(s\) 0\.9\.0\+000000000000 in output/service-catalog/versions\.json have no template"
    ):
        upload(engine, export, Request("dev", "mini", param_overrides={"PrincipalArn": PRINCIPAL}, yes=True))
    with pytest.raises(emulator.client("cloudformation").exceptions.ClientError, match="does not exist"):
        emulator.client("cloudformation").describe_stacks(StackName=stack_name)


@placeholders
def test_upload_without_a_terminal_or_yes_deploys_nothing(mini, emulator):
    root, stack_name = mini
    export = _export(root)
    engine, _ = _engine(root, emulator, export)
    with pytest.raises(Refused, match="not a terminal, so nobody can confirm"):
        upload(engine, export, Request("dev", "mini", param_overrides={"PrincipalArn": PRINCIPAL}))
    with pytest.raises(emulator.client("cloudformation").exceptions.ClientError, match="does not exist"):
        emulator.client("cloudformation").describe_stacks(StackName=stack_name)


@placeholders
def test_the_command_uploads_through_the_deploy_engine(mini, emulator, capsys, monkeypatch):
    """The whole command path, --upload included, against the emulator's endpoint."""
    root, stack_name = mini
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", THROWAWAY_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", THROWAWAY_CREDENTIALS["aws_secret_access_key"])
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    args = ("--service-catalog", "--upload", "--yes", "--endpoint-url", emulator.endpoint_url)
    code, out, err = _cli(root, *args, "--param", f"PrincipalArn={PRINCIPAL}", capsys=capsys)
    assert code == 0, err
    assert f"Plan to create stack {stack_name}" in out
    stack = emulator.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    code, out, err = _cli(root, *args, capsys=capsys)
    assert code == 0, err
    assert f"{stack_name}: no changes" in out


# ------------------------------------------------------------------------------ the grant helpers


def _statements(grants: Grants) -> list[dict]:
    return encode_to_dict(grants.document())["Statement"]


def test_provisioning_actions_come_from_the_schema_handlers():
    derived = provisioning_actions(["AWS::SQS::Queue"])
    assert "sqs:CreateQueue" in derived.actions
    assert "sqs:DeleteQueue" in derived.actions
    assert all(action.lower().startswith(("sqs:", "kms:", "iam:")) or ":" in action for action in derived.actions)
    assert list(derived.actions) == sorted(derived.actions, key=str.lower)


def test_provisioning_actions_leave_out_what_a_wildcard_covers_and_what_iam_does_not_know():
    from cfnbuild.build.provisioning import _known_action

    derived = provisioning_actions(["AWS::EC2::VPC", "AWS::AutoScaling::AutoScalingGroup", "AWS::S3::Bucket"])
    lower = {a.lower() for a in derived.actions}
    assert "ec2:describe*" in lower
    assert "ec2:describevpcs" not in lower, "covered by ec2:Describe*"
    assert derived.unknown, "the S3 and Auto Scaling schemas name API calls that are not IAM actions"
    assert not any(_known_action(action) for action in derived.unknown)
    assert all(_known_action(action) for action in derived.actions)
    assert not {a.lower() for a in derived.unknown} & lower


def test_provisioning_actions_refuse_a_type_whose_permissions_cannot_be_derived():
    with pytest.raises(ValueError, match="AWS::Made::Up has no resource schema in us-east-1"):
        provisioning_actions(["AWS::Made::Up"])
    with pytest.raises(ValueError, match="the Custom::Thing schema lists no handler permissions"):
        provisioning_actions(["Custom::Thing"])


def test_stack_operations_are_scoped_to_the_stack_pattern_and_refuse_any_stack():
    grants = Grants()
    grant_stack_operations(grants, "SC-*")
    statements = _statements(grants)
    assert statements[0]["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/SC-*"}
    ]
    assert statements[1] == {
        "Sid": "GrantInspectTemplatesAny",
        "Effect": "Allow",
        "Action": ["cloudformation:ValidateTemplate", "cloudformation:GetTemplateSummary"],
        "Resource": ["*"],
    }
    with pytest.raises(ValueError, match="give a stack name pattern like 'SC-\\*'"):
        grant_stack_operations(Grants(), "*")


def test_service_catalog_template_read_is_bound_to_the_provisioning_tag():
    grants = Grants()
    grant_service_catalog_template_read(grants)
    assert _statements(grants) == [
        {
            "Sid": "GrantReadServiceCatalogTemplatesAny",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": ["*"],
            "Condition": {"StringEquals": {"s3:ExistingObjectTag/servicecatalog:provisioning": "true"}},
        }
    ]


def test_ssm_parameters_read_names_public_parameters_without_an_account():
    grants = Grants()
    grant_ssm_parameters_read(grants, ["/aws/service/ami-amazon-linux-latest/x", "/team/ami"])
    assert _statements(grants)[0]["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}::parameter/aws/service/ami-amazon-linux-latest/x"},
        {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/team/ami"},
    ]
    with pytest.raises(ValueError, match="give an exact name"):
        grant_ssm_parameters_read(Grants(), ["/aws/service/*"])


def test_grant_provisioning_packs_statements_into_policies_under_the_iam_quota():
    from cfnbuild.deliver.catalog import Portfolio, PortfolioInputs

    many = [
        "AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::S3::Bucket", "AWS::RDS::DBCluster", "AWS::RDS::DBInstance",
        "AWS::AutoScaling::AutoScalingGroup", "AWS::Logs::LogGroup", "AWS::IAM::Role", "AWS::KMS::Key",
    ]  # fmt: skip
    stack = Stack("p", description="p", project="p", environment="dev")
    version = Version("1+a", "a" * 64, "service-catalog/a/product.json", "d")
    offered = Portfolio(stack, PortfolioInputs("p", "d", (version,), tuple(many), display_name="p", provider_name="p"))
    template = stack.to_dict()
    policies = TemplateAssert(template).of_type("AWS::IAM::ManagedPolicy")
    assert len(policies) >= 2
    granted = []
    for policy in policies.values():
        document = policy["Properties"]["PolicyDocument"]
        assert len(json.dumps(document, separators=(",", ":"))) <= MANAGED_POLICY_MAX_CHARS
        granted += [a for st in document["Statement"] for a in st["Action"]]
    assert sorted(granted, key=str.lower) == list(offered.provisioning.actions)
    derived = provisioning_actions(many).actions
    assert sorted(offered.provisioning.actions + offered.provisioning.unused, key=str.lower) == list(derived)
    assert set(offered.provisioning.unused) == {"iam:AttachRolePolicy", "iam:PassRole", "kms:CreateGrant"}, (
        "with no launch scope: no role passed, no policy attached, no key used"
    )
    assert not cfn_lint(stack.to_json(), REGIONS, file="p.json")


def test_provisioning_policies_record_their_checkov_skips_with_reasons(real):
    for resource in _provisioning_policies(real.portfolio)[1].values():
        skips = resource["Metadata"]["checkov"]["skip"]
        assert [s["id"] for s in skips] == sorted(PROVISIONING_SKIPS)
        assert all("no ARN can name them" in s["comment"] for s in skips)


# ------------------------------------------------------------------------------ the app artifact


def test_the_product_defaults_to_the_built_artifact_and_leaves_its_bucket_to_the_upload(real):
    parameters = real.product.template["Parameters"]
    (artifact,) = real.artifacts
    assert artifact.parameter == "AppArtifactKey"
    assert parameters["AppArtifactKey"]["Default"] == artifact.key
    assert re.fullmatch(parameters["AppArtifactKey"]["AllowedPattern"], artifact.key)
    assert re.fullmatch(r"releases/[0-9a-f]{16}/app\.tar\.gz", artifact.key), "the key the bootstrap checks"
    assert parameters["AppArtifactBucket"]["Default"] == "", "the staging bucket's name holds the account"
    assert real.manifest["artifacts"] == {
        "AppArtifactKey": {
            "key": artifact.key,
            "bucket_parameter": "AppArtifactBucket",
            "staged_in": "the staging bucket",
        }
    }
    stack = json.loads((ROOT / "output/prod/webapp.json").read_text())
    assert stack["Parameters"]["AppArtifactKey"]["Default"] == "", "deploy still sets it itself"


def test_the_staged_product_names_the_staging_bucket_and_differs_in_nothing_else(real):
    staged = json.loads(real.staged_product("cfnbuild-staging-111122223333-eu-west-1"))
    assert staged["Parameters"]["AppArtifactBucket"]["Default"] == "cfnbuild-staging-111122223333-eu-west-1"
    staged["Parameters"]["AppArtifactBucket"]["Default"] = ""
    assert staged == real.product.template


def test_a_recorded_artifact_without_a_bucket_parameter_is_refused_naming_it(tmp_path):
    from cfnbuild.deliver.catalog import CatalogError, build_artifacts

    template = json.loads((ROOT / "output/dev/webapp.json").read_text())
    del template["Parameters"]["AppArtifactBucket"]
    with pytest.raises(CatalogError, match="artifact AppArtifactKey has no parameter AppArtifactBucket"):
        build_artifacts(load_project(ROOT), template, "output/dev/webapp.json")


def test_stage_puts_the_artifact_and_the_product_naming_it_and_twice_uploads_nothing(real, emulator):
    from cfnbuild.deliver.catalog import stage

    target = Target("unused", "eu-west-1", endpoint_url=emulator.endpoint_url, credentials=dict(THROWAWAY_CREDENTIALS))
    staging = StagingBucket(Aws(target))
    said: list[str] = []
    key = stage(staging, real, said.append)
    assert key == real.version.key
    s3 = emulator.client("s3")
    (artifact,) = real.artifacts
    staged = s3.get_object(Bucket=staging.name, Key=artifact.key)
    assert staged["Body"].read() == artifact.path.read_bytes()
    product = json.loads(s3.get_object(Bucket=staging.name, Key=key)["Body"].read())
    assert product["Parameters"]["AppArtifactKey"]["Default"] == artifact.key
    assert product["Parameters"]["AppArtifactBucket"]["Default"] == staging.name
    assert said == [f"uploaded AppArtifactKey s3://{staging.name}/{artifact.key}"]
    versions = {k: s3.head_object(Bucket=staging.name, Key=k)["VersionId"] for k in (key, artifact.key)}
    said.clear()
    stage(staging, real, said.append)
    assert said == [f"already staged: AppArtifactKey s3://{staging.name}/{artifact.key}"]
    assert {k: s3.head_object(Bucket=staging.name, Key=k)["VersionId"] for k in (key, artifact.key)} == versions


# ------------------------------------------------------------------------------ a launch, evaluated
#
# What the launch role may do, proved by evaluating its policy documents (every statement of its
# inline and managed policies, the pseudo parameters resolved) against the requests a launch
# makes. moto cannot do this: it has no SimulatePrincipalPolicy or SimulateCustomPolicy, and its
# own evaluator (moto.iam.access_control.IAMPolicyStatement) turns an Allow whose condition fails
# into a Deny, where IAM ignores the statement. So the evaluation below is our own: Action and
# Resource wildcards (actions without regard to case, ARNs with), the condition operators the
# policies use (an operator it does not know fails the test), a missing condition key failing the
# condition, Deny over Allow, and nothing allowed that no statement allows.

ACCOUNT = "111122223333"
REGION = "eu-west-1"
LAUNCHED = f"SC-{ACCOUNT}-pp-abcdefghij234"  # a provisioned product's stack (SC-<account>-pp-<id>)
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
_SUB_NAME_OR_ATTR = re.compile(r"\$\{([^}]+)\}")


def _resolved(node, values: dict[str, str]):
    """``node`` with Fn::Sub and Ref resolved from ``values`` (pseudo parameters and template parameters)."""
    if isinstance(node, dict):
        if set(node) == {"Fn::Sub"}:
            text, extra = (node["Fn::Sub"], {}) if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"]
            names = {**values, **{k: _resolved(v, values) for k, v in extra.items()}}
            return _SUB_NAME_OR_ATTR.sub(lambda m: names[m.group(1)], text)
        if set(node) == {"Ref"}:
            return values[node["Ref"]]
        return {key: _resolved(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolved(item, values) for item in node]
    return node


@cache  # the same patterns are matched against every action of the products' resources
def _glob_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.IGNORECASE if ignore_case else 0)


def _glob(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _glob_regex(pattern, ignore_case).fullmatch(value) is not None


_OPERATORS = {
    "StringEquals": lambda expected, actual: expected == actual,
    "StringLike": _glob,
    "ArnEquals": lambda expected, actual: expected == actual,
    "ArnLike": _glob,
}


def _condition_holds(condition: dict, context: dict[str, str]) -> bool:
    for operator, tests in condition.items():
        compare = _OPERATORS[operator]
        for key, expected in tests.items():
            if key not in context:
                return False
            if not any(compare(e, context[key]) for e in (expected if isinstance(expected, list) else [expected])):
                return False
    return True


def _allowed(statements: list[dict], action: str, resource: str, context: dict[str, str] | None = None) -> bool:
    allowed = False
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if not any(_glob(a, action, ignore_case=True) for a in actions):
            continue
        if not any(_glob(r, resource) for r in resources):
            continue
        if not _condition_holds(statement.get("Condition", {}), context or {}):
            continue
        if statement["Effect"] == "Deny":
            return False
        allowed = True
    return allowed


VALUES = {
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
    "StagingBucketName": "cfnbuild-staging-abc",
}


def _launch_role_statements(portfolio: dict) -> list[dict]:
    """Every statement of the launch role's policies: its inline policy and the managed policies attached to it."""
    resources = portfolio["Resources"]
    documents = [p["PolicyDocument"] for p in resources["LaunchRole"]["Properties"].get("Policies", [])]
    documents += [
        r["Properties"]["PolicyDocument"]
        for r in resources.values()
        if r["Type"] == "AWS::IAM::ManagedPolicy" and {"Ref": "LaunchRole"} in r["Properties"]["Roles"]
    ]
    return [statement for document in documents for statement in _resolved(document, VALUES)["Statement"]]


def _launched_arn(action: str, logical_id: str) -> str:
    """The ARN a launch's request for ``action`` names, for the resource ``logical_id`` of the launched stack."""
    from cfnbuild.build.provisioning import action_resource_types

    service = action.split(":", 1)[0].lower()
    if service == "lambda":  # a function CloudFormation names: <stack>-<logical id>-<random>
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{LAUNCHED}-{logical_id}-1A2B3C4D5E6F"
    if service not in ("iam", "kms"):
        return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{logical_id.lower()}/made-at-launch"
    types = action_resource_types(action)
    if not types:
        return "*"  # an action without resource-level permission is requested on "*"
    if service == "kms":
        return KEY_ARN
    kind = next(t for t in ("role", "instance-profile", "policy") if t in types)
    return f"arn:aws:iam::{ACCOUNT}:{kind}/{LAUNCHED}-{logical_id}-1A2B3C4D5E6F"  # CloudFormation's generated name


def test_the_policy_evaluator_ignores_an_allow_whose_condition_fails_and_lets_deny_win():
    statements = [
        {"Effect": "Allow", "Action": ["iam:PassRole"], "Resource": ["arn:aws:iam::1:role/SC-*"],
         "Condition": {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com"]}}},
        {"Effect": "Allow", "Action": ["s3:Get*"], "Resource": ["*"]},
        {"Effect": "Deny", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::secret/*"]},
    ]  # fmt: skip
    assert _allowed(
        statements, "iam:passrole", "arn:aws:iam::1:role/SC-x", {"iam:PassedToService": "ec2.amazonaws.com"}
    )
    assert not _allowed(statements, "iam:PassRole", "arn:aws:iam::1:role/SC-x", {"iam:PassedToService": "x"})
    assert not _allowed(statements, "iam:PassRole", "arn:aws:iam::1:role/SC-x"), "a missing key fails the condition"
    assert not _allowed(statements, "iam:PassRole", "arn:aws:iam::1:role/sc-x"), "ARNs match with case"
    assert _allowed(statements, "s3:GetBucketPolicy", "arn:aws:s3:::b")
    assert not _allowed(statements, "s3:GetObject", "arn:aws:s3:::secret/key")
    assert not _allowed(statements, "s3:PutObject", "arn:aws:s3:::b")
    with pytest.raises(KeyError):
        _allowed(
            [{**statements[0], "Condition": {"NumericEquals": {"k": "1"}}}], "iam:PassRole", "arn:aws:iam::1:role/SC-x"
        )


def _create_requests(
    template: dict, services: set[str], withheld: set[str]
) -> list[tuple[str, str, str, dict[str, str]]]:
    """(what, action, ARN, context) for every action a resource's create handler lists, of the services used.

    Left out: actions the launch scope withholds on purpose (the Auto Scaling group's ``ssm:Get*``,
    which on "*" would read every parameter; the image parameter is requested, scoped, by the
    caller), services the product never uses (redshift for a secret attached to Aurora), names
    that are not IAM actions, KMS actions of non-key types (a key use, requested through the
    service that makes it: see _key_use_requests) and the role passes and policy attachments
    (see _role_requests, which know the services and policies).
    """
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    from cfnbuild.build.provisioning import _known_action

    linked = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
    requests = []
    for logical_id, resource in sorted(template["Resources"].items()):
        kind = resource["Type"]
        handlers = PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, kind).schema["handlers"]
        for action in handlers["create"]["permissions"]:
            service = action.split(":", 1)[0].lower()
            if service not in services or not _known_action(action) or action.lower() in withheld:
                continue
            if (service == "kms" and not kind.startswith("AWS::KMS::")) or action.lower() in (
                "iam:passrole",
                "iam:attachrolepolicy",
            ):
                continue
            arn = linked if action.lower() == "iam:createservicelinkedrole" else _launched_arn(action, logical_id)
            requests.append((f"{logical_id} ({kind})", action, arn, {}))
    return requests


def _key_use_requests(key_uses) -> list[tuple[str, str, str, dict[str, str]]]:
    return [
        (f"key use via {service}", action, KEY_ARN, {"kms:ViaService": f"{service}.{REGION}.amazonaws.com"})
        for service, actions in key_uses
        for action in actions
    ]


def _role_requests(template: dict) -> list[tuple[str, str, str, dict[str, str]]]:
    requests = []
    for logical_id, resource in sorted(template["Resources"].items()):
        if resource["Type"] != "AWS::IAM::Role":
            continue
        role = _launched_arn("iam:GetRole", logical_id)
        for statement in resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
            for service in statement["Principal"]["Service"]:
                requests.append((logical_id, "iam:PassRole", role, {"iam:PassedToService": service}))
        for policy in _resolved(resource["Properties"].get("ManagedPolicyArns", []), VALUES):
            requests.append((logical_id, "iam:AttachRolePolicy", role, {"iam:PolicyARN": policy}))
    return requests


def test_a_launch_role_only_create_is_allowed_every_action_the_products_resources_need(real):
    """Each resource's create handler (its schema), the KMS uses it needs, the roles it passes: all allowed."""
    from cfnbuild.deliver.catalog import launch_scope

    statements = _launch_role_statements(real.portfolio)
    template = real.product.template
    scope = launch_scope(template)
    stack = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{LAUNCHED}/0c7b1e20-0000-11ef-8000-0a1b2c3d4e5f"
    image = template["Parameters"]["ImageId"]["Default"]
    tagged = {"s3:ExistingObjectTag/servicecatalog:provisioning": "true"}
    requests = [
        *_create_requests(template, set(scope.services or ()), {a.lower() for a in scope.withheld}),
        *_key_use_requests(scope.key_uses),
        *_role_requests(template),
        *[("the launched stack", f"cloudformation:{a}", stack, {}) for a in ("CreateStack", "DescribeStackEvents")],
        ("Service Catalog's copy of the template", "s3:GetObject", "arn:aws:s3:::cf-templates-sc-abc/x.json", tagged),
        ("the image parameter", "ssm:GetParameters", f"arn:aws:ssm:{REGION}::parameter{image}", {}),
    ]
    denied = [f"{what}: {action} on {arn} {context}" for what, action, arn, context in requests
              if not _allowed(statements, action, arn, context)]  # fmt: skip
    assert not denied, "the launch role is denied what the launch needs:\n" + "\n".join(denied)
    assert len(requests) > 300, len(requests)
    assert {a for _, a, _, _ in _key_use_requests(scope.key_uses)} == {
        "kms:CreateGrant", "kms:DescribeKey", "kms:Decrypt", "kms:GenerateDataKey"
    }  # fmt: skip
    passes = {(a, c.get("iam:PassedToService")) for _, a, _, c in _role_requests(template) if a == "iam:PassRole"}
    assert {("iam:PassRole", "ec2.amazonaws.com"), ("iam:PassRole", "vpc-flow-logs.amazonaws.com")} <= passes


def test_the_database_secret_is_created_and_resolved_under_the_stacks_key_with_the_launch_role_alone(real):
    """The review's case: the secret under the stack's own key, and {{resolve:secretsmanager}} of it."""
    statements = _launch_role_statements(real.portfolio)
    secret = real.product.template["Resources"]["DbSecret"]
    assert secret["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["LogsKey", "Arn"]}
    via = {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}
    secret_arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{LAUNCHED}-DbSecret-AbCdEf"
    for action in ("secretsmanager:CreateSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"):
        assert _allowed(statements, action, secret_arn), action
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert _allowed(statements, action, KEY_ARN, via), f"{action} on the stack's key through Secrets Manager"
        assert not _allowed(statements, action, KEY_ARN), f"{action} straight to KMS"
    assert "{{resolve:secretsmanager:" in json.dumps(real.product.template), "the cluster resolves the secret"


def test_the_launch_role_is_denied_iam_and_keys_the_launched_stack_does_not_make(real):
    statements = _launch_role_statements(real.portfolio)
    admin = f"arn:aws:iam::{ACCOUNT}:role/Admin"
    launched_role = f"arn:aws:iam::{ACCOUNT}:role/{LAUNCHED}-InstanceRole-1A2B3C4D5E6F"
    administrator = {"iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess"}
    refused = [
        ("iam:AttachRolePolicy", admin, administrator),
        ("iam:AttachRolePolicy", admin, {"iam:PolicyARN": "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"}),
        ("iam:AttachRolePolicy", launched_role, administrator),
        ("iam:PutRolePolicy", admin, {}),
        ("iam:UpdateAssumeRolePolicy", admin, {}),
        ("iam:CreateRole", admin, {}),
        ("iam:DeleteRole", f"arn:aws:iam::{ACCOUNT}:role/team-SC-{ACCOUNT}-x", {}),
        ("iam:PassRole", admin, {"iam:PassedToService": "ec2.amazonaws.com"}),
        # lambda.amazonaws.com is passed the rotation function's role (the transform's expansion)
        ("iam:PassRole", launched_role, {"iam:PassedToService": "ecs-tasks.amazonaws.com"}),
        ("iam:PassRole", launched_role, {}),
        ("iam:CreateServiceLinkedRole", admin, {}),
        ("iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/x", {}),
        ("iam:AttachUserPolicy", f"arn:aws:iam::{ACCOUNT}:user/x", administrator),
        ("iam:PutRolePolicy", f"arn:aws:iam::444455556666:role/{LAUNCHED}-InstanceRole-1", {}),
        ("kms:Decrypt", KEY_ARN, {}),
        ("kms:Decrypt", KEY_ARN, {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}),
        ("kms:CreateGrant", KEY_ARN, {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}),
        ("kms:ScheduleKeyDeletion", KEY_ARN.replace(ACCOUNT, "444455556666"), {}),
        ("kms:Decrypt", KEY_ARN.replace(REGION, "us-east-1"), {"kms:ViaService": f"rds.{REGION}.amazonaws.com"}),
        ("redshift:DescribeClusters", "*", {}),
        ("s3tables:CreateTableBucket", "*", {}),
        ("ssm:GetParameter", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/prod/db-password", {}),
        ("cloudformation:DeleteStack", f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/webapp-prod/1", {}),
        ("s3:GetObject", f"arn:aws:s3:::{VALUES['StagingBucketName']}/{KEY_PREFIX}/a/product.json", {}),
        ("s3:GetObject", "arn:aws:s3:::another-bucket/x", {}),
    ]
    allowed = [
        f"{action} on {arn} {context}" for action, arn, context in refused if _allowed(statements, action, arn, context)
    ]
    assert not allowed, "the launch role may do more than the launch needs:\n" + "\n".join(allowed)


NESTED = f"{LAUNCHED}-DbSecretRotationStack-1QWERTYUIOP2A"  # the nested stack, named after its parent


def test_a_launch_role_only_launch_may_expand_the_rotation_transform_and_make_what_it_expands_into(real):
    """The transform's change set, its application, the nested stack and its function, role and permission."""
    from cfnbuild.deliver.catalog import TRANSFORM_EXPANSIONS

    template = real.product.template
    assert template["Transform"] == "AWS::SecretsManager-2024-09-16"
    statements = _launch_role_statements(real.portfolio)
    expansion = TRANSFORM_EXPANSIONS[template["Transform"]]
    expanded = {"Resources": {f"Rotation{t.split('::')[-1]}": {"Type": t} for t in expansion.resource_types}}
    services = {t.split("::")[1].lower() for t in expansion.resource_types} | {"ec2", "s3"}
    transform = f"arn:aws:cloudformation:{REGION}:aws:transform/"
    application = "arn:aws:serverlessrepo:us-east-1:297356227824:applications/SecretsManagerRDSMySQLRotationSingleUser"
    role = f"arn:aws:iam::{ACCOUNT}:role/{NESTED}-SecretsManagerRDSMySQLRotationSi-1A2B3C4D5E6F"
    nested = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{NESTED}/0c7b1e20-0000-11ef-8000-0a1b2c3d4e5f"
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{NESTED}-SecretsManagerRDSMySQLRotati-1A2B3C4D5E6F"
    where = {"cloudformation": nested, "iam": role, "lambda": function}
    requests = [
        (w, a, where.get(a.split(":")[0], arn), c)
        for w, a, arn, c in _create_requests(expanded, services, set())
        if a not in expansion.withheld  # the function code reads: not granted, see Expansion.withheld
    ]
    requests += [
        ("the transform", "cloudformation:CreateChangeSet", transform + "SecretsManager-2024-09-16", {}),
        ("the SAM transform of its output", "cloudformation:CreateChangeSet", transform + "Serverless-2016-10-31", {}),
        *[("the rotation application", f"serverlessrepo:{a}", application, {})
          for a in ("GetApplication", "CreateCloudFormationTemplate", "GetCloudFormationTemplate")],
        ("the function's role", "iam:PassRole", role, {"iam:PassedToService": "lambda.amazonaws.com"}),
        *[("the function's role", "iam:AttachRolePolicy", role,
           {"iam:PolicyARN": f"arn:aws:iam::aws:policy/service-role/{p}"})
          for p in ("AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole")],
    ]  # fmt: skip
    denied = [f"{what}: {action} on {arn} {context}" for what, action, arn, context in requests
              if not _allowed(statements, action, arn, context)]  # fmt: skip
    assert not denied, "the launch role is denied what the transform's expansion needs:\n" + "\n".join(denied)
    assert {a for _, a, _, _ in requests} >= {"lambda:CreateFunction", "lambda:AddPermission", "iam:CreateRole",
                                              "cloudformation:CreateStack", "ec2:DescribeSubnets"}  # fmt: skip
    manifest = real.manifest["launch_role"]["transforms"]["AWS::SecretsManager-2024-09-16"]
    assert manifest["expands_to"] == list(expansion.resource_types)
    assert "AWS::Lambda::Function" in real.manifest["launch_role"]["resource_types"]


def test_the_transform_grants_stop_at_the_launched_stacks_and_the_rotation_applications(real):
    statements = _launch_role_statements(real.portfolio)
    transform = f"arn:aws:cloudformation:{REGION}:aws:transform/"
    role = f"arn:aws:iam::{ACCOUNT}:role/{NESTED}-SecretsManagerRDSMySQLRotationSi-1A2B3C4D5E6F"
    refused = [
        ("cloudformation:CreateChangeSet", transform + "Include", {}),
        ("cloudformation:CreateChangeSet", transform + "LanguageExtensions", {}),
        ("cloudformation:CreateChangeSet", f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/webapp-prod/1", {}),
        ("cloudformation:CreateStack", f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/webapp-prod/1", {}),
        ("cloudformation:DeleteStack", f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/other-SC-x/1", {}),
        ("cloudformation:UpdateTerminationProtection", f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/x/1", {}),
        ("serverlessrepo:CreateCloudFormationTemplate", "arn:aws:serverlessrepo:us-east-1:1:applications/Other", {}),
        ("serverlessrepo:CreateApplication", "*", {}),
        ("iam:AttachRolePolicy", role, {"iam:PolicyARN": "arn:aws:iam::aws:policy/AWSLambda_FullAccess"}),
        ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/Admin", {"iam:PassedToService": "lambda.amazonaws.com"}),
        ("lambda:UpdateFunctionCode", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:payments", {}),
        ("lambda:CreateFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:other-SC-x", {}),
        ("s3:GetObject", "arn:aws:s3:::awsserverlessrepo-changesets-abc/x.zip", {}),
    ]
    allowed = [f"{a} on {arn} {c}" for a, arn, c in refused if _allowed(statements, a, arn, c)]
    assert not allowed, "the launch role may do more than the transform needs:\n" + "\n".join(allowed)


@pytest.mark.parametrize(
    "declared", ["AWS::Include", ["AWS::SecretsManager-2024-09-16", "AWS::LanguageExtensions"], "MyMacro"]
)
def test_a_template_with_a_transform_whose_expansion_is_unknown_is_refused_in_one_line(declared):
    from cfnbuild.deliver.catalog import CatalogError, launch_scope

    with pytest.raises(CatalogError) as raised:
        launch_scope({"Transform": declared, "Resources": {}})
    message = str(raised.value)
    assert "\n" not in message
    assert re.fullmatch(
        r"Transform \S+: what it expands into at launch is not known, .* add it to TRANSFORM_EXPANSIONS in "
        r"cfnbuild/deliver/catalog/launch_role\.py with the AWS document that says what it makes, "
        r"or leave it out of the stack",
        message,
    ), message


def test_a_transform_declared_by_a_function_is_refused_naming_the_fix():
    from cfnbuild.deliver.catalog import CatalogError, launch_scope

    with pytest.raises(CatalogError, match=r"must be a literal string .*declare the transform by its name"):
        launch_scope({"Transform": [{"Name": "AWS::Include", "Parameters": {}}], "Resources": {}})


def test_the_rotation_transform_adds_its_expansion_to_the_launch_scope():
    from cfnbuild.deliver.catalog import launch_scope

    scope = launch_scope({"Transform": "AWS::SecretsManager-2024-09-16", "Resources": {}})
    assert scope.transforms == ("SecretsManager-2024-09-16", "Serverless-2016-10-31")
    assert scope.applications == ("SecretsManager*",)
    assert scope.passed_to == ("lambda.amazonaws.com",)
    assert set(scope.services or ()) >= {"cloudformation", "iam", "lambda"}


# ------------------------------------------------------------------------------ the launch scope


def _role(services, **properties) -> dict:
    statement = {"Effect": "Allow", "Principal": {"Service": services}, "Action": ["sts:AssumeRole"]}
    document = {"Version": "2012-10-17", "Statement": [statement]}
    return {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": document, **properties}}


def test_launch_scope_reads_trusted_services_paths_and_attached_policies_from_the_product():
    from cfnbuild.deliver.catalog import launch_scope

    managed = {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"}
    template = {
        "Resources": {
            "App": _role(["ec2.amazonaws.com", "ssm.amazonaws.com"], Path="/app/", ManagedPolicyArns=[managed]),
            "Tasks": _role("ecs-tasks.amazonaws.com", Path="/app/", ManagedPolicyArns=[{"Ref": "Extra"}]),
            "Extra": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"Path": "/app/", "PolicyDocument": {}}},
            "Profile": {"Type": "AWS::IAM::InstanceProfile", "Properties": {"Roles": [{"Ref": "App"}]}},
        }
    }
    scope = launch_scope(template)
    assert scope.paths == ("/", "/app/")
    assert scope.passed_to == ("ec2.amazonaws.com", "ecs-tasks.amazonaws.com", "ssm.amazonaws.com")
    assert scope.attached_policies == (
        {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/app/SC-*"},
        managed,
    ), "the stack's own policy by the name pattern, the AWS managed one as written"
    assert scope.key_uses == ()
    assert scope.services == ("iam",)


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        (
            _role(["ec2.amazonaws.com"], ManagedPolicyArns=[{"Ref": "PolicyArn"}]),
            r"Role: ManagedPolicyArns entry \{\"Ref\": \"PolicyArn\"\} cannot be named in the launch role's policy",
        ),
        (_role(["ec2.amazonaws.com"], Path={"Ref": "RolePath"}), r"Role \(AWS::IAM::Role\): Path is .*plain string"),
    ],
)
def test_a_role_the_launch_role_cannot_scope_to_is_refused_naming_it_and_the_fix(resource, message):
    from cfnbuild.deliver.catalog import CatalogError, launch_scope

    with pytest.raises(CatalogError, match=message):
        launch_scope({"Resources": {"Role": resource}})


def test_key_uses_come_from_the_resources_a_customer_key_encrypts():
    from cfnbuild.deliver.catalog import launch_scope

    key = {"Fn::GetAtt": ["Key", "Arn"]}
    template = {
        "Resources": {
            "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
            "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {"KmsKeyId": key}},
            "Cluster": {"Type": "AWS::RDS::DBCluster", "Properties": {"StorageEncrypted": True, "KmsKeyId": key}},
            "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"KmsKeyId": key}},
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"KmsMasterKeyId": "alias/aws/sns"}},
            "Db": {
                "Type": "AWS::RDS::DBInstance",
                "Properties": {"PerformanceInsightsKMSKeyId": {"Fn::If": ["Encrypt", key, {"Ref": "AWS::NoValue"}]}},
            },
        }
    }
    scope = launch_scope(template)
    assert scope.key_uses == (
        ("logs", ()),
        ("rds", ("kms:CreateGrant", "kms:DescribeKey")),
        ("secretsmanager", ("kms:Decrypt", "kms:GenerateDataKey")),
    ), "the AWS managed alias/aws/sns needs nothing of the launch role"


def test_a_secret_resolved_by_a_dynamic_reference_needs_decrypt_through_secrets_manager():
    from cfnbuild.deliver.catalog import launch_scope

    password = {"Fn::Sub": "{{resolve:secretsmanager:${Secret}:SecretString:password}}"}
    template = {"Resources": {"Db": {"Type": "AWS::RDS::DBCluster", "Properties": {"MasterUserPassword": password}}}}
    assert launch_scope(template).key_uses == (("secretsmanager", ("kms:Decrypt",)),)


def test_a_resource_encrypted_by_a_service_whose_key_needs_are_unknown_is_refused_with_the_fix():
    from cfnbuild.deliver.catalog import CatalogError, launch_scope

    table = {"SSESpecification": {"SSEEnabled": True, "KMSMasterKeyId": {"Ref": "Key"}}}
    template = {"Resources": {"Table": {"Type": "AWS::DynamoDB::Table", "Properties": table}}}
    with pytest.raises(
        CatalogError,
        match=r"Table\.SSESpecification\.KMSMasterKeyId \(AWS::DynamoDB::Table\) names a KMS key, .* add 'dynamodb' "
        r"to KMS_USE_BY_SERVICE in cfnbuild/deliver/catalog/launch_role\.py with the AWS document",
    ):
        launch_scope(template)


@pytest.mark.parametrize(
    ("resource_type", "service"),
    [
        ("AWS::EC2::VPC", "ec2"),
        ("AWS::ElasticLoadBalancingV2::Listener", "elasticloadbalancing"),
        ("AWS::CertificateManager::Certificate", "acm"),
        ("AWS::S3::Bucket", "s3"),
        ("AWS::SecretsManager::SecretTargetAttachment", "secretsmanager"),
    ],
)
def test_a_types_service_is_the_prefix_its_namespace_spells_else_the_one_its_handlers_name_most(resource_type, service):
    from cfnbuild.deliver.catalog import service_of_type

    assert service_of_type(resource_type) == service


def test_the_services_a_product_uses_are_its_types_and_their_companions():
    from cfnbuild.deliver.catalog import product_services

    assert product_services(["AWS::Budgets::Budget", "AWS::SNS::Topic"]) == ("billing", "budgets", "sns")


def test_a_launch_scope_refuses_a_stack_pattern_or_path_that_would_widen_it():
    from cfnbuild.build.provisioning import LaunchScope

    with pytest.raises(ValueError, match="give a name prefix and '\\*', like 'SC-\\*'"):
        LaunchScope(stack_names="*")
    with pytest.raises(ValueError, match="IAM path 'app': give a path like '/' or '/app/'"):
        LaunchScope(paths=("app",))


def test_iam_actions_on_users_or_groups_are_refused_for_a_launch_role():
    from cfnbuild.deliver.catalog import Portfolio, PortfolioInputs

    stack = Stack("p", description="p", project="p", environment="dev")
    version = Version("1+a", "a" * 64, "service-catalog/a/product.json", "d")
    inputs = PortfolioInputs("p", "d", (version,), ("AWS::IAM::User",), display_name="p", provider_name="p")
    with pytest.raises(
        ValueError, match=r"iam:\w+ acts on (user|group); a launch role is granted IAM actions only on the roles"
    ):
        Portfolio(stack, inputs)
