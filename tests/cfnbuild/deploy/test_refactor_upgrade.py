"""The upgrade test: the flagship's previous release, one stack, upgraded to the split by one ``cfnbuild refactor``.

The previous release (tests/data/previous-release/dev/webapp.json) is deployed as ``webapp-dev``
with its stack policy and ``Transform: AWS::SecretsManager-2024-09-16``; the split is the
project's own build (output/dev/{network,data,webapp}.json, rebuilt here from the checkout and
checked equal). The whole command runs: the reads, the plan, phases A to D of retain-and-import
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/refactor-stacks.html), with the
deploy engine's own change sets for phase D.

The emulator (moto) has neither stack refactoring nor resource import (IMPORT change sets), nor
stack policies on updates, so CloudFormation's answers are scripted with botocore's Stubber on
cfnbuild's own clients (CloudFormation, and S3 and STS for the staged templates). The scripted
CloudFormation keeps what it was sent: GetTemplate answers the template the last change set of
that stack carried, and phase D's change sets list the changes of the project's template over it
without a Replacement field, as the emulator does, so the plan derives replacements from each
type's create-only properties.

What runs is the :class:`~cfnbuild.deploy.refactor.run.Refactor` that ``cfnbuild refactor --env dev
--yes`` builds, with engines on the stubbed clients (the CLI makes clients of its own, which a
Stubber cannot reach): it returning, not raising, is the command's exit code 0. The copy's
config gives the two parameters a lookup would ask AWS for (the lookups make clients of their own
too), so no call leaves the machine.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from cfnbuild.build.stateful import is_stateful
from cfnbuild.deploy.aws import Target
from cfnbuild.deploy.engine import Engine
from cfnbuild.deploy.events import PollSettings
from cfnbuild.deploy.policy import policy_body, stack_policy
from cfnbuild.deploy.refactor.resolve import Decided
from cfnbuild.local.emulator import THROWAWAY_CREDENTIALS
from tests.cfnbuild.deploy.test_refactor_run import ARN, WHEN, Run, _absent, _stack
from tests.inprocess import build_here

ROOT = Path(__file__).resolve().parents[3]
PREVIOUS = json.loads((ROOT / "tests/data/previous-release/dev/webapp.json").read_text())
NAMES = {"network": "network-dev", "data": "data-dev", "webapp": "webapp-dev"}
SOURCE, SOURCE_ID = "webapp-dev", ARN.format("webapp-dev")
POLICY = policy_body(stack_policy(PREVIOUS))
VALUES = {
    "NatMode": "single", "AvailabilityZones": "eu-west-1a,eu-west-1b", "DomainName": "", "HostedZoneId": "",
    "MonthlyBudgetUsd": "150", "DbEngineVersion": "8.0.mysql_aurora.3.08.0", "AppArtifactBucket": "",
    "AppArtifactKey": "", "BudgetRegion": "eu-west-1", "ImageId": "ami-0123456789abcdef0",
}  # fmt: skip
TRUTHS = Decided.of(PREVIOUS, VALUES, stack_name=SOURCE, stack_id=SOURCE_ID).truths  # dev: no domain, no WAF
LIVE = {lid: r["Type"] for lid, r in PREVIOUS["Resources"].items() if TRUTHS.get(r.get("Condition", ""), True)}
PHYSICAL = {lid: f"phys-{lid}" for lid in LIVE} | {"InternetGatewayAttachment": "IGW|phys-Vpc"}
STATEFUL = sorted(lid for lid in LIVE if is_stateful(PREVIOUS["Resources"][lid]))
# Where the split's design (issue #14 point 3) puts each stateful resource: the KMS key and the flow logs in
# network, everything that keeps data (database, secret, buckets, the app's and the database's log groups) in data.
IN_NETWORK = {"LogsKey", "FlowLogGroup"}
HOME = {lid: "network-dev" if lid in IN_NETWORK else "data-dev" for lid in STATEFUL}
PINNED = ("AvailabilityZones", "DbEngineVersion")
FAST = PollSettings(min_seconds=0.0, max_seconds=0.0, timeout_seconds=60)


@pytest.fixture(scope="module")
def flagship(tmp_path_factory) -> Path:
    """A copy of the flagship project, built: its templates are output/dev's (the split as committed)."""
    root = tmp_path_factory.mktemp("flagship")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    for folder in ("config", "blueprints", "flask_app"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    with (root / "config/dev.toml").open("a") as config:  # the lookups' answers given: no call leaves the machine
        config.write("\n[deploy.parameters]\n" + "".join(f'{k} = "{VALUES[k]}"\n' for k in PINNED))
    build_here(root, "--env", "dev")
    for stack in NAMES:
        assert (root / f"output/dev/{stack}.json").read_text() == (ROOT / f"output/dev/{stack}.json").read_text()
    return root


class Upgrade(Run):
    """The refactor on the flagship: stubbed CloudFormation, S3 and STS, and a CloudFormation that keeps templates."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.out.width = 1000  # a line is read whole, not as the terminal would wrap it
        self.aws.target = Target("", "eu-west-1", credentials=dict(THROWAWAY_CREDENTIALS))  # as the command
        self.stubs = {service: Stubber(self.aws.client(service)) for service in ("s3", "sts")}
        self.kept: dict[str, str] = {}  # stack → the template body its last change set carried
        self.before: dict[str, str] = {}  # stack → the body before that one (what the change set changes)
        self.parameters: dict[str, list[dict[str, str]]] = {}  # stack → its parameters, as its change sets left them
        self.changes: dict[str, list[dict[str, Any]]] = {}  # phase D change set → its Changes, filled when asked
        self.staged: list[bytes] = []
        self.sent: list[tuple[str, str, dict[str, Any]]] = []  # (stack, ChangeSetType, template) of each change set
        self.printed_at_put: list[str] = []  # what was printed when each PutObject was sent
        self.answers: dict[str, list[dict[str, Any]]] = {}  # stack → GetTemplate answers to fill when asked
        self.read_back: list[dict[str, str]] = []  # phase B's DescribeStacks outputs: phase A's, filled when asked
        self.aws.client("s3").meta.events.register("before-parameter-build.s3.PutObject", self._put)
        self.client.meta.events.register("before-parameter-build.cloudformation", self._keep)

    def engine(self, stack: str) -> Engine:
        """A deploy engine for ``stack`` on the same stubbed clients (phases C and D)."""
        self.aws.target = Target(NAMES[stack], "eu-west-1", credentials=dict(THROWAWAY_CREDENTIALS))
        return Engine(self.project, self.aws, self.out, self.err, poll=FAST, sleep=lambda _: None)

    def _put(self, params: dict[str, Any], **_: Any) -> None:
        body = params["Body"]
        self.staged.append(bytes(body.getvalue()) if hasattr(body, "getvalue") else bytes(body))
        self.printed_at_put.append(self.out.export_text(clear=False))

    def _keep(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "CreateChangeSet":
            name = params["StackName"]
            if name in self.kept:
                self.before[name] = self.kept[name]
            self.kept[name] = params.get("TemplateBody") or self.staged[-1].decode()
            self.sent.append((name, params["ChangeSetType"], json.loads(self.kept[name])))
            now = {p["ParameterKey"]: p for p in self.parameters.get(name, [])}
            now.update({p["ParameterKey"]: p for p in params.get("Parameters", []) if "ParameterValue" in p})
            self.parameters.setdefault(name, [])[:] = list(now.values())
        elif model.name == "DescribeChangeSet" and params["ChangeSetName"] in self.changes:
            name = params["ChangeSetName"].rsplit("/", 1)[-1]
            self.changes[params["ChangeSetName"]] += _changes(
                json.loads(self.before[name]), json.loads(self.kept[name])
            )
        elif model.name == "DescribeStacks" and params["StackName"] == SOURCE_ID and not self.read_back:
            declared = json.loads(self.kept.get(SOURCE, "{}")).get("Outputs") or {}
            self.read_back += [{"OutputKey": k, "OutputValue": _evaluate(o["Value"])} for k, o in declared.items()]
        elif model.name == "GetTemplate":
            name = params["StackName"]
            name = next((n for n in NAMES.values() if ARN.format(n) == name), name)
            waiting = self.answers.get(name)
            if waiting and name in self.kept:  # the reads before any change set take the deployed template
                waiting.pop(0)["TemplateBody"] = self.kept[name]

    def template(self, name: str) -> dict[str, Any]:
        """A GetTemplate answer: the template ``name``'s last change set carried, filled in when asked."""
        answer = {"TemplateBody": "{}"}
        self.answers.setdefault(name, []).append(answer)
        return answer

    def go(self) -> None:
        with self.stubs["s3"], self.stubs["sts"]:
            super().go()
        for stub in self.stubs.values():
            stub.assert_no_pending_responses()


def _summaries(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"LogicalResourceId": lid, "PhysicalResourceId": PHYSICAL[lid], "ResourceType": kind,
         "ResourceStatus": "UPDATE_COMPLETE", "LastUpdatedTimestamp": "2026-01-01T00:00:00Z"}
        for lid, kind in LIVE.items() if lid in template["Resources"]
    ]  # fmt: skip


def _reads(run: Upgrade) -> None:
    """The reads: network-dev and data-dev not there, the source's stack, template, resources and policy."""
    _absent(run, "network-dev")
    _absent(run, "data-dev")
    parameters = run.parameters.setdefault(SOURCE, [])
    parameters += [{"ParameterKey": k, "ParameterValue": v} for k, v in VALUES.items() if k in PREVIOUS["Parameters"]]
    run.stubber.add_response(
        "describe_stacks", {"Stacks": [_stack(SOURCE, Parameters=parameters)]}, {"StackName": SOURCE}
    )
    run.stubber.add_response(
        "get_template", {"TemplateBody": json.dumps(PREVIOUS)}, {"StackName": SOURCE_ID, "TemplateStage": "Original"}
    )
    page = {"StackResourceSummaries": _summaries(PREVIOUS)}
    run.stubber.add_response("list_stack_resources", page, {"StackName": SOURCE_ID})
    run.stubber.add_response("get_stack_policy", {"StackPolicyBody": POLICY}, {"StackName": SOURCE_ID})
    run.stubber.add_response("list_stack_resources", page, {"StackName": SOURCE_ID})  # the physical IDs


def _staged(run: Upgrade) -> None:
    """A template staged in the account's staging bucket: not there yet, then put."""
    run.stubs["sts"].add_response(
        "get_caller_identity", {"Account": "123456789012", "Arn": "arn:aws:iam::123456789012:root", "UserId": "AIDA"}
    )
    run.stubs["s3"].add_client_error("head_object", "404", "Not Found", 404)
    run.stubs["s3"].add_response("put_object", {})


def _phase(run: Upgrade, name: str, kind: str, *, staged: bool = False) -> None:
    """One change set of a phase: created, ready, executed, the stack waited for."""
    if staged:
        _staged(run)
    stack_id = ARN.format(name)
    change_set = f"arn:aws:cloudformation:eu-west-1:123456789012:changeSet/cfnbuild-refactor/{name}-{kind}"
    run.stubber.add_response("create_change_set", {"Id": change_set, "StackId": stack_id})
    change = {"Action": "Import" if kind == "IMPORT" else "Modify", "LogicalResourceId": "X", "ResourceType": "T"}
    run.stubber.add_response(
        "describe_change_set",
        {"ChangeSetId": change_set, "StackId": stack_id, "StackName": name, "Status": "CREATE_COMPLETE",
         "ExecutionStatus": "AVAILABLE", "Changes": [{"Type": "Resource", "ResourceChange": change}]},
    )  # fmt: skip
    run.stubber.add_response("execute_change_set", {}, {"ChangeSetName": change_set})
    run.stubber.add_response("describe_stacks", {"Stacks": [_stack(name, f"{kind}_IN_PROGRESS")]})
    run.stubber.add_response("describe_stacks", {"Stacks": [_stack(name, f"{kind}_COMPLETE")]})


def _phase_b(run: Upgrade) -> None:
    run.stubber.add_response(
        "get_template", run.template(SOURCE), {"StackName": SOURCE_ID, "TemplateStage": "Original"}
    )
    described = {"Stacks": [_stack(SOURCE, Outputs=run.read_back)]}
    run.stubber.add_response("describe_stacks", described, {"StackName": SOURCE_ID})
    run.stubber.add_response("get_stack_policy", {"StackPolicyBody": POLICY}, {"StackName": SOURCE_ID})
    run.stubber.add_response("set_stack_policy", {}, {"StackName": SOURCE_ID, "StackPolicyBody": ANY})
    _phase(run, SOURCE, "UPDATE", staged=True)
    run.stubber.add_response("set_stack_policy", {}, {"StackName": SOURCE_ID, "StackPolicyBody": POLICY})


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """What CloudFormation lists for ``old`` → ``new``: Add, Modify (no Replacement field, as the emulator), Remove."""
    found = []
    for lid in sorted(set(old["Resources"]) | set(new["Resources"])):
        there, wanted = old["Resources"].get(lid), new["Resources"].get(lid)
        if there == wanted:
            continue
        action = "Add" if there is None else "Remove" if wanted is None else "Modify"
        kind = (wanted or there or {})["Type"]
        change = {"Action": action, "LogicalResourceId": lid, "ResourceType": kind}
        if action != "Add":
            change["PhysicalResourceId"] = PHYSICAL.get(lid, f"phys-{lid}")
        found.append({"Type": "Resource", "ResourceChange": change})
    return found


def _outputs(stack: str) -> list[dict[str, str]]:
    """The outputs an upstream stack returns: each of its project template's, with a value naming it."""
    template = json.loads((ROOT / f"output/dev/{stack}.json").read_text())
    return [{"OutputKey": k, "OutputValue": _evaluate(o["Value"])} for k, o in template.get("Outputs", {}).items()]


def _evaluate(value: Any) -> str:
    """An output's value as CloudFormation returns it: a Ref the physical ID, a GetAtt one of it, a Join joined."""
    if "Ref" in value:
        return PHYSICAL.get(value["Ref"], f"phys-{value['Ref']}")
    if "Fn::GetAtt" in value:
        lid, attribute = value["Fn::GetAtt"]
        return f"{PHYSICAL.get(lid, f'phys-{lid}')}/{attribute}"
    if "Fn::Join" not in value:  # the previous release's own outputs (a Sub of its URL): not read by anyone here
        return json.dumps(value)
    separator, items = value["Fn::Join"]
    return str(separator).join(_evaluate(item) for item in items)


def _inputs(run: Upgrade, stack: str) -> None:
    """The upstream reads of ``stack``'s parameters: one DescribeStacks for each ``stack.use`` input, in order."""
    template = json.loads((ROOT / f"output/dev/{stack}.json").read_text())
    inputs = template["Metadata"]["cfnbuild"].get("inputs") or {}
    for parameter in template.get("Parameters", {}):
        if parameter in inputs:
            upstream = inputs[parameter]["stack"]
            described = {"Stacks": [_stack(NAMES[upstream], Outputs=_outputs(upstream))]}
            run.stubber.add_response("describe_stacks", described, {"StackName": NAMES[upstream]})


def _deploy(run: Upgrade, stack: str, status: str) -> None:
    """Phase D of ``stack``: the deploy engine's change set over what the stack holds, executed and watched."""
    name = NAMES[stack]
    stack_id = ARN.format(name)
    described = _stack(name, status, Parameters=run.parameters.setdefault(name, []))  # as phase B or C left them
    run.stubber.add_response("describe_stacks", {"Stacks": [described]}, {"StackName": name})
    _inputs(run, stack)
    run.stubber.add_response("get_template", run.template(name), {"StackName": name, "TemplateStage": "Original"})
    if stack == "webapp":  # 58 KB: past what a TemplateBody may have; then its app artifact, into data's bucket
        _staged(run)
        run.stubs["s3"].add_client_error("head_object", "404", "Not Found", 404)
        run.stubs["s3"].add_response("put_object", {})
    change_set = f"arn:aws:cloudformation:eu-west-1:123456789012:changeSet/cfnbuild-d/{name}"
    run.stubber.add_response("create_change_set", {"Id": change_set, "StackId": stack_id})
    changes: list[dict[str, Any]] = []
    run.changes[change_set] = changes
    run.stubber.add_response(
        "describe_change_set",
        {"ChangeSetId": change_set, "ChangeSetName": "cfnbuild-d", "StackId": stack_id, "StackName": name,
         "Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE", "Changes": changes},
    )  # fmt: skip
    event = {"EventId": f"{name}-1", "StackId": stack_id, "StackName": name, "LogicalResourceId": name,
             "Timestamp": WHEN, "ResourceType": "AWS::CloudFormation::Stack", "ResourceStatus": status}  # fmt: skip
    run.stubber.add_response("describe_stack_events", {"StackEvents": [event]}, {"StackName": stack_id})
    run.stubber.add_response(
        "execute_change_set", {}, {"ChangeSetName": change_set, "ClientRequestToken": ANY, "RetainExceptOnCreate": True}
    )
    outputs = _outputs(stack)
    run.stubber.add_response("describe_stacks", {"Stacks": [_stack(name, Outputs=outputs)]}, {"StackName": stack_id})
    done = {**event, "EventId": f"{name}-2", "Timestamp": WHEN.replace(minute=1), "ResourceStatus": "UPDATE_COMPLETE"}
    run.stubber.add_response("describe_stack_events", {"StackEvents": [done, event]}, {"StackName": stack_id})
    own = policy_body(stack_policy(json.loads((ROOT / f"output/dev/{stack}.json").read_text())))
    run.stubber.add_response("get_stack_policy", {}, {"StackName": stack_id})  # an imported stack has none yet
    run.stubber.add_response("set_stack_policy", {}, {"StackName": stack_id, "StackPolicyBody": own})


def _whole(run: Upgrade) -> None:
    _reads(run)
    _phase(run, SOURCE, "UPDATE", staged=True)  # phase A
    _phase_b(run)
    _absent(run, "network-dev")
    _phase(run, "network-dev", "IMPORT")
    _deploy(run, "network", "IMPORT_COMPLETE")
    _absent(run, "data-dev")
    _inputs(run, "data")
    _phase(run, "data-dev", "IMPORT")
    _deploy(run, "data", "IMPORT_COMPLETE")
    _deploy(run, "webapp", "UPDATE_COMPLETE")


def _whole(run: Upgrade) -> None:
    """Every answer of the upgrade, in order: reads, A, B, C and D of network, C and D of data, D of webapp."""
    _reads(run)
    _phase(run, SOURCE, "UPDATE", staged=True)  # phase A: 176 KB, staged
    _phase_b(run)
    _absent(run, "network-dev")
    _phase(run, "network-dev", "IMPORT")
    _deploy(run, "network", "IMPORT_COMPLETE")
    _absent(run, "data-dev")
    _inputs(run, "data")
    _phase(run, "data-dev", "IMPORT")
    _deploy(run, "data", "IMPORT_COMPLETE")
    _deploy(run, "webapp", "UPDATE_COMPLETE")


@pytest.fixture(scope="module")
def upgraded(flagship) -> Upgrade:
    """The whole ``cfnbuild refactor --env dev --yes`` of the flagship, run once: it returned (exit code 0)."""
    run = Upgrade(flagship)
    _whole(run)
    run.go()  # raises on any error, so the command's exit code is 0
    return run


def _lines(run: Upgrade) -> list[str]:
    return run.out.export_text(clear=False).rstrip().splitlines()


def _first_change(run: Upgrade) -> str:
    """What was printed when the first call that changes anything was sent (a staged template, a change set)."""
    changing = ("CreateChangeSet", "ExecuteChangeSet", "SetStackPolicy", "UpdateTerminationProtection")
    first = next(text for name, _, text in run.calls if name in changing)
    return min([first, *run.printed_at_put], key=len)  # what is printed only grows: the shortest came first


def test_the_upgrade_goes_by_retain_and_import_saying_why_in_one_line_and_shows_the_plan_before_any_change(upgraded):
    said = [line for line in _lines(upgraded) if line.startswith("retain-and-import, not stack refactoring: ")]
    assert said == [
        "retain-and-import, not stack refactoring: webapp-dev has a stack policy and is deployed with Transform "
        "AWS::SecretsManager-2024-09-16, and stack refactoring supports neither a stack with a stack policy attached "
        "nor moving resources out of a stack a transform processes "
        "(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stack-refactoring.html)"
    ]
    before = _first_change(upgraded)
    assert said[0] in before
    assert "retain and import: what each phase does" in before
    rows = [line.split("│")[1:3] for line in before.splitlines() if line.startswith("│")]
    phases = [(phase.strip(), stack.strip()) for phase, stack in rows if phase.strip()]
    assert phases == [
        ("A", SOURCE), ("B", SOURCE), ("C", "network-dev"), ("C", "data-dev"),
        ("D", "network-dev"), ("D", "data-dev"), ("D", SOURCE),
    ]  # fmt: skip
    assert "CreateStackRefactor" not in upgraded.operations()


def test_every_stateful_resource_is_retain_before_it_leaves_never_deleted_and_imported_where_the_split_puts_it(
    upgraded,
):
    assert set(STATEFUL) == set(HOME)  # the database, its secret and logs, the buckets, the key, the log groups
    (phase_a, phase_b), imports = upgraded.sent[:2], [s for s in upgraded.sent if s[1] == "IMPORT"]
    assert [(s, k) for s, k, _ in (phase_a, phase_b)] == [(SOURCE, "UPDATE"), (SOURCE, "UPDATE")]
    for lid in STATEFUL:
        assert phase_a[2]["Resources"][lid]["DeletionPolicy"] == "Retain", lid  # before it leaves
        assert phase_a[2]["Resources"][lid]["UpdateReplacePolicy"] == "Retain", lid
        assert lid not in phase_b[2]["Resources"], lid  # it left in phase B, retained
    assert PREVIOUS["Resources"]["DbCluster"]["DeletionPolicy"] == "Snapshot"  # as deployed: gone after a snapshot
    to_import = _imported(upgraded)
    assert [s for s, _, _ in imports] == list(to_import) == ["network-dev", "data-dev"]
    for lid, home in HOME.items():
        imported = to_import[home][lid]
        assert imported["ResourceType"] == LIVE[lid]
        assert list(imported["ResourceIdentifier"].values()) == [PHYSICAL[lid]], lid  # its physical ID
        assert not any(lid in ids for stack, ids in to_import.items() if stack != home), lid
        import_template = next(t for s, k, t in upgraded.sent if s == home and k == "IMPORT")
        assert import_template["Resources"][lid]["DeletionPolicy"] in ("Retain", "RetainExceptOnCreate", "Snapshot"), (
            lid
        )
        assert lid in next(t for s, k, t in reversed(upgraded.sent) if s == home)["Resources"], lid  # still there
    assert not {"DeleteStack", "DeleteChangeSet", "DeleteStackInstances"} & set(upgraded.operations())


def test_the_temporary_stack_policy_is_set_only_around_phase_b_and_the_deployed_one_restored(upgraded):
    operations = upgraded.operations()
    sets = [(i, p) for i, (name, p, _) in enumerate(upgraded.calls) if name == "SetStackPolicy"]
    on_source = [(i, p["StackPolicyBody"]) for i, p in sets if p["StackName"] == SOURCE_ID]
    executes = [i for i, name in enumerate(operations) if name == "ExecuteChangeSet"]
    (relax_at, relaxed), (restore_at, restored) = on_source[:2]
    assert executes[0] < relax_at < executes[1] < restore_at < executes[2]  # phase A < relax < phase B < restore
    assert restored == POLICY
    denied = [r for s in json.loads(relaxed)["Statement"] if s["Effect"] == "Deny" for r in s["Resource"]]
    assert not {f"LogicalResourceId/{lid}" for lid in STATEFUL} & set(denied)
    assert json.loads(relaxed)["Statement"][-1]["Action"] == "Update:Delete"
    # After phase B the source's policy is set once more only by its own deploy, to the project template's policy.
    webapp = json.loads((ROOT / "output/dev/webapp.json").read_text())
    assert [body for _, body in on_source[2:]] == [policy_body(stack_policy(webapp))]
    others = {p["StackName"]: p["StackPolicyBody"] for i, p in sets if p["StackName"] != SOURCE_ID}
    assert set(others) == {ARN.format("network-dev"), ARN.format("data-dev")}  # each stateful stack its own


def test_phases_c_and_d_go_per_new_stack_in_graph_order_and_no_finishing_deploy_replaces_a_stateful_resource(
    upgraded,
):
    steps = [(s, "IMPORT" if k == "IMPORT" else "deploy") for s, k, _ in upgraded.sent[2:]]
    assert steps == [
        ("network-dev", "IMPORT"), ("network-dev", "deploy"), ("data-dev", "IMPORT"), ("data-dev", "deploy"),
        (SOURCE, "deploy"),
    ]  # fmt: skip
    data_import = next(p for n, p, _ in upgraded.calls if n == "CreateChangeSet" and p["StackName"] == "data-dev")
    network = {o["OutputKey"]: o["OutputValue"] for o in _outputs("network")}
    taken = {p["ParameterKey"]: p["ParameterValue"] for p in data_import["Parameters"]}
    assert {k: v for k, v in taken.items() if k.startswith("Network")} == {
        "NetworkDataSubnetIds": network["DataSubnetIds"], "NetworkDbSecurityGroupId": network["DbSecurityGroupId"],
        "NetworkLogsKeyArn": network["LogsKeyArn"], "NetworkVpcId": network["VpcId"],
    }  # fmt: skip
    out = upgraded.out.export_text(clear=False)
    # What the engine's plans say (their replacements derived from each type's create-only properties): nothing
    # replaced or removed; added only the two stateless resources phase B deleted, back in data.
    for name, added in (("network-dev", 0), ("data-dev", 2), (SOURCE, 0)):
        plan = next(line for line in out.splitlines() if line.startswith(f"Plan to update stack {name}: "))
        assert f": {added} to add, " in plan, plan
        assert ", 0 to replace, 0 to remove, " in plan, plan
    data = next(t for s, k, t in upgraded.sent if s == "data-dev" and k == "UPDATE")
    assert {"AlarmTopicPolicy", "DbSecretRotation"} <= set(data["Resources"])
    stacks = {name: stack for stack, name in NAMES.items()}
    for name, _, template in [s for s in upgraded.sent[2:] if s[1] == "UPDATE"]:
        assert template == json.loads((ROOT / f"output/dev/{stacks[name]}.json").read_text())  # the project's own
    assert "DANGER" not in out
    for name in stacks:  # each finishing deploy ends complete
        assert f"{name}: UPDATE_COMPLETE" in out


def test_the_command_ends_with_one_line_saying_what_moved_and_what_was_deployed(upgraded):
    webapp = json.loads((ROOT / "output/dev/webapp.json").read_text())
    leaving = [lid for lid in LIVE if lid not in webapp["Resources"]]
    imported = [lid for ids in _imported(upgraded).values() for lid in ids]
    assert sorted(imported) == sorted(set(leaving) - {"AlarmTopicPolicy", "DbSecretRotation"})
    assert _lines(upgraded)[-1] == (
        f"dev: {len(imported)} resources imported into network-dev, data-dev, 2 stateless ones deleted and created "
        "again; network-dev, data-dev, webapp-dev deployed with the project's templates"
    )


def _imported(run: Upgrade) -> dict[str, dict[str, dict[str, Any]]]:
    """Stack → logical ID → its entry of ResourcesToImport, from each IMPORT change set sent."""
    return {
        p["StackName"]: {r["LogicalResourceId"]: r for r in p["ResourcesToImport"]}
        for n, p, _ in run.calls
        if n == "CreateChangeSet" and p["ChangeSetType"] == "IMPORT"
    }
