"""RiskEngine: every rule at its boundary, fail-closed SAFETY_FAIL, idempotency, portfolio updates.

Unless a test says otherwise: USD account of 10,000, risk 2 %, EURUSD signals with a 20-pip stop, so an
approved order is 1.00 lot risking 200 USD (2 % of the balance) at 10 USD per pip.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from eafix.contracts import (
    Direction,
    ExecutionReport,
    OrderIntent,
    RiskRejected,
    RiskRejectReason,
    Signal,
    TradeClosed,
)
from eafix.risk_manager import engine as risk_engine
from eafix.risk_manager.config import CorrelatedPair, RiskConfig
from eafix.risk_manager.engine import RiskEngine
from eafix.risk_manager.portfolio import (
    AccountRecord,
    DecisionRecorded,
    PortfolioSnapshot,
    PositionRemoved,
    PositionState,
    PositionUpserted,
    TradeRealized,
)
from eafix.risk_manager.rules import DEFAULT_RULES
from eafix.runtime.clock import TestClock
from service.factories import T0, signal, tick

D = Decimal
R = RiskRejectReason

# quotes with a 1-pip spread; USD-quoted pairs need no conversion, the others convert via these
BOOK = {
    "EURUSD": ("1.10000", "1.10010"),
    "GBPUSD": ("1.25000", "1.25010"),
    "AUDUSD": ("0.65000", "0.65010"),
    "NZDUSD": ("0.60000", "0.60010"),
    "USDCHF": ("0.79995", "0.80005"),
    "USDCAD": ("1.35000", "1.35010"),
    "USDJPY": ("149.995", "150.005"),
    "EURGBP": ("0.88000", "0.88010"),
    "EURCHF": ("0.94000", "0.94010"),
}
_signal_ids = (f"SIG-test-{n:06d}" for n in itertools.count(1))


def make_signal(symbol="EURUSD", direction="LONG", sl="20", tp="40", *, signal_id=None, strategy="ema_cross") -> Signal:
    """An M5 signal entering at the ask of BOOK, with an id of its own unless one is given."""
    return signal(signal_id or next(_signal_ids), symbol=symbol, direction=direction, sl=sl, tp=tp, strategy=strategy,
                  timeframe="M5", entry=BOOK.get(symbol, ("1.1", "1.1001"))[1])


def make_engine(clock=None, *, feed=True, snapshot=None, rules=None, track=False, **cfg) -> RiskEngine:
    cfg.setdefault("correlated_pairs", ())
    cfg.setdefault("currency_exposure_cap_percent", D(100))
    cfg.setdefault("max_positions_per_symbol", 1)
    e = RiskEngine(RiskConfig(**cfg), clock or TestClock(T0), snapshot, rules=rules, track_changes=track)
    if feed:
        for symbol, (bid, ask) in BOOK.items():
            e.on_tick(tick(symbol, bid, ask, at=clock.now() if clock else T0))
    return e


def closed(coid, pnl, *, trade_id=None, close_time=T0, lots="1.00", symbol="EURUSD", currency="USD") -> TradeClosed:
    return TradeClosed(trade_id=trade_id or f"T-{coid}-{pnl}", client_order_id=coid, symbol=symbol,
                       direction="LONG", lots=lots, open_price="1.1", close_price="1.1", open_time=close_time
                       - timedelta(hours=1), close_time=close_time, pips="0", pnl=pnl, account_currency=currency,
                       close_reason="SL")


def report(coid, status, filled="0", avg=None, reason=None, symbol="EURUSD") -> ExecutionReport:
    return ExecutionReport(client_order_id=coid, broker_order_id=None, symbol=symbol, status=status,
                           filled_lots=filled, avg_price=avg, commission="0", reason=reason)


def approved(decision) -> OrderIntent:
    assert isinstance(decision, OrderIntent), decision
    return decision


def rejected(decision) -> RiskRejected:
    assert isinstance(decision, RiskRejected), decision
    return decision


# --- approval ------------------------------------------------------------------------------------


def test_approval_builds_the_order_intent():
    e = make_engine()
    sig = make_signal()
    oi = approved(e.on_signal(sig))
    assert oi.lots == D("1.00") and oi.risk_percent == D(2)
    assert oi.client_order_id == "O-20250106T120000Z-000001" and oi.idempotency_key == oi.client_order_id
    assert (oi.signal_id, oi.symbol, oi.direction) == (sig.signal_id, "EURUSD", Direction.LONG)
    assert (oi.sl_pips, oi.tp_pips, oi.entry_price) == (D(20), D(40), D("1.10010"))
    assert (oi.account_balance, oi.account_currency) == (D(10000), "USD")
    wire = oi.model_dump(mode="json")
    assert (wire["lots"], wire["risk_percent"], wire["tp_pips"]) == ("1.00", "2.0000", "40")
    position = e.portfolio.positions[oi.client_order_id]
    assert position.state is PositionState.PENDING and position.lots == D("1.00")
    assert position.risk_amount == D(200)


def test_null_tp_uses_the_default_ratio():
    oi = approved(make_engine().on_signal(make_signal(sl="15.5", tp=None)))
    assert oi.tp_pips == D("31.0")  # 15.5 x 2.0
    # a ratio that does not land on 0.1 pip rounds up, so it never undershoots the ratio
    oi = approved(make_engine(default_tp_sl_ratio=D("1.25")).on_signal(make_signal(sl="15.5", tp=None)))
    assert oi.tp_pips == D("19.4")  # 15.5 x 1.25 = 19.375 -> 19.4


# --- DAILY_DRAWDOWN_LIMIT_REACHED ----------------------------------------------------------------


def test_daily_drawdown_exactly_five_percent_rejects_just_under_passes():
    e = make_engine()
    e.on_trade_closed(closed("X-1", "-499.99", close_time=T0 - timedelta(minutes=5)))
    assert isinstance(e.on_signal(make_signal()), OrderIntent)  # 4.9999 % of the day-start 10,000
    e = make_engine()
    e.on_trade_closed(closed("X-1", "-500", close_time=T0 - timedelta(minutes=5)))
    rj = rejected(e.on_signal(make_signal()))
    assert rj.reasons == (R.DAILY_DRAWDOWN_LIMIT_REACHED,)
    assert "500" in rj.details


def test_daily_drawdown_is_net_for_the_utc_day_and_resets_at_midnight():
    clock = TestClock(T0)
    e = make_engine(clock)
    e.on_trade_closed(closed("X-1", "100", trade_id="T1", close_time=T0 - timedelta(hours=2)))
    e.on_trade_closed(closed("X-2", "-599.99", trade_id="T2", close_time=T0 - timedelta(hours=1)))
    # net -499.99 on a day that started at 10,000 -> passes
    assert isinstance(e.on_signal(make_signal()), OrderIntent)
    e.on_trade_closed(closed("X-3", "-0.01", trade_id="T3", close_time=T0))
    # net -500 = 5 % of 10,000 -> rejected
    assert rejected(e.on_signal(make_signal(symbol="GBPUSD"))).reasons == (R.DAILY_DRAWDOWN_LIMIT_REACHED,)
    # yesterday's losses do not count today
    clock.set(datetime(2025, 1, 7, 0, 0, 1, tzinfo=UTC))
    for symbol, (bid, ask) in BOOK.items():
        e.on_tick(tick(symbol, bid, ask, at=clock.now()))
    assert isinstance(e.on_signal(make_signal(symbol="AUDUSD")), OrderIntent)


def test_losses_closed_yesterday_do_not_count():
    e = make_engine()
    e.on_trade_closed(closed("X-1", "-900", close_time=datetime(2025, 1, 5, 23, 59, 59, tzinfo=UTC)))
    assert isinstance(e.on_signal(make_signal()), OrderIntent)


# --- PER_TRADE_RISK_EXCEEDED ---------------------------------------------------------------------


def test_minimum_lot_above_the_risk_target_is_rejected():
    # balance 100: 2 USD / (20 x 10) = 0.01 lot exactly -> approved at 2 %
    oi = approved(make_engine(opening_balance=D(100)).on_signal(make_signal()))
    assert oi.lots == D("0.01") and oi.risk_percent == D(2)
    # 20.1 pips: 0.00995 -> minimum 0.01 lot risks 2.01 % > 2 %
    rj = rejected(make_engine(opening_balance=D(100)).on_signal(make_signal(sl="20.1", tp="40.2")))
    assert rj.reasons == (R.PER_TRADE_RISK_EXCEEDED,)
    assert "2.01" in rj.details


def test_strategy_multiplier_is_capped_at_3_5_percent():
    e = make_engine(strategy_risk_multipliers={"aggressive": D(3)})
    oi = approved(e.on_signal(make_signal(strategy="aggressive")))
    assert oi.lots == D("1.75") and oi.risk_percent == D("3.5")  # min(2 x 3, 3.5) % of 10,000 / 200


# --- MAX_OPEN_POSITIONS --------------------------------------------------------------------------


def test_max_open_positions_reached():
    e = make_engine(max_open_positions=3)
    for symbol in ("EURUSD", "GBPUSD", "AUDUSD"):  # 0, 1, 2 open -> below the limit of 3
        approved(e.on_signal(make_signal(symbol=symbol)))
    rj = rejected(e.on_signal(make_signal(symbol="NZDUSD")))  # 3 open = the limit
    assert rj.reasons == (R.MAX_OPEN_POSITIONS,) and "3 open/pending positions, limit 3" in rj.details


def test_max_positions_per_symbol_and_release_on_a_rejected_order():
    e = make_engine()
    first = approved(e.on_signal(make_signal()))
    assert rejected(e.on_signal(make_signal())).reasons == (R.MAX_OPEN_POSITIONS,)
    assert e.on_execution_report(report(first.client_order_id, "REJECTED", reason="no money")) is None
    assert first.client_order_id not in e.portfolio.positions
    approved(e.on_signal(make_signal()))


# --- CURRENCY_EXPOSURE_CAP -----------------------------------------------------------------------


@pytest.mark.parametrize(("cap", "second_passes"), [("4.0", True), ("3.9999", False)])
def test_currency_exposure_cap_boundary(cap, second_passes):
    e = make_engine(currency_exposure_cap_percent=D(cap))
    approved(e.on_signal(make_signal("EURUSD")))  # USD 2 %
    second = e.on_signal(make_signal("GBPUSD"))  # USD 2 + 2 = 4 %
    if second_passes:
        approved(second)
        rj = rejected(e.on_signal(make_signal("AUDUSD")))  # USD 6 % > 4 %
    else:
        rj = rejected(second)
    assert rj.reasons == (R.CURRENCY_EXPOSURE_CAP,)
    assert rj.details.startswith("USD risk-at-stop")


def test_currency_exposure_counts_the_base_currency_too():
    e = make_engine(currency_exposure_cap_percent=D(4))
    approved(e.on_signal(make_signal("EURUSD")))  # EUR 2 %, USD 2 %
    oi = approved(e.on_signal(make_signal("EURGBP")))  # 10 GBP x 1.25005 -> 0.79 lot ~ 1.98 %
    assert oi.lots == D("0.79")
    rj = rejected(e.on_signal(make_signal("EURCHF")))  # EUR ~ 5.98 % > 4 %; CHF alone would be 2 %
    assert rj.reasons == (R.CURRENCY_EXPOSURE_CAP,)
    assert "EUR risk-at-stop" in rj.details and "CHF" not in rj.details


# --- CORRELATION_GUARD ---------------------------------------------------------------------------


@pytest.mark.parametrize(("coefficient", "blocked"), [(0.7, True), (0.69, False)])
def test_correlation_limit_boundary(coefficient, blocked):
    pairs = (CorrelatedPair(symbols=("EURUSD", "GBPUSD"), coefficient=coefficient),)
    e = make_engine(correlated_pairs=pairs)
    approved(e.on_signal(make_signal("EURUSD", "LONG")))
    decision = e.on_signal(make_signal("GBPUSD", "LONG"))
    if blocked:
        assert rejected(decision).reasons == (R.CORRELATION_GUARD,)
        assert "EURUSD" in decision.details
    else:
        approved(decision)


def test_correlation_guard_direction_rules():
    pairs = (CorrelatedPair(symbols=("EURUSD", "GBPUSD"), coefficient=0.8),
             CorrelatedPair(symbols=("EURUSD", "USDCHF"), coefficient=-0.9))
    e = make_engine(correlated_pairs=pairs)
    approved(e.on_signal(make_signal("EURUSD", "LONG")))
    approved(e.on_signal(make_signal("GBPUSD", "SHORT")))  # positive correlation, opposite way: a hedge
    assert rejected(e.on_signal(make_signal("USDCHF", "SHORT"))).reasons == (R.CORRELATION_GUARD,)
    approved(e.on_signal(make_signal("USDCHF", "LONG")))  # negative correlation, same way: offsets


def test_default_config_knows_eurusd_gbpusd():
    e = make_engine(correlated_pairs=RiskConfig().correlated_pairs)
    approved(e.on_signal(make_signal("EURUSD", "LONG")))
    assert rejected(e.on_signal(make_signal("GBPUSD", "LONG"))).reasons == (R.CORRELATION_GUARD,)


# --- SPREAD_TOO_WIDE -----------------------------------------------------------------------------


@pytest.mark.parametrize(("ask", "passes"), [("1.10030", True), ("1.10031", False)])
def test_spread_boundary(ask, passes):
    e = make_engine(max_spread_pips_by_symbol={"EURUSD": D(3)})
    e.on_tick(tick("EURUSD", "1.10000", ask))  # 3.0 pips vs 3.1 pips
    decision = e.on_signal(make_signal())
    if passes:
        approved(decision)
    else:
        assert rejected(decision).reasons == (R.SPREAD_TOO_WIDE,) and "3.1" in decision.details


@pytest.mark.parametrize(("ask", "passes"), [("150.05", True), ("150.051", False)])
def test_spread_of_a_jpy_pair_is_in_hundredths(ask, passes):
    e = make_engine(max_spread_pips=D(5))
    e.on_tick(tick("USDJPY", "150.00", ask))  # 5.0 pips vs 5.1 pips
    assert isinstance(e.on_signal(make_signal("USDJPY")), OrderIntent) is passes


def test_spread_check_needs_a_fresh_quote():
    clock = TestClock(T0)
    e = make_engine(clock, feed=False)
    e.on_tick(tick("EURUSD", "1.10000", "1.10010", at=T0 - timedelta(seconds=300)))
    approved(e.on_signal(make_signal()))  # 300 s old: still acceptable
    clock.advance(1)
    rj = rejected(e.on_signal(make_signal("EURUSD", "SHORT")))
    assert R.SAFETY_FAIL in rj.reasons and "301 s old" in rj.details


# --- SL_TP_RATIO ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("tp", "passes"), [("24", True), ("23.9", False)])
def test_tp_sl_ratio_boundary(tp, passes):
    decision = make_engine().on_signal(make_signal(sl="20", tp=tp))  # 24 / 20 = 1.2 exactly
    if passes:
        approved(decision)
    else:
        assert rejected(decision).reasons == (R.SL_TP_RATIO,)


def test_every_failing_rule_is_listed_in_order():
    e = make_engine(max_spread_pips=D("0.5"))
    e.on_trade_closed(closed("X-1", "-600"))
    rj = rejected(e.on_signal(make_signal(tp="10")))
    assert rj.reasons == (R.DAILY_DRAWDOWN_LIMIT_REACHED, R.SPREAD_TOO_WIDE, R.SL_TP_RATIO)


# --- SAFETY_FAIL ---------------------------------------------------------------------------------


def test_missing_conversion_quote_fails_closed():
    e = make_engine(feed=False)
    e.on_tick(tick("EURGBP", "0.88000", "0.88010"))
    rj = rejected(e.on_signal(make_signal("EURGBP")))
    assert R.SAFETY_FAIL in rj.reasons and "GBP to USD" in rj.details
    assert e.portfolio.positions == {}


def test_missing_quote_of_the_symbol_fails_closed():
    rj = rejected(make_engine(feed=False).on_signal(make_signal()))
    assert rj.reasons == (R.SAFETY_FAIL,) and "no quote seen for EURUSD" in rj.details


def test_an_injected_rule_error_fails_closed():
    def exploding_rule(ev):
        raise ZeroDivisionError("boom")

    e = make_engine(rules=(*DEFAULT_RULES, exploding_rule))
    rj = rejected(e.on_signal(make_signal()))
    assert rj.reasons == (R.SAFETY_FAIL,)
    assert "exploding_rule" in rj.details and "ZeroDivisionError" in rj.details
    assert e.portfolio.positions == {}


def test_an_internal_error_while_sizing_fails_closed(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("sizing exploded")

    monkeypatch.setattr(risk_engine, "size_position", broken)
    rj = rejected(make_engine().on_signal(make_signal()))
    assert R.SAFETY_FAIL in rj.reasons and "sizing exploded" in rj.details


def test_an_error_outside_the_rules_still_returns_risk_rejected(monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("cannot build intent")

    e = make_engine()
    monkeypatch.setattr(risk_engine, "OrderIntent", broken)
    sig = make_signal()
    rj = rejected(e.on_signal(sig))
    assert rj.reasons == (R.SAFETY_FAIL,) and "cannot build intent" in rj.details
    assert e.portfolio.positions == {}
    assert e.on_signal(sig) == rj  # remembered: a redelivery gets the same answer


def test_non_positive_balance_fails_closed():
    e = make_engine(opening_balance=D(100))
    e.on_trade_closed(closed("X-1", "-100", close_time=T0 - timedelta(days=1)))
    assert e.portfolio.balance == 0
    assert R.SAFETY_FAIL in rejected(e.on_signal(make_signal())).reasons


# --- idempotency and determinism -----------------------------------------------------------------


def test_redelivered_signal_gets_the_same_order_intent_and_reserves_once():
    e = make_engine(track=True)
    sig = make_signal()
    first = approved(e.on_signal(sig))
    changes = e.drain_changes()
    assert [type(c) for c in changes] == [DecisionRecorded, PositionUpserted]
    again = e.on_signal(sig.model_copy())
    assert again == first
    assert len(e.portfolio.positions) == 1 and e.drain_changes() == []


def test_redelivered_rejected_signal_keeps_its_rejection():
    e = make_engine(max_spread_pips=D("0.5"))
    sig = make_signal()
    first = rejected(e.on_signal(sig))
    e.on_tick(tick("EURUSD", "1.10000", "1.10001"))  # now the spread would pass
    assert e.on_signal(sig) == first


def test_client_order_ids_are_clock_time_plus_counter_and_replay_identically():
    def run():
        clock = TestClock(T0)
        e = make_engine(clock)
        out = [e.on_signal(make_signal("EURUSD", signal_id="S-1"))]
        clock.advance(61)
        out.append(e.on_signal(make_signal("EURUSD", signal_id="S-2")))  # rejected: takes seq 2
        out.append(e.on_signal(make_signal("GBPUSD", signal_id="S-3", tp="24")))
        return out

    first, second = run(), run()
    assert first == second
    assert first[0].client_order_id == "O-20250106T120000Z-000001"
    assert isinstance(first[1], RiskRejected)
    assert first[2].client_order_id == "O-20250106T120101Z-000003"


# --- portfolio updates from execution reports and closed trades ----------------------------------


def test_fill_opens_the_position_and_redelivery_changes_nothing():
    e = make_engine(track=True)
    oi = approved(e.on_signal(make_signal()))
    e.drain_changes()
    p = e.on_execution_report(report(oi.client_order_id, "FILLED", "1.00", "1.10012"))
    assert (p.state, p.lots, p.filled_lots, p.entry_price) == (PositionState.OPEN, D(1), D(1), D("1.10012"))
    assert [type(c) for c in e.drain_changes()] == [PositionUpserted]
    e.on_execution_report(report(oi.client_order_id, "FILLED", "1.00", "1.10012"))
    assert e.drain_changes() == []


def test_partial_fill_then_cancel_keeps_the_filled_part():
    e = make_engine()
    oi = approved(e.on_signal(make_signal()))
    p = e.on_execution_report(report(oi.client_order_id, "PARTIAL", "0.40", "1.10012"))
    assert p.lots == D("1.00") and p.filled_lots == D("0.40")  # the rest may still fill
    p = e.on_execution_report(report(oi.client_order_id, "CANCELLED", "0.40", "1.10012", reason="user"))
    assert p.lots == D("0.40") and p.state is PositionState.OPEN
    assert e.portfolio.exposure("EUR") == D("80.00000000")  # 0.40 x 200


def test_reports_for_unknown_orders_are_ignored():
    e = make_engine()
    assert e.on_execution_report(report("O-unknown", "FILLED", "1.00", "1.1")) is None
    assert e.portfolio.positions == {}


def test_trade_closed_books_pnl_removes_the_position_and_is_idempotent():
    e = make_engine(track=True)
    oi = approved(e.on_signal(make_signal()))
    e.on_execution_report(report(oi.client_order_id, "FILLED", "1.00", "1.10012"))
    e.drain_changes()
    trade = closed(oi.client_order_id, "238.50", trade_id="T-1")
    realized = e.on_trade_closed(trade)
    assert realized.pnl == D("238.50")
    assert e.portfolio.balance == D("10238.50") and e.portfolio.positions == {}
    assert [type(c) for c in e.drain_changes()] == [TradeRealized, PositionRemoved]
    assert e.on_trade_closed(trade) is None
    assert e.portfolio.balance == D("10238.50") and e.drain_changes() == []
    # the next order is sized on the new balance: 204.77 / 200 = 1.02
    assert approved(e.on_signal(make_signal())).lots == D("1.02")


def test_partial_close_reduces_the_position():
    e = make_engine()
    oi = approved(e.on_signal(make_signal()))
    e.on_execution_report(report(oi.client_order_id, "FILLED", "1.00", "1.10012"))
    e.on_trade_closed(closed(oi.client_order_id, "-50", trade_id="T-1", lots="0.25"))
    assert e.portfolio.positions[oi.client_order_id].lots == D("0.75")
    assert e.portfolio.balance == D(9950)


def test_pnl_in_another_currency_is_converted_or_halts_the_engine():
    e = make_engine()
    # 100 EUR at EURUSD mid 1.10005 = 110.005 USD
    e.on_trade_closed(closed("X-1", "100", trade_id="T-1", currency="EUR"))
    assert e.portfolio.balance == D("10110.005")
    e2 = make_engine()
    assert e2.on_trade_closed(closed("X-1", "100", trade_id="T-1", currency="SEK")) is None
    assert "SEK" in e2.halted
    rj = rejected(e2.on_signal(make_signal()))
    assert rj.reasons == (R.SAFETY_FAIL,) and "halted" in rj.details


def test_snapshot_rebuilds_balance_positions_and_memory():
    e = make_engine(track=True)
    oi = approved(e.on_signal(make_signal(signal_id="S-1")))
    e.on_trade_closed(closed("X-9", "-120", trade_id="T-9"))
    positions = tuple(e.portfolio.positions.values())
    records = tuple(c.record for c in e.drain_changes() if isinstance(c, DecisionRecorded))
    snap = PortfolioSnapshot(AccountRecord("default", "USD", D(10000), T0), positions, D(-120),
                             {T0.date(): D(-120)}, ("T-9",), records, 1)
    e2 = make_engine(snapshot=snap)
    assert e2.portfolio.balance == D(9880)
    assert e2.on_signal(make_signal(signal_id="S-1")) == oi
    assert e2.on_trade_closed(closed("X-9", "-120", trade_id="T-9")) is None
    assert rejected(e2.on_signal(make_signal())).reasons == (R.MAX_OPEN_POSITIONS,)  # decision seq 2
    assert approved(e2.on_signal(make_signal("GBPUSD"))).client_order_id.endswith("-000003")


def test_config_errors_name_the_key():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="risk_percent"):
        RiskConfig(risk_percent=D(4))
    with pytest.raises(ValidationError, match="default_tp_sl_ratio"):
        RiskConfig(default_tp_sl_ratio=D("1.1"))
    with pytest.raises(ValidationError, match="correlated_pairs"):
        RiskConfig(correlated_pairs=({"symbols": ["EURUSD", "GBPUSD"], "coefficient": 0.8},
                                     {"symbols": ["GBPUSD", "EURUSD"], "coefficient": 0.7}))
    with pytest.raises(ValueError, match="kept in EUR"):
        RiskEngine(RiskConfig(), TestClock(T0), PortfolioSnapshot(AccountRecord("default", "EUR", D(1), T0)))


def _calendar_gate(state="CLEAR", start="2025-01-06T12:30:00Z", end="2025-01-06T13:30:00Z"):
    from eafix.contracts import CalendarGate, CalendarSignal

    gate = CalendarGate()
    gate.update(CalendarSignal.model_validate({
        "symbol": "EURUSD", "generated_at": "2025-01-06T11:59:00Z", "valid_until": "2025-01-06T12:00:30Z",
        "state": state, "allow_new_trades": state == "CLEAR", "reason": None if state == "CLEAR" else "x",
        "event": None, "minutes_to_event": None, "proximity": "NONE", "proximity_event": None, "priority_weight": 0,
        "windows": [{"cal8": "CAL8-20250106-1300-USD-001", "title": "ISM", "currency": "USD", "impact": "HIGH",
                     "scheduled_at": "2025-01-06T13:00:00Z", "start": start, "end": end}]}))
    return gate


def test_calendar_blackout_rejects_before_sizing_and_only_in_its_window():
    engine = make_engine()  # the clock stands at T0 = 12:00Z
    engine.blackout = _calendar_gate(start="2025-01-06T11:00:00Z")  # 11:00-13:30 covers 12:00
    rejected = engine.on_signal(make_signal())
    assert isinstance(rejected, RiskRejected) and rejected.reasons == (R.CALENDAR_BLACKOUT,)
    assert "before HIGH USD ISM at 2025-01-06T13:00Z (CAL8-20250106-1300-USD-001)" in rejected.details
    engine.blackout = _calendar_gate()  # 12:30-13:30: 12:00 is clear
    assert isinstance(engine.on_signal(make_signal()), OrderIntent)
    engine.blackout = _calendar_gate(state="BLOCKED")
    assert "calendar blocked" in engine.on_signal(make_signal()).details
