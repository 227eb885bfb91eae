"""execution-engine's bus stage: OrderIntent -> broker -> ExecutionReports and TradeClosed; ticks (and
bars in a backtest) drive the broker. Every engine call goes through the `ExecutionGateway`, which
stores the changes and the outputs (outbox) and publishes them; the bus acknowledges after that."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from prometheus_client import CollectorRegistry

from eafix.contracts import Bar, ExecutionReport, ExecutionStatus, OrderIntent, PriceTick
from eafix.contracts.events import Event
from eafix.contracts.messaging import decode
from eafix.execution_engine.domain import ExecutionEngine
from eafix.execution_engine.gateway import ExecutionGateway
from eafix.runtime import metric_names as mn
from eafix.runtime.bus.base import Subscriber
from eafix.runtime.clock import seconds_since

Message = dict[str, Any]
_INTENTS_SEEN = 10_000  # orders that never fill must not grow the latency memory forever


@dataclass
class ExecutionStage:
    gateway: ExecutionGateway
    bars: bool = False  # drive the broker with bars (simulated bar broker)
    group: str = "execution-engine"
    registry: CollectorRegistry | None = None
    broker_name: str = "paper"

    def __post_init__(self) -> None:
        self.metrics = mn.stage_metrics(self.registry, mn.ORDERS_SUBMITTED, mn.ORDERS_FILLED, mn.ORDERS_FAILED,
                                        mn.ORDER_EXECUTION_LATENCY, mn.SLIPPAGE)
        self._intent_seen: dict[str, Any] = {}  # client_order_id -> (intent created, intent) for latency/slippage

    @property
    def engine(self) -> ExecutionEngine:
        return self.gateway.engine

    def _observe(self, outputs: Sequence[Event]) -> None:
        if self.metrics is None:
            return
        now = self.gateway.messenger.clock.now()
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
                    self.metrics[mn.ORDER_EXECUTION_LATENCY].labels(self.broker_name).observe(
                        seconds_since(now, created))
                    if out.avg_price is not None:
                        # adverse slippage is positive: paid more going LONG, received less going SHORT
                        sign = 1 if intent.direction == "LONG" else -1
                        bps = sign * (out.avg_price - intent.entry_price) / intent.entry_price * 10_000
                        self.metrics[mn.SLIPPAGE].labels(out.symbol).observe(float(bps))
            elif out.status in (ExecutionStatus.REJECTED, ExecutionStatus.TIMEOUT, ExecutionStatus.EXPIRED):
                self.metrics[mn.ORDERS_FAILED].labels(self.broker_name, str(out.status).lower()).inc()
                self._intent_seen.pop(key, None)

    def subscribe(self, bus: Subscriber) -> None:
        bus.subscribe(OrderIntent.TOPIC, self.group, self.on_order_intent)
        bus.subscribe(PriceTick.TOPIC, self.group, self.on_tick)
        if self.bars:
            bus.subscribe(Bar.TOPIC, self.group, self.on_bar)

    async def on_order_intent(self, message: Message) -> None:
        env = decode(message)
        intent = cast(OrderIntent, env.data)
        if self.metrics is not None:
            self._intent_seen.setdefault(str(intent.client_order_id), (env.ts_init, intent))
            if len(self._intent_seen) > _INTENTS_SEEN:
                self._intent_seen.pop(next(iter(self._intent_seen)))
        self._observe(await self.gateway.order_intent(intent, env))

    async def on_tick(self, message: Message) -> None:
        env = decode(message)
        tick = cast(PriceTick, env.data)
        self._observe(await self.gateway.run(lambda: self.gateway.engine.on_tick(tick), env))

    async def on_bar(self, message: Message) -> None:
        env = decode(message)
        bar = cast(Bar, env.data)
        self._observe(await self.gateway.run(lambda: self.gateway.engine.on_bar(bar), env))

    async def on_clock(self) -> None:
        """TIMEOUT of unanswered orders (a timer calls this; the backtest after every input)."""
        gateway = self.gateway
        self._observe(await gateway.run(lambda: gateway.engine.on_clock(gateway.messenger.clock.now())))
