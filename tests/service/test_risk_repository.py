"""Portfolio repository: the same behavioural tests on InMemoryPortfolioRepository and on a real
PostgreSQL (schema `risk` from services/eafix/migrations/risk/*.sql), plus a restart: an engine rebuilt
from the repository decides exactly as the engine that never stopped.

The database is conftest's `migrated_db` (every migration applied by the real runner, including
risk/0001_portfolio.sql). Each test uses its own account id, so tests share it without interfering.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from eafix.contracts import Direction, OrderIntent, PriceTick, RiskRejected, RiskRejectReason, Signal
from eafix.risk_manager.config import RiskConfig
from eafix.risk_manager.portfolio import (
    AccountRecord,
    DecisionRecord,
    DecisionRecorded,
    Position,
    PositionRemoved,
    PositionState,
    PositionUpserted,
    RealizedTrade,
    TradeRealized,
)
from eafix.risk_manager.repository import (
    ConflictError,
    InMemoryPortfolioRepository,
    PostgresPortfolioRepository,
    UnknownAccountError,
    persist_changes,
    restore_engine,
)
from eafix.runtime.clock import TestClock
from service.factories import T0, intent, signal, tick

pytestmark = pytest.mark.anyio

D = Decimal
MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "eafix" / "migrations" / "risk"


@pytest.fixture(scope="session")
def risk_schema(migrated_db):
    return migrated_db


def _pool(server) -> AsyncConnectionPool:
    return AsyncConnectionPool(server.url, kwargs={"user": server.user, "password": server.password},
                               min_size=1, max_size=2, open=False)


@pytest.fixture
async def pg_pool(risk_schema):
    pool = _pool(risk_schema)
    await pool.open(wait=True)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(params=["memory", "postgres"])
def backend(request):
    """None for the in-memory repository, else the migrated database (set up outside the event loop)."""
    return request.getfixturevalue("risk_schema") if request.param == "postgres" else None


@pytest.fixture
async def repo(backend):
    if backend is None:
        yield InMemoryPortfolioRepository()
        return
    pool = _pool(backend)
    await pool.open(wait=True)
    try:
        yield PostgresPortfolioRepository(pool)
    finally:
        await pool.close()


@pytest.fixture
def account_id() -> str:
    return f"acct-{uuid.uuid4().hex[:12]}"


def account(account_id: str, balance: str = "10000", currency: str = "USD") -> AccountRecord:
    return AccountRecord(account_id, currency, D(balance), T0)


def decided(seq: int, signal_id: str) -> OrderIntent:
    """The intent of decision `seq`, approving `signal_id`."""
    return intent(seq, signal_id=signal_id, entry="1.10010", risk_percent="2.0000", balance="10000")


def refusal(signal_id: str) -> RiskRejected:
    return RiskRejected(signal_id=signal_id, symbol="EURUSD", direction="SHORT",
                        reasons=["SPREAD_TOO_WIDE", "SL_TP_RATIO"], details="spread 7 pips > 5 pips; TP/SL 1.0 < 1.2")


def position(coid: str, *, lots="1.00", state=PositionState.PENDING, opened=T0) -> Position:
    return Position(coid, "S-1", "EURUSD", Direction.LONG, state, D(lots), D(0), D(20), D("10.00000000"),
                    D("1.10010"), opened, opened)


def trade(trade_id: str, pnl: str, close_time: datetime) -> RealizedTrade:
    return RealizedTrade(trade_id, "O-1", "EURUSD", D(pnl), close_time)


# --- behaviour shared by both implementations ------------------------------------------------------


async def test_unknown_account_loads_as_none_and_refuses_changes(repo, account_id):
    assert await repo.load(account_id, since=T0, decision_limit=10) is None
    with pytest.raises(UnknownAccountError):
        await repo.apply(account_id, [PositionRemoved("O-1")])


async def test_ensure_account_creates_once_and_keeps_the_first(repo, account_id):
    first = await repo.ensure_account(account(account_id, "10000"))
    again = await repo.ensure_account(account(account_id, "99999", "EUR"))
    assert first == again == account(account_id, "10000")
    snap = await repo.load(account_id, since=T0, decision_limit=10)
    assert snap.account == first
    assert (snap.positions, snap.realized_total, snap.decisions, snap.last_seq) == ((), D(0), (), 0)


async def test_round_trip_of_every_change_kind(repo, account_id):
    await repo.ensure_account(account(account_id))
    approved = DecisionRecord(1, "S-1", T0, decided(1, "S-1"))
    refused = DecisionRecord(2, "S-2", T0 + timedelta(seconds=1), refusal("S-2"))
    p1, p2 = position("O-1"), position("O-2", opened=T0 + timedelta(seconds=5))
    await repo.apply(account_id, [DecisionRecorded(approved), PositionUpserted(p1), DecisionRecorded(refused),
                                  PositionUpserted(p2)])
    filled = replace(p1, state=PositionState.OPEN, filled_lots=D("1.00"), entry_price=D("1.10012"),
                     updated_at=T0 + timedelta(minutes=1))
    await repo.apply(account_id, [
        PositionUpserted(filled),
        TradeRealized(trade("T-old", "-40.5", T0 - timedelta(days=3))),
        TradeRealized(trade("T-1", "120.25", T0 - timedelta(hours=13))),  # 2025-01-05 23:00 UTC
        TradeRealized(trade("T-2", "-20.125", T0)),
        PositionRemoved("O-2"),
    ])
    snap = await repo.load(account_id, since=T0 - timedelta(days=1), decision_limit=100)
    assert snap.positions == (filled,)
    assert snap.realized_total == D("59.625")  # -40.5 + 120.25 - 20.125
    assert snap.realized_by_day == {T0.date() - timedelta(days=1): D("120.25"), T0.date(): D("-20.125")}
    assert snap.recent_trade_ids == ("T-1", "T-2")  # T-old is before `since`
    assert snap.decisions == (approved, refused)
    assert snap.decisions[1].decision.reasons == (RiskRejectReason.SPREAD_TOO_WIDE, RiskRejectReason.SL_TP_RATIO)
    assert snap.last_seq == 2


async def test_redelivered_decision_and_trade_are_not_stored_twice(repo, account_id):
    await repo.ensure_account(account(account_id))
    record = DecisionRecord(1, "S-1", T0, decided(1, "S-1"))
    booked = TradeRealized(trade("T-1", "-75", T0))
    await repo.apply(account_id, [DecisionRecorded(record), booked])
    await repo.apply(account_id, [DecisionRecorded(record), booked])
    snap = await repo.load(account_id, since=T0 - timedelta(days=1), decision_limit=10)
    assert snap.decisions == (record,) and snap.realized_total == D(-75)


async def test_a_conflicting_batch_leaves_nothing_behind(repo, account_id):
    await repo.ensure_account(account(account_id))
    await repo.apply(account_id, [DecisionRecorded(DecisionRecord(1, "S-1", T0, decided(1, "S-1")))])
    with pytest.raises(ConflictError):
        await repo.apply(account_id, [
            PositionUpserted(position("O-9")),
            TradeRealized(trade("T-9", "10", T0)),
            DecisionRecorded(DecisionRecord(1, "S-other", T0, refusal("S-other"))),  # seq 1 is taken
        ])
    snap = await repo.load(account_id, since=T0 - timedelta(days=1), decision_limit=10)
    assert snap.positions == () and snap.realized_total == 0 and len(snap.decisions) == 1


async def test_decision_limit_keeps_the_most_recent(repo, account_id):
    await repo.ensure_account(account(account_id))
    records = [DecisionRecord(i, f"S-{i}", T0 + timedelta(seconds=i), decided(i, f"S-{i}")) for i in range(1, 6)]
    await repo.apply(account_id, [DecisionRecorded(r) for r in records])
    snap = await repo.load(account_id, since=T0, decision_limit=2)
    assert snap.decisions == tuple(records[3:]) and snap.last_seq == 5


async def test_accounts_are_isolated(repo, account_id):
    other = account_id + "-b"
    await repo.ensure_account(account(account_id))
    await repo.ensure_account(account(other, "500"))
    await repo.apply(account_id, [TradeRealized(trade("T-1", "10", T0)), PositionUpserted(position("O-1"))])
    snap = await repo.load(other, since=T0 - timedelta(days=1), decision_limit=10)
    assert snap.realized_total == 0 and snap.positions == () and snap.account.opening_balance == D(500)


# --- restart: a rebuilt engine makes the same decisions ----------------------------------------------

BOOK = {"EURUSD": ("1.10000", "1.10010"), "GBPUSD": ("1.25000", "1.25010"), "AUDUSD": ("0.65000", "0.65010"),
        "USDJPY": ("149.995", "150.005")}


def ticks(at: datetime) -> list[PriceTick]:
    return [tick(s, b, a, at=at) for s, (b, a) in BOOK.items()]


def sig(n: int, symbol: str, direction: str = "LONG", tp: str | None = "40") -> Signal:
    return signal(f"S-{n}", symbol=symbol, direction=direction, tp=tp, entry=BOOK[symbol][1], timeframe="M5",
                  confidence=0.7)


async def test_rebuilt_engine_decides_like_the_one_that_never_stopped(repo, account_id):
    from eafix.contracts import ExecutionReport, TradeClosed

    config = RiskConfig(account_id=account_id, max_open_positions=3, currency_exposure_cap_percent=D("5.0"))
    clock = TestClock(T0)
    live = await restore_engine(repo, config, clock)
    for t in ticks(clock.now()):
        live.on_tick(t)

    first = live.on_signal(sig(1, "EURUSD"))
    await persist_changes(live, repo)
    live.on_execution_report(ExecutionReport(client_order_id=first.client_order_id, broker_order_id="B-1",
                                             symbol="EURUSD", status="FILLED", filled_lots=str(first.lots),
                                             avg_price="1.10012", commission="3.50", reason=None))
    live.on_signal(sig(2, "GBPUSD", tp="20"))  # rejected (TP/SL 1.0)
    second = live.on_signal(sig(3, "USDJPY"))
    await persist_changes(live, repo)
    clock.advance(3600)
    live.on_trade_closed(TradeClosed(
        trade_id="T-1", client_order_id=first.client_order_id, symbol="EURUSD", direction="LONG",
        lots=str(first.lots), open_price="1.10012", close_price="1.09812", open_time=T0, close_time=clock.now(),
        pips="-20.0", pnl="-203.50", account_currency="USD", close_reason="SL"))
    await persist_changes(live, repo)

    # "restart": a new engine from the repository, fed the current quotes again
    restarted = await restore_engine(repo, config, clock)
    for engine in (live, restarted):
        for t in ticks(clock.now()):
            engine.on_tick(t)
    assert restarted.portfolio.balance == live.portfolio.balance == D("9796.50")
    assert restarted.portfolio.positions == live.portfolio.positions
    assert restarted.portfolio.daily_pnl(T0.date()) == D("-203.50")

    # redelivered signals get their recorded answers; new ones are decided identically
    assert restarted.on_signal(sig(1, "EURUSD")) == first
    assert restarted.on_signal(sig(3, "USDJPY")) == second
    later = [sig(4, "AUDUSD"), sig(5, "USDJPY", "SHORT"), sig(6, "EURUSD", tp=None), sig(7, "GBPUSD")]
    decisions_live = [live.on_signal(s) for s in later]
    decisions_restarted = [restarted.on_signal(s) for s in later]
    assert decisions_restarted == decisions_live
    # and they are not all the same outcome, so the comparison covers both paths
    assert {type(d) for d in decisions_live} == {OrderIntent, RiskRejected}


# --- PostgreSQL specifics ------------------------------------------------------------------------


async def test_decisions_and_ledger_are_append_only(pg_pool, account_id):
    repo = PostgresPortfolioRepository(pg_pool)
    await repo.ensure_account(account(account_id))
    await repo.apply(account_id, [DecisionRecorded(DecisionRecord(1, "S-1", T0, decided(1, "S-1"))),
                                  TradeRealized(trade("T-1", "5", T0))])
    async with pg_pool.connection() as conn:
        for statement in ("UPDATE risk.decisions SET outcome = 'REJECTED' WHERE account_id = %s",
                          "DELETE FROM risk.decisions WHERE account_id = %s",
                          "UPDATE risk.realized_trades SET pnl = 0 WHERE account_id = %s",
                          "DELETE FROM risk.realized_trades WHERE account_id = %s"):
            with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="append-only"):
                async with conn.transaction():
                    await conn.execute(statement, (account_id,))
    snap = await repo.load(account_id, since=T0 - timedelta(days=1), decision_limit=5)
    assert len(snap.decisions) == 1 and snap.realized_total == D(5)


async def test_migration_is_recorded_money_columns_are_numeric_and_reapplying_is_harmless(risk_schema):
    with psycopg.connect(risk_schema.url, user=risk_schema.user, password=risk_schema.password,
                         autocommit=True) as conn:
        recorded = conn.execute("SELECT version, name FROM public.eafix_schema_migrations "
                                "WHERE schema_name = 'risk' ORDER BY version").fetchall()
        assert recorded == [(1, "portfolio")]
        for path in sorted(MIGRATIONS.glob("*.sql")):
            with conn.transaction():
                conn.execute("SET LOCAL search_path TO risk")
                conn.execute(path.read_text())  # written idempotent: a second application changes nothing
        rows = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'risk'"
        ).fetchall()
    types = {(t, c): d for t, c, d in rows}
    assert {d for d in types.values()} & {"real", "double precision"} == set()
    for column in (("accounts", "opening_balance"), ("positions", "lots"), ("positions", "risk_per_lot"),
                   ("positions", "entry_price"), ("realized_trades", "pnl")):
        assert types[column] == "numeric", column
