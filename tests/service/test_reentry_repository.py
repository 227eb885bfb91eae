"""reentry-matrix-svc's repositories (in memory and PostgreSQL, the same tests on both): origins,
orders and verdicts survive a restart, a verdict and its scheduled re-entry are stored together,
redelivery stores nothing twice, published re-entries are not restored, chains are the verdicts of
one original trade, and the decision ledger refuses UPDATE/DELETE/TRUNCATE."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal as D

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from eafix.contracts.primitives import Direction
from eafix.reentry_matrix_svc.engine import ClosedTrade, OrderInfo, Origin, ReentryEngine
from eafix.reentry_matrix_svc.matrix import load_matrix
from eafix.reentry_matrix_svc.repository import InMemoryReentryRepository, PostgresReentryRepository
from eafix.runtime.clock import TestClock
from service.factories import T0

pytestmark = pytest.mark.anyio


@pytest.fixture
async def pg_pool(fresh_db_url) -> AsyncIterator[AsyncConnectionPool]:
    pool = AsyncConnectionPool(fresh_db_url, min_size=1, max_size=2, open=False)
    await pool.open()
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(params=["memory", "postgres"])
def repo(request):
    if request.param == "memory":
        return InMemoryReentryRepository()
    return PostgresReentryRepository(request.getfixturevalue("pg_pool"))


def trade(trade_id: str, pips: str, lots: str = "2.00") -> ClosedTrade:
    return ClosedTrade(trade_id, trade_id, "EURUSD", Direction.LONG, D(lots), D("1.10500"), T0,
                       T0 + timedelta(minutes=20), D(pips))


async def test_a_restart_rebuilds_the_engine(repo):
    clock = TestClock(T0 + timedelta(minutes=20))
    engine = ReentryEngine(load_matrix(), clock)
    engine.on_signal("S-1", "ema_cross", "H1", 0.7)
    engine.on_order_intent("O-1", "S-1", D(20), D(40))
    # what the stage stores after each of those messages
    await repo.save_origin(Origin("S-1", "ema_cross", "H1", 0.7), clock.now())
    await repo.save_order("O-1", OrderInfo("S-1", D(20), D(40)), clock.now())
    verdict = engine.on_trade_closed(trade("O-1", "40"))
    (scheduled,) = engine.pending()
    await repo.save_verdict(verdict, scheduled)
    await repo.save_verdict(verdict, scheduled)  # redelivered: nothing twice

    restarted = ReentryEngine(load_matrix(), clock)
    restarted.restore(await repo.load(T0 - timedelta(days=7)))
    assert restarted.verdict_for("O-1") == verdict  # idempotent across the restart
    assert restarted.pending() == [scheduled]  # the due time survived
    assert restarted.on_trade_closed(trade("O-1", "40")) == verdict
    # the ledger remembers the approval: the same key again is a duplicate, another one a cooldown
    restarted.on_signal("S-2", "ema_cross", "H1", 0.7)
    restarted.on_order_intent("O-2", "S-2", D(20), D(40))
    assert restarted.on_trade_closed(trade("O-2", "40")).refusal == "DUPLICATE"

    await repo.mark_published(scheduled.signal_id, clock.now())
    assert (await repo.load(T0 - timedelta(days=7))).pending == ()
    assert [v.trade_id for v in await repo.chain("O-1")] == ["O-1"]


async def test_postgres_decisions_are_append_only(pg_pool, fresh_db_url):
    repo = PostgresReentryRepository(pg_pool)
    engine = ReentryEngine(load_matrix(), TestClock(T0))
    await repo.save_verdict(engine.on_trade_closed(trade("M-1", "10")), None)
    async with await psycopg.AsyncConnection.connect(fresh_db_url, autocommit=True) as conn:
        for statement in ("UPDATE reentry.decisions SET tier = 0", "DELETE FROM reentry.decisions",
                          "TRUNCATE reentry.decisions CASCADE"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                await conn.execute(statement)
