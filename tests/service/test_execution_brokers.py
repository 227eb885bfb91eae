"""execution-engine brokers: paper broker on ticks, simulated broker on bars, pips and P&L (hand-computed)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest

from eafix.contracts import Bar, ExecutionReport, OrderIntent, TradeClosed
from eafix.contracts.primitives import CloseReason, Direction, ExecutionStatus, Timeframe
from eafix.execution_engine.brokers import Costs, FaultSchedule, FillAt, PaperBroker, SimulatedBarBroker
from eafix.execution_engine.domain import (
    ExecutionEngine,
    PositionClosedError,
    UnknownPositionError,
    classify_close_reason,
    pips_between,
    protective_levels,
)
from eafix.instruments import DEFAULT_INSTRUMENTS
from eafix.runtime.clock import TestClock
from service.factories import T0, bar, intent, tick

S = ExecutionStatus
LONG, SHORT = Direction.LONG, Direction.SHORT


def order(n: int = 1, **fields) -> OrderIntent:
    """An intent with this module's id O-0001 (also the key), entry, risk and balance."""
    return intent(n, client_order_id=f"O-{n:04d}", entry="1.1", risk_percent="1.0", balance="10000", **fields)


def minute(n: int, o: str, h: str, low: str, c: str, **fields) -> Bar:
    """The M1 bar opened n minutes after T0."""
    return bar(o, h, low, c, opened=T0 + timedelta(minutes=n), volume=100, **fields)


def reports(outputs) -> list[ExecutionReport]:
    return [o for o in outputs if isinstance(o, ExecutionReport)]


def trades(outputs) -> list[TradeClosed]:
    return [o for o in outputs if isinstance(o, TradeClosed)]


# --- pips and close reasons ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("symbol", "direction", "open_price", "close_price", "expected"), [
    ("EURUSD", LONG, "1.10000", "1.101225", "12.3"),  # 12.25 -> 12.3 (half-up, not half-even's 12.2)
    ("EURUSD", LONG, "1.10000", "1.101224", "12.2"),  # 12.24
    ("EURUSD", SHORT, "1.101225", "1.10000", "12.3"),  # (open - close) / pip
    ("EURUSD", LONG, "1.101225", "1.10000", "-12.3"),  # a tie rounds away from zero
    ("EURUSD", SHORT, "1.10000", "1.10000", "0.0"),
    ("USDJPY", LONG, "150.000", "150.1225", "12.3"),  # JPY pip 0.01
    ("USDJPY", SHORT, "157.312", "157.567", "-25.5"),
    ("GBPJPY", LONG, "190.00", "190.05", "5.0"),
    ("EURUSD", LONG, "1.03441", "1.03686", "24.5"),
])
def test_pips_half_up_to_a_tenth(symbol, direction, open_price, close_price, expected):
    result = pips_between(DEFAULT_INSTRUMENTS[symbol], direction, D(open_price), D(close_price))
    assert str(result) == expected


@pytest.mark.parametrize(("symbol", "direction", "open_price", "sl", "tp"), [
    ("EURUSD", LONG, "1.100005", "1.09801", "1.10401"),  # 1.098005 / 1.104005 half-up to 5 decimals
    ("USDJPY", SHORT, "150.0004", "150.200", "149.600"),  # to 3 decimals
    ("XAUUSD", LONG, "2000.005", "1999.81", "2000.41"),  # pip 0.01, to 2 decimals
])
def test_protective_levels_lie_on_the_price_grid(symbol, direction, open_price, sl, tp):
    levels = protective_levels(DEFAULT_INSTRUMENTS[symbol], direction, D(open_price), D(20), D(40))
    assert tuple(map(str, levels)) == (sl, tp)


@pytest.mark.parametrize(("raw", "expected"), [
    ("tp", CloseReason.TP), ("TAKE_PROFIT", CloseReason.TP), ("sl", CloseReason.SL), ("Stop_Loss", CloseReason.SL),
    ("manual", CloseReason.MANUAL), ("timeout", CloseReason.TIMEOUT), ("rejected", CloseReason.BROKER_REJECT),
    ("broker_reject", CloseReason.BROKER_REJECT), ("UNKNOWN", CloseReason.MANUAL), ("", CloseReason.MANUAL),
    (None, CloseReason.MANUAL),
])
def test_close_reason_classification(raw, expected):
    assert classify_close_reason(raw) is expected


# --- paper broker -------------------------------------------------------------------------------------------------

def paper(slippage: str = "0.5", commission: str = "7",
          close_commission: str = "0") -> tuple[ExecutionEngine, TestClock]:
    clock = TestClock(T0)
    costs = Costs(slippage_pips=D(slippage), commission_per_lot=D(commission),
                  close_commission_per_lot=D(close_commission))
    return ExecutionEngine(clock, PaperBroker(costs)), clock


def test_paper_long_fills_at_ask_plus_slippage_with_commission():
    engine, clock = paper()
    engine.on_tick(tick("EURUSD", "1.10000", "1.10020"))
    out = engine.on_order_intent(order(1, lots="0.35"))
    assert [r.status for r in out] == [S.PENDING, S.SUBMITTED, S.SUBMITTED, S.FILLED]
    filled = out[-1]
    # ask 1.10020 + 0.5 pip (0.00005) = 1.10025; commission 7 x 0.35 = 2.45
    assert (filled.avg_price, filled.filled_lots, filled.commission) == (D("1.10025"), D("0.35"), D("2.45"))
    assert filled.broker_order_id is not None
    position = engine.position("O-0001")
    assert (position.open_price, position.sl_price, position.tp_price) == (D("1.10025"), D("1.09825"), D("1.10425"))
    assert position.open_time == T0


def test_paper_short_fills_at_bid_minus_slippage():
    engine, _ = paper()
    engine.on_tick(tick("EURUSD", "1.10000", "1.10020"))
    filled = engine.on_order_intent(order(1, direction="SHORT"))[-1]
    assert (filled.status, filled.avg_price, filled.commission) == (S.FILLED, D("1.09995"), D("7.00"))
    position = engine.position("O-0001")
    assert (position.sl_price, position.tp_price) == (D("1.10195"), D("1.09595"))


def test_paper_order_before_any_tick_fills_on_the_first_tick():
    engine, clock = paper(slippage="0")
    out = engine.on_order_intent(order(1))
    assert [r.status for r in out] == [S.PENDING, S.SUBMITTED, S.SUBMITTED]
    later = T0 + timedelta(seconds=3)
    filled = engine.on_tick(tick("EURUSD", "1.20000", "1.20010", at=later))
    assert [(r.status, r.avg_price) for r in reports(filled)] == [(S.FILLED, D("1.20010"))]
    assert engine.position("O-0001").open_time == later


def test_paper_long_stop_loss_on_the_tick_that_crosses():
    engine, clock = paper()
    engine.on_tick(tick("EURUSD", "1.10000", "1.10020"))
    engine.on_order_intent(order(1))  # open 1.10025, SL 1.09825, TP 1.10425
    assert engine.on_tick(tick("EURUSD", "1.09826", "1.09846", at=T0 + timedelta(seconds=1))) == []
    out = engine.on_tick(tick("EURUSD", "1.09825", "1.09845", at=T0 + timedelta(seconds=2)))
    assert [r.status for r in reports(out)] == [S.CLOSED]
    [trade] = trades(out)
    # SL is a market exit: bid 1.09825 - 0.5 pip = 1.09820; (1.09820 - 1.10025) / 0.0001 = -20.5 pips
    # P&L: -0.00205 x 100,000 x 1 lot = -205.00 USD, minus 7.00 commission = -212.00
    assert (trade.close_reason, trade.close_price, trade.pips, trade.pnl) == (
        CloseReason.SL, D("1.09820"), D("-20.5"), D("-212.00"))
    assert trade.close_time == T0 + timedelta(seconds=2) and trade.open_time == T0
    assert engine.open_positions() == []
    assert engine.on_tick(tick("EURUSD", "1.09000", "1.09020", at=T0 + timedelta(seconds=3))) == []  # closed once


def test_paper_long_take_profit_needs_the_bid():
    engine, _ = paper()
    engine.on_tick(tick("EURUSD", "1.10000", "1.10020"))
    engine.on_order_intent(order(1))  # TP 1.10425
    # only the ask reached it
    assert engine.on_tick(tick("EURUSD", "1.10420", "1.10430", at=T0 + timedelta(seconds=1))) == []
    out = engine.on_tick(tick("EURUSD", "1.10430", "1.10450", at=T0 + timedelta(seconds=2)))
    [trade] = trades(out)
    # TP is a limit: the bid 1.10430, no slippage; 40.5 pips; 405.00 - 7.00 = 398.00
    assert (trade.close_reason, trade.close_price, trade.pips, trade.pnl) == (
        CloseReason.TP, D("1.10430"), D("40.5"), D("398.00"))


def test_paper_short_levels_use_the_ask():
    engine, _ = paper(slippage="0", commission="0")
    engine.on_tick(tick("EURUSD", "1.10000", "1.10020"))
    engine.on_order_intent(order(1, direction="SHORT"))  # open 1.10000, SL 1.10200, TP 1.09600
    # bid below TP, ask not
    assert engine.on_tick(tick("EURUSD", "1.09590", "1.09610", at=T0 + timedelta(seconds=1))) == []
    out = engine.on_tick(tick("EURUSD", "1.10185", "1.10200", at=T0 + timedelta(seconds=2)))  # ask reaches SL
    [trade] = trades(out)
    assert (trade.close_reason, trade.close_price, trade.pips, trade.pnl) == (
        CloseReason.SL, D("1.10200"), D("-20.0"), D("-200.00"))


def test_paper_close_commission_is_charged_on_the_close():
    engine, clock = paper(slippage="0", commission="5", close_commission="2")
    engine.on_tick(tick("EURUSD", "1.10000", "1.10000"))
    engine.on_order_intent(order(1, lots="2.00"))
    clock.advance(60)
    engine.on_tick(tick("EURUSD", "1.10100", "1.10100", at=clock.now()))
    out = engine.close_position("O-0001")
    [trade] = trades(out)
    # 10 pips x 2 lots = 0.001 x 200,000 = 200.00; commissions 5 x 2 + 2 x 2 = 14.00
    assert (trade.close_reason, trade.pnl) == (CloseReason.MANUAL, D("186.00"))
    assert reports(out)[0].commission == D("14.00")


def test_paper_manual_close_of_usdjpy_converts_to_usd():
    engine, clock = paper(slippage="0", commission="0")
    engine.on_tick(tick("USDJPY", "157.300", "157.312"))
    engine.on_order_intent(order(1, symbol="USDJPY", direction="SHORT", lots="0.35", sl="30"))
    clock.advance(47 * 60)
    engine.on_tick(tick("USDJPY", "157.555", "157.567", at=clock.now()))
    [trade] = trades(engine.close_position("O-0001"))
    # SHORT opened at the bid 157.300, closed at the ask 157.567: -26.7 pips;
    # -0.267 x 35,000 = -9,345 JPY at the mid 157.561 = -59.3104 USD
    assert (trade.open_price, trade.close_price, trade.pips, trade.pnl, trade.account_currency) == (
        D("157.300"), D("157.567"), D("-26.7"), D("-59.31"), "USD")


def test_pnl_in_a_third_currency_through_usd_and_direct():
    engine, clock = paper(slippage="0", commission="0")
    engine.on_tick(tick("EURUSD", "1.04000", "1.04000"))
    engine.on_tick(tick("USDJPY", "157.300", "157.312"))
    engine.on_order_intent(order(1, symbol="USDJPY", direction="SHORT", lots="0.35", sl="30", account="EUR"))
    clock.advance(60)
    engine.on_tick(tick("USDJPY", "157.555", "157.567", at=clock.now()))
    [trade] = trades(engine.close_position("O-0001"))
    # -9,345 JPY / 157.561 (JPY per USD) / 1.04 (USD per EUR) = -57.0292 EUR
    assert (trade.pnl, trade.account_currency) == (D("-57.03"), "EUR")

    engine, clock = paper(slippage="0", commission="0")
    engine.on_tick(tick("EURJPY", "163.500", "163.500"))
    engine.on_tick(tick("USDJPY", "157.300", "157.312"))
    engine.on_order_intent(order(2, symbol="USDJPY", direction="SHORT", lots="0.35", sl="30", account="EUR"))
    clock.advance(60)
    engine.on_tick(tick("USDJPY", "157.555", "157.567", at=clock.now()))
    [trade] = trades(engine.close_position("O-0002"))
    # -9,345 JPY / 163.5 (JPY per EUR) = -57.1560 EUR
    assert trade.pnl == D("-57.16")


def test_close_errors():
    engine, clock = paper()
    engine.on_tick(tick("EURUSD", "1.10000", "1.10020"))
    engine.on_order_intent(order(1))
    clock.advance(1)
    engine.close_position("O-0001")
    with pytest.raises(PositionClosedError):
        engine.close_position("O-0001")
    with pytest.raises(UnknownPositionError):
        engine.close_position("O-9999")


def test_close_time_is_after_open_time_even_in_the_same_instant():
    engine, _ = paper()
    engine.on_tick(tick("EURUSD", "1.10000", "1.10020"))
    engine.on_order_intent(order(1))
    [trade] = trades(engine.close_position("O-0001"))  # the clock has not moved
    assert trade.close_time > trade.open_time


def test_costs_refuse_negative_or_float_values():
    with pytest.raises(ValueError):
        Costs(slippage_pips=D("-1"))
    with pytest.raises(ValueError):
        Costs(commission_per_lot=7.0)  # type: ignore[arg-type]


def test_paper_fault_drill_rejects_and_leaves_unanswered_the_scheduled_orders():
    clock = TestClock(T0)
    engine = ExecutionEngine(clock, PaperBroker(faults=FaultSchedule(reject_every=3, ignore_every=2)),
                             ack_timeout=timedelta(seconds=5))
    engine.on_tick(tick("EURUSD", "1.10000"))
    finals = {n: reports(engine.on_order_intent(order(n)))[-1].status for n in range(1, 7)}
    # 3 and 6 rejected (6 is also even: the reject wins), 2 and 4 unanswered, 1 and 5 filled
    assert finals == {1: S.FILLED, 2: S.SUBMITTED, 3: S.REJECTED, 4: S.SUBMITTED, 5: S.FILLED, 6: S.REJECTED}
    assert engine.order("O-0003").reason == "paper broker fault schedule: order 3 rejected"
    assert engine.order("O-0002").acknowledged_at is None  # no ticket: the broker never answered
    clock.advance(5)
    assert [(r.client_order_id, r.status) for r in engine.on_clock(clock.now())] == [
        ("O-0002", S.TIMEOUT), ("O-0004", S.TIMEOUT)]
    engine.on_tick(tick("EURUSD", "1.10010", at=clock.now()))  # an abandoned order never fills later
    assert sorted(p.position_id for p in engine.open_positions()) == ["O-0001", "O-0005"]


@pytest.mark.parametrize("fields", [{"reject_every": -1}, {"ignore_every": 1.5}, {"reject_every": True}])
def test_fault_schedule_refuses_what_is_not_a_count(fields):
    with pytest.raises(ValueError, match="must be an integer >= 0"):
        FaultSchedule(**fields)


# --- simulated bar broker -----------------------------------------------------------------------------------------

def simulated(**kwargs) -> tuple[ExecutionEngine, TestClock]:
    clock = TestClock(T0)
    return ExecutionEngine(clock, SimulatedBarBroker(**kwargs)), clock


def test_market_order_fills_at_the_next_bar_open():
    engine, clock = simulated()
    assert engine.on_bar(minute(0, "1.10000", "1.10050", "1.09950", "1.10020")) == []
    clock.set(T0 + timedelta(minutes=1))  # the strategy acts at bar 0's close
    out = engine.on_order_intent(order(1))
    assert [r.status for r in out] == [S.PENDING, S.SUBMITTED, S.SUBMITTED]  # not filled at 1.10020
    out = engine.on_bar(minute(1, "1.10030", "1.10060", "1.10000", "1.10040"))
    assert [(r.status, r.avg_price) for r in reports(out)] == [(S.FILLED, D("1.10030"))]
    assert engine.position("O-0001").open_time == T0 + timedelta(minutes=1)


def test_fill_at_last_close_is_configurable():
    engine, clock = simulated(fill_at=FillAt.LAST_CLOSE)
    engine.on_bar(minute(0, "1.10000", "1.10050", "1.09950", "1.10020"))
    out = engine.on_order_intent(order(1))
    assert [(r.status, r.avg_price) for r in out][-1] == (S.FILLED, D("1.10020"))


def test_spread_and_slippage_on_bar_fills():
    engine, _ = simulated(spread_pips=D("1.5"), costs=Costs(slippage_pips=D("0.5")))
    engine.on_bar(minute(0, "1.10000", "1.10050", "1.09950", "1.10020"))
    engine.on_order_intent(order(1))
    engine.on_order_intent(order(2, direction="SHORT"))
    out = engine.on_bar(minute(1, "1.10030", "1.10060", "1.10000", "1.10040"))
    # LONG buys the ask: 1.10030 + 1.5 pip spread + 0.5 pip slippage = 1.10050; SHORT sells the bid - 0.5 pip
    assert sorted((r.client_order_id, r.avg_price) for r in reports(out)) == [
        ("O-0001", D("1.10050")), ("O-0002", D("1.10025"))]


def test_bar_touching_both_levels_assumes_the_stop_loss():
    engine, _ = simulated()
    engine.on_bar(minute(0, "1.10000", "1.10000", "1.10000", "1.10000"))
    engine.on_order_intent(order(1))
    engine.on_bar(minute(1, "1.10000", "1.10010", "1.09990", "1.10000"))  # filled at 1.10000: SL 1.09800, TP 1.10400
    out = engine.on_bar(minute(2, "1.10000", "1.10500", "1.09700", "1.10100"))  # high above TP AND low below SL
    [trade] = trades(out)
    assert (trade.close_reason, trade.close_price, trade.pips, trade.pnl) == (
        CloseReason.SL, D("1.09800"), D("-20.0"), D("-200.00"))
    assert trade.close_time == T0 + timedelta(minutes=3)  # stamped at the bar's close


def test_bar_reaching_only_the_take_profit():
    engine, _ = simulated()
    engine.on_bar(minute(0, "1.10000", "1.10000", "1.10000", "1.10000"))
    engine.on_order_intent(order(1))
    engine.on_bar(minute(1, "1.10000", "1.10010", "1.09990", "1.10000"))
    [trade] = trades(engine.on_bar(minute(2, "1.10100", "1.10450", "1.09900", "1.10300")))
    assert (trade.close_reason, trade.close_price, trade.pips) == (CloseReason.TP, D("1.10400"), D("40.0"))


def test_gap_through_the_stop_exits_at_the_open():
    engine, _ = simulated()
    engine.on_bar(minute(0, "1.10000", "1.10000", "1.10000", "1.10000"))
    engine.on_order_intent(order(1))
    engine.on_bar(minute(1, "1.10000", "1.10010", "1.09990", "1.10000"))  # SL 1.09800
    [trade] = trades(engine.on_bar(minute(2, "1.09500", "1.09600", "1.09400", "1.09550")))
    assert (trade.close_reason, trade.close_price, trade.pips) == (CloseReason.SL, D("1.09500"), D("-50.0"))


def test_order_filled_at_the_open_can_stop_out_in_the_same_bar():
    engine, _ = simulated()
    engine.on_bar(minute(0, "1.10000", "1.10000", "1.10000", "1.10000"))
    engine.on_order_intent(order(1))
    out = engine.on_bar(minute(1, "1.10000", "1.10500", "1.09700", "1.10000"))
    assert [r.status for r in reports(out)] == [S.FILLED, S.CLOSED]
    [trade] = trades(out)
    assert (trade.close_reason, trade.open_time, trade.close_time) == (
        CloseReason.SL, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2))


def test_short_levels_on_bars_use_the_ask():
    engine, _ = simulated(spread_pips=D("2"))
    engine.on_bar(minute(0, "1.10000", "1.10000", "1.10000", "1.10000"))
    engine.on_order_intent(order(1, direction="SHORT"))
    engine.on_bar(minute(1, "1.10000", "1.10010", "1.09990", "1.10000"))  # sells the bid 1.10000: SL 1.10200
    assert engine.on_bar(minute(2, "1.10000", "1.10170", "1.09990", "1.10100")) == []  # ask high 1.10190 < SL
    [trade] = trades(engine.on_bar(minute(3, "1.10100", "1.10180", "1.10000", "1.10100")))  # ask high 1.10200
    assert (trade.close_reason, trade.close_price) == (CloseReason.SL, D("1.10200"))


def test_bars_of_another_timeframe_are_ignored():
    engine, _ = simulated(timeframe=Timeframe.M1)
    engine.on_bar(minute(0, "1.10000", "1.10000", "1.10000", "1.10000"))
    engine.on_order_intent(order(1))
    hourly = bar("1.2", "1.2", "1.2", "1.2", timeframe="H1", opened=T0 - timedelta(minutes=58), volume=100)
    assert engine.on_bar(hourly) == []  # an H1 bar closing when M1 bar 1 closes
    assert [r.status for r in reports(engine.on_bar(minute(1, "1.1", "1.1", "1.1", "1.1")))] == [S.FILLED]


def test_manual_close_in_the_backtest_uses_the_last_close():
    engine, clock = simulated()
    engine.on_bar(minute(0, "1.10000", "1.10000", "1.10000", "1.10000"))
    engine.on_order_intent(order(1))
    engine.on_bar(minute(1, "1.10000", "1.10010", "1.09990", "1.10000"))
    engine.on_bar(minute(2, "1.10000", "1.10100", "1.09990", "1.10070"))
    clock.set(T0 + timedelta(minutes=3))
    [trade] = trades(engine.close_position("O-0001"))
    assert (trade.close_reason, trade.close_price, trade.pips, trade.pnl) == (
        CloseReason.MANUAL, D("1.10070"), D("7.0"), D("70.00"))


def test_backtest_without_change_recording_keeps_nothing():
    clock = TestClock(T0)
    engine = ExecutionEngine(clock, SimulatedBarBroker(), record_changes=False)
    engine.on_bar(minute(0, "1.10000", "1.10000", "1.10000", "1.10000"))
    engine.on_order_intent(order(1))
    out = engine.on_bar(minute(1, "1.10000", "1.10500", "1.09700", "1.10000"))
    assert len(trades(out)) == 1
    assert not engine.drain_changes()
