"""Running a parameter sweep: every combination of the grid through the backtest, on all cores.

Each combination is one backtest of the template filled with its values (`eafix.backtest.sweep`), on
bars through the batch path (`batch.run_batch`, the same trades as the replay), on ticks through the
event-driven replay. A process pool runs them; each worker loads the data once (the pool's
initializer) and keeps it for every run it is given. A run gives one row: its parameters, every
statistic of `eafix.reporting.metrics.summarize` (money as float) and the run's counts.

Walk-forward of n splits (`walk_forward`, `Job.windows` = n + 1): the data is cut into n + 1
consecutive windows of equal length (in distinct bar times, so a time's bars of several symbols stay
together); split i picks the combination best in window i - 1 (in-sample) and runs it on window i
(out-of-sample). The windows cover the data, each bar once. Every window starts without history:
its indicators warm up inside it.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from multiprocessing import get_context
from pathlib import Path

from eafix.backtest.batch import run_batch
from eafix.backtest.data import Dataset, load
from eafix.backtest.runner import BacktestResult, run
from eafix.backtest.sweep import Params, SweepError, Template, describe
from eafix.contracts import Bar
from eafix.contracts.strategies import SignalGeneratorConfig, load_strategies_text
from eafix.reporting.metrics import Summary, summarize

# every numeric statistic of metrics.Summary, in the report's order; `return` names return_pct
STATISTICS = ("return_pct", "cagr", "volatility", "sharpe", "sortino", "calmar", "max_drawdown_pct",
              "max_drawdown", "avg_drawdown_pct", "avg_drawdown", "max_drawdown_days", "avg_drawdown_days",
              "trades", "wins", "losses", "win_rate", "net_pnl", "net_pips", "gross_profit", "gross_loss",
              "best_trade", "worst_trade", "avg_trade_pips", "avg_win", "avg_loss", "profit_factor", "expectancy",
              "sqn", "exposure_time", "end_balance")
ALIASES = {"return": "return_pct"}
COUNTS = ("signals", "suppressed", "orders", "risk_rejections")
Row = dict[str, object]


class ObjectiveError(SweepError):
    """An objective that is not a statistic."""


def objective_column(name: str) -> str:
    """The results column of an objective (`return`, `profit-factor`, `sharpe`, ...)."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = ALIASES.get(key, key)
    if key not in STATISTICS:
        valid = ", ".join(sorted([*STATISTICS, *ALIASES]))
        raise ObjectiveError(f"objective {name!r} is not a statistic; valid: {valid}")
    return key


@dataclass(frozen=True)
class Job:
    """What every run of a sweep shares (picklable: it reaches the workers)."""

    data: Path
    template: Template
    symbol: str = "EURUSD"
    timeframe: str = "H1"
    spread_pips: str = "1.0"
    close_at_end: bool = False
    windows: int = 1  # 1 = the whole data; n + 1 for a walk-forward of n splits


def strategies_for(job: Job, params: Params) -> SignalGeneratorConfig:
    """The template filled with `params`, validated (StrategyConfigError names the key and the values)."""
    return load_strategies_text(job.template.render(params), f"{job.template.source} with {describe(params)}")


def backtest(dataset: Dataset, strategies: SignalGeneratorConfig, job: Job) -> BacktestResult:
    """One run as `eafix backtest` would do it: the batch path on bars, the replay on ticks."""
    spread = Decimal(job.spread_pips)
    if dataset.kind == "bars":
        return asyncio.run(run_batch(dataset, strategies, timeframe=job.timeframe, spread_pips=spread,
                                     close_at_end=job.close_at_end))
    return asyncio.run(run(dataset, strategies, timeframe=job.timeframe, spread_pips=spread,
                           close_at_end=job.close_at_end))


def _float(value: object) -> object:
    return float(value) if isinstance(value, Decimal) else value


def row_of(params: Params, result: BacktestResult) -> Row:
    summary: Summary = summarize(result.trades, result.opening_balance, result.account_currency)
    counts = (result.signals, result.suppressed, result.orders, result.rejected)
    return {**params, **{s: _float(getattr(summary, s)) for s in STATISTICS}, **dict(zip(COUNTS, counts, strict=True))}


def _time(event: object) -> datetime:
    return event.ts_close if isinstance(event, Bar) else event.ts  # type: ignore[attr-defined]


def split_windows(dataset: Dataset, count: int) -> list[Dataset]:
    """`count` consecutive datasets of (nearly) equal numbers of distinct times that together hold each
    event of `dataset` once."""
    times = sorted({_time(e) for e in dataset.events})
    if count > len(times):
        raise SweepError(f"--walk-forward: {count} windows need at least {count} bar times, the data has {len(times)}")
    cuts = [times[len(times) * i // count] for i in range(1, count)]
    windows: list[list] = [[] for _ in range(count)]
    for event in dataset.events:
        windows[sum(_time(event) >= c for c in cuts)].append(event)
    return [replace(dataset, events=w) for w in windows]


_WORKER: dict[str, object] = {}  # per process: the job and its data, loaded once by `load_worker`


def load_worker(job: Job) -> None:
    dataset = load(job.data, symbol=job.symbol, timeframe=job.timeframe)
    _WORKER["job"] = job
    _WORKER["datasets"] = [dataset] if job.windows == 1 else [dataset, *split_windows(dataset, job.windows)]


def evaluate(task: tuple[Params, int]) -> Row:
    """One run: `task` is (parameters, dataset index: 0 = all data, i = walk-forward window i - 1)."""
    params, index = task
    job = _WORKER["job"]
    assert isinstance(job, Job)
    dataset = _WORKER["datasets"][index]  # type: ignore[index]
    return row_of(params, backtest(dataset, strategies_for(job, params), job))


class Pool:
    """`workers` processes (spawned: no forked polars threads) that each load the job's data once; with
    one worker the runs happen in this process."""

    def __init__(self, job: Job, workers: int) -> None:
        self.workers = max(1, workers)
        self.executor = None
        if self.workers == 1:
            load_worker(job)
        else:
            self.executor = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"),
                                                initializer=load_worker, initargs=(job,))

    def map(self, tasks: Sequence[tuple[Params, int]], progress: Callable[[], None] = lambda: None) -> list[Row]:
        """The rows of `tasks`, in their order."""
        rows: list[Row | None] = [None] * len(tasks)
        if self.executor is None:
            for i, task in enumerate(tasks):
                rows[i] = evaluate(task)
                progress()
        else:
            futures = {self.executor.submit(evaluate, task): i for i, task in enumerate(tasks)}
            for future in as_completed(futures):
                rows[futures[future]] = future.result()
                progress()
        return rows  # type: ignore[return-value]

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _key(row: Row, column: str, maximize: bool) -> float:
    value = row[column]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.inf  # no figure (no trades, one day ...): after every figure
    return -float(value) if maximize else float(value)  # type: ignore[arg-type]


def ranked(rows: Sequence[Row], column: str, maximize: bool) -> list[int]:
    """Indexes of `rows`, best first; ties and rows without a figure keep grid order."""
    return sorted(range(len(rows)), key=lambda i: _key(rows[i], column, maximize))


def bounds(dataset: Dataset) -> tuple[datetime, datetime]:
    """The span of a dataset: its first bar's open (or first tick) to its last bar's close (or last tick)."""
    first = dataset.events[0]
    return first.ts_open if isinstance(first, Bar) else first.ts, _time(dataset.events[-1])


@dataclass(frozen=True)
class Split:
    number: int
    in_sample: tuple[datetime, datetime]  # bounds of the window
    out_of_sample: tuple[datetime, datetime]
    params: Params
    in_sample_row: Row
    out_of_sample_row: Row


def walk_forward(pool: Pool, job: Job, combos: Sequence[Params], column: str, maximize: bool,
                 progress: Callable[[], None] = lambda: None) -> list[Split]:
    """The splits of a walk-forward over `job.windows` windows (dataset i + 1 of the pool is window i)."""
    windows = split_windows(load(job.data, symbol=job.symbol, timeframe=job.timeframe), job.windows)
    inside = pool.map([(p, w + 1) for w in range(job.windows - 1) for p in combos], progress)
    best = []
    for w in range(job.windows - 1):
        rows = inside[w * len(combos):(w + 1) * len(combos)]
        best.append(rows[ranked(rows, column, maximize)[0]])
    chosen: list[Params] = [{name: row[name] for name in combos[0]} for row in best]  # type: ignore[misc]
    outside = pool.map([(params, w + 2) for w, params in enumerate(chosen)], progress)
    return [Split(w + 1, bounds(windows[w]), bounds(windows[w + 1]), chosen[w], best[w], outside[w])
            for w in range(job.windows - 1)]


__all__ = ["ALIASES", "COUNTS", "STATISTICS", "Job", "ObjectiveError", "Pool", "Split", "backtest", "bounds",
           "default_workers", "evaluate", "load_worker", "objective_column", "ranked", "row_of", "split_windows",
           "strategies_for", "walk_forward"]
