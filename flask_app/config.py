"""Typed settings of the application, read from ``APP_*`` environment variables.

Every field of :class:`Settings` is read from the environment variable named ``APP_``
followed by the field name in upper case (``db_port`` from ``APP_DB_PORT``); the
mapping given to :func:`flask_app.create_app` may override any of them by the same
name without the prefix (``{"DB_PORT": 3307}``). The full list, with defaults, is in
the docstring of :mod:`flask_app`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import types
import typing
from collections.abc import Mapping
from typing import Any

ENV_PREFIX = "APP_"

#: Content types ``POST /api/assets`` accepts by default, with the extension of the key.
DEFAULT_ASSET_TYPES: tuple[str, ...] = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
)


class ConfigError(ValueError):
    """A setting is missing or has a value of the wrong form."""


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """The application's settings; see :mod:`flask_app` for what each one means."""

    database_url: str | None = None
    db_secret_arn: str | None = None
    db_host: str | None = None
    db_port: int | None = None
    db_name: str | None = None
    db_tls_ca: str | None = None
    db_connect_timeout: float = 5.0
    db_read_timeout: float = 30.0
    db_write_timeout: float = 30.0
    db_pool_size: int = 5
    db_max_overflow: int = 5
    db_pool_timeout: float = 10.0
    db_pool_recycle: int = 1800
    db_migrate_lock_timeout: int = 300
    assets_bucket: str | None = None
    assets_prefix: str = "uploads/"
    assets_max_bytes: int = 10 * 1024 * 1024
    assets_allowed_types: tuple[str, ...] = DEFAULT_ASSET_TYPES
    assets_url_expires: int = 900
    aws_endpoint_url: str | None = None
    ready_timeout: float = 2.0
    max_content_length: int = 256 * 1024
    log_level: str = "INFO"
    instance_path: str | None = None

    @classmethod
    def setting_keys(cls) -> frozenset[str]:
        """Return the names of the settings as the override mapping spells them."""
        return frozenset(f.name.upper() for f in dataclasses.fields(cls))

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Read the settings from ``environ`` (``APP_*``), then apply ``overrides``.

        Raises :class:`ConfigError` naming the variable when a value does not parse.
        """
        environ = os.environ if environ is None else environ
        overrides = overrides or {}
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            key = field.name.upper()
            if key in overrides:
                source, raw = key, overrides[key]
            elif environ.get(ENV_PREFIX + key, "").strip():
                source, raw = ENV_PREFIX + key, environ[ENV_PREFIX + key]
            else:
                continue
            values[field.name] = _convert(source, raw, hints[field.name])
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check the values together; raise :class:`ConfigError` on the first bad one."""
        positive = {
            "DB_CONNECT_TIMEOUT": self.db_connect_timeout,
            "DB_READ_TIMEOUT": self.db_read_timeout,
            "DB_WRITE_TIMEOUT": self.db_write_timeout,
            "DB_POOL_SIZE": self.db_pool_size,
            "DB_POOL_TIMEOUT": self.db_pool_timeout,
            "DB_POOL_RECYCLE": self.db_pool_recycle,
            "DB_MIGRATE_LOCK_TIMEOUT": self.db_migrate_lock_timeout,
            "ASSETS_MAX_BYTES": self.assets_max_bytes,
            "ASSETS_URL_EXPIRES": self.assets_url_expires,
            "READY_TIMEOUT": self.ready_timeout,
            "MAX_CONTENT_LENGTH": self.max_content_length,
        }
        for key, value in positive.items():
            if value <= 0:
                raise ConfigError(f"{ENV_PREFIX}{key} must be positive, got {value}")
        if self.db_max_overflow < 0:
            raise ConfigError(f"{ENV_PREFIX}DB_MAX_OVERFLOW must not be negative")
        if self.db_port is not None and not 0 < self.db_port < 65536:
            raise ConfigError(f"{ENV_PREFIX}DB_PORT must be a TCP port, got {self.db_port}")
        if self.assets_url_expires > 7 * 24 * 3600:
            raise ConfigError(f"{ENV_PREFIX}ASSETS_URL_EXPIRES is at most 604800 (7 days)")
        if not isinstance(logging.getLevelName(self.log_level.upper()), int):
            raise ConfigError(f"{ENV_PREFIX}LOG_LEVEL is not a logging level: {self.log_level!r}")
        if not self.assets_allowed_types:
            raise ConfigError(f"{ENV_PREFIX}ASSETS_ALLOWED_TYPES must name at least one type")
        for content_type in self.assets_allowed_types:
            if content_type.count("/") != 1 or ";" in content_type:
                raise ConfigError(f"{ENV_PREFIX}ASSETS_ALLOWED_TYPES has a bad content type: {content_type!r}")

    @property
    def normalized_assets_prefix(self) -> str:
        """The key prefix of uploads, without a leading and with a trailing slash."""
        prefix = self.assets_prefix.strip().strip("/")
        return f"{prefix}/" if prefix else ""


def _convert(source: str, raw: Any, hint: Any) -> Any:
    """Convert ``raw`` (a string from the environment, or a typed override) to ``hint``."""
    target = hint
    if isinstance(hint, types.UnionType):  # ``X | None``: the one non-None member
        target = next(arg for arg in typing.get_args(hint) if arg is not type(None))
        if raw is None:
            return None
    if typing.get_origin(target) is tuple:
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        return tuple(str(item).strip().lower() for item in items if str(item).strip())
    if target is str:
        if not isinstance(raw, str):
            raise ConfigError(f"{source}: expected a string, got {type(raw).__name__}")
        return raw.strip()
    if target in (int, float):
        if isinstance(raw, bool):
            raise ConfigError(f"{source}: expected a number, got a boolean")
        if isinstance(raw, int | float) and not (target is int and isinstance(raw, float)):
            return target(raw)
        try:
            return target(str(raw).strip())
        except ValueError:
            kind = "an integer" if target is int else "a number"
            raise ConfigError(f"{source}: expected {kind}, got {raw!r}") from None
    raise ConfigError(f"{source}: unsupported setting type {hint!r}")  # pragma: no cover
