"""Settings from ``APP_*`` environment variables and the ``create_app`` mapping."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from flask_app.config import DEFAULT_ASSET_TYPES, ConfigError, Settings
from flask_app.state import get_state


def test_defaults_need_no_environment() -> None:
    settings = Settings.load({})

    assert settings.database_url is None
    assert settings.assets_bucket is None
    assert settings.assets_allowed_types == DEFAULT_ASSET_TYPES
    assert settings.max_content_length == 256 * 1024


def test_settings_are_read_from_app_prefixed_variables() -> None:
    settings = Settings.load(
        {
            "APP_DB_PORT": "3307",
            "APP_DB_READ_TIMEOUT": "2.5",
            "APP_ASSETS_BUCKET": " my-bucket ",
            "APP_ASSETS_ALLOWED_TYPES": "image/PNG, text/plain,,",
            "APP_LOG_LEVEL": "debug",
            "DB_PORT": "1",  # no prefix: not ours
            "APP_DB_HOST": "",  # empty: unset
        }
    )

    assert settings.db_port == 3307
    assert settings.db_read_timeout == 2.5
    assert settings.assets_bucket == "my-bucket"
    assert settings.assets_allowed_types == ("image/png", "text/plain")
    assert settings.db_host is None


def test_the_mapping_overrides_the_environment() -> None:
    settings = Settings.load({"APP_DB_PORT": "3307"}, {"DB_PORT": 3308, "READY_TIMEOUT": 1})

    assert settings.db_port == 3308
    assert settings.ready_timeout == 1.0


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"APP_DB_PORT": "abc"}, "APP_DB_PORT"),
        ({"APP_DB_PORT": "70000"}, "APP_DB_PORT"),
        ({"APP_READY_TIMEOUT": "0"}, "APP_READY_TIMEOUT"),
        ({"APP_MAX_CONTENT_LENGTH": "-1"}, "APP_MAX_CONTENT_LENGTH"),
        ({"APP_LOG_LEVEL": "LOUD"}, "APP_LOG_LEVEL"),
        ({"APP_ASSETS_ALLOWED_TYPES": "png"}, "APP_ASSETS_ALLOWED_TYPES"),
        ({"APP_ASSETS_URL_EXPIRES": "999999"}, "APP_ASSETS_URL_EXPIRES"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.load(environ)


def test_assets_prefix_is_normalized() -> None:
    assert Settings(assets_prefix="/a/b").normalized_assets_prefix == "a/b/"
    assert Settings(assets_prefix="").normalized_assets_prefix == ""


def test_create_app_reads_the_environment_and_passes_other_keys_to_flask(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_MAX_CONTENT_LENGTH", "1000")
    monkeypatch.setenv("APP_ASSETS_BUCKET", "from-env")

    app = make_app(ASSETS_BUCKET="from-mapping", SOME_FLASK_KEY="x")

    assert app.config["MAX_CONTENT_LENGTH"] == 1000
    assert app.config["SOME_FLASK_KEY"] == "x"
    assert "ASSETS_BUCKET" not in app.config
    assert get_state(app).settings.assets_bucket == "from-mapping"


def test_tls_ca_that_is_not_a_file_is_a_config_error(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="APP_DB_TLS_CA"):
        make_app(
            DATABASE_URL="mysql+pymysql://app:pw@127.0.0.1/app",
            DB_TLS_CA=str(tmp_path / "missing.pem"),
        )


def test_mysql_urls_without_a_driver_use_pymysql(make_app: Callable[..., Flask]) -> None:
    app = make_app(DATABASE_URL="mysql://app:pw@127.0.0.1/app")

    assert get_state(app).engine.dialect.driver == "pymysql"
