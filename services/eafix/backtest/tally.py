"""What a backtest's result takes from the replay's events, kept as they pass: the counts, the trades,
suppressions and re-entry decisions (the report's), and per order its strategy and SL/TP distances.
Not every signal, order and rejection: kept whole, they made memory grow with the bars."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from eafix.contracts import Bar, OrderIntent, RiskRejected, Signal, SignalSuppressed, TradeClosed
from eafix.contracts.events import ReentryDecision
from eafix.contracts.messaging import decode
from eafix.contracts.primitives import RiskRejectReason, SuppressionReason
from eafix.instruments import Instruments
from eafix.reporting.content import trade_levels
from eafix.runtime.bus.base import Subscriber


@dataclass
class Tally:
    instruments: Instruments
    bars_kept: bool = False  # keep the bars topic (bars the indicator engine built from ticks)
    trades: list[TradeClosed] = field(default_factory=list)
    suppressions: list[SignalSuppressed] = field(default_factory=list)
    reentry_decisions: list[ReentryDecision] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    signals: int = 0
    orders: int = 0
    rejected: int = 0
    blackout_rejected: int = 0
    strategy_of: dict[str, str] = field(default_factory=dict)  # order's client_order_id -> strategy
    levels: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)  # trade id -> SL, TP price
    _strategy: dict[str, str] = field(default_factory=dict)  # signal id -> strategy, until risk decides it
    _distances: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)  # client_order_id -> SL, TP pips

    @property
    def blackout_suppressed(self) -> int:
        return sum(s.reason == SuppressionReason.CALENDAR_BLACKOUT for s in self.suppressions)

    def subscribe(self, bus: Subscriber) -> None:
        handlers: dict[str, Callable[[Any], None]] = {
            Signal.TOPIC: self._signal, OrderIntent.TOPIC: self._order, RiskRejected.TOPIC: self._rejected,
            TradeClosed.TOPIC: self._trade, SignalSuppressed.TOPIC: self.suppressions.append,
            ReentryDecision.TOPIC: self.reentry_decisions.append}
        if self.bars_kept:
            handlers[Bar.TOPIC] = self.bars.append
        for topic, handle in handlers.items():
            bus.subscribe(topic, "backtest", self._data_to(handle))

    @staticmethod
    def _data_to(handle: Callable[[Any], None]):
        async def take(message: dict[str, Any]) -> None:
            handle(decode(message).data)
        return take

    def _signal(self, signal: Signal) -> None:
        self.signals += 1
        self._strategy[signal.signal_id] = signal.strategy

    def _order(self, order: OrderIntent) -> None:
        self.orders += 1
        strategy = self._strategy.pop(order.signal_id, None)
        if strategy is not None:
            self.strategy_of[order.client_order_id] = strategy
        self._distances[order.client_order_id] = (order.sl_pips, order.tp_pips)

    def _rejected(self, rejection: RiskRejected) -> None:
        self.rejected += 1
        self.blackout_rejected += RiskRejectReason.CALENDAR_BLACKOUT in rejection.reasons
        self._strategy.pop(rejection.signal_id, None)

    def _trade(self, trade: TradeClosed) -> None:
        self.trades.append(trade)
        distances = self._distances.get(trade.client_order_id)
        if distances is not None:
            self.levels[trade.trade_id] = trade_levels(trade, *distances, self.instruments)


__all__ = ["Tally"]
