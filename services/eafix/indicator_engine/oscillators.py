"""More incremental indicators equal to TA-Lib's batch functions (the conventions of indicators.py:
one bar per `update`, bounded memory, None while TA-Lib returns NaN, TA-Lib's operation order).

- WMA(n): weights 1..n, divider n(n+1)/2, summed over the window each bar (O(n)): a running-sum
  recurrence drifts by ~1e-9 at gold prices over thousands of bars, TA-Lib's does not.
- DEMA(n) = 2 EMA1 - EMA2, TEMA(n) = 3 EMA1 - 3 EMA2 + EMA3, each EMA fed the previous one's
  outputs from its first value (so each is seeded with the SMA of its first n inputs).
- MOM(n) = x - x[n bars ago]; ROC(n) = (x / x[n bars ago] - 1) x 100, 0 when the old value is 0.
- WILLR(n) = (highest high - close) / ((highest - lowest) / -100) over the last n bars, 0 when flat.
- CCI(n): typical price tp = (h + l + c) / 3; (tp - mean) / (0.015 x mean absolute deviation) over
  the last n tp; 0 when tp is the mean or the deviation sum is below 1e-8 (TA_IS_ZERO); summed
  in TA-Lib's buffer order.
- STOCH(fastk, slowk, slowd), SMA smoothing (TA-Lib's default matype): fast %K =
  (close - lowest low) / ((highest high - lowest low) / 100), 0 when flat; slow %K = SMA(slowk) of
  fast %K; slow %D = SMA(slowd) of slow %K.
"""

from __future__ import annotations

from collections import deque

from eafix.indicator_engine.indicators import EMA, SMA

__all__ = ["CCI", "DEMA", "MOM", "ROC", "STOCH", "TEMA", "WILLR", "WMA"]


class WMA:
    __slots__ = ("_divider", "_window", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = period
        self._divider = float((period * (period + 1)) >> 1)
        self._window: deque[float] = deque(maxlen=period)
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        window = self._window
        window.append(x)
        if len(window) < self.period:
            return None
        total = 0.0
        weight = 1.0
        for v in window:
            total += v * weight
            weight += 1.0
        self.value = total / self._divider
        return self.value


class DEMA:
    __slots__ = ("_e1", "_e2", "value")

    def __init__(self, period: int) -> None:
        self._e1, self._e2 = EMA(period), EMA(period)
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        e1 = self._e1.update(x)
        if e1 is None:
            return None
        e2 = self._e2.update(e1)
        if e2 is None:
            return None
        self.value = (2.0 * e1) - e2
        return self.value


class TEMA:
    __slots__ = ("_e1", "_e2", "_e3", "value")

    def __init__(self, period: int) -> None:
        self._e1, self._e2, self._e3 = EMA(period), EMA(period), EMA(period)
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        e1 = self._e1.update(x)
        e2 = self._e2.update(e1) if e1 is not None else None
        e3 = self._e3.update(e2) if e2 is not None else None
        if e1 is None or e2 is None or e3 is None:
            return None
        self.value = e3 + ((3.0 * e1) - (3.0 * e2))
        return self.value


class _Lagged:
    """The value `period` bars ago."""

    __slots__ = ("_window", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = period
        self._window: deque[float] = deque()
        self.value: float | None = None

    def _old(self, x: float) -> float | None:
        window = self._window
        window.append(x)
        return window.popleft() if len(window) > self.period else None


class MOM(_Lagged):
    __slots__ = ()

    def update(self, x: float) -> float | None:
        old = self._old(x)
        if old is None:
            return None
        self.value = x - old
        return self.value


class ROC(_Lagged):
    __slots__ = ()

    def update(self, x: float) -> float | None:
        old = self._old(x)
        if old is None:
            return None
        self.value = ((x / old) - 1.0) * 100.0 if old != 0.0 else 0.0
        return self.value


class _Range:
    """Highest high and lowest low of the last `period` bars (a plain scan: periods are small)."""

    __slots__ = ("_highs", "_lows", "period")

    def __init__(self, period: int) -> None:
        self.period = period
        self._highs: deque[float] = deque(maxlen=period)
        self._lows: deque[float] = deque(maxlen=period)

    def add(self, high: float, low: float) -> tuple[float, float] | None:
        self._highs.append(high)
        self._lows.append(low)
        if len(self._highs) < self.period:
            return None
        return max(self._highs), min(self._lows)


class WILLR:
    __slots__ = ("_range", "value")

    def __init__(self, period: int) -> None:
        self._range = _Range(period)
        self.value: float | None = None

    def update(self, high: float, low: float, close: float) -> float | None:
        extremes = self._range.add(high, low)
        if extremes is None:
            return None
        highest, lowest = extremes
        diff = (highest - lowest) / -100.0
        self.value = (highest - close) / diff if diff != 0.0 else 0.0
        return self.value


class CCI:
    """Sums in TA-Lib's circular-buffer order (slot 0..n-1, not time order): on a flat window the
    deviation is a rounding residue, and only the same order gives TA-Lib's result there."""

    __slots__ = ("_buffer", "_count", "_slot", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = period
        self._buffer = [0.0] * period
        self._slot = 0
        self._count = 0
        self.value: float | None = None

    def update(self, high: float, low: float, close: float) -> float | None:
        tp = (high + low + close) / 3.0
        buffer, n = self._buffer, self.period
        buffer[self._slot] = tp
        self._slot = (self._slot + 1) % n
        if self._count < n - 1:
            self._count += 1
            return None
        average = 0.0
        for v in buffer:
            average += v
        average /= n
        deviation = 0.0
        for v in buffer:
            deviation += abs(v - average)
        diff = tp - average
        # TA-Lib tests the deviation with TA_IS_ZERO (|v| < 1e-8): a flat window's is rounding residue
        if diff == 0.0 or -1e-8 < deviation < 1e-8:
            self.value = 0.0
        else:
            self.value = diff / (0.015 * (deviation / n))
        return self.value


class STOCH:
    __slots__ = ("_d", "_k", "_range", "value")

    def __init__(self, fastk: int, slowk: int, slowd: int) -> None:
        self._range = _Range(fastk)
        self._k, self._d = SMA(slowk), SMA(slowd)
        self.value: tuple[float, float] | None = None

    def update(self, high: float, low: float, close: float) -> tuple[float, float] | None:
        extremes = self._range.add(high, low)
        if extremes is None:
            return None
        highest, lowest = extremes
        diff = (highest - lowest) / 100.0
        fast = (close - lowest) / diff if diff != 0.0 else 0.0
        slow_k = self._k.update(fast)
        if slow_k is None:
            return None
        slow_d = self._d.update(slow_k)
        if slow_d is None:
            return None
        self.value = (slow_k, slow_d)
        return self.value
