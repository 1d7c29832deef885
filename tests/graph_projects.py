"""Small projects of several stacks wired by cross-stack references, for the graph's tests.

``graph_project(root, {"a": [], "b": [("a", "TopicArn")]})`` writes a project whose stack ``a``
makes a topic and outputs ``TopicArn``, and whose stack ``b`` takes it (``stack.use``) and
returns it again as its output ``Seen``; every stack outputs ``TopicArn`` of its own topic. A
stack named in ``broken`` also makes a queue whose dead-letter queue does not exist: the
emulator refuses its execution (``NonExistentQueue``), a real failure after its plan.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.inprocess import build_here

APP = """
from troposphere import Ref, sns, sqs

from cfnbuild import App, EnvironmentConfig, Stack, StackSpec

USES = {uses}
BROKEN = {broken}
MISSING = "arn:aws:sqs:eu-west-1:123456789012:missing"


def make(name):
    def build(config):
        stack = Stack(name, description=name, project=config.project, environment=config.environment)
        topic = stack.add_resource(sns.Topic("Topic"), owner="test")
        stack.add_output("TopicArn", Ref(topic), "The topic.", owner="test", export=False)
        if name in BROKEN:
            redrive = sqs.RedrivePolicy(deadLetterTargetArn=MISSING, maxReceiveCount=3)
            queue = sqs.Queue("Queue", RedrivePolicy=redrive, MessageRetentionPeriod=345600)
            stack.add_resource(queue, owner="test", stateful=True)
        for upstream, output in USES[name]:
            value = stack.use(upstream, output)
            seen = f"Seen{{upstream}}{{output}}"
            stack.add_output(seen, value, "What the upstream gave.", owner="test", export=False)
        return stack
    return build


app = App(config_model=EnvironmentConfig, stacks=[StackSpec(name, make(name)) for name in USES])
"""


def write_graph_project(
    root: Path, uses: Mapping[str, Sequence[tuple[str, str]]], suffix: str, broken: Sequence[str] = ()
) -> Path:
    """Write the project (not built); stacks deploy as ``<name>-dev-<suffix>``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[tool.cfnbuild]\napp = "graph_app:app"\ndefault_env = "dev"\n')
    (root / "graph_app.py").write_text(
        APP.format(uses=json.dumps({k: [list(u) for u in v] for k, v in uses.items()}), broken=list(broken))
    )
    (root / "config").mkdir(exist_ok=True)
    (root / "config/dev.toml").write_text(
        f'project = "graph"\nregions = ["eu-west-1"]\n[deploy]\nstack_name_suffix = "{suffix}"\n'
    )
    return root


def cfnbuild(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI on the project ``root``."""
    return subprocess.run(
        [sys.executable, "-m", "cfnbuild", "--project", str(root), *args], capture_output=True, text=True, check=False
    )


def graph_project(
    root: Path, uses: Mapping[str, Sequence[tuple[str, str]]], suffix: str, broken: Sequence[str] = ()
) -> Path:
    """Write the project and build it (the build must pass)."""
    write_graph_project(root, uses, suffix, broken)
    build_here(root)
    return root
