"""Drawdown periods of an equity curve.

A period starts when equity falls below its running peak and ends when equity is back at (or above)
that peak (recovered) or when the curve ends (not recovered). Its depth is the peak minus the lowest
equity of the period, in money and as a fraction of the peak; its duration runs from the peak's time
to the recovery (or the curve's last point).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

DAY_SECONDS = 86400


@dataclass(frozen=True)
class Drawdown:
    peak_time: datetime
    trough_time: datetime
    end_time: datetime
    peak: Decimal
    depth: Decimal
    depth_pct: float
    recovered: bool

    @property
    def days(self) -> float:
        return (self.end_time - self.peak_time).total_seconds() / DAY_SECONDS


def drawdowns(points: Sequence[tuple[datetime, Decimal]]) -> list[Drawdown]:
    """The periods of `points` (time, equity), the first point being the opening balance."""
    if not points:
        return []
    found: list[Drawdown] = []
    peak_time, peak = points[0]
    trough: tuple[datetime, Decimal] | None = None

    def period(end: datetime, recovered: bool) -> Drawdown:
        assert trough is not None
        depth = peak - trough[1]
        return Drawdown(peak_time, trough[0], end, peak, depth, float(depth / peak) if peak > 0 else 0.0, recovered)

    for ts, equity in points[1:]:
        if equity >= peak:
            if trough is not None:
                found.append(period(ts, True))
                trough = None
            peak_time, peak = ts, equity
        elif trough is None or equity < trough[1]:
            trough = (ts, equity)
    if trough is not None:
        found.append(period(points[-1][0], False))
    return found
