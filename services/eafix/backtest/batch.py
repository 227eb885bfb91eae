"""The fast replay of bars for research: the same trades as `runner.run`, in a fraction of the time.

What the event-driven replay spends its time on is the bus: an envelope, a validation and a delivery
per stage per bar, for bars on which nothing happens. Here the indicators and strategy triggers are
computed without the bus; risk-manager, execution-engine and reporter run on the in-memory bus as in
the replay, but the bus carries a bar only when the execution engine acts on it (an order waits for
its fill, or an open position of its symbol reaches its stop-loss or take-profit: the simulated
broker's own `bar_exit` says) and signal-generator's outputs when there are any. Any other bar's
quote and bar reach those engines directly, so conversions, marks and the broker's last bar stay
current, and the execution engine must answer nothing, which the run checks on each such bar. What
goes on the bus goes as the replay sends it (quote, bar, then the signals), so trades.csv is
byte-identical (tests/service/test_backtest_batch.py).

Vectorised (`vectorized.py`, with TA-Lib from the `backtest` extra, for all three shipped strategy
kinds): indicators and triggers over each symbol's whole series at once, and the loop jumps from one
active bar to the next: a bar with a candidate, every bar while an order waits for its fill, and a
bar on which an open position may reach its SL or TP (a float screen with a margin over the bars up
to the next candidate; `bar_exit`, on Decimals, decides). Before such a bar each symbol's latest
skipped bar is handed to the engines (what they keep of them is the latest quote and bar), with the
same check. Without TA-Lib, or for a strategy kind vectorized.py does not know (`vectorized=False`
too), indicator-engine's and signal-generator's engines run on every bar (`_bar_after_bar`).

Scope: bars of one timeframe, no re-entry matrix and no calendar (their stages react to every
event; use `runner.run`).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, cast

from eafix.backtest.data import Dataset
from eafix.backtest.runner import BacktestResult, quote_of, result_of
from eafix.backtest.tally import Tally
from eafix.contracts import Bar, IndicatorVector
from eafix.contracts.messaging import Messenger, counter_ids
from eafix.contracts.primitives import CloseReason, ExecutionStatus, Timeframe
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
from eafix.reporting.candles import resample
from eafix.risk_manager.config import RiskConfig
from eafix.risk_manager.engine import RiskEngine
from eafix.risk_manager.stage import RiskStage
from eafix.runtime.bus.memory import InMemoryBus
from eafix.runtime.clock import TestClock
from eafix.signal_generator.domain import Output, SignalEngine

if TYPE_CHECKING:
    from eafix.backtest.vectorized import Found, SymbolSeries

WAITING = frozenset({ExecutionStatus.PENDING, ExecutionStatus.SUBMITTED, ExecutionStatus.PARTIAL})  # for a fill


class BatchScopeError(ValueError):
    """The input is outside what the batch path replays."""


class _Pipeline:
    """risk-manager, execution-engine and reporter on the in-memory bus, fed an active bar through the
    bus and a quiet one directly."""

    def __init__(self, bus: InMemoryBus, clock: TestClock, messenger, risk: RiskConfig, spread_pips: Decimal,
                 costs: Costs | None, instruments: Instruments) -> None:
        self.bus, self.clock, self.instruments, self.spread_pips = bus, clock, instruments, spread_pips
        self.risk_stage = RiskStage(RiskEngine(risk, clock, instruments=instruments), messenger("risk-manager"))
        self.broker = SimulatedBarBroker(costs, instruments=instruments, spread_pips=spread_pips)
        self.engine = ExecutionEngine(clock, self.broker, instruments=instruments, record_changes=False)
        self.execution = ExecutionStage(ExecutionGateway(self.engine, InMemoryExecutionRepository(),
                                                         messenger("execution-engine")), bars=True)
        self.reporter = ReporterStage(ReportBook(risk.opening_balance, risk.account_currency, instruments), clock)
        self.tally = Tally(instruments)
        for stage in (self.risk_stage, self.execution, self.reporter, self.tally):  # the replay's order
            stage.subscribe(bus)
        self.feed, self.signal_out = messenger("backtest-feed"), messenger("signal-generator")

    def waiting(self) -> bool:
        return any(o.status in WAITING for o in self.engine.live_orders())

    def executes(self, bar: Bar) -> bool:
        """Whether the execution engine acts on `bar`: an order waits for its fill, or an open position of
        its symbol reaches its SL or TP on it (the simulated broker's own `bar_exit`)."""
        return self.waiting() or any(
            self.broker.bar_exit(p.symbol, p.direction, p.sl_price, p.tp_price, bar) is not None
            for p in self.engine.open_positions(bar.symbol))

    async def on_bar(self, bar: Bar, outputs: list) -> None:
        """A bar and then signal-generator's outputs on it, as the replay delivers them: the bar through
        the bus when execution acts on it, else straight to the engines; the outputs through the bus."""
        quote = quote_of(bar, self.instruments[bar.symbol].distance(self.spread_pips))
        acts = self.executes(bar)
        if acts:
            await self.feed.publish([quote, bar])
            await self.bus.drain()
        else:
            self.risk_stage.engine.on_tick(quote)
            self.reporter.book.on_tick(quote)
            if self.engine.on_tick(quote) or self.engine.on_bar(bar):
                raise AssertionError(f"execution acted on a quiet bar at {bar.ts_close.isoformat()}")
        if outputs:
            await self.signal_out.publish(outputs)
            await self.bus.drain()
        if not self.engine.live_orders():
            return
        if acts or outputs:
            await self.execution.on_clock()
            await self.bus.drain()
        elif self.engine.on_clock(bar.ts_close):
            raise AssertionError(f"execution timed an order out on a quiet bar at {bar.ts_close.isoformat()}")


async def run_batch(dataset: Dataset, strategies: SignalGeneratorConfig, *, risk: RiskConfig | None = None,
                    timeframe: str = "H1", spread_pips: Decimal = Decimal("1.0"), costs: Costs | None = None,
                    instruments: Instruments = DEFAULT_INSTRUMENTS, close_at_end: bool = False,
                    vectorized: bool = True) -> BacktestResult:
    """`vectorized=False` (or no TA-Lib, or a strategy kind without a batch evaluation): bar after bar."""
    if dataset.kind != "bars":
        raise BatchScopeError("the batch path replays bars; ticks need the event-driven replay")
    bars = list(cast(Sequence[Bar], dataset.events))  # random access: the batch path holds its bars
    risk = risk or RiskConfig()
    clock = TestClock(bars[0].ts_close)
    bus = InMemoryBus()
    ids = counter_ids()

    def messenger(producer: str) -> Messenger:
        return Messenger(bus, producer, clock, in_process=True, ids=ids)

    signals = SignalEngine(strategies, clock, instruments=instruments)
    pipe = _Pipeline(bus, clock, messenger, risk, spread_pips, costs, instruments)
    found = _vectorized(signals, bars, timeframe, instruments) if vectorized else None
    if found is None:
        indicators = IndicatorEngine(timeframes=(timeframe,), clock=clock, indicators=strategies.indicators())
        await _bar_after_bar(pipe, signals, indicators, bars)
    else:
        await _jumping(pipe, signals, bars, *found)

    if close_at_end:
        for position in pipe.engine.open_positions():
            await pipe.execution.gateway.close_position(position.position_id, CloseReason.MANUAL)
        await bus.drain()
    return result_of(pipe.tally, len(bars), risk, pipe.reporter.book, candles=resample(bars))


def _vectorized(signals: SignalEngine, bars: list[Bar], timeframe: str,
                instruments: Instruments) -> tuple[dict[int, list[Found]], dict[str, SymbolSeries]] | None:
    try:
        from eafix.backtest.vectorized import NotVectorized, candidates
    except ImportError:  # no TA-Lib/numpy (the `backtest` extra brings them)
        return None
    try:
        return candidates(signals.strategies, bars, timeframe, instruments)
    except NotVectorized:
        return None


async def _bar_after_bar(pipe: _Pipeline, signals: SignalEngine, indicators: IndicatorEngine,
                         bars: list[Bar]) -> None:
    for bar in bars:
        pipe.clock.set(bar.ts_close)
        outputs = signals.on_bar(bar)
        vector = indicators.on_bar(bar)
        if vector is not None:
            outputs += signals.on_indicators(vector)
        await pipe.on_bar(bar, outputs)


def _outputs(signals: SignalEngine, bar: Bar, found: list[Found]) -> list[Output]:
    """The gates on a bar's candidates, in the strategies' order (the clock is at the bar's close)."""
    outputs = []
    for f in found:
        # what the gates read; the rest of a vector is not computed here
        vector = IndicatorVector.model_construct(symbol=bar.symbol, timeframe=Timeframe(bar.timeframe),
                                                 ts=bar.ts_close, values=f.values, window_version="batch",
                                                 currency_strength={})
        outputs.append(signals.gate(f.strategy, vector, bar.close, f.candidate))
    return outputs


async def _catch_up(pipe: _Pipeline, bars: list[Bar], series: dict[str, SymbolSeries], start: int, end: int) -> None:
    """Hand the engines each symbol's latest bar in [start, end), quiet by construction (checked)."""
    from eafix.backtest.vectorized import latest_rows

    for row in latest_rows(series, start, end):
        pipe.clock.set(bars[row].ts_close)
        await pipe.on_bar(bars[row], [])


async def _jumping(pipe: _Pipeline, signals: SignalEngine, bars: list[Bar], found: dict[int, list[Found]],
                   series: dict[str, SymbolSeries]) -> None:
    from eafix.backtest.vectorized import next_exit

    rows = sorted(found)
    n, i, k = len(bars), 0, 0
    while i < n:
        while k < len(rows) and rows[k] < i:
            k += 1
        next_candidate = rows[k] if k < len(rows) else n
        row = i if pipe.waiting() else next_exit(pipe.engine.open_positions(), series, i, next_candidate,
                                                 lambda symbol: pipe.instruments[symbol].distance(pipe.spread_pips))
        if row >= n:
            break
        await _catch_up(pipe, bars, series, i, row)
        bar = bars[row]
        pipe.clock.set(bar.ts_close)
        await pipe.on_bar(bar, _outputs(signals, bar, found.get(row, [])))
        i = row + 1
    await _catch_up(pipe, bars, series, i, n)


__all__ = ["BatchScopeError", "run_batch"]
