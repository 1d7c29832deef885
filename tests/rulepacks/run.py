"""AWS's published rule packs over every template in ``output/``: the gate a security team would run.

The packs are cdk-nag's: AWS Solutions, NIST 800-53 rev 5, HIPAA Security and PCI DSS 3.2.1. Each
template is loaded as written with CDK's ``cloudformation-include`` (``CfnInclude``), so every rule
sees the JSON that ``build`` wrote, not a CDK model of it. A finding is accepted only by an entry
in the resource's Metadata, ``{"cdk_nag": {"rules_to_suppress": [{"id", "reason"}]}}``, which
blueprints write with :meth:`cfnbuild.Blueprint.accept_finding`; the README's Security section lists
each one.

Run by ``tox -e rulepacks`` (and so by CI):  ``python tests/rulepacks/run.py [OUTPUT_DIR]``.
Exit 0 when every finding is fixed or accepted; 1 with one line per open finding (template,
resource, rule, what the rule wants, and how to answer it); 1 with one line too when a template
cannot be read or the packs cannot load.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

# jsii (the bridge to the packs' Node code) warns about Node versions on every start; the check's
# own output is what matters here.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
# aws-cdk-lib 2.262+ runs its own CloudFormation validator inside synth and prints its report;
# the gate is the rule packs (cdk-nag's aspects, which this leaves running), and cfn-lint already
# checks every template. CDK_VALIDATION=false turns that validator off (aws/aws-cdk#38379).
os.environ.setdefault("CDK_VALIDATION", "false")

# The packs are Node code: without Node.js, jsii fails on import with a traceback.
if shutil.which("node") is None:
    sys.exit(
        "rulepacks: starting the rule packs: no `node` on PATH, and the packs run on Node.js; "
        "install it (apt-get install nodejs)"
    )
try:
    import aws_cdk as cdk  # after the environment above, which jsii reads on import
    import cdk_nag
    from aws_cdk import cloudformation_include
    from aws_cdk.cx_api import SynthesisMessageLevel
except ImportError as exc:
    sys.exit(f"rulepacks: loading the rule packs: {exc}; run `tox -e rulepacks`, which installs them")

PACKS = (
    cdk_nag.AwsSolutionsChecks,
    cdk_nag.NIST80053R5Checks,
    cdk_nag.HIPAASecurityChecks,
    cdk_nag.PCIDSS321Checks,
)
# "[Error at /prod-webapp/T/DbCluster] AwsSolutions-RDS14: The RDS Aurora MySQL cluster ..."
_FINDING = re.compile(r"^(?P<rule>[\w.]+-[\w]+)(?:\[(?P<finding>[^\]]*)\])?: (?P<text>.*)$", re.DOTALL)


def templates(output: Path) -> list[Path]:
    """Every template ``build`` and ``export`` wrote (manifests and version lists are not templates)."""
    found = sorted(output.glob("*/*.json"))
    return [path for path in found if "Resources" in _read(path)]


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        sys.exit(f"rulepacks: cannot read {path}: {exc}; run `cfnbuild build --all` to write it again")
    return data if isinstance(data, dict) else {}


def check(output: Path) -> list[str]:
    """The open findings of every pack on every template, one line each."""
    paths = templates(output)
    if not paths:
        sys.exit(f"rulepacks: no templates under {output}/; run `cfnbuild build --all` first")
    with tempfile.TemporaryDirectory(prefix="cfnbuild-rulepacks-") as outdir:
        app = cdk.App(outdir=outdir, analytics_reporting=False)
        names: dict[str, Path] = {}
        for path in paths:
            name = f"{path.parent.name}-{path.stem}"
            names[name] = path
            # A fixed account and region only so that the packs can evaluate ARNs; nothing deploys.
            stack = cdk.Stack(app, name, env=cdk.Environment(account="111111111111", region="eu-west-1"))
            cloudformation_include.CfnInclude(stack, "T", template_file=str(path))
        for pack in PACKS:
            cdk.Aspects.of(app).add(pack())
        assembly = app.synth()
        lines = []
        for artifact in assembly.stacks:
            for message in artifact.messages:
                if message.level not in (SynthesisMessageLevel.ERROR, SynthesisMessageLevel.WARNING):
                    continue
                text = str(message.entry.data).strip()
                match = _FINDING.match(text)
                if not match and message.level == SynthesisMessageLevel.WARNING:
                    continue  # CDK's own notes, not a pack's finding
                resource = message.id.rsplit("/", 1)[-1]
                where = f"{names[artifact.stack_name].as_posix()}: {resource}"
                if not match:
                    lines.append(f"{where}: {text}")
                    continue
                finding = f"[{match['finding']}]" if match["finding"] else ""
                summary = match["text"].split("\n", 1)[0].split(" - (Control ID", 1)[0].strip()
                lines.append(f"{where}: {match['rule']}{finding}: {summary}")
        return sorted(set(lines))


def self_test() -> None:
    """The gate can fail: an open finding is reported, and only a Metadata acceptance silences it.

    Guards against a pack version that stops reading ``cdk_nag`` Metadata (every acceptance would
    then be ignored, or worse, findings would go unreported and the gate pass on anything).
    """
    group = {
        "Type": "AWS::EC2::SecurityGroup",
        "Properties": {
            "GroupDescription": "open",
            "SecurityGroupIngress": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0"}],
        },
    }
    accepted = {
        **group,
        "Metadata": {
            "cdk_nag": {
                "rules_to_suppress": [
                    {"id": "AwsSolutions-EC23", "reason": "self-test: the gate honours an acceptance with a reason"}
                ]
            }
        },
    }
    with tempfile.TemporaryDirectory(prefix="cfnbuild-rulepacks-selftest-") as root:
        folder = Path(root, "selftest")
        folder.mkdir()
        path = folder / "template.json"
        path.write_text(json.dumps({"Resources": {"Open": group, "Accepted": accepted}}), encoding="utf-8")
        found = check(Path(root))
    ec23 = [line for line in found if "AwsSolutions-EC23" in line]
    if not any(": Open: " in line for line in ec23) or any(": Accepted: " in line for line in ec23):
        sys.exit(
            "rulepacks: self-test failed: an SSH port open to the world must be reported and an accepted one "
            f"not; the packs reported {ec23}. The installed cdk-nag no longer reads `cdk_nag` Metadata as "
            "this gate expects: pin the last version that did in tox.ini."
        )


def main(argv: list[str]) -> int:
    """Run the packs; print the open findings; exit 1 if any."""
    self_test()
    output = Path(argv[1] if len(argv) > 1 else "output")
    open_findings = check(output)
    for line in open_findings:
        print(line)
    count = len(templates(output))
    packs = ", ".join(pack.__name__ for pack in PACKS)
    if open_findings:
        print(
            f"rulepacks: {len(open_findings)} open finding(s) in {count} template(s) ({packs}); fix each, or "
            "accept it in its blueprint with a reason (Blueprint.accept_finding) and list it in the README's "
            "Security section"
        )
        return 1
    print(f"rulepacks: no open finding in {count} template(s) ({packs})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
