"""reentry-matrix-svc's pure domain at its boundaries: outcome by R-multiple (and the pip fallback),
duration buckets, the ledger's chain cap, duplicate guard, cooldown and hourly/daily caps, and the
engine walking a chain O -> R1 -> R2 with the shipped matrix (delays are due times, never sleeps)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest

from eafix.contracts.primitives import Direction
from eafix.reentry_matrix_svc.classify import Duration, Outcome, duration, outcome
from eafix.reentry_matrix_svc.engine import ClosedTrade, ReentryEngine
from eafix.reentry_matrix_svc.ledger import Ledger, LedgerConfig, Refusal
from eafix.reentry_matrix_svc.matrix import Action, Generation, Proximity, load_matrix
from eafix.runtime.clock import TestClock
from service.factories import T0


@pytest.mark.parametrize(("pips", "sl", "expected"), [
    ("-20", "20", Outcome.O1), ("-19.9", "20", Outcome.O2),  # R -1.0 is a full stop
    ("-5", "20", Outcome.O2), ("-4.9", "20", Outcome.O3),  # -0.25
    ("5", "20", Outcome.O3), ("5.1", "20", Outcome.O4),  # +0.25
    ("20", "20", Outcome.O4), ("20.1", "20", Outcome.O5),  # +1.0
    ("40", "20", Outcome.O5), ("40.1", "20", Outcome.O6),  # +2.0
    ("10", "10", Outcome.O4), ("10.1", "10", Outcome.O5),  # the trade's own stop is the risk
    ("-20", None, Outcome.O1), ("40.1", None, Outcome.O6), ("20", None, Outcome.O4),  # pip fallback: 20 pips
])
def test_outcome_by_r_multiple(pips, sl, expected):
    assert outcome(D(pips), D(sl) if sl else None) is expected


@pytest.mark.parametrize(("held", "expected"), [
    (timedelta(minutes=5), Duration.FLASH), (timedelta(minutes=5, microseconds=1), Duration.QUICK),
    (timedelta(minutes=30), Duration.QUICK), (timedelta(minutes=30, seconds=1), Duration.LONG),
    (timedelta(minutes=240), Duration.LONG), (timedelta(minutes=240, seconds=1), Duration.EXTENDED),
])
def test_duration_buckets(held, expected):
    assert duration(T0, T0 + held) is expected


def test_ledger_chain_cap_duplicate_and_cooldown():
    ledger = Ledger()
    assert ledger.refusal("EURUSD", "h1", True, T0) is Refusal.CHAIN_COMPLETE
    ledger.approve("EURUSD", "h1", T0)
    assert ledger.refusal("EURUSD", "h1", False, T0 + timedelta(seconds=299)) is Refusal.DUPLICATE
    assert ledger.refusal("EURUSD", "h2", False, T0 + timedelta(minutes=14, seconds=59)) is Refusal.COOLDOWN
    assert ledger.refusal("EURUSD", "h2", False, T0 + timedelta(minutes=15)) is None
    assert ledger.refusal("GBPUSD", "h3", False, T0) is None  # per symbol


def test_ledger_hourly_and_daily_caps():
    ledger = Ledger(LedgerConfig(cooldown=timedelta(0), per_hour=5, per_day=7))
    for i in range(5):
        ledger.approve("EURUSD", f"h{i}", T0 + timedelta(minutes=i))
    assert ledger.refusal("EURUSD", "x", False, T0 + timedelta(minutes=59, seconds=59)) is Refusal.HOURLY_LIMIT
    assert ledger.refusal("EURUSD", "x", False, T0 + timedelta(minutes=60)) is None  # the first left the hour
    for i in range(2):
        ledger.approve("EURUSD", f"k{i}", T0 + timedelta(hours=2, minutes=i))
    assert ledger.refusal("EURUSD", "x", False, T0 + timedelta(hours=5)) is Refusal.DAILY_LIMIT  # 7 today
    next_day = T0.replace(hour=0) + timedelta(days=1)
    assert ledger.refusal("EURUSD", "x", False, next_day) is None  # a new UTC day


def closed(trade_id: str, order_id: str, *, pips: str, lots: str = "1.00", minutes: int = 20,
           direction: Direction = Direction.LONG, at=T0) -> ClosedTrade:
    return ClosedTrade(trade_id, order_id, "EURUSD", direction, D(lots), D("1.10500"), at,
                       at + timedelta(minutes=minutes), D(pips))


def test_a_chain_o_r1_r2_with_the_shipped_matrix():
    clock = TestClock(T0 + timedelta(minutes=20))
    engine = ReentryEngine(load_matrix(), clock)  # no calendar: proximity NONE
    engine.on_signal("S-1", "ema_cross", "H1", 0.7)
    engine.on_order_intent("O-1", "S-1", D(20), D(40))
    engine.on_tick("EURUSD", D("1.10600"), D("1.10610"))
    first = engine.on_trade_closed(closed("O-1", "O-1", pips="40", lots="2.00"))  # +2R: O5, QUICK, NONE
    assert (first.outcome, first.duration, first.proximity, first.tier) == (Outcome.O5, Duration.QUICK,
                                                                           Proximity.NONE, 1)
    assert (first.action, first.next_generation, first.approved, first.size_multiplier) == (
        Action.SAME_TRADE, Generation.R1, True, D("0.8"))
    assert first.parameter_set == "PS-trend-continue@1.0.0"
    ((r1, price),) = engine.on_clock(clock.now())  # no delay: due at once
    assert (r1.generation, r1.parent_trade_id, r1.original_trade_id, r1.max_lots) == ("R1", "O-1", "O-1", D("2.00"))
    assert (r1.direction, price, r1.confidence) == (Direction.LONG, D("1.10610"), 0.7)  # LONG enters at the ask
    assert engine.on_clock(clock.now()) == []  # handed out once
    assert engine.on_trade_closed(closed("O-1", "O-1", pips="40", lots="2.00")) == first  # redelivery

    clock.advance(60 * 60)  # the R1 trade, out of the cooldown
    engine.on_signal(r1.signal_id, "ema_cross", "H1", r1.confidence, Generation.R1, "O-1")
    engine.on_order_intent("O-2", r1.signal_id, D(20), D(40))
    second = engine.on_trade_closed(closed("O-2", "O-2", pips="41", lots="1.60", at=clock.now()))
    assert (second.generation, second.next_generation, second.action, second.delay_minutes) == (
        Generation.R1, Generation.R2, Action.SAME_TRADE, 5)
    assert second.original_trade_id == "O-1"
    assert engine.on_clock(clock.now() + timedelta(minutes=4, seconds=59)) == []  # delayed, not slept
    ((r2, _),) = engine.on_clock(clock.now() + timedelta(minutes=5))
    assert (r2.generation, r2.max_lots, r2.original_trade_id) == ("R2", D("1.60"), "O-1")

    clock.advance(60 * 60)
    engine.on_signal(r2.signal_id, "ema_cross", "H1", r2.confidence, Generation.R2, "O-2")
    engine.on_order_intent("O-3", r2.signal_id, D(20), D(40))
    third = engine.on_trade_closed(closed("O-3", "O-3", pips="60", lots="1.20", at=clock.now()))
    assert (third.refusal, third.action, third.approved, third.original_trade_id) == (
        Refusal.CHAIN_COMPLETE, Action.NO_REENTRY, False, "O-1")


def test_reverse_after_a_full_stop_far_from_events_and_cooldown_refusals():
    # (the same hybrid id inside 300 s would be a DUPLICATE first: test_ledger_chain_cap_duplicate_and_cooldown)
    clock = TestClock(T0 + timedelta(minutes=20))
    engine = ReentryEngine(load_matrix(), clock, proximity=lambda symbol, now: Proximity.EX)
    for n in (1, 2):
        engine.on_signal(f"S-{n}", "ema_cross", "H1", 0.7)
        engine.on_order_intent(f"O-{n}", f"S-{n}", D(20), D(40))
    stop = engine.on_trade_closed(closed("O-1", "O-1", pips="-20"))  # -1R, QUICK, EX -> REVERSE x0.7 after 15 min
    assert (stop.action, stop.tier, stop.delay_minutes, stop.approved) == (Action.REVERSE, 1, 15, True)
    assert engine.on_clock(clock.now()) == []
    ((reverse, _),) = engine.on_clock(clock.now() + timedelta(minutes=15))
    assert (reverse.direction, reverse.confidence) == (Direction.SHORT, pytest.approx(0.6))
    again = engine.on_trade_closed(closed("O-2", "O-2", pips="40"))  # same symbol, same minute, another key
    assert (again.action, again.refusal, again.approved) == (Action.SAME_TRADE, Refusal.COOLDOWN, False)


def test_a_trade_of_unknown_origin_gets_the_safe_fallback():
    engine = ReentryEngine(load_matrix(), TestClock(T0))
    verdict = engine.on_trade_closed(closed("M-1", "M-1", pips="40"))
    assert (verdict.family, verdict.tier, verdict.action, verdict.approved) == ("unknown", 4, Action.NO_REENTRY,
                                                                               False)
    assert engine.pending() == []
