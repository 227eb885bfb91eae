"""Composition root of the trading pipeline: the domain engines and their bus adapters ("stages").

The same stages run in two places, and only the implementations of the ports change:
- a service process (`eafix serve <service>`): one stage on the Redis Streams bus, the wall clock,
  repositories on PostgreSQL and the paper broker;
- the backtest (`eafix backtest`): all stages on the in-memory bus, a test clock, no repositories
  and the simulated bar broker (or the paper broker on tick data).

A stage decodes a message, calls its engine (pure code), stores what changed (when it has a
repository), then publishes the outputs with the handled envelope as their cause. Only after the
handler returns does the bus acknowledge the message, so a crash redelivers it; every engine is
idempotent on the business key (signal id, idempotency key, trade id).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eafix.contracts import (
    Bar,
    ExecutionReport,
    IndicatorVector,
    OrderIntent,
    PriceTick,
    Signal,
    SystemRiskOff,
    TradeClosed,
)
from eafix.contracts.events import Event
from eafix.execution_engine.app import ExecutionGateway
from eafix.execution_engine.domain import ExecutionEngine
from eafix.indicator_engine.domain import IndicatorEngine
from eafix.risk_manager.domain import RiskEngine
from eafix.risk_manager.repository import PortfolioRepository, persist_changes
from eafix.runtime.bus.base import Bus
from eafix.runtime.messaging import Messenger, decode
from eafix.signal_generator.domain import SignalEngine

Message = dict[str, Any]


@dataclass
class IndicatorStage:
    """indicator-engine: ticks -> closed bars + IndicatorVectors (or bars -> vectors on bar data)."""

    engine: IndicatorEngine
    messenger: Messenger
    source: str = "ticks"  # "bars": the feed publishes bars (backtest on OHLCV data)
    group: str = "indicator-engine"

    def subscribe(self, bus: Bus) -> None:
        if self.source == "ticks":
            bus.subscribe(PriceTick.TOPIC, self.group, self.on_tick)
        else:
            bus.subscribe(Bar.TOPIC, self.group, self.on_bar)

    async def on_tick(self, message: Message) -> None:
        env = decode(message)
        out = self.engine.on_tick(env.data)
        if out.bars or out.vectors:
            await self.messenger.publish([*out.bars, *out.vectors], env)

    async def on_bar(self, message: Message) -> None:
        env = decode(message)
        vector = self.engine.on_bar(env.data)
        if vector is not None:
            await self.messenger.publish([vector], env)

    async def flush(self) -> None:
        """Close bars whose period ended without a new tick (a timer calls this)."""
        out = self.engine.flush()
        if out.bars or out.vectors:
            await self.messenger.publish([*out.bars, *out.vectors])


@dataclass
class SignalStage:
    """signal-generator: bar closes + indicator vectors -> Signal / SignalSuppressed; risk-off latch."""

    engine: SignalEngine
    messenger: Messenger
    group: str = "signal-generator"

    def subscribe(self, bus: Bus) -> None:
        bus.subscribe(Bar.TOPIC, self.group, self.on_bar)
        bus.subscribe(IndicatorVector.TOPIC, self.group, self.on_indicators)
        bus.subscribe(SystemRiskOff.TOPIC, self.group, self.on_risk_off, ordered=False)

    async def on_bar(self, message: Message) -> None:
        env = decode(message)
        await self.messenger.publish(self.engine.on_bar(env.data), env)

    async def on_indicators(self, message: Message) -> None:
        env = decode(message)
        await self.messenger.publish(self.engine.on_indicators(env.data), env)

    async def on_risk_off(self, message: Message) -> None:
        self.engine.on_risk_off(decode(message).data)


@dataclass
class RiskStage:
    """risk-manager: Signal -> OrderIntent | RiskRejected; fills and closed trades update the portfolio."""

    engine: RiskEngine
    messenger: Messenger
    repo: PortfolioRepository | None = None
    group: str = "risk-manager"

    def subscribe(self, bus: Bus) -> None:
        bus.subscribe(PriceTick.TOPIC, self.group, self.on_tick)
        bus.subscribe(Signal.TOPIC, self.group, self.on_signal)
        bus.subscribe(ExecutionReport.TOPIC, self.group, self.on_execution_report)
        bus.subscribe(TradeClosed.TOPIC, self.group, self.on_trade_closed)

    async def _commit(self) -> None:
        if self.repo is not None:
            await persist_changes(self.engine, self.repo)

    async def on_tick(self, message: Message) -> None:
        self.engine.on_tick(decode(message).data)

    async def on_signal(self, message: Message) -> None:
        env = decode(message)
        decision = self.engine.on_signal(env.data)
        await self._commit()
        await self.messenger.publish([decision], env)

    async def on_execution_report(self, message: Message) -> None:
        self.engine.on_execution_report(decode(message).data)
        await self._commit()

    async def on_trade_closed(self, message: Message) -> None:
        self.engine.on_trade_closed(decode(message).data)
        await self._commit()


@dataclass
class ExecutionStage:
    """execution-engine: OrderIntent -> broker -> ExecutionReports and TradeClosed."""

    engine: ExecutionEngine
    messenger: Messenger
    gateway: ExecutionGateway | None = None  # stores changes under one lock (service process)
    bars: bool = False  # drive the broker with bars (simulated bar broker)
    group: str = "execution-engine"

    def subscribe(self, bus: Bus) -> None:
        bus.subscribe(OrderIntent.TOPIC, self.group, self.on_order_intent)
        bus.subscribe(PriceTick.TOPIC, self.group, self.on_tick)
        if self.bars:
            bus.subscribe(Bar.TOPIC, self.group, self.on_bar)

    async def _run(self, call, cause) -> None:
        outputs: Sequence[Event] = await self.gateway.run(call) if self.gateway is not None else call()
        if outputs:
            await self.messenger.publish(outputs, cause)

    async def on_order_intent(self, message: Message) -> None:
        env = decode(message)
        if self.gateway is not None:
            outputs = await self.gateway.order_intent(env.data)
        else:
            outputs = self.engine.on_order_intent(env.data)
        if outputs:
            await self.messenger.publish(outputs, env)

    async def on_tick(self, message: Message) -> None:
        env = decode(message)
        await self._run(lambda: self.engine.on_tick(env.data), env)

    async def on_bar(self, message: Message) -> None:
        env = decode(message)
        await self._run(lambda: self.engine.on_bar(env.data), env)

    async def on_clock(self) -> None:
        """TIMEOUT of unanswered orders (a timer calls this; the backtest after every input)."""
        await self._run(lambda: self.engine.on_clock(self.messenger.clock.now()), None)


@dataclass
class Collector:
    """Keeps the events of the given topics (backtest results, tests)."""

    topics: Iterable[str]
    group: str = "collector"
    events: dict[str, list[Event]] = field(default_factory=dict)

    def subscribe(self, bus: Bus) -> None:
        for topic in self.topics:
            self.events.setdefault(topic, [])
            bus.subscribe(topic, self.group, self._keep(topic))

    def _keep(self, topic: str):
        async def keep(message: Message) -> None:
            self.events[topic].append(decode(message).data)
        return keep
