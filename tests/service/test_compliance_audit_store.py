"""compliance-monitor's audit trail in the real PostgreSQL: append and page, append-only triggers, and the
pruning job that deletes only the rows past the retention in force."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from eafix.compliance_monitor.audit import AuditEntry, PostgresAuditLog

pytestmark = pytest.mark.anyio
NOW = datetime.now(UTC)


@pytest.fixture
async def log(fresh_db_url) -> AsyncIterator[PostgresAuditLog]:
    async with AsyncConnectionPool(fresh_db_url, min_size=1, max_size=2, open=False) as pool:
        yield PostgresAuditLog(pool)


def entry(age: timedelta, subject: str = "fp") -> AuditEntry:
    return AuditEntry(NOW - age, "alert", subject, {"status": "firing", "labels": {"regulation": "CFTC"}})


async def test_entries_are_stored_and_paged_in_order(log):
    ids = [(await log.append(entry(timedelta(0), f"fp-{i}"))).id for i in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3
    first = await log.page(0, 2)
    assert [e.subject for e in first.entries] == ["fp-0", "fp-1"] and first.next_after == ids[1]
    rest = await log.page(first.next_after, 2)
    assert [e.subject for e in rest.entries] == ["fp-2"] and rest.next_after is None
    assert rest.entries[0].detail == {"status": "firing", "labels": {"regulation": "CFTC"}}


async def test_update_truncate_and_deleting_a_young_row_are_refused(log, fresh_db_url):
    young = await log.append(entry(timedelta(days=365 * 6)))  # 6 years: within the 7-year default
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        with pytest.raises(psycopg.Error, match="append-only: UPDATE refused"):
            conn.execute("UPDATE compliance.audit SET actor = 'x' WHERE id = %s", (young.id,))
        with pytest.raises(psycopg.Error, match=f"DELETE refused \\(row {young.id} is within the retention\\)"):
            conn.execute("DELETE FROM compliance.audit WHERE id = %s", (young.id,))
        with pytest.raises(psycopg.Error, match="append-only: TRUNCATE refused"):
            conn.execute("TRUNCATE compliance.audit")
        with pytest.raises(psycopg.Error, match="append-only: UPDATE refused"):
            conn.execute("UPDATE compliance.retention SET keep = interval '1 day'")
    assert [e.id for e in (await log.page(0, 10)).entries] == [young.id]


async def test_pruning_deletes_only_rows_past_the_retention(log, fresh_db_url):
    old = await log.append(entry(timedelta(days=7 * 366)))  # past 7 years whatever the leap days
    kept = await log.append(entry(timedelta(days=7 * 365 - 10)))
    assert await log.prune() == 1
    assert [e.id for e in (await log.page(0, 10)).entries] == [kept.id]
    assert old.id != kept.id
    # a shorter retention is a new row of the retention history; the newest is in force
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO compliance.retention (keep, set_by) VALUES (interval '30 days', 'test')")
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO compliance.retention (keep, set_by) VALUES (interval '1 hour', 'test')")
    await log.append(entry(timedelta(days=29)))
    assert await log.prune() == 1
    assert len((await log.page(0, 10)).entries) == 1



def test_the_pruning_function_runs_as_its_owner_with_a_fixed_search_path(fresh_db_url):
    # SECURITY DEFINER: a role granted EXECUTE alone can prune (the test user may not create roles to show it)
    with psycopg.connect(fresh_db_url) as conn:
        row = conn.execute("SELECT p.prosecdef, p.proconfig FROM pg_proc p JOIN pg_namespace n ON n.oid = "
                           "p.pronamespace WHERE n.nspname = 'compliance' AND p.proname = 'prune_audit'").fetchone()
    assert row == (True, ["search_path=pg_catalog, pg_temp"])
