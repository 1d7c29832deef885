"""The internet-facing Application Load Balancer, its target group, and (with a domain) HTTPS.

Inputs: :class:`LoadBalancerInputs`. Outputs: ``load_balancer``, ``target_group`` (the
resources), ``load_balancer_arn`` and ``target_group_arn`` (``Ref``), ``dns_name``, ``load_balancer_full_name``,
``target_group_full_name`` (``GetAtt``; the full names are CloudWatch alarm dimensions), ``url``
(``If``), ``has_domain`` (the condition's name) and ``target_port`` (the port the instances must
open to the ALB); and the exported Outputs ``AlbDnsName``, ``AppUrl``, ``AlbArn`` and
``TargetGroupArn``.

The ALB drops invalid header fields and writes access logs to the given bucket. The target group
sends traffic to nginx on port 80 (failure-analysis item 14) and checks health generously
enough for a Flask app's cold start (item 8). HTTPS is switched by two template parameters,
``DomainName`` and ``HostedZoneId``, through the ``HasDomain`` condition (item 11): with both,
an ACM certificate is validated by DNS in the hosted zone (CloudFormation creates the validation
record itself), an HTTPS listener serves it, plain HTTP redirects to HTTPS and an alias record
points the domain at the ALB; without them, one HTTP listener forwards to the target group.
AWS docs: https://docs.aws.amazon.com/elasticloadbalancing/latest/application/introduction.html
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from troposphere import (
    And,
    AWSHelperFn,
    Equals,
    GetAtt,
    If,
    Not,
    Ref,
    Sub,
    certificatemanager,
    route53,
)
from troposphere import elasticloadbalancingv2 as elbv2

from cfnbuild import Blueprint, setting

# "Recommended" TLS 1.3 policy with hybrid post-quantum key exchange that still accepts TLS 1.2
# clients with forward-secret ciphers; the console's default since 2025-09 (ELB docs,
# "Security policies for your Application Load Balancer").
DEFAULT_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"
DOMAIN_PATTERN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
HOSTED_ZONE_PATTERN = r"^Z[A-Z0-9]{1,31}$"
LOG_PREFIX_PATTERN = r"^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$"


@dataclass(frozen=True)
class LoadBalancerInputs:
    """Inputs of :class:`LoadBalancer`."""

    vpc_id: AWSHelperFn = setting(doc="The VPC of the target group (e.g. Network.vpc_id).")
    subnet_ids: Sequence[AWSHelperFn] = setting(doc="Public subnets the ALB listens in, one per zone (2 or more).")
    security_group_id: AWSHelperFn = setting(doc="Security group of the ALB (HTTP/HTTPS in, target port out).")
    log_bucket_name: AWSHelperFn = setting(doc="Name of the bucket receiving access logs (its policy lets ELB write).")
    log_prefix: str = setting("alb", "Key prefix of the access logs in the log bucket (no leading or trailing '/').")
    depends_on: tuple[str, ...] = setting(
        (),
        "Logical IDs the ALB waits for: the log bucket's policy, which ALB creation checks and no reference implies.",
    )
    deletion_protection: bool = setting(False, "Refuse to delete the ALB (prod: true).")
    idle_timeout_seconds: int = setting(60, "Seconds an idle connection stays open, 1 to 4000.")
    domain_name: str = setting("", "Default of the DomainName parameter; empty: plain HTTP on the ALB's DNS name.")
    hosted_zone_id: str = setting("", "Default of the HostedZoneId parameter: the Route 53 zone holding domain_name.")
    ssl_policy: str = setting(DEFAULT_SSL_POLICY, "TLS security policy of the HTTPS listener (a TLS 1.3 policy).")
    target_port: int = setting(80, "Port the instances serve on: nginx, in front of gunicorn.")
    health_check_path: str = setting("/health", "Path the target group checks; 200 means healthy.")
    health_check_timeout_seconds: int = setting(10, "Seconds a health check may take, 2 to 120, below the interval.")
    health_check_interval_seconds: int = setting(30, "Seconds between health checks, 5 to 300.")
    unhealthy_threshold: int = setting(5, "Failed checks in a row before a target is unhealthy, 2 to 10.")
    healthy_threshold: int = setting(2, "Passed checks in a row before a target is healthy, 2 to 10.")
    deregistration_delay_seconds: int = setting(30, "Seconds in-flight requests may finish on a leaving target.")


class LoadBalancer(Blueprint[LoadBalancerInputs]):
    """An internet-facing ALB with access logs, a target group, and HTTPS under ``HasDomain``."""

    load_balancer: elbv2.LoadBalancer
    target_group: elbv2.TargetGroup
    load_balancer_arn: Ref
    target_group_arn: Ref
    dns_name: GetAtt
    url: If
    load_balancer_full_name: GetAtt
    target_group_full_name: GetAtt
    has_domain: str
    target_port: int
    certificate: certificatemanager.Certificate
    http_listener: elbv2.Listener
    https_listener: elbv2.Listener

    def validate(self) -> None:
        """Health-check timings ELB accepts, a usable port, and a domain only together with its zone."""
        i = self.inputs
        if len(i.subnet_ids) < 2:
            raise self.invalid("subnet_ids", f"lists {len(i.subnet_ids)}; an ALB needs subnets in at least 2 zones")
        if not 1 <= i.target_port <= 65535:
            raise self.invalid("target_port", f"is {i.target_port}; use a port from 1 to 65535 (nginx: 80)")
        if not 1 <= i.idle_timeout_seconds <= 4000:
            raise self.invalid("idle_timeout_seconds", f"is {i.idle_timeout_seconds}; use 1 to 4000")
        if not 2 <= i.health_check_timeout_seconds <= 120:
            raise self.invalid("health_check_timeout_seconds", f"is {i.health_check_timeout_seconds}; use 2 to 120")
        if not 5 <= i.health_check_interval_seconds <= 300:
            raise self.invalid("health_check_interval_seconds", f"is {i.health_check_interval_seconds}; use 5 to 300")
        if i.health_check_timeout_seconds >= i.health_check_interval_seconds:
            raise self.invalid(
                "health_check_timeout_seconds",
                f"is {i.health_check_timeout_seconds}, not below health_check_interval_seconds "
                f"({i.health_check_interval_seconds}); make the timeout shorter than the interval",
            )
        for name in ("unhealthy_threshold", "healthy_threshold"):
            value = getattr(i, name)
            if not 2 <= value <= 10:
                raise self.invalid(name, f"is {value}; use 2 to 10 checks")
        if not 0 <= i.deregistration_delay_seconds <= 3600:
            raise self.invalid("deregistration_delay_seconds", f"is {i.deregistration_delay_seconds}; use 0 to 3600")
        if not i.health_check_path.startswith("/") or len(i.health_check_path) > 1024:
            raise self.invalid("health_check_path", f"is {i.health_check_path!r}; give a path like '/health'")
        if not re.fullmatch(LOG_PREFIX_PATTERN, i.log_prefix) or "AWSLogs" in i.log_prefix:
            raise self.invalid(
                "log_prefix",
                f"is {i.log_prefix!r}; use key words joined by '/', no leading or trailing '/', no AWSLogs",
            )
        if not i.ssl_policy.startswith("ELBSecurityPolicy-TLS13-"):
            raise self.invalid(
                "ssl_policy", f"is {i.ssl_policy!r}; choose a TLS 1.3 policy (ELBSecurityPolicy-TLS13-...)"
            )
        self._validate_domain()

    def _validate_domain(self) -> None:
        i = self.inputs
        if i.domain_name and not i.hosted_zone_id:
            raise self.invalid(
                "hosted_zone_id",
                "is empty but domain_name is set; the certificate's DNS validation and the alias record need the "
                "domain's Route 53 zone: give hosted_zone_id, or drop domain_name to serve plain HTTP",
            )
        if i.hosted_zone_id and not i.domain_name:
            raise self.invalid("domain_name", "is empty but hosted_zone_id is set; give domain_name or drop the zone")
        if i.domain_name and not re.fullmatch(DOMAIN_PATTERN, i.domain_name):
            raise self.invalid("domain_name", f"is {i.domain_name!r}; give a lower-case name like 'app.example.com'")
        if i.hosted_zone_id and not re.fullmatch(HOSTED_ZONE_PATTERN, i.hosted_zone_id):
            raise self.invalid("hosted_zone_id", f"is {i.hosted_zone_id!r}; a zone ID looks like 'Z0123456789ABC'")

    def build(self) -> None:
        """The domain switch, the ALB, the target group, the HTTPS pieces and the listeners."""
        self.target_port = self.inputs.target_port
        self.domain_parameters()
        self.load_balancer = self.alb()
        self.target_group = self.targets()
        self.certificate = self.tls_certificate()
        self.https_listener = self.https()
        self.http_listener = self.http()
        self.alias_record()
        self.app_url()

    def domain_parameters(self) -> None:
        """DomainName and HostedZoneId, the HasDomain condition, and rules that they come as a pair."""
        self.parameter(
            "DomainName",
            Type="String",
            Default=self.inputs.domain_name,
            AllowedPattern=f"^$|{DOMAIN_PATTERN}",
            ConstraintDescription="a lower-case domain name like app.example.com, or empty for plain HTTP",
            Description="Domain the app is served on over HTTPS; empty: plain HTTP on the ALB's DNS name.",
        )
        self.parameter(
            "HostedZoneId",
            Type="String",
            Default=self.inputs.hosted_zone_id,
            AllowedPattern=f"^$|{HOSTED_ZONE_PATTERN}",
            ConstraintDescription="a Route 53 hosted zone ID like Z0123456789ABC, or empty",
            Description="Route 53 hosted zone holding DomainName (certificate validation and the alias record).",
        )
        domain, zone = Ref(self.lid("DomainName")), Ref(self.lid("HostedZoneId"))
        self.has_domain = self.condition("HasDomain", And(Not(Equals(domain, "")), Not(Equals(zone, ""))))
        self.rule(
            "DomainNeedsHostedZone",
            {
                "RuleCondition": Not(Equals(domain, "")),
                "Assertions": [
                    {
                        "Assert": Not(Equals(zone, "")),
                        "AssertDescription": "DomainName needs HostedZoneId: the certificate is validated and the "
                        "alias record is made in that zone",
                    }
                ],
            },
        )
        self.rule(
            "HostedZoneNeedsDomain",
            {
                "RuleCondition": Not(Equals(zone, "")),
                "Assertions": [
                    {
                        "Assert": Not(Equals(domain, "")),
                        "AssertDescription": "HostedZoneId without DomainName does nothing; give DomainName too",
                    }
                ],
            },
        )

    def alb(self) -> elbv2.LoadBalancer:
        """The ALB in the public subnets, logging every request and dropping invalid headers."""
        i = self.inputs
        attributes = {
            "access_logs.s3.enabled": "true",
            "access_logs.s3.bucket": i.log_bucket_name,
            "access_logs.s3.prefix": i.log_prefix,
            "deletion_protection.enabled": str(i.deletion_protection).lower(),
            "idle_timeout.timeout_seconds": str(i.idle_timeout_seconds),
            "routing.http.drop_invalid_header_fields.enabled": "true",
        }
        # Creating the ALB checks that ELB may write to the log bucket; only the bucket policy
        # grants that, and nothing the ALB references points at the policy.
        alb = self.add(
            elbv2.LoadBalancer(
                self.lid("LoadBalancer"),
                Type="application",
                Scheme="internet-facing",
                IpAddressType="ipv4",
                Subnets=list(i.subnet_ids),
                SecurityGroups=[i.security_group_id],
                LoadBalancerAttributes=[
                    elbv2.LoadBalancerAttributes(Key=key, Value=value) for key, value in attributes.items()
                ],
            ),
            depends_on=i.depends_on,
        )
        if not i.deletion_protection:
            self.accept_finding(
                alb,
                [f"{pack}-ELBDeletionProtectionEnabled" for pack in ("HIPAA.Security", "NIST.800.53.R5")],
                "This environment's config sets load_balancer.deletion_protection = false so that it can "
                "be torn down; the load balancer holds no data, and prod turns the protection on.",
            )
        self.dns_name = GetAtt(alb, "DNSName")
        self.load_balancer_full_name = GetAtt(alb, "LoadBalancerFullName")
        self.output("AlbDnsName", self.dns_name, "DNS name of the application load balancer.")
        self.load_balancer_arn = Ref(alb)
        self.output("AlbArn", self.load_balancer_arn, "ARN of the application load balancer.")
        return alb

    def targets(self) -> elbv2.TargetGroup:
        """The instances' target group: HTTP to nginx, with health checks that tolerate a cold start."""
        i = self.inputs
        group = self.add(
            elbv2.TargetGroup(
                self.lid("TargetGroup"),
                VpcId=i.vpc_id,
                Port=i.target_port,
                Protocol="HTTP",
                ProtocolVersion="HTTP1",
                TargetType="instance",
                HealthCheckEnabled=True,
                HealthCheckProtocol="HTTP",
                HealthCheckPort="traffic-port",
                HealthCheckPath=i.health_check_path,
                HealthCheckTimeoutSeconds=i.health_check_timeout_seconds,
                HealthCheckIntervalSeconds=i.health_check_interval_seconds,
                UnhealthyThresholdCount=i.unhealthy_threshold,
                HealthyThresholdCount=i.healthy_threshold,
                Matcher=elbv2.Matcher(HttpCode="200"),
                TargetGroupAttributes=[
                    elbv2.TargetGroupAttribute(
                        Key="deregistration_delay.timeout_seconds", Value=str(i.deregistration_delay_seconds)
                    )
                ],
            )
        )
        self.target_group_arn = Ref(group)
        self.target_group_full_name = GetAtt(group, "TargetGroupFullName")
        self.output("TargetGroupArn", self.target_group_arn, "ARN of the target group of the app instances.")
        return group

    def tls_certificate(self) -> certificatemanager.Certificate:
        """Under HasDomain: a certificate CloudFormation validates itself through the hosted zone."""
        domain = Ref(self.lid("DomainName"))
        return self.add(
            certificatemanager.Certificate(
                self.lid("Certificate"),
                Condition=self.has_domain,
                DomainName=domain,
                ValidationMethod="DNS",
                DomainValidationOptions=[
                    certificatemanager.DomainValidationOption(
                        DomainName=domain, HostedZoneId=Ref(self.lid("HostedZoneId"))
                    )
                ],
            )
        )

    def forward(self) -> elbv2.Action:
        """The action that sends a request to the target group."""
        return elbv2.Action(Type="forward", TargetGroupArn=self.target_group_arn)

    def https(self) -> elbv2.Listener:
        """Under HasDomain: HTTPS on 443 with the certificate and a TLS 1.3 policy."""
        return self.add(
            elbv2.Listener(
                self.lid("HttpsListener"),
                Condition=self.has_domain,
                LoadBalancerArn=Ref(self.load_balancer),
                Port=443,
                Protocol="HTTPS",
                SslPolicy=self.inputs.ssl_policy,
                Certificates=[elbv2.Certificate(CertificateArn=Ref(self.certificate))],
                DefaultActions=[self.forward()],
            )
        )

    def http(self) -> elbv2.Listener:
        """HTTP on 80: a permanent redirect to HTTPS under HasDomain, else forward to the instances."""
        redirect = elbv2.Action(
            Type="redirect",
            RedirectConfig=elbv2.RedirectConfig(
                Protocol="HTTPS", Port="443", Host="#{host}", Path="/#{path}", Query="#{query}", StatusCode="HTTP_301"
            ),
        )
        # checkov's CKV_AWS_2/CKV_AWS_103 read the Fn::If as "unknown", not failed: with a domain
        # this listener only redirects; without one there is no certificate to serve TLS with.
        listener = self.add(
            elbv2.Listener(
                self.lid("HttpListener"),
                LoadBalancerArn=Ref(self.load_balancer),
                Port=80,
                Protocol="HTTP",
                DefaultActions=If(self.has_domain, [redirect], [self.forward()]),
            )
        )
        self.accept_finding(
            listener,
            [f"{pack}-ELBv2ACMCertificateRequired" for pack in ("HIPAA.Security", "NIST.800.53.R5", "PCI.DSS.321")],
            "Port 80 carries no certificate by design: with a domain it only answers 301 to HTTPS on 443 "
            "(the HTTPS listener holds the ACM certificate); without one it serves the app only because "
            "the environment's config says load_balancer.allow_plain_http = true, which prod refuses.",
        )
        return listener

    def alias_record(self) -> None:
        """Under HasDomain: the domain as an alias A record of the ALB."""
        self.add(
            route53.RecordSetType(
                self.lid("DnsRecord"),
                Condition=self.has_domain,
                HostedZoneId=Ref(self.lid("HostedZoneId")),
                Name=Ref(self.lid("DomainName")),
                Type="A",
                AliasTarget=route53.AliasTarget(
                    DNSName=self.dns_name,
                    HostedZoneId=GetAtt(self.load_balancer, "CanonicalHostedZoneID"),
                    EvaluateTargetHealth=True,
                ),
            )
        )

    def app_url(self) -> None:
        """The URL users reach: https://domain with a domain, else http:// on the ALB's name."""
        self.url = If(
            self.has_domain,
            Sub("https://${Domain}", Domain=Ref(self.lid("DomainName"))),
            Sub("http://${Name}", Name=self.dns_name),
        )
        self.output("AppUrl", self.url, "URL of the web application.")
