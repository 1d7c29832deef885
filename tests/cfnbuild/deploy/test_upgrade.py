"""An upgrade: the previous committed dev template deployed, then the current one planned over it.

The plan must list no replacement beyond the ones named here with their reason, and no DANGER:
a release that would replace a database or a bucket by accident fails this test first. (The
emulator reports no Replacement in change sets; the plan derives it from each type's
create-only properties, as it does for AWS when a field is missing.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from cfnbuild.deploy import changeset
from cfnbuild.deploy.aws import Aws, Target
from cfnbuild.deploy.engine import Engine, Request
from cfnbuild.deploy.events import PollSettings
from cfnbuild.local.emulator import THROWAWAY_CREDENTIALS
from cfnbuild.project.app import load_project

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = "output/dev/webapp.json"
FAST = PollSettings(min_seconds=0.05, max_seconds=0.1, timeout_seconds=60)
# Replacements an upgrade from the previous version may bring, each with why it is safe.
EXPECTED_REPLACEMENTS: dict[str, str] = {}


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout


def previous_template() -> tuple[str, str]:
    """The newest committed version of the dev template whose resources differ from the current file's.

    (A version that differs only in its outputs, say their exports, deploys nothing else: it is not a release
    to upgrade from.)
    """
    current = json.loads((ROOT / TEMPLATE).read_text())["Resources"]
    for commit in _git("log", "--format=%H", "--", TEMPLATE).split():
        text = _git("show", f"{commit}:{TEMPLATE}")
        if json.loads(text)["Resources"] != current:
            return commit, text
    raise AssertionError(f"no earlier committed version of {TEMPLATE} differs from the current one")


def test_upgrade_from_the_previous_committed_dev_template_replaces_nothing_unexpected(project_dir, emulator):
    commit, old_body = previous_template()
    shutil.copy(ROOT / "pyproject.toml", project_dir / "pyproject.toml")  # the app artifact is built from it
    shutil.copytree(ROOT / "flask_app", project_dir / "flask_app")
    with (project_dir / "config/dev.toml").open("a") as config:
        config.write('\n[deploy]\nstack_name_suffix = "upgrade"\n')
    subprocess.run(
        [sys.executable, "-m", "cfnbuild", "--project", str(project_dir), "build", "--env", "dev"],
        check=True,
        capture_output=True,
    )
    cloudformation = emulator.client("cloudformation")
    old = json.loads(old_body)
    parameters = (
        [{"ParameterKey": "AppArtifactKey", "ParameterValue": ""}]
        if "AppArtifactKey" in old.get("Parameters", {})
        else []
    )
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket="upgrade-templates", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="upgrade-templates", Key="old.json", Body=old_body.encode())
    created = changeset.create(
        cloudformation,
        stack_name="webapp-dev-upgrade",
        name="previous",
        change_set_type="CREATE",
        template={"TemplateURL": f"{emulator.endpoint_url}/upgrade-templates/old.json"},
        parameters=parameters,
        tags={},
        capabilities=["CAPABILITY_IAM"],
        client_token="previous-version",  # noqa: S106  (an idempotency token, not a secret)
        poll=FAST,
    )
    assert created is not None
    cloudformation.execute_change_set(ChangeSetName=created.id)
    changeset_status = cloudformation.describe_stacks(StackName="webapp-dev-upgrade")["Stacks"][0]["StackStatus"]
    assert changeset_status == "CREATE_COMPLETE", f"the previous version ({commit[:8]}) did not deploy"

    project = load_project(project_dir)
    target = Target(
        "webapp-dev-upgrade", "eu-west-1", endpoint_url=emulator.endpoint_url, credentials=dict(THROWAWAY_CREDENTIALS)
    )
    engine = Engine(project, Aws(target), Console(record=True, width=200), Console(record=True, width=200), poll=FAST)
    plan, _ = engine.plan(Request("dev", "webapp"), keep=False)
    assert plan.change_set_type == "UPDATE"
    replaced = {r.logical_id for r in plan.resources if r.kind == "replace"} - set(EXPECTED_REPLACEMENTS)
    moved = _moved_out(old)
    if not moved:
        assert not replaced, f"upgrading from {commit[:8]} replaces {sorted(replaced)} unexpectedly"
        assert not plan.dangers, [f"{d.logical_id}: {d.danger_reason}" for d in plan.dangers]
        return
    # Values the web app now takes from the network and data stacks are not deployed here, so this plan
    # cannot tell them equal (a target group's VpcId); tests/test_split.py resolves them through the
    # producers' outputs and finds every create-only value unchanged. No stateful resource is replaced.
    assert not {
        lid
        for lid in replaced
        if lid in json.loads((ROOT / TEMPLATE).read_text())["Resources"]
        and (old["Resources"][lid].get("Metadata") or {}).get("cfnbuild", {}).get("stateful")
    }
    # The single stack split into network -> data -> webapp (README, "Why three stacks"): a plain update of
    # the previous stack with the new webapp template would remove what moved to the other stacks. The plan
    # calls every stateful one of them a danger, so the deploy refuses it unless named; the upgrade moves
    # them by stack refactoring instead (tests/test_split.py proves it replaces nothing).
    removed = {r.logical_id for r in plan.resources if r.kind == "remove"}
    assert removed <= moved
    assert all("Condition" in old["Resources"][lid] for lid in moved - removed), "only what was never made"
    stateful = {
        lid for lid in moved if (old["Resources"][lid].get("Metadata") or {}).get("cfnbuild", {}).get("stateful")
    }
    assert stateful, "the data and the key moved"
    assert {d.logical_id for d in plan.dangers} == stateful


def _moved_out(old: dict) -> set[str]:
    """The resources of the previous webapp template that the current one no longer has (they moved away)."""
    current = json.loads((ROOT / TEMPLATE).read_text())["Resources"]
    return set(old["Resources"]) - set(current)
