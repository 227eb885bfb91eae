"""The batch path's throughput, before and after vectorisation, in one run, on the same bars.

    .venv/bin/python bench/batch.py [--bars 50000] [--repeat 2] [--replay] [--profile]

For the shipped strategies and bench/peers/sma_cross.yaml on `eafix sample-data --bars N` (seed 7,
EURUSD H1), each `--repeat` times (the best run is the figure):
  bar-after-bar   `run_batch(..., vectorized=False)`: indicator and signal engines on every bar (the
                  batch path before issue 12's vectorisation, and its fallback)
  vectorized      `run_batch(...)`: TA-Lib over the whole series, triggers with numpy, the loop
                  jumping between active bars
  replay          (--replay) the event-driven `runner.run`, the reference
Only the run is timed (loading the CSV and importing TA-Lib are not); loading is timed apart, column-wise
with polars and row by row. trades.csv of every path must be
the same, byte for byte, or the bench stops. --profile prints cProfile's top functions of one
vectorised run of each strategy set.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import tempfile
import time
from pathlib import Path

import eafix.backtest.vectorized  # noqa: F401  (imported before any clock starts)
from eafix.backtest import data
from eafix.backtest.batch import run_batch
from eafix.backtest.data import load, write_sample
from eafix.backtest.runner import run
from eafix.reporting.render import trades_csv
from eafix.signal_generator.config import load_default_strategies, load_strategies_file

PEERS = Path(__file__).resolve().parent / "peers" / "sma_cross.yaml"


def timed(make) -> tuple[float, float, object]:
    """Wall and CPU seconds of one run (on a shared machine the CPU time is the steadier figure)."""
    started, cpu = time.perf_counter(), time.process_time()
    result = asyncio.run(make())
    return time.perf_counter() - started, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--replay", action="store_true", help="also time the event-driven replay")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:  # open to the end: a clean file is read as the runs go
        path = write_sample(Path(tmp) / "bars.csv", seed=7, bars=args.bars)
        started = time.perf_counter()
        dataset = load(path)
        columns = time.perf_counter() - started
        data.read_bars = lambda *a: None  # type: ignore[assignment]  # the row-by-row reader (every unusual file's)
        started = time.perf_counter()
        rows = load(path)
        print(f"load: column-wise {columns:.2f} s, row by row {time.perf_counter() - started:.2f} s, "
              f"same bars: {rows == dataset}")
        sets = {"default strategies": load_default_strategies(), "sma_cross.yaml": load_strategies_file(PEERS)}
        print(f"{args.bars} EURUSD H1 bars (sample-data seed 7); cpus {os.cpu_count()}, "
              f"load average {os.getloadavg()[0]:.1f} at start")
        for name, strategies in sets.items():
            paths = {"bar-after-bar": lambda s=strategies: run_batch(dataset, s, close_at_end=True, vectorized=False),
                     "vectorized": lambda s=strategies: run_batch(dataset, s, close_at_end=True)}
            if args.replay:
                paths["replay"] = lambda s=strategies: run(dataset, s, close_at_end=True)
            best: dict[str, tuple[float, float]] = {}
            csvs = set()
            for _ in range(args.repeat):
                for path, make in paths.items():
                    wall, cpu, result = timed(make)
                    before = best.get(path, (wall, cpu))
                    best[path] = (min(before[0], wall), min(before[1], cpu))
                    csvs.add(trades_csv(result.trades))  # type: ignore[attr-defined]
            if len(csvs) != 1:
                raise SystemExit(f"{name}: the paths' trades.csv differ")
            trades = next(iter(csvs)).count("\n") - 1
            print(f"{name}: {trades} trades, trades.csv identical on every path")
            for path, (wall, cpu) in best.items():
                print(f"  {path:14} {args.bars / wall:9,.0f} bars/s wall ({wall:.2f} s), "
                      f"{args.bars / cpu:9,.0f} bars/s of CPU ({cpu:.2f} s)")
            print(f"  vectorized / bar-after-bar: x{best['bar-after-bar'][0] / best['vectorized'][0]:.1f} wall, "
                  f"x{best['bar-after-bar'][1] / best['vectorized'][1]:.1f} CPU")
            if args.profile:
                profile = cProfile.Profile()
                profile.enable()
                asyncio.run(paths["vectorized"]())
                profile.disable()
                pstats.Stats(profile).sort_stats("tottime").print_stats(15)
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
