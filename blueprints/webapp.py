"""The Flask web application, composed from the domain blueprints into three stacks: network → data → webapp.

Each blueprint takes the previous ones' typed outputs as inputs; nothing here creates a resource
itself. The same composition places each layer in a stack (:class:`Placement`):

- ``network``: the KMS key, the VPC, subnets, NAT, routes, flow logs and the security groups;
- ``data``: what keeps data: S3 buckets, the app's log groups and alarm topic, Aurora and its secret;
- ``webapp``: what churns: load balancer (and web ACL), app servers, alarms, budget.

A value that crosses from one stack to another goes through :func:`_Link.value` (a ``stack.use``
parameter, filled by ``cfnbuild deploy`` from the upstream's outputs), a resource through
:func:`_Link.resource` (a :class:`~cfnbuild.build.external.StackResource` the grants scope to
by ARN); within one stack the blueprints reference each other directly, and a DependsOn that
would cross stacks is dropped (the order of the graph covers it). :func:`build_all_in_one`
places every layer in one stack (the Service Catalog product, see :mod:`cfnbuild.cli.export`).

Every resource keeps the logical ID it had in the single ``webapp`` stack of the previous release,
and the network and data stacks name their resources after the web-app's deployed stack
(``named_after``), so moving them there changes no create-only value: the upgrade replaces nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from troposphere import AWSHelperFn, AWSObject, Select, Split

from blueprints.budget import Budget, BudgetInputs
from blueprints.compute import Compute, ComputeInputs
from blueprints.config import WebAppConfig
from blueprints.database import Database, DatabaseInputs
from blueprints.encryption import Keys, KeysInputs
from blueprints.loadbalancer import LoadBalancer, LoadBalancerInputs
from blueprints.network import Network, NetworkInputs
from blueprints.observability import ALARM_PUBLISHERS, Alarms, AlarmsInputs, Logging, LoggingInputs
from blueprints.security import SecurityGroups, SecurityGroupsInputs
from blueprints.storage import Storage, StorageInputs
from blueprints.waf import Waf, WafInputs
from cfnbuild import Stack, logical_id
from cfnbuild.build.external import Resource

APP_STACK = "webapp"  # the stack of the previous release, which the others were split from
LAYERS = ("network", "data", APP_STACK)
DESCRIPTIONS = {
    "network": "Flask web application, network: KMS key, VPC, subnets, NAT, flow logs, security groups "
    "(built by cfnbuild)",
    "data": "Flask web application, data: Aurora MySQL with its secret, S3 assets and logs buckets, log groups "
    "and alarm topic (built by cfnbuild)",
    APP_STACK: "Flask web application: ALB, Auto Scaling app servers behind nginx, alarms and budget "
    "(built by cfnbuild)",
}
ALL_IN_ONE_DESCRIPTION = (
    "Flask web application: VPC and NAT, ALB, Auto Scaling app servers behind nginx, Aurora MySQL "
    "with its secret, S3 assets, logs, alarms and budget (built by cfnbuild)"
)


@dataclass(frozen=True)
class Placement:
    """The stack each layer goes into (the same stack three times: all in one)."""

    network: Stack
    data: Stack
    webapp: Stack

    def named_after(self, config: WebAppConfig, stack: Stack) -> str:
        """The name a layer's resources carry: the web-app's deployed name when split off it; else its own."""
        return config.stack_name(APP_STACK) if stack is not self.webapp else ""


@dataclass(frozen=True)
class _Link:
    """How a consumer stack takes a producer's values: directly when they are one stack, else by parameter."""

    consumer: Stack
    producer: Stack

    @property
    def split(self) -> bool:
        return self.consumer is not self.producer

    def value(self, output: str, value: AWSHelperFn) -> AWSHelperFn:
        """``value`` in the producer, as the consumer sees it (``output`` of the producer when split)."""
        return self.consumer.use(self.producer.name, output) if self.split else value

    def ids(self, output: str, ids: Sequence[AWSHelperFn]) -> list[AWSHelperFn]:
        """A list the producer outputs comma-joined as ``output``, one item per element."""
        if not self.split:
            return list(ids)
        joined = Split(",", self.consumer.use(self.producer.name, output))
        return [Select(index, joined) for index in range(len(ids))]

    def resource(self, resource: AWSObject, *, ref: str, arn: str = "") -> Resource:
        """``resource`` itself, or a handle on it (outputs ``ref`` and ``arn`` of the producer) when split."""
        if not self.split:
            return resource
        return self.consumer.use_resource(
            self.producer.name, resource.title, resource.resource_type, ref=ref, arn=arn or None
        )

    def depends_on(self, *logical_ids: str) -> tuple[str, ...]:
        """A DependsOn on producer resources: kept within one stack; across stacks the graph's order covers it."""
        return () if self.split else logical_ids


def _stack(config: WebAppConfig, name: str, description: str) -> Stack:
    return Stack(
        name, description=description, project=config.project, environment=config.environment, tags=config.tags
    )


def split_placement(config: WebAppConfig) -> Placement:
    """Each layer in its own stack: ``network``, ``data`` and ``webapp``."""
    network, data, app = (_stack(config, name, DESCRIPTIONS[name]) for name in LAYERS)
    return Placement(network=network, data=data, webapp=app)


def build_network(config: WebAppConfig) -> Stack:
    """The network stack: KMS key, VPC and subnets, NAT, flow logs, security groups."""
    placement = split_placement(config)
    _compose(config, placement, last="network")
    return placement.network


def build_data(config: WebAppConfig) -> Stack:
    """The data stack: buckets, the app's log groups and alarm topic, the database and its secret."""
    placement = split_placement(config)
    _compose(config, placement, last="data")
    return placement.data


def build_webapp(config: WebAppConfig) -> Stack:
    """The web-app stack: load balancer (and web ACL), app servers, alarms, budget."""
    placement = split_placement(config)
    _compose(config, placement, last=APP_STACK)
    return placement.webapp


def build_all_in_one(config: WebAppConfig) -> Stack:
    """Every layer in one stack named ``webapp`` (the Service Catalog product: one launch, no wiring)."""
    stack = _stack(config, APP_STACK, ALL_IN_ONE_DESCRIPTION)
    _compose(config, Placement(network=stack, data=stack, webapp=stack), last=APP_STACK)
    return stack


@dataclass(frozen=True)
class _NetworkLayer:
    keys: Keys
    network: Network
    groups: SecurityGroups


@dataclass(frozen=True)
class _DataLayer:
    storage: Storage
    logging: Logging
    database: Database


def _compose(config: WebAppConfig, placement: Placement, *, last: str) -> None:
    """Build the layers in order into their stacks, up to and including ``last``."""
    net = _network_layer(config, placement)
    if last == "network":
        return
    data = _data_layer(config, placement, net)
    if last == "data":
        return
    _app_layer(config, placement, net, data)


def _network_layer(config: WebAppConfig, placement: Placement) -> _NetworkLayer:
    """The key, the VPC with its subnets per zone, NAT and flow logs, and the security groups."""
    stack, net = placement.network, config.network
    named_after = placement.named_after(config, stack)
    keys = Keys(stack, KeysInputs(key_services=ALARM_PUBLISHERS))
    network = Network(
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
            named_after=named_after,
        ),
    )
    groups = SecurityGroups(stack, SecurityGroupsInputs(vpc_id=network.vpc_id, named_after=named_after))
    return _NetworkLayer(keys, network, groups)


def _data_layer(config: WebAppConfig, placement: Placement, net: _NetworkLayer) -> _DataLayer:
    """The buckets, the app's log groups and topic, Aurora MySQL with its rotating secret and log groups."""
    stack, db = placement.data, config.database
    link = _Link(stack, placement.network)
    key_arn = link.value("LogsKeyArn", net.keys.logs_key_arn)
    storage = Storage(stack, StorageInputs())
    logging = Logging(
        stack,
        LoggingInputs(
            retention_days=config.logs.retention_days, kms_key_arn=key_arn, alarm_email=config.alerts.email or ""
        ),
    )
    database = Database(
        stack,
        DatabaseInputs(
            subnet_ids=link.ids("DataSubnetIds", net.network.data_subnet_ids),
            security_group_id=link.value("DbSecurityGroupId", net.groups.db_group_id),
            vpc_id=link.value("VpcId", net.network.vpc_id),
            instance_class=db.instance_class,
            reader_count=db.reader_count,
            backup_retention_days=db.backup_retention_days,
            deletion_protection=db.deletion_protection,
            monitoring_interval_seconds=db.monitoring_interval_seconds,
            performance_insights=db.performance_insights,
            kms_key_arn=key_arn,
            rotation_days=db.rotation_days,
            # The rotation function runs in the data subnets and calls Secrets Manager through NAT.
            rotation_depends_on=link.depends_on(*(route.title for route in net.network.nat_routes)),
            log_retention_days=db.log_retention_days,
            named_after=placement.named_after(config, stack),
        ),
    )
    return _DataLayer(storage, logging, database)


def _app_layer(config: WebAppConfig, placement: Placement, net: _NetworkLayer, data: _DataLayer) -> None:
    """Load balancer (and web ACL), app servers, alarms and budget."""
    stack = placement.webapp
    from_data = _Link(stack, placement.data)
    load_balancer = _load_balancer(config, placement, net, data)
    _compute(config, placement, net, data, load_balancer)
    topic_arn = from_data.value("AlarmTopicArn", data.logging.topic_arn)
    Alarms(
        stack,
        AlarmsInputs(
            topic_arn=topic_arn,
            load_balancer_full_name=load_balancer.load_balancer_full_name,
            target_group_full_name=load_balancer.target_group_full_name,
            db_cluster_identifier=from_data.value("DbClusterIdentifier", data.database.cluster_identifier),
        ),
    )
    Budget(
        stack,
        BudgetInputs(
            monthly_limit_usd=config.budget.monthly_limit_usd or 0,
            email=config.alerts.email or "",
            topic_arn=topic_arn,
            actual_threshold_percent=config.budget.actual_threshold_percent,
            forecast_threshold_percent=config.budget.forecast_threshold_percent,
        ),
    )


def _load_balancer(config: WebAppConfig, placement: Placement, net: _NetworkLayer, data: _DataLayer) -> LoadBalancer:
    """The ALB in the public subnets, and the web ACL in front of it when [waf] enabled."""
    stack = placement.webapp
    from_network, from_data = _Link(stack, placement.network), _Link(stack, placement.data)
    load_balancer = LoadBalancer(
        stack,
        LoadBalancerInputs(
            vpc_id=from_network.value("VpcId", net.network.vpc_id),
            subnet_ids=from_network.ids("PublicSubnetIds", net.network.public_subnet_ids),
            security_group_id=from_network.value("AlbSecurityGroupId", net.groups.alb_group_id),
            log_bucket_name=from_data.value("LogBucketName", data.storage.log_bucket_name),
            log_prefix=data.storage.alb_log_prefix,
            depends_on=from_data.depends_on(data.storage.log_bucket_policy.title),
            deletion_protection=config.load_balancer.deletion_protection,
            idle_timeout_seconds=config.load_balancer.idle_timeout_seconds,
            domain_name=config.dns.domain or "",
            hosted_zone_id=config.dns.hosted_zone_id or "",
        ),
    )
    if not config.waf.enabled:
        load_balancer.accept_finding(
            load_balancer.load_balancer,
            ["NIST.800.53.R5-ALBWAFEnabled", "PCI.DSS.321-ALBWAFEnabled"],
            "This environment's config sets waf.enabled = false to keep it cheap (AWS WAF costs about "
            "$9 a month before requests); staging and prod put the web ACL in front of their load balancers.",
        )
    else:
        Waf(
            stack,
            WafInputs(
                load_balancer_arn=load_balancer.load_balancer_arn,
                kms_key_arn=from_network.value("LogsKeyArn", net.keys.logs_key_arn),
                rate_limit_per_5_min=config.waf.rate_limit_per_5_min,
                log_retention_days=config.waf.log_retention_days,
            ),
        )
    return load_balancer


def _compute(
    config: WebAppConfig, placement: Placement, net: _NetworkLayer, data: _DataLayer, load_balancer: LoadBalancer
) -> None:
    """The Auto Scaling group of app servers behind the ALB."""
    stack, compute = placement.webapp, config.compute
    from_network, from_data = _Link(stack, placement.network), _Link(stack, placement.data)
    log_groups: dict[str, Resource] = {
        name: from_data.resource(group, ref=logical_id(name, "LogGroupName"))
        for name, group in data.logging.log_groups.items()
    }
    database = data.database
    Compute(
        stack,
        ComputeInputs(
            subnet_ids=from_network.ids("AppSubnetIds", net.network.app_subnet_ids),
            security_group_id=from_network.value("AppSecurityGroupId", net.groups.app_group_id),
            target_group_arn=load_balancer.target_group_arn,
            assets_bucket=from_data.resource(data.storage.assets_bucket, ref="AssetsBucketName", arn="AssetsBucketArn"),
            db_secret=from_data.resource(database.secret, ref="DbSecretArn"),
            log_groups=log_groups,
            # KMS takes a key's ARN wherever it takes its ID (https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#key-id).
            kms_key=from_network.resource(net.keys.logs_key, ref="LogsKeyArn", arn="LogsKeyArn"),
            instance_type=compute.instance_type,
            min_size=compute.min_size,
            max_size=compute.max_size,
            desired_capacity=compute.desired_capacity,
            cpu_target_percent=compute.cpu_target_percent,
            health_check_grace_seconds=compute.health_check_grace_seconds,
            http_port=load_balancer.target_port,
            # The first instances install packages through NAT, read the database's host from the
            # secret and run the migrations against the writer: nothing they reference leads
            # CloudFormation to the NAT routes, the secret's attachment or the writer instance.
            # Across stacks the graph's order covers it: network and data are complete first.
            depends_on=(
                *from_network.depends_on(*(route.title for route in net.network.nat_routes)),
                *from_data.depends_on(database.attachment.title, database.instances[0].title),
            ),
        ),
    )
