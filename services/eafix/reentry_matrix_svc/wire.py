"""The domain's values as bus contracts: a Verdict as a ReentryDecision, a due ReentrySignal as a Signal
(1.1, with its `reentry` link), a TradeClosed as the engine's ClosedTrade."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from eafix.contracts import CalendarGate, Signal, TradeClosed
from eafix.contracts.events import ReentryDecision, ReentryLink
from eafix.reentry_matrix_svc.engine import ClosedTrade, ReentrySignal, Verdict
from eafix.reentry_matrix_svc.matrix import Proximity


def calendar_proximity(gate: CalendarGate) -> Callable[[str, datetime], Proximity]:
    """The engine's proximity source: the bucket calendar-ingestor last published for the symbol."""
    return lambda symbol, now: Proximity(gate.proximity(symbol, now))


def closed_trade(trade: TradeClosed) -> ClosedTrade:
    return ClosedTrade(trade_id=trade.trade_id, client_order_id=trade.client_order_id, symbol=trade.symbol,
                       direction=trade.direction, lots=trade.lots, close_price=trade.close_price,
                       open_time=trade.open_time, close_time=trade.close_time, pips=trade.pips)


def decision_event(verdict: Verdict) -> ReentryDecision:
    return ReentryDecision(
        decision_id=verdict.decision_id, trade_id=verdict.trade_id, original_trade_id=verdict.original_trade_id,
        symbol=verdict.symbol, strategy=verdict.family, generation=verdict.generation.value,
        next_generation=None if verdict.next_generation is None else verdict.next_generation.value,
        outcome=verdict.outcome.value, duration=verdict.duration.value, proximity=verdict.proximity.value,
        action=verdict.action.value, tier=verdict.tier, parameter_set=verdict.parameter_set,
        size_multiplier=verdict.size_multiplier, delay_minutes=verdict.delay_minutes,
        confidence_adjustment=float(verdict.confidence_adjustment), hybrid_id=verdict.hybrid_id,
        approved=verdict.approved, refusal=None if verdict.refusal is None else verdict.refusal.value,
        reentry_signal_id=verdict.reentry_signal_id, due_at=verdict.due_at, decided_at=verdict.decided_at)


def reentry_signal(reentry: ReentrySignal, price: Decimal, now: datetime) -> Signal:
    """The Signal risk-manager sizes like any other: the parent's stops, the matrix's multiplier and
    the parent's lots as the cap. `source_indicators` names what the decision used."""
    return Signal(
        signal_id=reentry.signal_id, symbol=reentry.symbol, timeframe=reentry.timeframe, strategy=reentry.strategy,
        direction=reentry.direction, confidence=reentry.confidence,
        source_indicators={"reentry_generation": float(reentry.generation.value[1]),
                           "size_multiplier": float(reentry.size_multiplier)},
        entry_price=price, sl_pips=reentry.sl_pips, tp_pips=reentry.tp_pips, ts=now,
        reentry=ReentryLink(decision_id=reentry.decision_id, parent_trade_id=reentry.parent_trade_id,
                            original_trade_id=reentry.original_trade_id, generation=reentry.generation.value,
                            size_multiplier=reentry.size_multiplier, max_lots=reentry.max_lots))


__all__ = ["calendar_proximity", "closed_trade", "decision_event", "reentry_signal"]
