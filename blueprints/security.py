"""Security groups of the three tiers: the load balancer, the app instances and the database.

Inputs: :class:`SecurityGroupsInputs`. Outputs: ``alb_group_id``, ``app_group_id``,
``db_group_id`` (``GetAtt GroupId``) and the exported Outputs ``AlbSecurityGroupId``,
``AppSecurityGroupId``, ``DbSecurityGroupId``.

Traffic flows one way, tier by tier: the internet reaches the ALB on 443 (and 80, which
redirects to HTTPS, or serves the app where an environment has no certificate); the ALB reaches
nginx on the instances on ``app_port``; the instances reach the database on ``db_port`` and AWS
APIs and package repositories on 443 through NAT. Nothing else is allowed, in either direction.

Every group declares its egress explicitly (failure-analysis item 5): a group without inline
egress gets AWS's default allow-all rule, and a separate ``SecurityGroupEgress`` resource does
not remove it. Groups whose only real egress is to another group therefore carry the
placeholder AWS documents for "no egress": all protocols to 127.0.0.1/32, which matches no
traffic that leaves the instance. Rules between groups are separate ``SecurityGroupIngress``
and ``SecurityGroupEgress`` resources, so no group references another and no dependency cycle
can form.
AWS docs: https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ec2-securitygroup.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from troposphere import AWSHelperFn, GetAtt, Tags, ec2

from cfnbuild import Blueprint, setting
from cfnbuild.build.naming import stack_named

ANYWHERE = "0.0.0.0/0"
HTTPS = 443
HTTP = 80
LOOPBACK = "127.0.0.1/32"


def no_egress() -> ec2.SecurityGroupRule:
    """The documented way to drop a group's default allow-all egress without allowing anything.

    One rule for all protocols to the loopback address, which no packet leaving the interface
    matches.
    """
    return ec2.SecurityGroupRule(
        IpProtocol="-1",
        CidrIp=LOOPBACK,
        Description="No egress: loopback placeholder that removes the default allow-all rule",
    )


@dataclass(frozen=True)
class SecurityGroupsInputs:
    """Inputs of :class:`SecurityGroups`."""

    vpc_id: AWSHelperFn = setting(doc="ID of the VPC the groups belong to (e.g. Network.vpc_id).")
    app_port: int = setting(80, "Port nginx listens on in the app instances; the ALB's targets use it.")
    db_port: int = setting(3306, "Port the database listens on (3306 for Aurora MySQL).")
    https: bool = setting(True, "Open 443 on the ALB group (an HTTPS listener exists).")
    named_after: str = setting(
        "",
        "The deployed stack name its Name tags and descriptions carry; empty: its own (AWS::StackName). "
        "A stack split off another keeps the other's, so no create-only value changes.",
    )


def _tcp(port: int, description: str, **target: Any) -> dict[str, Any]:
    """The properties of one TCP rule on ``port`` to or from ``target``."""
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "Description": description, **target}


class SecurityGroups(Blueprint[SecurityGroupsInputs]):
    """The ALB, app and database groups, each open only to the tier in front of it."""

    alb_group: ec2.SecurityGroup
    app_group: ec2.SecurityGroup
    db_group: ec2.SecurityGroup
    alb_group_id: GetAtt
    app_group_id: GetAtt
    db_group_id: GetAtt

    def validate(self) -> None:
        """Ports must be TCP ports."""
        for field in ("app_port", "db_port"):
            port = getattr(self.inputs, field)
            if not 1 <= port <= 65535:  # the type (int, not bool) is checked when the blueprint is made
                raise self.invalid(field, f"is {port!r}; use a TCP port from 1 to 65535")

    def build(self) -> None:
        """The groups first (none references another), then the rules between them."""
        self.alb_group = self.alb()
        self.app_group = self.app()
        self.db_group = self.db()
        self.alb_group_id = self.group_id(self.alb_group, "AlbSecurityGroupId", "the load balancer")
        self.app_group_id = self.group_id(self.app_group, "AppSecurityGroupId", "the app instances")
        self.db_group_id = self.group_id(self.db_group, "DbSecurityGroupId", "the database")
        self.alb_to_app()
        self.app_to_db()

    def group_id(self, group: ec2.SecurityGroup, output: str, what: str) -> GetAtt:
        """The group's ID, exported as ``output``."""
        group_id = GetAtt(group, "GroupId")
        self.output(output, group_id, f"ID of the security group of {what}.")
        return group_id

    def _group(self, name: str, description: str, ingress: list[Any], egress: list[Any]) -> ec2.SecurityGroup:
        props: dict[str, Any] = {
            "GroupDescription": description,
            "VpcId": self.inputs.vpc_id,
            "SecurityGroupEgress": egress,
            "Tags": Tags(Name=stack_named(f"${{StackName}}-{self.lid(name).lower()}", self.inputs.named_after)),
        }
        if ingress:
            props["SecurityGroupIngress"] = ingress
        return self.add(ec2.SecurityGroup(self.lid(name, "SecurityGroup"), **props))

    def alb(self) -> ec2.SecurityGroup:
        """The internet-facing load balancer: HTTPS and HTTP in from anywhere; out only to the app (below)."""
        ingress = []
        if self.inputs.https:
            ingress.append(ec2.SecurityGroupRule(**_tcp(HTTPS, "HTTPS from the internet", CidrIp=ANYWHERE)))
        ingress.append(
            ec2.SecurityGroupRule(
                **_tcp(
                    HTTP, "HTTP from the internet: redirect to HTTPS, or the app without a certificate", CidrIp=ANYWHERE
                )
            )
        )
        group = self._group("Alb", "Application Load Balancer: web traffic from the internet", ingress, [no_egress()])
        reason = (
            "This is the public entry point of the web app: the internet-facing ALB must accept web traffic "
            "(80, and 443 with HTTPS) from anywhere; port 80 only redirects to HTTPS, or serves the app where "
            "an environment has no certificate."
        )
        self.skip_check(group, "CKV_AWS_260", reason)
        self.accept_finding(group, ["AwsSolutions-EC23"], reason)
        return group

    def app(self) -> ec2.SecurityGroup:
        """The app instances: in from the ALB only (below); out to AWS APIs and package repositories on 443."""
        egress = [
            ec2.SecurityGroupRule(
                **_tcp(HTTPS, "HTTPS to AWS APIs and package repositories through NAT", CidrIp=ANYWHERE)
            )
        ]
        return self._group("App", "App instances: nginx behind the load balancer", [], egress)

    def db(self) -> ec2.SecurityGroup:
        """The database: in from the app only (below); no egress (it never opens a connection)."""
        return self._group("Db", "Database: connections from the app instances only", [], [no_egress()])

    def alb_to_app(self) -> None:
        """The ALB may open connections to nginx on the instances, and nothing else may."""
        app_port = self.inputs.app_port
        self.add(
            ec2.SecurityGroupEgress(
                self.lid("AlbToAppEgress"),
                GroupId=self.alb_group_id,
                **_tcp(app_port, "To nginx on the app instances", DestinationSecurityGroupId=self.app_group_id),
            )
        )
        self.add(
            ec2.SecurityGroupIngress(
                self.lid("AppFromAlbIngress"),
                GroupId=self.app_group_id,
                **_tcp(app_port, "From the load balancer only", SourceSecurityGroupId=self.alb_group_id),
            )
        )

    def app_to_db(self) -> None:
        """The instances may open connections to the database, and nothing else may."""
        db_port = self.inputs.db_port
        self.add(
            ec2.SecurityGroupEgress(
                self.lid("AppToDbEgress"),
                GroupId=self.app_group_id,
                **_tcp(db_port, "To the database", DestinationSecurityGroupId=self.db_group_id),
            )
        )
        self.add(
            ec2.SecurityGroupIngress(
                self.lid("DbFromAppIngress"),
                GroupId=self.db_group_id,
                **_tcp(db_port, "From the app instances only", SourceSecurityGroupId=self.app_group_id),
            )
        )
