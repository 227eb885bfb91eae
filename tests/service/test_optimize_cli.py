"""`eafix optimize` end to end on a small sample: its best row is what `eafix backtest` gives for those
parameters, the results table's columns and formats, the heatmap, walk-forward splits, and exit code 2
with a message for bad grids, constraints, objectives and strategy values."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from eafix import cli
from eafix.backtest.data import write_sample

# bench/peers/sma_cross.yaml with its two periods swept
TEMPLATE = """\
version: 1
defaults:
  min_confidence: 0.0
  duplicate_window_seconds: 0
  stop: {atr_multiple: 1.0, min_pips: 1000, max_pips: 1000, fallback_pips: 1000}
  take_profit_ratio: 2.0
strategies:
  sma_cross:
    type: ma_crossover
    fast: sma({fast})
    slow: sma({slow})
    stop_and_reverse: true
"""
STATISTIC_COLUMNS = [
    "return_pct", "cagr", "volatility", "sharpe", "sortino", "calmar", "max_drawdown_pct", "max_drawdown",
    "avg_drawdown_pct", "avg_drawdown", "max_drawdown_days", "avg_drawdown_days", "trades", "wins", "losses",
    "win_rate", "net_pnl", "net_pips", "gross_profit", "gross_loss", "best_trade", "worst_trade", "avg_trade_pips",
    "avg_win", "avg_loss", "profit_factor", "expectancy", "sqn", "exposure_time", "end_balance"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("optimize")
    data = write_sample(root / "EURUSD_H1.csv", seed=7, bars=2000)
    template = root / "sma.yaml"
    template.write_text(TEMPLATE)
    return data, template


@pytest.fixture(scope="module")
def swept(files, tmp_path_factory):
    """fast in {10, 20} x slow in {20, 30}, fast < slow: three runs on two worker processes."""
    data, template = files
    out = tmp_path_factory.mktemp("swept")
    code = cli.main(["optimize", "--data", str(data), "--strategy", str(template), "--grid", "fast=10,20",
                     "--grid", "slow=20..30:10", "--constraint", "fast < slow", "--maximize", "sharpe",
                     "--workers", "2", "--reports", "2", "--report-format", "json", "--close-at-end",
                     "--out", str(out)])
    assert code == 0
    return out


def read_rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_results_table_has_every_parameter_statistic_and_count(swept):
    rows = read_rows(swept / "results.csv")
    assert list(rows[0]) == ["fast", "slow", *STATISTIC_COLUMNS, "signals", "suppressed", "orders",
                             "risk_rejections", "rank"]
    assert [(r["fast"], r["slow"]) for r in rows] == [("10", "20"), ("10", "30"), ("20", "30")]  # (20, 20) pruned
    assert sorted(int(r["rank"]) for r in rows) == [1, 2, 3]
    sharpe = {int(r["rank"]): float(r["sharpe"]) for r in rows}
    assert sharpe[1] >= sharpe[2] >= sharpe[3]
    for r in rows:
        assert int(r["trades"]) >= int(r["wins"]) + int(r["losses"])  # break-even trades are neither
        assert int(r["trades"]) > 10


def test_the_best_row_is_what_eafix_backtest_gives(swept, files, tmp_path):
    data, _ = files
    best = next(r for r in read_rows(swept / "results.csv") if r["rank"] == "1")
    strategy = tmp_path / "best.yaml"  # filled in here, by hand, not by the template code
    strategy.write_text(TEMPLATE.replace("{fast}", best["fast"]).replace("{slow}", best["slow"]))
    out = tmp_path / "backtest"
    # the event-driven replay (no --batch): an independent path to the same trades
    assert cli.main(["backtest", "--data", str(data), "--strategy", str(strategy), "--close-at-end",
                     "--format", "json", "--out", str(out)]) == 0
    assert (swept / "top-1" / "trades.csv").read_text() == (out / "trades.csv").read_text()
    summary = json.loads((out / "report.json").read_text())["summary"]
    for column in STATISTIC_COLUMNS:
        expected = summary[column]
        if expected is None:
            assert best[column] == ""
        else:
            assert float(best[column]) == pytest.approx(float(expected), rel=1e-12), column
    counts = json.loads((out / "report.json").read_text())["counts"]
    assert int(best["signals"]) == counts["signals"] and int(best["orders"]) == counts["orders"]
    assert int(best["risk_rejections"]) == counts["risk rejections"]
    assert (swept / "top-1" / "strategy.yaml").read_text() == strategy.read_text()


def test_reports_of_the_top_n(swept):
    rows = {r["rank"]: r for r in read_rows(swept / "results.csv")}
    for rank in ("1", "2"):
        report = json.loads((swept / f"top-{rank}" / "report.json").read_text())
        assert report["summary"]["trades"] == int(rows[rank]["trades"])
        assert f"fast={rows[rank]['fast']}, slow={rows[rank]['slow']}" in report["title"]
    assert not (swept / "top-3").exists()


def test_heatmap_is_a_png(swept):
    assert (swept / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_parquet_results_svg_heatmap_and_walk_forward(files, tmp_path):
    data, template = files
    results = tmp_path / "table.parquet"
    code = cli.main(["optimize", "--data", str(data), "--strategy", str(template), "--grid", "fast=5,10",
                     "--grid", "slow=20,30", "--maximize", "return", "--workers", "1", "--reports", "0",
                     "--results", str(results), "--heatmap-format", "svg", "--walk-forward", "3",
                     "--out", str(tmp_path)])
    assert code == 0
    frame = pl.read_parquet(results)
    assert frame.columns[:2] == ["fast", "slow"] and "return_pct" in frame.columns and "trades" in frame.columns
    assert frame.height == 4
    assert (tmp_path / "heatmap.svg").read_text().lstrip().startswith("<?xml")
    assert not (tmp_path / "top-1").exists()

    splits = read_rows(tmp_path / "walk_forward.csv")
    assert [s["split"] for s in splits] == ["1", "2", "3"]
    bars = read_rows(data)
    assert splits[0]["in_sample_start"] == bars[0]["timestamp"].replace("Z", "+00:00")  # the first bar's open
    for before, after in zip(splits, splits[1:], strict=False):  # split i's out-of-sample is split i+1's in-sample
        assert (before["out_of_sample_start"], before["out_of_sample_end"]) == (
            after["in_sample_start"], after["in_sample_end"])
    for s in splits:
        # [start, end): the in-sample's last bar closes when (or before) the out-of-sample's first opens
        assert s["in_sample_start"] < s["in_sample_end"] <= s["out_of_sample_start"] < s["out_of_sample_end"]
        assert (int(s["fast"]), int(s["slow"])) in {(5, 20), (5, 30), (10, 20), (10, 30)}
        assert s["in_sample_return_pct"] != "" and int(s["out_of_sample_trades"]) >= 0
    # the last window ends with the data: its last bar's close, one hour after that bar's open time
    last_open = datetime.fromisoformat(bars[-1]["timestamp"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(splits[-1]["out_of_sample_end"]) == last_open + timedelta(hours=1)


def run_bad(capsys, files, *extra: str, grid=("fast=10,20", "slow=30,40")) -> str:
    data, template = files
    args = ["optimize", "--data", str(data), "--strategy", str(template)]
    for g in grid:
        args += ["--grid", g]
    assert cli.main([*args, *extra, "--out", "/nonexistent/never-written"]) == 2
    return capsys.readouterr().err


def test_bad_input_is_exit_2_with_a_message_naming_it(files, capsys):
    message = run_bad(capsys, files, grid=("fsat=10,20", "slow=30,40"))
    assert "--grid fsat: " in message and "has no {fsat} placeholder" in message
    assert "placeholder {slow} has no --grid slow=" in run_bad(capsys, files, grid=("fast=10,20",))
    assert "--grid 'slow=30..': " in run_bad(capsys, files, grid=("fast=10,20", "slow=30.."))
    assert "--constraint 'fast < open(1)': call is not allowed" in run_bad(
        capsys, files, "--constraint", "fast < open(1)")
    assert "'speed' is not a grid parameter (the grid has: fast, slow)" in run_bad(
        capsys, files, "--constraint", "speed < slow")
    message = run_bad(capsys, files, "--maximize", "sharp")
    assert "objective 'sharp' is not a statistic; valid: " in message and "sharpe" in message
    assert "no combination of the 4 in the grid meets the constraints" in run_bad(
        capsys, files, "--constraint", "fast > slow")
    message = run_bad(capsys, files, grid=("fast=1,10", "slow=30"))  # sma(1): the strategy refuses it
    assert "with fast=1, slow=30" in message and "sma period must be >= 2" in message
    assert "--heatmap 'fast,speed': name two different grid parameters" in run_bad(
        capsys, files, "--heatmap", "fast,speed")
    assert "--walk-forward: cannot be negative" in run_bad(capsys, files, "--walk-forward", "-1")
    assert "--grid trades: a column of the results has that name" in run_bad(
        capsys, files, grid=("fast=10,20", "slow=30", "trades=1,2"))


def test_ticks_run_through_the_replay_as_backtest_runs_them(tmp_path):
    import random

    ticks = tmp_path / "ticks.csv"
    rng, price, rows = random.Random(5), 110000, ["ts,symbol,bid,ask"]
    for i in range(4000):  # seeded random-walk ticks, one a second, in 1e-5 steps
        price += rng.choice([-3, -2, -1, 0, 1, 2, 3])
        rows.append(f"2026-03-02T{10 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z,EURUSD,"
                    f"{price / 1e5:.5f},{(price + 10) / 1e5:.5f}")
    ticks.write_text("\n".join(rows) + "\n")
    template = tmp_path / "t.yaml"
    template.write_text(TEMPLATE)
    assert cli.main(["optimize", "--data", str(ticks), "--strategy", str(template), "--grid", "fast=3,5",
                     "--grid", "slow=8", "--timeframe", "M1", "--workers", "1", "--maximize", "return",
                     "--report-format", "json", "--out", str(tmp_path / "o")]) == 0
    best = next(r for r in read_rows(tmp_path / "o" / "results.csv") if r["rank"] == "1")
    strategy = tmp_path / "best.yaml"
    strategy.write_text(TEMPLATE.replace("{fast}", best["fast"]).replace("{slow}", "8"))
    assert cli.main(["backtest", "--data", str(ticks), "--strategy", str(strategy), "--timeframe", "M1",
                     "--format", "json", "--out", str(tmp_path / "b")]) == 0
    trades = (tmp_path / "b" / "trades.csv").read_text()
    assert trades.count("\n") > 5  # a header and trades
    assert (tmp_path / "o" / "top-1" / "trades.csv").read_text() == trades
    assert int(best["trades"]) == trades.count("\n") - 1


def write_bars(rows: list[dict], path: Path) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_a_walk_forward_split_is_the_best_of_its_window_run_on_the_next(files, tmp_path):
    data, template = files
    grid = ["--grid", "fast=5,10", "--grid", "slow=20,30", "--maximize", "return", "--workers", "1"]
    assert cli.main(["optimize", "--data", str(data), "--strategy", str(template), *grid, "--reports", "0",
                     "--walk-forward", "3", "--out", str(tmp_path / "wf")]) == 0
    split = read_rows(tmp_path / "wf" / "walk_forward.csv")[1]  # split 2: in window 2 of 4, out window 3
    bars = read_rows(data)  # 2,000 bars, 4 windows of 500 (one symbol: a bar per time)
    inside, outside = write_bars(bars[500:1000], tmp_path / "in.csv"), write_bars(bars[1000:1500], tmp_path / "out.csv")

    assert cli.main(["optimize", "--data", str(inside), "--strategy", str(template), *grid, "--reports", "0",
                     "--out", str(tmp_path / "in")]) == 0
    best = next(r for r in read_rows(tmp_path / "in" / "results.csv") if r["rank"] == "1")
    assert (split["fast"], split["slow"]) == (best["fast"], best["slow"])
    assert float(split["in_sample_return_pct"]) == pytest.approx(float(best["return_pct"]), rel=1e-12)

    strategy = tmp_path / "chosen.yaml"
    strategy.write_text(TEMPLATE.replace("{fast}", split["fast"]).replace("{slow}", split["slow"]))
    assert cli.main(["backtest", "--data", str(outside), "--strategy", str(strategy), "--format", "json",
                     "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "report.json").read_text())["summary"]
    assert float(split["out_of_sample_return_pct"]) == pytest.approx(float(summary["return_pct"]), rel=1e-12)
    assert int(split["out_of_sample_trades"]) == summary["trades"]
