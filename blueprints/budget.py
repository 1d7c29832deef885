"""A monthly cost budget that warns on actual and forecast spend (failure-analysis item 17).

Inputs: :class:`BudgetInputs`. Outputs: ``budget`` (the resource) and ``has_budget`` (the
condition's name), and the exported Output ``BudgetName`` under that condition.

The amount is the template parameter ``MonthlyBudgetUsd`` (its default comes from the inputs), so
an operator can change it at deploy time; with 0 the ``HasBudget`` condition is false and the
budget does not exist. Notifications go to the alarm topic and/or an e-mail address. The budget's
name is left to CloudFormation, so two stacks in one account never collide.
AWS docs: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-budgets-budget.html
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import AWSHelperFn, Equals, Not, Ref, budgets

from cfnbuild import Blueprint, setting

# The highest threshold the environment config accepts; above it a notification would never fire.
MAX_THRESHOLD_PERCENT = 1000


@dataclass(frozen=True)
class BudgetInputs:
    """Inputs of :class:`Budget`."""

    monthly_limit_usd: int = setting(
        0, "Default of the MonthlyBudgetUsd parameter: the monthly cost budget in USD; 0: no budget."
    )
    email: str = setting("", "Address notified by e-mail when a threshold is crossed; empty: none.")
    topic_arn: AWSHelperFn | None = setting(
        None, "ARN of the SNS topic notified (Logging.topic_arn; it must let budgets.amazonaws.com publish)."
    )
    actual_threshold_percent: int = setting(80, "Notify when actual spend exceeds this percent of the budget.")
    forecast_threshold_percent: int = setting(100, "Notify when forecast spend exceeds this percent of the budget.")


class Budget(Blueprint[BudgetInputs]):
    """A monthly COST budget under the ``HasBudget`` condition, with ACTUAL and FORECASTED notifications.

    It covers the whole account's cost. To budget only this stack, a subclass could override
    :meth:`budget_data` to add a ``FilterExpression`` on a cost allocation tag (e.g. the
    ``Project`` tag the engine applies, once activated for cost allocation in Billing).
    """

    budget: budgets.Budget
    has_budget: str

    def validate(self) -> None:
        """Someone must be notified, the amount may not be negative, the thresholds must be percentages."""
        inputs = self.inputs
        if inputs.monthly_limit_usd < 0:
            raise self.invalid("monthly_limit_usd", f"is {inputs.monthly_limit_usd}; use 0 (no budget) or more")
        for field in ("actual_threshold_percent", "forecast_threshold_percent"):
            value = getattr(inputs, field)
            if not 1 <= value <= MAX_THRESHOLD_PERCENT:
                raise self.invalid(field, f"is {value}; use 1 to {MAX_THRESHOLD_PERCENT} percent")
        if inputs.email and ("@" not in inputs.email or any(c.isspace() for c in inputs.email)):
            raise self.invalid("email", f"{inputs.email!r} is not an e-mail address; give one like ops@example.com")
        if not inputs.email and inputs.topic_arn is None:
            raise self.invalid("topic_arn", "a budget must notify someone; give topic_arn, email or both")

    def build(self) -> None:
        """The amount parameter, the condition, the budget and its output."""
        amount = self.amount_parameter()
        self.has_budget = self.condition("HasBudget", Not(Equals(amount, "0")))
        self.budget = self.add(
            budgets.Budget(
                self.lid("MonthlyBudget"),
                Condition=self.has_budget,
                Budget=self.budget_data(amount),
                NotificationsWithSubscribers=[
                    self.notification("ACTUAL", self.inputs.actual_threshold_percent),
                    self.notification("FORECASTED", self.inputs.forecast_threshold_percent),
                ],
            )
        )
        self.output(
            "BudgetName",
            Ref(self.budget),
            "Name of the monthly cost budget.",
            condition=self.has_budget,
        )

    def amount_parameter(self) -> Ref:
        """The MonthlyBudgetUsd parameter, defaulting to the configured amount."""
        parameter = self.parameter(
            "MonthlyBudgetUsd",
            Type="Number",
            MinValue=0,
            Default=self.inputs.monthly_limit_usd,
            Description="Monthly cost budget in USD; 0 creates no budget.",
        )
        return Ref(parameter)

    def budget_data(self, amount: Ref) -> budgets.BudgetData:
        """A monthly cost budget for the whole account (no BudgetName: CloudFormation names it)."""
        return budgets.BudgetData(
            BudgetType="COST",
            TimeUnit="MONTHLY",
            BudgetLimit=budgets.Spend(Amount=amount, Unit="USD"),
        )

    def notification(self, kind: str, percent: int) -> budgets.NotificationWithSubscribers:
        """Notify the topic and/or the e-mail when ``kind`` spend exceeds ``percent`` of the budget."""
        subscribers = []
        if self.inputs.topic_arn is not None:
            subscribers.append(budgets.Subscriber(SubscriptionType="SNS", Address=self.inputs.topic_arn))
        if self.inputs.email:
            subscribers.append(budgets.Subscriber(SubscriptionType="EMAIL", Address=self.inputs.email))
        return budgets.NotificationWithSubscribers(
            Notification=budgets.Notification(
                NotificationType=kind,
                ComparisonOperator="GREATER_THAN",
                Threshold=percent,
                ThresholdType="PERCENTAGE",
            ),
            Subscribers=subscribers,
        )
