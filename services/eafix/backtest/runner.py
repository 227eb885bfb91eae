"""Replay bars or ticks through the five pipeline stages in one process (and, given a matrix,
reentry-matrix-svc's stage: closed trades are decided and due re-entries go back in as signals).

The stages are those of the service processes (`eafix.<service>.stage`) on the in-memory bus with a
test clock, deterministic event ids and in-memory storage (execution's outbox included), so the same
input gives the same trades. This is the one module that wires every stage together. Bar
data: the feed publishes, per bar, a quote at its close (bid = close, ask = close + spread) and
the bar itself; orders fill at the next bar's open through the simulated bar broker. Tick data:
the feed publishes the ticks; bars come from the indicator engine's bar builder and the paper
broker fills at bid/ask.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import cast

from eafix.backtest.collector import Collector
from eafix.backtest.data import Dataset
from eafix.contracts import (
    Bar,
    OrderIntent,
    PriceTick,
    RiskRejected,
    Signal,
    SignalSuppressed,
    TradeClosed,
)
from eafix.contracts.events import ReentryDecision
from eafix.contracts.messaging import Messenger, counter_ids
from eafix.contracts.primitives import CloseReason
from eafix.contracts.strategies import SignalGeneratorConfig
from eafix.execution_engine.brokers import Costs, PaperBroker, SimulatedBarBroker
from eafix.execution_engine.domain import ExecutionEngine
from eafix.execution_engine.gateway import ExecutionGateway
from eafix.execution_engine.repository import InMemoryExecutionRepository
from eafix.execution_engine.stage import ExecutionStage
from eafix.indicator_engine.domain import IndicatorEngine
from eafix.indicator_engine.stage import IndicatorStage
from eafix.instruments import DEFAULT_INSTRUMENTS, Instruments
from eafix.reentry_matrix_svc.engine import ReentryEngine
from eafix.reentry_matrix_svc.matrix import Matrix, MatrixError, load_matrix
from eafix.reentry_matrix_svc.stage import ReentryStage
from eafix.reporter.book import ReportBook
from eafix.reporter.stage import ReporterStage
from eafix.risk_manager.config import RiskConfig
from eafix.risk_manager.engine import RiskEngine
from eafix.risk_manager.stage import RiskStage
from eafix.runtime.bus.memory import InMemoryBus
from eafix.runtime.clock import TestClock
from eafix.signal_generator.domain import SignalEngine
from eafix.signal_generator.stage import SignalStage

RESULT_TOPICS = (TradeClosed.TOPIC, Signal.TOPIC, SignalSuppressed.TOPIC, OrderIntent.TOPIC, RiskRejected.TOPIC,
                 ReentryDecision.TOPIC)


@dataclass(frozen=True)
class BacktestResult:
    trades: list[TradeClosed]
    signals: int
    suppressed: int
    orders: int
    rejected: int
    inputs: int
    account_currency: str
    opening_balance: Decimal
    strategy_of: dict[str, str]  # trade id (its opening order's client_order_id) -> strategy
    reentry_decisions: tuple[ReentryDecision, ...] = ()
    ledger: ReportBook | None = None  # the reporter stage's book (in memory) after the replay

    def chains(self) -> dict[str, int]:
        """Re-entries scheduled, by generation (R1, R2): the approved decisions."""
        counts = {"R1": 0, "R2": 0}
        for d in self.reentry_decisions:
            if d.approved and d.next_generation is not None:
                counts[d.next_generation] += 1
        return counts


def _strategies(events: dict[str, list]) -> dict[str, str]:
    by_signal = {s.signal_id: s.strategy for s in events[Signal.TOPIC]}
    return {o.client_order_id: by_signal[o.signal_id] for o in events[OrderIntent.TOPIC] if o.signal_id in by_signal}


def _quote(bar: Bar, spread: Decimal) -> PriceTick:
    ask = bar.close + spread
    # built from a validated bar: skip re-validation on the hot path
    return PriceTick.model_construct(symbol=bar.symbol, ts=bar.ts_close, bid=bar.close, ask=ask, volume=None)


async def run(dataset: Dataset, strategies: SignalGeneratorConfig, *, risk: RiskConfig | None = None,
              timeframe: str = "H1", spread_pips: Decimal = Decimal("1.0"), costs: Costs | None = None,
              instruments: Instruments = DEFAULT_INSTRUMENTS, reentry: Matrix | None = None,
              close_at_end: bool = False) -> BacktestResult:
    risk = risk or RiskConfig()
    first = dataset.events[0]
    start: datetime = first.ts_close if isinstance(first, Bar) else first.ts
    clock = TestClock(start)
    bus = InMemoryBus()
    ids = counter_ids()

    def messenger(producer: str) -> Messenger:
        return Messenger(bus, producer, clock, in_process=True, ids=ids)

    on_bars = dataset.kind == "bars"
    broker = (SimulatedBarBroker(costs, instruments=instruments, spread_pips=spread_pips) if on_bars
              else PaperBroker(costs, instruments=instruments))
    indicators = IndicatorStage(IndicatorEngine(timeframes=(timeframe,), clock=clock,
                                                 indicators=strategies.indicators()), messenger("indicator-engine"),
                                source="bars" if on_bars else "ticks")
    signals = SignalStage(SignalEngine(strategies, clock, instruments=instruments), messenger("signal-generator"))
    risk_stage = RiskStage(RiskEngine(risk, clock, instruments=instruments), messenger("risk-manager"))
    engine = ExecutionEngine(clock, broker, instruments=instruments, record_changes=False)
    execution = ExecutionStage(ExecutionGateway(engine, InMemoryExecutionRepository(), messenger("execution-engine")),
                               bars=on_bars)
    reentries = None if reentry is None else ReentryStage(ReentryEngine(reentry, clock),
                                                          messenger("reentry-matrix-svc"))
    collector = Collector(RESULT_TOPICS, group="backtest")
    reporter = ReporterStage(ReportBook(risk.opening_balance, risk.account_currency, instruments), clock)
    # Subscription order is delivery order on the in-memory bus: quotes reach risk and execution
    # before the bar that may trigger a signal, and execution sees a bar (fills, SL/TP) before the
    # signal stage reacts to it.
    for stage in (risk_stage, execution, indicators, signals, reentries, reporter, collector):
        if stage is not None:
            stage.subscribe(bus)
    feed = messenger("backtest-feed")

    for event in dataset.events:
        if isinstance(event, Bar):
            clock.set(event.ts_close)
            await feed.publish([_quote(event, instruments[event.symbol].distance(spread_pips)), event])
        else:
            clock.set(event.ts)
            await feed.publish([event])
        await bus.drain()
        if execution.engine.live_orders():  # TIMEOUT/EXPIRED can only concern live orders
            await execution.on_clock()
            await bus.drain()
        if reentries is not None and reentries.engine.pending() and await reentries.on_clock():
            await bus.drain()  # a due re-entry is a signal: risk, then execution at the next price

    if close_at_end:  # as an operator would (MANUAL), at the last price, so every entry has a trade
        for position in execution.engine.open_positions():
            await execution.gateway.close_position(position.position_id, CloseReason.MANUAL)
        await bus.drain()

    ev = collector.events
    return BacktestResult(
        trades=cast(list[TradeClosed], ev[TradeClosed.TOPIC]), signals=len(ev[Signal.TOPIC]),
        suppressed=len(ev[SignalSuppressed.TOPIC]),
        orders=len(ev[OrderIntent.TOPIC]), rejected=len(ev[RiskRejected.TOPIC]), inputs=len(dataset.events),
        account_currency=risk.account_currency, opening_balance=risk.opening_balance,
        strategy_of=_strategies(ev), ledger=reporter.book,
        reentry_decisions=tuple(cast(list[ReentryDecision], ev[ReentryDecision.TOPIC])))


# the CLI loads a matrix through this module, the one that knows every service's package
__all__ = ["BacktestResult", "MatrixError", "load_matrix", "run"]
