"""Parameter lookups a template records: values only the target account and region know.

A blueprint never calls AWS, and the deploy engine only reads the template that ``build`` wrote.
So when a parameter's best value depends on the region (the newest engine version it offers,
say), the blueprint records a *lookup* in the template with :meth:`cfnbuild.Blueprint.lookup`
(or :meth:`cfnbuild.Stack.add_lookup`); it renders, sorted, under the template's Metadata::

    "Metadata": {"cfnbuild": {"lookups": {
        "DbEngineVersion": {"engine": "aurora-mysql", "kind": "rds-engine-version", "major": "3"}
    }}}

At deploy time :func:`cfnbuild.deploy.lookups.resolve_lookups` answers every recorded lookup for one region: an explicit
override wins; else a fresh cached answer; else the AWS API is asked and the answer cached (as
JSON with its timestamp, valid for the kind's ``max_age``). When the API cannot be asked (no
credentials, no route to the endpoint, access denied, an emulator without the API) the value is
``""``, which a looked-up parameter's empty default turns into "let AWS choose", and the
message says why; that never raises. A malformed lookup (unknown kind, wrong arguments) is a
build error and does raise.

This module is what a template records and the kinds that answer it (their ``fetch`` takes a
client factory and imports no AWS library); :mod:`cfnbuild.deploy.lookups` resolves them at
deploy time: overrides, the deployed value, the cache, the API.

Kinds live in :data:`LOOKUP_KINDS`; add one with :func:`register_lookup`. Shipped:

``rds-engine-version`` (arguments ``engine``, ``major``)
    The newest available version of one major of an RDS engine, by numeric order
    (``DescribeDBEngineVersions``), e.g. ``engine="aurora-mysql", major="3"`` gives
    ``8.0.mysql_aurora.3.x.y``.

``availability-zones`` (argument ``count``)
    The names of ``count`` Availability Zones, comma-joined (``eu-west-1b,eu-west-1c``): the
    available ones of type ``availability-zone`` that need no opt-in or are opted in
    (``DescribeAvailabilityZones``), ordered by **zone ID**. A zone ID (``euw1-az1``) is the same
    physical zone in every account while names are mapped to IDs per account, and
    ``Fn::GetAZs`` lists only zones with a default subnet in an order that "isn't guaranteed
    and can change" (https://docs.aws.amazon.com/ram/latest/userguide/working-with-az-ids.html,
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-getavailabilityzones.html).
    The kind *keeps the deployed value* (:attr:`LookupKind.keep_deployed`): once a stack exists
    its zones are never looked up again, so an update cannot move a subnet to another zone
    (which would replace it); only a value given explicitly (config or ``--param``) changes
    them. A stack created before it recorded this lookup keeps ``""``, the zones
    ``Fn::GetAZs`` gave it. Kept for 30 days in the cache: a region's zones change rarely.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from cfnbuild.build.stateful import METADATA_KEY
from cfnbuild.errors import CfnbuildError

if TYPE_CHECKING:
    pass

LOOKUPS_KEY = "lookups"
KIND_KEY = "kind"
DEFAULT_MAX_AGE = timedelta(hours=24)

# A client asked for one service, already bound to the region and endpoint being deployed to.
ClientFactory = Callable[[str], Any]


class LookupUnavailable(Exception):
    """The lookup ran but found no answer; the message is the reason shown to the user."""


class LookupSpecError(CfnbuildError):
    """A template records a lookup this cfnbuild cannot run (unknown kind, wrong arguments)."""


@dataclass(frozen=True)
class LookupKind:
    """One kind of lookup: the arguments it takes, what it looks up, and how.

    ``describe`` names the looked-up thing for messages ("the newest Aurora MySQL 3 version");
    ``fetch`` asks AWS through the client factory and returns the value, raising
    :class:`LookupUnavailable` (or a botocore error) when it finds none. ``keep_deployed``: once
    the stack exists, the value it was deployed with wins over a fresh answer (only an explicit
    value changes it), for values whose change would replace resources.
    """

    name: str
    arguments: tuple[str, ...]
    describe: Callable[[Mapping[str, str]], str]
    fetch: Callable[[ClientFactory, Mapping[str, str]], str]
    max_age: timedelta = DEFAULT_MAX_AGE
    keep_deployed: bool = False
    check: Callable[[Mapping[str, str]], str | None] | None = None


LOOKUP_KINDS: dict[str, LookupKind] = {}


def register_lookup(kind: LookupKind) -> LookupKind:
    """Make ``kind`` available to templates; a name can be registered once."""
    if kind.name in LOOKUP_KINDS:
        raise ValueError(f"lookup kind {kind.name!r} is already registered")
    LOOKUP_KINDS[kind.name] = kind
    return kind


def check_lookup(kind: str, arguments: Mapping[str, Any]) -> LookupKind:
    """The registered kind named ``kind``, once ``arguments`` are exactly the ones it takes.

    Raises ``ValueError`` saying what to change.
    """
    found = LOOKUP_KINDS.get(kind)
    if found is None:
        known = ", ".join(sorted(LOOKUP_KINDS)) or "none"
        raise ValueError(f"unknown lookup kind {kind!r}; use one of: {known}")
    missing = sorted(set(found.arguments) - set(arguments))
    extra = sorted(set(arguments) - set(found.arguments))
    if missing or extra:
        problems = [f"missing {', '.join(missing)}"] if missing else []
        problems += [f"unexpected {', '.join(extra)}"] if extra else []
        raise ValueError(
            f"lookup kind {kind!r} takes {', '.join(found.arguments)} ({'; '.join(problems)})",
        )
    for name, value in arguments.items():
        if not isinstance(value, str) or not value:
            raise ValueError(f"lookup argument {name}={value!r} must be a non-empty string")
    problem = found.check(arguments) if found.check is not None else None
    if problem is not None:
        raise ValueError(f"lookup kind {kind!r}: {problem}")
    return found


@dataclass(frozen=True)
class Lookup:
    """One lookup recorded in a template: which parameter, which kind, with which arguments."""

    parameter: str
    kind: str
    arguments: Mapping[str, str]


def recorded_lookups(template: Mapping[str, Any]) -> list[Lookup]:
    """The lookups a rendered template records, sorted by parameter; each one checked.

    Raises :class:`LookupSpecError` naming the parameter when one cannot run.
    """
    metadata = (template.get("Metadata") or {}).get(METADATA_KEY) or {}
    declared = metadata.get(LOOKUPS_KEY) or {}
    parameters = template.get("Parameters") or {}
    lookups = []
    for parameter, spec in sorted(declared.items()):
        if not isinstance(spec, Mapping) or KIND_KEY not in spec:
            raise LookupSpecError(
                f"lookup for parameter {parameter}: {spec!r} has no {KIND_KEY!r}; rebuild the template"
            )
        if parameter not in parameters:
            raise LookupSpecError(f"lookup for parameter {parameter}: the template has no such parameter; rebuild it")
        arguments = {k: v for k, v in spec.items() if k != KIND_KEY}
        try:
            check_lookup(spec[KIND_KEY], arguments)
        except ValueError as exc:
            raise LookupSpecError(f"lookup for parameter {parameter}: {exc}") from None
        lookups.append(Lookup(parameter, spec[KIND_KEY], arguments))
    return lookups


# --- rds-engine-version ---------------------------------------------------------------------

ENGINE_NAMES = {
    "aurora-mysql": "Aurora MySQL",
    "aurora-postgresql": "Aurora PostgreSQL",
    "mariadb": "MariaDB",
    "mysql": "MySQL",
    "postgres": "PostgreSQL",
}
_NUMERIC_VERSION = re.compile(r"\d+(?:\.\d+)*")
# Aurora MySQL versions carry the MySQL version first; the Aurora version (whose first number is
# the major, 3 for MySQL 8.0) follows "mysql_aurora.": 8.0.mysql_aurora.3.05.2.
_AURORA_MYSQL_VERSION = re.compile(r"\d+\.\d+\.mysql_aurora\.(\d+(?:\.\d+)*)")


def engine_version_key(engine: str, version: str, major: str) -> tuple[int, ...] | None:
    """The numeric sort key of ``version`` if it is a well-formed version of ``major``, else None.

    ``major`` is a dotted prefix of the version's numbers: ``"3"`` for Aurora MySQL 3,
    ``"16"`` for PostgreSQL 16, ``"8.0"`` for MySQL 8.0. Numbers compare as numbers, so
    ``3.10.0`` sorts after ``3.9.1``.
    """
    if engine == "aurora-mysql":
        match = _AURORA_MYSQL_VERSION.fullmatch(version)
        numbers = match.group(1) if match else None
    else:
        numbers = version if _NUMERIC_VERSION.fullmatch(version) else None
    if numbers is None or not _NUMERIC_VERSION.fullmatch(major):
        return None
    key = tuple(int(part) for part in numbers.split("."))
    prefix = tuple(int(part) for part in major.split("."))
    return key if key[: len(prefix)] == prefix and len(key) > len(prefix) else None


def _describe_engine_version(arguments: Mapping[str, str]) -> str:
    engine = arguments["engine"]
    return f"the newest {ENGINE_NAMES.get(engine, engine)} {arguments['major']} version"


def newest_engine_version(versions: list[Mapping[str, Any]], engine: str, major: str) -> str | None:
    """The newest available version of ``major`` among ``DBEngineVersions`` entries, if any."""
    candidates = []
    for entry in versions:
        # Status is absent from older answers; when present only "available" can be created.
        if entry.get("Status", "available") != "available":
            continue
        version = str(entry.get("EngineVersion", ""))
        key = engine_version_key(engine, version, major)
        if key is not None:
            candidates.append((key, version))
    return max(candidates)[1] if candidates else None


def _fetch_engine_version(clients: ClientFactory, arguments: Mapping[str, str]) -> str:
    engine, major = arguments["engine"], arguments["major"]
    rds = clients("rds")
    versions: list[Mapping[str, Any]] = []
    arguments = {"Engine": engine}
    while True:  # pages by hand: a paginator would load its model for a call or two
        page = rds.describe_db_engine_versions(**arguments)
        versions.extend(page.get("DBEngineVersions", []))
        if not page.get("Marker"):
            break
        arguments["Marker"] = page["Marker"]
    newest = newest_engine_version(versions, engine, major)
    if newest is None:
        raise LookupUnavailable(f"none of the {len(versions)} {engine} versions listed is an available {major}.x")
    return newest


register_lookup(
    LookupKind(
        name="rds-engine-version",
        arguments=("engine", "major"),
        describe=_describe_engine_version,
        fetch=_fetch_engine_version,
    )
)


# --- availability-zones ---------------------------------------------------------------------

MAX_ZONES = 6
# A zone that needs no opt-in, or one the account opted in to, can hold a subnet.
_USABLE_OPT_IN = frozenset({"opt-in-not-required", "opted-in"})


def _describe_zones(arguments: Mapping[str, str]) -> str:
    return f"the first {arguments['count']} Availability Zones by zone ID"


def zones_by_id(zones: list[Mapping[str, Any]], count: int) -> list[str]:
    """The names of the first ``count`` usable zones among ``AvailabilityZones`` entries, by ZoneId.

    Usable: state ``available``, type ``availability-zone`` (no Local or Wavelength Zone), and
    no opt-in pending. Raises :class:`LookupUnavailable` when fewer than ``count`` are.
    """
    usable = sorted(
        (str(zone["ZoneId"]), str(zone["ZoneName"]))
        for zone in zones
        if zone.get("State", "available") == "available"
        and zone.get("ZoneType", "availability-zone") == "availability-zone"
        and zone.get("OptInStatus", "opt-in-not-required") in _USABLE_OPT_IN
        and zone.get("ZoneId")
        and zone.get("ZoneName")
    )
    if len(usable) < count:
        listed = ", ".join(f"{name} ({zone_id})" for zone_id, name in usable) or "none"
        raise LookupUnavailable(f"the region has {len(usable)} usable Availability Zone(s) for {count}: {listed}")
    return [name for _, name in usable[:count]]


def _check_zone_count(arguments: Mapping[str, str]) -> str | None:
    count = arguments["count"]
    if count.isdigit() and 1 <= int(count) <= MAX_ZONES:
        return None
    return f"count={count!r} is not a number of zones from 1 to {MAX_ZONES}"


def _fetch_zones(clients: ClientFactory, arguments: Mapping[str, str]) -> str:
    count = int(arguments["count"])
    answer = clients("ec2").describe_availability_zones(
        Filters=[
            {"Name": "state", "Values": ["available"]},
            {"Name": "zone-type", "Values": ["availability-zone"]},
        ]
    )
    return ",".join(zones_by_id(answer.get("AvailabilityZones", []), count))


register_lookup(
    LookupKind(
        name="availability-zones",
        arguments=("count",),
        describe=_describe_zones,
        fetch=_fetch_zones,
        max_age=timedelta(days=30),
        keep_deployed=True,
        check=_check_zone_count,
    )
)
