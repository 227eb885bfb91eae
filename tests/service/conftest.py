"""Fixtures of the service tests: a clean SERVICE_* environment, secret files, real servers."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from service import servers

if TYPE_CHECKING:
    from service.migration_files import Runner


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SERVICE_* / EAFIX_SERVICE from the caller's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("SERVICE_") or key == "EAFIX_SERVICE":
            monkeypatch.delenv(key)


@pytest.fixture
def secrets_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """`write(SERVICE_X="value", ...)` creates files the way the chart mounts Secrets (with the
    trailing newline `kubectl create secret --from-file` keeps) and points SERVICE_SECRETS_DIR at them."""
    directory = tmp_path / "secrets"
    directory.mkdir()
    monkeypatch.setenv("SERVICE_SECRETS_DIR", str(directory))

    def write(**files: str) -> Path:
        for name, value in files.items():
            (directory / name).write_text(value + "\n")
        return directory

    return write


@pytest.fixture(scope="session")
def redis_server() -> Iterator[servers.RedisServer]:
    if os.environ.get("EAFIX_TEST_REDIS_URL"):
        yield servers.external_redis(os.environ["EAFIX_TEST_REDIS_URL"])
        return
    with servers.redis_server() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[servers.PostgresServer]:
    if os.environ.get("EAFIX_TEST_POSTGRES_URL"):
        yield servers.external_postgres(os.environ["EAFIX_TEST_POSTGRES_URL"])
        return
    with servers.postgres_server() as server:
        yield server


# --- a migrated database (the migrations of services/eafix/migrations applied) -------------------

def _with_credentials(server: servers.PostgresServer) -> str:
    """`server.url` with the user and password in it: a URL psycopg.connect() takes as it is."""
    parts = urlsplit(server.url)
    userinfo = f"{quote(server.user, safe='')}:{quote(server.password, safe='')}"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc.rpartition('@')[2]}"))


def _apply_real_migrations(server: servers.PostgresServer) -> None:
    from eafix.runtime.store import migrations

    # Whatever exists at this time (possibly nothing yet); the migrations table is created either way.
    asyncio.run(migrations.run(server.url, {"user": server.user, "password": server.password}, missing_ok=True))


@contextmanager
def _scratch_database(server: servers.PostgresServer) -> Iterator[servers.PostgresServer]:
    """A new database on an external server (its user needs CREATEDB), dropped afterwards."""
    name = f"eafix_migrated_{secrets.token_hex(6)}"
    admin = {"user": server.user, "password": server.password, "autocommit": True}
    try:
        with psycopg.connect(server.url, **admin) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.errors.InsufficientPrivilege as exc:
        raise RuntimeError(f"migrated_db: the user of EAFIX_TEST_POSTGRES_URL needs CREATEDB ({exc})") from None
    parts = urlsplit(server.url)
    try:
        yield servers.PostgresServer(urlunsplit(parts._replace(path=f"/{name}")), server.user, server.password)
    finally:
        with psycopg.connect(server.url, **admin) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def migrated_db() -> Iterator[servers.PostgresServer]:
    """A fresh database for this test session (each xdist worker has its own), separate from
    `postgres_server`'s, with every migration under services/eafix/migrations applied by the real
    runner. Shared by the session's tests: clean up what a test writes, or use unique keys.
    `url` carries no credentials (`user`/`password`, like `postgres_server`)."""
    if os.environ.get("EAFIX_TEST_POSTGRES_URL"):
        context = _scratch_database(servers.external_postgres(os.environ["EAFIX_TEST_POSTGRES_URL"]))
    else:
        context = servers.postgres_server()  # a throwaway server of its own: a database nobody else touched
    with context as server:
        _apply_real_migrations(server)
        yield server


@pytest.fixture(scope="session")
def migrated_db_url(migrated_db: servers.PostgresServer) -> str:
    """URL of `migrated_db` WITH user and password: `await psycopg.AsyncConnection.connect(migrated_db_url)`."""
    return _with_credentials(migrated_db)


@pytest.fixture(scope="session")
def migrated_template(migrated_db: servers.PostgresServer) -> str:
    """A database with every migration applied that nobody connects to, so `fresh_db_url` can copy it."""
    name = f"eafix_template_{secrets.token_hex(4)}"
    admin = {"user": migrated_db.user, "password": migrated_db.password, "autocommit": True}
    with psycopg.connect(migrated_db.url, **admin) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    template = servers.PostgresServer(urlunsplit(urlsplit(migrated_db.url)._replace(path=f"/{name}")),
                                      migrated_db.user, migrated_db.password)
    _apply_real_migrations(template)
    return name


@pytest.fixture
def fresh_db_url(migrated_db: servers.PostgresServer, migrated_template: str) -> Iterator[str]:
    """URL (with credentials) of a migrated database of this test's own, dropped afterwards: for tests
    that need empty ledgers, which refuse TRUNCATE and DELETE."""
    name = f"eafix_test_{secrets.token_hex(6)}"
    admin = {"user": migrated_db.user, "password": migrated_db.password, "autocommit": True}
    with psycopg.connect(migrated_db.url, **admin) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                       sql.Identifier(migrated_template)))
    try:
        yield _with_credentials(servers.PostgresServer(urlunsplit(urlsplit(migrated_db.url)._replace(path=f"/{name}")),
                                                       migrated_db.user, migrated_db.password))
    finally:
        with psycopg.connect(migrated_db.url, **admin) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def runner(tmp_path: Path, postgres_server: servers.PostgresServer) -> Runner:
    """A migration runner over tmp_path/migrations (empty until a test writes files) on `postgres_server`."""
    from service.migration_files import Runner

    return Runner(tmp_path / "migrations", postgres_server)
