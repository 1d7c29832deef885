"""The production stack of the Flask web application, composed from the domain blueprints.

Each blueprint takes the previous ones' typed outputs as inputs; nothing here creates a resource
itself.
"""

from __future__ import annotations

from blueprints.config import WebAppConfig
from blueprints.encryption import Keys, KeysInputs
from blueprints.network import Network, NetworkInputs
from cfnbuild import Stack

DESCRIPTION = "Flask web application stack (built by cfnbuild; see the blueprints for what it holds)"


def build_webapp(config: WebAppConfig) -> Stack:
    """The whole web-app stack for one environment."""
    stack = Stack(
        "webapp",
        description=DESCRIPTION,
        project=config.project,
        environment=config.environment,
        tags=config.tags,
    )
    keys = Keys(stack, KeysInputs())
    net = config.network
    Network(
        stack,
        NetworkInputs(
            cidr=net.cidr,
            az_count=net.az_count,
            nat_mode=net.nat_mode,
            public_subnets=tuple(net.public_subnets),
            app_subnets=tuple(net.app_subnets),
            data_subnets=tuple(net.data_subnets),
            flow_log_retention_days=net.flow_log_retention_days,
            flow_log_key_arn=keys.logs_key_arn,
        ),
    )
    return stack
