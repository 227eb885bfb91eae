"""risk-manager sizing: pip values (JPY, crosses, conversions), lot formula, floor/min lot, 3.5 % cap.

Every expected value is worked out by hand in the comment next to it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from eafix.contracts import PriceTick, RiskRejectReason
from eafix.instruments import DEFAULT_INSTRUMENTS, QuoteBook
from eafix.risk_manager.config import RiskConfig
from eafix.risk_manager.engine import RiskEngine
from eafix.risk_manager.sizing import MissingQuoteError, floor_to_step, pip_value_per_lot, size_position
from eafix.runtime.clock import TestClock
from service.factories import T0, tick

D = Decimal


def book(*ticks: PriceTick) -> QuoteBook:
    quotes = QuoteBook()
    for t in ticks:
        quotes.update(t)
    return quotes


def value(frac: tuple[Decimal, Decimal]) -> Decimal:
    return frac[0] / frac[1]


def pip_value(symbol: str, account: str, quotes: QuoteBook) -> tuple[Decimal, Decimal]:
    return pip_value_per_lot(DEFAULT_INSTRUMENTS[symbol], account, quotes)


# --- pip value (pip sizes: test_instruments) -------------------------------------------------------


def test_pip_value_quote_equals_account_currency():
    # EURUSD in a USD account: 0.0001 x 100,000 = 10 USD, no quote needed
    assert value(pip_value("EURUSD", "USD", book())) == D(10)


def test_pip_value_jpy_quote_converted_through_the_pair_itself():
    # USDJPY in a USD account: 0.01 x 100,000 = 1000 JPY; / mid 150 = 6.6666... USD
    pv = pip_value("USDJPY", "USD", book(tick("USDJPY", "149.99", "150.01")))
    assert pv == (D("1000.00") * 2, D("300.00"))  # exact fraction 2000/300
    assert abs(value(pv) - D(1000) / D(150)) < D("1e-20")


def test_pip_value_cross_pair_with_direct_conversion_quote():
    # EURGBP in a USD account: 10 GBP x GBPUSD mid 1.25 = 12.5 USD
    pv = pip_value("EURGBP", "USD", book(tick("GBPUSD", "1.2499", "1.2501")))
    assert value(pv) == D("12.5")


def test_pip_value_cross_pair_with_inverse_conversion_quote():
    # EURCHF in a USD account: 10 CHF / USDCHF mid 0.8 = 12.5 USD
    pv = pip_value("EURCHF", "USD", book(tick("USDCHF", "0.7999", "0.8001")))
    assert value(pv) == D("12.5")


def test_pip_value_jpy_cross():
    # GBPJPY in a USD account: 1000 JPY / USDJPY mid 160 = 6.25 USD
    pv = pip_value("GBPJPY", "USD", book(tick("USDJPY", "159.99", "160.01")))
    assert value(pv) == D("6.25")


def test_pip_value_triangulated_through_usd():
    # USDJPY in a EUR account, no EURJPY quote: 1000 JPY / 150 (USDJPY) / 1.25 (EURUSD) = 5.3333... EUR
    quotes = book(tick("USDJPY", "149.99", "150.01"), tick("EURUSD", "1.2499", "1.2501"))
    pv = pip_value("USDJPY", "EUR", quotes)
    assert abs(value(pv) - D(1000) / D(150) / D("1.25")) < D("1e-20")
    # the direct quote wins when it exists: EURJPY mid 200 -> 1000 / 200 = 5 EUR
    quotes.update(tick("EURJPY", "199.99", "200.01"))
    assert value(pip_value("USDJPY", "EUR", quotes)) == D(5)


def test_pip_value_of_metals():
    # XAUUSD: 0.01 x 100 oz = 1 USD; in a EUR account at EURUSD 1.25: 0.8 EUR
    assert value(pip_value("XAUUSD", "USD", book())) == D(1)
    assert value(pip_value("XAUUSD", "EUR", book(tick("EURUSD", "1.2499", "1.2501")))) == D("0.8")


def test_missing_conversion_quote_raises():
    with pytest.raises(MissingQuoteError, match="GBP to USD"):
        pip_value("EURGBP", "USD", book(tick("EURUSD", "1.1", "1.1002")))
    assert book().rate("NZD", "CHF") is None


# --- lot formula ---------------------------------------------------------------------------------

TEN_USD = (D(10), D(1))


def test_reference_example_one_lot():
    # notes §4.2: 10,000 x 2 % / (20 pips x 10 USD) = 1.00 lot
    s = size_position(D(10000), D(2), D(1), D(20), TEN_USD)
    assert s.lots == D("1.00")
    assert s.actual_risk_percent == D(2)
    assert s.risk_amount == D(200)
    assert not s.exceeds_target and not s.min_lot_applied


def test_floor_to_step_never_rounds_up():
    # 200 / (30 x 10) = 0.6666... -> 0.66 (rounding would give 0.67)
    s = size_position(D(10000), D(2), D(1), D(30), TEN_USD)
    assert s.lots == D("0.66")
    assert s.actual_risk_percent == D("1.98")  # 0.66 x 30 x 10 = 198 = 1.98 %
    assert floor_to_step(D("0.999999"), D("0.01")) == D("0.99")
    assert floor_to_step(D("1.00"), D("0.01")) == D("1.00")


def test_exact_fractions_do_not_lose_a_lot_step():
    # USDJPY, USD account, mid 150: lot = 10,000 x 2 % x 150 / (20 x 1000) = 1.5 exactly.
    # A rounded intermediate pip value (6.666...) would floor to 1.49.
    pv = pip_value("USDJPY", "USD", book(tick("USDJPY", "149.99", "150.01")))
    assert size_position(D(10000), D(2), D(1), D(20), pv).lots == D("1.50")


def test_min_lot_boundary():
    # balance 100: 2 USD at risk / (20 pips x 10) = 0.01 exactly -> 2 % risk, within target
    s = size_position(D(100), D(2), D(1), D(20), TEN_USD)
    assert s.lots == D("0.01") and not s.min_lot_applied and not s.exceeds_target
    # 20.1 pips: 2 / 201 = 0.00995 -> floored 0.00 -> minimum 0.01 lot risks 2.01 % > 2 %
    s = size_position(D(100), D(2), D(1), D("20.1"), TEN_USD)
    assert s.lots == D("0.01") and s.min_lot_applied and s.exceeds_target
    assert s.actual_risk_percent == D("2.01")


def test_multiplier_and_the_3_5_percent_cap():
    # 2 % x 1.5 = 3 % -> 300 / 200 = 1.50
    assert size_position(D(10000), D(2), D("1.5"), D(20), TEN_USD).lots == D("1.50")
    # 2 % x 1.75 = 3.5 % exactly (the cap) -> 350 / 200 = 1.75
    s = size_position(D(10000), D(2), D("1.75"), D(20), TEN_USD)
    assert (s.lots, s.effective_risk_percent) == (D("1.75"), D("3.5"))
    # 2 % x 2 = 4 % -> capped to 3.5 % -> 1.75
    s = size_position(D(10000), D(2), D(2), D(20), TEN_USD)
    assert (s.lots, s.effective_risk_percent) == (D("1.75"), D("3.5"))


def test_max_lot_caps_the_size():
    # 1,000,000 x 2 % / 200 = 100 lots; max 50
    s = size_position(D(1000000), D(2), D(1), D(20), TEN_USD, max_lot=D(50))
    assert s.lots == D("50") and s.max_lot_applied and not s.exceeds_target


# --- the engine's position_size (the /position-size endpoint) -------------------------------------


def engine(**cfg) -> RiskEngine:
    return RiskEngine(RiskConfig(**cfg), TestClock(T0))


def test_position_size_uses_balance_and_latest_quotes():
    e = engine()
    r = e.position_size("EURGBP", D(20))
    assert not r.approved and r.reasons == (RiskRejectReason.SAFETY_FAIL,)
    assert "GBP to USD" in r.details and r.sizing is None
    e.on_tick(tick("GBPUSD", "1.2499", "1.2501"))
    r = e.position_size("EURGBP", D(20))
    # 200 / (20 x 12.5) = 0.80
    assert r.approved and r.sizing.lots == D("0.80") and r.sizing.pip_value_per_lot == D("12.5")
    # explicit risk/multiplier/balance: 50,000 x min(3 x 2, 3.5) % = 1750 / 250 = 7.00
    r = e.position_size("EURGBP", D(20), risk_percent=D(3), multiplier=D(2), balance=D(50000))
    assert r.sizing.lots == D("7.00") and r.sizing.effective_risk_percent == D("3.5")


def test_position_size_refuses_a_minimum_lot_above_target():
    r = engine(opening_balance=D(100)).position_size("EURUSD", D("20.1"))
    assert r.reasons == (RiskRejectReason.PER_TRADE_RISK_EXCEEDED,)
    assert r.sizing is not None and r.sizing.lots == D("0.01")


def test_position_size_internal_error_fails_closed(monkeypatch):
    from eafix.risk_manager import engine as risk_engine

    def broken(*args, **kwargs):
        raise ArithmeticError("injected")

    monkeypatch.setattr(risk_engine, "size_position", broken)
    r = engine().position_size("EURUSD", D(20))
    assert r.reasons == (RiskRejectReason.SAFETY_FAIL,) and "injected" in r.details


def test_newer_tick_wins_and_an_older_one_is_ignored():
    e = engine()
    e.on_tick(tick("USDJPY", "149.99", "150.01", at=T0))
    e.on_tick(tick("USDJPY", "99.99", "100.01", at=datetime(2025, 1, 6, 11, 59, tzinfo=UTC)))  # late, older
    assert e.quote_book.get("USDJPY").bid == D("149.99")
    # USDJPY pip value 1000 / 150 -> lot 1.50 (with the ignored tick it would be 1.00)
    assert e.position_size("USDJPY", D(20)).sizing.lots == D("1.50")
