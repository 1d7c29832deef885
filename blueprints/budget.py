"""A monthly cost budget per environment that warns on actual and forecast spend (failure-analysis item 17).

Inputs: :class:`BudgetInputs`. Outputs: ``budget`` (the resource) and ``has_budget`` (the
condition's name), and the exported Output ``BudgetName`` under that condition.

The amount is the template parameter ``MonthlyBudgetUsd`` (its default comes from the inputs), so
an operator can change it at deploy time; with 0 the ``HasBudget`` condition is false and the
budget does not exist. Notifications go to the alarm topic and/or an e-mail address. The budget's
name is left to CloudFormation, so two stacks in one account never collide.

What it counts: only the cost of resources tagged ``Environment=<this environment>`` (the tag
every resource gets from :func:`cfnbuild.build.tags.standard_tags`), so dev's and staging's budgets do
not fire on prod's spend in a shared account. The tag must be activated as a cost allocation tag
in Billing, or the budget counts nothing (see the README).

Where it exists: a budget belongs to the account, not to a region, while a multi-region
environment deploys this same template to each of its regions. The budget is therefore made
only where ``AWS::Region`` equals the ``BudgetRegion`` parameter, which the deploy fills with the
environment's first region (``WebAppConfig`` puts it in ``[deploy] parameters``); the template
itself names no region, so it stays the same for every region.
AWS docs: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-budgets-budget.html
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import And, AWSHelperFn, Condition, Equals, Not, Or, Ref, budgets

from cfnbuild import Blueprint, setting

# The highest threshold the environment config accepts; above it a notification would never fire.
MAX_THRESHOLD_PERCENT = 1000

# The tag the budget filters on: the one cfnbuild.build.tags.standard_tags puts on every resource.
ENVIRONMENT_TAG = "Environment"
# The legacy filter map is the one form whose tag syntax AWS documents: the AWS CLI reference's
# create-budget example filters with "TagKeyValue": ["user:Key$value1", ...], the "user:" prefix
# marking a user-defined cost allocation tag
# (https://docs.aws.amazon.com/cli/latest/reference/budgets/create-budget.html; "the user-defined
# tags use the user prefix": https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/cost-alloc-tags.html).
# The newer FilterExpression (with Metrics) is what the Budgets API recommends
# (https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_CreateBudget.html:
# "Either FilterExpression and Metrics or CostFilters and CostTypes"), but neither its page nor
# TagValues' ("Key: The key for the tag") says whether its Key carries that prefix, so it is not
# used until AWS does.
TAG_FILTER = "TagKeyValue"
USER_TAG_PREFIX = "user:"
# The parameter naming the one region that holds the environment's budget (WebAppConfig fills it
# in [deploy] parameters): a region code, or empty for "the region being deployed to".
BUDGET_REGION_PARAMETER = "BudgetRegion"
REGION_PATTERN = r"^([a-z]{2}(-[a-z]+)+-[0-9])?$"


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
    """A monthly COST budget of one environment, with ACTUAL and FORECASTED notifications.

    It exists under the ``HasBudget`` condition: an amount above 0, and this region being the
    ``BudgetRegion`` parameter's (see the module docstring). It counts the cost of the resources
    tagged ``Environment=<the stack's environment>``.
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
        """The amount and region parameters, the conditions, the budget and its output."""
        amount = self.amount_parameter()
        in_budget_region = self.condition("InBudgetRegion", self.region_condition(self.region_parameter()))
        self.has_budget = self.condition("HasBudget", And(Not(Equals(amount, "0")), Condition(in_budget_region)))
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

    def region_parameter(self) -> Ref:
        """The BudgetRegion parameter: the one region of the environment that holds its budget."""
        parameter = self.parameter(
            BUDGET_REGION_PARAMETER,
            Type="String",
            Default="",
            AllowedPattern=REGION_PATTERN,
            ConstraintDescription="a region code (letters, dashes and a final digit), or empty",
            Description=(
                "The region that holds the environment's budget (cfnbuild deploy sends its first region); "
                "empty: the region deployed to. In every other region the stack makes no budget."
            ),
        )
        return Ref(parameter)

    @staticmethod
    def region_condition(region: Ref) -> AWSHelperFn:
        """True in the budget's region. Empty means "here", for a stack made without cfnbuild's deploy.

        A budget is an account-wide object (Budgets has one endpoint, no regions), so a second
        region's stack would make a second, identical budget and every alert would arrive twice.
        AWS::Region is compared with a parameter rather than a literal so that the template stays
        region-free (tests/test_regions.py builds each environment for other regions).
        """
        return Or(Equals(region, ""), Equals(region, Ref("AWS::Region")))

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
        """A monthly cost budget of this environment's tagged resources (no BudgetName: CloudFormation names it)."""
        return budgets.BudgetData(
            BudgetType="COST",
            TimeUnit="MONTHLY",
            BudgetLimit=budgets.Spend(Amount=amount, Unit="USD"),
            CostFilters={TAG_FILTER: [self.tag_filter_value()]},
        )

    def tag_filter_value(self) -> str:
        """``user:Environment$<environment>``: the cost of resources carrying this environment's tag."""
        return f"{USER_TAG_PREFIX}{ENVIRONMENT_TAG}${self.stack.environment}"

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
