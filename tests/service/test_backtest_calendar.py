"""The backtest with calendar-ingestor's stage: no trade opens inside a blackout window of its pair's
currencies (windows computed here from the CSV with zoneinfo, not by the calendar code), the gate
changes what is traded, re-entries are keyed by proximity, and the CLI reports and refuses."""

from __future__ import annotations

import asyncio
import csv
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from eafix import cli
from eafix.backtest.data import load, write_sample
from eafix.backtest.runner import load_calendar, run
from eafix.backtest.sample_calendar import write_sample_calendar
from eafix.reentry_matrix_svc.matrix import load_matrix
from eafix.signal_generator.config import load_default_strategies

NEW_YORK = ZoneInfo("America/New_York")
MINUTES = {"High": (60, 30), "Medium": (30, 15)}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("btcal")
    bars = write_sample(root / "EURUSD_H1.csv", seed=7, bars=3000)
    dataset = load(bars)
    calendar = write_sample_calendar(root / "EURUSD_H1_calendar.csv", dataset.events[0].ts_open.date(),
                                     dataset.events[-1].ts_close.date(), seed=7)
    return bars, calendar


def windows(calendar_csv) -> list[tuple[datetime, datetime]]:
    """EUR and USD HIGH/MEDIUM events of the file: New York wall time -> UTC, minus before, plus after."""
    out = []
    with open(calendar_csv, newline="") as f:
        for row in csv.DictReader(f):
            if row["Country"] in ("EUR", "USD") and row["Impact"] in MINUTES:
                local = datetime.strptime(f"{row['Date']} {row['Time'].upper()}", "%m-%d-%Y %I:%M%p")
                at = local.replace(tzinfo=NEW_YORK).astimezone(UTC)
                before, after = MINUTES[row["Impact"]]
                out.append((at - timedelta(minutes=before), at + timedelta(minutes=after)))
    return out


def inside(ts: datetime, spans) -> bool:
    return any(start <= ts <= end for start, end in spans)


@pytest.fixture(scope="module")
def replays(files):
    bars, calendar = files
    dataset, strategies, matrix = load(bars), load_default_strategies(), load_matrix()
    gated = asyncio.run(run(dataset, strategies, reentry=matrix, calendar=load_calendar(calendar)))
    plain = asyncio.run(run(dataset, strategies, reentry=matrix))
    return gated, plain


def test_no_trade_opens_inside_a_blackout_window(files, replays):
    gated, plain = replays
    spans = windows(files[1])
    assert len(spans) > 100  # the sample calendar has HIGH and MEDIUM EUR/USD events throughout
    # without the calendar some entries fall inside windows: the check below can fail
    assert sum(inside(t.open_time, spans) for t in plain.trades) > 5
    # H1 bars are contiguous on weekdays: a fill at the next bar's open is at the signal's bar close,
    # which is what the gates judged
    assert [t.trade_id for t in gated.trades if inside(t.open_time, spans)] == []
    assert gated.trades


def test_the_gate_suppresses_signals_and_proximity_keys_reentries(replays):
    gated, plain = replays
    assert gated.blackout_suppressed > 0 and plain.blackout_suppressed == 0
    proximities = {d.proximity for d in gated.reentry_decisions}
    assert proximities - {"NONE"}, "closed trades near events are keyed by their proximity"
    assert {d.proximity for d in plain.reentry_decisions} == {"NONE"}


def test_cli_counts_blackouts_lists_chains_and_refuses_a_bad_calendar(files, tmp_path, capsys):
    bars, calendar = files
    out = tmp_path / "out"
    assert cli.main(["backtest", "--data", str(bars), "--calendar", str(calendar), "--reentry",
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "signals suppressed by blackouts" in printed and "re-entry decisions" in printed
    report = (out / "report.html").read_text()
    assert "Re-entry chains (" in report and "<th>proximity</th>" in report
    bad = tmp_path / "bad.csv"
    bad.write_text("Title,Country,Date,Time,Impact\nCPI,USD,13-45-2026,8:30am,High\nPPI,usd1,01-05-2026,8:30am,H\n")
    assert cli.main(["backtest", "--data", str(bars), "--calendar", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "2 rows rejected, nothing taken" in err and "line 2:" in err and "line 3:" in err


def test_sample_calendar_is_reproducible_and_beside_the_bars(tmp_path, capsys):
    for name in ("a", "b"):
        assert cli.main(["sample-data", "--out", str(tmp_path / name / "EURUSD_H1.csv"), "--bars", "500",
                         "--calendar"]) == 0
    first = (tmp_path / "a" / "EURUSD_H1_calendar.csv").read_bytes()
    assert first == (tmp_path / "b" / "EURUSD_H1_calendar.csv").read_bytes()
    assert first.startswith(b"Title,Country,Date,Time,Impact,Forecast,Previous,URL")
    assert "wrote a calendar" in capsys.readouterr().out
