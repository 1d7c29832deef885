"""The moves of a stack refactor and the templates it is created with, on small templates and the flagship.

Pure functions of the deployed stacks and the project's templates: no AWS call. The rules come
from CloudFormation's stack refactoring considerations
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stack-refactoring.html).

The flagship test starts from the previous release's single-stack template
(tests/data/previous-release/dev/webapp.json, a copy of output/dev/webapp.json before the split)
and a three-stack layout made from it by partitioning its resources by blueprint as the shared
design of the split says; once the split's templates are built (output/dev holds network.json,
data.json and webapp.json), SPLIT_DIR points at them and the same tests check the real ones.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cfnbuild.build.stateful import SNAPSHOT_TYPES, is_stateful
from cfnbuild.deploy.refactor.moves import MAX_STACKS, DeployedStack, RefactorRefused, compute_moves
from cfnbuild.deploy.refactor.resolve import CannotResolve
from cfnbuild.deploy.refactor.templates import missing_inputs, refactor_templates

ROOT = Path(__file__).resolve().parents[3]
PREVIOUS = ROOT / "tests/data/previous-release/dev/webapp.json"
# The split's own templates once they are built (after the merge), else the partition below.
SPLIT_DIR: Path | None = ROOT / "output/dev" if (ROOT / "output/dev/network.json").exists() else None
ARN = "arn:aws:cloudformation:eu-west-1:123456789012:stack/{}/1"


def _deployed(name: str, template: dict, parameters: dict | None = None, policy: str | None = None) -> DeployedStack:
    live = {lid: r["Type"] for lid, r in template["Resources"].items() if r.get("Condition") != "Never"}
    return DeployedStack(name, ARN.format(name), "UPDATE_COMPLETE", template, parameters or {}, live, policy)


OLD = {
    "Parameters": {"Label": {"Type": "String"}, "Zones": {"Type": "List<AWS::EC2::AvailabilityZone::Name>"}},
    "Conditions": {
        "Labelled": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Label"}, ""]}]},
        "Never": {"Fn::Equals": ["a", "b"]},
    },
    "Resources": {
        "Key": {
            "Type": "AWS::KMS::Key",
            "Properties": {"Description": {"Fn::Sub": "${AWS::StackName} key for ${Label}"}},
        },
        "Store": {
            "Type": "AWS::SQS::Queue",
            "DependsOn": ["Key", "App"],
            "Metadata": {"cfnbuild": {"stateful": True}},
            "Properties": {
                "KmsMasterKeyId": {"Fn::GetAtt": ["Key", "Arn"]},
                "QueueName": {"Fn::If": ["Labelled", {"Ref": "Label"}, {"Ref": "AWS::NoValue"}]},
                "Tags": [{"Key": "zone", "Value": {"Fn::Select": [0, {"Ref": "Zones"}]}}],
            },
        },
        "App": {
            "Type": "AWS::SNS::Topic",
            "Properties": {
                "DisplayName": {"Fn::Sub": "${Store.QueueName} in ${AWS::Region}"},
                "TopicName": {"Ref": "Label"},
            },
        },
        "Ghost": {"Type": "AWS::SNS::Topic", "Condition": "Never"},
    },
    "Outputs": {"StoreUrl": {"Value": {"Ref": "Store"}}},
}


def _split() -> dict[str, dict]:
    network = {
        "Resources": {"Key": OLD["Resources"]["Key"]},
        "Outputs": {"KeyArn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}}},
    }
    data = {
        "Resources": {"Store": OLD["Resources"]["Store"]},
        "Outputs": {"StoreName": {"Value": {"Fn::GetAtt": ["Store", "QueueName"]}}},
    }
    webapp = {"Resources": {"App": OLD["Resources"]["App"], "Ghost": OLD["Resources"]["Ghost"]}}
    return {"network-dev": network, "data-dev": data, "webapp-dev": webapp}


def _layout():
    deployed = {
        "network-dev": None,
        "data-dev": None,
        "webapp-dev": _deployed("webapp-dev", OLD, {"Label": "shop", "Zones": "eu-west-1a,eu-west-1b"}),
    }
    wanted = _split()
    return compute_moves(deployed, wanted), deployed, wanted


def test_resources_whose_template_moved_are_moves_and_the_new_stacks_are_created():
    layout, _, _ = _layout()
    assert {(m.logical_id, m.source, m.destination) for m in layout.moves} == {
        ("Key", "webapp-dev", "network-dev"),
        ("Store", "webapp-dev", "data-dev"),
    }
    assert layout.new_stacks == ("network-dev", "data-dev")
    assert layout.holders == {"network-dev": ("Key",), "data-dev": ("Store",), "webapp-dev": ("App",)}


def test_a_reference_to_a_resource_now_elsewhere_becomes_an_import_of_an_export_its_holder_adds():
    templates = refactor_templates(*_layout())
    store = templates["data-dev"]["Resources"]["Store"]
    assert store["Properties"]["KmsMasterKeyId"] == {"Fn::ImportValue": "network-dev-Key-Arn"}
    assert templates["network-dev"]["Outputs"]["RefactorKeyArn"] == {
        "Value": {"Fn::GetAtt": ["Key", "Arn"]},
        "Export": {"Name": "network-dev-Key-Arn"},
    }
    display = templates["webapp-dev"]["Resources"]["App"]["Properties"]["DisplayName"]
    assert display == {
        "Fn::Sub": [
            "${RefactorStoreQueueName} in ${AWS::Region}",
            {"RefactorStoreQueueName": {"Fn::ImportValue": "data-dev-Store-QueueName"}},
        ]
    }
    assert templates["webapp-dev"]["Outputs"]["StoreUrl"] == {"Value": {"Fn::ImportValue": "data-dev-Store"}}


def test_a_moved_resource_has_its_parameters_conditions_and_stack_name_written_out_and_no_cross_stack_depends_on():
    templates = refactor_templates(*_layout())
    store = templates["data-dev"]["Resources"]["Store"]
    assert store["Properties"]["QueueName"] == "shop"
    assert store["Properties"]["Tags"] == [{"Key": "zone", "Value": {"Fn::Select": [0, ["eu-west-1a", "eu-west-1b"]]}}]
    assert "DependsOn" not in store
    key = templates["network-dev"]["Resources"]["Key"]
    assert key["Properties"]["Description"] == "webapp-dev key for shop"
    for name in ("network-dev", "data-dev"):
        assert "Parameters" not in templates[name]
        assert "Conditions" not in templates[name]
        assert "AWS::StackName" not in json.dumps(templates[name])
    # the stack that stays keeps its parameters, conditions and its own resources as deployed
    assert templates["webapp-dev"]["Parameters"] == OLD["Parameters"]
    assert templates["webapp-dev"]["Resources"]["App"]["Properties"]["TopicName"] == {"Ref": "Label"}
    assert "Ghost" not in templates["webapp-dev"]["Resources"]  # never deployed: its condition is false


def test_a_new_stack_declares_the_project_outputs_that_name_only_its_resources():
    templates = refactor_templates(*_layout())
    assert templates["network-dev"]["Outputs"]["KeyArn"] == {"Value": {"Fn::GetAtt": ["Key", "Arn"]}}
    assert templates["data-dev"]["Outputs"]["StoreName"] == {"Value": {"Fn::GetAtt": ["Store", "QueueName"]}}


def test_nothing_moves_when_every_resource_is_where_the_templates_put_it():
    deployed = {name: _deployed(name, template) for name, template in _split().items()}
    deployed["webapp-dev"] = _deployed("webapp-dev", _split()["webapp-dev"])
    assert compute_moves(deployed, _split()).moves == ()


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("twice", "Key is in the templates of both network-dev and data-dev; a resource can move to one stack only"),
        (
            "dropped",
            "Key (AWS::KMS::Key) of webapp-dev is in none of the templates of network-dev, data-dev, webapp-dev",
        ),
        ("retyped", "Key is a AWS::KMS::Key in webapp-dev but a AWS::SNS::Topic in the template of network-dev"),
        ("policy", "webapp-dev has a stack policy, and CloudFormation's stack refactoring does not support stacks"),
    ],
)
def test_what_a_refactor_cannot_do_is_refused_in_one_line(change, said):
    wanted = _split()
    policy = None
    if change == "twice":
        wanted["data-dev"]["Resources"] = {**wanted["data-dev"]["Resources"], "Key": OLD["Resources"]["Key"]}
    elif change == "dropped":
        wanted["network-dev"] = {"Resources": {"Other": {"Type": "AWS::SNS::Topic"}}}
    elif change == "retyped":
        wanted["network-dev"] = {"Resources": {"Key": {"Type": "AWS::SNS::Topic"}}}
    else:
        policy = '{"Statement":[]}'
    deployed = {
        "network-dev": None,
        "data-dev": None,
        "webapp-dev": _deployed("webapp-dev", OLD, {"Label": "x"}, policy),
    }
    with pytest.raises(RefactorRefused) as info:
        compute_moves(deployed, wanted)
    assert said in str(info.value)
    assert "\n" not in str(info.value)


def test_more_than_five_stacks_is_refused():
    resources = {f"T{i}": {"Type": "AWS::SNS::Topic"} for i in range(MAX_STACKS + 1)}
    deployed = {"s0-dev": _deployed("s0-dev", {"Resources": resources})}
    wanted = {f"s{i}-dev": {"Resources": {f"T{i}": resources[f"T{i}"]}} for i in range(MAX_STACKS + 1)}
    with pytest.raises(RefactorRefused, match=r"touch 6 stacks \(s0-dev, .*\); one stack refactor takes at most 5"):
        compute_moves({**dict.fromkeys(wanted), **deployed}, wanted)


def test_a_moved_resource_using_a_condition_the_deployed_parameters_do_not_decide_is_refused():
    layout, deployed, wanted = _layout()
    stack = deployed["webapp-dev"]
    deployed["webapp-dev"] = DeployedStack(
        stack.name, stack.stack_id, stack.status, stack.template, {}, stack.resources
    )
    with pytest.raises(CannotResolve, match="Store of webapp-dev: condition Labelled is not decided"):
        refactor_templates(layout, deployed, wanted)


def test_a_moved_resource_using_a_noecho_parameter_is_refused_for_its_value_is_not_returned():
    layout, deployed, wanted = _layout()
    stack = deployed["webapp-dev"]
    template = json.loads(json.dumps(stack.template))
    template["Parameters"]["Label"]["NoEcho"] = True
    deployed["webapp-dev"] = DeployedStack(
        stack.name, stack.stack_id, stack.status, template, {"Label": "****"}, stack.resources
    )
    with pytest.raises(CannotResolve, match="Key of webapp-dev: uses NoEcho parameter Label, whose deployed value"):
        refactor_templates(layout, deployed, wanted)


def test_moving_out_of_a_stack_deployed_with_a_transform_is_refused():
    stack = _deployed("webapp-dev", {**OLD, "Transform": "AWS::SecretsManager-2024-09-16"}, {"Label": "x"})
    made = {**stack.resources, "StoreRotationLambda": "AWS::Serverless::Application"}  # made by the transform
    stack = DeployedStack(stack.name, stack.stack_id, stack.status, stack.template, stack.parameters, made)
    with pytest.raises(RefactorRefused, match="webapp-dev is deployed with Transform AWS::SecretsManager-2024-09-16"):
        compute_moves({"network-dev": None, "data-dev": None, "webapp-dev": stack}, _split())


# -- the flagship: the previous release's single stack to network, data, webapp ------------------------

# The split by blueprint (the shared design): keys, VPC and what routes it, flow logs and the security
# groups go to network; the database, the buckets, the app's log groups and the alert topic to data.
NETWORK = re.compile(
    r"^(LogsKey|Vpc|.*Subnet\d|.*SubnetRoutes\d|InternetGateway.*|NatAddress\d|NatGateway\d|.*RouteTable\d?|"
    r".*DefaultRoute\d?|S3Endpoint|FlowLog.*|CloseDefaultSecurityGroup.*|AlbSecurityGroup|AppSecurityGroup|"
    r"DbSecurityGroup|AlbToAppEgress|AppFromAlbIngress|AppToDbEgress|DbFromAppIngress)$"
)
DATA = re.compile(
    r"^(Db(?!.*Alarm).*|AssetsBucket.*|LogBucket.*|AppLogGroup|BootstrapLogGroup|Nginx.*LogGroup|AlarmTopic.*)$"
)
FLAGSHIP_PARAMETERS = {
    "AppArtifactBucket": "", "AppArtifactKey": "releases/app.zip", "AvailabilityZones": "eu-west-1a,eu-west-1b",
    "BudgetRegion": "us-east-1", "DbEngineVersion": "8.0.mysql_aurora.3.05.2", "DomainName": "", "HostedZoneId": "",
    "ImageId": "ami-0123456789abcdef0", "MonthlyBudgetUsd": "0", "NatMode": "single",
}  # fmt: skip


def _flagship_split(previous: dict) -> dict[str, dict]:
    if SPLIT_DIR is not None:
        return {f"{s}-dev": json.loads((SPLIT_DIR / f"{s}.json").read_text()) for s in ("network", "data", "webapp")}
    split: dict[str, dict] = {f"{s}-dev": {"Resources": {}} for s in ("network", "data", "webapp")}
    for logical_id, resource in previous["Resources"].items():
        stack = "network" if NETWORK.match(logical_id) else "data" if DATA.match(logical_id) else "webapp"
        split[f"{stack}-dev"]["Resources"][logical_id] = resource
    return split


def _flagship_source(previous: dict) -> DeployedStack:
    """webapp-dev as the previous release deployed it with FLAGSHIP_PARAMETERS (every Condition of it false)."""
    live = {lid: r["Type"] for lid, r in previous["Resources"].items() if "Condition" not in r}
    return DeployedStack("webapp-dev", ARN.format("webapp-dev"), "UPDATE_COMPLETE", previous, FLAGSHIP_PARAMETERS, live)


def test_the_flagship_as_deployed_is_refused_for_its_transform_in_one_line():
    previous = json.loads(PREVIOUS.read_text())
    assert previous["Transform"] == "AWS::SecretsManager-2024-09-16"  # DbSecretRotation's HostedRotationLambda
    with pytest.raises(RefactorRefused) as info:
        compute_moves(
            {"network-dev": None, "data-dev": None, "webapp-dev": _flagship_source(previous)}, _flagship_split(previous)
        )
    assert str(info.value).startswith("webapp-dev is deployed with Transform AWS::SecretsManager-2024-09-16")


def test_the_flagship_split_moves_every_stateful_resource_and_deletes_nothing():
    # As a release without the rotation transform would have it deployed (see the test above).
    previous = {k: v for k, v in json.loads(PREVIOUS.read_text()).items() if k != "Transform"}
    wanted = _flagship_split(previous)
    live = dict(_flagship_source(previous).resources)
    layout = compute_moves({"network-dev": None, "data-dev": None, "webapp-dev": _flagship_source(previous)}, wanted)
    assert layout.new_stacks == ("network-dev", "data-dev")
    moved = {m.logical_id: m.destination for m in layout.moves}
    held = {lid for ids in layout.holders.values() for lid in ids}
    assert held == set(live)  # every deployed resource is held somewhere after the refactor: none deleted
    stateful = {
        lid
        for lid, r in previous["Resources"].items()
        if lid in live and (is_stateful(r) or r["Type"] in SNAPSHOT_TYPES)
    }
    for logical_id in stateful:
        assert layout.holder(logical_id) in ("network-dev", "data-dev"), logical_id
        assert moved[logical_id] == layout.holder(logical_id)
    assert {"DbCluster", "DbWriter", "AssetsBucket", "LogBucket", "LogsKey", "DbSecret"} <= set(moved)
    assert "LoadBalancer" not in moved
    assert "AutoScalingGroup" not in moved


def test_the_flagship_refactor_templates_import_across_stacks_and_carry_no_stack_name_into_new_stacks():
    previous = {k: v for k, v in json.loads(PREVIOUS.read_text()).items() if k != "Transform"}
    wanted = _flagship_split(previous)
    deployed = {"network-dev": None, "data-dev": None, "webapp-dev": _flagship_source(previous)}
    templates = refactor_templates(compute_moves(deployed, wanted), deployed, wanted)
    for name in ("network-dev", "data-dev"):
        text = json.dumps(templates[name])
        assert "AWS::StackName" not in text
        assert '"Fn::If"' not in text
        assert not {"Parameters", "Conditions", "Rules", "Mappings"} & set(templates[name])
        assert "webapp-dev-vpc" in text or name == "data-dev"  # the Name tag keeps the deployed value
    imported = json.dumps(templates["webapp-dev"]["Resources"])
    assert '{"Fn::ImportValue": "network-dev-AppSubnet1"}' in imported
    exports = {
        o["Export"]["Name"]
        for t in templates.values()
        for k, o in t.get("Outputs", {}).items()
        if k.startswith("Refactor")
    }
    assert "data-dev-DbSecret" in exports
    assert "network-dev-Vpc" in exports


def test_a_carried_output_leaves_its_export_to_the_finishing_deploy():
    layout, deployed, wanted = _layout()
    wanted["network-dev"]["Outputs"]["KeyArn"]["Export"] = {"Name": {"Fn::Sub": "${AWS::StackName}-KeyArn"}}
    templates = refactor_templates(layout, deployed, wanted)
    assert templates["network-dev"]["Outputs"]["KeyArn"] == {"Value": {"Fn::GetAtt": ["Key", "Arn"]}}


def test_an_output_a_consumer_takes_that_its_new_stack_cannot_declare_yet_is_named():
    layout, deployed, wanted = _layout()
    inputs = {
        "DataStoreName": {"stack": "data", "output": "StoreName"},
        "NetworkLabel": {"stack": "network", "output": "Label"},
    }
    wanted["webapp-dev"]["Metadata"] = {"cfnbuild": {"inputs": inputs}}
    wanted["network-dev"]["Outputs"]["Label"] = {"Value": {"Fn::Sub": "${AWS::StackName}-label"}}
    templates = refactor_templates(layout, deployed, wanted)
    names = {"network": "network-dev", "data": "data-dev", "webapp": "webapp-dev"}
    assert missing_inputs(templates, wanted, names) == ["webapp takes output Label of network"]


def test_a_busy_stack_is_refused_until_it_settles():
    stack = _deployed("webapp-dev", OLD, {"Label": "x"})
    busy = DeployedStack(stack.name, stack.stack_id, "UPDATE_IN_PROGRESS", stack.template, {}, stack.resources)
    with pytest.raises(RefactorRefused, match=r"webapp-dev is busy \(UPDATE_IN_PROGRESS\); wait until it settles"):
        compute_moves({"network-dev": None, "data-dev": None, "webapp-dev": busy}, _split())


def test_a_source_the_moves_would_leave_empty_is_refused():
    wanted = _split()
    wanted["data-dev"]["Resources"] = {**wanted["data-dev"]["Resources"], **wanted["webapp-dev"]["Resources"]}
    wanted["webapp-dev"] = {"Resources": {}}
    stack = _deployed("webapp-dev", OLD, {"Label": "x"})
    with pytest.raises(RefactorRefused, match="webapp-dev would hold no resource after the refactor"):
        compute_moves({"network-dev": None, "data-dev": None, "webapp-dev": stack}, wanted)


def test_a_logical_id_taken_in_the_destination_is_refused():
    wanted = _split()
    network = _deployed("network-dev", {"Resources": {"Key": {"Type": "AWS::KMS::Key"}}})
    stack = _deployed("webapp-dev", {**OLD, "Resources": {**OLD["Resources"], "Key": OLD["Resources"]["Key"]}})
    with pytest.raises(RefactorRefused, match="Key moves from webapp-dev to network-dev, which already holds"):
        compute_moves({"network-dev": network, "data-dev": None, "webapp-dev": stack}, wanted)
