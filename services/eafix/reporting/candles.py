"""Bars resampled for the price chart: a long run is drawn as at most MAX_CANDLES candles per symbol
on the coarsest needed of the usual timeframes (then whole multiples of a week), so a report's size
and the browser's drawing time stay bounded whatever the number of bars. `resample` does it at once
for a backtest's bars; `CandleBook` does it as bars arrive, for reporter, in bounded memory."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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
    resampler = Resampler(spans_of(bars), limit)
    for bar in bars:
        resampler.add(bar)
    return resampler.candles()


def spans_of(bars: Iterable[Bar]) -> dict[str, tuple[datetime, datetime, int]]:
    """symbol -> its first and last bar's open time and its number of bars (bars in time order)."""
    spans: dict[str, tuple[datetime, datetime, int]] = {}
    for bar in bars:
        first, _, count = spans.get(bar.symbol) or (bar.ts_open, bar.ts_open, 0)
        spans[bar.symbol] = (first, bar.ts_open, count + 1)
    return spans


class Resampler:
    """`resample` as the bars arrive (in time order per symbol), given each symbol's first and last
    open time and number of bars beforehand: the backtest's price chart without keeping its bars."""

    def __init__(self, spans: Mapping[str, tuple[datetime, datetime, int]], limit: int = MAX_CANDLES) -> None:
        self.spans, self.limit = spans, limit
        self._series: dict[str, tuple[Candles, int]] = {}  # symbol -> candles so far, bucket size
        self._bucket: dict[str, int] = {}  # symbol -> its last candle's bucket

    def add(self, bar: Bar) -> None:
        series = self._series.get(bar.symbol)
        if series is None:
            first, last, count = self.spans[bar.symbol]
            frame, size = frame_for(first, last, int((bar.ts_close - bar.ts_open).total_seconds()), count, self.limit)
            series = self._series[bar.symbol] = (Candles(bar.symbol, frame, count, [], [], [], [], []), size)
        out, size = series
        bucket = int((bar.ts_open - MONDAY).total_seconds() // size)
        if bucket != self._bucket.get(bar.symbol):
            self._bucket[bar.symbol] = bucket
            out.ts.append(MONDAY + timedelta(seconds=bucket * size))
            out.open.append(float(bar.open))
            out.high.append(float(bar.high))
            out.low.append(float(bar.low))
            out.close.append(float(bar.close))
        else:
            out.high[-1] = max(out.high[-1], float(bar.high))
            out.low[-1] = min(out.low[-1], float(bar.low))
            out.close[-1] = float(bar.close)

    def candles(self) -> list[Candles]:
        return [candles for _, (candles, _) in sorted(self._series.items())]


def coarser(size: int) -> tuple[str, int]:
    """The frame after `size` seconds: the next of FRAMES that holds a whole number of its buckets, then
    doubling weeks (W2, W4, ...). Every frame's buckets start on the Monday epoch, so each coarse bucket
    is a union of finer ones and a merged candle is exact."""
    for name, seconds in FRAMES:
        if seconds > size and seconds % size == 0:
            return name, seconds
    weeks = size // WEEK * 2
    return f"W{weeks}", weeks * WEEK


class CandleBook:
    """Bars of one timeframe followed live and kept as at most `limit` candles per symbol, whatever the
    uptime: when a symbol's candles would exceed it, they merge into the next coarser frame (reporter's
    price chart; the backtest resamples its bars at the end instead). A bar lands in the bucket of its
    open time, opens it if it is the earliest there and closes it if it is the latest, so a redelivered
    or late bar changes nothing it should not; bars of other timeframes are ignored."""

    def __init__(self, timeframe: str, limit: int = MAX_CANDLES) -> None:
        self.timeframe = timeframe
        self.limit = limit
        # symbol -> (frame name, bucket seconds, bucket -> [open time, open, high, low, close time, close], bars)
        self._series: dict[str, tuple[str, int, dict[int, list], int]] = {}

    def add(self, bar: Bar) -> bool:
        if bar.timeframe != self.timeframe:
            return False
        frame, size, buckets, count = self._series.get(bar.symbol) or (
            self.timeframe, int((bar.ts_close - bar.ts_open).total_seconds()), {}, 0)
        _merge(buckets, int((bar.ts_open - MONDAY).total_seconds() // size),
               [bar.ts_open, float(bar.open), float(bar.high), float(bar.low), bar.ts_open, float(bar.close)])
        while len(buckets) > self.limit:
            frame, coarse = coarser(size)
            merged: dict[int, list] = {}
            for index, candle in sorted(buckets.items()):
                _merge(merged, index * size // coarse, candle)
            size, buckets = coarse, merged
        self._series[bar.symbol] = (frame, size, buckets, count + 1)
        return True

    def candles(self, start: datetime | None = None, end: datetime | None = None) -> list[Candles]:
        """One Candles per symbol (sorted), the buckets opening in [start, end) (None: unbounded)."""
        out = []
        for symbol, (frame, size, buckets, count) in sorted(self._series.items()):
            series = Candles(symbol, frame, count, [], [], [], [], [])
            for index in sorted(buckets):
                ts = MONDAY + timedelta(seconds=index * size)
                if (start is None or ts >= start) and (end is None or ts < end):
                    _, o, h, lo, _, c = buckets[index]
                    series.ts.append(ts)
                    series.open.append(o)
                    series.high.append(h)
                    series.low.append(lo)
                    series.close.append(c)
            if series.ts:
                out.append(series)
        return out


def _merge(buckets: dict[int, list], index: int, candle: list) -> None:
    """Fold `candle` [open time, open, high, low, close time, close] into bucket `index`."""
    current = buckets.get(index)
    if current is None:
        buckets[index] = list(candle)
        return
    if candle[0] < current[0]:
        current[0], current[1] = candle[0], candle[1]
    current[2], current[3] = max(current[2], candle[2]), min(current[3], candle[3])
    if candle[4] >= current[4]:
        current[4], current[5] = candle[4], candle[5]
