"""Backtest input: OHLCV bars or ticks from CSV or Parquet, and a seeded sample data set.

A bad file stops the run with one line naming the file, the row and the problem (`DataError`).
A clean OHLCV file is read column-wise with polars (bars_frame.py); any other, and a small CSV, goes row by
row here, which gives the same bars or the error.
OHLCV rows are stamped by their *open* time in the file (the usual export format); the Bar events
built from them carry `ts_open` and `ts_close = ts_open + timeframe`, and a strategy sees a bar only
at its close.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from eafix.backtest.bars_frame import read_bars
from eafix.contracts import Bar, PriceTick
from eafix.instruments import DEFAULT_INSTRUMENTS
from eafix.runtime.csv_records import MalformedCsv, records
from eafix.timestamps import parse_timestamp

TIMEFRAMES = {"M1": 60, "M5": 300, "M15": 900, "H1": 3600, "H4": 14400, "D1": 86400}
OHLCV_COLUMNS = ("timestamp", "open", "high", "low", "close")
TICK_COLUMNS = ("ts", "symbol", "bid", "ask")
# a CSV up to this size (~4,000 bars) is read row by row: sooner done than importing polars (start-up)
SMALL_CSV_BYTES = 256 * 1024


class DataError(ValueError):
    """A backtest input problem; str() is the one line to show."""


@dataclass(frozen=True)
class Dataset:
    kind: str  # "bars" or "ticks"
    # in replay order; a clean OHLCV file's bars are a BarFile, read again chunk by chunk as they are replayed
    events: Sequence[Bar] | Sequence[PriceTick]
    symbols: tuple[str, ...]


def _timestamp(text: str, where: str) -> datetime:
    try:
        return parse_timestamp(text, epoch_text=True)
    except ValueError as exc:
        raise DataError(f"{where}: {exc}") from None


def _price(text: str, column: str, where: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise DataError(f"{where}: {column} {text!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise DataError(f"{where}: {column} must be a positive number, got {text!r}")
    # the contracts carry at most 8 decimal places
    exponent = value.as_tuple().exponent  # an int for a finite value
    if isinstance(exponent, int) and exponent < -8:
        try:
            return value.quantize(Decimal("1e-8"))
        except InvalidOperation:  # more digits than the context holds: far beyond any price
            raise DataError(f"{where}: {column} {text!r} is out of range") from None
    return value


def _header(reader: Iterator[tuple[int, list[str]]], path: Path) -> dict[str, int]:
    try:
        _, header = next(reader)
    except StopIteration:
        raise DataError(f"{path}:1: the file is empty") from None
    return {name.strip().lower(): i for i, name in enumerate(header)}


def _parquet_rows(path: Path) -> tuple[dict[str, int], Iterator[tuple[int, list[str]]]]:
    """A Parquet file's columns and rows as the CSV reader gives them (text cells, row 2 = the first
    row), so both go through one validation. Floats become their shortest decimal text (what was
    written, not the binary expansion); timestamps their ISO text, naive ones refused later as in CSV."""
    try:
        import polars as pl
    except ImportError:  # pragma: no cover - the dev and research installs have it
        raise DataError(f"{path}: reading Parquet needs polars (pip install 'eafix[backtest]')") from None
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises its own types for unreadable files
        raise DataError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    columns = {name.strip().lower(): i for i, name in enumerate(frame.columns)}

    def text(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            return value.isoformat()
        return repr(value) if isinstance(value, float) else str(value)

    def rows() -> Iterator[tuple[int, list[str]]]:
        for row_no, row in enumerate(frame.iter_rows(), start=2):
            yield row_no, [text(v) for v in row]

    return columns, rows()


def _rows(path: Path) -> tuple[dict[str, int], Iterator[tuple[int, list[str]]]]:
    if path.suffix.lower() == ".parquet":
        return _parquet_rows(path)
    reader = _csv_lines(path)
    columns = _header(reader, path)

    def rows() -> Iterator[tuple[int, list[str]]]:
        for line, row in reader:
            if row and any(cell.strip() for cell in row):
                yield line, row

    return columns, rows()


def _csv_lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line, row) of each CSV row of a UTF-8 file (a BOM tolerated), `line` where the row starts (a
    quoted cell may span lines); text that is not UTF-8 or not CSV is a DataError naming its line."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        try:
            yield from records(csv.reader(handle))
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}:{_first_undecodable_line(path)}: not UTF-8 text ({exc.reason})") from None
        except MalformedCsv as exc:
            raise DataError(f"{path}:{exc.line}: not valid CSV ({exc.reason})") from None


def _first_undecodable_line(path: Path) -> int:
    # the text reader decodes in chunks, so its position does not say which line broke: look again
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1


def _cell(row: list[str], columns: dict[str, int], name: str, where: str) -> str:
    index = columns[name]
    if index >= len(row) or not row[index].strip():
        raise DataError(f"{where}: empty {name}")
    return row[index]


def _volume(row: list[str], columns: dict[str, int], where: str) -> int | None:
    """The optional volume cell (a float's whole part: exports write 120.0); None when absent."""
    index = columns.get("volume")
    if index is None or index >= len(row) or not row[index].strip():
        return None
    try:
        return int(float(row[index]))
    except (ValueError, OverflowError):  # OverflowError: inf
        raise DataError(f"{where}: volume {row[index]!r} is not a finite number") from None


def load(path: str | Path, *, symbol: str = "EURUSD", timeframe: str = "H1") -> Dataset:
    """Read an OHLCV or ticks file, CSV or `.parquet` (the kind detected from the column names,
    case-insensitive)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if timeframe in TIMEFRAMES and (path.stat().st_size > SMALL_CSV_BYTES or path.suffix.lower() == ".parquet"):
        clean = read_bars(path, symbol, timeframe)  # polars, column-wise; None: anything unusual
        if clean is not None:
            return Dataset("bars", *clean)
    columns, rows = _rows(path)
    if all(c in columns for c in TICK_COLUMNS):
        return _load_ticks(path, columns, rows)
    missing = [c for c in OHLCV_COLUMNS if c not in columns]
    if missing:
        raise DataError(f"{path}:1: missing column {missing[0]!r} (OHLCV needs {', '.join(OHLCV_COLUMNS)}"
                        f"[,volume]; ticks need {', '.join(TICK_COLUMNS)}[,volume])")
    if timeframe not in TIMEFRAMES:
        raise DataError(f"unknown timeframe {timeframe!r} (one of {', '.join(TIMEFRAMES)})")
    return _load_bars(path, columns, rows, symbol, timeframe)


def _dataset(path: Path, kind: str, events: list, symbols: Iterable[str]) -> Dataset:
    if not events:
        raise DataError(f"{path}: no data rows")
    return Dataset(kind, events, tuple(sorted(symbols)))


def _load_bars(path: Path, columns: dict[str, int], rows, default_symbol: str, timeframe: str) -> Dataset:
    step = timedelta(seconds=TIMEFRAMES[timeframe])
    bars: list[Bar] = []
    last: dict[str, datetime] = {}
    for row_no, row in rows:
        where = f"{path}:{row_no}"
        symbol = _cell(row, columns, "symbol", where).strip().upper() if "symbol" in columns else default_symbol
        ts_open = _timestamp(_cell(row, columns, "timestamp", where), where)
        if symbol in last and ts_open <= last[symbol]:
            raise DataError(f"{where}: timestamp {ts_open.isoformat()} is not after the previous row's "
                            f"{last[symbol].isoformat()} for {symbol} (rows must be in time order)")
        last[symbol] = ts_open
        o, h, lo, c = (_price(_cell(row, columns, k, where), k, where) for k in ("open", "high", "low", "close"))
        if h < max(o, c, lo) or lo > min(o, c, h):
            raise DataError(f"{where}: high {h} / low {lo} do not bracket open {o} and close {c}")
        volume = _volume(row, columns, where) or 0
        if ts_open > datetime.max.replace(tzinfo=UTC) - step:
            raise DataError(f"{where}: timestamp {ts_open.isoformat()}: the bar would close after year 9999")
        try:
            bars.append(Bar(symbol=symbol, timeframe=timeframe, ts_open=ts_open, ts_close=ts_open + step,
                            open=o, high=h, low=lo, close=c, volume=max(volume, 0)))
        except ValueError as exc:
            raise DataError(f"{where}: {str(exc).splitlines()[0]}") from None
    return _dataset(path, "bars", sorted(bars, key=lambda b: (b.ts_close, b.symbol)), last)


def _load_ticks(path: Path, columns: dict[str, int], rows) -> Dataset:
    ticks: list[PriceTick] = []
    last: dict[str, datetime] = {}
    for row_no, row in rows:
        where = f"{path}:{row_no}"
        symbol = _cell(row, columns, "symbol", where).strip().upper()
        ts = _timestamp(_cell(row, columns, "ts", where), where)
        if symbol in last and ts < last[symbol]:
            raise DataError(f"{where}: timestamp {ts.isoformat()} is before the previous row's "
                            f"{last[symbol].isoformat()} for {symbol} (rows must be in time order)")
        last[symbol] = ts
        bid = _price(_cell(row, columns, "bid", where), "bid", where)
        ask = _price(_cell(row, columns, "ask", where), "ask", where)
        if ask < bid:
            raise DataError(f"{where}: ask {ask} is below bid {bid}")
        volume = _volume(row, columns, where)
        try:
            ticks.append(PriceTick(symbol=symbol, ts=ts, bid=bid, ask=ask, volume=volume))
        except ValueError as exc:
            raise DataError(f"{where}: {str(exc).splitlines()[0]}") from None
    return _dataset(path, "ticks", sorted(ticks, key=lambda t: (t.ts, t.symbol)), last)


def sample_bars(*, seed: int = 7, bars: int = 2000, symbol: str = "EURUSD", timeframe: str = "H1",
                start: datetime = datetime(2026, 1, 5, tzinfo=UTC), price: float = 1.0850) -> list[dict]:
    """A seeded random walk with regime changes (trends and ranges), as OHLCV rows.

    Deterministic for a given seed on every platform (only `random.Random` and float arithmetic
    rounded to 5 decimals). Weekends are skipped like a forex feed.
    """
    rng = random.Random(seed)
    step = timedelta(seconds=TIMEFRAMES[timeframe])
    decimals = DEFAULT_INSTRUMENTS[symbol].price_precision
    vol = 0.0009 if timeframe in ("H1", "H4", "D1") else 0.0002
    rows: list[dict] = []
    ts, drift, regime_left = start, 0.0, 0
    while len(rows) < bars:
        if ts.weekday() >= 5:
            ts += step
            continue
        if regime_left == 0:
            drift = rng.choice((-1, 0, 0, 1)) * vol * rng.uniform(0.05, 0.25)
            regime_left = rng.randint(40, 160)
        regime_left -= 1
        o = price
        moves = [rng.gauss(drift / 4, vol / 2) for _ in range(4)]
        path = [o]
        for m in moves:
            path.append(path[-1] * math.exp(m))
        c = path[-1]
        h = max(path) * (1 + abs(rng.gauss(0, vol / 6)))
        lo = min(path) * (1 - abs(rng.gauss(0, vol / 6)))
        rows.append({"timestamp": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "open": f"{o:.{decimals}f}",
                     "high": f"{h:.{decimals}f}", "low": f"{lo:.{decimals}f}", "close": f"{c:.{decimals}f}",
                     "volume": rng.randint(200, 5000)})
        price = c
        ts += step
    return rows


def write_sample(path: str | Path, **kwargs) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = sample_bars(**kwargs)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["timestamp", "open", "high", "low", "close", "volume"])
        writer.writeheader()
        writer.writerows(rows)
    return path
