"""The web-app project's configuration: what ``config/<env>.toml`` may hold.

Every key is checked before anything is built; each problem names the file, the key and the fix
(see :mod:`cfnbuild.config`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from blueprints.network import plan_subnets
from cfnbuild import Cidr, EnvironmentConfig, Invalid, Section
from cfnbuild.regions import az_count as region_az_count

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


class NetworkConfig(Section):
    """``[network]``: the VPC and its subnets."""

    cidr: Cidr = Field(default="10.0.0.0/16", description="The VPC's IPv4 block, /16 to /24.")
    az_count: int = Field(default=2, description="Availability Zones to span: 2 or 3.")
    nat_mode: Literal["single", "per-az"] = Field(default="single", description="One NAT gateway, or one per zone.")
    public_subnets: list[Cidr] = Field(default_factory=list, description="Explicit public subnet blocks.")
    app_subnets: list[Cidr] = Field(default_factory=list, description="Explicit private app subnet blocks.")
    data_subnets: list[Cidr] = Field(default_factory=list, description="Explicit private data subnet blocks.")
    flow_log_retention_days: int = Field(default=90, description="Days VPC flow logs are kept.")

    @model_validator(mode="after")
    def _check(self) -> NetworkConfig:
        if self.az_count not in (2, 3):
            raise Invalid(f"az_count is {self.az_count}", "span 2 or 3 Availability Zones", key="az_count")
        if self.flow_log_retention_days not in LOG_RETENTION_DAYS:
            raise Invalid(
                f"flow_log_retention_days is {self.flow_log_retention_days}, which CloudWatch Logs does not offer",
                f"use one of {', '.join(map(str, LOG_RETENTION_DAYS))}",
                key="flow_log_retention_days",
            )
        explicit = {
            "public": tuple(self.public_subnets),
            "app": tuple(self.app_subnets),
            "data": tuple(self.data_subnets),
        }
        plan_subnets(self.cidr, self.az_count, explicit)
        return self


class WebAppConfig(EnvironmentConfig):
    """One environment of the Flask web application."""

    network: NetworkConfig = Field(default_factory=NetworkConfig, description="[network] section.")

    @model_validator(mode="after")
    def _zones_exist(self) -> WebAppConfig:
        for region in self.regions:
            available = region_az_count(region)
            if self.network.az_count > available:
                raise Invalid(
                    f"network.az_count is {self.network.az_count} but {region} offers {available} Availability Zones",
                    f"set network.az_count to {available} or less, or deploy to another region",
                    key="network.az_count",
                )
        return self
