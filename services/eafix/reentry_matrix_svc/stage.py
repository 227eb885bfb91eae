"""reentry-matrix-svc's bus stage.

    CalendarSignal -> the symbol's proximity to events (what a decision is keyed by)
    Signal        -> remember its family, timeframe, confidence (and a re-entry's place in its chain)
    OrderIntent   -> remember the order's signal and stops
    PriceTick     -> the latest quote (a re-entry's entry price)
    TradeClosed   -> a decision (ReentryDecision on eafix.reentry.decisions); an approved one is stored
                     with its due time
    clock         -> each due re-entry published once as a Signal (1.1, with `reentry`)

With a repository, what a message taught the engine is stored before the bus acknowledges it; a due
re-entry is published first and marked after, so a crash in between publishes it again (risk-manager
decides once per signal id)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from prometheus_client import CollectorRegistry

from eafix.contracts import CalendarGate, CalendarSignal, OrderIntent, PriceTick, Signal, TradeClosed
from eafix.contracts.messaging import Messenger, decode
from eafix.reentry_matrix_svc.engine import ReentryEngine, ReentrySignal
from eafix.reentry_matrix_svc.matrix import Generation
from eafix.reentry_matrix_svc.repository import InMemoryReentryRepository, ReentryRepository
from eafix.reentry_matrix_svc.wire import closed_trade, decision_event, reentry_signal
from eafix.runtime import metric_names as mn
from eafix.runtime.bus.base import Subscriber

Message = dict[str, Any]


@dataclass
class ReentryStage:
    engine: ReentryEngine
    messenger: Messenger
    repo: ReentryRepository | None = None
    group: str = "reentry-matrix-svc"
    calendar: CalendarGate | None = None  # fed from eafix.calendar.signals: the engine's proximity source
    registry: CollectorRegistry | None = None

    def __post_init__(self) -> None:
        if self.repo is None:
            self.repo = InMemoryReentryRepository()
        self.metrics = mn.stage_metrics(self.registry, mn.REENTRY_DECISIONS)

    def subscribe(self, bus: Subscriber) -> None:
        bus.subscribe(PriceTick.TOPIC, self.group, self.on_tick)
        bus.subscribe(Signal.TOPIC, self.group, self.on_signal)
        bus.subscribe(OrderIntent.TOPIC, self.group, self.on_order_intent)
        bus.subscribe(TradeClosed.TOPIC, self.group, self.on_trade_closed)
        if self.calendar is not None:
            bus.subscribe(CalendarSignal.TOPIC, self.group, self.on_calendar, ordered=False)

    @property
    def _repo(self) -> ReentryRepository:
        assert self.repo is not None
        return self.repo

    async def on_calendar(self, message: Message) -> None:
        assert self.calendar is not None
        self.calendar.update(cast(CalendarSignal, decode(message).data))

    async def on_tick(self, message: Message) -> None:
        tick = cast(PriceTick, decode(message).data)
        self.engine.on_tick(tick.symbol, tick.bid, tick.ask)

    async def on_signal(self, message: Message) -> None:
        signal = cast(Signal, decode(message).data)
        link = signal.reentry
        self.engine.on_signal(signal.signal_id, signal.strategy, signal.timeframe.value, signal.confidence,
                              Generation.O if link is None else Generation(link.generation),
                              None if link is None else link.parent_trade_id)
        origin = self.engine.origin(signal.signal_id)
        if origin is not None:
            await self._repo.save_origin(origin, self.messenger.clock.now())

    async def on_order_intent(self, message: Message) -> None:
        intent = cast(OrderIntent, decode(message).data)
        self.engine.on_order_intent(intent.client_order_id, intent.signal_id, intent.sl_pips, intent.tp_pips)
        order = self.engine.order(intent.client_order_id)
        if order is not None:
            await self._repo.save_order(intent.client_order_id, order, self.messenger.clock.now())

    async def on_trade_closed(self, message: Message) -> None:
        env = decode(message)
        verdict = self.engine.on_trade_closed(closed_trade(cast(TradeClosed, env.data)))
        await self._repo.save_verdict(verdict, self.engine.scheduled(verdict.reentry_signal_id))
        await self.messenger.publish([decision_event(verdict)], env)
        if self.metrics is not None:
            self.metrics[mn.REENTRY_DECISIONS].labels(verdict.action.value, verdict.generation.value).inc()

    async def on_clock(self) -> list[ReentrySignal]:
        """Publish the re-entries due now; returns them."""
        now = self.messenger.clock.now()
        due = self.engine.on_clock(now)
        for reentry, price in due:
            await self.messenger.publish([reentry_signal(reentry, price, now)])
            await self._repo.mark_published(reentry.signal_id, now)
        return [r for r, _ in due]
