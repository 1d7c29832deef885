"""AWS managed policies by name, so a misspelt one fails the build instead of the deploy.

cfn-lint, checkov and the emulator all accept any ``arn:aws:iam::aws:policy/...``; IAM refuses a
name it does not have, in the middle of a stack operation. The names and paths IAM has are in
``cfnbuild/data/aws_managed_policies.txt`` (one ``/path/Name`` a line). That file is not typed
by hand: ``python -m cfnbuild.build.managed_policies`` writes it from moto's copy of IAM's list, which
moto's maintainers regenerate from IAM itself, and a test keeps every name in it within the
installed moto's. A name missing from the file (a policy AWS added since) is looked up in the
installed moto's list, when there is one, before it is refused.
"""

from __future__ import annotations

import difflib
import json
import sys
from functools import cache
from pathlib import Path

from cfnbuild.errors import InputError
from cfnbuild.files import write_atomic

DATA = Path(__file__).parent.parent / "data" / "aws_managed_policies.txt"


def _parse(lines: list[str]) -> dict[str, str]:
    """``/service-role/Name`` lines → name → path (``service-role/`` or ``""``)."""
    known: dict[str, str] = {}
    for line in lines:
        entry = line.strip()
        if entry and not entry.startswith("#"):
            path, _, name = entry.lstrip("/").rpartition("/")
            known[name] = f"{path}/" if path else ""
    return known


@cache
def known_policies() -> dict[str, str]:
    """Every AWS managed policy name cfnbuild ships, with its path."""
    return _parse(DATA.read_text(encoding="utf-8").splitlines())


def _from_moto() -> dict[str, str]:
    """The installed moto's list (name → path), or nothing when moto is not installed."""
    try:
        from moto.iam.aws_managed_policies import aws_managed_policies_data  # noqa: PLC0415  (optional, large)
    except ImportError:
        return {}
    data = json.loads(aws_managed_policies_data)
    return {name: str(policy["Path"]).lstrip("/") for name, policy in data.items()}


def policy_path(name: str) -> str:
    """``name`` as its ARN's tail (``service-role/AmazonRDSEnhancedMonitoringRole``), checked against IAM's list.

    ``name`` is the policy's name, with its path when it has one. A name IAM does not have, or
    the right name at the wrong path, is an :class:`~cfnbuild.errors.InputError` saying what to
    write instead.
    """
    given_path, _, base = name.strip("/").rpartition("/")
    given = f"{given_path}/" if given_path else ""
    known = known_policies()
    path = known.get(base)
    if path is None:
        path = _from_moto().get(base)
    if path is None:
        close = difflib.get_close_matches(base, list(known), n=1, cutoff=0.8)
        hint = f"did you mean {known[close[0]]}{close[0]!r}?" if close else "check its name in the IAM console"
        raise InputError(f"managed policy {name!r}: AWS has no managed policy of that name; {hint}")
    if given != path:
        raise InputError(f"managed policy {name!r}: AWS's is at path /{path}; write {path + base!r}")
    return path + base


def main() -> None:
    """Write the data file from the installed moto's list of AWS managed policies."""
    policies = _from_moto()
    if not policies:
        sys.exit("moto is not installed: pip install 'cfnbuild[local]'")
    lines = [f"/{path}{name}" for name, path in sorted(policies.items())]
    header = (
        "# AWS managed policies (/path/Name), written by python -m cfnbuild.build.managed_policies from moto's list"
    )
    write_atomic(DATA, "\n".join([header, *lines]) + "\n")
    print(f"wrote {len(lines)} policies to {DATA}")


if __name__ == "__main__":
    main()
