"""Adaptive and directional indicators equal to TA-Lib's batch functions (the conventions of
indicators.py: one bar per `update`, bounded memory, None while TA-Lib returns NaN, TA-Lib's
operation order, so results agree to 1e-9 and not only on paper).

- KAMA(n), Kaufman's adaptive moving average: efficiency ratio er = |x - x[n ago]| / (sum of the
  last n absolute one-bar changes), 1 when that sum is below 1e-14 or not above the signed n-bar
  change (TA-Lib compares the signed change); smoothing sc = (er x (2/3 - 2/31) + 2/31)^2 (TA-Lib
  fixes the fast and slow periods at 2 and 30); kama += (x - kama) x sc, seeded with the value
  before the first output. First value after n + 1 inputs.
- ADX(n), Wilder: +DM / -DM (the larger move, if positive and larger than the other), true range;
  the first n - 1 bars summed, then Wilder-smoothed (s - s/n + v); DI = 100 DM / TR; DX =
  100 |DI- - DI+| / (DI- + DI+), skipped when TR or DI- + DI+ is below 1e-14; ADX = the mean of the
  first n DX, then (adx (n - 1) + dx) / n. First value after 2n inputs.
"""

from __future__ import annotations

from collections import deque

__all__ = ["ADX", "KAMA"]

_EPSILON = 1e-14  # TA_IS_ZERO's bound in the TA-Lib 0.6 these are checked against (1e-8 gives 1e-7 errors)


def _is_zero(value: float) -> bool:
    return -_EPSILON < value < _EPSILON


class KAMA:
    __slots__ = ("_diff", "_max", "_period", "_sum", "_window", "value")
    FAST, SLOW = 2, 30

    def __init__(self, period: int = 30) -> None:
        self._period = period
        self._window: deque[float] = deque(maxlen=period + 1)  # the inputs of the last n + 1 bars
        self._max = 2.0 / (self.SLOW + 1)
        self._diff = 2.0 / (self.FAST + 1) - self._max
        self._sum = 0.0
        self.value: float | None = None

    def _smoothing(self, change: float) -> float:
        er = 1.0 if self._sum <= change or _is_zero(self._sum) else abs(change / self._sum)
        sc = er * self._diff + self._max
        return sc * sc

    def update(self, x: float) -> float | None:
        window, n = self._window, self._period
        if len(window) < n:
            window.append(x)
            return None
        if self.value is None:  # the first value: the sum of the n one-bar changes so far, in order
            values = [*window, x]
            for j in range(n):
                self._sum += abs(values[j] - values[j + 1])
            self.value = (x - window[-1]) * self._smoothing(x - window[0]) + window[-1]
        else:
            trailing, oldest = window[0], window[1]  # x[n + 1 ago] leaves the sum, x[n ago] starts it
            self._sum -= abs(trailing - oldest)
            self._sum += abs(x - window[-1])
            self.value = (x - self.value) * self._smoothing(x - oldest) + self.value
        window.append(x)
        return self.value


class ADX:
    __slots__ = ("_bars", "_dx_sum", "_minus", "_period", "_plus", "_prev", "_tr", "value")

    def __init__(self, period: int = 14) -> None:
        self._period = period
        self._bars = 0
        self._prev: tuple[float, float, float] | None = None  # high, low, close of the previous bar
        self._minus = self._plus = self._tr = self._dx_sum = 0.0
        self.value: float | None = None

    def _dx(self) -> float | None:
        if _is_zero(self._tr):
            return None
        minus_di = 100.0 * (self._minus / self._tr)
        plus_di = 100.0 * (self._plus / self._tr)
        total = minus_di + plus_di
        return None if _is_zero(total) else 100.0 * (abs(minus_di - plus_di) / total)

    def update(self, high: float, low: float, close: float) -> float | None:
        prev, n = self._prev, self._period
        self._prev = (high, low, close)
        if prev is None:
            return None
        self._bars += 1
        prev_high, prev_low, prev_close = prev
        up, down = high - prev_high, prev_low - low
        tr = max(high - low, abs(high - prev_close), abs(low - prev_close))
        smoothing = self._bars >= n  # the first n - 1 moves are summed, then smoothed
        if smoothing:
            self._minus -= self._minus / n
            self._plus -= self._plus / n
        if down > 0 and up < down:
            self._minus += down
        elif up > 0 and up > down:
            self._plus += up
        self._tr = self._tr - self._tr / n + tr if smoothing else self._tr + tr
        if not smoothing:
            return None
        dx = self._dx()
        if self._bars < 2 * n - 1:  # the first n DX values are averaged
            self._dx_sum += dx or 0.0
            return None
        if self._bars == 2 * n - 1:
            self._dx_sum += dx or 0.0
            self.value = self._dx_sum / n
        elif dx is not None:
            assert self.value is not None
            self.value = (self.value * (n - 1) + dx) / n
        return self.value
