"""Property tests of position sizing (risk-manager) and the lot/pip helpers it stands on.

Covered:
- `eafix.risk_manager.sizing.size_position`: the risk of the returned lots, recomputed here with exact
  rationals (`fractions.Fraction`), never exceeds the budget balance x min(risk% x multiplier, cap) /
  100 unless the minimum lot alone exceeds it (then `exceeds_target`, which the engine rejects); lots
  are a multiple of the lot step, at least the minimum lot, at most the lot cap or refused
  (`cap_below_min_lot`), the largest such multiple within the budget, monotone in balance and in risk
  percent, never negative, and the reported figures are the exact values rounded to 8 places.
- `eafix.risk_manager.sizing.floor_to_step`: a multiple of the step, <= the value, within one step.
- `eafix.risk_manager.sizing.pip_value_per_lot` / `QuoteBook.pip_value_per_lot`: pip size x contract
  size, converted at the quote's mid (direct and inverse pairs).
- `eafix.risk_manager.engine.RiskEngine.position_size`: a lot cap below the minimum lot is refused,
  never sized above the cap.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

from hypothesis import assume, example, given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from eafix.contracts import PriceTick, RiskRejectReason
from eafix.contracts.primitives import Lots
from eafix.instruments import DEFAULT_INSTRUMENTS, InstrumentError, QuoteBook, Quoted
from eafix.risk_manager.config import MAX_RISK_CAP_PERCENT, RiskConfig
from eafix.risk_manager.engine import RiskEngine
from eafix.risk_manager.sizing import floor_to_step, pip_value_per_lot, size_position
from eafix.runtime.clock import TestClock

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)


def decimals(low: str, high: str, places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(Decimal(low), Decimal(high), places=places, allow_nan=False, allow_infinity=False)


balances = decimals("0.01", "100000000", 2)
risk_percents = decimals("0.01", "10", 2)  # above the 3.5 % cap too: the cap must hold
multipliers = decimals("0.1", "3", 2)
stops = decimals("0.1", "5000", 1)
pip_values = st.tuples(decimals("0.00000001", "100000", 8), decimals("0.5", "1000", 8))  # (num, den)


@st.composite
def lot_rules(draw: st.DrawFn) -> tuple[Decimal, Decimal, Decimal]:
    """(min_lot, lot_step, cap): a min lot that is a multiple of the step (as the instrument table
    enforces) and a cap that may lie anywhere, below the min lot too (a policy max_lot, a parent's lots)."""
    step = draw(st.sampled_from([Decimal("0.01"), Decimal("0.05"), Decimal("0.1"), Decimal("1"), Decimal("0.001")]))
    min_lot = step * draw(st.integers(1, 20))
    cap = draw(decimals("0.001", "1000", 3))
    return min_lot, step, cap


def risk_of(lots: Decimal, sl: Decimal, pv: tuple[Decimal, Decimal]) -> Fraction:
    return Fraction(lots) * Fraction(sl) * Fraction(pv[0]) / Fraction(pv[1])


def budget(balance: Decimal, risk: Decimal, mult: Decimal) -> Fraction:
    return Fraction(balance) * min(Fraction(risk) * Fraction(mult), Fraction(MAX_RISK_CAP_PERCENT)) / 100


@given(balances, risk_percents, multipliers, stops, pip_values, lot_rules())
def test_lots_fit_the_budget_the_step_and_the_limits(balance, risk, mult, sl, pv, rules) -> None:
    min_lot, step, cap = rules
    s = size_position(balance, risk, mult, sl, pv, min_lot=min_lot, lot_step=step, max_lot=cap)
    allowed = budget(balance, risk, mult)
    assert s.lots > 0
    assert Fraction(s.lots) % Fraction(step) == 0, f"{s.lots} is not a multiple of {step}"
    assert s.lots >= min_lot
    assert s.lots <= cap or s.cap_below_min_lot
    assert s.cap_below_min_lot == (Fraction(min_lot) > Fraction(cap) - Fraction(cap) % Fraction(step))
    if s.exceeds_target:  # only the minimum lot may exceed the budget, and it is then flagged
        assert s.lots == min_lot and risk_of(min_lot, sl, pv) > allowed
    else:
        assert risk_of(s.lots, sl, pv) <= allowed
    # the largest multiple of the step within budget and cap: one step more breaks one of them
    if not s.min_lot_applied and not s.max_lot_applied:
        assert risk_of(s.lots + step, sl, pv) > allowed
    # reported figures: exact values rounded to 8 places
    exact_actual = risk_of(s.lots, sl, pv) * 100 / Fraction(balance)
    assert abs(Fraction(s.actual_risk_percent) - exact_actual) <= Fraction(1, 2 * 10**8)
    assert abs(Fraction(s.pip_value_per_lot) - Fraction(pv[0]) / Fraction(pv[1])) <= Fraction(1, 2 * 10**8)
    assert s.effective_risk_percent == min(risk * mult, MAX_RISK_CAP_PERCENT)


@given(balances, balances, risk_percents, multipliers, stops, pip_values, lot_rules())
def test_lots_are_monotone_in_balance(b1, b2, risk, mult, sl, pv, rules) -> None:
    min_lot, step, cap = rules
    low, high = sorted((b1, b2))
    small = size_position(low, risk, mult, sl, pv, min_lot=min_lot, lot_step=step, max_lot=cap)
    large = size_position(high, risk, mult, sl, pv, min_lot=min_lot, lot_step=step, max_lot=cap)
    assert small.lots <= large.lots


@given(balances, risk_percents, risk_percents, multipliers, stops, pip_values, lot_rules())
def test_lots_are_monotone_in_risk_percent(balance, r1, r2, mult, sl, pv, rules) -> None:
    min_lot, step, cap = rules
    low, high = sorted((r1, r2))
    small = size_position(balance, low, mult, sl, pv, min_lot=min_lot, lot_step=step, max_lot=cap)
    large = size_position(balance, high, mult, sl, pv, min_lot=min_lot, lot_step=step, max_lot=cap)
    assert small.lots <= large.lots


@given(decimals("0", "100000", 8), st.sampled_from(["0.01", "0.05", "0.1", "1", "0.001", "2.5"]))
def test_floor_to_step(value, step_text) -> None:
    step = Decimal(step_text)
    floored = floor_to_step(value, step)
    assert Fraction(floored) % Fraction(step) == 0
    assert floored <= value < floored + step
    assert floored.as_tuple().exponent == step.as_tuple().exponent  # written with the step's places


@given(st.sampled_from(sorted(DEFAULT_INSTRUMENTS)), st.sampled_from(["USD", "EUR", "JPY", "GBP"]),
       decimals("0.5", "200", 5), decimals("0", "0.01", 5), st.booleans())
def test_pip_value_is_pip_times_contract_at_the_mid(symbol, account, bid, spread, inverse) -> None:
    instrument = DEFAULT_INSTRUMENTS[symbol]
    assume(instrument.quote != account)
    pair = (account + instrument.quote) if inverse else (instrument.quote + account)
    book = QuoteBook()
    book.update(Quoted(pair, T0, bid, bid + spread))
    num, den = pip_value_per_lot(instrument, account, book)
    mid = (Fraction(bid) + Fraction(bid + spread)) / 2
    rate = 1 / mid if inverse else mid  # account units per unit of the quote currency
    assert Fraction(num) / Fraction(den) == Fraction(instrument.pip_size) * Fraction(instrument.contract_size) * rate


lot_fields = st.sampled_from(["0.001", "0.010", "0.05", "0.1", "1", "1E+1", "2.5", "9999.99", "10000", "0.015"])
LOTS = TypeAdapter(Lots)


@given(st.fixed_dictionaries({}, optional={"min_lot": lot_fields, "lot_step": lot_fields, "max_lot": lot_fields}),
       balances, stops)
@example({"min_lot": "0.001", "lot_step": "0.001"}, Decimal("10000"), Decimal("23"))  # sized 0.869: no OrderIntent
@example({"lot_step": "0.010"}, Decimal("10000"), Decimal("23"))  # sized 0.870: no OrderIntent either
def test_sized_lots_of_any_accepted_lot_table_fit_the_order_contract(fields, balance, sl) -> None:
    try:
        instruments = DEFAULT_INSTRUMENTS.with_overrides({"EURUSD": fields})
    except InstrumentError:
        return
    engine = RiskEngine(RiskConfig(), TestClock(T0), instruments=instruments)
    engine.on_tick(PriceTick(symbol="EURUSD", ts=T0, bid=Decimal("1.1"), ask=Decimal("1.1001"), volume=None))
    result = engine.position_size("EURUSD", sl, balance=balance)
    assert result.sizing is not None, result.details
    assert LOTS.validate_python(result.sizing.lots) == result.sizing.lots


@given(decimals("0.001", "0.009", 3), stops)
def test_engine_refuses_a_lot_cap_below_the_minimum_lot(cap, sl) -> None:
    engine = RiskEngine(RiskConfig(max_lot=cap), TestClock(T0))
    engine.on_tick(PriceTick(symbol="EURUSD", ts=T0, bid=Decimal("1.1"), ask=Decimal("1.1001"), volume=None))
    result = engine.position_size("EURUSD", sl)
    assert result.reasons == (RiskRejectReason.PER_TRADE_RISK_EXCEEDED,)
    assert "below the minimum lot" in result.details
