"""The fast replay of bars for research: the same trades as `runner.run`, in a fraction of the time.

What the event-driven replay spends its time on is the bus: an envelope, a validation and a delivery
per stage per bar, for bars on which nothing happens. Here indicator-engine's and signal-generator's
engines are called directly, bar after bar, with no bus in between; risk-manager, execution-engine
and reporter run on the in-memory bus as in the replay, but only for an "active" bar: one that
carries a signal, meets an order waiting for its fill, or reaches the stop-loss or take-profit of an open position of
its symbol (the simulated broker's own `bar_exit` says). A quiet bar's quote and bar still reach
those engines, directly, so conversions, marks and the broker's last bar stay current, and the
execution engine must answer nothing, which the run checks on every quiet bar. An active bar is
delivered as the replay delivers it (quote, bar, then signal-generator's outputs), so trades.csv is
byte-identical (tests/service/test_backtest_batch.py).

Scope: bars of one timeframe, no re-entry matrix and no calendar (their stages react to every
event; use `runner.run`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import cast

from eafix.backtest.collector import Collector
from eafix.backtest.data import Dataset
from eafix.backtest.runner import RESULT_TOPICS, BacktestResult, quote_of, result_of
from eafix.contracts import Bar
from eafix.contracts.messaging import Messenger, counter_ids
from eafix.contracts.primitives import CloseReason, ExecutionStatus
from eafix.contracts.strategies import SignalGeneratorConfig
from eafix.execution_engine.brokers import Costs, SimulatedBarBroker
from eafix.execution_engine.domain import ExecutionEngine
from eafix.execution_engine.gateway import ExecutionGateway
from eafix.execution_engine.repository import InMemoryExecutionRepository
from eafix.execution_engine.stage import ExecutionStage
from eafix.indicator_engine.domain import IndicatorEngine
from eafix.instruments import DEFAULT_INSTRUMENTS, Instruments
from eafix.reporter.book import ReportBook
from eafix.reporter.stage import ReporterStage
from eafix.risk_manager.config import RiskConfig
from eafix.risk_manager.engine import RiskEngine
from eafix.risk_manager.stage import RiskStage
from eafix.runtime.bus.memory import InMemoryBus
from eafix.runtime.clock import TestClock
from eafix.signal_generator.domain import SignalEngine

WAITING = frozenset({ExecutionStatus.PENDING, ExecutionStatus.SUBMITTED, ExecutionStatus.PARTIAL})  # for a fill


class BatchScopeError(ValueError):
    """The input is outside what the batch path replays."""


async def run_batch(dataset: Dataset, strategies: SignalGeneratorConfig, *, risk: RiskConfig | None = None,
                    timeframe: str = "H1", spread_pips: Decimal = Decimal("1.0"), costs: Costs | None = None,
                    instruments: Instruments = DEFAULT_INSTRUMENTS, close_at_end: bool = False) -> BacktestResult:
    if dataset.kind != "bars":
        raise BatchScopeError("the batch path replays bars; ticks need the event-driven replay")
    bars = cast(list[Bar], dataset.events)
    risk = risk or RiskConfig()
    clock = TestClock(bars[0].ts_close)
    bus = InMemoryBus()
    ids = counter_ids()

    def messenger(producer: str) -> Messenger:
        return Messenger(bus, producer, clock, in_process=True, ids=ids)

    indicators = IndicatorEngine(timeframes=(timeframe,), clock=clock, indicators=strategies.indicators())
    signals = SignalEngine(strategies, clock, instruments=instruments)
    risk_stage = RiskStage(RiskEngine(risk, clock, instruments=instruments), messenger("risk-manager"))
    broker = SimulatedBarBroker(costs, instruments=instruments, spread_pips=spread_pips)
    engine = ExecutionEngine(clock, broker, instruments=instruments, record_changes=False)

    def active(bar: Bar, outputs: list) -> bool:
        return bool(outputs) or any(o.status in WAITING for o in engine.live_orders()) or any(
            broker.bar_exit(p.symbol, p.direction, p.sl_price, p.tp_price, bar) is not None
            for p in engine.open_positions(bar.symbol))

    execution = ExecutionStage(ExecutionGateway(engine, InMemoryExecutionRepository(), messenger("execution-engine")),
                               bars=True)
    reporter = ReporterStage(ReportBook(risk.opening_balance, risk.account_currency, instruments), clock)
    collector = Collector(RESULT_TOPICS, group="backtest")
    for stage in (risk_stage, execution, reporter, collector):  # the replay's order, less the two skipped
        stage.subscribe(bus)
    feed, signal_out = messenger("backtest-feed"), messenger("signal-generator")

    for bar in bars:
        clock.set(bar.ts_close)
        outputs = signals.on_bar(bar)
        vector = indicators.on_bar(bar)
        if vector is not None:
            outputs += signals.on_indicators(vector)
        quote = quote_of(bar, instruments[bar.symbol].distance(spread_pips))
        if active(bar, outputs):
            await feed.publish([quote, bar])
            await bus.drain()
            await signal_out.publish(outputs)
            await bus.drain()
            if engine.live_orders():
                await execution.on_clock()
                await bus.drain()
        else:
            risk_stage.engine.on_tick(quote)
            reporter.book.on_tick(quote)
            if engine.on_tick(quote) or engine.on_bar(bar) or (engine.live_orders() and engine.on_clock(bar.ts_close)):
                raise AssertionError(f"execution acted on a quiet bar at {bar.ts_close.isoformat()}")

    if close_at_end:
        for position in engine.open_positions():
            await execution.gateway.close_position(position.position_id, CloseReason.MANUAL)
        await bus.drain()
    return result_of(collector, len(bars), risk, reporter.book, bars=bars, instruments=instruments)


__all__ = ["BatchScopeError", "run_batch"]
