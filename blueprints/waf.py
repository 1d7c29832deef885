"""A web application firewall (AWS WAF) in front of the load balancer, logging what it blocks.

Inputs: :class:`WafInputs`. Outputs: ``web_acl`` and ``log_group`` (the resources), ``web_acl_arn``
(``GetAtt Arn``), and the exported Outputs ``WebAclArn`` and ``WafLogGroupName``.

One regional web ACL (``Scope: REGIONAL``, the scope of an Application Load Balancer) allows what
no rule stops (``DefaultAction: Allow``) and runs, in this order:

1. ``AWSManagedRulesAmazonIpReputationList`` — addresses Amazon's threat intelligence knows as
   bots, scanners or DDoS sources; the cheapest rule, so it goes first.
2. A rate-based rule: more than ``rate_limit_per_5_min`` requests from one client address
   (``AggregateKeyType: IP``) in a 5-minute window are blocked until the rate falls again.
3. ``AWSManagedRulesCommonRuleSet`` — the core rule set (OWASP Top 10 kinds of request).
4. ``AWSManagedRulesKnownBadInputsRuleSet`` — request patterns known to be invalid or to exploit
   a vulnerability, Log4j's JNDI lookups (CVE-2021-44228) among them.

The managed groups keep their own rule actions (``OverrideAction: None``): they block, with one
exception below. Every rule and the ACL publish CloudWatch metrics and keep sampled requests
(``VisibilityConfig``). The ACL is associated with the ALB by an ``AWS::WAFv2::WebACLAssociation``.

The exception: the core rule set's ``SizeRestrictions_BODY`` blocks every request whose body is
over 8 KB, since WAF inspects only a body's first 8 KB; the notes API takes bodies of up to 10,000
characters (``flask_app/models.py``), so that rule would refuse valid notes. Unless
``block_large_bodies`` is set, the rule is overridden to Count (``RuleActionOverrides``, which AWS
recommends over ``ExcludedRules``): such a request is logged and passes on; the first 8 KB are
still inspected by every other rule, and nginx and the app refuse bodies over their own limit
(``ComputeInputs.max_body_bytes``).
https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-baseline.html,
https://docs.aws.amazon.com/waf/latest/developerguide/web-acl-rule-group-override-options.html

Logging: requests a rule blocked (or counted, for a rule being tuned in Count mode) go to a
CloudWatch Logs log group whose name starts ``aws-waf-logs-`` (WAF refuses any other name), kept
for ``log_retention_days``, encrypted with the stack's KMS key, and stateful like the stack's other
log groups. Allowed requests are dropped by the logging filter, so the logs stay small. The
``authorization`` and ``cookie`` headers are redacted from every record.

A resource policy on the log group is needed for WAF to deliver, and WAF writes it itself
(``AWSWAF-LOGS``) when the logging configuration is created, with the caller's permissions — so
whoever deploys the stack (a Service Catalog launch role too) needs ``logs:CreateLogDelivery``,
``logs:PutResourcePolicy``, ``logs:DescribeResourcePolicies`` and ``logs:DescribeLogGroups``
besides the ``wafv2:*LoggingConfiguration`` actions. The template holds no
``AWS::Logs::ResourcePolicy`` of its own.

AWS docs:
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-wafv2-webacl.html,
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-wafv2-webaclassociation.html,
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-wafv2-loggingconfiguration.html,
https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-baseline.html,
https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-ip-rep.html
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import AWSHelperFn, GetAtt, Join, Ref, Sub, logs, wafv2

from blueprints.config import LOG_RETENTION_DAYS, RATE_LIMIT_MAX, RATE_LIMIT_MIN
from cfnbuild import Blueprint, setting
from cfnbuild.build.naming import partition_arn, physical_name

# The window the limit counts over: 300 s, the documented default (valid: 60, 120, 300, 600).
RATE_WINDOW_SECONDS = 300

# WAF accepts only log destinations whose name starts so ("Logging web ACL traffic", WAF Developer
# Guide, https://docs.aws.amazon.com/waf/latest/developerguide/logging-cw-logs.html; the API's
# LoggingConfiguration, https://docs.aws.amazon.com/waf/latest/APIReference/API_LoggingConfiguration.html).
LOG_GROUP_PREFIX = "aws-waf-logs-"

# The AWS managed rule groups, by rule name, in priority order around the rate-based rule. WCUs
# (capacity units, "Baseline rule groups" and "IP reputation rule groups" in the WAF Developer
# Guide): common 700, known bad inputs 200, IP reputation 25, plus 2 for the rate rule — 927,
# within the 1,500 WCUs the base web ACL price covers.
IP_REPUTATION = "AWSManagedRulesAmazonIpReputationList"
COMMON_RULE_SET = "AWSManagedRulesCommonRuleSet"
KNOWN_BAD_INPUTS = "AWSManagedRulesKnownBadInputsRuleSet"
RATE_RULE = "RateLimitPerIp"
# The core rule set's rule for bodies over 8 KB (see the module docstring).
LARGE_BODY_RULE = "SizeRestrictions_BODY"

# The actions a log record is kept for; everything else (ALLOW) is dropped
# (AWS::WAFv2::LoggingConfiguration ActionCondition: EXCLUDED_AS_COUNT matches a managed rule
# whose action was overridden to Count).
LOGGED_ACTIONS = ("BLOCK", "COUNT", "EXCLUDED_AS_COUNT")
# Request headers that carry credentials or sessions: never written to the logs.
REDACTED_HEADERS = ("authorization", "cookie")


@dataclass(frozen=True)
class WafInputs:
    """Inputs of :class:`Waf`."""

    load_balancer_arn: AWSHelperFn = setting(doc="ARN of the ALB the web ACL protects (Ref of the load balancer).")
    kms_key_arn: AWSHelperFn = setting(doc="ARN of the KMS key that encrypts the WAF log group (Keys.logs_key_arn).")
    rate_limit_per_5_min: int = setting(
        2000, "Requests one client address may send in 5 minutes before it is blocked (10 to 2,000,000,000)."
    )
    log_retention_days: int = setting(90, "Days the WAF log group keeps blocked requests (a CloudWatch Logs value).")
    block_large_bodies: bool = setting(
        False,
        "Let the core rule set block request bodies over 8 KB; False: count them (notes take 10,000 characters).",
    )


class Waf(Blueprint[WafInputs]):
    """A regional web ACL with AWS managed rules and a rate limit, on the ALB, logging what it blocks."""

    web_acl: wafv2.WebACL
    web_acl_arn: GetAtt
    log_group: logs.LogGroup

    def validate(self) -> None:
        """The rate limit within WAF's bounds; a retention CloudWatch Logs offers."""
        limit = self.inputs.rate_limit_per_5_min
        if not RATE_LIMIT_MIN <= limit <= RATE_LIMIT_MAX:
            raise self.invalid(
                "rate_limit_per_5_min", f"is {limit}; WAF takes {RATE_LIMIT_MIN} to {RATE_LIMIT_MAX:,} requests"
            )
        if self.inputs.log_retention_days not in LOG_RETENTION_DAYS:
            raise self.invalid(
                "log_retention_days",
                f"is {self.inputs.log_retention_days}, which CloudWatch Logs does not offer; "
                f"use one of {', '.join(map(str, LOG_RETENTION_DAYS))}",
            )

    def build(self) -> None:
        """The ACL, its association with the ALB, the log group and the logging configuration."""
        self.web_acl = self.acl()
        self.web_acl_arn = GetAtt(self.web_acl, "Arn")
        self.output("WebAclArn", self.web_acl_arn, "ARN of the web ACL (AWS WAF) in front of the load balancer.")
        self.add(
            wafv2.WebACLAssociation(
                self.lid("WebAclAssociation"),
                ResourceArn=self.inputs.load_balancer_arn,
                WebACLArn=self.web_acl_arn,
            )
        )
        self.log_group = self.waf_log_group()
        self.logging(self.log_group)

    @staticmethod
    def visibility(metric_name: str | AWSHelperFn) -> wafv2.VisibilityConfig:
        """Metrics in CloudWatch and sampled requests in the console, under ``metric_name``."""
        return wafv2.VisibilityConfig(
            CloudWatchMetricsEnabled=True, SampledRequestsEnabled=True, MetricName=metric_name
        )

    def managed_rule(self, name: str, priority: int, *, count: tuple[str, ...] = ()) -> wafv2.WebACLRule:
        """An AWS managed rule group whose result stands (OverrideAction None); its rules in ``count`` only count."""
        metric = name.removeprefix("AWSManagedRules")
        group = wafv2.ManagedRuleGroupStatement(VendorName="AWS", Name=name)
        if count:
            group.RuleActionOverrides = [
                wafv2.RuleActionOverride(Name=rule, ActionToUse=wafv2.RuleAction(Count=wafv2.CountAction()))
                for rule in count
            ]
        return wafv2.WebACLRule(
            Name=metric,
            Priority=priority,
            Statement=wafv2.Statement(ManagedRuleGroupStatement=group),
            OverrideAction=wafv2.OverrideAction(**{"None": {}}),
            VisibilityConfig=self.visibility(metric),
        )

    def rate_rule(self, priority: int) -> wafv2.WebACLRule:
        """Block a client address that sends more than the limit in 5 minutes."""
        return wafv2.WebACLRule(
            Name=RATE_RULE,
            Priority=priority,
            Statement=wafv2.Statement(
                RateBasedStatement=wafv2.RateBasedStatement(
                    Limit=self.inputs.rate_limit_per_5_min,
                    AggregateKeyType="IP",
                    EvaluationWindowSec=RATE_WINDOW_SECONDS,
                )
            ),
            Action=wafv2.RuleAction(Block=wafv2.BlockAction()),
            VisibilityConfig=self.visibility(RATE_RULE),
        )

    def acl(self) -> wafv2.WebACL:
        """The regional web ACL; its name is left to CloudFormation, its metrics carry the stack's name."""
        rules = [
            self.managed_rule(IP_REPUTATION, 0),
            self.rate_rule(1),
            self.managed_rule(COMMON_RULE_SET, 2, count=() if self.inputs.block_large_bodies else (LARGE_BODY_RULE,)),
            self.managed_rule(KNOWN_BAD_INPUTS, 3),
        ]
        return self.add(
            wafv2.WebACL(
                self.lid("WebAcl"),
                Description="AWS managed rules and a per-address rate limit in front of the load balancer",
                Scope="REGIONAL",
                DefaultAction=wafv2.DefaultAction(Allow=wafv2.AllowAction()),
                Rules=rules,
                # A stack name is 1-128 letters, digits and hyphens: a valid metric name, and one
                # that keeps two stacks' metrics apart.
                VisibilityConfig=self.visibility(Sub("${AWS::StackName}")),
            )
        )

    def waf_log_group(self) -> logs.LogGroup:
        """``aws-waf-logs-<stack name>-<stack suffix>``: retained, encrypted, stateful."""
        group = self.add(
            logs.LogGroup(
                self.lid("WafLogGroup"),
                LogGroupName=Join("", [LOG_GROUP_PREFIX, physical_name()]),
                RetentionInDays=self.inputs.log_retention_days,
                # CloudWatch Logs encrypts with the key itself; the key policy lets
                # logs.<region>.amazonaws.com use it for this account's log groups ("Encrypt log
                # data in CloudWatch Logs using AWS KMS",
                # https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html).
                KmsKeyId=self.inputs.kms_key_arn,
            ),
            stateful=True,
        )
        self.output("WafLogGroupName", Ref(group), "Name of the log group holding the requests AWS WAF blocked.")
        return group

    def logging(self, group: logs.LogGroup) -> wafv2.LoggingConfiguration:
        """Blocked and counted requests to the log group; allowed ones are dropped.

        The destination is the log group's ARN without the ``:*`` that ``GetAtt Arn`` of a log
        group ends with, as WAF's logging guide writes it. When CloudFormation creates this
        resource, WAF adds the log group's resource policy itself — CloudWatch Logs documents
        that the caller then needs logs:CreateLogDelivery, logs:PutResourcePolicy,
        logs:DescribeResourcePolicies and logs:DescribeLogGroups ("Logs sent to CloudWatch Logs",
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/AWS-logs-infrastructure-CWL.html;
        "WAF creates a resource policy on the log group", API_LoggingConfiguration above).
        """
        keep = wafv2.Filter(
            Behavior="KEEP",
            Requirement="MEETS_ANY",
            Conditions=[
                wafv2.Condition(ActionCondition=wafv2.ActionCondition(Action=action)) for action in LOGGED_ACTIONS
            ],
        )
        return self.add(
            wafv2.LoggingConfiguration(
                self.lid("WafLogging"),
                ResourceArn=self.web_acl_arn,
                LogDestinationConfigs=[partition_arn("logs", "log-group:${LogGroup}", LogGroup=Ref(group))],
                LoggingFilter=wafv2.LoggingFilter(DefaultBehavior="DROP", Filters=[keep]),
                RedactedFields=[
                    wafv2.LoggingConfigurationFieldToMatch(SingleHeader=wafv2.SingleHeader(Name=header))
                    for header in REDACTED_HEADERS
                ],
            )
        )
