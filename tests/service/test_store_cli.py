"""`eafix migrate` end to end: settings and credential files like a service, output, exit codes,
two concurrent processes (two hook Jobs), and the `migrated_db_url` fixture."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from eafix import cli
from eafix.runtime.store import migrations
from eafix.runtime.store.migrations import MIGRATION_LOCK_KEY
from service.migration_files import sha256, steps, wait_for, waiting_runners, write
from service.servers import STARTUP_LIMIT


@pytest.fixture
def schema() -> str:
    return f"t{secrets.token_hex(4)}_cli"


@pytest.fixture
def service_env(monkeypatch, secrets_dir, postgres_server) -> Path:
    """What the hook Job gets: SERVICE_POSTGRES_URL from the chart, user and password as files."""
    monkeypatch.setenv("SERVICE_POSTGRES_URL", postgres_server.url)
    return secrets_dir(SERVICE_POSTGRES_USER=postgres_server.user, SERVICE_POSTGRES_PASSWORD=postgres_server.password)


def migrate(*args: str) -> int:
    return cli.main(["migrate", *args])


def test_applies_then_has_nothing_to_do(capsys, service_env, runner, schema):
    files = steps(schema, range(1, 3))
    write(runner.root, files)
    assert migrate("--dir", str(runner.root)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"applied {schema}/0001_step_1.sql (sha256 {sha256(files[f'{schema}/0001_step_1.sql'])[:12]})",
                   f"applied {schema}/0002_step_2.sql (sha256 {sha256(files[f'{schema}/0002_step_2.sql'])[:12]})",
                   "2 migration(s) applied, 0 already applied"]
    assert [r[1] for r in runner.recorded(schema)] == [1, 2]
    assert migrate("--dir", str(runner.root)) == 0
    assert capsys.readouterr().out.splitlines() == ["nothing to apply: 2 migration(s) already applied"]


def test_dry_run_lists_and_changes_nothing(capsys, service_env, runner, schema):
    write(runner.root, steps(schema, range(1, 2)))
    assert migrate("--dir", str(runner.root)) == 0
    write(runner.root, steps(schema, range(2, 4)))
    capsys.readouterr()
    assert migrate("--dry-run", "--dir", str(runner.root)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in lines[:2]] == [f"pending {schema}/0002_step_2.sql",
                                                          f"pending {schema}/0003_step_3.sql"]
    assert lines[2] == "dry run: 2 pending, 1 already applied; nothing was changed"
    assert [r[1] for r in runner.recorded(schema)] == [1]


def test_a_changed_file_fails_with_one_line_naming_it(capsys, service_env, runner, schema):
    write(runner.root, steps(schema, range(1, 2)))
    assert migrate("--dir", str(runner.root)) == 0
    capsys.readouterr()
    path = runner.root / schema / "0001_step_1.sql"
    path.write_text(path.read_text().replace("VALUES (1)", "VALUES (100)"))
    assert migrate("--dir", str(runner.root)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"eafix migrate: {schema}/0001_step_1.sql: changed after it was applied")


def test_a_failing_file_fails_with_one_line(capsys, service_env, runner, schema):
    write(runner.root, {f"{schema}/0001_init.sql": f"CREATE SCHEMA IF NOT EXISTS {schema};\nCREATE TABLE t (x int;\n"})
    assert migrate("--dir", str(runner.root)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f'eafix migrate: {schema}/0001_init.sql line 2: syntax error at or near ";" [42601]')
    assert runner.recorded(schema) == []


def test_missing_url_is_a_settings_error(capsys, secrets_dir, tmp_path):
    secrets_dir(SERVICE_POSTGRES_USER="eafix")
    assert migrate("--dir", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err == "eafix migrate: SERVICE_POSTGRES_URL: missing; set it to postgresql://host:port/database\n"


def test_missing_user_is_a_settings_error(capsys, monkeypatch, secrets_dir, postgres_server, tmp_path):
    secrets_dir()
    monkeypatch.setenv("SERVICE_POSTGRES_URL", postgres_server.url)
    assert migrate("--dir", str(tmp_path)) == 2
    assert capsys.readouterr().err.startswith("eafix migrate: SERVICE_POSTGRES_USER: missing")


def test_a_bad_url_is_a_settings_error_naming_the_variable(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SERVICE_POSTGRES_URL", "mysql://db:3306/x")
    assert migrate("--dir", str(tmp_path)) == 2
    assert capsys.readouterr().err.startswith("eafix migrate: SERVICE_POSTGRES_URL: expected a postgresql://")


def test_service_identity_settings_do_not_matter(capsys, monkeypatch, service_env, runner, schema):
    # the Job's environment may carry a service's SERVICE_NAME/SERVICE_PORT; migrate needs neither
    monkeypatch.setenv("SERVICE_NAME", "not-a-service")
    write(runner.root, steps(schema, range(1, 2)))
    assert migrate("--dir", str(runner.root)) == 0
    assert capsys.readouterr().out.endswith("1 migration(s) applied, 0 already applied\n")


def test_a_wrong_password_fails_with_one_line_without_the_password(capsys, monkeypatch, secrets_dir,
                                                                  postgres_server, runner, schema):
    monkeypatch.setenv("SERVICE_POSTGRES_URL", postgres_server.url)
    secrets_dir(SERVICE_POSTGRES_USER=postgres_server.user, SERVICE_POSTGRES_PASSWORD="wrong-password-77")
    write(runner.root, steps(schema, range(1, 2)))
    assert migrate("--dir", str(runner.root)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "wrong-password-77" not in err
    assert err.startswith(f"eafix migrate: PostgreSQL at {postgres_server.url}: ")
    assert "password authentication failed" in err


def test_a_missing_directory_fails_with_one_line(capsys, service_env, tmp_path):
    assert migrate("--dir", str(tmp_path / "nope")) == 1
    assert capsys.readouterr().err == f"eafix migrate: {tmp_path / 'nope'}: no such migrations directory " \
                                      "(is the package data installed?)\n"


# --- as the container runs it: real processes ------------------------------------------------------

def process_env(service_env: Path, postgres_server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    env.update({"SERVICE_POSTGRES_URL": postgres_server.url, "SERVICE_SECRETS_DIR": str(service_env)})
    return env


def test_two_jobs_at_once_apply_each_migration_once(service_env, postgres_server, runner, schema):
    write(runner.root, steps(schema, range(1, 4)))
    env = process_env(service_env, postgres_server)
    command = [sys.executable, "-m", "eafix", "migrate", "--dir", str(runner.root)]
    with psycopg.connect(postgres_server.url, **runner.creds, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))  # a third runner, mid-run
        procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        try:
            wait_for(lambda: waiting_runners(runner) == 2 or any(p.poll() is not None for p in procs),
                     "both processes to wait for the lock")
            holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
            outputs = [p.communicate(timeout=STARTUP_LIMIT) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.communicate()
    assert [p.returncode for p in procs] == [0, 0], outputs
    outs = sorted((out for out, _ in outputs), key=lambda out: "nothing to apply" not in out)  # idle one first
    waiting = "another migration runner holds the lock; waiting for it to finish"
    assert outs[0].splitlines() == [waiting, "nothing to apply: 3 migration(s) already applied"]
    assert outs[1].splitlines()[0] == waiting
    assert outs[1].splitlines()[-1] == "3 migration(s) applied, 0 already applied"
    assert runner.query(f"SELECT version FROM {schema}.applied ORDER BY seq") == [(1,), (2,), (3,)]
    assert [r[1] for r in runner.recorded(schema)] == [1, 2, 3]
    assert all(postgres_server.password not in out + err for out, err in outputs)


# --- the migrated_db_url fixture ---------------------------------------------------------------------

def test_migrated_db_has_every_real_migration_applied(migrated_db_url, postgres_server):
    real = migrations.discover(missing_ok=True)  # services/eafix/migrations, whatever exists now
    with psycopg.connect(migrated_db_url, autocommit=True) as conn:  # credentials are in the URL
        rows = conn.execute("SELECT schema_name, version, name, checksum FROM public.eafix_schema_migrations "
                            "ORDER BY schema_name, version").fetchall()
        schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace").fetchall()}
        database = conn.execute("SELECT current_database(), inet_server_port()").fetchone()
    assert rows == [(m.schema, m.version, m.name, m.checksum) for m in real]
    assert {m.schema for m in real} <= schemas
    # a database of its own, not the one the other tests scribble in
    shared = urlsplit(postgres_server.url)
    assert (database[1], database[0]) != (shared.port, shared.path.lstrip("/"))
