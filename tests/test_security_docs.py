"""The README's Security section lists every rule-pack finding a template in output/ accepts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# A row of the accepted-findings table: | `LogicalId` | `Rule` | packs | templates | why |
ROW = re.compile(r"^\|\s*`(?P<resource>[^`]+)`\s*\|\s*`(?P<rule>[^`]+)`\s*\|")
# How the table names the packs (cdk-nag's rule prefixes) and the templates.
PACKS = {"AwsSolutions": "AwsSolutions", "HIPAA.Security": "HIPAA", "NIST.800.53.R5": "NIST", "PCI.DSS.321": "PCI"}


def security_section(text: str) -> str:
    """The README's ``## Security`` section, up to the next ``## `` heading."""
    start = text.index("## Security\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def listed(section: str) -> set[tuple[str, str]]:
    """The (logical ID, rule) pairs the section's table has a row for."""
    return {(m["resource"], m["rule"]) for line in section.splitlines() if (m := ROW.match(line))}


def rule_name(rule_id: str) -> str:
    """A pack's rule id without its pack's prefix: ``AwsSolutions-RDS14`` -> ``RDS14``."""
    return rule_id.split("-", 1)[1]


def accepted(templates: dict[str, dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every accepted finding, by (logical ID, rule): the templates and packs, and one reason."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for name, template in sorted(templates.items()):
        for logical_id, resource in template.get("Resources", {}).items():
            metadata = resource.get("Metadata") or {}
            for entry in metadata.get("cdk_nag", {}).get("rules_to_suppress", []):
                key = (logical_id, rule_name(entry["id"]))
                item = found.setdefault(key, {"templates": [], "packs": [], "reason": entry["reason"]})
                item["templates"] += [name] if name not in item["templates"] else []
                pack = entry["id"].split("-", 1)[0]
                item["packs"] += [pack] if pack not in item["packs"] else []
    return found


def template_name(path: str) -> str:
    """How the table names a template: the environment (``output/dev/webapp.json``: dev), else its stem."""
    parts = Path(path).parts
    return parts[-1].removesuffix(".json") if "service-catalog" in parts or len(parts) < 2 else parts[-2]


def missing_rows(templates: dict[str, dict[str, Any]], section: str) -> list[str]:
    """One line per accepted finding with no row in ``section``, saying which row to add."""
    rows = listed(section)
    return [
        f"README.md, Security section, accepted findings: add the row | `{logical_id}` | `{rule}` | "
        f"{', '.join(PACKS.get(pack, pack) for pack in item['packs'])} | "
        f"{', '.join(map(template_name, item['templates']))} | <why, in short> |  "
        f"(accepted in {item['templates'][0]}: {item['reason'][:100]}…)"
        for (logical_id, rule), item in sorted(accepted(templates).items())
        if (logical_id, rule) not in rows
    ]


def output_templates() -> dict[str, dict[str, Any]]:
    """Every template build and export wrote under output/ (manifests and version lists are not templates)."""
    templates = {}
    for path in sorted((ROOT / "output").glob("*/*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "Resources" in data:
            templates[path.relative_to(ROOT).as_posix()] = data
    return templates


def test_every_accepted_finding_in_output_has_a_row_in_the_readme_security_section():
    templates = output_templates()
    stacks = ("network", "data", "webapp")
    split = {f"output/{env}/{name}.json" for env in ("dev", "staging", "prod") for name in stacks}
    assert split | {"output/service-catalog/product.json"} <= set(templates)
    assert accepted(templates), "no template in output/ accepts a finding: the packs' Metadata is not read"
    problems = missing_rows(templates, security_section(README.read_text(encoding="utf-8")))
    assert not problems, "\n".join(problems)


def test_a_finding_without_its_row_is_named_with_the_row_to_add():
    template = {
        "Resources": {
            "Queue": {
                "Type": "AWS::SQS::Queue",
                "Metadata": {
                    "cdk_nag": {
                        "rules_to_suppress": [
                            {"id": "AwsSolutions-SQS3", "reason": "a dead-letter queue of its own"},
                            {"id": "HIPAA.Security-SQSQueueSSLRequestsOnly", "reason": "a test queue"},
                        ]
                    }
                },
            }
        }
    }
    section = "## Security\n\n| resource | rule | packs | templates | why |\n| --- | --- | --- | --- | --- |\n"
    section += "| `Queue` | `SQS3` | AwsSolutions | t.json | Its own dead-letter queue. |\n"
    (problem,) = missing_rows({"t.json": template}, section)
    assert problem.startswith(
        "README.md, Security section, accepted findings: add the row | `Queue` | `SQSQueueSSLRequestsOnly` | "
        "HIPAA | t |"
    )
    assert "a test queue" in problem


def test_the_readme_table_is_read_row_by_row_and_extra_rows_are_allowed():
    rows = listed(security_section(README.read_text(encoding="utf-8")))
    assert ("DbCluster", "RDS14") in rows
    assert ("Vpc", "VPCDefaultSecurityGroupClosed") in rows
    assert ("PublicDefaultRoute", "VPCNoUnrestrictedRouteToIGW") in rows
    # Rows for what no template accepts yet are not an error: only missing rows are.
    assert not missing_rows({}, security_section(README.read_text(encoding="utf-8")))


def test_the_rule_pack_gate_without_node_says_so_in_one_line():
    # Before the packs are imported: without Node.js, jsii would fail with a traceback.
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "rulepacks" / "run.py"), "output"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PATH": ""},
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "rulepacks: starting the rule packs: no `node` on PATH, and the packs run on Node.js; "
        "install it (apt-get install nodejs)\n"
    )
