"""Resolving a template's lookups at deploy time: override, deployed value, cache, or the API.

What a template records and the kinds that answer it are :mod:`cfnbuild.build.lookups`; this
module answers every recorded lookup for one Region (:func:`resolve_lookups`), caching answers
under ``.cfnbuild-cache/lookups/`` and never raising when the API cannot be asked: the value is
then ``""`` (the parameter's empty default) and the message says why.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cfnbuild.build.lookups import (
    DEFAULT_MAX_AGE,
    KIND_KEY,
    LOOKUP_KINDS,
    LOOKUPS_KEY,
    ClientFactory,
    Lookup,
    LookupKind,
    LookupSpecError,
    LookupUnavailable,
    check_lookup,
    engine_version_key,
    newest_engine_version,
    recorded_lookups,
    register_lookup,
    zones_by_id,
)
from cfnbuild.files import json_kind, read_cache_entry, shape_problem, write_cache_entry

if TYPE_CHECKING:
    import boto3

__all__ = [
    "DEFAULT_MAX_AGE",
    "KIND_KEY",
    "LOOKUPS_KEY",
    "LOOKUP_KINDS",
    "ClientFactory",
    "Lookup",
    "LookupKind",
    "LookupResult",
    "LookupResults",
    "LookupSpecError",
    "LookupUnavailable",
    "check_lookup",
    "engine_version_key",
    "newest_engine_version",
    "recorded_lookups",
    "register_lookup",
    "resolve_lookups",
    "zones_by_id",
]

# A lookup is advice, not a gate: a few quick attempts (enough to ride out throttling), not
# minutes of retries before a deploy can go on with the region's default.
MAX_ATTEMPTS = 3
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 15
Source = Literal["override", "deployed", "cache", "aws", "fallback"]
_ENTRY_SHAPE: dict[str, type] = {"looked_up_at": str, "value": str}


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
    subject: str = ""  # what was looked up: "the newest Aurora MySQL 3 version in eu-west-1"
    no_api: bool = False  # a fallback because the endpoint lacks the API (an emulator), not a failure of AWS

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
                    subject=subject,
                    no_api=_lacks_api(exc),
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


def _lacks_api(exc: Exception) -> bool:
    """Whether the endpoint answered that it has no such API (an emulator), rather than AWS failing."""
    from cfnbuild.deploy.aws import is_not_implemented  # noqa: PLC0415  (boto3 loads only when a lookup runs)

    return type(exc).__name__ == "ResponseParserError" or is_not_implemented(exc)


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
            from botocore.config import Config  # noqa: PLC0415  (botocore loads only when a lookup runs)

            from cfnbuild.sessions import boto3_session  # noqa: PLC0415

            session = self.session or boto3_session()
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
