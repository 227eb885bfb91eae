"""Incremental (streaming) indicators whose outputs equal TA-Lib's batch functions.

Each class takes one bar at a time (`update(...)`) in O(1) amortised time and bounded memory
(at most `period` past values), and returns None while TA-Lib would return NaN. Fed the same
series from its first value, the outputs equal `talib.<FUNC>` on that series; the tests check
it to 1e-9 on random walks, including after the bounded windows started evicting values.

TA-Lib conventions reproduced (default compatibility, unstable period 0), operation for
operation, so that most outputs are bit-identical:

- SMA(n): first value at index n-1. TA-Lib keeps one running total over the whole series
  (add the new value, divide, subtract the value leaving the window); the same running total is
  kept here, so rounding is identical.
- EMA(n): k = 2 / (n + 1); seeded at index n-1 with the SMA of the first n values (summed left
  to right from 0.0), then `ema = (x - ema) * k + ema`.
- RSI(n): first value at index n. Seed: the plain averages of the first n gains and losses
  (changes x[1]-x[0] ... x[n]-x[n-1]); then Wilder smoothing `avg = (avg * (n-1) + cur) / n`
  for gains and losses; RSI = 100 * gain / (gain + loss), 0 when gain + loss is 0.
- ATR(n): first value at index n. True range needs the previous close, so the first bar has none;
  the seed is the plain average of the first n true ranges (bars 1..n), then Wilder smoothing.
- MACD(fast, slow, signal): TA-Lib seeds *both* EMAs at index slow-1: the slow EMA with the SMA of
  x[0..slow-1], the fast EMA with the SMA of the `fast` values x[slow-fast..slow-1] (not of the
  first `fast` values, so TA-Lib's MACD fast line differs from `talib.EMA(x, fast)`). The signal
  is an EMA(signal) of the MACD line seeded with the SMA of its first `signal` values. All three
  outputs start at index slow + signal - 2 (33 for 12/26/9); hist = macd - signal.
- BBANDS(n, k, SMA): middle = SMA(n) (same running total as above, so it equals SMA exactly);
  upper/lower = middle +/- k * population standard deviation of the last n values. TA-Lib 0.8
  computes that deviation without catastrophic cancellation (older releases used E[x^2] - mean^2,
  which returns 0 for forex-sized variances). Here the sums are taken around an anchor close to
  the window's mean, re-anchored (one exact pass over the n values) every n bars, which keeps
  the result within ~1e-16 of TA-Lib's for any price level.

Floats, not Decimals: indicator values are float computations by contract (IndicatorVector).
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["ATR", "EMA", "MACD", "RSI", "SMA", "Bollinger"]


def _check_period(name: str, period: int, minimum: int = 1) -> int:
    if isinstance(period, bool) or not isinstance(period, int) or period < minimum:
        raise ValueError(f"{name} period must be an integer >= {minimum}, got {period!r}")
    return period


class SMA:
    """Simple moving average of the last `period` values (TA-Lib SMA)."""

    __slots__ = ("_window", "_total", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = _check_period("SMA", period)
        self._window: deque[float] = deque()
        self._total = 0.0
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        window = self._window
        window.append(x)
        self._total += x
        if len(window) < self.period:
            return None
        value = self._total / self.period
        # TA-Lib subtracts the value that leaves the window right after dividing
        self._total -= window.popleft()
        self.value = value
        return value


class EMA:
    """Exponential moving average seeded with the SMA of the first `period` values (TA-Lib EMA)."""

    __slots__ = ("_count", "_seed", "k", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = _check_period("EMA", period)
        self.k = 2.0 / (period + 1.0)
        self._count = 0
        self._seed = 0.0
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        value = self.value
        if value is not None:
            value = (x - value) * self.k + value
            self.value = value
            return value
        self._count += 1
        self._seed += x
        if self._count < self.period:
            return None
        self.value = self._seed / self.period
        return self.value


class RSI:
    """Wilder's relative strength index (TA-Lib RSI), 0..100."""

    __slots__ = ("_count", "_gain", "_loss", "_prev", "period", "value")

    def __init__(self, period: int = 14) -> None:
        self.period = _check_period("RSI", period, 2)
        self._prev: float | None = None
        self._count = 0
        self._gain = 0.0
        self._loss = 0.0
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        prev = self._prev
        self._prev = x
        if prev is None:
            return None
        change = x - prev
        n = self.period
        if self.value is None:
            # accumulate the first n changes, then average them (the seed)
            if change < 0:
                self._loss -= change
            else:
                self._gain += change
            self._count += 1
            if self._count < n:
                return None
            gain = self._gain / n
            loss = self._loss / n
        else:
            gain = self._gain * (n - 1)
            loss = self._loss * (n - 1)
            if change < 0:
                loss -= change
            else:
                gain += change
            gain /= n
            loss /= n
        self._gain = gain
        self._loss = loss
        total = gain + loss
        value = 100.0 * (gain / total) if total != 0.0 else 0.0
        self.value = value
        return value


class ATR:
    """Wilder's average true range (TA-Lib ATR); the first bar has no true range."""

    __slots__ = ("_count", "_prev_close", "_seed", "period", "value")

    def __init__(self, period: int = 14) -> None:
        self.period = _check_period("ATR", period, 2)
        self._prev_close: float | None = None
        self._count = 0
        self._seed = 0.0
        self.value: float | None = None

    def update(self, high: float, low: float, close: float) -> float | None:
        prev_close = self._prev_close
        self._prev_close = close
        if prev_close is None:
            return None
        tr = high - low
        up = abs(prev_close - high)
        if up > tr:
            tr = up
        down = abs(prev_close - low)
        if down > tr:
            tr = down
        value = self.value
        n = self.period
        if value is not None:
            value *= n - 1
            value += tr
            value /= n
            self.value = value
            return value
        self._count += 1
        self._seed += tr
        if self._count < n:
            return None
        self.value = self._seed / n
        return self.value


class MACD:
    """MACD line, signal and histogram with TA-Lib's EMA alignment (see the module docstring)."""

    __slots__ = ("_fast", "_head", "_k_fast", "_k_slow", "_signal", "_slow", "fast_period", "signal_period",
                 "slow_period", "value")

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        self.fast_period = _check_period("MACD fast", fast, 2)
        self.slow_period = _check_period("MACD slow", slow, 2)
        self.signal_period = _check_period("MACD signal", signal, 1)
        if fast >= slow:
            raise ValueError(f"MACD fast period ({fast}) must be shorter than the slow period ({slow})")
        self._k_fast = 2.0 / (fast + 1.0)
        self._k_slow = 2.0 / (slow + 1.0)
        self._head: list[float] | None = []  # the first `slow` values, until both EMAs are seeded
        self._fast = 0.0
        self._slow = 0.0
        self._signal = EMA(signal)
        self.value: tuple[float, float, float] | None = None

    def update(self, x: float) -> tuple[float, float, float] | None:
        head = self._head
        if head is None:
            fast = (x - self._fast) * self._k_fast + self._fast
            slow = (x - self._slow) * self._k_slow + self._slow
            self._fast = fast
            self._slow = slow
        else:
            head.append(x)
            if len(head) < self.slow_period:
                return None
            total = 0.0
            for v in head:
                total += v
            slow = total / self.slow_period
            total = 0.0
            for v in head[self.slow_period - self.fast_period:]:
                total += v
            fast = total / self.fast_period
            self._fast = fast
            self._slow = slow
            self._head = None
        line = fast - slow
        signal = self._signal.update(line)
        if signal is None:
            return None
        value = (line, signal, line - signal)
        self.value = value
        return value


class Bollinger:
    """Bollinger bands over SMA(period) with `k` population standard deviations (TA-Lib BBANDS, SMA)."""

    __slots__ = ("_anchor", "_since_anchor", "_sum", "_sum2", "_total", "_window", "k", "period", "value")

    def __init__(self, period: int = 20, k: float = 2.0) -> None:
        self.period = _check_period("Bollinger", period, 2)
        self.k = float(k)
        self._window: deque[float] = deque()
        self._total = 0.0  # TA-Lib's SMA running total
        self._anchor: float | None = None
        self._sum = 0.0  # sum of (x - anchor) over the window
        self._sum2 = 0.0  # sum of (x - anchor)^2 over the window
        self._since_anchor = 0
        self.value: tuple[float, float, float] | None = None

    def _reanchor(self) -> None:
        window = self._window
        total = 0.0
        for v in window:
            total += v
        anchor = total / len(window)
        s = s2 = 0.0
        for v in window:
            d = v - anchor
            s += d
            s2 += d * d
        self._anchor, self._sum, self._sum2, self._since_anchor = anchor, s, s2, 0

    def update(self, x: float) -> tuple[float, float, float] | None:
        window = self._window
        window.append(x)
        self._total += x
        anchor = self._anchor
        if anchor is None:
            if len(window) < self.period:
                return None
            self._reanchor()
        else:
            d = x - anchor
            self._sum += d
            self._sum2 += d * d
            self._since_anchor += 1
            if self._since_anchor >= self.period:
                self._reanchor()
        n = self.period
        middle = self._total / n
        mean = self._sum / n
        variance = self._sum2 / n - mean * mean
        if variance > 0.0 and variance < 1e-12 * middle * middle and max(window) == min(window):
            variance = 0.0  # a flat window: what is left is rounding, and TA-Lib's deviation is 0
        width = math.sqrt(variance) * self.k if variance > 0.0 else 0.0
        # the oldest value leaves the window (TA-Lib's order for the running total)
        old = window.popleft()
        self._total -= old
        d = old - self._anchor  # type: ignore[operator]
        self._sum -= d
        self._sum2 -= d * d
        value = (middle + width, middle, middle - width)
        self.value = value
        return value
