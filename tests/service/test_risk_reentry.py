"""risk-manager on re-entry signals (Signal 1.1 `reentry`): the matrix's size multiplier on top of the
strategy's, and never more lots than the parent trade had.

USD account of 10,000, risk 2 %, EURUSD at 10 USD per pip per lot: a 20-pip stop sizes 1.00 lot.
"""

from __future__ import annotations

from decimal import Decimal

from eafix.contracts import OrderIntent, RiskRejected, RiskRejectReason, Signal
from eafix.contracts.events import ReentryLink
from eafix.risk_manager.config import RiskConfig
from eafix.risk_manager.engine import RiskEngine
from eafix.runtime.clock import TestClock
from service.factories import T0, signal, tick

D = Decimal


def engine(**cfg) -> RiskEngine:
    e = RiskEngine(RiskConfig(correlated_pairs=(), **cfg), TestClock(T0))
    e.on_tick(tick("EURUSD", "1.10000", "1.10010", at=T0))
    return e


def reentry(n: int, *, multiplier: str, max_lots: str, sl: str = "20", generation: str = "R1") -> Signal:
    base = signal(f"RE-T-{n}", sl=sl, tp="40", entry="1.10010")
    link = ReentryLink(decision_id=f"RD-T-{n}", parent_trade_id=f"T-{n}", original_trade_id="T-0",
                       generation=generation, size_multiplier=multiplier, max_lots=max_lots)
    return base.model_copy(update={"reentry": link})


def test_the_multiplier_scales_the_risk_based_size():
    # 2 % x 0.5 = 1 % of 10,000 = 100 USD over 20 pips x 10 USD = 0.50 lot
    oi = engine().on_signal(reentry(1, multiplier="0.5", max_lots="5.00"))
    assert isinstance(oi, OrderIntent) and oi.lots == D("0.50") and oi.risk_percent == D(1)


def test_an_increase_never_exceeds_the_parent_lots():
    # 2 % x 1.5 = 3 % would be 1.50 lots; the parent had 1.20, so 1.20 (1.20 x 200 USD / 10,000 = 2.4 %)
    e = engine()
    oi = e.on_signal(reentry(2, multiplier="1.5", max_lots="1.20"))
    assert isinstance(oi, OrderIntent) and oi.lots == D("1.20") and oi.risk_percent == D("2.4")
    validation = e.validate(reentry(3, multiplier="1.5", max_lots="1.20"))
    assert any("at most the parent's 1.20" in w for w in validation.warnings)


def test_the_cap_also_binds_below_the_plain_size():
    # without the link this signal is 1.00 lot; an R2 after a 0.40-lot R1 gets 0.40
    oi = engine().on_signal(reentry(4, multiplier="1", max_lots="0.40", generation="R2"))
    assert isinstance(oi, OrderIntent) and oi.lots == D("0.40")


def test_the_global_risk_cap_still_holds_for_a_reentry():
    # 2 % x 3 = 6 % is capped at 3.5 % (350 USD / 200 USD per lot = 1.75 lots); the parent's 9.00 does not bind
    oi = engine().on_signal(reentry(5, multiplier="3", max_lots="9.00"))
    assert isinstance(oi, OrderIntent) and oi.lots == D("1.75")


def test_a_plain_signal_is_sized_as_before():
    oi = engine().on_signal(signal("SIG-plain", sl="20", tp="40", entry="1.10010"))
    assert isinstance(oi, OrderIntent) and oi.lots == D("1.00")


def test_a_reentry_whose_minimum_lot_risks_too_much_is_refused():
    # 0.5 x 2 % = 100 USD over a 4000-pip stop is 0.0025 lot, below the 0.01 minimum, which would risk
    # 0.01 x 4000 x 10 = 400 USD = 4 % > 1 %: refused, not silently oversized
    decision = engine().on_signal(reentry(6, multiplier="0.5", max_lots="1.00", sl="4000"))
    assert isinstance(decision, RiskRejected) and RiskRejectReason.PER_TRADE_RISK_EXCEEDED in decision.reasons
