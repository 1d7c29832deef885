"""AWS access: the region (environment or IMDSv2), boto3 clients, the database secret.

The region is never a literal: it comes from ``AWS_REGION`` / ``AWS_DEFAULT_REGION``
or, on EC2, from the instance metadata service (IMDSv2, token first). A secret's own
region is taken from its ARN. ``APP_AWS_ENDPOINT_URL`` points every client at one
endpoint (moto in tests, LocalStack on a laptop); it is never set in production.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient

log = logging.getLogger(__name__)

#: The instance metadata endpoint; ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` overrides it as
#: it does for botocore.
DEFAULT_IMDS_ENDPOINT = "http://169.254.169.254"
IMDS_TOKEN_TTL_SECONDS = 60


class AwsConfigError(RuntimeError):
    """AWS cannot be used as configured (no region, a malformed secret, ...)."""


def resolve_region(environ: Mapping[str, str] | None = None, timeout: float = 1.0) -> str:
    """Return the AWS region: ``AWS_REGION``, ``AWS_DEFAULT_REGION``, else IMDSv2.

    Raises :class:`AwsConfigError` when none of them gives one.
    """
    environ = os.environ if environ is None else environ
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        value = environ.get(name, "").strip()
        if value:
            return value
    if environ.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
        raise AwsConfigError(
            "no AWS region: set AWS_REGION (instance metadata is disabled by AWS_EC2_METADATA_DISABLED)"
        )
    endpoint = environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", DEFAULT_IMDS_ENDPOINT)
    try:
        return imds_region(endpoint, timeout=timeout)
    except (OSError, ValueError) as exc:
        raise AwsConfigError(
            f"no AWS region: AWS_REGION is not set and instance metadata at {endpoint} "
            f"did not answer ({type(exc).__name__}: {exc})"
        ) from exc


def imds_region(endpoint: str, timeout: float = 1.0) -> str:
    """Ask the instance metadata service (IMDSv2: session token first) for the region."""
    base = endpoint.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"instance metadata endpoint is not an http(s) URL: {endpoint!r}")
    token_request = urllib.request.Request(  # noqa: S310 - scheme checked above
        f"{base}/latest/api/token",
        method="PUT",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": str(IMDS_TOKEN_TTL_SECONDS)},
    )
    with urllib.request.urlopen(token_request, timeout=timeout) as response:  # noqa: S310
        token = str(response.read().decode("ascii")).strip()
    region_request = urllib.request.Request(  # noqa: S310 - scheme checked above
        f"{base}/latest/meta-data/placement/region",
        headers={"X-aws-ec2-metadata-token": token},
    )
    with urllib.request.urlopen(region_request, timeout=timeout) as response:  # noqa: S310
        region = str(response.read().decode("ascii")).strip()
    if not region:
        raise ValueError("instance metadata returned an empty region")
    return region


def region_from_arn(arn: str) -> str | None:
    """Return the region field of ``arn`` (``arn:partition:service:region:...``)."""
    parts = arn.split(":")
    if len(parts) >= 6 and parts[0] == "arn" and parts[3]:
        return parts[3]
    return None


class Aws:
    """Make boto3 clients on one session, with timeouts, lazily and thread-safely.

    The region is resolved on the first client that needs it, so an application that
    never touches AWS (a laptop on SQLite, no bucket) never asks for one.
    """

    def __init__(self, endpoint_url: str | None = None) -> None:
        self.endpoint_url = endpoint_url
        self._lock = threading.Lock()
        self._session: boto3.session.Session | None = None
        self._region: str | None = None
        self._clients: dict[tuple[str, str, float, int], Any] = {}

    @property
    def region(self) -> str:
        """The region of the clients; resolved on first use."""
        with self._lock:
            if self._region is None:
                self._region = resolve_region()
            return self._region

    def _client(self, service: str, region: str, timeout: float, retries: int) -> Any:
        key = (service, region, timeout, retries)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                if self._session is None:
                    self._session = boto3.session.Session()
                config = Config(
                    connect_timeout=timeout,
                    read_timeout=timeout,
                    retries={"mode": "standard", "total_max_attempts": retries},
                    signature_version="s3v4" if service == "s3" else None,
                    s3={"addressing_style": "path"} if self.endpoint_url else None,
                )
                client = self._session.client(
                    service,  # type: ignore[call-overload]  # one overload per service name
                    region_name=region,
                    endpoint_url=self.endpoint_url,
                    config=config,
                )
                self._clients[key] = client
            return client

    def s3(self, timeout: float = 10.0, retries: int = 3) -> S3Client:
        """Return an S3 client with the given timeouts and total attempts."""
        client: S3Client = self._client("s3", self.region, timeout, retries)
        return client

    def secretsmanager(self, region: str | None = None) -> SecretsManagerClient:
        """Return a Secrets Manager client for ``region`` (default: the resolved one)."""
        client: SecretsManagerClient = self._client("secretsmanager", region or self.region, 5.0, 5)
        return client


@dataclass(frozen=True, slots=True)
class DbSecret:
    """The database credentials of a Secrets Manager secret (as RDS generates them)."""

    username: str
    password: str
    host: str | None = None
    port: int | None = None
    dbname: str | None = None

    def __repr__(self) -> str:
        return (
            f"DbSecret(username={self.username!r}, password='***', host={self.host!r}, "
            f"port={self.port!r}, dbname={self.dbname!r})"
        )


def fetch_db_secret(aws: Aws, secret_arn: str) -> DbSecret:
    """Read and check the database secret ``secret_arn`` from Secrets Manager.

    The secret is JSON with ``username`` and ``password`` and, optionally, ``host``,
    ``port`` and ``dbname``. Raises :class:`AwsConfigError` when it is not of that form
    (without quoting the secret).
    """
    client = aws.secretsmanager(region_from_arn(secret_arn))
    response = client.get_secret_value(SecretId=secret_arn)
    try:
        data = json.loads(response.get("SecretString") or "")
    except ValueError:
        raise AwsConfigError(f"secret {secret_arn} is not a JSON object") from None
    if not isinstance(data, dict):
        raise AwsConfigError(f"secret {secret_arn} is not a JSON object")
    for key in ("username", "password"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise AwsConfigError(f"secret {secret_arn} has no string {key!r}")
    port = data.get("port")
    if port is not None:
        try:
            port = int(port)
        except (TypeError, ValueError):
            raise AwsConfigError(f"secret {secret_arn} has a non-numeric 'port'") from None
    host, dbname = data.get("host"), data.get("dbname")
    return DbSecret(
        username=data["username"],
        password=data["password"],
        host=host if isinstance(host, str) and host else None,
        port=port,
        dbname=dbname if isinstance(dbname, str) and dbname else None,
    )
