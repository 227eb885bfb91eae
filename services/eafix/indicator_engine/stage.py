"""indicator-engine's bus stage: ticks -> closed bars + IndicatorVectors (or bars -> vectors on bar
data, the backtest). It decodes a message, calls the engine (pure code) and publishes the outputs
with the handled envelope as their cause; the bus acknowledges after the handler returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from prometheus_client import CollectorRegistry

from eafix.contracts import Bar, IndicatorVector, PriceTick
from eafix.contracts.messaging import Messenger, decode
from eafix.indicator_engine.domain import IndicatorEngine
from eafix.runtime import metric_names as mn
from eafix.runtime.bus.base import Subscriber
from eafix.runtime.clock import seconds_since

Message = dict[str, Any]


@dataclass
class IndicatorStage:
    engine: IndicatorEngine
    messenger: Messenger
    source: str = "ticks"  # "bars": the feed publishes bars (backtest on OHLCV data)
    group: str = "indicator-engine"
    registry: CollectorRegistry | None = None

    def __post_init__(self) -> None:
        self.metrics = mn.stage_metrics(self.registry, mn.BARS_CLOSED, mn.INDICATOR_LATENCY)

    def _observe(self, bars: Sequence[Bar], vectors: Sequence[IndicatorVector]) -> None:
        if self.metrics is None:
            return
        now = self.messenger.clock.now()
        for bar in bars:
            self.metrics[mn.BARS_CLOSED].labels(bar.symbol, bar.timeframe).inc()
        for vector in vectors:
            self.metrics[mn.INDICATOR_LATENCY].labels(vector.timeframe).observe(seconds_since(now, vector.ts))

    def subscribe(self, bus: Subscriber) -> None:
        if self.source == "ticks":
            bus.subscribe(PriceTick.TOPIC, self.group, self.on_tick)
        else:
            bus.subscribe(Bar.TOPIC, self.group, self.on_bar)

    async def on_tick(self, message: Message) -> None:
        env = decode(message)
        out = self.engine.on_tick(cast(PriceTick, env.data))
        if out.bars or out.vectors:
            await self.messenger.publish([*out.bars, *out.vectors], env)
            self._observe(out.bars, out.vectors)

    async def on_bar(self, message: Message) -> None:
        env = decode(message)
        vector = self.engine.on_bar(cast(Bar, env.data))
        if vector is not None:
            await self.messenger.publish([vector], env)
            self._observe((), (vector,))

    async def flush(self, now: datetime | None = None) -> None:
        """Close bars whose period ended by `now` (default: the engine's clock) without a new tick (a timer
        calls this)."""
        out = self.engine.flush(now)
        if out.bars or out.vectors:
            await self.messenger.publish([*out.bars, *out.vectors])
            self._observe(out.bars, out.vectors)
