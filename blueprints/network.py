"""The network: a VPC with public, private-app and private-data subnets across 2 or 3 AZs.

Inputs: :class:`NetworkInputs`. Outputs: ``vpc_id``, ``vpc_cidr``, ``public_subnet_ids``,
``app_subnet_ids``, ``data_subnet_ids`` (lists of ``Ref``), ``flow_log_group``, ``nat_routes``
(the private default routes, for whatever must not start before it can reach the internet);
and the matching exported Outputs.

Zones are chosen at deploy time, never written in the template: the ``AvailabilityZones``
parameter records an ``availability-zones`` lookup (:mod:`cfnbuild.deploy.lookups`) that answers the
first zones by zone ID, and keeps a stack's deployed value ever after, so an update never moves
a subnet (a subnet's zone cannot change without replacing it). Left empty (a deploy without
cfnbuild, an endpoint without the API) the subnets take ``Fn::GetAZs`` as before.

NAT runs in ``single`` or ``per-az`` mode, chosen by the ``NatMode`` parameter through the
``PerAzNat`` condition, so one template serves a cheap dev and a zone-redundant prod
(failure-analysis item 12). Both private tiers route to the
internet through NAT; S3 traffic stays on the gateway endpoint. VPC flow logs go to a retained,
encrypted log group. ``DependsOn`` appears only where CloudFormation cannot infer the order
from a reference: the internet route and the NAT addresses wait for the gateway attachment
(item 18). The VPC's default security group is emptied by AWS's own runbook through a State
Manager association (:meth:`Network.close_default_security_group` says why not a Lambda).
AWS docs: https://docs.aws.amazon.com/vpc/latest/userguide/vpc-example-private-subnets-nat.html
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

import awacs.ec2
import awacs.logs
from troposphere import (
    AWSHelperFn,
    Equals,
    GetAtt,
    GetAZs,
    If,
    Join,
    Not,
    Parameter,
    Ref,
    Select,
    Split,
    Sub,
    Tags,
    ec2,
    logs,
    ssm,
)

from cfnbuild import Blueprint, Invalid, ServiceRole, setting
from cfnbuild.build.naming import partition_arn, stack_named

TIERS = ("public", "app", "data")
# Each tier takes a block of four subnets (room for a fourth zone); each subnet is 1/16 of the VPC.
SUBNET_BITS = 4
TIER_STRIDE = 4
MIN_VPC_PREFIX, MAX_VPC_PREFIX = 16, 24
NatMode = Literal["single", "per-az"]
# The AWS-owned Automation runbook that removes every rule of a VPC's default security group.
CLOSE_DEFAULT_GROUP_RUNBOOK = "AWSConfigRemediation-RemoveVPCDefaultSecurityGroupRules"
COMPLIANCE_PACKS = ("HIPAA.Security", "NIST.800.53.R5", "PCI.DSS.321")


def plan_subnets(
    cidr: str, az_count: int, explicit: dict[str, tuple[str, ...]] | None = None
) -> dict[str, tuple[str, ...]]:
    """The subnet CIDRs of each tier: explicit ones where given, else carved from ``cidr``.

    Raises :class:`~cfnbuild.Invalid` when a block is malformed, outside the VPC, overlaps
    another, or when a tier has not one block per zone.
    """
    vpc = ipaddress.IPv4Network(cidr)
    if not MIN_VPC_PREFIX <= vpc.prefixlen <= MAX_VPC_PREFIX:
        raise Invalid(
            f"VPC block {cidr} is /{vpc.prefixlen}",
            f"use a block from /{MIN_VPC_PREFIX} to /{MAX_VPC_PREFIX} (each subnet is 1/16 of it)",
            key="cidr",
        )
    carved = list(vpc.subnets(prefixlen_diff=SUBNET_BITS))
    plan: dict[str, tuple[str, ...]] = {}
    for index, tier in enumerate(TIERS):
        given = (explicit or {}).get(tier) or ()
        if given and len(given) != az_count:
            raise Invalid(
                f"{tier} subnets list {len(given)} block(s) for {az_count} zone(s)",
                f"give exactly {az_count}, one per zone, or none to carve them from the VPC",
                key=f"{tier}_subnets",
            )
        start = index * TIER_STRIDE
        plan[tier] = tuple(given) or tuple(str(n) for n in carved[start : start + az_count])
    seen: list[tuple[str, ipaddress.IPv4Network]] = []
    for tier, blocks in plan.items():
        for block in blocks:
            try:
                network = ipaddress.IPv4Network(block, strict=True)
            except ValueError as exc:
                raise Invalid(
                    f"{tier} subnet {block!r} is not a valid CIDR block ({exc})",
                    "write it like '10.0.1.0/24'",
                    key=f"{tier}_subnets",
                ) from None
            if not network.subnet_of(vpc):
                raise Invalid(
                    f"{tier} subnet {block} is outside the VPC block {cidr}",
                    f"choose a block inside {cidr}",
                    key=f"{tier}_subnets",
                )
            if network.prefixlen > 28:
                raise Invalid(
                    f"{tier} subnet {block} is smaller than /28",
                    "AWS subnets are /16 to /28; choose a larger block",
                    key=f"{tier}_subnets",
                )
            for other_tier, other in seen:
                if network.overlaps(other):
                    raise Invalid(
                        f"{tier} subnet {block} overlaps {other_tier} subnet {other}",
                        "choose blocks that do not overlap",
                        key=f"{tier}_subnets",
                    )
            seen.append((tier, network))
    return plan


@dataclass(frozen=True)
class NetworkInputs:
    """Inputs of :class:`Network`."""

    cidr: str = setting("10.0.0.0/16", "The VPC's IPv4 block, /16 to /24.")
    az_count: int = setting(2, "How many Availability Zones to span: 2 or 3.")
    nat_mode: NatMode = setting("single", "Default of the NatMode parameter: 'single' or 'per-az'.")
    public_subnets: tuple[str, ...] = setting((), "Public subnet blocks, one per zone; empty: carved from cidr.")
    app_subnets: tuple[str, ...] = setting((), "Private app subnet blocks, one per zone; empty: carved from cidr.")
    data_subnets: tuple[str, ...] = setting((), "Private data subnet blocks, one per zone; empty: carved from cidr.")
    flow_log_retention_days: int = setting(90, "Days VPC flow logs are kept (a CloudWatch Logs retention value).")
    flow_log_key_arn: AWSHelperFn | None = setting(
        None, "KMS key ARN that encrypts the flow log group; None: AWS-owned key."
    )
    named_after: str = setting(
        "",
        "The deployed stack name its Name tags and descriptions carry; empty: its own (AWS::StackName). "
        "A stack split off another keeps the other's, so no create-only value changes.",
    )


class Network(Blueprint[NetworkInputs]):
    """VPC, subnets, internet and NAT gateways, routes, S3 endpoint and flow logs."""

    vpc_id: Ref
    vpc_cidr: GetAtt
    public_subnet_ids: list[Ref]
    app_subnet_ids: list[Ref]
    data_subnet_ids: list[Ref]
    flow_log_group: logs.LogGroup
    nat_routes: list[ec2.Route]
    subnets: dict[str, tuple[str, ...]]
    zones: Parameter
    has_zones: str

    def validate(self) -> None:
        """Two or three zones, a known NAT mode, and subnet blocks that fit and do not overlap."""
        inputs = self.inputs
        if inputs.az_count not in (2, 3):
            raise self.invalid("az_count", f"is {inputs.az_count}; span 2 or 3 Availability Zones")
        if inputs.nat_mode not in ("single", "per-az"):
            raise self.invalid("nat_mode", f"is {inputs.nat_mode!r}; use 'single' or 'per-az'")
        explicit = {
            "public": inputs.public_subnets,
            "app": inputs.app_subnets,
            "data": inputs.data_subnets,
        }
        try:
            self.subnets = plan_subnets(inputs.cidr, inputs.az_count, explicit)
        except Invalid as exc:
            raise self.invalid(exc.key, str(exc)) from None
        except ValueError as exc:
            raise self.invalid("cidr", f"{inputs.cidr!r} is not a valid CIDR block ({exc})") from None

    def build(self) -> None:
        """Resources in dependency order; each piece is its own method so a subclass can change one."""
        self.nat_mode_parameter()
        self.zones_parameter()
        vpc = self.vpc()
        attachment = self.internet_gateway(vpc)
        subnets = {tier: self.subnet_tier(vpc, tier) for tier in TIERS}
        public_table = self.public_routes(vpc, attachment, subnets["public"])
        private_tables = self.private_routes(vpc, attachment, subnets)
        self.s3_endpoint(vpc, [public_table, *private_tables])
        self.flow_logs(vpc)
        self.close_default_security_group(vpc)

    def nat_mode_parameter(self) -> None:
        """The NatMode parameter and the PerAzNat condition derived from it."""
        self.parameter(
            "NatMode",
            Type="String",
            AllowedValues=["single", "per-az"],
            Default=self.inputs.nat_mode,
            Description=(
                "single: one NAT gateway for all zones (cheaper); per-az: one per zone (survives a zone outage)."
            ),
        )
        self.per_az_nat = self.condition("PerAzNat", Equals(Ref(self.lid("NatMode")), "per-az"))

    def zones_parameter(self) -> None:
        """The AvailabilityZones parameter, its lookup, and the HasZones condition (it is not empty)."""
        count = self.inputs.az_count
        zone = "[a-z]{2}(-[a-z0-9]+)+"
        self.zones = self.parameter(
            "AvailabilityZones",
            Type="String",
            Default="",
            AllowedPattern=f"^({zone}(,{zone}){{{count - 1}}})?$",
            ConstraintDescription=f"{count} comma-separated Availability Zone names, or empty",
            Description=(
                f"The {count} Availability Zones of the subnets, comma-separated; empty: Fn::GetAZs. cfnbuild deploy "
                "looks them up by zone ID at creation and keeps the stack's value on every update."
            ),
        )
        self.lookup("AvailabilityZones", kind="availability-zones", count=str(count))
        self.has_zones = self.condition("HasZones", Not(Equals(Ref(self.zones), "")))

    def zone(self, index: int) -> If:
        """The zone of the ``index``-th subnet of each tier: the parameter's, else Fn::GetAZs's."""
        # GetAZs "" is the stack's region.
        return If(self.has_zones, Select(index, Split(",", Ref(self.zones))), Select(index, GetAZs("")))

    def vpc(self) -> ec2.VPC:
        """The VPC, with DNS on (needed by the S3 endpoint and RDS endpoints)."""
        vpc = self.add(
            ec2.VPC(
                self.lid("Vpc"),
                CidrBlock=self.inputs.cidr,
                EnableDnsHostnames=True,
                EnableDnsSupport=True,
                Tags=Tags(Name=stack_named("${StackName}-vpc", self.inputs.named_after)),
            )
        )
        self.vpc_id = Ref(vpc)
        self.vpc_cidr = GetAtt(vpc, "CidrBlock")
        self.output("VpcId", self.vpc_id, "ID of the VPC.")
        self.output("VpcCidr", self.vpc_cidr, "IPv4 block of the VPC.")
        return vpc

    def internet_gateway(self, vpc: ec2.VPC) -> ec2.VPCGatewayAttachment:
        """The internet gateway and its attachment."""
        gateway = self.add(
            ec2.InternetGateway(
                self.lid("InternetGateway"), Tags=Tags(Name=stack_named("${StackName}-igw", self.inputs.named_after))
            )
        )
        return self.add(
            ec2.VPCGatewayAttachment(
                self.lid("InternetGatewayAttachment"),
                VpcId=Ref(vpc),
                InternetGatewayId=Ref(gateway),
            )
        )

    def subnet_tier(self, vpc: ec2.VPC, tier: str) -> list[ec2.Subnet]:
        """One subnet per zone for ``tier``; no subnet gives instances a public address."""
        subnets = []
        for index, block in enumerate(self.subnets[tier]):
            subnets.append(
                self.add(
                    ec2.Subnet(
                        self.lid(tier, "Subnet", index + 1),
                        VpcId=Ref(vpc),
                        CidrBlock=block,
                        AvailabilityZone=self.zone(index),
                        MapPublicIpOnLaunch=False,
                        Tags=Tags(
                            Name=stack_named(f"${{StackName}}-{tier}-{index + 1}", self.inputs.named_after), Tier=tier
                        ),
                    )
                )
            )
        ids = [Ref(s) for s in subnets]
        setattr(self, f"{tier}_subnet_ids", ids)
        self.output(
            f"{tier.capitalize()}SubnetIds",
            Join(",", ids),
            f"Comma-separated IDs of the {tier} subnets, one per zone.",
        )
        return subnets

    def public_routes(
        self, vpc: ec2.VPC, attachment: ec2.VPCGatewayAttachment, subnets: list[ec2.Subnet]
    ) -> ec2.RouteTable:
        """One public route table: the default route through the internet gateway."""
        table = self.add(
            ec2.RouteTable(
                self.lid("PublicRouteTable"),
                VpcId=Ref(vpc),
                Tags=Tags(Name=stack_named("${StackName}-public", self.inputs.named_after)),
            )
        )
        # The route references the gateway, not the attachment; without DependsOn it can be
        # created before the gateway is attached and fail.
        route = self.add(
            ec2.Route(
                self.lid("PublicDefaultRoute"),
                RouteTableId=Ref(table),
                DestinationCidrBlock="0.0.0.0/0",
                GatewayId=attachment.InternetGatewayId,
                DependsOn=[attachment.title],
            )
        )
        self.accept_finding(
            route,
            [f"{pack}-VPCNoUnrestrictedRouteToIGW" for pack in COMPLIANCE_PACKS],
            "The public subnets hold only the internet-facing load balancer and the NAT gateways, which "
            "need a default route to the internet gateway; no subnet maps public addresses, and the "
            "instances and the database are in the private subnets, whose routes go through NAT.",
        )
        for index, subnet in enumerate(subnets):
            self.add(
                ec2.SubnetRouteTableAssociation(
                    self.lid("PublicSubnetRoutes", index + 1),
                    RouteTableId=Ref(table),
                    SubnetId=Ref(subnet),
                )
            )
        return table

    def private_routes(
        self,
        vpc: ec2.VPC,
        attachment: ec2.VPCGatewayAttachment,
        subnets: dict[str, list[ec2.Subnet]],
    ) -> list[ec2.RouteTable]:
        """NAT gateways (the first always, the others under PerAzNat) and one private table per zone."""
        nats = []
        for index, public in enumerate(subnets["public"]):
            condition = None if index == 0 else self.per_az_nat
            extra = {"Condition": condition} if condition else {}
            # An EIP in a VPC with an internet gateway needs the attachment first (EIP docs).
            address = self.add(
                ec2.EIP(
                    self.lid("NatAddress", index + 1),
                    Domain="vpc",
                    DependsOn=[attachment.title],
                    Tags=Tags(Name=stack_named(f"${{StackName}}-nat-{index + 1}", self.inputs.named_after)),
                    **extra,
                )
            )
            nats.append(
                self.add(
                    ec2.NatGateway(
                        self.lid("NatGateway", index + 1),
                        AllocationId=GetAtt(address, "AllocationId"),
                        SubnetId=Ref(public),
                        Tags=Tags(Name=stack_named(f"${{StackName}}-nat-{index + 1}", self.inputs.named_after)),
                        **extra,
                    )
                )
            )
        tables = []
        self.nat_routes = []
        for index in range(self.inputs.az_count):
            table = self.add(
                ec2.RouteTable(
                    self.lid("PrivateRouteTable", index + 1),
                    VpcId=Ref(vpc),
                    Tags=Tags(Name=stack_named(f"${{StackName}}-private-{index + 1}", self.inputs.named_after)),
                )
            )
            nat = Ref(nats[0]) if index == 0 else If(self.per_az_nat, Ref(nats[index]), Ref(nats[0]))
            route = self.add(
                ec2.Route(
                    self.lid("PrivateDefaultRoute", index + 1),
                    RouteTableId=Ref(table),
                    DestinationCidrBlock="0.0.0.0/0",
                    NatGatewayId=nat,
                )
            )
            self.nat_routes.append(route)
            for tier in ("app", "data"):
                self.add(
                    ec2.SubnetRouteTableAssociation(
                        self.lid(tier, "SubnetRoutes", index + 1),
                        RouteTableId=Ref(table),
                        SubnetId=Ref(subnets[tier][index]),
                    )
                )
            tables.append(table)
        return tables

    def s3_endpoint(self, vpc: ec2.VPC, tables: list[ec2.RouteTable]) -> None:
        """A gateway endpoint so S3 traffic (artifacts, assets) never crosses NAT."""
        self.add(
            ec2.VPCEndpoint(
                self.lid("S3Endpoint"),
                VpcId=Ref(vpc),
                ServiceName=Sub("com.amazonaws.${AWS::Region}.s3"),
                VpcEndpointType="Gateway",
                RouteTableIds=[Ref(t) for t in tables],
            )
        )

    def flow_logs(self, vpc: ec2.VPC) -> None:
        """Every flow of the VPC into a retained log group, delivered by a role granted only that group."""
        group_props = {"RetentionInDays": self.inputs.flow_log_retention_days}
        if self.inputs.flow_log_key_arn is not None:
            group_props["KmsKeyId"] = self.inputs.flow_log_key_arn
        self.flow_log_group = self.add(logs.LogGroup(self.lid("FlowLogGroup"), **group_props), stateful=True)
        # Trust and permissions as "IAM role for publishing flow logs to CloudWatch Logs" (Amazon
        # VPC User Guide) documents them: this account's flow logs only, and DescribeLogGroups.
        role = ServiceRole(
            self,
            "FlowLogs",
            services=["vpc-flow-logs.amazonaws.com"],
            source_arn=partition_arn("ec2", "vpc-flow-log/*"),
        )
        role.grant_log_group_write(self.flow_log_group)
        role.grant_unscoped("DescribeLogGroups", [awacs.logs.DescribeLogGroups])
        self.add(
            ec2.FlowLog(
                self.lid("FlowLog"),
                ResourceId=Ref(vpc),
                ResourceType="VPC",
                TrafficType="ALL",
                LogDestinationType="cloud-watch-logs",
                LogGroupName=Ref(self.flow_log_group),
                DeliverLogsPermissionArn=role.arn,
            )
        )
        self.output(
            "FlowLogGroupName",
            Ref(self.flow_log_group),
            "Name of the log group holding the VPC flow logs.",
        )

    def close_default_security_group(self, vpc: ec2.VPC) -> None:
        """Remove every rule of the VPC's default security group, declaratively.

        A new VPC's default group allows all traffic between its members and all outbound
        traffic; AWS recommends that it allow nothing ("Security Hub controls for Amazon EC2",
        EC2.2: https://docs.aws.amazon.com/securityhub/latest/userguide/ec2-controls.html#ec2-2).
        CloudFormation cannot manage that group's rules, and CDK's ``restrictDefaultSecurityGroup``
        ships a Lambda-backed custom resource for it. Here a State Manager association runs the
        AWS-owned Automation runbook ``AWSConfigRemediation-RemoveVPCDefaultSecurityGroupRules``
        when the stack creates it (and again when the group ID changes): no function code in the
        template, nothing to patch, and the runbook is the one AWS Config's remediation uses
        (https://docs.aws.amazon.com/systems-manager-automation-runbooks/latest/userguide/automation-aws-remove-default-secg-rules.html,
        https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ssm-association.html).
        The role Automation assumes holds exactly the runbook's documented permissions, the
        revokes on this one group; its trust is this account's automation executions only
        (https://docs.aws.amazon.com/systems-manager/latest/userguide/cross-service-confused-deputy-prevention.html).
        """
        group_id = GetAtt(vpc, "DefaultSecurityGroup")
        role = ServiceRole(
            self,
            "CloseDefaultSecurityGroup",
            services=["ssm.amazonaws.com"],
            source_arn=partition_arn("ssm", "automation-execution/*"),
        )
        role.grant_automation_run(CLOSE_DEFAULT_GROUP_RUNBOOK)
        role.grant_unscoped("DescribeSecurityGroups", [awacs.ec2.DescribeSecurityGroups])
        role.grant_security_group_revoke("DefaultSecurityGroup", group_id)
        association = self.add(
            ssm.Association(
                self.lid("CloseDefaultSecurityGroup"),
                Name=CLOSE_DEFAULT_GROUP_RUNBOOK,
                Parameters={"GroupId": [group_id], "AutomationAssumeRole": [role.arn]},
            )
        )
        self.accept_finding(
            vpc,
            [f"{pack}-VPCDefaultSecurityGroupClosed" for pack in COMPLIANCE_PACKS],
            f"The default security group is emptied by the State Manager association {association.title}, "
            f"which runs AWS's runbook {CLOSE_DEFAULT_GROUP_RUNBOOK}; the rule packs recognise only CDK's "
            "custom resource for it.",
        )
