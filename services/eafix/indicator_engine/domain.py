"""Indicator engine domain: ticks -> OHLC bars -> IndicatorVector per closed bar. Pure: no I/O.

Bars (`BarBuilder`)
- One bar per symbol and timeframe (default M1, M5, M15, H1; H4 and D1 available) on fixed UTC
  boundaries counted from the Unix epoch: a bar covers [ts_open, ts_close), ts_open a multiple of
  the period (M5: :00, :05, ...; H4: 00:00, 04:00, ...; D1: 00:00 UTC).
- OHLC are bid prices (Decimal, as on the tick); volume is the number of ticks in the bar.
- A bar is emitted only once closed: by the first tick at or after its ts_close, or by
  `flush(now)` once ts_close <= now (a quiet market still closes its bars). Bars are stamped at
  their close (Bar.ts_close).
- Periods without a tick produce no bar (as MT4 does): after a gap the next bar opens at the
  boundary containing the new tick, and indicators span the gap.
- A tick older than the symbol's previous tick is dropped (counted in `dropped_ticks`); a tick for
  a period whose bar was already flushed is dropped for that timeframe only.

Indicators (`IndicatorEngine`)
- On each closed bar (built here from ticks, or handed in directly with `on_bar`, as the backtest
  does) it updates the incremental indicators of that symbol/timeframe (indicators.py: EMA 20/50,
  SMA 20/50, RSI 14, MACD 12/26/9, Bollinger 20/2, ATR 14 on the bar's high/low/close) and the
  parameterized indicators it was given (`indicators=`, the union the strategies declare; they go
  into IndicatorVector.parameterized, see parameterized.py), and returns one IndicatorVector
  stamped with the bar's close. Values are None until warm (TA-Lib's NaN).
- State per symbol/timeframe is bounded: each indicator keeps at most its period of past values,
  nothing is recomputed over the history. `warm_up()` seeds a series from a polars frame of
  history bars through the same incremental code (so the result equals streaming the bars).
- A bar whose ts_close is not after the series' last one (redelivery, replay overlap) is ignored
  (returns None); a bar with low > open/close or high < open/close is refused (ValueError).

window_version
    `"ta1." + <close time of the first bar the series was seeded with, YYYYMMDDTHHMMSS>`.
    `ta1` names the indicator parameter set and its computation conventions (TA-Lib defaults,
    the periods above); it changes when either changes. The second part identifies the warm-up
    window: EMA/RSI/ATR/MACD values depend on where the series started, so two vectors carry the
    same window_version only when they come from the same parameter set *and* the same
    continuous computation (same seed bar). A `reset()` or a restart seeded from a different first
    bar yields a new version; consumers must not compare values across versions. The value is
    deterministic, so a replay of the same bars reproduces it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from eafix.contracts.events import Bar, IndicatorValues, IndicatorVector, PriceTick
from eafix.contracts.indicator_specs import IndicatorSpec
from eafix.contracts.primitives import Timeframe
from eafix.indicator_engine.indicators import ATR, EMA, MACD, RSI, SMA, Bollinger
from eafix.indicator_engine.parameterized import Computation, computations
from eafix.indicator_engine.strength import MAJORS, CurrencyStrength
from eafix.runtime.clock import Clock

__all__ = [
    "DEFAULT_TIMEFRAMES",
    "PARAMETER_SET",
    "TIMEFRAME_SECONDS",
    "BarBuilder",
    "EngineOutput",
    "IndicatorEngine",
    "InvalidBarError",
    "bar_start",
]

PARAMETER_SET = "ta1"
DEFAULT_TIMEFRAMES: tuple[Timeframe, ...] = (Timeframe.M1, Timeframe.M5, Timeframe.M15, Timeframe.H1)
TIMEFRAME_SECONDS: dict[Timeframe, int] = {
    Timeframe.M1: 60,
    Timeframe.M5: 300,
    Timeframe.M15: 900,
    Timeframe.H1: 3600,
    Timeframe.H4: 14400,
    Timeframe.D1: 86400,
}
_PERIOD_US: dict[Timeframe, int] = {tf: s * 1_000_000 for tf, s in TIMEFRAME_SECONDS.items()}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def _to_us(ts: datetime) -> int:
    return (ts - _EPOCH) // _ONE_US


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def bar_start(ts: datetime, timeframe: Timeframe) -> datetime:
    """Open time of the `timeframe` bar that contains `ts` (UTC boundary)."""
    us = _to_us(ts)
    return _from_us(us - us % _PERIOD_US[timeframe])


_set_attr = object.__setattr__


def _trusted(model: type[BaseModel], fields: dict[str, Any]) -> Any:
    """Instantiate a contract model from values that are valid by construction, skipping validation
    (what pydantic's model_construct does, minus its per-field alias/default handling; both models
    have no aliases, defaults, extras or private attributes). The tests validate the output."""
    obj = model.__new__(model)
    _set_attr(obj, "__dict__", fields)
    _set_attr(obj, "__pydantic_fields_set__", set(fields))
    _set_attr(obj, "__pydantic_extra__", None)
    _set_attr(obj, "__pydantic_private__", None)
    return obj


def _timeframes(timeframes: Iterable[Timeframe | str]) -> tuple[Timeframe, ...]:
    result = tuple(sorted({Timeframe(t) for t in timeframes}, key=lambda t: TIMEFRAME_SECONDS[t]))
    if not result:
        raise ValueError("at least one timeframe is needed")
    return result


# --- bar builder -----------------------------------------------------------------------------------


class _OpenBar:
    __slots__ = ("close", "end", "high", "low", "open", "start", "ticks")

    def __init__(self, start: int, end: int, price: Decimal) -> None:
        self.start = start
        self.end = end
        self.open = self.high = self.low = self.close = price
        self.ticks = 1


class _Frame:
    __slots__ = ("bar", "closed_until", "period", "timeframe")

    def __init__(self, timeframe: Timeframe) -> None:
        self.timeframe = timeframe
        self.period = _PERIOD_US[timeframe]
        self.bar: _OpenBar | None = None
        self.closed_until: int | None = None  # end of the last emitted bar


class _SymbolBars:
    __slots__ = ("frames", "last_tick")

    def __init__(self, timeframes: Sequence[Timeframe]) -> None:
        self.frames = [_Frame(tf) for tf in timeframes]
        self.last_tick: int | None = None


class BarBuilder:
    """Aggregates PriceTicks into closed OHLC Bars per symbol and timeframe (see module docstring)."""

    def __init__(self, timeframes: Iterable[Timeframe | str] = DEFAULT_TIMEFRAMES) -> None:
        self.timeframes = _timeframes(timeframes)
        self._symbols: dict[str, _SymbolBars] = {}
        self.dropped_ticks = 0

    @staticmethod
    def _emit(symbol: str, frame: _Frame, bar: _OpenBar) -> Bar:
        frame.bar = None
        frame.closed_until = bar.end
        return Bar(
            symbol=symbol, timeframe=frame.timeframe, ts_open=_from_us(bar.start), ts_close=_from_us(bar.end),
            open=bar.open, high=bar.high, low=bar.low, close=bar.close, volume=bar.ticks,
        )

    def on_tick(self, tick: PriceTick) -> list[Bar]:
        """Add a tick; return the bars it closed, ordered by close time then timeframe."""
        us = _to_us(tick.ts)
        state = self._symbols.get(tick.symbol)
        if state is None:
            state = self._symbols[tick.symbol] = _SymbolBars(self.timeframes)
        if state.last_tick is not None and us < state.last_tick:
            self.dropped_ticks += 1
            return []
        state.last_tick = us
        price = tick.bid
        closed: list[Bar] = []
        for frame in state.frames:
            bar = frame.bar
            if bar is not None:
                if us < bar.end:
                    if price > bar.high:
                        bar.high = price
                    elif price < bar.low:
                        bar.low = price
                    bar.close = price
                    bar.ticks += 1
                    continue
                closed.append(self._emit(tick.symbol, frame, bar))
            elif frame.closed_until is not None and us < frame.closed_until:
                continue  # its period was already flushed: too late for this timeframe
            start = us - us % frame.period
            frame.bar = _OpenBar(start, start + frame.period, price)
        if len(closed) > 1:
            closed.sort(key=lambda b: (b.ts_close, TIMEFRAME_SECONDS[b.timeframe]))
        return closed

    def restore(self, ticks: Iterable[PriceTick]) -> int:
        """Rebuild the open bars from the ticks taken in before a restart, oldest first, from the start
        of the longest timeframe's bar on: the bars they close were published back then, so they are
        dropped here. Returns how many ticks were used."""
        newest: dict[str, datetime] = {}
        kept = list(ticks)
        for tick in kept:
            newest[tick.symbol] = max(tick.ts, newest.get(tick.symbol, tick.ts))
        longest = max(self.timeframes, key=lambda tf: TIMEFRAME_SECONDS[tf])
        start = {symbol: bar_start(ts, longest) for symbol, ts in newest.items()}
        used = [tick for tick in kept if tick.ts >= start[tick.symbol]]
        for tick in used:
            self.on_tick(tick)
        return len(used)

    def flush(self, now: datetime) -> list[Bar]:
        """Close every open bar whose period ended at or before `now` (clock time)."""
        limit = _to_us(now)
        closed: list[Bar] = []
        for symbol, state in self._symbols.items():
            for frame in state.frames:
                bar = frame.bar
                if bar is not None and bar.end <= limit:
                    closed.append(self._emit(symbol, frame, bar))
        closed.sort(key=lambda b: (b.ts_close, TIMEFRAME_SECONDS[b.timeframe], b.symbol))
        return closed

    def open_bars(self, symbol: str) -> dict[Timeframe, tuple[datetime, datetime, Decimal, Decimal, Decimal, Decimal,
                                                               int]]:
        """The bars in progress for `symbol`: timeframe -> (ts_open, ts_close, o, h, l, c, ticks)."""
        state = self._symbols.get(symbol)
        if state is None:
            return {}
        return {
            f.timeframe: (_from_us(f.bar.start), _from_us(f.bar.end), f.bar.open, f.bar.high, f.bar.low, f.bar.close,
                          f.bar.ticks)
            for f in state.frames if f.bar is not None
        }


# --- indicator engine ------------------------------------------------------------------------------


class InvalidBarError(ValueError):
    """A bar whose high/low do not contain its open/close."""


class _Series:
    """The incremental indicator state of one symbol/timeframe (bounded: O(50) floats)."""

    __slots__ = ("atr", "bb", "ema20", "ema50", "extra", "last_close", "latest", "macd", "rsi", "sma50",
                 "window_version")

    def __init__(self, window_version: str, extra: tuple[IndicatorSpec, ...] = ()) -> None:
        self.ema20 = EMA(20)
        self.ema50 = EMA(50)
        self.sma50 = SMA(50)
        self.rsi = RSI(14)
        self.macd = MACD(12, 26, 9)
        self.bb = Bollinger(20, 2.0)  # its middle band is SMA(20), bit-identical to a separate SMA(20)
        self.atr = ATR(14)
        self.extra = tuple(Computation(spec) for spec in extra)
        self.window_version = window_version
        self.last_close: int | None = None  # ts_close (epoch us) of the last bar
        self.latest: IndicatorVector | None = None

    def update(self, high: float, low: float, close: float) -> IndicatorValues:
        bb = self.bb.update(close)
        macd = self.macd.update(close)
        upper, middle, lower = bb if bb is not None else (None, None, None)
        line, signal, hist = macd if macd is not None else (None, None, None)
        # no validation: finite floats by construction (finite prices in; RSI in 0..100, ATR >= 0)
        return _trusted(IndicatorValues, {
            "ema_20": self.ema20.update(close), "ema_50": self.ema50.update(close),
            "sma_20": middle, "sma_50": self.sma50.update(close),
            "rsi_14": self.rsi.update(close),
            "macd": line, "macd_signal": signal, "macd_hist": hist,
            "bb_upper": upper, "bb_middle": middle, "bb_lower": lower,
            "atr_14": self.atr.update(high, low, close),
        })

    def update_extra(self, high: float, low: float, close: float) -> dict[str, float | None] | None:
        """The parameterized values (IndicatorVector 1.1), None when the strategies declared none."""
        if not self.extra:
            return None
        out: dict[str, float | None] = {}
        for computation in self.extra:
            computation.update(high, low, close, out)
        return out


@dataclass
class EngineOutput:
    """What a tick or a flush produced: the closed bars and one vector per closed bar."""

    bars: list[Bar] = field(default_factory=list)
    vectors: list[IndicatorVector] = field(default_factory=list)


def _window_version(first_close_us: int) -> str:
    return f"{PARAMETER_SET}.{_from_us(first_close_us).strftime('%Y%m%dT%H%M%S')}"


class IndicatorEngine:
    """Bars -> IndicatorVectors, incrementally, plus currency strength (see the module docstring).

    `clock` is used only by `flush()` without an explicit time.
    """

    def __init__(
        self,
        *,
        timeframes: Iterable[Timeframe | str] = DEFAULT_TIMEFRAMES,
        currencies: Iterable[str] = MAJORS,
        strength_max_lag_bars: int = 1,
        clock: Clock | None = None,
        indicators: Iterable[IndicatorSpec] = (),
    ) -> None:
        self.bars = BarBuilder(timeframes)
        self.extra = computations(indicators)  # beyond the fixed set, e.g. the strategies' sma(10)
        self.strength = CurrencyStrength(currencies, strength_max_lag_bars)
        self._clock = clock
        self._series: dict[tuple[str, Timeframe], _Series] = {}
        self.ignored_bars = 0

    # -- input ------------------------------------------------------------------------------------

    def on_tick(self, tick: PriceTick) -> EngineOutput:
        """Feed a tick to the bar builder; every bar it closes goes through `on_bar`."""
        closed = self.bars.on_tick(tick)
        return self._process(closed) if closed else EngineOutput()

    def flush(self, now: datetime | None = None) -> EngineOutput:
        """Close bars whose period ended by `now` (default: the injected clock) and compute them."""
        if now is None:
            if self._clock is None:
                raise ValueError("flush() needs `now` when the engine has no clock")
            now = self._clock.now()
        closed = self.bars.flush(now)
        return self._process(closed) if closed else EngineOutput()

    def _process(self, bars: list[Bar]) -> EngineOutput:
        vectors = []
        for bar in bars:
            vector = self.on_bar(bar)
            if vector is not None:
                vectors.append(vector)
        return EngineOutput(bars, vectors)

    def on_bar(self, bar: Bar) -> IndicatorVector | None:
        """Compute the vector of a closed bar; None for a bar not after the series' last one."""
        timeframe = bar.timeframe if type(bar.timeframe) is Timeframe else Timeframe(bar.timeframe)
        key = (bar.symbol, timeframe)
        close_us = _to_us(bar.ts_close)
        series = self._series.get(key)
        if series is not None and series.last_close is not None and close_us <= series.last_close:
            self.ignored_bars += 1
            return None
        high, low = bar.high, bar.low
        if not (low <= bar.open <= high and low <= bar.close <= high):
            raise InvalidBarError(f"{bar.symbol} {timeframe.value} bar at {bar.ts_close.isoformat()}: "
                                  f"open/close outside low..high")
        if series is None:
            series = self._series[key] = _Series(_window_version(close_us), self.extra)
        close = float(bar.close)
        fhigh, flow = float(high), float(low)
        values = series.update(fhigh, flow, close)
        extra = series.update_extra(fhigh, flow, close)
        series.last_close = close_us
        strength = self.strength
        strength.observe(timeframe, bar.symbol, close_us, close)
        vector = _trusted(IndicatorVector, {
            "symbol": bar.symbol, "timeframe": timeframe, "ts": bar.ts_close, "window_version": series.window_version,
            "values": values, "currency_strength": strength.snapshot(timeframe, close_us, _PERIOD_US[timeframe]),
            "parameterized": extra,
        })
        series.latest = vector
        return vector

    def warm_up(self, symbol: str, timeframe: Timeframe | str, history: object) -> IndicatorVector | None:
        """Seed `symbol`/`timeframe` from a polars DataFrame of closed bars, oldest first or not.

        Columns: `ts_close` (Datetime; naive means UTC), `high`, `low`, `close` (numbers or decimal
        strings). Rows not after the series' last bar are skipped, duplicates of a ts_close keep the
        last row. The rows go through the same incremental update as live bars, so the state (and
        every later vector) equals streaming the same bars. Returns the vector of the last row.
        """
        import polars as pl  # batch path only; the per-bar path never touches DataFrames

        if not isinstance(history, pl.DataFrame):
            raise TypeError("history must be a polars DataFrame")
        if not isinstance(symbol, str) or len(symbol) != 6 or not symbol.isascii() or not symbol.isalpha() \
                or not symbol.isupper():
            raise ValueError(f"symbol {symbol!r} is not six upper-case letters")
        timeframe = Timeframe(timeframe)
        missing = {"ts_close", "high", "low", "close"} - set(history.columns)
        if missing:
            raise ValueError(f"history lacks column(s) {', '.join(sorted(missing))}")
        ts = pl.col("ts_close")
        dtype = history.schema["ts_close"]
        if not isinstance(dtype, pl.Datetime):
            raise ValueError(f"history.ts_close must be a Datetime column, not {dtype}")
        if dtype.time_zone is not None:
            ts = ts.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        frame = (
            history.lazy()
            .select(
                ts.dt.epoch("us").alias("us"),
                *(pl.col(c).cast(pl.Float64) for c in ("high", "low", "close")),
            )
            .drop_nulls()
            .sort("us")
            .unique(subset="us", keep="last", maintain_order=True)
            .collect()
        )
        bad = frame.filter((pl.col("low") > pl.col("close")) | (pl.col("close") > pl.col("high")))
        if bad.height:
            raise InvalidBarError(f"history has {bad.height} bar(s) whose close lies outside low..high")
        key = (symbol, timeframe)
        series = self._series.get(key)
        if series is not None and series.last_close is not None:
            frame = frame.filter(pl.col("us") > series.last_close)
        if frame.height == 0:
            return series.latest if series is not None else None
        stamps = frame["us"].to_list()
        highs = frame["high"].to_list()
        lows = frame["low"].to_list()
        closes = frame["close"].to_list()
        if series is None:
            series = self._series[key] = _Series(_window_version(stamps[0]), self.extra)
        observe = self.strength.observe
        values = extra = None
        for us, high, low, close in zip(stamps, highs, lows, closes, strict=True):
            values = series.update(high, low, close)
            extra = series.update_extra(high, low, close)
            observe(timeframe, symbol, us, close)
        series.last_close = stamps[-1]
        vector = _trusted(IndicatorVector, {
            "symbol": symbol, "timeframe": timeframe, "ts": _from_us(stamps[-1]),
            "window_version": series.window_version, "values": values,
            "currency_strength": self.strength.snapshot(timeframe, stamps[-1], _PERIOD_US[timeframe]),
            "parameterized": extra,
        })
        series.latest = vector
        return vector

    # -- queries and control ----------------------------------------------------------------------

    def latest(self, symbol: str) -> dict[Timeframe, IndicatorVector]:
        """The last vector of each timeframe of `symbol` (empty when none yet)."""
        return {tf: s.latest for (sym, tf), s in self._series.items() if sym == symbol and s.latest is not None}

    def symbols(self) -> list[str]:
        return sorted({sym for sym, _ in self._series})

    def clear(self, *, series: bool) -> None:
        """Forget the open bars (and, with `series`, every indicator series) before a reload rebuilds
        them from the streams: what a failed handler left in memory must not survive it."""
        self.bars = BarBuilder(self.bars.timeframes)
        if series:
            for symbol in self.symbols():
                self.reset(symbol)

    def reset(self, symbol: str, timeframe: Timeframe | str | None = None) -> None:
        """Drop the indicator state of `symbol` (one timeframe or all); the next bar re-seeds it
        under a new window_version."""
        for key in [k for k in self._series if k[0] == symbol and (timeframe is None or k[1] == Timeframe(timeframe))]:
            del self._series[key]
            self.strength.forget(key[1], symbol)
