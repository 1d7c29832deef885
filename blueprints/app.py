"""The project definition the ``cfnbuild`` CLI loads (``[tool.cfnbuild] app`` in pyproject.toml).

Three stacks, deployed in this order (each takes the previous ones' outputs with ``stack.use``):
``network`` and ``data`` change rarely and hold what must not be lost; ``webapp`` churns. See
the README's "Why three stacks" and :mod:`blueprints.webapp`.
"""

from __future__ import annotations

from blueprints.config import WebAppConfig
from blueprints.webapp import build_data, build_network, build_webapp
from cfnbuild import App, StackSpec

app = App(
    config_model=WebAppConfig,
    stacks=[
        StackSpec("network", build_network, "The KMS key, VPC, subnets, NAT, flow logs and security groups."),
        StackSpec("data", build_data, "The database and its secret, the S3 buckets, the log groups and alarm topic."),
        StackSpec("webapp", build_webapp, "The load balancer, the app servers, alarms and budget."),
    ],
)
