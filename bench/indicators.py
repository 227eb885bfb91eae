"""Benchmark: bars/s of the incremental indicator engine (IndicatorEngine.on_bar).

100,000 synthetic M1 bars (random walks) for four major pairs, interleaved in time order the way
the backtest replays them, go through `on_bar`: every indicator of the contract set, currency
strength and one IndicatorVector per bar. Bars are built before the clock starts. The last
vectors are checked against TA-Lib's batch output (1e-9) so a fast-but-wrong engine cannot pass.

Prints bars/s and writes bench/results/indicators.json. Usage:
    .venv/bin/python bench/indicators.py [--bars 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import talib

from eafix.contracts.events import Bar
from eafix.indicator_engine.domain import IndicatorEngine

BUDGET_BARS_PER_SECOND = 50_000  # DESIGN.md: >= 50k bars/s without orders
PAIRS = {"EURUSD": (1.10, 5), "GBPUSD": (1.27, 5), "USDJPY": (150.0, 3), "EURJPY": (165.0, 3)}
RESULTS = Path(__file__).resolve().parent / "results" / "indicators.json"


def synthetic_bars(total: int, seed: int = 42) -> list[Bar]:
    rng = np.random.default_rng(seed)
    per_pair = total // len(PAIRS)
    start = datetime(2025, 1, 6, tzinfo=UTC)
    minute = timedelta(minutes=1)
    series: dict[str, list[Bar]] = {}
    for symbol, (level, decimals) in PAIRS.items():
        step = level * 2e-4
        close = level + np.cumsum(rng.normal(0.0, step, per_pair))
        close = np.maximum(close, level / 2)
        opens = np.concatenate(([level], close[:-1]))
        high = np.maximum(opens, close) + np.abs(rng.normal(0.0, step / 2, per_pair))
        low = np.minimum(opens, close) - np.abs(rng.normal(0.0, step / 2, per_pair))
        fmt = f"{{:.{decimals}f}}"
        bars = []
        for i in range(per_pair):
            o, h, lo, c = (Decimal(fmt.format(v)) for v in (opens[i], high[i], low[i], close[i]))
            bars.append(Bar(symbol=symbol, timeframe="M1", ts_open=start + i * minute,
                            ts_close=start + (i + 1) * minute, open=o, high=max(h, o, c), low=min(lo, o, c),
                            close=c, volume=1))
        series[symbol] = bars
    # interleave by close time (replay order): t0 EURUSD, t0 GBPUSD, ..., t1 EURUSD, ...
    return [bar for group in zip(*series.values(), strict=True) for bar in group]


def run_once(bars: list[Bar]) -> tuple[float, IndicatorEngine, dict[str, list]]:
    engine = IndicatorEngine()
    out: dict[str, list] = {s: [] for s in PAIRS}
    on_bar = engine.on_bar
    t0 = time.perf_counter()
    for bar in bars:
        out[bar.symbol].append(on_bar(bar))
    return time.perf_counter() - t0, engine, out


def check_against_talib(bars: list[Bar], vectors: dict[str, list]) -> float:
    worst = 0.0
    for symbol in PAIRS:
        mine = [b for b in bars if b.symbol == symbol]
        close = np.array([float(b.close) for b in mine])
        high = np.array([float(b.high) for b in mine])
        low = np.array([float(b.low) for b in mine])
        ref = {
            "ema_50": talib.EMA(close, 50), "rsi_14": talib.RSI(close, 14), "atr_14": talib.ATR(high, low, close, 14),
            "macd_signal": talib.MACD(close, 12, 26, 9)[1], "bb_upper": talib.BBANDS(close, 20, 2.0, 2.0, 0)[0],
        }
        for name, reference in ref.items():
            got = np.array([getattr(v.values, name) for v in vectors[symbol][-1000:]], dtype=float)
            worst = max(worst, float(np.max(np.abs(got - reference[-1000:]))))
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    bars = synthetic_bars(args.bars)
    times = []
    vectors: dict[str, list] = {}
    for _ in range(args.repeats):
        elapsed, _engine, vectors = run_once(bars)
        times.append(elapsed)
    worst = check_against_talib(bars, vectors)
    best = min(times)
    result = {
        "benchmark": "indicator-engine on_bar (incremental indicators + currency strength + IndicatorVector)",
        "bars": len(bars),
        "symbols": list(PAIRS),
        "timeframe": "M1",
        "repeats": args.repeats,
        "seconds": [round(t, 4) for t in times],
        "bars_per_second_best": round(len(bars) / best),
        "bars_per_second_median": round(len(bars) / statistics.median(times)),
        "us_per_bar_best": round(best / len(bars) * 1e6, 3),
        "budget_bars_per_second": BUDGET_BARS_PER_SECOND,
        "meets_budget": len(bars) / best >= BUDGET_BARS_PER_SECOND,
        "max_abs_diff_vs_talib_last_1000": worst,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "talib": talib.__version__,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['bars_per_second_best']:,} bars/s (best of {args.repeats}; median "
          f"{result['bars_per_second_median']:,}; {result['us_per_bar_best']} us/bar; budget "
          f"{BUDGET_BARS_PER_SECOND:,}: {'met' if result['meets_budget'] else 'MISSED'}); "
          f"max |diff| vs TA-Lib {worst:.2e}; wrote {RESULTS}")
    if worst > 1e-9:
        print("indicator values differ from TA-Lib", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
