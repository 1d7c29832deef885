"""The web-app project's configuration: what ``config/<env>.toml`` may hold.

Every key is checked before anything is built; each problem names the file, the key and the fix
(see :mod:`cfnbuild.project.config`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from blueprints.budget import BUDGET_REGION_PARAMETER
from blueprints.compute import DEFAULT_GRACE_SECONDS
from blueprints.instance_files import launch_hook_timeout, render_user_data
from blueprints.network import plan_subnets
from cfnbuild import Cidr, DomainName, Email, EnvironmentConfig, Invalid, Section
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


def check_log_retention(days: int, key: str) -> None:
    """Refuse a retention CloudWatch Logs does not offer, naming ``key``."""
    if days not in LOG_RETENTION_DAYS:
        raise Invalid(
            f"{key} is {days}, which CloudWatch Logs does not offer",
            f"use one of {', '.join(map(str, LOG_RETENTION_DAYS))}",
            key=key,
        )


# The bounds of a WAF rate-based rule's limit: "The lowest limit setting allowed is 10" (WAF
# Developer Guide, "Rate-based rule high-level settings",
# https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-type-rate-based-high-level-settings.html);
# at most 2,000,000,000 (WAFV2 API Reference, RateBasedStatement Limit,
# https://docs.aws.amazon.com/waf/latest/APIReference/API_RateBasedStatement.html; the same bounds
# are in the AWS::WAFv2::WebACL resource schema).
RATE_LIMIT_MIN = 10
RATE_LIMIT_MAX = 2_000_000_000
# Secrets Manager's rotation period: RotationRulesType.AutomaticallyAfterDays, "Valid Range: Minimum
# value of 1. Maximum value of 1000."
# (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotationRulesType.html)
ROTATION_DAYS_MIN, ROTATION_DAYS_MAX = 1, 1000
# The database secret rotates through Secrets Manager's hosted function, which the
# AWS::SecretsManager transform (a macro) expands; CloudFormation creates or updates a stack from
# a template with a macro only when the caller acknowledges CAPABILITY_AUTO_EXPAND
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html).
TRANSFORM_CAPABILITY = "CAPABILITY_AUTO_EXPAND"
DEFAULT_CAPABILITIES = ("CAPABILITY_IAM", TRANSFORM_CAPABILITY)


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
        check_log_retention(self.flow_log_retention_days, "flow_log_retention_days")
        explicit = {
            "public": tuple(self.public_subnets),
            "app": tuple(self.app_subnets),
            "data": tuple(self.data_subnets),
        }
        plan_subnets(self.cidr, self.az_count, explicit)
        return self


class ComputeConfig(Section):
    """``[compute]``: the Auto Scaling group of app servers."""

    instance_type: str = Field(
        default="t3.small",
        pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$",
        examples=["t3.small"],
        description="EC2 instance type.",
    )
    min_size: int = Field(default=2, ge=0, le=100, description="Fewest instances.")
    max_size: int = Field(default=4, ge=1, le=100, description="Most instances.")
    desired_capacity: int = Field(default=2, ge=0, le=100, description="Instances at creation.")
    cpu_target_percent: int = Field(default=50, ge=10, le=90, description="Average CPU the scaling policy keeps.")
    health_check_grace_seconds: int = Field(
        default=DEFAULT_GRACE_SECONDS,
        ge=0,
        le=3600,
        description="Seconds after an instance goes in service (its bootstrap done) before ELB health checks count.",
    )

    @model_validator(mode="after")
    def _check(self) -> ComputeConfig:
        if self.min_size > self.max_size:
            raise Invalid(
                f"min_size {self.min_size} is greater than max_size {self.max_size}",
                "make min_size at most max_size",
                key="min_size",
            )
        if not self.min_size <= self.desired_capacity <= self.max_size:
            raise Invalid(
                f"desired_capacity {self.desired_capacity} is outside min_size..max_size "
                f"({self.min_size}..{self.max_size})",
                "choose a desired_capacity between them",
                key="desired_capacity",
            )
        # The launch hook holds a new instance until its bootstrap ends; the grace period starts after.
        hook = launch_hook_timeout(render_user_data())
        if self.health_check_grace_seconds >= hook:
            raise Invalid(
                f"health_check_grace_seconds {self.health_check_grace_seconds} is not below the launch hook's "
                f"{hook} s, which already holds each new instance until its bootstrap ends",
                f"the grace period only covers the load balancer's first checks after that: use 0 to {hook - 1} "
                f"(default {DEFAULT_GRACE_SECONDS})",
                key="health_check_grace_seconds",
            )
        return self


class DatabaseConfig(Section):
    """``[database]``: the Aurora MySQL cluster."""

    instance_class: str = Field(
        default="db.t4g.medium",
        pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$",
        examples=["db.t4g.medium"],
        description="DB instance class.",
    )
    reader_count: int = Field(default=1, ge=0, le=15, description="Reader instances besides the writer.")
    backup_retention_days: int = Field(default=7, ge=1, le=35, description="Days automated backups are kept.")
    deletion_protection: bool = Field(default=False, description="Refuse to delete the cluster (prod: true).")
    monitoring_interval_seconds: Literal[1, 5, 10, 15, 30, 60] = Field(
        default=60, description="Enhanced monitoring granularity."
    )
    performance_insights: bool = Field(default=True, description="Turn on Performance Insights.")
    rotation_days: int = Field(
        default=30,
        description=f"Days between rotations of the master password ({ROTATION_DAYS_MIN} to {ROTATION_DAYS_MAX}).",
    )
    log_retention_days: int = Field(default=30, description="Days the exported database logs are kept.")

    @model_validator(mode="after")
    def _check(self) -> DatabaseConfig:
        if not ROTATION_DAYS_MIN <= self.rotation_days <= ROTATION_DAYS_MAX:
            raise Invalid(
                f"rotation_days is {self.rotation_days}, outside what Secrets Manager accepts",
                f"rotate every {ROTATION_DAYS_MIN} to {ROTATION_DAYS_MAX} days",
                key="rotation_days",
            )
        check_log_retention(self.log_retention_days, "log_retention_days")
        return self


class LoadBalancerConfig(Section):
    """``[load_balancer]``: the internet-facing ALB."""

    deletion_protection: bool = Field(default=False, description="Refuse to delete the ALB (prod: true).")
    idle_timeout_seconds: int = Field(default=60, ge=1, le=4000, description="Idle connection timeout.")
    allow_plain_http: bool = Field(
        default=False,
        description="Serve the app over plain HTTP when [dns] gives no domain (dev only; never in prod).",
    )


class DnsConfig(Section):
    """``[dns]``: serve HTTPS on a domain of a Route 53 hosted zone (both keys, or neither)."""

    domain: DomainName | None = Field(default=None, description="The app's domain, e.g. app.example.com.")
    hosted_zone_id: str | None = Field(
        default=None,
        pattern=r"^Z[A-Z0-9]{1,31}$",
        examples=["Z0123456789ABCDEFGHIJ"],
        description="The Route 53 hosted zone that holds the domain.",
    )

    @model_validator(mode="after")
    def _check(self) -> DnsConfig:
        if self.domain and not self.hosted_zone_id:
            raise Invalid(
                "a domain needs a hosted zone for its certificate's DNS validation and its alias record",
                "add hosted_zone_id (the Route 53 zone of the domain), or remove domain to serve plain HTTP",
                key="hosted_zone_id",
            )
        if self.hosted_zone_id and not self.domain:
            raise Invalid(
                "hosted_zone_id without a domain does nothing", "add domain, or remove hosted_zone_id", key="domain"
            )
        return self


class LogsConfig(Section):
    """``[logs]``: the application, nginx and bootstrap log groups."""

    retention_days: int = Field(default=30, description="Days the app's logs are kept.")

    @model_validator(mode="after")
    def _check(self) -> LogsConfig:
        check_log_retention(self.retention_days, "retention_days")
        return self


class AlertsConfig(Section):
    """``[alerts]``: where alarms and budget notifications go."""

    email: Email | None = Field(default=None, description="Subscribe this address to the alarm topic.")


class BudgetConfig(Section):
    """``[budget]``: a monthly cost budget; none without an amount."""

    monthly_limit_usd: int | None = Field(default=None, ge=1, le=10_000_000, description="Monthly budget in USD.")
    forecast_threshold_percent: int = Field(default=100, ge=1, le=1000, description="Alert on forecast above this.")
    actual_threshold_percent: int = Field(default=80, ge=1, le=1000, description="Alert on actual cost above this.")


class WafConfig(Section):
    """``[waf]``: AWS WAF in front of the load balancer (on unless an environment turns it off)."""

    enabled: bool = Field(
        default=True, description="Put a web ACL with AWS managed rules and a rate limit in front of the ALB."
    )
    rate_limit_per_5_min: int = Field(
        default=2000, description="Requests one client address may send in 5 minutes before WAF blocks it."
    )
    log_retention_days: int = Field(default=90, description="Days the log group of blocked requests keeps them.")

    @model_validator(mode="after")
    def _check(self) -> WafConfig:
        if not RATE_LIMIT_MIN <= self.rate_limit_per_5_min <= RATE_LIMIT_MAX:
            raise Invalid(
                f"rate_limit_per_5_min is {self.rate_limit_per_5_min}, outside what AWS WAF accepts",
                f"use {RATE_LIMIT_MIN} to {RATE_LIMIT_MAX:,} requests per 5 minutes",
                key="rate_limit_per_5_min",
            )
        check_log_retention(self.log_retention_days, "log_retention_days")
        return self


class WebAppConfig(EnvironmentConfig):
    """One environment of the Flask web application."""

    network: NetworkConfig = Field(default_factory=NetworkConfig, description="[network] section.")
    compute: ComputeConfig = Field(default_factory=ComputeConfig, description="[compute] section.")
    database: DatabaseConfig = Field(default_factory=DatabaseConfig, description="[database] section.")
    load_balancer: LoadBalancerConfig = Field(default_factory=LoadBalancerConfig, description="[load_balancer].")
    dns: DnsConfig = Field(default_factory=DnsConfig, description="[dns] section.")
    logs: LogsConfig = Field(default_factory=LogsConfig, description="[logs] section.")
    alerts: AlertsConfig = Field(default_factory=AlertsConfig, description="[alerts] section.")
    budget: BudgetConfig = Field(default_factory=BudgetConfig, description="[budget] section.")
    waf: WafConfig = Field(default_factory=WafConfig, description="[waf] section.")

    @model_validator(mode="before")
    @classmethod
    def _transform_is_acknowledged(cls, data: Any) -> Any:
        """The template declares a transform (the database's rotation): deploys acknowledge it by default.

        A config that lists ``[deploy] capabilities`` itself keeps its list, and is refused
        after validation if the list lacks CAPABILITY_AUTO_EXPAND (:meth:`_transform_capability`).
        """
        if isinstance(data, dict):
            deploy = data.get("deploy")
            if deploy is None:
                return {**data, "deploy": {"capabilities": list(DEFAULT_CAPABILITIES)}}
            if isinstance(deploy, dict) and "capabilities" not in deploy:
                return {**data, "deploy": {**deploy, "capabilities": list(DEFAULT_CAPABILITIES)}}
        return data

    @model_validator(mode="after")
    def _transform_capability(self) -> WebAppConfig:
        if TRANSFORM_CAPABILITY not in self.deploy.capabilities:
            raise Invalid(
                f"capabilities lack {TRANSFORM_CAPABILITY}, which the template's AWS::SecretsManager transform "
                "(the database secret's rotation function) needs, so CloudFormation would refuse the change set",
                f"add {TRANSFORM_CAPABILITY!r} to deploy.capabilities, or remove the key for the default "
                f"({', '.join(DEFAULT_CAPABILITIES)})",
                key="deploy.capabilities",
            )
        return self

    @model_validator(mode="after")
    def _plain_http_is_a_choice(self) -> WebAppConfig:
        """Without a domain the ALB has no certificate and serves HTTP: only where the config says so."""
        key = "load_balancer.allow_plain_http"
        plain = self.load_balancer.allow_plain_http
        production = self.environment == "prod" or self.deploy.termination_protection
        if self.dns.domain is None and not plain:
            raise Invalid(
                "without [dns] domain the load balancer has no certificate and serves the app over plain HTTP",
                "give [dns] domain and hosted_zone_id for HTTPS, or set load_balancer.allow_plain_http = true "
                "to accept plain HTTP (not in prod)",
                key=key,
            )
        if self.dns.domain is not None and plain:
            raise Invalid(
                "allow_plain_http does nothing with a domain: port 80 only redirects to HTTPS", "remove it", key=key
            )
        if plain and production:
            raise Invalid(
                "a production environment (prod, or termination protection on) may not serve plain HTTP",
                "give [dns] domain and hosted_zone_id so the app is served over HTTPS",
                key=key,
            )
        return self

    @model_validator(mode="after")
    def _budget_in_first_region(self) -> WebAppConfig:
        """The budget's region (the BudgetRegion parameter) is the first of ``regions``, sent with every deploy.

        A budget covers the account, so an environment deployed to two regions must make it in
        one: the template makes it only where AWS::Region equals BudgetRegion (blueprints/budget.py).
        The value is filled here, from the config, rather than written into the template, which
        must stay the same for every region; a value given in [deploy] parameters must be one of
        the environment's regions.
        """
        key = f"deploy.parameters.{BUDGET_REGION_PARAMETER}"
        given = self.deploy.parameters.get(BUDGET_REGION_PARAMETER)
        if given is None:
            # [deploy] is frozen but its parameters are a plain dict this model owns (one per config).
            self.deploy.parameters[BUDGET_REGION_PARAMETER] = self.regions[0]
        elif given not in self.regions:
            raise Invalid(
                f"{given!r} is not one of this environment's regions ({', '.join(self.regions)})",
                f"remove it (the budget is then made in {self.regions[0]}, the first region) or name one of them",
                key=key,
            )
        return self

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
