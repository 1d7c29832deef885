"""What cfnbuild knows about regions without calling AWS.

``KNOWN_REGIONS`` is the list of regions cfn-lint can lint a template for, written out here
(a test keeps it within the installed cfn-lint's own list): a config is validated by every
command, deploy included, and importing cfn-lint to read its list would cost every one of them a
good part of a second. :func:`is_known` asks cfn-lint only about a region missing here, one a
newer cfn-lint has added. ``cfnbuild lint`` and ``build`` check the configured regions against
the installed cfn-lint again, so an older cfn-lint that lacks a region is named instead of
failing obscurely.

The number of Availability Zones a region offers to a new account comes from ``AZ_COUNT``,
because a template asking ``Fn::GetAZs`` for more zones than exist fails only at deploy time.
"""

from __future__ import annotations

import difflib

# cfn-lint's regions (cfnlint.helpers.REGIONS, cfn-lint 1.58): the commercial partition, China,
# GovCloud, the isolated partitions and the European Sovereign Cloud.
KNOWN_REGIONS: frozenset[str] = frozenset(
    {
        "af-south-1",
        "ap-east-1",
        "ap-east-2",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-south-1",
        "ap-south-2",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ap-southeast-5",
        "ap-southeast-6",
        "ap-southeast-7",
        "ca-central-1",
        "ca-west-1",
        "cn-north-1",
        "cn-northwest-1",
        "eu-central-1",
        "eu-central-2",
        "eu-isoe-west-1",
        "eu-north-1",
        "eu-south-1",
        "eu-south-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eusc-de-east-1",
        "il-central-1",
        "me-central-1",
        "me-south-1",
        "mx-central-1",
        "sa-east-1",
        "us-east-1",
        "us-east-2",
        "us-gov-east-1",
        "us-gov-west-1",
        "us-iso-east-1",
        "us-iso-west-1",
        "us-isob-east-1",
        "us-isob-west-1",
        "us-isof-east-1",
        "us-isof-south-1",
        "us-west-1",
        "us-west-2",
    }
)

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


def is_known(region: str) -> bool:
    """Whether cfn-lint can lint for ``region``: from the list above, else from cfn-lint's own."""
    if region in KNOWN_REGIONS:
        return True
    from cfnlint.helpers import REGIONS  # noqa: PLC0415  (slow, so only for a region missing above)

    return region in REGIONS


def az_count(region: str) -> int:
    """How many Availability Zones ``region`` offers a new account."""
    return AZ_COUNT.get(region, DEFAULT_AZ_COUNT)


def region_problem(region: str) -> str | None:
    """Why ``region`` is not an AWS region (with a did-you-mean), or ``None`` when it is one."""
    if is_known(region):
        return None
    close = difflib.get_close_matches(region, sorted(KNOWN_REGIONS), n=1)
    hint = f"did you mean {close[0]}?" if close else "write region codes like eu-west-1"
    return f"not an AWS region; {hint}"
