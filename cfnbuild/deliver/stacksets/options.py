"""What a StackSets delivery is asked for: target accounts and regions, operation preferences, roles.

:func:`parse_delivery` checks the command's options before anything is called, each problem one
line naming the option and the fix (``--param KEY=VALUE`` is the CLI's, as for every command). The
result is a :class:`Delivery` holding :class:`Preferences`, sent as each operation's
``OperationPreferences`` -
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackSetOperationPreferences.html
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cfnbuild.errors import UsageError
from cfnbuild.regions import region_problem

Pair = tuple[str, str]  # (account, region)
RegionOrder = Literal["parallel", "sequential"]

DEFAULT_ADMINISTRATION_ROLE = "AWSCloudFormationStackSetAdministrationRole"  # in the administrator account
DEFAULT_EXECUTION_ROLE = "AWSCloudFormationStackSetExecutionRole"  # in each target account
_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$")
_ROLE_NAME = re.compile(r"^[a-zA-Z_0-9+=,.@-]{1,64}$")


@dataclass(frozen=True)
class Preferences:
    """How CloudFormation runs each operation: concurrency, failure tolerance and region order.

    Unset values are not sent, so AWS's defaults apply (1 account at a time, 0 failures).
    """

    max_concurrent_count: int | None = None
    max_concurrent_percent: int | None = None
    failure_tolerance_count: int | None = None
    failure_tolerance_percent: int | None = None
    region_order: RegionOrder = "sequential"

    def to_api(self, regions: Sequence[str]) -> dict[str, Any]:
        """``OperationPreferences`` for an operation over ``regions`` (in the order given)."""
        preferences: dict[str, Any] = {"RegionConcurrencyType": self.region_order.upper()}
        if self.region_order == "sequential" and regions:
            preferences["RegionOrder"] = list(regions)
        for key, value in (
            ("MaxConcurrentCount", self.max_concurrent_count),
            ("MaxConcurrentPercentage", self.max_concurrent_percent),
            ("FailureToleranceCount", self.failure_tolerance_count),
            ("FailureTolerancePercentage", self.failure_tolerance_percent),
        ):
            if value is not None:
                preferences[key] = value
        return preferences

    def describe(self) -> str:
        """One line for the plan: ``up to 1 account at a time, 0 failure(s) tolerated per region…``."""
        if self.max_concurrent_percent is not None:
            concurrency = f"up to {self.max_concurrent_percent}% of the accounts at a time"
        else:
            concurrency = f"up to {self.max_concurrent_count or 1} account(s) at a time"
        return f"{concurrency}, {self.tolerance()} per region, regions {self.region_order}"

    def tolerance(self) -> str:
        """The failure tolerance in words."""
        if self.failure_tolerance_percent is not None:
            return f"{self.failure_tolerance_percent}% of the accounts may fail"
        return f"{self.failure_tolerance_count or 0} failure(s) tolerated"


@dataclass(frozen=True)
class Delivery:
    """Where the stack set's instances go, and how the operations run."""

    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    preferences: Preferences = Preferences()
    administration_role_arn: str | None = None  # None: the stack set's, or AWS's default
    execution_role_name: str | None = None

    @property
    def pairs(self) -> list[Pair]:
        """Every named account x region, accounts first, in the order given."""
        return [(account, region) for account in self.accounts for region in self.regions]


def _split(value: str | None) -> list[str]:
    items = [item.strip() for item in (value or "").split(",")]
    return list(dict.fromkeys(item for item in items if item))  # in order, each once


def _number(option: str, value: str | None, low: int, high: int | None, problems: list[str]) -> int | None:
    if value is None:
        return None
    span = f"{low} to {high}" if high is not None else f"{low} or more"
    try:
        number = int(value)
    except ValueError:
        problems.append(f"{option} {value}: not a whole number; give {span}")
        return None
    if number < low or (high is not None and number > high):
        problems.append(f"{option} {value}: out of range; give {span}")
        return None
    return number


def _region_problem(option: str, region: str) -> str | None:
    problem = region_problem(region)
    return f"{option} {region}: {problem}" if problem else None


def parse_delivery(
    *,
    accounts: str | None,
    regions: str | None,
    max_concurrent: str | None = None,
    max_concurrent_percent: str | None = None,
    failure_tolerance: str | None = None,
    failure_tolerance_percent: str | None = None,
    region_order: str | None = None,
    administration_role_arn: str | None = None,
    execution_role_name: str | None = None,
    admin_region: str | None = None,
) -> Delivery:
    """Check the options before anything is called; every problem is one line naming the option and the fix."""
    problems: list[str] = []
    account_ids = _split(accounts)
    if not account_ids:
        problems.append("--accounts is missing; name the target accounts, e.g. --accounts 111111111111,222222222222")
    for account in account_ids:
        if not _ACCOUNT_ID.match(account):
            problems.append(f"--accounts {account}: not an AWS account id; write 12 digits, e.g. 111111111111")
    region_names = _split(regions)
    if not region_names:
        problems.append("--regions is missing; name the target regions, e.g. --regions eu-west-1,eu-central-1")
    problems += [p for p in (_region_problem("--regions", r) for r in region_names) if p]
    if admin_region is not None and (problem := _region_problem("--region", admin_region)):
        problems.append(problem)
    concurrent = _number("--max-concurrent", max_concurrent, 1, None, problems)
    concurrent_percent = _number("--max-concurrent-percent", max_concurrent_percent, 1, 100, problems)
    tolerance = _number("--failure-tolerance", failure_tolerance, 0, None, problems)
    tolerance_percent = _number("--failure-tolerance-percent", failure_tolerance_percent, 0, 100, problems)
    if max_concurrent is not None and max_concurrent_percent is not None:
        problems.append("--max-concurrent and --max-concurrent-percent: give one of them, not both")
    if failure_tolerance is not None and failure_tolerance_percent is not None:
        problems.append("--failure-tolerance and --failure-tolerance-percent: give one of them, not both")
    if concurrent is not None and tolerance_percent is None and concurrent > (tolerance or 0) + 1:
        # StackSetOperationPreferences: MaxConcurrentCount is at most FailureToleranceCount + 1
        # (the default concurrency mode, STRICT_FAILURE_TOLERANCE).
        problems.append(
            f"--max-concurrent {concurrent}: CloudFormation runs at most failure tolerance + 1 accounts at once; "
            f"add --failure-tolerance {concurrent - 1} or lower --max-concurrent to {(tolerance or 0) + 1}"
        )
    order = (region_order or "sequential").lower()
    if order not in ("parallel", "sequential"):
        problems.append(f"--region-order {region_order}: give parallel or sequential")
    if administration_role_arn is not None and not _ROLE_ARN.match(administration_role_arn):
        problems.append(
            f"--administration-role-arn {administration_role_arn}: not an IAM role ARN; "
            "write arn:aws:iam::ACCOUNT:role/NAME, or leave it out for AWS's default"
        )
    if execution_role_name is not None and not _ROLE_NAME.match(execution_role_name):
        problems.append(
            f"--execution-role-name {execution_role_name}: not an IAM role name; give 1 to 64 of "
            "letters, digits and +=,.@_- (a name, not an ARN), or leave it out for AWS's default"
        )
    if problems:
        raise UsageError("\n".join(problems))
    return Delivery(
        accounts=tuple(account_ids),
        regions=tuple(region_names),
        preferences=Preferences(
            max_concurrent_count=concurrent,
            max_concurrent_percent=concurrent_percent,
            failure_tolerance_count=tolerance,
            failure_tolerance_percent=tolerance_percent,
            region_order="parallel" if order == "parallel" else "sequential",
        ),
        administration_role_arn=administration_role_arn,
        execution_role_name=execution_role_name,
    )
