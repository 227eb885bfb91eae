"""Strategy evaluators: one closed bar's IndicatorVector (+ the bar close) -> a Candidate or nothing.

Pure and incremental: each strategy keeps only the previous reading it needs per (symbol, timeframe)
(last non-zero MA difference, last RSI, whether the last close was beyond a band). A strategy says
*what it sees*; the gates (risk-off, blackout, neutral bias, confidence, duplicates) are applied by
`domain.SignalEngine`.

A Candidate with `direction=None` is a trigger whose direction is not clear (the `confirm` indicator
disagrees or is flat): the engine reports it as SignalSuppressed NEUTRAL_BIAS and never turns it
into a LONG.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import ClassVar

from eafix.contracts import Direction, IndicatorValues, IndicatorVector
from eafix.contracts.indicator_specs import parse_reference
from eafix.instruments import Instrument
from eafix.signal_generator.config import (
    BollingerBreakoutConfig,
    MaCrossoverConfig,
    ResolvedStrategy,
    RsiMeanReversionConfig,
    SignalGeneratorConfig,
)

__all__ = [
    "BollingerBreakout",
    "Candidate",
    "MaCrossover",
    "RsiMeanReversion",
    "Strategy",
    "build_strategies",
    "reader",
    "stop_pips",
    "take_profit_pips",
]

_TENTH = Decimal("0.1")

Key = tuple[str, str]  # (symbol, timeframe)


def stop_pips(strategy: ResolvedStrategy, instrument: Instrument, atr: float | None) -> Decimal:
    """atr_14 x atr_multiple in pips (0.1 pip, half-up), clamped to [min_pips, max_pips];
    fallback_pips while ATR is unknown."""
    stop = strategy.stop
    if atr is None or atr <= 0:
        return stop.fallback_pips
    # decimal from the shortest float text, so 0.00123 x 1.5 is 18.45 pips (float would say 18.4499...)
    raw = instrument.pips(Decimal(repr(atr)) * Decimal(repr(stop.atr_multiple)))
    return min(max(raw.quantize(_TENTH, ROUND_HALF_UP), stop.min_pips), stop.max_pips)


def take_profit_pips(strategy: ResolvedStrategy, sl: Decimal) -> Decimal | None:
    """sl x take_profit_ratio rounded up to 0.1 pip (so the ratio is never undershot); None = let
    risk-manager apply its default ratio."""
    if strategy.take_profit_ratio is None:
        return None
    return (sl * Decimal(repr(strategy.take_profit_ratio))).quantize(_TENTH, ROUND_CEILING)


Reader = Callable[[IndicatorVector], float | None]


def reader(reference: str) -> Reader:
    """How to read a validated reference from a vector: a fixed field (`ema_20`, or `sma(20)`, which
    is sma_20) or a key of `parameterized` (None until indicator-engine sends it warm)."""
    ref = parse_reference(reference)
    field = ref.alias
    if field is not None:
        return lambda vector: getattr(vector.values, field)
    key = ref.key

    def extra(vector: IndicatorVector) -> float | None:
        values = vector.parameterized
        return values.get(key) if values is not None else None

    return extra


def label(reference: str) -> str:
    """The Signal.source_indicators key of a reference (`ema_20`, `sma_10` for sma(10))."""
    return parse_reference(reference).name


def _clamp(value: float) -> float:
    return 0.0 if value < 0.0 else 1.0 if value > 1.0 else value


@dataclass(frozen=True, slots=True)
class Candidate:
    direction: Direction | None  # None: triggered, but no clear direction (NEUTRAL_BIAS)
    confidence: float
    indicators: dict[str, float]
    detail: str


class Strategy:
    """Base: symbol/timeframe filter and the `confirm` check."""

    kind: ClassVar[str]

    def __init__(self, resolved: ResolvedStrategy) -> None:
        self.resolved = resolved
        self.name = resolved.name
        params = resolved.params
        self._symbols = frozenset(params.symbols) if params.symbols else None
        self._timeframes = frozenset(t.value for t in params.timeframes) if params.timeframes else None
        self._confirm = params.confirm
        self.tag = hashlib.sha256(self.name.encode()).hexdigest()[:8]  # short stable id part

    def applies(self, symbol: str, timeframe: str) -> bool:
        return (self._symbols is None or symbol in self._symbols) and (
            self._timeframes is None or timeframe in self._timeframes)

    def evaluate(self, vector: IndicatorVector, close: Decimal) -> Candidate | None:
        raise NotImplementedError

    def _confirmed(self, direction: Direction, values: IndicatorValues, indicators: dict[str, float],
                   confidence: float, detail: str) -> Candidate | None:
        if self._confirm is None:
            return Candidate(direction, confidence, indicators, detail)
        value = getattr(values, self._confirm)
        if value is None:
            return None  # the confirmation is still warming up: no judgement
        indicators[self._confirm] = value
        agrees = value > 0 if direction is Direction.LONG else value < 0
        if agrees:
            return Candidate(direction, confidence, indicators, detail)
        return Candidate(None, confidence, indicators,
                         f"{detail}; {self._confirm} {value:g} does not confirm {direction.value}")


class MaCrossover(Strategy):
    kind = "ma_crossover"

    def __init__(self, resolved: ResolvedStrategy) -> None:
        super().__init__(resolved)
        params = resolved.params
        assert isinstance(params, MaCrossoverConfig)
        self._fast, self._slow = params.fast, params.slow
        self._read_fast, self._read_slow = reader(params.fast), reader(params.slow)
        self._fast_name, self._slow_name = label(params.fast), label(params.slow)
        self._base, self._weight = params.base_confidence, params.separation_weight
        self._sign: dict[Key, int] = {}  # last non-zero sign of fast - slow

    def evaluate(self, vector: IndicatorVector, close: Decimal) -> Candidate | None:
        values = vector.values
        fast, slow = self._read_fast(vector), self._read_slow(vector)
        key = (vector.symbol, vector.timeframe.value)
        if fast is None or slow is None:
            self._sign.pop(key, None)  # warm-up (or a restarted window): start over
            return None
        diff = fast - slow
        if diff == 0:
            return None
        sign = 1 if diff > 0 else -1
        previous = self._sign.get(key)
        self._sign[key] = sign
        if previous is None or previous == sign:
            return None
        return self.crossed(values, fast, slow)

    def crossed(self, values: IndicatorValues, fast: float, slow: float) -> Candidate | None:
        """The candidate of a bar on which fast - slow (non-zero) changed sign (also the batch path's)."""
        diff = fast - slow
        sign = 1 if diff > 0 else -1
        direction = Direction.LONG if sign > 0 else Direction.SHORT
        atr = values.atr_14
        indicators: dict[str, float] = {self._fast_name: fast, self._slow_name: slow}
        confidence = self._base
        if atr is not None and atr > 0:
            indicators["atr_14"] = atr
            confidence = self._base + self._weight * abs(diff) / atr
        detail = f"{self._fast} crossed {'above' if sign > 0 else 'below'} {self._slow}"
        return self._confirmed(direction, values, indicators, _clamp(confidence), detail)


class RsiMeanReversion(Strategy):
    kind = "rsi_mean_reversion"

    def __init__(self, resolved: ResolvedStrategy) -> None:
        super().__init__(resolved)
        params = resolved.params
        assert isinstance(params, RsiMeanReversionConfig)
        self._low, self._high = params.oversold, params.overbought
        self._on_cross, self._gain, self._base = params.on_cross, params.depth_gain, params.base_confidence
        self._previous: dict[Key, float] = {}
        self._rsi, self._read, self._rsi_name = params.rsi, reader(params.rsi), label(params.rsi)

    def evaluate(self, vector: IndicatorVector, close: Decimal) -> Candidate | None:
        values = vector.values
        rsi = self._read(vector)
        key = (vector.symbol, vector.timeframe.value)
        if rsi is None:
            self._previous.pop(key, None)
            return None
        previous = self._previous.get(key)
        self._previous[key] = rsi
        return self.judge(values, rsi, previous)

    def judge(self, values: IndicatorValues, rsi: float, previous: float | None) -> Candidate | None:
        """The candidate of a bar given its RSI and the previous bar's (also the batch path's)."""
        if rsi <= self._low:
            direction, depth = Direction.LONG, (self._low - rsi) / self._low
            entered = previous is not None and previous > self._low
            detail = f"{self._rsi} {rsi:g} <= oversold {self._low:g}"
        elif rsi >= self._high:
            direction, depth = Direction.SHORT, (rsi - self._high) / (100.0 - self._high)
            entered = previous is not None and previous < self._high
            detail = f"{self._rsi} {rsi:g} >= overbought {self._high:g}"
        else:
            return None
        if self._on_cross and not entered:
            return None
        confidence = self._base + (1.0 - self._base) * min(1.0, depth * self._gain)
        return self._confirmed(direction, values, {self._rsi_name: rsi}, _clamp(confidence), detail)


class BollingerBreakout(Strategy):
    kind = "bollinger_breakout"

    def __init__(self, resolved: ResolvedStrategy) -> None:
        super().__init__(resolved)
        params = resolved.params
        assert isinstance(params, BollingerBreakoutConfig)
        self._on_cross, self._weight, self._base = params.on_cross, params.excess_weight, params.base_confidence
        self._previous: dict[Key, int] = {}  # -1 below lower, 0 inside, +1 above upper
        self._names = tuple(label(f"{params.bands}.{o}") for o in ("upper", "middle", "lower"))
        self._reads = tuple(reader(f"{params.bands}.{o}") for o in ("upper", "middle", "lower"))

    def evaluate(self, vector: IndicatorVector, close: Decimal) -> Candidate | None:
        values = vector.values
        upper, middle, lower = (read(vector) for read in self._reads)
        key = (vector.symbol, vector.timeframe.value)
        if upper is None or middle is None or lower is None:
            self._previous.pop(key, None)
            return None
        price = float(close)
        side = 1 if price > upper else -1 if price < lower else 0
        previous = self._previous.get(key)
        self._previous[key] = side
        return self.judge(values, close, (upper, middle, lower), side, previous)

    def judge(self, values: IndicatorValues, close: Decimal, bands: tuple[float, float, float], side: int,
              previous: int | None) -> Candidate | None:
        """The candidate of a bar closing on `side` of the bands (-1 below, 0 inside, +1 above), the
        previous bar's side given (also the batch path's)."""
        upper, middle, lower = bands
        price = float(close)
        width = upper - lower
        if side == 0 or width <= 0:
            return None
        if self._on_cross and (previous is None or previous == side):
            return None
        if side > 0:
            direction, excess = Direction.LONG, (price - upper) / width
            detail = f"close {close} above {self._names[0]}"
        else:
            direction, excess = Direction.SHORT, (lower - price) / width
            detail = f"close {close} below {self._names[2]}"
        indicators = {self._names[0]: upper, self._names[1]: middle, self._names[2]: lower, "close": price}
        return self._confirmed(direction, values, indicators, _clamp(self._base + self._weight * excess), detail)


_EVALUATORS: dict[str, type[Strategy]] = {
    MaCrossover.kind: MaCrossover,
    RsiMeanReversion.kind: RsiMeanReversion,
    BollingerBreakout.kind: BollingerBreakout,
}


def build_strategies(config: SignalGeneratorConfig) -> tuple[Strategy, ...]:
    """Evaluators of the enabled strategies, in configuration order."""
    return tuple(_EVALUATORS[s.type](s) for s in config.enabled)
