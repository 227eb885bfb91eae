"""execution-engine repositories: the same behavioural tests against the in-memory and the PostgreSQL one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from eafix.contracts import OrderIntent, PriceTick
from eafix.contracts.primitives import CloseReason, Direction, ExecutionStatus
from eafix.execution_engine.brokers import Costs, PaperBroker
from eafix.execution_engine.domain import (
    ChangeSet,
    ExecutionEngine,
    Fill,
    FillKind,
    Order,
    Position,
    PositionStatus,
    Trade,
    Transition,
)
from eafix.execution_engine.repository import (
    IdempotencyConflict,
    InMemoryExecutionRepository,
    PostgresExecutionRepository,
    RepositoryError,
)
from eafix.runtime.clock import TestClock

pytestmark = pytest.mark.anyio

S = ExecutionStatus
T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
@pytest.fixture
async def pg_repo(fresh_db_url) -> AsyncIterator[PostgresExecutionRepository]:
    pool = AsyncConnectionPool(fresh_db_url, min_size=1, max_size=2, open=False)
    await pool.open()
    try:
        yield PostgresExecutionRepository(pool)
    finally:
        await pool.close()


@pytest.fixture(params=["memory", "postgres"])
def repo(request):
    if request.param == "memory":
        return InMemoryExecutionRepository()
    return request.getfixturevalue("pg_repo")


def make_order(n: int = 1, *, status: ExecutionStatus = S.PENDING, at: datetime = T0, symbol: str = "EURUSD",
               key: str | None = None, version: int = 1) -> Order:
    cid = f"O-{n:04d}"
    return Order(client_order_id=cid, idempotency_key=key or f"K-{n:04d}", signal_id=f"SIG-{n}", symbol=symbol,
                 direction=Direction.SHORT, lots=D("0.35"), sl_pips=D("25.5"), tp_pips=D("51"),
                 entry_price=D("157.312"), risk_percent=D("1.5"), account_balance=D("8500.00"),
                 account_currency="EUR", status=status, created_at=at, updated_at=at, version=version)


def created(order: Order) -> ChangeSet:
    return ChangeSet(orders=[order], transitions=[Transition(order.client_order_id, order.version, "CREATE", None,
                                                             order.status, order.created_at)])


def make_position(n: int = 1, *, version: int = 1, open_time: datetime = T0) -> Position:
    cid = f"O-{n:04d}"
    return Position(position_id=cid, client_order_id=cid, symbol="USDJPY", direction=Direction.SHORT,
                    account_currency="EUR", lots=D("0.35"), open_notional=D("55.05920"), open_price=D("157.312"),
                    sl_price=D("157.567"), tp_price=D("156.802"), open_time=open_time, commission=D("2.45"),
                    version=version, broker_order_id="48213391")


async def test_orders_round_trip_exactly(repo):
    order = replace(make_order(), status=S.PARTIAL, version=4, broker_order_id="48213391", filled_lots=D("0.10"),
                    fill_notional=D("15.7312"), commission=D("0.70000001"), reason=None,
                    submitted_at=T0 + timedelta(microseconds=250), acknowledged_at=T0 + timedelta(seconds=1))
    await repo.apply(ChangeSet(orders=[order]))
    stored = await repo.get_order(order.client_order_id)
    assert stored == order
    # exact decimals, scale included: "0.35" stays "0.35", "8500.00" stays "8500.00"
    assert [str(getattr(stored, f)) for f in ("lots", "sl_pips", "account_balance", "commission", "fill_notional")] == [
        "0.35", "25.5", "8500.00", "0.70000001", "15.7312"]
    assert stored.direction is Direction.SHORT and stored.status is S.PARTIAL
    assert stored.submitted_at == T0 + timedelta(microseconds=250)
    assert await repo.get_order_by_idempotency_key("K-0001") == order
    assert await repo.get_order("nope") is None and await repo.get_order_by_idempotency_key("nope") is None


async def test_order_snapshot_replaced_only_by_a_newer_version(repo):
    order = make_order()
    await repo.apply(created(order))
    newer = replace(order, status=S.SUBMITTED, version=2, submitted_at=T0, updated_at=T0 + timedelta(seconds=1))
    await repo.apply(ChangeSet(orders=[newer]))
    stale = replace(order, status=S.REJECTED, version=2, reason="late duplicate")
    await repo.apply(ChangeSet(orders=[stale]))
    assert (await repo.get_order(order.client_order_id)) == newer
    # identity columns never change, whatever a snapshot says
    await repo.apply(ChangeSet(orders=[replace(newer, version=3, lots=D("9.99"), symbol="GBPUSD")]))
    stored = await repo.get_order(order.client_order_id)
    assert (stored.version, stored.lots, stored.symbol) == (3, D("0.35"), "EURUSD")


async def test_idempotency_key_belongs_to_one_order(repo):
    await repo.apply(created(make_order(1, key="K-same")))
    with pytest.raises(IdempotencyConflict):
        await repo.apply(ChangeSet(orders=[make_order(2, key="K-same")], trades=[]))
    assert await repo.get_order("O-0002") is None


async def test_a_failed_change_set_leaves_nothing(repo):
    await repo.apply(created(make_order(1, key="K-same")))
    bad = ChangeSet(orders=[make_order(3), make_order(2, key="K-same")],
                    positions=[make_position(3)])
    with pytest.raises(IdempotencyConflict):
        await repo.apply(bad)
    assert await repo.get_order("O-0003") is None
    assert await repo.get_position("O-0003") is None


async def test_transition_or_fill_of_an_unknown_order_is_refused(repo):
    with pytest.raises(RepositoryError):
        await repo.apply(ChangeSet(transitions=[Transition("O-404", 1, "CREATE", None, S.PENDING, T0)]))
    with pytest.raises(RepositoryError):
        await repo.apply(ChangeSet(fills=[Fill("F-1", "O-404", FillKind.OPEN, "EURUSD", Direction.LONG, D("1"),
                                               D("1.1"), D("0"), T0)]))


async def test_transitions_and_fills_are_append_only_and_idempotent(repo):
    order = make_order()
    await repo.apply(created(order))
    t2 = Transition(order.client_order_id, 2, "SUBMIT", S.PENDING, S.SUBMITTED, T0, None)
    fill = Fill("F-1", order.client_order_id, FillKind.OPEN, "EURUSD", Direction.SHORT, D("0.35"), D("157.31200"),
                D("2.45"), T0 + timedelta(seconds=1))
    await repo.apply(ChangeSet(transitions=[t2], fills=[fill]))
    await repo.apply(ChangeSet(transitions=[replace(t2, detail="changed")], fills=[replace(fill, price=D("9"))]))
    assert [t.event for t in await repo.list_transitions(order.client_order_id)] == ["CREATE", "SUBMIT"]
    assert (await repo.list_transitions(order.client_order_id))[1].detail is None
    [stored] = await repo.list_fills(order.client_order_id)
    assert stored == fill and str(stored.price) == "157.31200"


async def test_list_orders_filters_and_limits_newest_first(repo):
    for n in range(1, 6):
        status = S.FILLED if n % 2 else S.REJECTED
        await repo.apply(created(make_order(n, status=status, at=T0 + timedelta(minutes=n),
                                            symbol="EURUSD" if n < 4 else "GBPUSD")))
    assert [o.client_order_id for o in await repo.list_orders()] == ["O-0005", "O-0004", "O-0003", "O-0002", "O-0001"]
    assert [o.client_order_id for o in await repo.list_orders(status=S.FILLED)] == ["O-0005", "O-0003", "O-0001"]
    assert [o.client_order_id for o in await repo.list_orders(symbol="GBPUSD")] == ["O-0005", "O-0004"]
    assert [o.client_order_id for o in await repo.list_orders(status=S.REJECTED, symbol="EURUSD")] == ["O-0002"]
    assert [o.client_order_id for o in await repo.list_orders(limit=2)] == ["O-0005", "O-0004"]
    with pytest.raises(ValueError):
        await repo.list_orders(limit=0)


async def test_positions_versions_and_filters(repo):
    first = make_position(1)
    await repo.apply(ChangeSet(positions=[first, make_position(2, open_time=T0 + timedelta(minutes=1))]))
    closed = replace(first, status=PositionStatus.CLOSED, version=2, close_price=D("157.567"),
                     close_time=T0 + timedelta(minutes=47), close_reason=CloseReason.SL, pips=D("-25.5"),
                     pnl=D("-56.42"), commission=D("2.45"))
    await repo.apply(ChangeSet(positions=[closed]))
    await repo.apply(ChangeSet(positions=[first]))  # stale version 1: ignored
    assert await repo.get_position("O-0001") == closed
    assert [p.position_id for p in await repo.list_positions(status=PositionStatus.OPEN)] == ["O-0002"]
    assert [p.position_id for p in await repo.list_positions()] == ["O-0002", "O-0001"]
    assert [p.position_id for p in await repo.list_positions(status=PositionStatus.CLOSED, symbol="USDJPY")] == [
        "O-0001"]
    assert await repo.get_position("nope") is None


async def test_trades_round_trip_and_are_written_once(repo):
    gross = D(-9345) / D("157.561") / D("1.04")  # 28 significant digits
    trade = Trade(trade_id="O-0001", client_order_id="O-0001", symbol="USDJPY", direction=Direction.SHORT,
                  lots=D("0.35"), open_price=D("157.312"), close_price=D("157.567"), open_time=T0,
                  close_time=T0 + timedelta(minutes=47, seconds=38), pips=D("-25.5"), gross_pnl=gross,
                  commission=D("2.45"), pnl=D("-59.48"), account_currency="EUR", close_reason=CloseReason.SL)
    await repo.apply(ChangeSet(trades=[trade]))
    await repo.apply(ChangeSet(trades=[replace(trade, pnl=D("1"))]))
    stored = await repo.get_trade("O-0001")
    assert stored == trade and str(stored.gross_pnl) == str(gross) and str(stored.pnl) == "-59.48"
    assert [t.trade_id for t in await repo.list_trades(symbol="USDJPY")] == ["O-0001"]
    assert await repo.list_trades(symbol="EURUSD") == []


@pytest.mark.parametrize("reason", list(CloseReason))
async def test_every_close_reason_is_stored(repo, reason):
    # REVERSE came with TradeClosed 1.1: trades migration 0003 widened both tables' checks
    position = replace(make_position(1), status=PositionStatus.CLOSED, version=2, close_price=D("157.567"),
                       close_time=T0 + timedelta(minutes=5), close_reason=reason, pips=D("1.0"), pnl=D("1"))
    trade = Trade(trade_id="O-0001", client_order_id="O-0001", symbol="USDJPY", direction=Direction.SHORT,
                  lots=D("0.35"), open_price=D("157.312"), close_price=D("157.567"), open_time=T0,
                  close_time=T0 + timedelta(minutes=5), pips=D("1.0"), gross_pnl=D("1"), commission=D("0"),
                  pnl=D("1"), account_currency="EUR", close_reason=reason)
    await repo.apply(ChangeSet(positions=[position], trades=[trade]))
    assert (await repo.get_trade("O-0001")).close_reason is reason
    assert (await repo.get_position("O-0001")).close_reason is reason


async def test_engine_changes_round_trip_and_restore(repo):
    clock = TestClock(T0)
    engine = ExecutionEngine(clock, PaperBroker(Costs(commission_per_lot=D("7"))))
    engine.on_tick(PriceTick(symbol="EURUSD", ts=T0, bid=D("1.03430"), ask=D("1.03441"), volume=None))
    for n in (1, 2):
        cid = f"O-{n:04d}"
        engine.on_order_intent(OrderIntent(
            client_order_id=cid, idempotency_key=cid, signal_id=f"S-{n}", symbol="EURUSD", direction="LONG",
            lots=D("1.00"), sl_pips=D("20"), tp_pips=D("40"), entry_price=D("1.03437"), risk_percent=D("2.0"),
            account_balance=D("10000.00"), account_currency="USD"))
    clock.advance(3600)
    engine.on_tick(PriceTick(symbol="EURUSD", ts=clock.now(), bid=D("1.03686"), ask=D("1.03696"), volume=None))
    engine.close_position("O-0001")
    await repo.apply(engine.drain_changes())

    closed = await repo.get_order("O-0001")
    assert closed.status is S.CLOSED and closed.commission == D("7.00")
    assert [t.to_status for t in await repo.list_transitions("O-0001")] == [
        S.PENDING, S.SUBMITTED, S.SUBMITTED, S.FILLED, S.CLOSED]
    assert [f.kind for f in await repo.list_fills("O-0001")] == [FillKind.OPEN, FillKind.CLOSE]
    trade = await repo.get_trade("O-0001")
    assert (trade.pips, trade.pnl) == (D("24.5"), D("238.00"))  # 245.00 - 7.00, as the contract example

    state = await repo.load_open_state()
    assert [o.client_order_id for o in state.orders] == ["O-0002"]
    assert [p.position_id for p in state.positions] == ["O-0002"]
    assert state.fill_ids == ["O-0002:open"]

    # a restarted engine carries on from storage
    restarted = ExecutionEngine(clock, PaperBroker())
    restarted.restore(state.orders, state.positions, state.fill_ids)
    out = restarted.on_tick(PriceTick(symbol="EURUSD", ts=clock.now() + timedelta(seconds=1), bid=D("1.03841"),
                                      ask=D("1.03850"), volume=None))
    assert [getattr(o, "close_reason", None) for o in out][-1] is CloseReason.TP
    await repo.apply(restarted.drain_changes())
    assert (await repo.get_position("O-0002")).status is PositionStatus.CLOSED
    assert (await repo.load_open_state()).orders == []


async def test_postgres_refuses_updates_of_append_only_rows(pg_repo, fresh_db_url):
    order = make_order()
    await pg_repo.apply(created(order))
    async with await psycopg.AsyncConnection.connect(fresh_db_url) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            await conn.execute("UPDATE orders.transitions SET detail = 'x'")
        await conn.rollback()
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            await conn.execute("DELETE FROM orders.transitions")


async def test_postgres_money_columns_are_numeric(pg_repo, fresh_db_url):
    async with await psycopg.AsyncConnection.connect(fresh_db_url) as conn:
        cur = await conn.execute(
            "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema IN ('orders', 'trades') AND data_type IN ('real', 'double precision')")
        assert await cur.fetchall() == []
        cur = await conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'trades' "
            "AND table_name = 'trades' AND data_type = 'numeric' ORDER BY column_name")
        assert [r[0] for r in await cur.fetchall()] == [
            "close_price", "commission", "gross_pnl", "lots", "open_price", "pips", "pnl"]
