"""Bars resampled for the price chart: a long run is drawn as at most MAX_CANDLES candles per symbol
on the coarsest needed of the usual timeframes (then whole multiples of a week), so a report's size
and the browser's drawing time stay bounded whatever the number of bars."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from eafix.contracts import Bar

MAX_CANDLES = 2000
WEEK = 7 * 86400
FRAMES = (("M1", 60), ("M5", 300), ("M15", 900), ("H1", 3600), ("H4", 14400), ("D1", 86400), ("W1", WEEK))
MONDAY = datetime(1970, 1, 5, tzinfo=UTC)  # weekly buckets start on Mondays (the epoch is a Thursday)


@dataclass(frozen=True)
class Candles:
    symbol: str
    frame: str  # the timeframe drawn ("source" when the bars are drawn as they are)
    bars: int  # bars resampled
    ts: list[datetime]  # bucket open time
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]


def frame_for(first: datetime, last: datetime, seconds: int, count: int, limit: int = MAX_CANDLES) -> tuple[str, int]:
    """The finest frame of at least the bars' own that draws the span in `limit` buckets or fewer."""
    if count <= limit:
        return "source", seconds
    wanted = (last - first).total_seconds() / limit
    for name, size in FRAMES:
        if size >= max(wanted, seconds):
            return name, size
    weeks = int(wanted // WEEK) + 1
    return f"W{weeks}", weeks * WEEK


def resample(bars: Sequence[Bar], limit: int = MAX_CANDLES) -> list[Candles]:
    """One Candles per symbol (sorted), each bar in the bucket of its open time."""
    by_symbol: dict[str, list[Bar]] = {}
    for bar in bars:
        by_symbol.setdefault(bar.symbol, []).append(bar)
    return [_resample(symbol, series, limit) for symbol, series in sorted(by_symbol.items())]


def _resample(symbol: str, bars: list[Bar], limit: int) -> Candles:
    seconds = int((bars[0].ts_close - bars[0].ts_open).total_seconds())
    frame, size = frame_for(bars[0].ts_open, bars[-1].ts_open, seconds, len(bars), limit)
    out = Candles(symbol, frame, len(bars), [], [], [], [], [])
    current = None
    for bar in bars:
        bucket = int((bar.ts_open - MONDAY).total_seconds() // size)
        if bucket != current:
            current = bucket
            out.ts.append(MONDAY + timedelta(seconds=bucket * size))
            out.open.append(float(bar.open))
            out.high.append(float(bar.high))
            out.low.append(float(bar.low))
            out.close.append(float(bar.close))
        else:
            out.high[-1] = max(out.high[-1], float(bar.high))
            out.low[-1] = min(out.low[-1], float(bar.low))
            out.close[-1] = float(bar.close)
    return out
