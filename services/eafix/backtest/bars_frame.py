"""OHLCV files read column-wise with polars: the common, clean case of `data.load`, ~10x faster.

The cells are read as text (Parquet floats as their shortest decimal text, as `data._parquet_rows`
gives them) and checked a column at a time against what the row-by-row reader would accept without
change: timestamps `YYYY-MM-DDTHH:MM:SS` with `Z` or `+00:00`, prices plain positive decimals of at
most 8 places (Decimal built from the same text, so exact), a six-letter symbol, a volume of digits,
high/low bracketing open/close (compared as floats: distinct decimals of at most 8 places stay
distinct and ordered as doubles), rows in time order per symbol. Anything else (a blank cell, a
header the csv module reads differently, a bad row) returns None and `data.load` reads the file row
by row, which gives the same bars or names the file, row and problem as before.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import BytesIO
from itertools import islice
from pathlib import Path
from typing import overload

from eafix.contracts import Bar
from eafix.contracts.primitives import Timeframe

_PRICE = r"^(?:0|[1-9][0-9]{0,11})(?:\.[0-9]{1,8})?$"  # contracts' Price pattern less its > 0 lookahead
_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:Z|\+00:00)$"
_VOLUME = r"^[0-9]{1,15}(?:\.[0-9]*)?$"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PRICES = ("open", "high", "low", "close")
_SECONDS = {"M1": 60, "M5": 300, "M15": 900, "H1": 3600, "H4": 14400, "D1": 86400}
CHUNK_ROWS = 50_000  # rows per chunk read: a few MB of text columns


def _parquet_frame(path: Path):
    """A Parquet file's cells as text columns (floats as their shortest decimal text)."""
    import polars as pl

    frame = pl.read_parquet(path)

    def text(series: pl.Series) -> pl.Series:
        if series.dtype == pl.Float64 or series.dtype == pl.Float32:
            return pl.Series(series.name, [None if v is None else repr(v) for v in series.to_list()], pl.String)
        if series.dtype == pl.String:
            return series
        if series.dtype.is_integer():
            return series.cast(pl.String)
        return pl.Series(series.name, [None if v is None else (v.isoformat() if isinstance(v, datetime)
                                                               else str(v)) for v in series.to_list()],
                         pl.String)

    return pl.DataFrame([text(frame[c]) for c in frame.columns])


def _text_frames(path: Path) -> Iterator:
    """The file's cells as text frames of at most CHUNK_ROWS rows (a CSV) or one (a Parquet file);
    raises _Unusual when polars or the csv module could read it differently: a quote anywhere (a
    quoted cell may span lines, which a split at line ends would cut) or another header."""
    import polars as pl

    if path.suffix.lower() == ".parquet":
        yield _parquet_frame(path)
        return
    with path.open("rb") as handle:
        head = handle.readline()
        header = next(csv.reader([head.decode("utf-8", errors="replace")]), None)
        if b'"' in head or header is None:
            raise _Unusual
        while lines := list(islice(handle, CHUNK_ROWS)):
            block = b"".join(lines)
            del lines  # not held while the chunk's bars are replayed
            if b'"' in block:
                raise _Unusual
            frame = pl.read_csv(BytesIO(head + block), infer_schema=False)
            if frame.columns != header:
                raise _Unusual
            yield frame


class _Unusual(Exception):
    """A file or cell the column-wise reader does not take: the row-by-row reader reads it."""


def _checked(frame, default_symbol: str):
    """The frame's rows as (symbol, us, open..close text, volume text), checked as data's reader would
    check them (each symbol's rows in time order within the frame); raises _Unusual otherwise."""
    import polars as pl

    names = [c.strip().lower() for c in frame.columns]
    if len(set(names)) != len(names):
        raise _Unusual
    frame = frame.rename(dict(zip(frame.columns, names, strict=True)))
    if any(c not in frame.columns for c in ("timestamp", *PRICES)) \
            or all(c in frame.columns for c in ("ts", "symbol", "bid", "ask")):
        raise _Unusual
    symbol = pl.col("symbol").str.strip_chars().str.to_uppercase() if "symbol" in frame.columns \
        else pl.lit(default_symbol)
    volume = pl.col("volume") if "volume" in frame.columns else pl.lit("0")
    frame = frame.select(symbol.alias("symbol"), pl.col("timestamp"), *(pl.col(p) for p in PRICES),
                         volume.fill_null("0").alias("volume"))
    if frame.null_count().sum_horizontal().item() > 0:
        raise _Unusual
    checks = [
        pl.col("symbol").str.contains(r"^[A-Z]{6}$"),
        pl.col("timestamp").str.contains(_TIME),
        pl.col("volume").str.contains(_VOLUME),
        *(pl.col(p).str.contains(_PRICE) for p in PRICES),
        *(pl.col(f"{p}_f") > 0 for p in PRICES),
        pl.col("high_f") >= pl.max_horizontal("open_f", "close_f", "low_f"),
        pl.col("low_f") <= pl.min_horizontal("open_f", "close_f", "high_f"),
        pl.col("us").diff().over("symbol").fill_null(1) > 0,  # in time order per symbol
    ]
    try:
        checked = frame.with_columns(
            pl.col("timestamp").str.replace(r"\+00:00$", "Z").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC",
                                                                              strict=True).dt.epoch("us").alias("us"),
            *(pl.col(p).cast(pl.Float64, strict=False).alias(f"{p}_f") for p in PRICES))
        ok = checked.select(check.fill_null(False).all().alias(f"check{i}") for i, check in enumerate(checks)).row(0)
    except Exception:  # noqa: BLE001 - a timestamp polars cannot take (Feb 30, 24:00, ...)
        raise _Unusual from None
    if not all(ok):
        raise _Unusual
    return checked.select("symbol", "us", *PRICES, "volume")


def _in_order(checked) -> bool:
    """Whether the rows are already in data's order, (ts_close, symbol) strictly increasing."""
    import polars as pl

    us, symbol = pl.col("us"), pl.col("symbol")
    later = (us > us.shift()) | ((us == us.shift()) & (symbol > symbol.shift()))
    return bool(checked.select(later.fill_null(True).all()).item())


@dataclass
class _Scan:
    """What the checking pass over a file found."""

    rows: int = 0
    in_order: bool = True
    last: dict[str, int] = field(default_factory=dict)  # symbol -> its last row's open time (us)
    spans: dict[str, list] = field(default_factory=dict)  # symbol -> [first us, last us, rows]
    head: tuple | None = None  # the first row
    tail: tuple | None = None  # the last row

    def add(self, checked) -> None:
        import polars as pl

        if checked.height == 0:
            return

        per = checked.group_by("symbol", maintain_order=True).agg(
            pl.col("us").first().alias("first"), pl.col("us").last().alias("last"), pl.len().alias("n"))
        for sym, first, last, n in per.iter_rows():
            if sym in self.last and first <= self.last[sym]:
                raise _Unusual  # out of time order across chunks: the row reader names the row
            self.last[sym] = last
            span = self.spans.setdefault(sym, [first, last, 0])
            span[1], span[2] = last, span[2] + n
        head = checked.row(0)
        if self.tail is not None and (head[1], head[0]) <= (self.tail[1], self.tail[0]):
            self.in_order = False
        self.in_order = self.in_order and _in_order(checked)
        self.head = self.head or head
        self.tail = checked.row(-1)
        self.rows += checked.height


def _bar_of(row: tuple, timeframe: str) -> Bar:
    return next(_bars_of([row], timeframe))


def _bars_of(rows, timeframe: str) -> Iterator[Bar]:
    """Bars of checked rows (symbol, us, open..close text, volume text)."""
    step = timedelta(seconds=_SECONDS[timeframe])
    tf = Timeframe(timeframe)
    for sym, us, o, h, lo, c, vol in rows:
        ts_open = _EPOCH + timedelta(microseconds=us)
        yield Bar.trusted({"symbol": sym, "timeframe": tf, "ts_open": ts_open, "ts_close": ts_open + step,
                    "open": Decimal(o), "high": Decimal(h), "low": Decimal(lo), "close": Decimal(c),
                    "volume": int(float(vol))})


class BarFile(Sequence[Bar]):
    """The bars of a clean OHLCV file already in time order across its symbols, read again a chunk at a
    time while they are replayed, so memory does not grow with the file. Indexing other than the first
    and last bar reads up to that bar (for occasional use; `list()` it for random access)."""

    def __init__(self, path: Path, default_symbol: str, timeframe: str, scan: _Scan) -> None:
        self.path, self.default_symbol, self.timeframe = path, default_symbol, timeframe
        self.spans = {sym: (_EPOCH + timedelta(microseconds=first), _EPOCH + timedelta(microseconds=last), n)
                      for sym, (first, last, n) in scan.spans.items()}  # symbol -> first, last open time, bars
        self._rows = scan.rows
        assert scan.head is not None and scan.tail is not None  # read_bars makes none of an empty file
        self._first, self._last = _bar_of(scan.head, timeframe), _bar_of(scan.tail, timeframe)

    def __len__(self) -> int:
        return self._rows

    def __iter__(self) -> Iterator[Bar]:
        try:
            for frame in _text_frames(self.path):
                yield from _bars_of(_checked(frame, self.default_symbol).iter_rows(), self.timeframe)
        except _Unusual:
            raise ValueError(f"{self.path} changed while it was replayed") from None

    @overload
    def __getitem__(self, index: int) -> Bar: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Bar]: ...
    def __getitem__(self, index):
        if isinstance(index, slice):
            return list(self)[index]
        position = index + self._rows if index < 0 else index
        if not 0 <= position < self._rows:
            raise IndexError(index)
        if position == 0:
            return self._first
        if position == self._rows - 1:
            return self._last
        return next(islice(iter(self), position, None))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and len(self) == len(other) and all(
            a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]


def read_bars(path: Path, default_symbol: str, timeframe: str) -> tuple[Sequence[Bar], tuple[str, ...]] | None:
    """The bars of a clean OHLCV file, sorted as `data` sorts them, and its symbols; None otherwise.
    A file in that order already (every one-symbol file) is streamed (BarFile); another is sorted
    in memory."""
    try:
        scan = _Scan()
        for frame in _text_frames(path):
            scan.add(_checked(frame, default_symbol))
    except _Unusual:
        return None
    except Exception:  # noqa: BLE001 - polars' own errors for unreadable input: the row reader explains
        return None
    if scan.rows == 0:
        return None
    step = timedelta(seconds=_SECONDS[timeframe])
    if max(scan.last.values()) > (datetime.max.replace(tzinfo=UTC) - step - _EPOCH) // timedelta(microseconds=1):
        return None  # a bar that would close after year 9999: the row-by-row reader names its line
    symbols = tuple(sorted(scan.spans))
    if scan.in_order:
        return BarFile(path, default_symbol, timeframe, scan), symbols
    import polars as pl

    frames = [_checked(frame, default_symbol) for frame in _text_frames(path)]
    checked = pl.concat(frames).sort(["us", "symbol"], maintain_order=True)  # data's order, stable
    return list(_bars_of(checked.iter_rows(), timeframe)), symbols


__all__ = ["BarFile", "read_bars"]
