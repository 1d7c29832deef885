"""Where a deploy goes, the boto3 clients that take it there, and what their failures mean.

The same code path serves AWS and the embedded emulator: only the endpoint and the credentials
differ. Clients retry in botocore's standard mode with a small budget (throttling, 5xx and
dropped connections are retried with backoff) and bounded connect and read timeouts, so an
endpoint that does not answer is reported within seconds, not minutes; a retry that keeps the
user waiting is said as it happens.

**The error model.** Every failure a botocore client raises — an AWS error answer
(``ClientError``), no or expired credentials, an endpoint that cannot be reached or does not speak
the API, a request botocore refuses to send — becomes one :class:`AwsError` through
:func:`explain`: one line saying what cfnbuild was doing (service, operation, stack, region and
endpoint), what answered (AWS's code and message), and the fix where one is known. The CLI
applies it to whatever a command raises; nothing else catches botocore's exceptions to word
them. Each client records which call it was making (:class:`Call`) on the exceptions it raises,
so the line names the call even when the error surfaces far from it (in another thread).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectionError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSLError,
    SSOError,
    TokenRetrievalError,
)
from botocore.parsers import ResponseParserError
from botocore.retries import standard

from cfnbuild.errors import CfnbuildError, UsageError
from cfnbuild.sessions import boto3_session

MAX_ATTEMPTS = 4  # one call and three retries: an unreachable endpoint is answered within ~15 s
CONNECT_TIMEOUT_SECONDS = 3
READ_TIMEOUT_SECONDS = 30
RETRIES = Config(
    retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
    connect_timeout=CONNECT_TIMEOUT_SECONDS,
    read_timeout=READ_TIMEOUT_SECONDS,
    user_agent_extra="cfnbuild",
)
# A retry is said once the call has kept the user waiting this long.
SAY_RETRIES_AFTER_SECONDS = 2.0

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)
EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"})
REJECTED_CREDENTIAL_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "AuthFailure",
        "InvalidAccessKeyId",
        "InvalidToken",
        "IncompleteSignature",
        "MissingAuthenticationToken",
    }
)
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "Forbidden"}
)
NOT_IMPLEMENTED_CODES = frozenset({"NotImplemented", "NotImplementedException", "InvalidAction", "UnknownOperation"})
# What emulators put in the message of an API they lack (moto, LocalStack and others).
NOT_IMPLEMENTED_WORDS = re.compile(r"not (yet )?(emulated|implemented|supported by)|has not been implemented", re.I)


@dataclass(frozen=True)
class Target:
    """One stack in one region of one account (or of the emulator)."""

    stack_name: str
    region: str
    profile: str | None = None
    endpoint_url: str | None = None
    credentials: dict[str, str] | None = None  # only for the emulator's throwaway credentials
    session: bool = False  # the emulator is a local session (``cfnbuild local start``), not this command's own

    @property
    def local(self) -> bool:
        """Whether this is the embedded emulator."""
        return self.credentials is not None


@dataclass(frozen=True)
class Call:
    """One API call a client was making: enough to say what cfnbuild was doing when it failed."""

    service: str  # as AWS names it: CloudFormation, S3, STS
    prefix: str  # the IAM action prefix: cloudformation, s3, sts
    operation: str  # CreateChangeSet
    region: str
    endpoint_url: str  # where the request went
    stack_name: str | None = None
    custom_endpoint: bool = False  # --endpoint-url or the emulator, not AWS's own
    local: bool = False
    session: bool = False  # the emulator is a local session

    @property
    def action(self) -> str:
        """The IAM action this call needs: ``cloudformation:CreateChangeSet``."""
        return f"{self.prefix}:{self.operation}"

    def doing(self) -> str:
        """``CloudFormation CreateChangeSet for webapp-dev in eu-west-1 at http://…``."""
        text = f"{self.service} {self.operation}"
        if self.stack_name:
            text += f" for {self.stack_name}"
        text += f" in {self.region}"
        if self.custom_endpoint:
            text += f" at {self.endpoint_url}"
        return text


class AwsError(CfnbuildError):
    """A call to AWS (or to the endpoint standing in for it) failed; the message is the whole story.

    ``code`` is AWS's error code (or the botocore error's class name), ``call`` the call that
    failed when known. The exit code is 2 when the fix is on the user's side of the call
    (credentials, profile, a request that could not be sent), else 1.
    """

    def __init__(self, message: str, *, code: str, call: Call | None, exit_code: int = 1) -> None:
        super().__init__(message)
        self.code = code
        self.call = call
        self.exit_code = exit_code


_current = threading.local()  # the call each thread is making, for errors raised before it is sent


def _call_of(exc: BaseException) -> Call | None:
    call = getattr(exc, "cfnbuild_call", None)
    if call is None and isinstance(exc, ClientError):
        call = exc.response.get("ResponseMetadata", {}).get("CfnbuildCall")
    if call is None and isinstance(exc, ParamValidationError):  # raised before any answer or event note
        call = getattr(_current, "call", None)
    return call if isinstance(call, Call) else None


def _attempts(exc: BaseException) -> int:
    if isinstance(exc, ClientError):
        retries = exc.response.get("ResponseMetadata", {}).get("RetryAttempts")
        if isinstance(retries, int):
            return retries + 1
    return MAX_ATTEMPTS


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def is_not_implemented(exc: BaseException) -> bool:
    """Whether the endpoint said it lacks this API (an emulator, whichever it is)."""
    if not isinstance(exc, ClientError):
        return False
    code = error_code(exc)
    return (
        code in NOT_IMPLEMENTED_CODES
        or _status(exc) == 501
        or (
            (code in ("InternalFailure", "InternalError", "") or _status(exc) >= 500)
            and bool(NOT_IMPLEMENTED_WORDS.search(error_message(exc)))
        )
    )


def is_transient(exc: BaseException) -> bool:
    """Whether a failure may pass if the call is made again later: no answer, throttling, or a 5xx."""
    if isinstance(exc, ConnectionError | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        return error_code(exc) in THROTTLING_CODES or _status(exc) >= 500 or _status(exc) == 429
    return False


def refused(exc: BaseException) -> bool:
    """Whether AWS answered and said no (HTTP 4xx other than throttling): the request did nothing."""
    if not isinstance(exc, ClientError):
        return False
    return 400 <= _status(exc) < 500 and _status(exc) != 429 and error_code(exc) not in THROTTLING_CODES


def explain(exc: BaseException) -> AwsError | None:
    """The one-line :class:`AwsError` for a failure of a botocore client; ``None`` for anything else.

    Notes added to the exception on its way (:meth:`BaseException.add_note`: what was cleaned up
    after it) end the line.
    """
    if isinstance(exc, AwsError):
        return exc
    mapped = _explain(exc)
    notes = getattr(exc, "__notes__", None)
    if mapped is not None and notes:
        return AwsError(f"{mapped}; {'; '.join(notes)}", code=mapped.code, call=mapped.call, exit_code=mapped.exit_code)
    return mapped


def expected_error(exc: Exception) -> CfnbuildError:
    """``exc`` as the one line a user sees: ours as it is, a botocore failure :func:`explain` ed.

    Anything that is neither ours nor AWS's is a bug, and is raised again for its traceback.
    """
    if isinstance(exc, CfnbuildError):
        return exc
    mapped = explain(exc)
    if mapped is None:
        raise exc
    return mapped


def _explain(exc: BaseException) -> AwsError | None:
    if not isinstance(exc, BotoCoreError | ClientError | ResponseParserError):
        call = getattr(exc, "cfnbuild_call", None)
        if not isinstance(call, Call):
            return None
        # Raised while a client handled an answer: botocore's parsers fail so (KeyError, an XML
        # parse error) on an answer that is not the service's, say a proxy's or portal's page.
        return AwsError(f"{call.doing()}: {_not_aws(exc, call)}", code=type(exc).__name__, call=call)
    call = _call_of(exc)
    doing = call.doing() if call else "calling AWS"
    if isinstance(exc, ClientError):
        return _explain_answer(exc, call, doing)
    for kinds, exit_code, say in _UNANSWERED:
        if isinstance(exc, kinds):
            return AwsError(f"{doing}: {say(exc, call)}", code=type(exc).__name__, call=call, exit_code=exit_code)
    return AwsError(f"{doing}: {type(exc).__name__}: {exc}", code=type(exc).__name__, call=call)


def _where(call: Call | None) -> str:
    return call.endpoint_url if call and call.endpoint_url else "the endpoint"


def _not_aws(exc: Any, call: Call | None) -> str:
    if call and call.local:  # moto answers with an HTML error page where it lacks an API or fails inside one
        return (
            f"the embedded emulator could not answer {call.operation} (it lacks the API, or fails on this request); "
            "run it on AWS"
        )
    return (
        f"the endpoint at {_where(call)} does not speak this API: its answer is not an AWS response; "
        "check --endpoint-url"
    )


def _no_credentials(exc: Any, call: Call | None) -> str:
    return (
        "no AWS credentials found; set AWS_PROFILE (or pass --profile), export AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, or run 'aws sso login' for an SSO profile; --local deploys to the embedded "
        "emulator instead"
    )


def _partial_credentials(exc: Any, call: Call | None) -> str:
    provider, missing = exc.kwargs.get("provider", "?"), exc.kwargs.get("cred_var", "?")
    return f"incomplete AWS credentials in {provider}: {missing} is missing; set it, or use a profile"


def _sso(exc: Any, call: Call | None) -> str:
    profile_name = getattr(_current, "profile", None)
    profile = f" --profile {profile_name}" if profile_name else ""
    return f"the SSO session has expired or was never started ({exc}); run 'aws sso login{profile}'"


def _unreachable(exc: Any, call: Call | None) -> str:
    reason = "timed out" if isinstance(exc, ConnectTimeoutError) else _reason(exc)
    if call and call.session:
        fix = "the local session has stopped; start it with 'cfnbuild local start' and run the command again"
    elif call and call.local:
        fix = "the emulator has stopped; run the command again"
    elif call and call.custom_endpoint:
        fix = "check --endpoint-url"
    else:
        fix = "check the network, proxy or VPN, or --region"
    return f"could not reach {_where(call)} ({reason}) in {MAX_ATTEMPTS} attempts; {fix}"


# Errors raised before any answer came: (kinds, exit code, the sentence after "doing: ").
_UNANSWERED: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], int, Any], ...] = (
    (NoCredentialsError, 2, _no_credentials),
    (PartialCredentialsError, 2, _partial_credentials),
    ((SSOError, TokenRetrievalError), 2, _sso),
    (
        CredentialRetrievalError,
        2,
        lambda exc, _: f"could not get credentials: {exc}; check the profile's credential_process or role settings",
    ),
    (ProfileNotFound, 2, lambda exc, _: f"{exc}; check ~/.aws/config or AWS_PROFILE"),
    (NoRegionError, 2, lambda exc, _: "no region; pass --region or list regions in the environment's config"),
    (
        ParamValidationError,
        2,
        lambda exc, _: (
            "the request is invalid, so it was not sent: " + " ".join(str(exc.kwargs.get("report", exc)).split())
        ),
    ),
    (ResponseParserError, 1, _not_aws),
    (
        SSLError,
        1,
        lambda exc, call: (
            f"TLS to {_where(call)} failed ({exc.kwargs.get('error', exc)}); check AWS_CA_BUNDLE or the proxy"
        ),
    ),
    (
        ReadTimeoutError,
        1,
        lambda exc, call: (
            f"no answer from {_where(call)} within {READ_TIMEOUT_SECONDS}s, {MAX_ATTEMPTS} attempts; "
            "the endpoint is overloaded or a proxy swallows the request — try again later"
        ),
    ),
    ((EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError), 1, _unreachable),
)


def _reason(exc: BotoCoreError) -> str:
    """The operating system's reason under a connection error: 'Connection refused'."""
    inner = exc.kwargs.get("error")
    text = str(inner or exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if found:
        return found.group(1).strip()
    return "no answer" if isinstance(exc, ConnectionClosedError) else "connection failed"


def _explain_answer(exc: ClientError, call: Call | None, doing: str) -> AwsError:
    code, message = error_code(exc), error_message(exc)
    status = _status(exc)
    said = f"{code}: {message}" if message else (code or f"HTTP {status}")
    fix, exit_code = _fix_for_answer(exc, call)
    text = f"{doing}: {said}" + (f"; {fix}" if fix else "")
    return AwsError(text, code=code or f"HTTP{status}", call=call, exit_code=exit_code)


def _fix_for_answer(exc: ClientError, call: Call | None) -> tuple[str | None, int]:  # noqa: PLR0911  (one return per class of answer, in the order they are tried)
    """What to do about an AWS error answer, and the exit code (2: the fix is the caller's input)."""
    code, status = error_code(exc), _status(exc)
    if code in EXPIRED_CODES:
        return "the credentials have expired; refresh them ('aws sso login', or new temporary ones)", 2
    if code in REJECTED_CREDENTIAL_CODES:
        return "AWS does not accept these credentials; check the profile or the AWS_* variables", 2
    if code in ACCESS_DENIED_CODES or status == 403:
        named = re.search(r"perform: ([\w-]+:[\w*-]+)", error_message(exc))
        action = named.group(1) if named else (call.action if call else "this action")
        return f"the caller may not {action}; grant it to the role or user that deploys, or use another profile", 1
    if is_not_implemented(exc):
        return f"the endpoint does not implement {call.operation if call else 'this API'}; run this against AWS", 1
    if code in THROTTLING_CODES or status == 429:
        return (
            f"still throttled after {_attempts(exc)} attempts; wait a minute and run again (something else is "
            "calling this API in the account)"
        ), 1
    if status >= 500:
        return f"the service failed {_attempts(exc)} times in a row; try again in a few minutes", 1
    return None, 1


# -- clients ----------------------------------------------------------------------------------


def _instrument(client: Any, target: Target, say: Callable[[str], None] | None) -> None:
    """Make ``client`` note each call on its errors, and say retries that keep the user waiting."""
    meta = client.meta
    model = meta.service_model
    hyphenized = model.service_id.hyphenize()
    custom = target.endpoint_url is not None

    def call_of(operation: str) -> Call:
        return Call(
            service=str(model.service_id),
            prefix=str(model.signing_name or model.endpoint_prefix),
            operation=operation,
            region=str(meta.region_name),
            endpoint_url=str(meta.endpoint_url),
            stack_name=target.stack_name or None,
            custom_endpoint=custom,
            local=target.local,
            session=target.session,
        )

    def before(model: Any, **_: Any) -> None:
        _current.call = call_of(model.name)
        _current.profile = target.profile

    def after_error(exception: BaseException, event_name: str, **_: Any) -> None:
        exception.cfnbuild_call = call_of(event_name.rsplit(".", 1)[-1])  # type: ignore[attr-defined]  # a note

    def after(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if http_response.status_code >= 300:
            parsed.setdefault("ResponseMetadata", {})["CfnbuildCall"] = call_of(model.name)

    meta.events.register(f"before-parameter-build.{hyphenized}", before)
    meta.events.register(f"after-call-error.{hyphenized}", after_error)
    meta.events.register(f"after-call.{hyphenized}", after)
    if say is not None:
        _say_retries(client, hyphenized, target, say)


def _say_retries(client: Any, hyphenized: str, target: Target, say: Callable[[str], None]) -> None:
    """Wrap botocore's standard retry handler so that a retry after a long wait is said."""
    unique_id = f"retry-config-{hyphenized}"
    client.meta.events.unregister(f"needs-retry.{hyphenized}", unique_id=unique_id)
    handler = standard.register_retry_handler(client, max_attempts=MAX_ATTEMPTS)
    client.meta.events.unregister(f"needs-retry.{hyphenized}", unique_id=unique_id)
    where = target.endpoint_url or target.region

    def needs_retry(**kwargs: Any) -> float | None:
        delay: float | None = handler.needs_retry(**kwargs)
        if delay is None:
            return None
        context = kwargs.get("request_dict", {}).get("context", {})
        started = context.setdefault("cfnbuild_started", time.monotonic())
        if time.monotonic() - started + delay >= SAY_RETRIES_AFTER_SECONDS:
            attempt = int(kwargs.get("attempts", 1)) + 1
            operation = getattr(kwargs.get("operation"), "name", "a call")
            say(f"{where} not answering {operation} ({_why(kwargs)}); retrying ({attempt}/{MAX_ATTEMPTS})")
        return delay

    client.meta.events.register(f"needs-retry.{hyphenized}", needs_retry, unique_id=unique_id)


def _why(kwargs: dict[str, Any]) -> str:
    caught = kwargs.get("caught_exception")
    if caught is not None:
        return _reason(caught) if isinstance(caught, BotoCoreError) else type(caught).__name__
    response: tuple[Any, dict[str, Any]] = kwargs.get("response") or (None, {})
    http, parsed = response
    code = (parsed or {}).get("Error", {}).get("Code")
    return str(code or f"HTTP {getattr(http, 'status_code', '?')}")


def check_endpoint_url(url: str | None) -> None:
    """Refuse an ``--endpoint-url`` that is not an http(s) URL, before any client is made."""
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--endpoint-url {url!r} is not a URL; give one like http://localhost:4566")


@dataclass
class Aws:
    """Lazily made clients for one :class:`Target`.

    ``say`` is told of retries that keep the user waiting (None: nobody is told).
    """

    target: Target
    config: Config = RETRIES
    say: Callable[[str], None] | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _session: Any = field(default=None, repr=False)

    def session(self) -> boto3.session.Session:
        """The boto3 session: the profile, or the usual environment and instance credentials."""
        if self._session is None:
            try:
                credentials = self.target.credentials or {}
                self._session = boto3_session(
                    aws_access_key_id=credentials.get("aws_access_key_id"),
                    aws_secret_access_key=credentials.get("aws_secret_access_key"),
                    profile_name=self.target.profile,
                    region_name=self.target.region,
                )
            except ProfileNotFound as exc:
                raise UsageError(f"--profile {self.target.profile}: {exc}; check ~/.aws/config") from None
        return self._session  # type: ignore[no-any-return]

    def client(self, service: str) -> Any:
        """A client for ``service`` with cfnbuild's retry and timeout settings and error notes."""
        if service not in self._clients:
            check_endpoint_url(self.target.endpoint_url)
            client = self.session().client(  # type: ignore[call-overload]
                service, endpoint_url=self.target.endpoint_url, config=self.config
            )
            _instrument(client, self.target, self.say)
            self._clients[service] = client
        return self._clients[service]

    @property
    def cloudformation(self) -> Any:
        """The CloudFormation client."""
        return self.client("cloudformation")

    def account_id(self) -> str:
        """The caller's account, which also proves the credentials work."""
        return str(self.client("sts").get_caller_identity()["Account"])


def error_code(exc: ClientError) -> str:
    """The AWS error code of a client error."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    """The AWS error message of a client error."""
    return str(exc.response.get("Error", {}).get("Message", ""))
