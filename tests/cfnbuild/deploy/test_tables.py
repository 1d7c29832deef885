"""Tables at 80 columns: a resource type name is never split mid-word (the logical IDs fold instead)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from rich.console import Console

from cfnbuild.deploy.events import LiveReporter
from cfnbuild.deploy.plan import Plan, ResourceChange, render_text

# The flagship's longest type names, and a longer one.
TYPES = [
    "AWS::SecretsManager::SecretTargetAttachment",
    "AWS::EC2::SubnetRouteTableAssociation",
    "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "AWS::RDS::DBClusterParameterGroup",
    "AWS::CertificateManager::Certificate",
]


def _whole(text: str, name: str) -> bool:
    return any(re.search(rf"(^|\s){re.escape(name)}(\s|$)", line) for line in text.splitlines())


def _change(logical_id: str, resource_type: str, action: str, replacement: str, danger: bool) -> ResourceChange:
    return ResourceChange(logical_id, resource_type, action, replacement, None, danger, danger, (), ())


def test_a_plan_table_at_80_columns_keeps_every_type_name_whole_even_with_dangers_and_replacements():
    changes = [
        _change(f"DbSecretAttachmentWithAVeryLongLogicalId{index}", name, "Modify", "Conditional", index == 0)
        for index, name in enumerate(TYPES)
    ]
    plan = Plan("webapp-prod", "cs", "UPDATE", tuple(changes), (), (), "h", None)
    console = Console(record=True, width=80)

    render_text(plan, console)

    text = console.export_text()
    assert [name for name in TYPES if not _whole(text, name)] == []
    assert "Replacement" in text  # an update that may replace shows the column
    assert max(len(line.rstrip()) for line in text.splitlines() if "AWS::" in line) <= 80


def test_a_create_plan_leaves_out_the_replacement_column_whose_cells_would_all_be_a_dash():
    plan = Plan(
        "webapp-dev",
        "cs",
        "CREATE",
        tuple(_change(f"R{i}", t, "Add", "", False) for i, t in enumerate(TYPES)),
        (),
        (),
        "h",
        None,
    )
    console = Console(record=True, width=80)

    render_text(plan, console)

    text = console.export_text()
    assert "Replacement" not in text
    assert [name for name in TYPES if not _whole(text, name)] == []


def test_the_live_events_table_at_80_columns_keeps_type_and_status_whole():
    reporter = LiveReporter(Console(width=80, force_terminal=False))
    now = datetime.now(UTC)
    for index, name in enumerate(TYPES):
        reporter._running[f"AVeryLongLogicalIdOfTheFlagshipNumber{index}"] = (name, "UPDATE_ROLLBACK_IN_PROGRESS", now)
    console = Console(record=True, width=80)

    console.print(reporter.render())

    text = console.export_text()
    assert [name for name in TYPES if not _whole(text, name)] == []
    assert _whole(text, "UPDATE_ROLLBACK_IN_PROGRESS")
