"""Position sizing (the spec's formula, effective risk capped at 3.5 %). Pure, exact: the pip value is
a fraction (numerator, denominator) until the last step, so 1.5 lots never becomes 1.49 through a
rounded intermediate.

    effective_risk% = min(risk% x multiplier, 3.5)
    lots = floor_to_step(balance x effective_risk% / 100 / (sl_pips x pip_value_per_lot)),
           at least the instrument's min_lot, at most min(its max_lot, the policy's max_lot, a re-entry's
           parent lots); a re-entry's size_multiplier multiplies the strategy's. When that cap (floored to
           the step) is below the min_lot no size fits: `cap_below_min_lot`, which the engine refuses.
    pip_value_per_lot = pip size x contract size in the quote currency (eafix.instruments),
           converted to the account currency at the mids of the latest quotes; a missing rate is
           a SAFETY_FAIL (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext

from eafix.instruments import Fraction, Instrument, QuoteBook
from eafix.risk_manager.config import MAX_RISK_CAP_PERCENT

MONEY_PLACES = Decimal("0.00000001")  # 8 decimals, the Money wire form
_PRECISION = 60  # digits for the exact-fraction arithmetic (products of several 8-decimal values)


class MissingQuoteError(LookupError):
    """A price the computation needs has not been seen (fail closed: SAFETY_FAIL)."""


def pip_value_per_lot(instrument: Instrument, account_currency: str, book: QuoteBook) -> Fraction:
    """One pip on one lot in the account currency, as an exact fraction; MissingQuoteError without a rate."""
    value = book.pip_value_per_lot(instrument, account_currency)
    if value is None:
        quote = instrument.quote
        raise MissingQuoteError(f"no quote to convert {quote} to {account_currency} (need {quote}{account_currency}, "
                                f"{account_currency}{quote} or a cross through a third currency)")
    return value


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of `step` that is <= value (0.6666 -> 0.66 for step 0.01), written with the
    step's decimal places (1 -> 1.00)."""
    return ((value / step).to_integral_value(rounding=ROUND_FLOOR) * step).quantize(step)


@dataclass(frozen=True, slots=True)
class Sizing:
    """Result of the lot formula. `exceeds_target`: the minimum lot risks more than the effective risk;
    `cap_below_min_lot`: the lot cap is below the minimum lot (`lots` is then the minimum lot, above the
    cap: the order must be refused, never sent)."""

    lots: Decimal
    effective_risk_percent: Decimal
    actual_risk_percent: Decimal  # what `lots` risks at the stop, % of balance (8 decimals)
    risk_amount: Decimal  # lots x risk_per_lot, account currency
    risk_per_lot: Decimal  # sl_pips x pip value per lot, account currency (8 decimals)
    pip_value_per_lot: Decimal  # account currency (8 decimals)
    min_lot_applied: bool
    max_lot_applied: bool
    exceeds_target: bool
    cap_below_min_lot: bool = False


def cap_below_min_lot_detail(sizing: Sizing) -> str:
    return (f"the lot cap (instrument max_lot, policy max_lot or a re-entry's parent lots) is below the minimum "
            f"lot {sizing.lots}: no size fits")


def size_position(
    balance: Decimal,
    risk_percent: Decimal,
    multiplier: Decimal,
    sl_pips: Decimal,
    pip_value: Fraction,
    *,
    min_lot: Decimal = Decimal("0.01"),
    lot_step: Decimal = Decimal("0.01"),
    max_lot: Decimal = Decimal("100"),
    cap_percent: Decimal = MAX_RISK_CAP_PERCENT,
) -> Sizing:
    """lot = floor_to_step(balance x min(risk% x multiplier, cap) / 100 / (sl_pips x pip_value)), min `min_lot`."""
    if balance <= 0:
        raise ValueError(f"balance {balance} is not positive")
    if sl_pips <= 0:
        raise ValueError(f"sl_pips {sl_pips} is not positive")
    pv_num, pv_den = pip_value
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        effective = min(risk_percent * multiplier, cap_percent)
        raw = balance * effective * pv_den / (Decimal(100) * sl_pips * pv_num)
        lots = floor_to_step(raw, lot_step)
        cap = floor_to_step(max_lot, lot_step)
        max_applied = lots > cap
        if max_applied:
            lots = cap
        min_applied = lots < min_lot
        if min_applied:
            lots = min_lot
        # exact comparison: lots x sl x pv / balance x 100 > effective  (cross-multiplied)
        exceeds = lots * sl_pips * pv_num * 100 > effective * pv_den * balance
        risk_per_lot = (sl_pips * pv_num / pv_den).quantize(MONEY_PLACES, ROUND_HALF_UP)
        actual = (lots * sl_pips * pv_num * 100 / (pv_den * balance)).quantize(MONEY_PLACES, ROUND_HALF_UP)
        pip_value_decimal = (pv_num / pv_den).quantize(MONEY_PLACES, ROUND_HALF_UP)
        risk_amount = (lots * risk_per_lot).quantize(MONEY_PLACES, ROUND_HALF_UP)
    return Sizing(lots, effective, actual, risk_amount, risk_per_lot, pip_value_decimal, min_applied, max_applied,
                  exceeds, cap < min_lot)

