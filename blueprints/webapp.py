"""The production stack of the Flask web application, composed from the domain blueprints.

Each blueprint takes the previous ones' typed outputs as inputs; nothing here creates a resource
itself. Order: keys → network → security groups → storage → logging → database → load
balancer → firewall (when [waf] enabled) → compute → alarms → budget.
"""

from __future__ import annotations

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
from cfnbuild import Stack

DESCRIPTION = (
    "Flask web application: VPC and NAT, ALB, Auto Scaling app servers behind nginx, Aurora MySQL "
    "with its secret, S3 assets, logs, alarms and budget (built by cfnbuild)"
)


def build_webapp(config: WebAppConfig) -> Stack:
    """The whole web-app stack for one environment."""
    stack = Stack(
        "webapp", description=DESCRIPTION, project=config.project, environment=config.environment, tags=config.tags
    )
    keys = Keys(stack, KeysInputs(key_services=ALARM_PUBLISHERS))
    network = _network(stack, config, keys)
    groups = SecurityGroups(stack, SecurityGroupsInputs(vpc_id=network.vpc_id))
    storage = Storage(stack, StorageInputs())
    logging = Logging(
        stack,
        LoggingInputs(
            retention_days=config.logs.retention_days,
            kms_key_arn=keys.logs_key_arn,
            alarm_email=config.alerts.email or "",
        ),
    )
    database = _database(stack, config, network, groups, keys)
    load_balancer = _load_balancer(stack, config, network=network, groups=groups, storage=storage, keys=keys)
    _compute(
        stack,
        config,
        network=network,
        groups=groups,
        storage=storage,
        logging=logging,
        database=database,
        load_balancer=load_balancer,
        keys=keys,
    )
    Alarms(
        stack,
        AlarmsInputs(
            topic_arn=logging.topic_arn,
            load_balancer_full_name=load_balancer.load_balancer_full_name,
            target_group_full_name=load_balancer.target_group_full_name,
            db_cluster_identifier=database.cluster_identifier,
        ),
    )
    Budget(
        stack,
        BudgetInputs(
            monthly_limit_usd=config.budget.monthly_limit_usd or 0,
            email=config.alerts.email or "",
            topic_arn=logging.topic_arn,
            actual_threshold_percent=config.budget.actual_threshold_percent,
            forecast_threshold_percent=config.budget.forecast_threshold_percent,
        ),
    )
    return stack


def _network(stack: Stack, config: WebAppConfig, keys: Keys) -> Network:
    """The VPC, its subnets per zone, NAT and flow logs."""
    net = config.network
    return Network(
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


def _database(stack: Stack, config: WebAppConfig, network: Network, groups: SecurityGroups, keys: Keys) -> Database:
    """Aurora MySQL in the data subnets, with its rotating secret and log groups."""
    db = config.database
    return Database(
        stack,
        DatabaseInputs(
            subnet_ids=network.data_subnet_ids,
            security_group_id=groups.db_group_id,
            vpc_id=network.vpc_id,
            instance_class=db.instance_class,
            reader_count=db.reader_count,
            backup_retention_days=db.backup_retention_days,
            deletion_protection=db.deletion_protection,
            monitoring_interval_seconds=db.monitoring_interval_seconds,
            performance_insights=db.performance_insights,
            kms_key_arn=keys.logs_key_arn,
            rotation_days=db.rotation_days,
            # The rotation function runs in the data subnets and calls Secrets Manager through NAT.
            rotation_depends_on=tuple(route.title for route in network.nat_routes),
            log_retention_days=db.log_retention_days,
        ),
    )


def _load_balancer(
    stack: Stack, config: WebAppConfig, *, network: Network, groups: SecurityGroups, storage: Storage, keys: Keys
) -> LoadBalancer:
    """The ALB in the public subnets, and the web ACL in front of it when [waf] enabled."""
    load_balancer = LoadBalancer(
        stack,
        LoadBalancerInputs(
            vpc_id=network.vpc_id,
            subnet_ids=network.public_subnet_ids,
            security_group_id=groups.alb_group_id,
            log_bucket_name=storage.log_bucket_name,
            log_prefix=storage.alb_log_prefix,
            depends_on=(storage.log_bucket_policy.title,),
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
                kms_key_arn=keys.logs_key_arn,
                rate_limit_per_5_min=config.waf.rate_limit_per_5_min,
                log_retention_days=config.waf.log_retention_days,
            ),
        )
    return load_balancer


def _compute(
    stack: Stack,
    config: WebAppConfig,
    *,
    network: Network,
    groups: SecurityGroups,
    storage: Storage,
    logging: Logging,
    database: Database,
    load_balancer: LoadBalancer,
    keys: Keys,
) -> None:
    """The Auto Scaling group of app servers behind the ALB."""
    compute = config.compute
    Compute(
        stack,
        ComputeInputs(
            subnet_ids=network.app_subnet_ids,
            security_group_id=groups.app_group_id,
            target_group_arn=load_balancer.target_group_arn,
            assets_bucket=storage.assets_bucket,
            db_secret=database.secret,
            log_groups=logging.log_groups,
            kms_key=keys.logs_key,
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
            depends_on=(
                *(route.title for route in network.nat_routes),
                database.attachment.title,
                database.instances[0].title,
            ),
        ),
    )
