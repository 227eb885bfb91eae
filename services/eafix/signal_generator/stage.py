"""signal-generator's bus stage: bar closes + indicator vectors -> Signal / SignalSuppressed, and the
risk-off latch (every replica follows `eafix.system.risk_off`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from prometheus_client import CollectorRegistry

from eafix.contracts import Bar, CalendarGate, CalendarSignal, IndicatorVector, Signal, SystemRiskOff
from eafix.contracts.messaging import Messenger, decode
from eafix.runtime import metric_names as mn
from eafix.runtime.bus.base import Subscriber
from eafix.runtime.clock import seconds_since
from eafix.signal_generator.domain import SignalEngine

Message = dict[str, Any]


@dataclass
class SignalStage:
    engine: SignalEngine
    messenger: Messenger
    group: str = "signal-generator"
    registry: CollectorRegistry | None = None
    calendar: CalendarGate | None = None  # the engine's blackout gate, fed from eafix.calendar.signals

    def __post_init__(self) -> None:
        self.metrics = mn.stage_metrics(self.registry, mn.SIGNALS_GENERATED, mn.SIGNALS_SUPPRESSED,
                                        mn.SIGNAL_LATENCY, mn.RISK_OFF_ACTIVE)

    async def _emit(self, outputs, env) -> None:
        await self.messenger.publish(outputs, env)
        if self.metrics is None or not outputs:
            return
        for out in outputs:
            if isinstance(out, Signal):
                self.metrics[mn.SIGNALS_GENERATED].labels(out.symbol, out.direction).inc()
                self.metrics[mn.SIGNAL_LATENCY].observe(seconds_since(self.messenger.clock.now(), env.ts_init))
            else:
                self.metrics[mn.SIGNALS_SUPPRESSED].labels(out.reason).inc()

    def _latch(self) -> None:
        if self.metrics is not None:
            self.metrics[mn.RISK_OFF_ACTIVE].set(1 if self.engine.risk_off is not None else 0)

    def subscribe(self, bus: Subscriber) -> None:
        bus.subscribe(Bar.TOPIC, self.group, self.on_bar)
        bus.subscribe(IndicatorVector.TOPIC, self.group, self.on_indicators)
        bus.subscribe(SystemRiskOff.TOPIC, self.group, self.on_risk_off, ordered=False)
        if self.calendar is not None:
            bus.subscribe(CalendarSignal.TOPIC, self.group, self.on_calendar, ordered=False)

    async def on_bar(self, message: Message) -> None:
        env = decode(message)
        await self._emit(self.engine.on_bar(cast(Bar, env.data)), env)

    async def on_indicators(self, message: Message) -> None:
        env = decode(message)
        await self._emit(self.engine.on_indicators(cast(IndicatorVector, env.data)), env)

    async def on_calendar(self, message: Message) -> None:
        assert self.calendar is not None
        self.calendar.update(cast(CalendarSignal, decode(message).data))

    async def on_risk_off(self, message: Message) -> None:
        self.engine.on_risk_off(cast(SystemRiskOff, decode(message).data))
        self._latch()
