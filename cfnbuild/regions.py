"""What cfnbuild knows about regions without calling AWS.

The list of regions is cfn-lint's (so every region a config names can be linted); the number of
Availability Zones a region offers to a new account comes from the table below, because a
template asking ``Fn::GetAZs`` for more zones than exist fails only at deploy time.
"""

from __future__ import annotations

from cfnlint.helpers import REGIONS

KNOWN_REGIONS: frozenset[str] = frozenset(REGIONS)

# Availability Zones a new account can use, from "Regions and Availability Zones" in the AWS
# documentation (https://aws.amazon.com/about-aws/global-infrastructure/regions_az/) and the
# EC2 User Guide. Regions with more than three zones are listed with their count; us-west-1
# offers new accounts only two. Every region AWS launched since 2017 has at least three, which is
# the count assumed for a region missing here.
AZ_COUNT: dict[str, int] = {
    "us-east-1": 6,
    "us-west-1": 2,
    "us-west-2": 4,
    "ap-northeast-2": 4,
}
DEFAULT_AZ_COUNT = 3


def az_count(region: str) -> int:
    """How many Availability Zones ``region`` offers a new account."""
    return AZ_COUNT.get(region, DEFAULT_AZ_COUNT)
