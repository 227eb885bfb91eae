"""The batch path (`eafix backtest --batch`) against the event-driven replay: the same trades.csv,
byte for byte, on every dataset here (each strategy set, one and two symbols), and the same counts;
out of its scope (ticks, re-entries, a calendar) it refuses with a message."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import pytest

from eafix import cli
from eafix.backtest.batch import BatchScopeError, run_batch
from eafix.backtest.data import load, sample_bars, write_sample
from eafix.backtest.runner import run
from eafix.reporting.render import trades_csv
from eafix.signal_generator.config import load_default_strategies, load_strategies_file

PEERS = Path(__file__).resolve().parents[2] / "bench" / "peers" / "sma_cross.yaml"


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
}


@pytest.mark.parametrize("name", list(DATASETS))
def test_batch_trades_are_the_replays_byte_for_byte(name, tmp_path):
    data, strategy_file = DATASETS[name](tmp_path)
    strategies = load_strategies_file(strategy_file) if strategy_file else load_default_strategies()
    dataset = load(data)
    replay = asyncio.run(run(dataset, strategies, close_at_end=True))
    batch = asyncio.run(run_batch(dataset, strategies, close_at_end=True))
    assert len(replay.trades) > 50
    assert trades_csv(batch.trades) == trades_csv(replay.trades)
    assert (batch.signals, batch.suppressed, batch.orders, batch.rejected) == (
        replay.signals, replay.suppressed, replay.orders, replay.rejected)
    assert batch.strategy_of == replay.strategy_of


def test_batch_refuses_what_it_does_not_replay(tmp_path, capsys):
    ticks = tmp_path / "ticks.csv"
    ticks.write_text("ts,symbol,bid,ask\n2026-01-05T00:00:00Z,EURUSD,1.1,1.1001\n")
    with pytest.raises(BatchScopeError, match="ticks need the event-driven replay"):
        asyncio.run(run_batch(load(ticks), load_default_strategies()))
    bars = write_sample(tmp_path / "s.csv", bars=300)
    assert cli.main(["backtest", "--data", str(bars), "--batch", "--reentry", "--out", str(tmp_path / "o")]) == 2
    assert "--batch replays bars without --reentry or --calendar" in capsys.readouterr().err
