"""Stop and reverse across the services: a strategy's `stop_and_reverse` -> Signal.reverse ->
risk-manager approves the reverse although the symbol's one position slot is taken, copying `reverse`
into the OrderIntent -> execution-engine closes the open opposite position (CloseReason REVERSE) and
opens the new one; in the backtest every trade but the last ends in a REVERSE at the next one's entry."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal as D

from eafix.backtest.data import load
from eafix.backtest.runner import run
from eafix.contracts import OrderIntent, RiskRejected, TradeClosed
from eafix.contracts.primitives import CloseReason, Direction, ExecutionStatus, RiskRejectReason
from eafix.contracts.strategies import load_strategies_text
from eafix.execution_engine.brokers import Costs, PaperBroker
from eafix.execution_engine.domain import ExecutionEngine
from eafix.risk_manager.config import RiskConfig
from eafix.risk_manager.engine import RiskEngine
from eafix.runtime.clock import TestClock
from service.factories import T0, intent, signal, tick


def reversing(event):
    """The same event with `reverse: true`, through validation (as a consumer reads it)."""
    return type(event).model_validate({**event.model_dump(mode="json"), "reverse": True})


def _paper() -> tuple[ExecutionEngine, TestClock]:
    clock = TestClock(T0)
    return ExecutionEngine(clock, PaperBroker(Costs(slippage_pips=D(0), commission_per_lot=D(0)))), clock


def test_a_reverse_intent_closes_the_opposite_position_first_and_leaves_same_side_ones():
    engine, clock = _paper()
    engine.on_tick(tick("EURUSD", "1.10000", "1.10010"))
    engine.on_tick(tick("GBPUSD", "1.25000", "1.25010"))
    engine.on_order_intent(intent(1, direction="LONG", lots="0.50"))
    engine.on_order_intent(intent(2, symbol="GBPUSD", direction="LONG"))  # another symbol: untouched
    clock.advance(3600)
    engine.on_tick(tick("EURUSD", "1.10200", "1.10210", at=clock.now()))
    out = engine.on_order_intent(reversing(intent(3, direction="SHORT", lots="0.30")))
    [closed] = [o for o in out if isinstance(o, TradeClosed)]
    assert (closed.trade_id, closed.close_reason, closed.direction) == (
        "O-20250106T120000Z-000001", CloseReason.REVERSE, Direction.LONG)
    # a LONG opened at the ask 1.10010 closes at the bid 1.10200: +19.0 pips x 0.5 lots x 100,000 x 0.0001 = 95.00
    assert (closed.close_price, closed.pips, closed.pnl) == (D("1.10200"), D("19.0"), D("95.00"))
    assert out.index(closed) == 1  # the close (CLOSED report, then the trade) comes before the new order
    assert [o.status for o in out if not isinstance(o, TradeClosed)][-1] is ExecutionStatus.FILLED
    assert {p.direction for p in engine.open_positions("EURUSD")} == {Direction.SHORT}
    assert len(engine.open_positions("GBPUSD")) == 1
    # a second reverse in the same direction finds nothing to close
    out = engine.on_order_intent(reversing(intent(4, direction="SHORT", lots="0.10")))
    assert not [o for o in out if isinstance(o, TradeClosed)]


def test_risk_approves_a_reverse_in_the_taken_slot_and_copies_the_flag():
    clock = TestClock(T0)
    risk = RiskEngine(RiskConfig(), clock)  # max_positions_per_symbol 1
    risk.on_tick(tick("EURUSD", "1.10000", "1.10010"))
    first = risk.on_signal(signal("SIG-1", direction="LONG"))
    assert isinstance(first, OrderIntent) and first.reverse is None
    assert "reverse" not in first.model_dump(mode="json")  # a 1.0 consumer reads it unchanged
    plain = risk.on_signal(signal("SIG-2", direction="SHORT"))
    assert isinstance(plain, RiskRejected) and RiskRejectReason.MAX_OPEN_POSITIONS in plain.reasons
    flipped = risk.on_signal(reversing(signal("SIG-3", direction="SHORT")))
    assert isinstance(flipped, OrderIntent) and flipped.reverse is True
    # the same direction again is not a reverse of anything: the slot is taken
    again = risk.on_signal(reversing(signal("SIG-4", direction="LONG")))
    assert isinstance(again, RiskRejected)


SMA_CROSS = """\
version: 1
defaults: {min_confidence: 0.0, duplicate_window_seconds: 0, take_profit_ratio: 2.0,
           stop: {min_pips: 1000, max_pips: 1000, fallback_pips: 1000}}
strategies:
  sma_cross: {type: ma_crossover, fast: sma(10), slow: sma(20), stop_and_reverse: true}
"""


def test_the_backtest_reverses_at_every_cross(tmp_path):
    from eafix.backtest.data import write_sample

    path = write_sample(tmp_path / "s.csv", seed=3, bars=1500)
    result = asyncio.run(run(load(path), load_strategies_text(SMA_CROSS), spread_pips=D(0), close_at_end=True))
    trades = sorted(result.trades, key=lambda t: t.open_time)
    assert result.rejected == 0 and len(trades) == result.orders == result.signals > 20
    for before, after in zip(trades, trades[1:], strict=False):
        assert before.close_reason is CloseReason.REVERSE
        assert after.direction is not before.direction  # sides alternate
        assert after.open_time == before.close_time  # the next bar's open is the signal bar's close time
        assert after.open_price == before.close_price  # with no spread: the close, which is the next open
    assert trades[-1].close_reason is CloseReason.MANUAL  # --close-at-end


def test_the_bar_broker_closes_a_reverse_with_the_new_order_at_the_next_open():
    from eafix.execution_engine.brokers import SimulatedBarBroker
    from service.factories import bar

    clock = TestClock(T0)
    engine = ExecutionEngine(clock, SimulatedBarBroker(Costs(slippage_pips=D(0), commission_per_lot=D(0)),
                                                       spread_pips=D("1.0")))
    engine.on_bar(bar("1.10000", "1.10050", "1.09950", "1.10000", timeframe="H1"))
    engine.on_order_intent(intent(1, direction="LONG", lots="1.00", sl="20", tp="40"))
    second = T0 + timedelta(hours=1)
    engine.on_bar(bar("1.10010", "1.10060", "1.09990", "1.10040", timeframe="H1", opened=second))  # fills LONG
    clock.set(second + timedelta(hours=1))
    out = engine.on_order_intent(reversing(intent(2, direction="SHORT", lots="1.00", sl="20", tp="40")))
    assert not [o for o in out if isinstance(o, TradeClosed)]  # it waits for the next bar, as the order does
    third = second + timedelta(hours=1)
    # this bar reaches the LONG's stop (1.10011 - 0.0020): the reverse at the open comes first
    out = engine.on_bar(bar("1.10030", "1.10035", "1.09700", "1.09800", timeframe="H1", opened=third))
    [closed] = [o for o in out if isinstance(o, TradeClosed)]
    # LONG opened at 1.10010 + 1 pip spread = 1.10020, closes at the bid open 1.10030: +1.0 pip
    assert (closed.close_reason, closed.close_price, closed.close_time, closed.pips) == (
        CloseReason.REVERSE, D("1.10030"), third, D("1.0"))
    [short] = engine.open_positions("EURUSD")
    assert (short.direction, short.open_price, short.open_time) == (Direction.SHORT, D("1.10030"), third)
