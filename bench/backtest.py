"""Backtest throughput: the five pipeline stages in one process (eafix.backtest.runner) on the in-memory bus.

    .venv/bin/python bench/backtest.py [--bars 20000] [--ticks 200000] [--repeat 3]

Scenarios (each run `--repeat` times; the best run is the figure, all runs are kept):
  bars.no_orders     `--bars` sample H1 bars (eafix.backtest.data.sample_bars, seed 7) with a strategy
                     that is evaluated on every bar and never fires (RSI thresholds no bar reaches)
  bars.default       the same bars with the shipped strategies (signals -> risk -> orders -> trades)
  ticks.no_orders    `--ticks` synthetic EURUSD ticks (a seeded random walk, 20 ticks per minute) built
                     into M1 bars by the indicator engine, the never-firing strategy
  ticks.default      the same ticks with the shipped strategies on M1
Only `run()` is timed (loading the CSV is not). Per order: (default - no_orders) seconds / orders.
DESIGN's budget: >= 50k bars/s without orders, <= 0.1 ms per order.
Figures are printed and written to bench/results/backtest.json with the machine (cpus, load average).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from eafix.backtest.data import Dataset, load, write_sample
from eafix.backtest.runner import BacktestResult, run
from eafix.signal_generator.config import SignalGeneratorConfig, load_default_strategies, load_strategies_text

RESULTS = Path(__file__).resolve().parent / "results" / "backtest.json"

NEVER_FIRES = """\
version: 1
strategies:
  rsi_unreachable:
    type: rsi_mean_reversion
    oversold: 0.001
    overbought: 99.999
    on_cross: false
"""


def write_ticks(path: Path, n: int, seed: int = 11) -> Path:
    """A seeded random walk of EURUSD ticks, 3 s apart (20 per M1 bar), 1 pip spread, weekdays only."""
    rng = random.Random(seed)
    ts, price = datetime(2026, 1, 5, tzinfo=UTC), 1.0850
    step = timedelta(seconds=3)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ts", "symbol", "bid", "ask"])
        written = 0
        while written < n:
            if ts.weekday() >= 5:
                ts += timedelta(days=7 - ts.weekday())
                continue
            price *= 1 + rng.gauss(0, 0.00006)
            writer.writerow([ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "EURUSD", f"{price:.5f}", f"{price + 0.0001:.5f}"])
            ts += step
            written += 1
    return path


def scenario(dataset: Dataset, strategies: SignalGeneratorConfig, timeframe: str, repeat: int) -> dict:
    runs, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result: BacktestResult = asyncio.run(run(dataset, strategies, timeframe=timeframe))
        runs.append(time.perf_counter() - started)
    best = min(runs)
    return {
        "inputs": result.inputs, "kind": dataset.kind, "timeframe": timeframe,
        "seconds": round(best, 4), "per_s": round(result.inputs / best), "runs_seconds": [round(r, 4) for r in runs],
        "signals": result.signals, "suppressed": result.suppressed, "orders": result.orders,
        "rejected": result.rejected, "trades": len(result.trades),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=20_000)
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    never, default = load_strategies_text(NEVER_FIRES, "never-fires"), load_default_strategies()
    load_before = os.getloadavg()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="eafix-bench-backtest-") as tmp:
        bars = load(write_sample(Path(tmp) / "EURUSD_H1.csv", bars=args.bars, seed=7), timeframe="H1")
        ticks = load(write_ticks(Path(tmp) / "EURUSD_ticks.csv", args.ticks))
        results["bars.no_orders"] = scenario(bars, never, "H1", args.repeat)
        results["bars.default"] = scenario(bars, default, "H1", args.repeat)
        results["ticks.no_orders"] = scenario(ticks, never, "M1", args.repeat)
        results["ticks.default"] = scenario(ticks, default, "M1", args.repeat)
    for kind in ("bars", "ticks"):
        quiet, busy = results[f"{kind}.no_orders"], results[f"{kind}.default"]
        if busy["orders"]:
            extra = busy["seconds"] - quiet["seconds"]
            busy["ms_per_order_over_no_orders"] = round(1000 * extra / busy["orders"], 4)
    document = {
        "benchmark": "backtest",
        "machine": {"cpus": os.cpu_count(), "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()],
                    "platform": platform.platform(), "python": platform.python_version()},
        "parameters": {"bars": args.bars, "ticks": args.ticks, "repeat": args.repeat, "bar_timeframe": "H1",
                       "tick_timeframe": "M1", "sample_seed": 7, "tick_seed": 11},
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(f"machine: {os.cpu_count()} cpus, load average {load_before[0]:.2f} (1 min) before")
    for name, r in results.items():
        extra = f", {r['ms_per_order_over_no_orders']} ms/order" if "ms_per_order_over_no_orders" in r else ""
        print(f"{name:16} {r['inputs']:>8} {r['kind']} in {r['seconds']:.3f} s = {r['per_s']:>9,} {r['kind']}/s "
              f"(signals {r['signals']}, orders {r['orders']}, trades {r['trades']}{extra})")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
