"""The batch path's indicators and strategy triggers, over each symbol's whole bar series at once.

Indicators come from TA-Lib (one call per computation and symbol) instead of indicator-engine's
incremental classes; the strategies' triggers (a sign change of fast - slow, RSI entering a zone, a
close beyond a band) are numpy comparisons over the series. Only on a bar that triggers does the
strategy's own code build the candidate (`MaCrossover.crossed`, `RsiMeanReversion.judge`,
`BollingerBreakout.judge`), so confidence, detail and `confirm` are the per-bar path's.

Exactness. TA-Lib and the incremental classes agree to ~1e-13 but not always bit for bit (RSI, ATR,
Bollinger, WMA and MACD's histogram sum in another order). A decision taken on such a value could
flip where the value sits on its threshold, and the stop (atr_14 x multiple, rounded to 0.1 pip)
where it sits on a rounding edge. So every decision is checked for a margin (1e-9 relative): a
series with a value inside it has that computation's values replaced by indicator-engine's own
incremental ones (`Computation`, the same code as the service), and the triggers are taken again.
Cheap when rare (the replacement streams one computation over one symbol's bars).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

import numpy as np
import talib

from eafix.contracts import Bar, Direction, IndicatorValues
from eafix.contracts.indicator_specs import IndicatorSpec, parse_reference
from eafix.indicator_engine.parameterized import Computation
from eafix.instruments import Instruments
from eafix.signal_generator.config import BollingerBreakoutConfig, MaCrossoverConfig, RsiMeanReversionConfig
from eafix.signal_generator.strategies import (
    BollingerBreakout,
    Candidate,
    MaCrossover,
    RsiMeanReversion,
    Strategy,
)

MARGIN = 1e-9  # relative distance to a threshold under which a decision takes the incremental values
# TA-Lib's and the incremental classes' operations are the same, in the same order, for these: their
# values are bit-identical (tests/service/test_backtest_vectorized.py checks it), never replaced
BIT_IDENTICAL = frozenset({"sma", "ema"})
_reference = functools.lru_cache(maxsize=256)(parse_reference)
Arrays = dict[str, np.ndarray]


def _talib(spec: IndicatorSpec, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> Arrays:
    """TA-Lib's outputs of one computation, keyed as IndicatorVector keys them."""
    f, p = spec.function, spec.parameters
    simple: dict[str, Callable[..., np.ndarray]] = {"sma": talib.SMA, "ema": talib.EMA, "wma": talib.WMA,
                                                    "dema": talib.DEMA, "tema": talib.TEMA, "rsi": talib.RSI}
    if f in simple:
        return {spec.key: simple[f](close, int(p[0]))}
    if f == "atr":
        return {spec.key: talib.ATR(high, low, close, int(p[0]))}
    if f == "bbands":
        outputs = talib.BBANDS(close, int(p[0]), float(p[1]), float(p[1]), talib.MA_Type.SMA)
    elif f == "macd":
        outputs = talib.MACD(close, int(p[0]), int(p[1]), int(p[2]))
    else:
        raise NotVectorized(f"no batch computation for {spec.key}")
    return dict(zip(spec.output_keys(), outputs, strict=True))


def _incremental(spec: IndicatorSpec, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> Arrays:
    """indicator-engine's values of one computation (NaN while warming up), bar after bar."""
    computation = Computation(spec)
    keys = computation.keys
    out: dict[str, float | None] = {}
    columns: dict[str, list[float]] = {k: [] for k in keys}
    for h, lo, c in zip(high.tolist(), low.tolist(), close.tolist(), strict=True):
        computation.update(h, lo, c, out)
        for k in keys:
            v = out[k]
            columns[k].append(np.nan if v is None else v)
    return {k: np.array(v, dtype=float) for k, v in columns.items()}


class NotVectorized(ValueError):
    """A strategy or computation the batch path evaluates bar after bar instead."""


@dataclass
class SymbolSeries:
    """One symbol's bars: their indices in the dataset and their prices as floats (scanning only)."""

    symbol: str
    rows: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    _values: Arrays = field(default_factory=dict)
    exact: set[IndicatorSpec] = field(default_factory=set)  # computations replaced by the incremental values
    sides: dict[str, tuple[np.ndarray, ...]] = field(default_factory=dict)  # bands -> upper, middle, lower, side
    read: Arrays = field(default_factory=dict)  # by reference as written

    def values(self, reference: str) -> np.ndarray:
        known = self.read.get(reference)
        if known is None:
            ref = _reference(reference)
            if ref.key not in self._values:
                self._values.update(_talib(ref.spec, self.high, self.low, self.close))
            known = self.read[reference] = self._values[ref.key]
        return known

    def make_exact(self, *references: str) -> bool:
        """Replace these references' computations by the incremental values; False when all already were."""
        changed = False
        for reference in references:
            spec = _reference(reference).spec
            if spec not in self.exact and spec.function not in BIT_IDENTICAL:
                self._values.update(_incremental(spec, self.high, self.low, self.close))
                self.exact.add(spec)
                self.sides.clear()
                self.read.clear()
                changed = True
        return changed


def series_of(bars: Sequence[Bar]) -> dict[str, SymbolSeries]:
    by_symbol: dict[str, list[int]] = {}
    for i, bar in enumerate(bars):
        by_symbol.setdefault(bar.symbol, []).append(i)
    out = {}
    for symbol, rows in by_symbol.items():
        prices = np.array([(float(bars[i].high), float(bars[i].low), float(bars[i].close)) for i in rows])
        out[symbol] = SymbolSeries(symbol, np.array(rows, dtype=np.int64), prices[:, 0].copy(), prices[:, 1].copy(),
                                   prices[:, 2].copy())
    return out


def _near(a: np.ndarray, b: np.ndarray | float) -> bool:
    """Whether any finite a lies within MARGIN (relative) of b."""
    scale = np.maximum(np.abs(a), np.abs(b)) + 1e-300
    close_to = np.abs(a - b) <= MARGIN * scale
    return bool(np.any(close_to & np.isfinite(a)))


def _previous(values: np.ndarray, fill: float) -> np.ndarray:
    """Each bar's previous value (`fill` before the first)."""
    out = np.empty_like(values)
    out[0] = fill
    out[1:] = values[:-1]
    return out


def _ma_triggers(strategy: MaCrossover, s: SymbolSeries) -> np.ndarray:
    params = strategy.resolved.params
    assert isinstance(params, MaCrossoverConfig)
    fast, slow = s.values(params.fast), s.values(params.slow)
    if _near(fast, slow) and s.make_exact(params.fast, params.slow):
        fast, slow = s.values(params.fast), s.values(params.slow)
    diff = fast - slow
    sign = np.where(np.isnan(diff), 0, np.sign(diff)).astype(np.int8)
    # the last non-zero sign before each bar (warm-up NaNs only lead the series, so no reset inside it)
    last = np.where(sign != 0, np.arange(len(sign)), -1)
    last = np.maximum.accumulate(last)
    before = _previous(last.astype(float), -1).astype(np.int64)
    previous = np.where(before >= 0, sign[np.maximum(before, 0)], 0)
    return np.flatnonzero((sign != 0) & (previous != 0) & (previous != sign))


def _rsi_triggers(strategy: RsiMeanReversion, s: SymbolSeries) -> np.ndarray:
    params = strategy.resolved.params
    assert isinstance(params, RsiMeanReversionConfig)
    low, high = params.oversold, params.overbought
    rsi = s.values(params.rsi)
    if (_near(rsi, low) or _near(rsi, high)) and s.make_exact(params.rsi):
        rsi = s.values(params.rsi)
    zone = (rsi <= low) | (rsi >= high)
    if params.on_cross:
        previous = _previous(rsi, np.nan)
        zone &= ((rsi <= low) & (previous > low)) | ((rsi >= high) & (previous < high))
    return np.flatnonzero(zone)


def _sides(s: SymbolSeries, bands: str) -> tuple[np.ndarray, ...]:
    """upper, middle, lower and the side of each close (-1 below lower, 0 inside, +1 above upper)."""
    if bands not in s.sides:
        upper, middle, lower = (s.values(f"{bands}.{o}") for o in ("upper", "middle", "lower"))
        side = np.where(s.close > upper, 1, np.where(s.close < lower, -1, 0)).astype(np.int8)
        s.sides[bands] = (upper, middle, lower, side)
    return s.sides[bands]


def _bb_triggers(strategy: BollingerBreakout, s: SymbolSeries) -> np.ndarray:
    params = strategy.resolved.params
    assert isinstance(params, BollingerBreakoutConfig)
    bands = params.bands
    upper, middle, lower, side = _sides(s, bands)
    narrow = bool(np.any(upper - lower <= MARGIN * middle))  # NaN compares False
    if (_near(s.close, upper) or _near(s.close, lower) or narrow) and s.make_exact(f"{bands}.upper"):
        upper, middle, lower, side = _sides(s, bands)
    live = ~np.isnan(upper)
    hit = live & (side != 0) & (upper - lower > 0)
    if params.on_cross:
        previous = _previous(side.astype(float), np.nan)
        previous_live = _previous(live.astype(float), 0.0) > 0
        hit &= previous_live & (previous != side)
    return np.flatnonzero(hit)


TRIGGERS: dict[type[Strategy], Callable] = {MaCrossover: _ma_triggers, RsiMeanReversion: _rsi_triggers,
                                            BollingerBreakout: _bb_triggers}


def _float(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


@dataclass(frozen=True)
class Found:
    """A strategy's candidate on one bar, with what the gates read."""

    strategy: Strategy
    candidate: Candidate
    values: IndicatorValues  # atr_14 (the stop), macd / macd_hist (confirm)


def _values(s: SymbolSeries, j: int, confirm: str | None) -> IndicatorValues:
    fields = {"atr_14": _float(s.values("atr_14")[j])}
    if confirm is not None:
        fields[confirm] = _float(s.values(confirm)[j])
    return IndicatorValues.model_construct(**fields)  # type: ignore[arg-type]


def _candidate(strategy: Strategy, s: SymbolSeries, j: int, bar: Bar, values: IndicatorValues) -> Candidate | None:
    params = strategy.resolved.params
    if isinstance(params, MaCrossoverConfig):
        assert isinstance(strategy, MaCrossover)
        return strategy.crossed(values, float(s.values(params.fast)[j]),
                                float(s.values(params.slow)[j]))
    if isinstance(params, RsiMeanReversionConfig):
        assert isinstance(strategy, RsiMeanReversion)
        rsi = s.values(params.rsi)
        return strategy.judge(values, float(rsi[j]), _float(rsi[j - 1]) if j > 0 else None)
    assert isinstance(strategy, BollingerBreakout) and isinstance(params, BollingerBreakoutConfig)
    upper, middle, lower, side = _sides(s, params.bands)
    previous = int(side[j - 1]) if j > 0 and not np.isnan(upper[j - 1]) else None
    return strategy.judge(values, bar.close, (float(upper[j]), float(middle[j]), float(lower[j])), int(side[j]),
                          previous)


def _stop_edge(strategy: Strategy, atr: float | None, pip: Decimal) -> bool:
    """Whether atr x multiple in pips sits within MARGIN of a 0.05-pip rounding edge (stop_pips rounds
    half-up to 0.1 pip from the float's shortest text)."""
    if atr is None or atr <= 0:
        return False
    tenths = atr * strategy.resolved.stop.atr_multiple / float(pip) * 10.0
    return abs(tenths - np.floor(tenths) - 0.5) <= MARGIN * max(tenths, 1.0)


def _confidence_edge(strategy: Strategy, candidate: Candidate) -> bool:
    return abs(candidate.confidence - strategy.resolved.min_confidence) <= MARGIN


def _confirm_edge(strategy: Strategy, s: SymbolSeries, j: int) -> bool:
    confirm = strategy.resolved.params.confirm
    if confirm is None:
        return False
    value = s.values(confirm)[j]
    return bool(abs(value) <= MARGIN * s.close[j])


def _inputs(strategy: Strategy) -> tuple[str, ...]:
    params = strategy.resolved.params
    refs: tuple[str, ...] = ("atr_14",)
    if params.confirm is not None:
        refs += (params.confirm,)
    if isinstance(params, MaCrossoverConfig):
        return (*refs, params.fast, params.slow)
    if isinstance(params, RsiMeanReversionConfig):
        return (*refs, params.rsi)
    return (*refs, f"{params.bands}.upper")


def _found(strategy: Strategy, s: SymbolSeries, bars: Sequence[Bar], pip: Decimal) -> dict[int, Found]:
    """The strategy's candidates on one symbol, by dataset row; on an edge, again on incremental values."""
    for _ in range(2):
        out: dict[int, Found] = {}
        edge = False
        for j in TRIGGERS[type(strategy)](strategy, s).tolist():
            row = int(s.rows[j])
            values = _values(s, j, strategy.resolved.params.confirm)
            candidate = _candidate(strategy, s, j, bars[row], values)
            if candidate is None:
                continue
            edge = edge or _stop_edge(strategy, values.atr_14, pip) or _confidence_edge(strategy, candidate) \
                or _confirm_edge(strategy, s, j)
            out[row] = Found(strategy, candidate, values)
        if not edge or not s.make_exact(*_inputs(strategy)):
            return out
    return out


def candidates(strategies: Sequence[Strategy], bars: Sequence[Bar], timeframe: str,
               instruments: Instruments) -> tuple[dict[int, list[Found]], dict[str, SymbolSeries]]:
    """Every bar's candidates, in the strategies' order (the per-bar engine's), by dataset row; raises
    NotVectorized for a strategy kind without a batch evaluation."""
    for strategy in strategies:
        if type(strategy) not in TRIGGERS:
            raise NotVectorized(f"strategy kind {strategy.kind!r} has no batch evaluation")
    bars = bars if isinstance(bars, list) else list(bars)  # indexed by row: a streamed BarFile reads up to each
    series = series_of(bars)
    by_row: dict[int, list[Found]] = {}
    for strategy in strategies:
        for symbol, s in series.items():
            if not strategy.applies(symbol, timeframe):
                continue
            for row, found in _found(strategy, s, bars, instruments[symbol].pip_size).items():
                by_row.setdefault(row, []).append(found)
    return by_row, series


class Position(Protocol):
    """What the exit screen reads of an open position (execution-engine's Position)."""

    @property
    def symbol(self) -> str: ...
    @property
    def direction(self) -> Direction: ...
    @property
    def sl_price(self) -> Decimal: ...
    @property
    def tp_price(self) -> Decimal: ...


def next_exit(positions: Iterable[Position], series: dict[str, SymbolSeries], start: int, end: int,
              spread: Callable[[str], Decimal]) -> int:
    """The first row in [start, end) on which one of `positions` may reach its SL or TP: a float screen
    with a margin, never later than the exact check (the broker's `bar_exit` on Decimals) finds one."""
    first = end
    for p in positions:
        s = series[p.symbol]
        a, b = (int(x) for x in np.searchsorted(s.rows, [start, first]))
        if a >= b:
            continue
        high, low = s.high[a:b], s.low[a:b]
        sl, tp = float(p.sl_price), float(p.tp_price)
        eps = MARGIN * max(abs(sl), abs(tp))
        if p.direction is Direction.LONG:
            hit = (low <= sl + eps) | (high >= tp - eps)
        else:
            ask = float(spread(p.symbol))  # SHORT exits are bought at the ask
            hit = (high + ask >= sl - eps) | (low + ask <= tp + eps)
        if hit.any():
            first = int(s.rows[a + int(np.argmax(hit))])
    return first


def latest_rows(series: dict[str, SymbolSeries], start: int, end: int) -> list[int]:
    """Each symbol's last row in [start, end), in row order."""
    latest = []
    for s in series.values():
        k = int(np.searchsorted(s.rows, end)) - 1
        if k >= 0 and s.rows[k] >= start:
            latest.append(int(s.rows[k]))
    return sorted(latest)


__all__ = ["Found", "NotVectorized", "SymbolSeries", "candidates", "latest_rows", "next_exit", "series_of"]
