"""The in-process backtest: determinism, fill semantics checked against the input bars, the CLI."""

import asyncio
import csv
import json
from datetime import timedelta
from decimal import Decimal

import pytest

from eafix import cli
from eafix.backtest.data import load, write_sample
from eafix.backtest.runner import run
from eafix.signal_generator.config import load_default_strategies


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("bt") / "EURUSD_H1.csv", seed=7, bars=3000)


@pytest.fixture(scope="module")
def result(sample):
    return asyncio.run(run(load(sample), load_default_strategies(), spread_pips=Decimal("1.0")))


def test_same_input_same_trades(sample, result):
    again = asyncio.run(run(load(sample), load_default_strategies(), spread_pips=Decimal("1.0")))
    assert [t.model_dump() for t in again.trades] == [t.model_dump() for t in result.trades]
    assert result.trades, "the default strategies trade on the sample"


def test_orders_fill_at_the_next_bar_open_and_exits_match_their_reason(sample, result):
    bars = {b.ts_open: b for b in load(sample).events}
    pip = Decimal("0.0001")
    for t in result.trades:
        bar = bars[t.open_time]  # filled at the open of a bar of the input, never mid-bar
        expected = bar.open + pip if t.direction == "LONG" else bar.open  # LONG pays the 1-pip spread
        assert t.open_price == expected
        assert t.close_time > t.open_time
        assert (t.pips > 0) == (t.close_reason == "TP")
    assert len(result.trades) <= result.orders


def test_ticks_replay_through_the_paper_broker(tmp_path):
    import random

    path = tmp_path / "ticks.csv"
    quotes = {}
    rng = random.Random(5)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ts", "symbol", "bid", "ask"])
        price = Decimal("1.10000")
        for i in range(12000):  # 200 minutes of seeded random-walk ticks, one a second
            price += rng.choice([-3, -2, -1, 0, 1, 2, 3]) * Decimal("0.00001")
            ts = f"2026-03-02T{10 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
            quotes[ts] = (price, price + Decimal("0.0001"))
            w.writerow([ts, "EURUSD", price, price + Decimal("0.0001")])
    out = asyncio.run(run(load(path), load_default_strategies(), timeframe="M1"))
    assert out.inputs == 12000
    # 200 minutes of ticks close 199 M1 bars (the last minute has no later tick); kept for the report
    (candles,) = out.candles  # drawn as they are: 199 candles one minute apart
    assert (candles.frame, candles.bars, len(candles.ts)) == ("source", 199, 199)
    assert {b - a for a, b in zip(candles.ts, candles.ts[1:], strict=False)} == {timedelta(minutes=1)}
    assert out.trades, "the seeded walk makes the default strategies trade"
    for t in out.trades:  # paper fills: LONG at the ask, SHORT at the bid of the tick it filled on
        bid, ask = quotes[t.open_time.strftime("%Y-%m-%dT%H:%M:%SZ")]
        assert t.open_price == (ask if t.direction == "LONG" else bid)


def test_cli_writes_the_report_and_fails_with_one_line_on_bad_data(sample, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["backtest", "--data", str(sample), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "win rate" in printed and "profit factor" in printed and "Sharpe" in printed
    rows = list(csv.DictReader((out / "trades.csv").open()))
    report = (out / "report.html").read_text()
    assert rows and report.split("<h2>Trades")[1].count("<tr>") == len(rows) + 1
    assert "<h2>By symbol</h2>" in report and "<h2>By strategy</h2>" in report and "<h2>By day</h2>" in report
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,open,high,low,close\n2026-01-05T00:00:00Z,1,1,1\n")
    assert cli.main(["backtest", "--data", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"eafix backtest: {bad}:2: empty close\n"


def test_cli_formats_json_and_png_carry_the_run(sample, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["backtest", "--data", str(sample), "--out", str(out), "--format", "json"]) == 0
    assert f"wrote {out / 'report.json'} (" in capsys.readouterr().out
    document = json.loads((out / "report.json").read_text())
    rows = list(csv.DictReader((out / "trades.csv").open()))
    assert document["summary"]["trades"] == len(rows) > 0
    assert Decimal(document["summary"]["net_pnl"]) == sum(Decimal(r["pnl"]) for r in rows)
    assert document["counts"]["inputs"] == 3000 and document["counts"]["orders"] >= len(rows)
    assert cli.main(["backtest", "--data", str(sample), "--out", str(out), "--format", "png"]) == 0
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit) as bad:
        cli.main(["backtest", "--data", str(sample), "--out", str(out), "--format", "pdf"])
    assert bad.value.code == 2 and "invalid choice: 'pdf'" in capsys.readouterr().err


def test_the_result_keeps_candles_suppressions_and_levels_for_the_report(sample, result):
    from eafix.reporting.candles import resample

    # the bars resampled as they were replayed: what resampling all of them at the end gives
    assert list(result.candles) == resample(list(load(sample).events))
    (candles,) = result.candles
    assert candles.bars == result.inputs and candles.ts == sorted(candles.ts)
    assert len(result.suppressions) == result.suppressed
    assert set(result.levels) == {t.trade_id for t in result.trades}
    for t in result.trades:  # the stop below a LONG's fill and above a SHORT's, the target the other way
        sl, tp = result.levels[t.trade_id]
        assert (sl < t.open_price < tp) if t.direction == "LONG" else (tp < t.open_price < sl)


def test_the_result_repr_counts_instead_of_listing_every_bar(result):
    # asyncio.run formats the finished task's repr (its result included) when it restores SIGINT
    text = repr(result)
    assert text == (f"BacktestResult(inputs=3000, signals={result.signals}, orders={result.orders}, "
                    f"trades={len(result.trades)}, bars=3000)")


def test_sample_data_command_is_reproducible(tmp_path, capsys):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert cli.main(["sample-data", "--out", str(a), "--bars", "500", "--seed", "3"]) == 0
    assert cli.main(["sample-data", "--out", str(b), "--bars", "500", "--seed", "3"]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert len(a.read_text().splitlines()) == 501
