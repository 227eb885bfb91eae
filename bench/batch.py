"""The batch path's throughput, before and after vectorisation, in one run, on the same bars.

    .venv/bin/python bench/batch.py [--bars 50000] [--repeat 2] [--replay] [--profile]

For the shipped strategies and bench/peers/sma_cross.yaml on `eafix sample-data --bars N` (seed 7,
EURUSD H1), each `--repeat` times (the best run is the figure):
  bar-after-bar   `run_batch(..., vectorized=False)`: indicator and signal engines on every bar (the
                  batch path before issue 12's vectorisation, and its fallback)
  vectorized      `run_batch(...)`: TA-Lib over the whole series, triggers with numpy, the loop
                  jumping between active bars
  replay          (--replay) the event-driven `runner.run`, the reference
Only the run is timed (loading the CSV and importing TA-Lib are not). trades.csv of every path must be
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
from eafix.backtest.batch import run_batch
from eafix.backtest.data import load, write_sample
from eafix.backtest.runner import run
from eafix.reporting.render import trades_csv
from eafix.signal_generator.config import load_default_strategies, load_strategies_file

PEERS = Path(__file__).resolve().parent / "peers" / "sma_cross.yaml"


def timed(make) -> tuple[float, object]:
    started = time.perf_counter()
    result = asyncio.run(make())
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--replay", action="store_true", help="also time the event-driven replay")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dataset = load(write_sample(Path(tmp) / "bars.csv", seed=7, bars=args.bars))
    sets = {"default strategies": load_default_strategies(), "sma_cross.yaml": load_strategies_file(PEERS)}
    print(f"{args.bars} EURUSD H1 bars (sample-data seed 7); cpus {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    for name, strategies in sets.items():
        paths = {"bar-after-bar": lambda s=strategies: run_batch(dataset, s, close_at_end=True, vectorized=False),
                 "vectorized": lambda s=strategies: run_batch(dataset, s, close_at_end=True)}
        if args.replay:
            paths["replay"] = lambda s=strategies: run(dataset, s, close_at_end=True)
        best: dict[str, float] = {}
        csvs = set()
        for _ in range(args.repeat):
            for path, make in paths.items():
                seconds, result = timed(make)
                best[path] = min(best.get(path, seconds), seconds)
                csvs.add(trades_csv(result.trades))  # type: ignore[attr-defined]
        if len(csvs) != 1:
            raise SystemExit(f"{name}: the paths' trades.csv differ")
        trades = next(iter(csvs)).count("\n") - 1
        figures = ", ".join(f"{path} {args.bars / seconds:,.0f} bars/s ({seconds:.2f} s)"
                            for path, seconds in best.items())
        print(f"{name}: {trades} trades, identical; {figures}; "
              f"x{best['bar-after-bar'] / best['vectorized']:.1f}")
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            asyncio.run(paths["vectorized"]())
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(15)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
