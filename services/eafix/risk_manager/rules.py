"""risk-manager's pre-trade rules, evaluated in this order; every failing rule is listed in
RiskRejected.reasons:

    DAILY_DRAWDOWN_LIMIT_REACHED  net realized P&L of the current UTC day (by trade close time) is a
                                  loss >= daily_drawdown_limit_percent of the balance at the start
                                  of that day (exactly 5 % rejects)
    PER_TRADE_RISK_EXCEEDED       the lot actually sent risks more than the effective risk (happens
                                  when the instrument's minimum lot is above the computed size)
    MAX_OPEN_POSITIONS            open + reserved (approved, not yet terminal) orders >= max_open_positions,
                                  or on this symbol >= max_positions_per_symbol
    CURRENCY_EXPOSURE_CAP         risk-at-stop of all positions touching the base (or quote) currency,
                                  including this order, > currency_exposure_cap_percent of balance
    CORRELATION_GUARD             a position on a configured pair with |coefficient| >= correlation_limit
                                  (0.7) that this order would reinforce (same direction for a
                                  positive coefficient, opposite for a negative one)
    SPREAD_TOO_WIDE               latest tick spread of the symbol, in pips, > its limit
    SL_TP_RATIO                   tp_pips / sl_pips < min_tp_sl_ratio (1.2 passes); a null tp_pips is
                                  sl_pips x default_tp_sl_ratio (2.0) rounded up to 0.1 pip
    SAFETY_FAIL                   a check could not run: no quote / stale quote / missing conversion /
                                  non-positive balance / any exception (fail closed)

A rule reads an `Evaluation` and calls `reject`; one that cannot decide raises CheckUnavailable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_UP, Decimal

from eafix.contracts import RiskRejectReason, Signal
from eafix.instruments import Instruments, QuoteBook
from eafix.risk_manager.config import RiskConfig
from eafix.risk_manager.portfolio import Portfolio, Position
from eafix.risk_manager.sizing import Sizing, cap_below_min_lot_detail

PERCENT_PLACES = Decimal("0.0001")  # 4 decimals, the Percent wire form


class CheckUnavailable(Exception):
    """A rule cannot decide (missing input); the engine turns it into SAFETY_FAIL."""


@dataclass(slots=True)
class Evaluation:
    """Everything the rules see for one signal, and what they found."""

    signal: Signal
    now: datetime
    config: RiskConfig
    portfolio: Portfolio
    quotes: QuoteBook
    instruments: Instruments
    balance: Decimal
    multiplier: Decimal
    tp_pips: Decimal
    correlations: Mapping[frozenset[str], float] = field(default_factory=dict)
    sizing: Sizing | None = None
    sizing_error: str | None = None
    reasons: list[RiskRejectReason] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def reject(self, reason: RiskRejectReason, detail: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)
        if detail not in self.details:
            self.details.append(detail)

    def need_sizing(self) -> Sizing:
        if self.sizing is None:
            raise CheckUnavailable(f"position size unavailable: {self.sizing_error}")
        return self.sizing


Rule = Callable[[Evaluation], None]


def rule_daily_drawdown(ev: Evaluation) -> None:
    limit = ev.config.daily_drawdown_limit_percent
    pnl = ev.portfolio.daily_pnl(ev.now.date())
    day_start = ev.balance - pnl
    if day_start <= 0:
        raise CheckUnavailable(f"balance at the start of the UTC day is {day_start}")
    loss = -pnl
    if loss * 100 >= limit * day_start:
        ev.reject(RiskRejectReason.DAILY_DRAWDOWN_LIMIT_REACHED,
                  f"realized loss today {loss} {ev.portfolio.currency} >= {limit} % of day-start balance {day_start}")


def rule_per_trade_risk(ev: Evaluation) -> None:
    sizing = ev.need_sizing()
    if sizing.cap_below_min_lot:
        ev.reject(RiskRejectReason.PER_TRADE_RISK_EXCEEDED, cap_below_min_lot_detail(sizing))
    elif sizing.exceeds_target:
        ev.reject(RiskRejectReason.PER_TRADE_RISK_EXCEEDED,
                  f"risk {sizing.actual_risk_percent.quantize(PERCENT_PLACES, ROUND_UP)} % of minimum lot "
                  f"{sizing.lots} > limit {sizing.effective_risk_percent} %")


def _reversed(ev: Evaluation) -> list[Position]:
    """The positions a stop-and-reverse signal closes (its symbol, the other direction): they do not
    count against the limits the new position is checked with."""
    signal = ev.signal
    if not signal.reverse:
        return []
    return [p for p in ev.portfolio.positions.values() if p.symbol == signal.symbol and p.direction != signal.direction]


def rule_max_open_positions(ev: Evaluation) -> None:
    released = _reversed(ev)
    total, limit = ev.portfolio.count() - len(released), ev.config.max_open_positions
    if total >= limit:
        ev.reject(RiskRejectReason.MAX_OPEN_POSITIONS, f"{total} open/pending positions, limit {limit}")
    symbol = ev.signal.symbol
    on_symbol, per_symbol = ev.portfolio.count(symbol) - len(released), ev.config.max_positions_per_symbol
    if on_symbol >= per_symbol:
        ev.reject(RiskRejectReason.MAX_OPEN_POSITIONS,
                  f"{on_symbol} open/pending positions on {symbol}, limit {per_symbol}")


def rule_currency_exposure(ev: Evaluation) -> None:
    sizing = ev.need_sizing()
    cap = ev.config.currency_exposure_cap_percent
    released = sum((p.risk_amount for p in _reversed(ev)), Decimal(0))  # both currencies are the symbol's
    for currency in (ev.signal.symbol[:3], ev.signal.symbol[3:]):
        exposure = ev.portfolio.exposure(currency) - released + sizing.risk_amount
        if exposure * 100 > cap * ev.balance:
            percent = (exposure * 100 / ev.balance).quantize(PERCENT_PLACES, ROUND_UP)
            ev.reject(RiskRejectReason.CURRENCY_EXPOSURE_CAP,
                      f"{currency} risk-at-stop {exposure} {ev.portfolio.currency} = {percent} % of balance "
                      f"> cap {cap} %")


def rule_correlation(ev: Evaluation) -> None:
    table = ev.correlations
    limit = ev.config.correlation_limit
    symbol, direction = ev.signal.symbol, ev.signal.direction
    for position in ev.portfolio.positions.values():
        coefficient = table.get(frozenset((symbol, position.symbol)))
        if coefficient is None or abs(coefficient) < limit:
            continue
        same_way = position.direction is direction
        if (coefficient > 0 and same_way) or (coefficient < 0 and not same_way):
            ev.reject(RiskRejectReason.CORRELATION_GUARD,
                      f"{direction.value} {symbol} adds to {position.direction.value} {position.symbol} "
                      f"(correlation {coefficient:+.2f}, limit {limit})")


def rule_spread(ev: Evaluation) -> None:
    symbol = ev.signal.symbol
    tick = ev.quotes.get(symbol)
    if tick is None:
        raise CheckUnavailable(f"no quote seen for {symbol}")
    age = (ev.now - tick.ts).total_seconds()
    if age > ev.config.max_quote_age_seconds:
        raise CheckUnavailable(f"latest {symbol} quote is {age:.0f} s old (> {ev.config.max_quote_age_seconds:.0f} s)")
    if tick.ask < tick.bid:
        raise CheckUnavailable(f"latest {symbol} quote is crossed (ask {tick.ask} < bid {tick.bid})")
    spread = ev.instruments[symbol].pips(tick.ask - tick.bid)
    limit = ev.config.spread_limit(symbol)
    if spread > limit:
        ev.reject(RiskRejectReason.SPREAD_TOO_WIDE, f"{symbol} spread {spread} pips > {limit} pips")


def rule_sl_tp_ratio(ev: Evaluation) -> None:
    sl, tp, minimum = ev.signal.sl_pips, ev.tp_pips, ev.config.min_tp_sl_ratio
    if tp < sl * minimum:
        ev.reject(RiskRejectReason.SL_TP_RATIO, f"TP/SL {tp}/{sl} = {(tp / sl):.3f} < {minimum}")


DEFAULT_RULES: tuple[Rule, ...] = (
    rule_daily_drawdown,
    rule_per_trade_risk,
    rule_max_open_positions,
    rule_currency_exposure,
    rule_correlation,
    rule_spread,
    rule_sl_tp_ratio,
)


def correlation_table(config: RiskConfig) -> dict[frozenset[str], float]:
    return {frozenset(p.symbols): p.coefficient for p in config.correlated_pairs}


def rule_name(rule: Rule) -> str:
    return getattr(rule, "__name__", type(rule).__name__)
