"""Backtest input: CSV loading with one-line errors, and the seeded sample data."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from eafix.backtest.data import DataError, load, sample_bars, write_sample


def write(tmp_path, text, name="in.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_ohlcv_with_case_insensitive_header_and_epoch_timestamps(tmp_path):
    p = write(tmp_path, "Timestamp,OPEN,High,low,Close,Volume\n"
                        "1767571200,1.1000,1.1010,1.0990,1.1005,100\n"
                        "2026-01-05T01:00:00Z,1.1005,1.1020,1.1000,1.1015,\n")
    d = load(p, symbol="GBPUSD", timeframe="H1")
    assert d.kind == "bars" and d.symbols == ("GBPUSD",)
    first, second = d.events
    assert first.ts_open == datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
    assert first.ts_close == datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
    assert (first.open, first.close, first.volume) == (Decimal("1.1000"), Decimal("1.1005"), 100)
    assert second.volume == 0


def test_ticks_are_detected_by_header(tmp_path):
    p = write(tmp_path, "ts,symbol,bid,ask\n2026-01-05T00:00:00Z,eurusd,1.1,1.1002\n")
    d = load(p)
    assert d.kind == "ticks"
    assert d.events[0].symbol == "EURUSD" and d.events[0].ask == Decimal("1.1002")


@pytest.mark.parametrize(("text", "message"), [
    ("timestamp,open,high,low\n", "in.csv:1: missing column 'close'"),
    ("timestamp,open,high,low,close\nyesterday,1,1,1,1\n", "in.csv:2: time 'yesterday' is not an RFC 3339 time"),
    # a time without a zone is refused, never read silently as UTC
    ("timestamp,open,high,low,close\n2026-01-05 00:00:00,1,1,1,1\n", "in.csv:2: time '2026-01-05 00:00:00' has no UTC"),
    ("timestamp,open,high,low,close\n2026-01-05T01:00:00Z,1,1,1,1\n2026-01-05T00:00:00Z,1,1,1,1\n",
     "in.csv:3: timestamp 2026-01-05T00:00:00+00:00 is not after the previous row's"),
    ("timestamp,open,high,low,close\n2026-01-05T00:00:00Z,1,1,1,1\n2026-01-05T00:00:00Z,1,1,1,1\n",
     "in.csv:3: timestamp"),
    ("timestamp,open,high,low,close\n2026-01-05T00:00:00Z,1.1,1.0,1.0,1.05\n", "in.csv:2: high 1.0 / low 1.0"),
    ("timestamp,open,high,low,close\n2026-01-05T00:00:00Z,abc,1,1,1\n", "in.csv:2: open 'abc' is not a number"),
    ("timestamp,open,high,low,close\n2026-01-05T00:00:00Z,-1,1,1,1\n", "in.csv:2: open must be a positive"),
    ("timestamp,open,high,low,close\n2026-01-05T00:00:00Z,,1,1,1\n", "in.csv:2: empty open"),
    ("", "in.csv:1: the file is empty"),
    ("timestamp,open,high,low,close\n", "in.csv: no data rows"),
    ("ts,symbol,bid,ask\n2026-01-05T00:00:00Z,EURUSD,1.2,1.1\n", "in.csv:2: ask 1.1 is below bid 1.2"),
])
def test_bad_csv_stops_with_one_line_naming_file_row_and_problem(tmp_path, text, message):
    with pytest.raises(DataError) as err:
        load(write(tmp_path, text))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_timeframe_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="unknown timeframe 'H2'"):
        load(write(tmp_path, "timestamp,open,high,low,close\n2026-01-05T00:00:00Z,1,1,1,1\n"), timeframe="H2")
    with pytest.raises(DataError, match="no such file"):
        load(tmp_path / "missing.csv")


def test_sample_data_is_reproducible_and_well_formed(tmp_path):
    a, b = sample_bars(seed=3, bars=300), sample_bars(seed=3, bars=300)
    assert a == b
    assert sample_bars(seed=4, bars=300) != a
    for row in a:
        o, h, lo, c = (float(row[k]) for k in ("open", "high", "low", "close"))
        assert lo <= min(o, c) <= max(o, c) <= h
        assert datetime.fromisoformat(row["timestamp"].replace("Z", "+00:00")).weekday() < 5
    d = load(write_sample(tmp_path / "s.csv", seed=3, bars=300))
    assert len(d.events) == 300
    closes = [b.ts_close for b in d.events]
    assert closes == sorted(closes)


def test_parquet_input_gives_the_csv_bars_and_the_same_errors(tmp_path):
    import polars as pl

    from eafix.backtest.data import DataError, load, write_sample

    csv_path = write_sample(tmp_path / "s.csv", bars=500)
    frame = pl.read_csv(csv_path, try_parse_dates=True)  # timestamps UTC, prices float64
    frame.write_parquet(tmp_path / "s.parquet")
    assert load(tmp_path / "s.parquet").events == load(csv_path).events
    frame.with_columns(pl.col("timestamp").dt.replace_time_zone(None)).write_parquet(tmp_path / "naive.parquet")
    with pytest.raises(DataError, match=r"naive.parquet:2: .*(zone|offset)"):
        load(tmp_path / "naive.parquet")
    (tmp_path / "bad.parquet").write_text("timestamp,open\n")
    with pytest.raises(DataError, match="bad.parquet: not a readable Parquet file"):
        load(tmp_path / "bad.parquet")


def rows_only(monkeypatch):
    """Make `load` read row by row (the reader every unusual file goes through)."""
    import eafix.backtest.data as data

    monkeypatch.setattr(data, "read_bars", lambda *args: None)


def exact(bars) -> list[tuple]:
    return [(b.symbol, b.timeframe, b.ts_open.isoformat(), b.ts_open.tzinfo is UTC, b.ts_close.isoformat(),
             *(str(getattr(b, p)) for p in ("open", "high", "low", "close")), b.volume) for b in bars]


def test_the_column_wise_reader_gives_the_row_readers_bars(tmp_path, monkeypatch):
    import polars as pl

    from eafix.backtest.bars_frame import read_bars

    two = write(tmp_path, "timestamp,Symbol,open,high,low,close,volume\n"
                          "2026-01-05T00:00:00Z,eurusd,1.10000,1.1010,1.0990,1.1005,100\n"
                          "2026-01-05T00:00:00+00:00,USDJPY,150.125,150.5,150,150.25,\n"
                          "2026-01-05T01:00:00Z,EURUSD,1.1005,1.1020,1.1,1.1015,7.9\n", "two.csv")
    sample = write_sample(tmp_path / "s.csv", seed=9, bars=700)
    pl.read_csv(sample, try_parse_dates=True).write_parquet(tmp_path / "s.parquet")
    files = [two, sample, tmp_path / "s.parquet"]
    assert all(read_bars(f, "EURUSD", "H1") is not None for f in files)  # the column-wise path takes them
    fast = [load(f) for f in files]
    rows_only(monkeypatch)
    slow = [load(f) for f in files]
    for a, b in zip(fast, slow, strict=True):
        assert a == b
        assert exact(a.events) == exact(b.events)
    assert [(b.symbol, str(b.open), b.volume) for b in fast[0].events] == [
        ("EURUSD", "1.10000", 100), ("USDJPY", "150.125", 0), ("EURUSD", "1.1005", 7)]


@pytest.mark.parametrize(("cell", "read"), [(" 1.1000", "1.1000"), ("1.1e0", "1.1"), ("01.1", "1.1"),
                                            ("1.123456789", "1.12345679")])
def test_unusual_cells_go_row_by_row(tmp_path, cell, read):
    from eafix.backtest.bars_frame import read_bars

    p = write(tmp_path, f"timestamp,open,high,low,close\n2026-01-05T00:00:00Z,{cell},1.2,1.0,1.1\n")
    assert read_bars(p, "EURUSD", "H1") is None
    assert str(load(p).events[0].open) == read  # the row reader's reading (strip, exponent, 8 places)


def test_a_clean_file_in_time_order_is_streamed_a_chunk_at_a_time(tmp_path, monkeypatch):
    import eafix.backtest.bars_frame as bars_frame
    import eafix.backtest.data as data

    monkeypatch.setattr(bars_frame, "CHUNK_ROWS", 300)  # 1,000 bars: four chunks, the last one short
    monkeypatch.setattr(data, "SMALL_CSV_BYTES", 0)  # polars for a file this small too
    sample = write_sample(tmp_path / "s.csv", seed=3, bars=1000)
    streamed = load(sample)
    assert isinstance(streamed.events, bars_frame.BarFile) and len(streamed.events) == 1000
    rows_only(monkeypatch)
    rows = load(sample).events
    assert exact(streamed.events) == exact(rows)  # every chunk, twice over: iterating reads the file again
    assert exact(streamed.events) == exact(rows)
    picked = (0, 299, 300, 999, -1)
    assert exact([streamed.events[i] for i in picked]) == exact([rows[i] for i in picked])
    (first, last, count), = streamed.events.spans.values()
    assert (first, last, count) == (rows[0].ts_open, rows[-1].ts_open, 1000)


def test_symbols_out_of_step_are_sorted_and_a_row_out_of_order_across_chunks_goes_row_by_row(tmp_path, monkeypatch):
    import eafix.backtest.bars_frame as bars_frame

    monkeypatch.setattr(bars_frame, "CHUNK_ROWS", 2)
    grouped = write(tmp_path, "timestamp,symbol,open,high,low,close\n"
                              "2026-01-05T00:00:00Z,GBPUSD,1.3,1.3,1.3,1.3\n"
                              "2026-01-05T01:00:00Z,GBPUSD,1.3,1.3,1.3,1.3\n"
                              "2026-01-05T00:00:00Z,EURUSD,1.1,1.1,1.1,1.1\n"
                              "2026-01-05T01:00:00Z,EURUSD,1.1,1.1,1.1,1.1\n", "grouped.csv")
    bars, symbols = bars_frame.read_bars(grouped, "EURUSD", "H1")
    assert isinstance(bars, list) and symbols == ("EURUSD", "GBPUSD")
    assert [(b.symbol, b.ts_open.hour) for b in bars] == [("EURUSD", 0), ("GBPUSD", 0), ("EURUSD", 1), ("GBPUSD", 1)]
    back = write(tmp_path, "timestamp,open,high,low,close\n"
                           "2026-01-05T00:00:00Z,1.1,1.1,1.1,1.1\n2026-01-05T02:00:00Z,1.1,1.1,1.1,1.1\n"
                           "2026-01-05T01:00:00Z,1.1,1.1,1.1,1.1\n", "back.csv")  # row 4 in the second chunk
    assert bars_frame.read_bars(back, "EURUSD", "H1") is None
    with pytest.raises(DataError, match=r"back.csv:4: timestamp 2026-01-05T01:00:00\+00:00 is not after"):
        load(back)
    quoted = write(tmp_path, 'timestamp,open,high,low,close\n2026-01-05T00:00:00Z,"1.1",1.1,1.1,1.1\n', "q.csv")
    assert bars_frame.read_bars(quoted, "EURUSD", "H1") is None and str(load(quoted).events[0].open) == "1.1"
