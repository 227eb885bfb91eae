"""The migration runner: file checks without a database, then real runs on the throwaway PostgreSQL.

Every test writes its own migration files under tmp_path with schema names unique to the test, so
the tests share the session's database without seeing each other (the runner only looks at the
schemas that have a directory).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from eafix.runtime.store import migrations
from eafix.runtime.store.migrations import MIGRATION_LOCK_KEY, MigrationError, discover
from service.migration_files import create, sha256, steps, wait_for, waiting_runners, write
from service.servers import STARTUP_LIMIT

# --- discovery and the static checks (no database) --------------------------------------------------

def test_discovers_in_schema_and_numeric_version_order(tmp_path):
    files = {f"ledger/{v:04d}_step_{v}.sql": (create("ledger") if v == 1 else "") + f"SELECT {v};\n"
             for v in (10, 2, 1, 9, 3, 4, 5, 6, 7, 8)}
    files["audit/0001_init.sql"] = create("audit")
    found = discover(write(tmp_path, files))
    assert [(m.schema, m.version) for m in found] == [("audit", 1)] + [("ledger", v) for v in range(1, 11)]
    m = found[1]
    assert (m.name, m.filename, m.ident) == ("step_1", "0001_step_1.sql", "ledger/0001_step_1.sql")
    assert m.checksum == sha256(create("ledger") + "SELECT 1;\n")
    assert m.path == tmp_path / "ledger" / "0001_step_1.sql"


def test_readme_and_hidden_files_are_ignored(tmp_path):
    write(tmp_path, {"ledger/0001_init.sql": create("ledger"), "ledger/README.md": "notes",
                     "ledger/.0002_draft.sql.swp": "x", "README.md": "top", "__pycache__/x.pyc": "x"})
    assert [m.ident for m in discover(tmp_path)] == ["ledger/0001_init.sql"]


def test_crlf_does_not_change_the_checksum(tmp_path):
    lf = create("ledger") + "CREATE TABLE t (x int);\n"
    a = discover(write(tmp_path / "a", {"ledger/0001_init.sql": lf}))[0]
    b = discover(write(tmp_path / "b", {"ledger/0001_init.sql": lf.replace("\n", "\r\n")}))[0]
    assert a.checksum == b.checksum == sha256(lf)


def test_missing_directory(tmp_path):
    with pytest.raises(MigrationError, match="no such migrations directory"):
        discover(tmp_path / "nowhere")
    assert discover(tmp_path / "nowhere", missing_ok=True) == []


def test_default_directory_is_package_data():
    import eafix

    assert migrations.default_directory() == Path(eafix.__file__).resolve().parent / "migrations"


def test_the_real_migrations_pass_the_checks():
    found = discover()
    assert {m.schema for m in found} == {"calendar", "compliance", "gateway", "orders", "reentry", "reports",
                                          "risk", "trades"}  # the services' schemas
    for m in found:
        assert m.sql.strip(), f"{m.ident} is empty"


# every append-only table of the real migrations
LEDGERS = ["orders.transitions", "orders.fills", "trades.trades", "risk.decisions", "risk.realized_trades",
           "reentry.decisions", "reports.signals", "reports.orders", "reports.fills", "reports.trades",
           "compliance.audit", "compliance.retention",  # compliance.audit: DELETE only past the retention
           "calendar.state_transitions", "gateway.operator_audit"]


@pytest.mark.parametrize("table", LEDGERS)
def test_ledgers_refuse_update_delete_and_truncate(fresh_db_url, table):
    schema, name = table.split(".")
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        with pytest.raises(psycopg.Error, match="append-only: TRUNCATE refused"):
            conn.execute(f"TRUNCATE {table} CASCADE")  # a statement trigger: it fires on an empty table too
        # row triggers fire only on rows (the repository tests write some and try): here, that they exist
        rows = conn.execute("SELECT event_manipulation FROM information_schema.triggers WHERE event_object_schema "
                            "= %s AND event_object_table = %s AND action_timing = 'BEFORE' AND action_orientation "
                            "= 'ROW' ORDER BY 1", (schema, name)).fetchall()
    assert [r[0] for r in rows] == ["DELETE", "UPDATE"]


BAD_FILES = [
    # (files, the file the message names, a phrase of the message)
    ({"ledger/1_init.sql": "x"}, "ledger/1_init.sql", "not a migration file name"),
    ({"ledger/0001-init.sql": "x"}, "ledger/0001-init.sql", "not a migration file name"),
    ({"ledger/0001_Init.sql": "x"}, "ledger/0001_Init.sql", "not a migration file name"),
    ({"ledger/0001_init.SQL": "x"}, "ledger/0001_init.SQL", "not a migration file name"),
    ({"ledger/0001_init.sql.bak": "x"}, "ledger/0001_init.sql.bak", "not a migration file name"),
    ({"ledger/0000_init.sql": "x"}, "ledger/0000_init.sql", "start at 0001"),
    ({"ledger/0001_a.sql": create("ledger"), "ledger/0001_b.sql": create("ledger")},
     "ledger/0001_b.sql", "also used by ledger/0001_a.sql"),
    ({"ledger/0001_a.sql": create("ledger"), "ledger/0003_c.sql": "SELECT 1;"}, "ledger/0003_c.sql",
     "version 0002 of schema ledger is missing"),
    ({"ledger/0002_b.sql": "SELECT 1;"}, "ledger/0002_b.sql", "version 0001 of schema ledger is missing"),
    ({"ledger/0001_a.sql": b"CREATE SCHEMA IF NOT EXISTS ledger; -- \xff\xfe"}, "ledger/0001_a.sql", "not UTF-8"),
    ({"public/0001_a.sql": create("public")}, "public", "not a valid schema directory name"),
    ({"pg_temp/0001_a.sql": "x"}, "pg_temp", "not a valid schema directory name"),
    ({"Ledger/0001_a.sql": "x"}, "Ledger", "not a valid schema directory name"),
    ({"ledger/0001_a.sql": "CREATE TABLE ledger.t (x int);"}, "ledger/0001_a.sql",
     "must create its schema with CREATE SCHEMA IF NOT EXISTS ledger"),
    # references to other schemas
    ({"ledger/0001_a.sql": create("ledger") + "CREATE TABLE t (x int REFERENCES risk.limits (id));"},
     "ledger/0001_a.sql", "line 2 references schema 'risk'"),
    ({"ledger/0001_a.sql": create("ledger") + "\n\nCREATE TABLE public.t (x int);"},
     "ledger/0001_a.sql", "line 4 references schema 'public'"),
    ({"ledger/0001_a.sql": create("ledger"), "ledger/0002_b.sql": "SELECT * FROM\n  audit . entries;",
      "audit/0001_a.sql": create("audit")}, "ledger/0002_b.sql", "line 2 references schema 'audit'"),
    ({"ledger/0001_a.sql": create("ledger") + 'INSERT INTO "orders"."orders" VALUES (1);'},
     "ledger/0001_a.sql", "references schema 'orders'"),
    ({"ledger/0001_a.sql": create("ledger") + "SELECT 'x'::trades.side;"}, "ledger/0001_a.sql",
     "references schema 'trades'"),
    ({"ledger/0001_a.sql": create("ledger") + "CREATE SCHEMA IF NOT EXISTS other;"}, "ledger/0001_a.sql",
     "CREATE SCHEMA 'other'"),
    ({"ledger/0001_a.sql": create("ledger") + "DROP SCHEMA risk CASCADE;"}, "ledger/0001_a.sql",
     "DROP SCHEMA 'risk'"),
    ({"ledger/0001_a.sql": create("ledger") + "SET search_path TO public;"}, "ledger/0001_a.sql",
     "sets search_path"),
    ({"ledger/0001_a.sql": create("ledger") + "set local search_path = ledger;"}, "ledger/0001_a.sql",
     "sets search_path"),
    ({"ledger/0001_a.sql": "BEGIN;\n" + create("ledger") + "COMMIT;"}, "ledger/0001_a.sql",
     "line 1 has transaction control (BEGIN)"),
    ({"ledger/0001_a.sql": create("ledger") + "CREATE TABLE t (x int);\ncommit;"}, "ledger/0001_a.sql",
     "line 3 has transaction control (COMMIT)"),
]


@pytest.mark.parametrize(("files", "named", "phrase"), BAD_FILES, ids=[b[1] + ":" + b[2] for b in BAD_FILES])
def test_bad_files_are_refused_naming_the_file(tmp_path, files, named, phrase):
    with pytest.raises(MigrationError) as err:
        discover(write(tmp_path, files))
    message = str(err.value)
    assert named in message and phrase in message, message
    assert "\n" not in message


def test_comments_literals_and_function_bodies_are_not_references(tmp_path):
    body = create("ledger") + """
-- moved from risk.limits; see public.notes
/* old: SELECT * FROM orders.orders; /* nested */ risk.x */
CREATE TABLE entries (
    id bigserial PRIMARY KEY,
    note text DEFAULT 'copied from risk.limits; BEGIN; COMMIT;',
    esc text DEFAULT E'it''s \\' public.x',
    amount numeric(20, 10) NOT NULL
);
COMMENT ON TABLE entries IS 'not public.entries';
CREATE FUNCTION ledger.touch() RETURNS trigger LANGUAGE plpgsql SET search_path = ledger AS $fn$
BEGIN
    NEW.amount := round(NEW.amount, 10);
    RETURN NEW;
END;
$fn$;
CREATE VIEW totals AS SELECT e.id, sum(e.amount) AS total, CASE WHEN e.id > 0 THEN 1 END AS flag
    FROM ledger.entries e GROUP BY e.id;
"""
    (m,) = discover(write(tmp_path, {"ledger/0001_init.sql": body}))
    assert m.version == 1


def test_function_bodies_are_checked_for_references(tmp_path):
    body = create("ledger") + "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT count(*) FROM risk.limits $$;"
    with pytest.raises(MigrationError, match="references schema 'risk'"):
        discover(write(tmp_path, {"ledger/0001_init.sql": body}))


def test_quoted_own_schema_is_accepted(tmp_path):
    (m,) = discover(write(tmp_path, {"ledger/0001_init.sql": 'CREATE SCHEMA IF NOT EXISTS "ledger";\n'
                                     'CREATE TABLE "ledger"."t" (x int);'}))
    assert m.schema == "ledger"


# --- runs against PostgreSQL -------------------------------------------------------------------------

@pytest.fixture
def names() -> Callable[[str], str]:
    """names("ledger") -> a schema name unique to this test."""
    prefix = f"t{secrets.token_hex(4)}"
    return lambda base: f"{prefix}_{base}"


def test_applies_in_order_and_records_each_file(runner, names):
    ledger, audit = names("ledger"), names("audit")
    files = steps(ledger, range(1, 11)) | {
        f"{audit}/0001_init.sql": create(audit) + "CREATE TABLE entries (amount numeric NOT NULL);",
        f"{audit}/0002_more.sql": "ALTER TABLE entries ADD COLUMN note text;"}
    write(runner.root, files)
    result = runner()
    assert [m.ident for m in result.applied] == [f"{audit}/0001_init.sql", f"{audit}/0002_more.sql"] + [
        f"{ledger}/{v:04d}_step_{v}.sql" for v in range(1, 11)]
    assert result.already_applied == [] and not result.dry_run
    # 0002 inserts into the table 0001 creates, ..., and the log shows 1..10 in order
    assert runner.query(f"SELECT version FROM {ledger}.applied ORDER BY seq") == [(v,) for v in range(1, 11)]
    expected = sorted((rel.split("/")[0], int(rel.split("/")[1][:4]), rel.split("/")[1][5:-4], sha256(text))
                      for rel, text in files.items())
    assert runner.recorded(ledger, audit) == expected
    # unqualified names landed in the file's own schema, not in public
    assert runner.exists(f"{audit}.entries") and not runner.exists("public.entries")
    assert runner.query("SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                        "AND table_name = 'entries' ORDER BY ordinal_position", (audit,)) == [("amount",), ("note",)]


def test_the_migrations_table_has_the_convention_columns(runner, names):
    write(runner.root, steps(names("ledger"), range(1, 2)))
    runner()
    columns = runner.query("SELECT column_name, data_type FROM information_schema.columns "
                           "WHERE table_schema = 'public' AND table_name = 'eafix_schema_migrations' "
                           "ORDER BY ordinal_position")
    assert columns == [("schema_name", "text"), ("version", "integer"), ("name", "text"), ("checksum", "text"),
                       ("applied_at", "timestamp with time zone")]


def test_rerun_is_a_no_op_and_new_files_apply_alone(runner, names):
    ledger = names("ledger")
    write(runner.root, steps(ledger, range(1, 3)))
    runner()
    before = runner.query("SELECT version, applied_at FROM public.eafix_schema_migrations WHERE schema_name = %s "
                          "ORDER BY version", (ledger,))
    again = runner()
    assert again.applied == [] and [m.version for m in again.already_applied] == [1, 2]
    assert runner.query("SELECT version FROM public.eafix_schema_migrations WHERE schema_name = %s "
                        "ORDER BY version", (ledger,)) == [(1,), (2,)]
    write(runner.root, steps(ledger, range(3, 4)))
    third = runner()
    assert [m.ident for m in third.applied] == [f"{ledger}/0003_step_3.sql"]
    assert runner.query(f"SELECT version FROM {ledger}.applied ORDER BY seq") == [(1,), (2,), (3,)]
    after = runner.query("SELECT version, applied_at FROM public.eafix_schema_migrations WHERE schema_name = %s "
                         "AND version < 3 ORDER BY version", (ledger,))
    assert after == before  # the earlier rows were not rewritten


def test_a_changed_applied_file_is_refused_naming_it(runner, names):
    ledger = names("ledger")
    write(runner.root, steps(ledger, range(1, 3)))
    runner()
    path = runner.root / ledger / "0002_step_2.sql"
    path.write_text(path.read_text() + "-- an innocent-looking edit\n")
    write(runner.root, steps(ledger, range(3, 4)))  # a new file waiting behind the edited one
    for dry_run in (True, False):
        with pytest.raises(MigrationError) as err:
            runner(dry_run=dry_run)
        assert str(err.value).startswith(f"{ledger}/0002_step_2.sql: changed after it was applied")
        assert sha256(path.read_text())[:12] in str(err.value)
    assert [r[1] for r in runner.recorded(ledger)] == [1, 2]  # 0003 was not applied either
    assert runner.query(f"SELECT version FROM {ledger}.applied ORDER BY seq") == [(1,), (2,)]


def test_a_renamed_applied_file_is_refused(runner, names):
    ledger = names("ledger")
    write(runner.root, steps(ledger, range(1, 3)))
    runner()
    old = runner.root / ledger / "0002_step_2.sql"
    old.rename(old.with_name("0002_second_step.sql"))
    with pytest.raises(MigrationError, match=f"{ledger}/0002_second_step.sql: version 0002 .* was applied as "
                                             f"{ledger}/0002_step_2.sql"):
        runner()


def test_a_failing_migration_rolls_back_the_run_and_records_nothing(runner, names):
    ledger, audit = names("ledger"), names("audit")
    write(runner.root, {f"{audit}/0001_init.sql": create(audit) + "CREATE TABLE a (x int);",
                        **steps(ledger, range(1, 3)),
                        f"{ledger}/0003_broken.sql": "CREATE TABLE b (x int);\n\nINSERT INTO nowhere VALUES (1);\n"})
    with pytest.raises(MigrationError) as err:
        runner()
    message = str(err.value)
    assert message.startswith(f"{ledger}/0003_broken.sql line 3: relation \"nowhere\" does not exist [42P01]")
    assert "rolled back, nothing was applied" in message
    assert runner.recorded(ledger, audit) == []
    assert not runner.schema_exists(ledger) and not runner.schema_exists(audit)
    # fixed, it applies; the advisory lock was released by the failed run
    (runner.root / ledger / "0003_broken.sql").write_text("CREATE TABLE b (x int);\n")
    assert len(runner().applied) == 4
    assert runner.exists(f"{ledger}.b") and runner.exists(f"{audit}.a")


def test_a_failure_keeps_what_earlier_runs_applied(runner, names):
    ledger = names("ledger")
    write(runner.root, steps(ledger, range(1, 2)))
    runner()
    write(runner.root, {f"{ledger}/0002_ok.sql": "CREATE TABLE c (x int);",
                        f"{ledger}/0003_bad.sql": "SELECT 1 / 0;"})
    with pytest.raises(MigrationError, match=rf"^{ledger}/0003_bad.sql: division by zero \[22012\]; rolled back"):
        runner()
    assert [r[1] for r in runner.recorded(ledger)] == [1]
    assert runner.exists(f"{ledger}.applied") and not runner.exists(f"{ledger}.c")


def test_dry_run_changes_nothing(runner, names):
    ledger = names("ledger")
    write(runner.root, steps(ledger, range(1, 3)))
    result = runner(dry_run=True)
    assert result.dry_run and [m.version for m in result.applied] == [1, 2]
    assert not runner.schema_exists(ledger)
    runner()
    write(runner.root, steps(ledger, range(3, 4)))
    result = runner(dry_run=True)
    assert [m.version for m in result.applied] == [3] and [m.version for m in result.already_applied] == [1, 2]
    assert [r[1] for r in runner.recorded(ledger)] == [1, 2]


def test_versions_newer_than_the_files_are_reported_not_refused(runner, names):
    ledger = names("ledger")
    write(runner.root, steps(ledger, range(1, 3)))
    runner()
    (runner.root / ledger / "0002_step_2.sql").unlink()  # an older release's image
    result = runner()
    assert result.applied == [] and [u.ident for u in result.unknown] == [f"{ledger}/0002_step_2.sql"]


def test_migrate_needs_an_autocommit_connection(postgres_server):
    async def attempt():
        conn = await psycopg.AsyncConnection.connect(postgres_server.url, user=postgres_server.user,
                                                     password=postgres_server.password)
        async with conn:
            await migrations.migrate(conn, [])

    with pytest.raises(MigrationError, match="autocommit"):
        asyncio.run(attempt())


def test_concurrent_runners_apply_each_migration_exactly_once(runner, names):
    """Two runners start while a third party holds the lock; once it is released they serialize:
    one applies everything, the other finds nothing to do."""
    ledger = names("ledger")
    # Not idempotent on purpose: applied twice, 0001 fails (table exists) and 0002 logs twice.
    write(runner.root, steps(ledger, range(1, 4)))
    results: list[migrations.MigrationResult | BaseException] = []
    waits: list[str] = []

    def run_one() -> None:
        try:
            results.append(runner(on_wait=waits.append))
        except BaseException as exc:  # reported by the assertions below
            results.append(exc)

    with psycopg.connect(runner.server.url, **runner.creds, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        threads = [threading.Thread(target=run_one) for _ in range(2)]
        for t in threads:
            t.start()
        wait_for(lambda: waiting_runners(runner) == 2, "both runners to wait for the lock")
        holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
        for t in threads:
            t.join(STARTUP_LIMIT)
    assert all(isinstance(r, migrations.MigrationResult) for r in results), results
    applied = sorted(len(r.applied) for r in results)
    assert applied == [0, 3]
    assert all(r.waited_for_lock for r in results) and len(waits) == 2
    assert runner.query(f"SELECT version FROM {ledger}.applied ORDER BY seq") == [(1,), (2,), (3,)]
    assert [r[1] for r in runner.recorded(ledger)] == [1, 2, 3]
    assert waiting_runners(runner) == 0
