"""How a trade ended and how long it lasted, in the matrix's vocabulary.

Outcome by R-multiple (result / initial risk): O1 <= -1.0, O2 <= -0.25, O3 <= +0.25, O4 <= +1.0,
O5 <= +2.0, O6 > +2.0. The initial risk is the stop distance in pips when the order is known
(`sl_pips`); without it the result is measured against FALLBACK_RISK_PIPS (20 pips, the platform's
default stop), so the same thresholds hold in pips: O1 <= -20, O2 <= -5, O3 <= +5, O4 <= +20,
O5 <= +40, O6 > +40.

Duration: FLASH <= 5 min, QUICK <= 30 min, LONG <= 240 min, EXTENDED beyond (bounds inclusive).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

FALLBACK_RISK_PIPS = Decimal(20)


class Outcome(StrEnum):
    O1 = "O1"  # full stop or worse
    O2 = "O2"  # partial loss
    O3 = "O3"  # about break-even
    O4 = "O4"  # partial profit
    O5 = "O5"  # target reached
    O6 = "O6"  # beyond target


class Duration(StrEnum):
    FLASH = "FLASH"
    QUICK = "QUICK"
    LONG = "LONG"
    EXTENDED = "EXTENDED"


_OUTCOME_BOUNDS = ((Decimal(-1), Outcome.O1), (Decimal("-0.25"), Outcome.O2), (Decimal("0.25"), Outcome.O3),
                   (Decimal(1), Outcome.O4), (Decimal(2), Outcome.O5))
_DURATION_BOUNDS = ((timedelta(minutes=5), Duration.FLASH), (timedelta(minutes=30), Duration.QUICK),
                    (timedelta(minutes=240), Duration.LONG))


def r_multiple(pips: Decimal, sl_pips: Decimal | None) -> Decimal:
    """The result in units of the initial risk (the stop distance, or the fallback risk)."""
    risk = sl_pips if sl_pips is not None and sl_pips > 0 else FALLBACK_RISK_PIPS
    return pips / risk


def outcome(pips: Decimal, sl_pips: Decimal | None) -> Outcome:
    r = r_multiple(pips, sl_pips)
    return next((bucket for bound, bucket in _OUTCOME_BOUNDS if r <= bound), Outcome.O6)


def duration(open_time: datetime, close_time: datetime) -> Duration:
    held = close_time - open_time
    return next((bucket for bound, bucket in _DURATION_BOUNDS if held <= bound), Duration.EXTENDED)
