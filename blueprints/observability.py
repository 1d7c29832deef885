"""Centralized logging, the alarm topic and the alarms that publish to it.

:class:`Logging` is made early in the stack: the instances write into its log groups and every
alarm (and the budget) publishes to its topic.

- Inputs: :class:`LoggingInputs`. Outputs: ``log_groups`` (``app``, ``nginx-access``,
  ``nginx-error``, ``bootstrap``; retained, KMS-encrypted when a key is given, names left to
  CloudFormation; failure-analysis item 9), ``topic`` and ``topic_arn`` (the alarm topic,
  encrypted with the same key, publishable only by CloudWatch and Budgets of this account and only
  over TLS), and the exported Outputs ``AppLogGroupName``, ``NginxAccessLogGroupName``,
  ``NginxErrorLogGroupName``, ``BootstrapLogGroupName`` and ``AlarmTopicArn``.
- The key's policy must let the publishing services use it, or every notification is dropped
  silently: make it with ``Keys(stack, KeysInputs(key_services=ALARM_PUBLISHERS))``. SNS calls
  ``kms:GenerateDataKey`` and ``kms:Decrypt`` as the publisher, which that policy grants.

:class:`Alarms` is made last, once the load balancer and the database exist.

- Inputs: :class:`AlarmsInputs`. Outputs: ``alarms`` (the alarm resources by short name). Alarm
  names are left to CloudFormation, so two stacks never collide (item 7).

AWS docs: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html
and https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from troposphere import AWSHelperFn, Ref, cloudwatch, logs, sns

from blueprints.config import LOG_RETENTION_DAYS
from cfnbuild import Blueprint, logical_id, setting
from cfnbuild.build.grants import ResourcePolicy

# The services that publish to the alarm topic; pass them to KeysInputs(key_services=...) too.
ALARM_PUBLISHERS: tuple[str, ...] = ("budgets.amazonaws.com", "cloudwatch.amazonaws.com")

# The log groups every instance writes to, by the short name the instance configuration uses.
LOG_GROUPS: tuple[str, ...] = ("app", "nginx-access", "nginx-error", "bootstrap")

MIB = 1024 * 1024


@dataclass(frozen=True)
class LoggingInputs:
    """Inputs of :class:`Logging`."""

    retention_days: int = setting(30, "Days the log groups keep events (a CloudWatch Logs retention value).")
    kms_key_arn: AWSHelperFn | None = setting(
        None,
        "ARN of the KMS key that encrypts the log groups and the alarm topic (Keys.logs_key_arn); "
        "None: AWS-owned keys for the logs and the AWS managed SNS key, which CloudWatch cannot use.",
    )
    alarm_email: str = setting("", "Address subscribed to the alarm topic by e-mail; empty: no subscription.")


class Logging(Blueprint[LoggingInputs]):
    """The application's log groups and the encrypted SNS topic alarms and budgets publish to."""

    log_groups: dict[str, logs.LogGroup]
    topic: sns.Topic
    topic_arn: Ref

    def validate(self) -> None:
        """The retention must be one CloudWatch Logs offers; the e-mail must look like one."""
        if self.inputs.retention_days not in LOG_RETENTION_DAYS:
            raise self.invalid(
                "retention_days",
                f"is {self.inputs.retention_days}, which CloudWatch Logs does not offer; "
                f"use one of {', '.join(map(str, LOG_RETENTION_DAYS))}",
            )
        email = self.inputs.alarm_email
        if email and ("@" not in email or any(c.isspace() for c in email)):
            raise self.invalid("alarm_email", f"{email!r} is not an e-mail address; give one like ops@example.com")

    def build(self) -> None:
        """The log groups, then the topic, its policy and its subscription."""
        self.log_groups = {name: self.log_group(name) for name in LOG_GROUPS}
        self.topic = self.alarm_topic()
        self.topic_policy(self.topic)
        if self.inputs.alarm_email:
            self.email_subscription(self.topic, self.inputs.alarm_email)

    def log_group(self, name: str) -> logs.LogGroup:
        """One retained log group; its data outlives the stack, so it is stateful."""
        props: dict[str, object] = {"RetentionInDays": self.inputs.retention_days}
        if self.inputs.kms_key_arn is not None:
            props["KmsKeyId"] = self.inputs.kms_key_arn
        group = self.add(logs.LogGroup(self.lid(name, "LogGroup"), **props), stateful=True)
        self.output(
            logical_id(name, "LogGroupName"),
            Ref(group),
            f"Name of the log group holding the {name} logs.",
        )
        return group

    def alarm_topic(self) -> sns.Topic:
        """The topic alarms and budget notifications go to; no TopicName, so it never collides."""
        props: dict[str, object] = {"DisplayName": "Alarms"}
        if self.inputs.kms_key_arn is not None:
            props["KmsMasterKeyId"] = self.inputs.kms_key_arn
        topic = self.add(sns.Topic(self.lid("AlarmTopic"), **props))
        if self.inputs.kms_key_arn is None:
            self.skip_check(
                topic,
                "CKV_AWS_26",
                "no KMS key was given: the AWS managed SNS key cannot be used by CloudWatch alarms, "
                "so the topic stays unencrypted rather than silently dropping every alarm",
            )
        self.topic_arn = Ref(topic)
        self.output("AlarmTopicArn", self.topic_arn, "ARN of the SNS topic alarms and budgets notify.")
        return topic

    def topic_policy(self, topic: sns.Topic) -> sns.TopicPolicy:
        """Only CloudWatch and Budgets, acting for this account, may publish, and only over TLS."""
        policy = ResourcePolicy()
        # For Budgets the aws:SourceAccount condition of this statement is the documented one: AWS
        # Budgets' guide conditions its SNS:Publish statement on aws:SourceAccount (and
        # aws:SourceArn arn:aws:budgets::<account>:*), so its publishes carry the key
        # (https://docs.aws.amazon.com/cost-management/latest/userguide/budgets-sns-policy.html).
        policy.allow_services_publish(topic, list(ALARM_PUBLISHERS))
        policy.deny_insecure_publish(topic)
        return self.add(
            sns.TopicPolicy(
                self.lid("AlarmTopicPolicy"),
                Topics=[Ref(topic)],
                PolicyDocument=policy.document(),
            )
        )

    def email_subscription(self, topic: sns.Topic, email: str) -> sns.SubscriptionResource:
        """An e-mail subscription; AWS mails a confirmation link first.

        It is its own resource, not the topic's ``Subscription`` property, so changing the
        address does not touch the topic.
        """
        return self.add(
            sns.SubscriptionResource(
                self.lid("AlarmEmailSubscription"),
                TopicArn=Ref(topic),
                Protocol="email",
                Endpoint=email,
            )
        )


@dataclass(frozen=True)
class AlarmsInputs:
    """Inputs of :class:`Alarms`."""

    topic_arn: AWSHelperFn = setting(doc="ARN of the topic the alarms notify (Logging.topic_arn).")
    load_balancer_full_name: AWSHelperFn = setting(
        doc="The ALB's full name, the LoadBalancer metric dimension (GetAtt LoadBalancerFullName)."
    )
    target_group_full_name: AWSHelperFn = setting(
        doc="The target group's full name, the TargetGroup metric dimension (GetAtt TargetGroupFullName)."
    )
    db_cluster_identifier: AWSHelperFn = setting(doc="The Aurora cluster's identifier (Ref of the DB cluster).")
    alb_5xx_threshold: int = setting(10, "5xx responses in 5 minutes (from the ALB, or from the targets) that alarm.")
    db_cpu_percent: int = setting(80, "DB CPU percent that alarms when held for 15 minutes (1 to 100).")
    db_free_memory_mib: int = setting(256, "Freeable DB memory in MiB below which, for 15 minutes, it alarms.")


@dataclass(frozen=True)
class _AlarmSpec:
    """What differs between the alarms; the rest is common."""

    name: str
    description: str
    namespace: str
    metric: str
    statistic: str
    dimensions: dict[str, AWSHelperFn]
    comparison: str
    threshold: float
    period: int
    evaluation_periods: int
    treat_missing_data: str


class Alarms(Blueprint[AlarmsInputs]):
    """ALB 5xx and unhealthy-target alarms and Aurora CPU and memory alarms, all notifying one topic.

    Every alarm notifies on ALARM and again on OK, so a recovery is announced too.
    """

    alarms: dict[str, cloudwatch.Alarm]

    def validate(self) -> None:
        """Thresholds must be ones the metrics can reach."""
        if self.inputs.alb_5xx_threshold < 1:
            raise self.invalid("alb_5xx_threshold", f"is {self.inputs.alb_5xx_threshold}; use 1 or more")
        if not 1 <= self.inputs.db_cpu_percent <= 100:
            raise self.invalid("db_cpu_percent", f"is {self.inputs.db_cpu_percent}; use 1 to 100")
        if self.inputs.db_free_memory_mib < 1:
            raise self.invalid("db_free_memory_mib", f"is {self.inputs.db_free_memory_mib}; use 1 or more")

    def build(self) -> None:
        """One alarm per spec; override :meth:`specs` to change or add alarms."""
        self.alarms = {spec.name: self.alarm(spec) for spec in self.specs()}

    def specs(self) -> list[_AlarmSpec]:
        """The alarms of the stack: the load balancer's, then the database's."""
        return [*self.load_balancer_specs(), *self.database_specs()]

    def load_balancer_specs(self) -> list[_AlarmSpec]:
        """5xx from the load balancer and from the app, and unhealthy targets."""
        inputs = self.inputs
        alb = {"LoadBalancer": inputs.load_balancer_full_name}
        # The ALB publishes the 5xx counts only when a 5xx happened: no data means no errors.
        five_xx = _AlarmSpec(
            name="LoadBalancer5xx",
            description=(
                f"The load balancer itself returned {inputs.alb_5xx_threshold} or more 5xx responses "
                "in 5 minutes (no healthy target, or targets timing out)."
            ),
            namespace="AWS/ApplicationELB",
            metric="HTTPCode_ELB_5XX_Count",
            statistic="Sum",
            dimensions=alb,
            comparison="GreaterThanOrEqualToThreshold",
            threshold=inputs.alb_5xx_threshold,
            period=300,
            evaluation_periods=1,
            treat_missing_data="notBreaching",
        )
        return [
            five_xx,
            replace(
                five_xx,
                name="Target5xx",
                description=f"The application returned {inputs.alb_5xx_threshold} or more 5xx responses in 5 minutes.",
                metric="HTTPCode_Target_5XX_Count",
            ),
            _AlarmSpec(
                name="UnhealthyTargets",
                description="At least one target has failed its health checks for 5 minutes in a row.",
                namespace="AWS/ApplicationELB",
                metric="UnHealthyHostCount",
                statistic="Maximum",
                dimensions={**alb, "TargetGroup": inputs.target_group_full_name},
                comparison="GreaterThanThreshold",
                threshold=0,
                # Five one-minute periods ride out an instance replaced by a rolling update.
                period=60,
                evaluation_periods=5,
                # A gap (no targets registered yet, during the first deployment) is not an
                # unhealthy target; the 5xx alarms catch an app that serves nothing.
                treat_missing_data="notBreaching",
            ),
        ]

    def database_specs(self) -> list[_AlarmSpec]:
        """CPU and freeable memory of the database's instances."""
        inputs = self.inputs
        db = {"DBClusterIdentifier": inputs.db_cluster_identifier}
        return [
            _AlarmSpec(
                name="DatabaseCpu",
                description=(
                    f"The busiest database instance has used more than {inputs.db_cpu_percent}% CPU "
                    "for 15 minutes, or the cluster stopped reporting."
                ),
                namespace="AWS/RDS",
                metric="CPUUtilization",
                # Maximum across the cluster's instances: one saturated writer must not be averaged away.
                statistic="Maximum",
                dimensions=db,
                comparison="GreaterThanThreshold",
                threshold=inputs.db_cpu_percent,
                period=300,
                evaluation_periods=3,
                # A cluster that stops publishing metrics is down or being replaced: page too.
                treat_missing_data="breaching",
            ),
            _AlarmSpec(
                name="DatabaseFreeMemory",
                description=(
                    f"A database instance has had less than {inputs.db_free_memory_mib} MiB of freeable "
                    "memory for 15 minutes, or the cluster stopped reporting."
                ),
                namespace="AWS/RDS",
                metric="FreeableMemory",
                statistic="Minimum",
                dimensions=db,
                comparison="LessThanThreshold",
                threshold=inputs.db_free_memory_mib * MIB,  # the metric is in bytes
                period=300,
                evaluation_periods=3,
                treat_missing_data="breaching",
            ),
        ]

    def alarm(self, spec: _AlarmSpec) -> cloudwatch.Alarm:
        """One alarm that notifies the topic on ALARM and on OK; its name is left to CloudFormation."""
        return self.add(
            cloudwatch.Alarm(
                self.lid(spec.name, "Alarm"),
                AlarmDescription=spec.description,
                ActionsEnabled=True,
                AlarmActions=[self.inputs.topic_arn],
                OKActions=[self.inputs.topic_arn],
                Namespace=spec.namespace,
                MetricName=spec.metric,
                Statistic=spec.statistic,
                Dimensions=[cloudwatch.MetricDimension(Name=k, Value=v) for k, v in spec.dimensions.items()],
                ComparisonOperator=spec.comparison,
                Threshold=spec.threshold,
                Period=spec.period,
                EvaluationPeriods=spec.evaluation_periods,
                DatapointsToAlarm=spec.evaluation_periods,
                TreatMissingData=spec.treat_missing_data,
            )
        )
