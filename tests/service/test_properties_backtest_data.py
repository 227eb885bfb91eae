"""Property tests of the backtest data reader (`eafix.backtest.data.load`: OHLCV bars and ticks, CSV and
Parquet).

Covered: any bytes as a CSV file, and a valid file with one character mutated, load or raise
`DataError` (never a raw ValueError, OverflowError, UnicodeDecodeError, csv.Error or
decimal.InvalidOperation); bars and ticks written out and read back give the same symbols, times and
exact Decimal prices; a valid file with one cell mutated is refused with a message that names the file
and the row's line (or the next row's, when the mutated time makes that one out of order).
"""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from eafix.backtest.data import TIMEFRAMES, DataError, load
from service.property_strategies import csv_text, fuzz_bytes, mutated, near_numbers

START = datetime(2025, 1, 6, tzinfo=UTC)
prices = st.decimals(Decimal("0.00001"), Decimal("99999"), places=5, allow_nan=False, allow_infinity=False)
symbols = st.sampled_from(["EURUSD", "USDJPY", "XAUUSD", "GBPCHF"])


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory(prefix="eafix-props-") as name:
        yield Path(name)


@st.composite
def bar_rows(draw: st.DrawFn) -> list[dict[str, str]]:
    """OHLCV rows of one symbol in time order, open/close inside [low, high]."""
    count = draw(st.integers(1, 8))
    ts = START + timedelta(hours=draw(st.integers(0, 10_000)))
    rows = []
    for _ in range(count):
        o, c, a, b = (draw(prices) for _ in range(4))
        rows.append({"timestamp": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": str(o), "high": str(max(o, c, a, b)),
                     "low": str(min(o, c, a, b)), "close": str(c), "volume": str(draw(st.integers(0, 10**9)))})
        ts += timedelta(hours=draw(st.integers(1, 48)))
    return rows


@st.composite
def tick_rows(draw: st.DrawFn) -> list[dict[str, str]]:
    count = draw(st.integers(1, 8))
    ts = START + timedelta(seconds=draw(st.integers(0, 10**6)))
    rows = []
    for _ in range(count):
        bid = draw(prices)
        ask = bid + draw(st.decimals(Decimal("0"), Decimal("0.01"), places=5))
        rows.append({"ts": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "symbol": draw(symbols), "bid": str(bid),
                     "ask": str(ask)})
        ts += timedelta(milliseconds=draw(st.integers(0, 5000)))
    return rows



def load_text(workdir: Path, data: str | bytes, **kwargs):
    path = workdir / "data.csv"
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return load(path, **kwargs)


HEADER = b"timestamp,open,high,low,close,volume\n"


@given(fuzz_bytes | mutated(bar_rows().map(csv_text)) | mutated(tick_rows().map(csv_text)),
       st.sampled_from([*TIMEFRAMES, "H2"]))
@example(b"\x80", "H1")  # not UTF-8: was a raw UnicodeDecodeError
@example(HEADER + b"2025-01-06T00:00:00Z,1,1,1,1,inf\n", "H1")  # was OverflowError
@example(HEADER + b"2025-01-06T00:00:00Z,1,9999999999999999999999999999999.123456789,1,1,1\n", "H1")  # InvalidOp.
@example(b"ts,symbol,bid,ask,volume\n2025-01-06T00:00:00Z,EURUSD,1,1.1,abc\n", "H1")  # was a raw ValueError
@example(HEADER + b"9999-12-31T23:30:00Z,1,1,1,1,1\n", "H1")  # the bar's close is past year 9999
def test_any_file_loads_or_raises_data_error(workdir, data, timeframe) -> None:
    try:
        load_text(workdir, data, timeframe=timeframe)
    except DataError as exc:
        assert str(exc)


@given(bar_rows(), st.sampled_from(sorted(TIMEFRAMES)))
def test_bars_round_trip_exactly(workdir, rows, timeframe) -> None:
    dataset = load_text(workdir, csv_text(rows), timeframe=timeframe, symbol="GBPJPY")
    assert dataset.kind == "bars" and dataset.symbols == ("GBPJPY",)
    assert len(dataset.events) == len(rows)
    for bar, row in zip(dataset.events, rows, strict=True):
        assert bar.ts_open == datetime.strptime(row["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert bar.ts_close - bar.ts_open == timedelta(seconds=TIMEFRAMES[timeframe])
        assert (bar.open, bar.high, bar.low, bar.close) == tuple(Decimal(row[k]) for k in ("open", "high", "low",
                                                                                           "close"))
        assert bar.volume == int(row["volume"])


@given(tick_rows())
def test_ticks_round_trip_exactly(workdir, rows) -> None:
    dataset = load_text(workdir, csv_text(rows))
    assert dataset.kind == "ticks"
    got = sorted((t.ts, t.symbol, t.bid, t.ask) for t in dataset.events)
    want = sorted((datetime.strptime(r["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC), r["symbol"],
                   Decimal(r["bid"]), Decimal(r["ask"])) for r in rows)
    assert got == want


def start_line(rows: list[dict[str, str]], index: int) -> int:
    """The file line where data row `index` starts: one after the header and the rows before it, whose
    quoted cells may hold line breaks (a CSV reader ends a line at \r\n, \r or \n)."""
    return len(re.findall(r"\r\n|\r|\n", csv_text(rows[:index], list(rows[0])))) + 1


@given(bar_rows(), st.data())
def test_a_bad_cell_is_refused_naming_its_line(workdir, rows, data) -> None:
    index = data.draw(st.integers(0, len(rows) - 1))
    column = data.draw(st.sampled_from(list(rows[0])))
    rows[index][column] = data.draw(near_numbers | mutated(st.just(rows[index][column])))
    path = workdir / "data.csv"
    try:
        load_text(workdir, csv_text(rows))
    except DataError as exc:
        found = re.match(rf"{re.escape(str(path))}:(\d+): ", str(exc))
        assert found, str(exc)
        line = int(found.group(1))
        # the row itself, or the next one when the mutated time puts that one out of order
        allowed = {start_line(rows, index)}
        if column == "timestamp" and index + 1 < len(rows):
            allowed.add(start_line(rows, index + 1))
        assert line in allowed, (line, allowed, str(exc))


@given(bar_rows())
def test_parquet_float_prices_read_back_as_the_decimals_written(workdir, rows) -> None:
    path = workdir / "data.parquet"
    pl.DataFrame({
        "timestamp": [datetime.strptime(r["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) for r in rows],
        **{k: [float(r[k]) for r in rows] for k in ("open", "high", "low", "close")},
        "volume": [int(r["volume"]) for r in rows],
    }).write_parquet(path)
    bars = load(path).events
    assert [(b.open, b.high, b.low, b.close) for b in bars] == [
        tuple(Decimal(r[k]) for k in ("open", "high", "low", "close")) for r in rows]
