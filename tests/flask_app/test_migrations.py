"""Alembic migrations: shipped in the package, run by the CLI, locked on MariaDB."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask import Flask
from sqlalchemy import Engine, create_engine, inspect, text

from flask_app.db import SQLITE_DEFAULT_FILENAME
from flask_app.migrate import (
    MIGRATIONS_DIR,
    MigrationLockTimeoutError,
    alembic_config,
    current_revision,
    head_revision,
    upgrade,
)
from flask_app.models import Base
from flask_app.state import get_state
from tests.flask_app.conftest import REPO_ROOT, mysql_url
from tests.flask_app.mariadb import MariaDBServer


@pytest.fixture
def mariadb_engine(mariadb_server: MariaDBServer, mariadb_database: str) -> Iterator[Engine]:
    """An engine on a fresh, empty MariaDB database."""
    engine = create_engine(mariadb_server.url(mariadb_database))
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'explicit.sqlite3'}")
    yield engine
    engine.dispose()


def run_module(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flask_app", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_package_ships_a_first_revision() -> None:
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert head_revision() == "0001"


def test_embedded_sqlite_default_creates_the_schema_on_first_use(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    app = make_app()

    assert Path(app.instance_path, SQLITE_DEFAULT_FILENAME).is_file()
    assert current_revision(get_state(app).engine) == head_revision()
    make_app()  # the second start finds the schema current


def test_a_configured_database_is_not_migrated_at_start_up(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'configured.sqlite3'}")

    assert current_revision(get_state(app).engine) is None
    assert "notes" not in inspect(get_state(app).engine).get_table_names()


def test_python_m_flask_app_migrate_upgrades_the_configured_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deploy.sqlite3'}"
    env = {"APP_DATABASE_URL": url, "APP_INSTANCE_PATH": str(tmp_path / "instance")}

    migrated = run_module("migrate", env=env)
    current = run_module("current", env=env)

    assert migrated.returncode == 0, migrated.stderr
    assert json.loads(migrated.stdout) == {"revision": "0001"}
    assert json.loads(current.stdout) == {"current": "0001", "head": "0001"}
    log_lines = [json.loads(line) for line in migrated.stderr.splitlines()]
    assert any(line["message"] == "database schema upgraded" for line in log_lines)


def test_python_m_flask_app_migrate_fails_with_status_1_and_a_json_log_line(
    tmp_path: Path,
) -> None:
    env = {"APP_DATABASE_URL": f"sqlite:///{tmp_path}", "APP_INSTANCE_PATH": str(tmp_path)}

    result = run_module("migrate", env=env)

    assert result.returncode == 1
    assert result.stdout == ""
    last = json.loads(result.stderr.splitlines()[-1])
    assert last["level"] == "ERROR"
    assert last["message"] == "migrate failed"


def test_flask_cli_db_upgrade_runs_the_migrations(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'cli.sqlite3'}")

    result = app.test_cli_runner().invoke(args=["db-upgrade"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"revision": "0001"}
    current = app.test_cli_runner().invoke(args=["db-current"])
    assert json.loads(current.stdout) == {"current": "0001", "head": "0001"}


@pytest.mark.parametrize("engine_fixture", ["sqlite_engine", pytest.param("mariadb_engine", marks=pytest.mark.server)])
def test_migrations_upgrade_downgrade_and_match_the_models(engine_fixture: str, request: pytest.FixtureRequest) -> None:
    engine: Engine = request.getfixturevalue(engine_fixture)

    assert upgrade(engine) == "0001"
    assert upgrade(engine) == "0001"  # idempotent
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        command.downgrade(alembic_config(connection), "base")
        connection.commit()
    assert "notes" not in inspect(engine).get_table_names()
    assert current_revision(engine) is None


@pytest.mark.server
def test_migrations_on_mariadb_create_innodb_utf8mb4_with_microsecond_timestamps(
    mariadb_engine: Engine,
) -> None:
    upgrade(mariadb_engine)

    with mariadb_engine.connect() as connection:
        table = connection.execute(
            text(
                "SELECT engine, table_collation FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name = 'notes'"
            )
        ).one()
        columns = dict(
            connection.execute(
                text(
                    "SELECT column_name, column_type FROM information_schema.columns "
                    "WHERE table_schema = DATABASE() AND table_name = 'notes'"
                )
            ).all()
        )
    assert table[0] == "InnoDB"
    assert table[1].startswith("utf8mb4")
    assert columns["id"] == "bigint(20)"
    assert columns["title"] == "varchar(200)"
    assert columns["created_at"] == "datetime(6)"


@pytest.mark.server
def test_python_m_flask_app_migrate_on_mariadb(
    mariadb_server: MariaDBServer, mariadb_database: str, tmp_path: Path
) -> None:
    env = {
        "APP_DATABASE_URL": mysql_url(mariadb_server, mariadb_database),
        "APP_INSTANCE_PATH": str(tmp_path),
    }

    result = run_module("migrate", env=env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"revision": "0001"}
    assert mariadb_server.password not in result.stderr
    messages = [json.loads(line)["message"] for line in result.stderr.splitlines()]
    assert "waiting for the migration lock" in messages


@pytest.mark.server
def test_concurrent_migrations_on_mariadb_run_one_after_the_other(
    mariadb_server: MariaDBServer, mariadb_database: str
) -> None:
    engines = [create_engine(mariadb_server.url(mariadb_database)) for _ in range(3)]
    results: list[str | None] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(engines))

    def migrate(engine: Engine) -> None:
        start.wait()
        try:
            results.append(upgrade(engine, lock_timeout=60))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=migrate, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for engine in engines:
        engine.dispose()

    assert errors == []
    assert results == ["0001"] * 3


@pytest.mark.server
def test_migration_waits_for_the_lock_and_gives_up_after_the_timeout(
    mariadb_server: MariaDBServer, mariadb_database: str, mariadb_engine: Engine
) -> None:
    lock = f"flask_app.migrate:{mariadb_database}"
    with (
        contextlib.closing(mariadb_server.connect(mariadb_database)) as holder,
        holder.cursor() as cursor,
    ):
        cursor.execute("SELECT GET_LOCK(%s, 0)", (lock,))
        assert cursor.fetchone() == (1,)

        started = time.monotonic()
        with pytest.raises(MigrationLockTimeoutError):
            upgrade(mariadb_engine, lock_timeout=1)
        assert time.monotonic() - started >= 0.9
        assert current_revision(mariadb_engine) is None

    # Once the holder is gone the lock is free again.
    assert upgrade(mariadb_engine, lock_timeout=5) == "0001"
