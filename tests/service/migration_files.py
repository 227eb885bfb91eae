"""Helpers of the migration runner tests (test_store_migrations.py, test_store_cli.py): migration files
written under a directory, and a `Runner` that applies them to a server and queries it."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from eafix.runtime.store import migrations
from eafix.runtime.store.migrations import MIGRATION_LOCK_KEY
from service.servers import STARTUP_LIMIT


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    """{"<schema>/<file>": content} under root; returns root."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
    return root


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def create(schema: str) -> str:
    return f"CREATE SCHEMA IF NOT EXISTS {schema};\n"


class Runner:
    """Runs the migrations of one directory against the session's server, as a test would."""

    def __init__(self, root: Path, server) -> None:
        self.root, self.server = root, server
        self.creds = {"user": server.user, "password": server.password}

    def __call__(self, **kw) -> migrations.MigrationResult:
        return asyncio.run(migrations.run(self.server.url, self.creds, directory=self.root, **kw))

    def query(self, query: str, params=()) -> list[tuple]:
        with psycopg.connect(self.server.url, **self.creds, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def recorded(self, *schemas: str) -> list[tuple]:
        return self.query("SELECT schema_name, version, name, checksum FROM public.eafix_schema_migrations "
                          "WHERE schema_name = ANY(%s) ORDER BY schema_name, version", (list(schemas),))

    def exists(self, name: str) -> bool:
        return self.query("SELECT to_regclass(%s) IS NOT NULL", (name,))[0][0]

    def schema_exists(self, schema: str) -> bool:
        return bool(self.query("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)))


def steps(schema: str, versions: range) -> dict[str, str]:
    """Migrations that each log their version into a table created by 0001 (proves the order)."""
    files = {}
    for v in versions:
        text = ""
        if v == 1:
            text = create(schema) + "CREATE TABLE applied (seq serial PRIMARY KEY, version int NOT NULL);\n"
        files[f"{schema}/{v:04d}_step_{v}.sql"] = text + f"INSERT INTO applied (version) VALUES ({v});\n"
    return files


def waiting_runners(runner: Runner) -> int:
    return runner.query(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
        (MIGRATION_LOCK_KEY >> 32, MIGRATION_LOCK_KEY & 0xFFFFFFFF))[0][0]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT  # a guard against hanging, not a timing assertion
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)
