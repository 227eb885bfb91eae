"""Replay bars or ticks through the five pipeline stages in one process (and, given a matrix,
reentry-matrix-svc's stage: closed trades are decided and due re-entries go back in as signals;
given a calendar, calendar-ingestor's stage: its gates block entries in blackout windows and key
re-entry decisions by proximity).

The stages are those of the service processes (`eafix.<service>.stage`) on the in-memory bus with a
test clock, deterministic event ids and in-memory storage (execution's outbox included), so the same
input gives the same trades. This is the one module that wires every stage together. Bar
data: the feed publishes, per bar, a quote at its close (bid = close, ask = close + spread) and
the bar itself; orders fill at the next bar's open through the simulated bar broker. Tick data:
the feed publishes the ticks; bars come from the indicator engine's bar builder and the paper
broker fills at bid/ask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import cast

from eafix.backtest.bars_frame import BarFile
from eafix.backtest.data import Dataset
from eafix.backtest.tally import Tally
from eafix.calendar_ingestor.book import CalendarBook
from eafix.calendar_ingestor.entries import CalendarEntry
from eafix.calendar_ingestor.intake import DEFAULT_SOURCE_TIMEZONE, IntakeError, read_calendar_csv
from eafix.calendar_ingestor.stage import CalendarConfig, CalendarStage
from eafix.contracts import (
    Bar,
    CalendarGate,
    PriceTick,
    SignalSuppressed,
    TradeClosed,
)
from eafix.contracts.events import ReentryDecision
from eafix.contracts.messaging import Messenger, counter_ids
from eafix.contracts.primitives import CloseReason
from eafix.contracts.strategies import SignalGeneratorConfig
from eafix.execution_engine.brokers import Costs, FaultSchedule, PaperBroker, SimulatedBarBroker
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
from eafix.reentry_matrix_svc.wire import calendar_proximity
from eafix.reporter.book import ReportBook
from eafix.reporter.stage import ReporterStage
from eafix.reporting.candles import Candles, Resampler, resample, spans_of
from eafix.risk_manager.config import RiskConfig
from eafix.risk_manager.engine import RiskEngine
from eafix.risk_manager.stage import RiskStage
from eafix.runtime.bus.memory import InMemoryBus
from eafix.runtime.clock import TestClock
from eafix.signal_generator.domain import SignalEngine
from eafix.signal_generator.stage import SignalStage


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
    blackout_suppressed: int = 0  # signals signal-generator suppressed for a calendar blackout
    blackout_rejected: int = 0  # signals (re-entries among them) risk-manager rejected for one
    # for the report's price chart: the replayed bars (built by the indicator engine from ticks) as
    # candles, the suppressed signals, and each trade's SL/TP price (its order's pip distances from the fill)
    candles: tuple[Candles, ...] = ()
    suppressions: tuple[SignalSuppressed, ...] = ()
    levels: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)

    def __repr__(self) -> str:
        # The counts, not every bar and trade: asyncio.run's SIGINT handler holds the finished task,
        # and Python 3.11 formats its repr (result included) when asyncio.run restores the handler,
        # which took ~0.1 s per 1,000 bars of the replay's own time.
        return (f"BacktestResult(inputs={self.inputs}, signals={self.signals}, orders={self.orders}, "
                f"trades={len(self.trades)}, bars={sum(c.bars for c in self.candles)})")

    def chains(self) -> dict[str, int]:
        """Re-entries scheduled, by generation (R1, R2): the approved decisions."""
        counts = {"R1": 0, "R2": 0}
        for d in self.reentry_decisions:
            if d.approved and d.next_generation is not None:
                counts[d.next_generation] += 1
        return counts


def quote_of(bar: Bar, spread: Decimal) -> PriceTick:
    """The feed's quote at a bar's close: bid = close, ask = close + spread."""
    ask = bar.close + spread
    # built from a validated bar: skip re-validation on the hot path
    return PriceTick.model_construct(symbol=bar.symbol, ts=bar.ts_close, bid=bar.close, ask=ask, volume=None)


async def run(dataset: Dataset, strategies: SignalGeneratorConfig, *, risk: RiskConfig | None = None,
              timeframe: str = "H1", spread_pips: Decimal = Decimal("1.0"), costs: Costs | None = None,
              instruments: Instruments = DEFAULT_INSTRUMENTS, reentry: Matrix | None = None,
              calendar: Sequence[CalendarEntry] | None = None, close_at_end: bool = False,
              broker_faults: FaultSchedule | None = None) -> BacktestResult:
    """`broker_faults`: the paper broker's fault drill (tick data only), as execution-engine's
    SERVICE_BROKER_FAULTS."""
    risk = risk or RiskConfig()
    if broker_faults is not None and dataset.kind == "bars":
        raise ValueError("broker_faults: the fault drill is the paper broker's, which needs tick data")
    first = dataset.events[0]
    start: datetime = first.ts_close if isinstance(first, Bar) else first.ts
    clock = TestClock(start)
    bus = InMemoryBus()
    ids = counter_ids()

    def messenger(producer: str) -> Messenger:
        return Messenger(bus, producer, clock, in_process=True, ids=ids)

    on_bars = dataset.kind == "bars"
    broker = (SimulatedBarBroker(costs, instruments=instruments, spread_pips=spread_pips) if on_bars
              else PaperBroker(costs, instruments=instruments, faults=broker_faults))
    indicators = IndicatorStage(IndicatorEngine(timeframes=(timeframe,), clock=clock,
                                                 indicators=strategies.indicators()), messenger("indicator-engine"),
                                source="bars" if on_bars else "ticks")
    gate = None if calendar is None else CalendarGate()
    calendar_stage = None if calendar is None else CalendarStage(
        CalendarBook(calendar), messenger("calendar-ingestor"), instruments,
        CalendarConfig(symbols=dataset.symbols, require_calendar=False))
    signals = SignalStage(SignalEngine(strategies, clock, instruments=instruments, blackout=gate),
                          messenger("signal-generator"), calendar=gate)
    risk_stage = RiskStage(RiskEngine(risk, clock, instruments=instruments), messenger("risk-manager"), calendar=gate)
    engine = ExecutionEngine(clock, broker, instruments=instruments, record_changes=False)
    execution = ExecutionStage(ExecutionGateway(engine, InMemoryExecutionRepository(), messenger("execution-engine")),
                               bars=on_bars)
    reentries = None if reentry is None else ReentryStage(
        ReentryEngine(reentry, clock, proximity=None if gate is None else calendar_proximity(gate)),
        messenger("reentry-matrix-svc"), calendar=gate)
    # bars given are resampled for the report's chart as they are replayed; bars built from ticks are collected
    chart = None if not on_bars else Resampler(dataset.events.spans if isinstance(dataset.events, BarFile)
                                               else spans_of(cast(Sequence[Bar], dataset.events)))
    tally = Tally(instruments, bars_kept=not on_bars)
    reporter = ReporterStage(ReportBook(risk.opening_balance, risk.account_currency, instruments), clock)
    # Subscription order is delivery order on the in-memory bus: quotes reach risk and execution
    # before the bar that may trigger a signal, and execution sees a bar (fills, SL/TP) before the
    # signal stage reacts to it.
    for stage in (risk_stage, execution, indicators, signals, reentries, reporter, tally):
        if stage is not None:
            stage.subscribe(bus)
    feed = messenger("backtest-feed")
    refreshed: datetime | None = None
    refresh = timedelta(seconds=CalendarConfig().refresh_seconds)

    for event in dataset.events:
        clock.set(event.ts_close if isinstance(event, Bar) else event.ts)
        if calendar_stage is not None and (refreshed is None or clock.now() - refreshed >= refresh):
            await calendar_stage.on_clock()  # gates as calendar-ingestor would have published them by now
            await bus.drain()
            refreshed = clock.now()
        if isinstance(event, Bar):
            await feed.publish([quote_of(event, instruments[event.symbol].distance(spread_pips)), event])
            chart.add(event)  # type: ignore[union-attr]  # a Resampler on bars
        else:
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

    return result_of(tally, len(dataset.events), risk, reporter.book,
                     candles=chart.candles() if chart is not None else None)


def result_of(tally: Tally, inputs: int, risk: RiskConfig, book: ReportBook, *,
              candles: Sequence[Candles] | None) -> BacktestResult:
    """The result from what the tally kept (this module's replay and the batch path's); `candles`: the
    replayed bars resampled, None when the tally kept the bars (built from ticks)."""
    return BacktestResult(
        blackout_suppressed=tally.blackout_suppressed, blackout_rejected=tally.blackout_rejected,
        trades=tally.trades, signals=tally.signals, suppressed=len(tally.suppressions), orders=tally.orders,
        rejected=tally.rejected, inputs=inputs, account_currency=risk.account_currency,
        opening_balance=risk.opening_balance, strategy_of=tally.strategy_of, ledger=book,
        reentry_decisions=tuple(tally.reentry_decisions),
        candles=tuple(candles if candles is not None else resample(tally.bars)),
        suppressions=tuple(tally.suppressions), levels=tally.levels)


class CalendarFileError(ValueError):
    """A calendar file with rows that cannot be taken; the message names each (up to ten)."""


def load_calendar(path: Path, zone: str = DEFAULT_SOURCE_TIMEZONE) -> list[CalendarEntry]:
    """The events of a calendar CSV under the identities calendar-ingestor would give them."""
    try:
        intake = read_calendar_csv(path.read_text(encoding="utf-8"), zone)
    except (IntakeError, UnicodeDecodeError) as exc:
        raise CalendarFileError(f"{path}: {exc}") from None
    if not intake.ok:
        shown = "; ".join(f"line {p.line}: {p.reason}" for p in intake.rejected[:10])
        more = f" (and {len(intake.rejected) - 10} more)" if len(intake.rejected) > 10 else ""
        raise CalendarFileError(f"{path}: {len(intake.rejected)} rows rejected, nothing taken: {shown}{more}")
    return list(CalendarBook().merge(intake.rows, path.name).new)


# the CLI loads a matrix and a calendar through this module, the one that knows every service's package
__all__ = ["BacktestResult", "CalendarFileError", "MatrixError", "load_calendar", "load_matrix", "run"]
