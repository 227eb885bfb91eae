"""Composition root of the trading pipeline: the domain engines and their bus adapters ("stages").

The same stages run in two places, and only the implementations of the ports change:
- a service process (`eafix serve <service>`): one stage on the Redis Streams bus, the wall clock,
  repositories on PostgreSQL and the paper broker;
- the backtest (`eafix backtest`): all stages on the in-memory bus, a test clock, no repositories
  and the simulated bar broker (or the paper broker on tick data).

A stage decodes a message, calls its engine (pure code), stores what changed (when it has a
repository), then publishes the outputs with the handled envelope as their cause. execution-engine's
outputs are stored with its changes (a transactional outbox) and published by its gateway, so a
crash between the store and the publish loses nothing. Only after the
handler returns does the bus acknowledge the message, so a crash redelivers it; every engine is
idempotent on the business key (signal id, idempotency key, trade id).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from eafix.contracts import (
    Bar,
    ExecutionReport,
    ExecutionStatus,
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
from eafix.risk_manager.domain import RiskEngine, conversion_rate
from eafix.risk_manager.repository import PortfolioRepository, persist_changes
from eafix.runtime import metric_names as mn
from eafix.runtime.bus.base import Bus
from eafix.runtime.messaging import Messenger, decode
from eafix.signal_generator.domain import SignalEngine

Message = dict[str, Any]


def _metrics(registry: CollectorRegistry | None, *specs: mn.MetricSpec) -> dict[mn.MetricSpec, Any] | None:
    """The business metrics a stage exports (declared in runtime.metric_names); None in a backtest."""
    return mn.create(registry, *specs) if registry is not None else None


def _age(clock_now, ts) -> float:
    return max((clock_now - ts).total_seconds(), 0.0)


@dataclass
class IndicatorStage:
    """indicator-engine: ticks -> closed bars + IndicatorVectors (or bars -> vectors on bar data)."""

    engine: IndicatorEngine
    messenger: Messenger
    source: str = "ticks"  # "bars": the feed publishes bars (backtest on OHLCV data)
    group: str = "indicator-engine"
    registry: CollectorRegistry | None = None

    def __post_init__(self) -> None:
        self.metrics = _metrics(self.registry, mn.BARS_CLOSED, mn.INDICATOR_LATENCY)

    def _observe(self, bars: Sequence[Bar], vectors: Sequence[IndicatorVector]) -> None:
        if self.metrics is None:
            return
        now = self.messenger.clock.now()
        for bar in bars:
            self.metrics[mn.BARS_CLOSED].labels(bar.symbol, bar.timeframe).inc()
        for vector in vectors:
            self.metrics[mn.INDICATOR_LATENCY].labels(vector.timeframe).observe(_age(now, vector.ts))

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
            self._observe(out.bars, out.vectors)

    async def on_bar(self, message: Message) -> None:
        env = decode(message)
        vector = self.engine.on_bar(env.data)
        if vector is not None:
            await self.messenger.publish([vector], env)
            self._observe((), (vector,))

    async def flush(self) -> None:
        """Close bars whose period ended without a new tick (a timer calls this)."""
        out = self.engine.flush()
        if out.bars or out.vectors:
            await self.messenger.publish([*out.bars, *out.vectors])
            self._observe(out.bars, out.vectors)


@dataclass
class SignalStage:
    """signal-generator: bar closes + indicator vectors -> Signal / SignalSuppressed; risk-off latch."""

    engine: SignalEngine
    messenger: Messenger
    group: str = "signal-generator"
    registry: CollectorRegistry | None = None

    def __post_init__(self) -> None:
        self.metrics = _metrics(self.registry, mn.SIGNALS_GENERATED, mn.SIGNALS_SUPPRESSED, mn.SIGNAL_LATENCY,
                                mn.RISK_OFF_ACTIVE)

    async def _emit(self, outputs, env) -> None:
        await self.messenger.publish(outputs, env)
        if self.metrics is None or not outputs:
            return
        for out in outputs:
            if isinstance(out, Signal):
                self.metrics[mn.SIGNALS_GENERATED].labels(out.symbol, out.direction).inc()
                self.metrics[mn.SIGNAL_LATENCY].observe(_age(self.messenger.clock.now(), env.ts_init))
            else:
                self.metrics[mn.SIGNALS_SUPPRESSED].labels(out.reason).inc()

    def _latch(self) -> None:
        if self.metrics is not None:
            self.metrics[mn.RISK_OFF_ACTIVE].set(1 if self.engine.risk_off is not None else 0)

    def subscribe(self, bus: Bus) -> None:
        bus.subscribe(Bar.TOPIC, self.group, self.on_bar)
        bus.subscribe(IndicatorVector.TOPIC, self.group, self.on_indicators)
        bus.subscribe(SystemRiskOff.TOPIC, self.group, self.on_risk_off, ordered=False)

    async def on_bar(self, message: Message) -> None:
        env = decode(message)
        await self._emit(self.engine.on_bar(env.data), env)

    async def on_indicators(self, message: Message) -> None:
        env = decode(message)
        await self._emit(self.engine.on_indicators(env.data), env)

    async def on_risk_off(self, message: Message) -> None:
        self.engine.on_risk_off(decode(message).data)
        self._latch()


@dataclass
class RiskStage:
    """risk-manager: Signal -> OrderIntent | RiskRejected; fills and closed trades update the portfolio."""

    engine: RiskEngine
    messenger: Messenger
    repo: PortfolioRepository | None = None
    group: str = "risk-manager"
    registry: CollectorRegistry | None = None

    def __post_init__(self) -> None:
        self.metrics = _metrics(self.registry, mn.RISK_CHECK_LATENCY, mn.RISK_DECISIONS, mn.EXPOSURE,
                                mn.POSITION_LIMIT_UTILIZATION, mn.CONCENTRATION)
        self._gauged: set[str] = set()

    def _gauge_exposure(self) -> None:
        """Exposure gauges from the portfolio: notional in USD (lots x 100,000 base units at the latest
        mid), positions over the per-symbol limit, and each symbol's share of the total notional."""
        if self.metrics is None:
            return
        engine = self.engine
        quotes = {q.symbol: q for q in engine.quotes()}
        notional: dict[str, float] = {}
        for p in engine.portfolio.positions.values():
            rate = conversion_rate(p.symbol[:3], "USD", quotes, engine.config.conversion_via)
            if rate is not None:
                notional[p.symbol] = notional.get(p.symbol, 0.0) + float(p.lots * 100_000 * rate[0] / rate[1])
        total = sum(notional.values())
        limit = engine.config.max_positions_per_symbol
        for symbol in self._gauged | set(notional):  # symbols that went flat drop to 0
            self.metrics[mn.EXPOSURE].labels(symbol).set(notional.get(symbol, 0.0))
            self.metrics[mn.POSITION_LIMIT_UTILIZATION].labels(symbol).set(engine.portfolio.count(symbol) / limit)
            self.metrics[mn.CONCENTRATION].labels(symbol).set(notional.get(symbol, 0.0) / total if total else 0.0)
        self._gauged |= set(notional)

    def subscribe(self, bus: Bus) -> None:
        bus.subscribe(PriceTick.TOPIC, self.group, self.on_tick)
        bus.subscribe(Signal.TOPIC, self.group, self.on_signal)
        bus.subscribe(ExecutionReport.TOPIC, self.group, self.on_execution_report)
        bus.subscribe(TradeClosed.TOPIC, self.group, self.on_trade_closed)

    async def _commit(self) -> None:
        if self.repo is not None:
            await persist_changes(self.engine, self.repo)
        self._gauge_exposure()

    async def on_tick(self, message: Message) -> None:
        self.engine.on_tick(decode(message).data)

    async def on_signal(self, message: Message) -> None:
        env = decode(message)
        started = time.perf_counter()
        decision = self.engine.on_signal(env.data)
        if self.metrics is not None:
            self.metrics[mn.RISK_CHECK_LATENCY].observe(time.perf_counter() - started)
            outcome = "approved" if isinstance(decision, OrderIntent) else "rejected"
            self.metrics[mn.RISK_DECISIONS].labels(outcome).inc()
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
    # service process: stores changes and outputs (outbox) under one lock and publishes the outputs
    gateway: ExecutionGateway | None = None
    bars: bool = False  # drive the broker with bars (simulated bar broker)
    group: str = "execution-engine"
    registry: CollectorRegistry | None = None
    broker_name: str = "paper"

    def __post_init__(self) -> None:
        self.metrics = _metrics(self.registry, mn.ORDERS_SUBMITTED, mn.ORDERS_FILLED, mn.ORDERS_FAILED,
                                mn.ORDER_EXECUTION_LATENCY, mn.SLIPPAGE)
        if self.gateway is not None and self.gateway.messenger is None:
            raise ValueError("the gateway of an ExecutionStage needs a messenger (it publishes through its outbox)")
        self._intent_seen: dict[str, Any] = {}  # client_order_id -> (intent created, intent) for latency/slippage
        # Without a gateway (no repository, no outbox: the backtest) outputs not published yet. The
        # engine is idempotent, so a redelivered message produces nothing the second time: what a
        # failed publish left here goes out first on the next call instead. With a gateway the outbox
        # does this (and survives a crash).
        self._unpublished: list[tuple[list[Event], Any]] = []

    async def _publish(self, outputs: Sequence[Event], cause) -> None:
        if self.gateway is not None:  # stored in the outbox and published by the gateway already
            self._observe(outputs)
            return
        if outputs:
            self._unpublished.append((list(outputs), cause))
        while self._unpublished:
            events, their_cause = self._unpublished[0]
            await self.messenger.publish(events, their_cause)
            self._unpublished.pop(0)
            self._observe(events)

    def _observe(self, outputs: Sequence[Event]) -> None:
        if self.metrics is None:
            return
        now = self.messenger.clock.now()
        for out in outputs:
            if not isinstance(out, ExecutionReport):
                continue
            key = str(out.client_order_id)
            if out.status == ExecutionStatus.PENDING:  # once per order; it goes to the broker at once
                self.metrics[mn.ORDERS_SUBMITTED].labels(out.symbol, self.broker_name).inc()
            elif out.status == ExecutionStatus.FILLED:
                self.metrics[mn.ORDERS_FILLED].labels(out.symbol, self.broker_name).inc()
                seen = self._intent_seen.pop(key, None)
                if seen is not None:
                    created, intent = seen
                    self.metrics[mn.ORDER_EXECUTION_LATENCY].labels(self.broker_name).observe(_age(now, created))
                    if out.avg_price is not None:
                        # adverse slippage is positive: paid more going LONG, received less going SHORT
                        sign = 1 if intent.direction == "LONG" else -1
                        bps = sign * (out.avg_price - intent.entry_price) / intent.entry_price * 10_000
                        self.metrics[mn.SLIPPAGE].labels(out.symbol).observe(float(bps))
            elif out.status in (ExecutionStatus.REJECTED, ExecutionStatus.TIMEOUT, ExecutionStatus.EXPIRED):
                self.metrics[mn.ORDERS_FAILED].labels(self.broker_name, str(out.status).lower()).inc()
                self._intent_seen.pop(key, None)

    def subscribe(self, bus: Bus) -> None:
        bus.subscribe(OrderIntent.TOPIC, self.group, self.on_order_intent)
        bus.subscribe(PriceTick.TOPIC, self.group, self.on_tick)
        if self.bars:
            bus.subscribe(Bar.TOPIC, self.group, self.on_bar)

    async def _run(self, call, cause) -> None:
        outputs: Sequence[Event] = await self.gateway.run(call, cause) if self.gateway is not None else call()
        await self._publish(outputs, cause)

    async def on_order_intent(self, message: Message) -> None:
        env = decode(message)
        if self.metrics is not None:
            self._intent_seen.setdefault(str(env.data.client_order_id), (env.ts_init, env.data))
            if len(self._intent_seen) > 10_000:  # orders that never fill must not grow this forever
                self._intent_seen.pop(next(iter(self._intent_seen)))
        if self.gateway is not None:
            outputs = await self.gateway.order_intent(env.data, env)
        else:
            outputs = self.engine.on_order_intent(env.data)
        await self._publish(outputs, env)

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
