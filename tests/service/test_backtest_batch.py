"""The batch path (`eafix backtest --batch`) against the event-driven replay: the same trades.csv,
byte for byte, on every dataset here (each strategy set, one and two symbols), and the same counts,
both vectorised (backtest/vectorized.py: whole-series indicators and triggers, jumping between active
bars) and bar after bar (its fallback); out of its scope (ticks, re-entries, a calendar) it refuses
with a message."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import pytest

from eafix import cli
from eafix.backtest import vectorized
from eafix.backtest.batch import BatchScopeError, run_batch
from eafix.backtest.data import load, sample_bars, write_sample
from eafix.backtest.runner import run
from eafix.backtest.vectorized import candidates
from eafix.instruments import DEFAULT_INSTRUMENTS
from eafix.reporting.render import trades_csv
from eafix.signal_generator.config import load_default_strategies, load_strategies_file
from eafix.signal_generator.strategies import build_strategies

PEERS = Path(__file__).resolve().parents[2] / "bench" / "peers" / "sma_cross.yaml"
# every kind with other indicators and options: parameterized MAs (TEMA/WMA are not bit-identical
# to TA-Lib's), confirm, triggers on every bar in a zone / beyond a band, no TP ratio, a reversing
# strategy on one symbol only, a duplicate window longer than a bar
MORE_KINDS = """
version: 1
defaults: {min_confidence: 0.55, duplicate_window_seconds: 7200}
strategies:
  tema_wma: {type: ma_crossover, fast: tema(9), slow: wma(30), confirm: macd, separation_weight: 2.0}
  rsi7: {type: rsi_mean_reversion, rsi: rsi(7), oversold: 25, overbought: 75, on_cross: false,
         confirm: macd_hist}
  bands: {type: bollinger_breakout, bands: "bbands(10,1.5)", on_cross: false, take_profit_ratio: null}
  sma_rev: {type: ma_crossover, fast: sma(5), slow: ema(21), stop_and_reverse: true, symbols: [USDJPY]}
"""


def more_kinds(tmp: Path) -> Path:
    path = tmp / "more.yaml"
    path.write_text(MORE_KINDS)
    return path


def two_symbols(path: Path) -> Path:
    rows = [dict(r, symbol="EURUSD") for r in sample_bars(seed=11, bars=2500)]
    rows += [dict(r, symbol="USDJPY") for r in sample_bars(seed=12, bars=2500, symbol="USDJPY", price=150.0)]
    rows.sort(key=lambda r: (r["timestamp"], r["symbol"]))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["timestamp", "symbol", "open", "high", "low", "close", "volume"])
        writer.writeheader()
        writer.writerows(rows)
    return path


DATASETS = {
    "sample-default": lambda tmp: (write_sample(tmp / "a.csv", seed=7, bars=4000), None),
    "sample-sma-cross-reverse": lambda tmp: (write_sample(tmp / "b.csv", seed=3, bars=4000), PEERS),
    "two-symbols-default": lambda tmp: (two_symbols(tmp / "c.csv"), None),
    "two-symbols-more-kinds": lambda tmp: (two_symbols(tmp / "d.csv"), more_kinds(tmp)),
}


@pytest.mark.parametrize("name", list(DATASETS))
def test_batch_trades_are_the_replays_byte_for_byte(name, tmp_path):
    data, strategy_file = DATASETS[name](tmp_path)
    strategies = load_strategies_file(strategy_file) if strategy_file else load_default_strategies()
    dataset = load(data)
    found, _ = candidates(build_strategies(strategies), dataset.events, "H1", DEFAULT_INSTRUMENTS)
    assert found  # the vectorised path takes these strategies (no fallback)
    replay = asyncio.run(run(dataset, strategies, close_at_end=True))
    assert len(replay.trades) > 50
    for whole_series in (True, False):
        batch = asyncio.run(run_batch(dataset, strategies, close_at_end=True, vectorized=whole_series))
        assert trades_csv(batch.trades) == trades_csv(replay.trades), f"vectorized={whole_series}"
        assert (batch.signals, batch.suppressed, batch.orders, batch.rejected) == (
            replay.signals, replay.suppressed, replay.orders, replay.rejected)
        assert batch.strategy_of == replay.strategy_of


def test_values_near_a_threshold_are_taken_from_the_incremental_engine(tmp_path, monkeypatch):
    """With a margin that puts every decision "near" its threshold, every computation is replaced by
    indicator-engine's incremental values; the trades stay the replay's."""
    data, strategy_file = DATASETS["two-symbols-more-kinds"](tmp_path)
    strategies = load_strategies_file(strategy_file)
    dataset = load(data)
    monkeypatch.setattr(vectorized, "MARGIN", 10.0)
    _, series = candidates(build_strategies(strategies), dataset.events, "H1", DEFAULT_INSTRUMENTS)
    assert {spec.key for spec in series["EURUSD"].exact} >= {"tema(9)", "wma(30)", "rsi(7)", "bbands(10,1.5)",
                                                            "atr(14)", "macd(12,26,9)"}
    replay = asyncio.run(run(dataset, strategies, close_at_end=True))
    batch = asyncio.run(run_batch(dataset, strategies, close_at_end=True))
    assert trades_csv(batch.trades) == trades_csv(replay.trades)


def test_batch_refuses_what_it_does_not_replay(tmp_path, capsys):
    ticks = tmp_path / "ticks.csv"
    ticks.write_text("ts,symbol,bid,ask\n2026-01-05T00:00:00Z,EURUSD,1.1,1.1001\n")
    with pytest.raises(BatchScopeError, match="ticks need the event-driven replay"):
        asyncio.run(run_batch(load(ticks), load_default_strategies()))
    bars = write_sample(tmp_path / "s.csv", bars=300)
    assert cli.main(["backtest", "--data", str(bars), "--batch", "--reentry", "--out", str(tmp_path / "o")]) == 2
    assert "--batch replays bars without --reentry or --calendar" in capsys.readouterr().err
