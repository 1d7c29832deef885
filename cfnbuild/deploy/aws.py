"""Where a deploy goes and the boto3 clients that take it there.

The same code path serves AWS and the embedded emulator: only the endpoint and the credentials
differ. Clients retry in botocore's standard mode (throttling, 5xx and dropped connections are
retried with backoff) and time out instead of hanging.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound

from cfnbuild.errors import CfnbuildError, UsageError

RETRIES = Config(
    retries={"mode": "standard", "max_attempts": 10},
    connect_timeout=10,
    read_timeout=60,
    user_agent_extra="cfnbuild",
)


@dataclass(frozen=True)
class Target:
    """One stack in one region of one account (or of the emulator)."""

    stack_name: str
    region: str
    profile: str | None = None
    endpoint_url: str | None = None
    credentials: dict[str, str] | None = None  # only for the emulator's throwaway credentials

    @property
    def local(self) -> bool:
        """Whether this is the embedded emulator."""
        return self.credentials is not None


@dataclass
class Aws:
    """Lazily made clients for one :class:`Target`."""

    target: Target
    config: Config = RETRIES
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _session: Any = field(default=None, repr=False)

    def session(self) -> boto3.session.Session:
        """The boto3 session: the profile, or the usual environment and instance credentials."""
        if self._session is None:
            try:
                credentials = self.target.credentials or {}
                self._session = boto3.session.Session(
                    aws_access_key_id=credentials.get("aws_access_key_id"),
                    aws_secret_access_key=credentials.get("aws_secret_access_key"),
                    profile_name=self.target.profile,
                    region_name=self.target.region,
                )
            except ProfileNotFound as exc:
                raise UsageError(f"--profile {self.target.profile}: {exc}; check ~/.aws/config") from None
        return self._session  # type: ignore[no-any-return]

    def client(self, service: str) -> Any:
        """A client for ``service`` with cfnbuild's retry and timeout settings."""
        if service not in self._clients:
            self._clients[service] = self.session().client(  # type: ignore[call-overload]
                service, endpoint_url=self.target.endpoint_url, config=self.config
            )
        return self._clients[service]

    @property
    def cloudformation(self) -> Any:
        """The CloudFormation client."""
        return self.client("cloudformation")

    def account_id(self) -> str:
        """The caller's account, which also proves the credentials work."""
        try:
            return str(self.client("sts").get_caller_identity()["Account"])
        except NoCredentialsError:
            raise UsageError(
                "no AWS credentials found; set AWS_PROFILE or --profile, or the AWS_* environment variables, "
                "or use --local for the embedded emulator"
            ) from None
        except (ClientError, BotoCoreError) as exc:
            raise CfnbuildError(f"cannot reach AWS in {self.target.region}: {exc}") from None


def error_code(exc: ClientError) -> str:
    """The AWS error code of a client error."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    """The AWS error message of a client error."""
    return str(exc.response.get("Error", {}).get("Message", ""))
