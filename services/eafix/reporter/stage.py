"""reporter's bus stage: signals, orders, execution reports and closed trades enter the ledger (stored
before the message is acknowledged; a redelivered event is known and skipped), ticks mark the open
positions; with a `market` (the service; not the backtest, whose report has the bars already), bars
and suppressed signals feed the report's price chart (`eafix.reporter.market`). It publishes nothing;
it exports the business metrics of the P&L rules (business.yaml): equity, its peak, realized P&L of
the current UTC day and unrealized P&L per symbol, trades closed.

An order's and a fill's time is the envelope's ts_event (when it happened, not when it arrived).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from prometheus_client import CollectorRegistry

from eafix.contracts import Bar, ExecutionReport, OrderIntent, PriceTick, Signal, SignalSuppressed, TradeClosed
from eafix.contracts.messaging import decode
from eafix.reporter.book import Entry, ReportBook
from eafix.reporter.market import MarketView
from eafix.reporter.repository import InMemoryLedgerRepository, LedgerRepository
from eafix.runtime import metric_names as mn
from eafix.runtime.bus.base import Subscriber
from eafix.runtime.clock import Clock

Message = dict[str, Any]
METRICS = (mn.EQUITY, mn.EQUITY_PEAK, mn.PNL_REALIZED, mn.PNL_UNREALIZED, mn.TRADES_CLOSED)


def outcome(pnl: Decimal) -> str:
    return "win" if pnl > 0 else "loss" if pnl < 0 else "breakeven"


@dataclass
class ReporterStage:
    book: ReportBook
    clock: Clock
    repo: LedgerRepository = field(default_factory=InMemoryLedgerRepository)
    group: str = "reporter"
    registry: CollectorRegistry | None = None
    market: MarketView | None = None

    def __post_init__(self) -> None:
        self.metrics = mn.stage_metrics(self.registry, *METRICS)
        self.peak = self.book.opening_balance
        self._gauged: set[str] = set()

    def subscribe(self, bus: Subscriber) -> None:
        bus.subscribe(PriceTick.TOPIC, self.group, self.on_tick)
        bus.subscribe(Signal.TOPIC, self.group, self.on_signal)
        bus.subscribe(OrderIntent.TOPIC, self.group, self.on_order)
        bus.subscribe(ExecutionReport.TOPIC, self.group, self.on_execution_report)
        bus.subscribe(TradeClosed.TOPIC, self.group, self.on_trade_closed)
        if self.market is not None:
            bus.subscribe(Bar.TOPIC, self.group, self.on_bar)
            bus.subscribe(SignalSuppressed.TOPIC, self.group, self.on_suppressed)

    def restored(self) -> None:
        """After a restore: the equity peak of the realized curve (unrealized peaks are not stored)."""
        balance = peak = self.book.opening_balance
        for trade in sorted(self.book.trades.values(), key=lambda t: (t.close_time, str(t.trade_id))):
            balance += trade.pnl
            peak = max(peak, balance)
        self.peak = peak
        self.gauge()

    async def _store(self, entries: Sequence[Entry | None]) -> None:
        new = [e for e in entries if e is not None]
        if new:
            await self.repo.append(new)

    async def on_tick(self, message: Message) -> None:
        self.book.on_tick(cast(PriceTick, decode(message).data))
        self.gauge()

    async def on_bar(self, message: Message) -> None:
        assert self.market is not None  # subscribed only with a market
        self.market.on_bar(cast(Bar, decode(message).data))

    async def on_suppressed(self, message: Message) -> None:
        assert self.market is not None
        self.market.on_suppressed(cast(SignalSuppressed, decode(message).data))

    async def on_signal(self, message: Message) -> None:
        await self._store([self.book.on_signal(cast(Signal, decode(message).data))])

    async def on_order(self, message: Message) -> None:
        env = decode(message)
        await self._store([self.book.on_order(cast(OrderIntent, env.data), env.ts_event)])
        self.gauge()  # a fill that arrived before its order can be marked now (topics are separate streams)

    async def on_execution_report(self, message: Message) -> None:
        env = decode(message)
        await self._store([self.book.on_execution(cast(ExecutionReport, env.data), env.ts_event)])
        self.gauge()

    async def on_trade_closed(self, message: Message) -> None:
        trade = cast(TradeClosed, decode(message).data)
        entry = self.book.on_trade(trade)
        await self._store([entry])
        if entry is not None and self.metrics is not None:
            self.metrics[mn.TRADES_CLOSED].labels(trade.symbol, outcome(trade.pnl)).inc()
        self.gauge()

    def gauge(self) -> None:
        if self.metrics is None:  # a backtest exports nothing: skip the marking on every tick
            return
        equity = self.book.equity()
        self.peak = max(self.peak, equity)
        self.metrics[mn.EQUITY].set(float(equity))
        self.metrics[mn.EQUITY_PEAK].set(float(self.peak))
        realized = self.book.realized_on(self.clock.now().date())
        unrealized = self.book.unrealized().by_symbol
        for symbol in self._gauged | set(realized) | set(unrealized):  # a symbol gone flat drops to 0
            self.metrics[mn.PNL_REALIZED].labels(symbol).set(float(realized.get(symbol, 0)))
            self.metrics[mn.PNL_UNREALIZED].labels(symbol).set(float(unrealized.get(symbol, 0)))
        self._gauged |= set(realized) | set(unrealized)
