"""Deploy-time parameter lookups: parameter values only the target account and region know.

A blueprint never calls AWS, and the deploy engine only reads the template that ``build`` wrote.
So when a parameter's best value depends on the region (the newest engine version it offers,
say), the blueprint records a *lookup* in the template with :meth:`cfnbuild.Blueprint.lookup`
(or :meth:`cfnbuild.Stack.add_lookup`); it renders, sorted, under the template's Metadata::

    "Metadata": {"cfnbuild": {"lookups": {
        "DbEngineVersion": {"engine": "aurora-mysql", "kind": "rds-engine-version", "major": "3"}
    }}}

At deploy time :func:`resolve_lookups` answers every recorded lookup for one region: an explicit
override wins; else a fresh cached answer; else the AWS API is asked and the answer cached (as
JSON with its timestamp, valid for the kind's ``max_age``). When the API cannot be asked (no
credentials, no route to the endpoint, access denied, an emulator without the API) the value is
``""``, which a looked-up parameter's empty default turns into "let AWS choose", and the
message says why; that never raises. A malformed lookup (unknown kind, wrong arguments) is a
build error and does raise.

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

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cfnbuild.build.stateful import METADATA_KEY
from cfnbuild.errors import CfnbuildError
from cfnbuild.files import json_kind, read_cache_entry, shape_problem, write_cache_entry

if TYPE_CHECKING:
    import boto3

LOOKUPS_KEY = "lookups"
KIND_KEY = "kind"
DEFAULT_MAX_AGE = timedelta(hours=24)
# A lookup is advice, not a gate: a few quick attempts (enough to ride out throttling), not
# minutes of retries before a deploy can go on with the region's default.
MAX_ATTEMPTS = 3
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 15

# A client asked for one service, already bound to the region and endpoint being deployed to.
ClientFactory = Callable[[str], Any]
Source = Literal["override", "deployed", "cache", "aws", "fallback"]


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


@dataclass(frozen=True)
class LookupResult:
    """The value one parameter gets, where it came from, and a sentence for the user.

    ``value`` is ``""`` when the lookup could not run (``source == "fallback"``): the parameter's
    empty default, which lets AWS choose.
    """

    parameter: str
    value: str
    source: Source
    message: str

    def __str__(self) -> str:
        return f"{self.parameter}: {self.message}"


class LookupResults(Mapping[str, LookupResult]):
    """Every recorded lookup's result, by parameter name."""

    def __init__(self, results: list[LookupResult]) -> None:
        self._results = {result.parameter: result for result in results}

    def __getitem__(self, parameter: str) -> LookupResult:
        return self._results[parameter]

    def __iter__(self) -> Iterator[str]:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    def parameter_values(self) -> dict[str, str]:
        """Parameter name → value, to pass to CloudFormation."""
        return {name: result.value for name, result in self._results.items()}

    def fallbacks(self) -> list[LookupResult]:
        """The lookups that could not run (value ``""``), for the deploy engine to warn about."""
        return [result for result in self._results.values() if result.source == "fallback"]

    def messages(self) -> list[str]:
        """One line per parameter, saying what it gets and why."""
        return [str(result) for result in self._results.values()]


def resolve_lookups(
    template: Mapping[str, Any],
    *,
    region: str,
    session: boto3.Session | None,
    cache_dir: Path,
    endpoint_url: str | None = None,
    overrides: Mapping[str, str] | None = None,
    deployed: Mapping[str, str] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> LookupResults:
    """Answer every lookup ``template`` records, for ``region``.

    ``overrides`` (parameter → value) win without a call; overrides of parameters that record
    no lookup are not this function's business and are ignored. ``deployed`` is the parameters
    of the stack as deployed (``None``: no stack yet): a kind that keeps the deployed value
    answers with it without a call (``""`` when the stack predates the parameter). ``session`` None means boto3's
    default credential chain; ``endpoint_url`` points the clients at an emulator. ``clock``
    (default: now, in UTC) is for tests. Failures to reach AWS never raise: they give ``""``
    and a message with the reason.
    """
    now = (clock or _utc_now)()
    overrides = overrides or {}
    clients = _ClientCache(session, region, endpoint_url)
    results = []
    for lookup in recorded_lookups(template):
        kind = LOOKUP_KINDS[lookup.kind]
        subject = f"{kind.describe(lookup.arguments)} in {region}"
        if lookup.parameter in overrides:
            value = overrides[lookup.parameter]
            results.append(
                LookupResult(
                    lookup.parameter,
                    value,
                    "override",
                    f"{value or '(empty)'} given explicitly; {subject} not looked up",
                )
            )
            continue
        if kind.keep_deployed and deployed is not None:
            results.append(_kept(lookup, subject, deployed))
            continue
        cache = _CacheEntry(cache_dir, lookup, region)
        cached = cache.read(now, kind.max_age)
        if cached is not None:
            value, looked_up_at = cached
            age = _age(now - looked_up_at)
            results.append(LookupResult(lookup.parameter, value, "cache", f"{value}, {subject} (cached {age} ago)"))
            continue
        try:
            value = kind.fetch(clients, lookup.arguments)
        except _unreachable_errors() as exc:
            results.append(
                LookupResult(
                    lookup.parameter,
                    "",
                    "fallback",
                    f"could not look up {subject} ({_reason(exc)}); using the region's default",
                )
            )
            continue
        cache.write(value, now)
        results.append(LookupResult(lookup.parameter, value, "aws", f"{value}, {subject} (looked up now)"))
    return LookupResults(results)


def _kept(lookup: Lookup, subject: str, deployed: Mapping[str, str]) -> LookupResult:
    """The deployed value of a parameter whose kind keeps it, with the sentence saying so."""
    fix = f"pass --param {lookup.parameter}=VALUE to change it"
    if lookup.parameter in deployed:
        value = deployed[lookup.parameter]
        message = f"{value or '(empty)'} kept as the stack has it; {subject} not looked up again, so it never moves"
    else:
        value = ""
        message = f"(empty) kept: the stack predates the lookup of {subject} and keeps what an empty value gives it"
    return LookupResult(lookup.parameter, value, "deployed", f"{message} ({fix})")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _age(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"


def _unreachable_errors() -> tuple[type[Exception], ...]:
    """Everything that means "AWS could not answer", as opposed to a bug here."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415  (botocore loads only when a lookup runs)
    from botocore.parsers import ResponseParserError  # noqa: PLC0415

    # ResponseParserError is not a BotoCoreError: it is what an endpoint that does not speak
    # the API (an emulator answering HTTP 500 with HTML) gives.
    return (BotoCoreError, ClientError, ResponseParserError, LookupUnavailable)


def _reason(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping) and "Error" in response:
        error = response["Error"]
        return f"{error.get('Code', 'error')}: {error.get('Message', '').strip()}".rstrip(": ")
    if isinstance(exc, LookupUnavailable):
        return str(exc)
    if type(exc).__name__ == "ResponseParserError":  # botocore's; imported only when a lookup runs
        return "ResponseParserError: the endpoint's answer is not an AWS response, as from an emulator without this API"
    first_line = (str(exc).strip().splitlines() or [""])[0].rstrip(":. ")
    return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__


class _ClientCache:
    """boto3 clients made on first use (so an override-only run never builds a session)."""

    def __init__(self, session: boto3.Session | None, region: str, endpoint_url: str | None) -> None:
        self.session = session
        self.region = region
        self.endpoint_url = endpoint_url
        self.clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self.clients:
            import boto3  # noqa: PLC0415  (boto3 loads only when a lookup runs)
            from botocore.config import Config  # noqa: PLC0415

            session = self.session or boto3.Session()
            config = Config(
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                read_timeout=READ_TIMEOUT_SECONDS,
                retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
            )
            # Through Callable[..., Any]: the stubs overload client() per literal service name.
            make_client: Callable[..., Any] = session.client
            self.clients[service] = make_client(
                service, region_name=self.region, endpoint_url=self.endpoint_url, config=config
            )
        return self.clients[service]


class _CacheEntry:
    """One lookup's cached answer: ``<cache_dir>/<kind>--<region>--<arguments>.json``."""

    def __init__(self, cache_dir: Path, lookup: Lookup, region: str) -> None:
        self.identity = {
            "arguments": dict(sorted(lookup.arguments.items())),
            "kind": lookup.kind,
            "region": region,
        }
        parts = [lookup.kind, region, *(f"{k}={v}" for k, v in sorted(lookup.arguments.items()))]
        # The file name is only a hint (characters are replaced); the identity inside decides.
        self.path = cache_dir / (re.sub(r"[^A-Za-z0-9._=-]", "_", "--".join(parts)) + ".json")

    def read(self, now: datetime, max_age: timedelta) -> tuple[str, datetime] | None:
        """The cached value and when it was looked up, if it is this lookup's and younger than ``max_age``.

        An entry that cannot be read or is not one cfnbuild wrote is warned about once and is
        no answer: AWS is asked again and the entry overwritten. One for another lookup (file
        names can collide) or too old is no answer either, silently.
        """
        entry = read_cache_entry(self.path, _entry_problem)
        if entry is None:
            return None
        if {k: entry.get(k) for k in self.identity} != self.identity:
            return None
        looked_up_at = datetime.fromisoformat(entry["looked_up_at"])
        if not timedelta(0) <= now - looked_up_at < max_age:
            return None
        return entry["value"], looked_up_at

    def write(self, value: str, now: datetime) -> None:
        """Remember ``value`` as looked up at ``now`` (unless the cache cannot be written: that is warned about)."""
        entry = {**self.identity, "looked_up_at": now.isoformat(), "value": value}
        write_cache_entry(self.path, json.dumps(entry, indent=2, sort_keys=True) + "\n")


_ENTRY_SHAPE: dict[str, type] = {"looked_up_at": str, "value": str}


def _entry_problem(entry: Any) -> str | None:
    """What keeps ``entry`` from being one :meth:`_CacheEntry.write` wrote; ``None`` when nothing does."""
    if not isinstance(entry, dict):
        return f"{json_kind(entry)}, not an object"
    problem = shape_problem(entry, _ENTRY_SHAPE)
    if problem is not None:
        return problem
    text = entry["looked_up_at"]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return f"'looked_up_at' is not a timestamp: {text!r}"
    return None if moment.tzinfo is not None else f"'looked_up_at' has no time zone: {text!r}"


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
