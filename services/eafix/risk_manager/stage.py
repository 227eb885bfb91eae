"""risk-manager's bus stage: Signal -> OrderIntent | RiskRejected; ticks keep the quotes; fills and
closed trades update the portfolio. With a repository the changes of each message are stored (one
transaction) before the decision is published and the message acknowledged."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

from prometheus_client import CollectorRegistry

from eafix.contracts import CalendarGate, CalendarSignal, ExecutionReport, OrderIntent, PriceTick, Signal, TradeClosed
from eafix.contracts.messaging import Messenger, decode
from eafix.risk_manager.engine import RiskEngine
from eafix.risk_manager.repository import PortfolioRepository, persist_changes
from eafix.runtime import metric_names as mn
from eafix.runtime.bus.base import Subscriber

Message = dict[str, Any]


@dataclass
class RiskStage:
    engine: RiskEngine
    messenger: Messenger
    repo: PortfolioRepository | None = None
    group: str = "risk-manager"
    registry: CollectorRegistry | None = None
    calendar: CalendarGate | None = None  # fed from eafix.calendar.signals; the engine's blackout gate

    def __post_init__(self) -> None:
        if self.calendar is not None:
            self.engine.blackout = self.calendar
        self.metrics = mn.stage_metrics(self.registry, mn.RISK_CHECK_LATENCY, mn.RISK_DECISIONS, mn.EXPOSURE,
                                        mn.POSITION_LIMIT_UTILIZATION, mn.CONCENTRATION)
        self._gauged: set[str] = set()

    def _gauge_exposure(self) -> None:
        """Exposure gauges from the portfolio: notional in USD (lots x contract size of the base at the
        latest mids), positions over the per-symbol limit, and each symbol's share of the total."""
        if self.metrics is None:
            return
        engine = self.engine
        notional: dict[str, float] = {}
        for p in engine.portfolio.positions.values():
            instrument = engine.instruments[p.symbol]
            usd = engine.quote_book.convert(p.lots * instrument.contract_size, instrument.base, "USD")
            if usd is not None:
                notional[p.symbol] = notional.get(p.symbol, 0.0) + float(usd)
        total = sum(notional.values())
        limit = engine.config.max_positions_per_symbol
        for symbol in self._gauged | set(notional):  # symbols that went flat drop to 0
            self.metrics[mn.EXPOSURE].labels(symbol).set(notional.get(symbol, 0.0))
            self.metrics[mn.POSITION_LIMIT_UTILIZATION].labels(symbol).set(engine.portfolio.count(symbol) / limit)
            self.metrics[mn.CONCENTRATION].labels(symbol).set(notional.get(symbol, 0.0) / total if total else 0.0)
        self._gauged |= set(notional)

    def subscribe(self, bus: Subscriber) -> None:
        bus.subscribe(PriceTick.TOPIC, self.group, self.on_tick)
        bus.subscribe(Signal.TOPIC, self.group, self.on_signal)
        bus.subscribe(ExecutionReport.TOPIC, self.group, self.on_execution_report)
        bus.subscribe(TradeClosed.TOPIC, self.group, self.on_trade_closed)
        if self.calendar is not None:
            bus.subscribe(CalendarSignal.TOPIC, self.group, self.on_calendar, ordered=False)

    async def _commit(self) -> None:
        if self.repo is not None:
            await persist_changes(self.engine, self.repo)
        self._gauge_exposure()

    async def on_calendar(self, message: Message) -> None:
        assert self.calendar is not None
        self.calendar.update(cast(CalendarSignal, decode(message).data))

    async def on_tick(self, message: Message) -> None:
        self.engine.on_tick(cast(PriceTick, decode(message).data))

    async def on_signal(self, message: Message) -> None:
        env = decode(message)
        started = time.perf_counter()
        decision = self.engine.on_signal(cast(Signal, env.data))
        if self.metrics is not None:
            self.metrics[mn.RISK_CHECK_LATENCY].observe(time.perf_counter() - started)
            outcome = "approved" if isinstance(decision, OrderIntent) else "rejected"
            self.metrics[mn.RISK_DECISIONS].labels(outcome).inc()
        await self._commit()
        await self.messenger.publish([decision], env)

    async def on_execution_report(self, message: Message) -> None:
        self.engine.on_execution_report(cast(ExecutionReport, decode(message).data))
        await self._commit()

    async def on_trade_closed(self, message: Message) -> None:
        self.engine.on_trade_closed(cast(TradeClosed, decode(message).data))
        await self._commit()
