"""Risk-manager domain: position sizing, pre-trade rules, the portfolio they read, and RiskEngine.

Pure code: no I/O, no logging per event, no wall clock (an injected `Clock` gives "now"). The
engine is driven by events and answers with events:

    on_tick(PriceTick)                 keep the latest bid/ask per symbol (spread check, conversions)
    on_signal(Signal)                  -> OrderIntent | RiskRejected   (never raises)
    on_execution_report(Report)        fills turn a reserved order into an open position
    on_trade_closed(TradeClosed)       realized P&L booked, position removed, balance updated
    position_size(...) / validate(...) synchronous checks that change nothing

Money, prices, lots and pips are `Decimal` throughout; exact fractions are kept until the last step
(a conversion rate is a numerator/denominator pair), so e.g. 1.5 lots never becomes 1.49 through a
rounded intermediate.

Persistence without I/O: with `track_changes=True` every state change is also appended to a change
list (`DecisionRecorded`, `PositionUpserted`, `PositionRemoved`, `TradeRealized`) that the adapter
drains after each message and hands to a repository in one transaction (`repository.py`) before it
publishes and acks. `PortfolioSnapshot` is what a repository loads to rebuild the engine on restart.

Sizing (the spec's formula, effective risk capped at 3.5 %):

    effective_risk% = min(risk% x multiplier, 3.5)
    lots = floor_to_step(balance x effective_risk% / 100 / (sl_pips x pip_value_per_lot)),
           at least min_lot (0.01), at most max_lot, step 0.01
    pip_value_per_lot = pip_size x contract_size (100,000) in the quote currency, converted to the
           account currency at the mid of the latest quotes seen (direct pair, inverse pair, or one hop
           through a `conversion_via` currency); a missing rate is a SAFETY_FAIL (fail closed).

Rules, evaluated in this order; every failing rule is listed in RiskRejected.reasons:

    DAILY_DRAWDOWN_LIMIT_REACHED  net realized P&L of the current UTC day (by trade close time) is a
                                  loss >= daily_drawdown_limit_percent of the balance at the start
                                  of that day (exactly 5 % rejects)
    PER_TRADE_RISK_EXCEEDED       the lot actually sent risks more than the effective risk (happens
                                  when the 0.01 minimum lot is above the computed size)
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
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, ROUND_UP, Decimal, localcontext
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from eafix import fx
from eafix.contracts import (
    Direction,
    ExecutionReport,
    ExecutionStatus,
    OrderIntent,
    PriceTick,
    RiskRejected,
    RiskRejectReason,
    Signal,
    TradeClosed,
)
from eafix.contracts.primitives import Currency, Id, Name, Symbol
from eafix.runtime.clock import Clock

__all__ = [
    "DEFAULT_RULES",
    "MAX_RISK_CAP_PERCENT",
    "AccountRecord",
    "CheckUnavailable",
    "CorrelatedPair",
    "DecisionRecord",
    "DecisionRecorded",
    "Evaluation",
    "Instrument",
    "MissingQuoteError",
    "Portfolio",
    "PortfolioChange",
    "PortfolioSnapshot",
    "Position",
    "PositionRemoved",
    "PositionSizeResult",
    "PositionState",
    "PositionUpserted",
    "RealizedTrade",
    "RiskConfig",
    "RiskEngine",
    "Sizing",
    "TradeRealized",
    "Validation",
    "conversion_rate",
    "floor_to_step",
    "pip_size",
    "pip_value_per_lot",
    "size_position",
    "snapshot_since",
]

MAX_RISK_CAP_PERCENT = Decimal("3.5")  # spec constant: effective risk never exceeds 3.5 %
STANDARD_LOT = Decimal(100_000)
_CENT = Decimal("0.01")
_TENTH = Decimal("0.1")
_MONEY_PLACES = Decimal("0.00000001")  # 8 decimals, the Money wire form
_PERCENT_PLACES = Decimal("0.0001")  # 4 decimals, the Percent wire form
_PRECISION = 60  # digits for the exact-fraction arithmetic (products of several 8-decimal values)
_DETAILS_MAX = 1000  # RiskRejected.details maxLength

Fraction = tuple[Decimal, Decimal]  # numerator, denominator (both > 0)


# --- configuration (the policy table, §11 row 16) ------------------------------------------------

PositiveDecimal = Annotated[Decimal, Field(gt=0)]
Multiplier = Annotated[Decimal, Field(ge=Decimal("0.1"), le=Decimal("3.0"))]


class CorrelatedPair(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    symbols: tuple[Symbol, Symbol]
    coefficient: Annotated[float, Field(ge=-1.0, le=1.0)]

    @field_validator("symbols")
    @classmethod
    def _distinct(cls, value: tuple[str, str]) -> tuple[str, str]:
        if value[0] == value[1]:
            raise ValueError("a correlated pair needs two different symbols")
        return value


class Instrument(BaseModel):
    """Override of the FX defaults (pip 0.0001, 0.01 for a JPY quote; 100,000 units per lot)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pip_size: PositiveDecimal
    contract_size: PositiveDecimal = STANDARD_LOT


# Illustrative defaults (long-run daily-return correlations of the majors); override per deployment.
DEFAULT_CORRELATED_PAIRS: tuple[CorrelatedPair, ...] = (
    CorrelatedPair(symbols=("EURUSD", "GBPUSD"), coefficient=0.8),
    CorrelatedPair(symbols=("EURUSD", "USDCHF"), coefficient=-0.9),
    CorrelatedPair(symbols=("AUDUSD", "NZDUSD"), coefficient=0.9),
)


class RiskConfig(BaseModel):
    """Risk policy. Validation errors name the offending key (pydantic `loc`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    account_id: Id = "default"
    account_currency: Currency = "USD"
    opening_balance: PositiveDecimal = Decimal("10000")
    risk_percent: Annotated[Decimal, Field(gt=0, le=MAX_RISK_CAP_PERCENT)] = Decimal("2.0")
    risk_multiplier: Multiplier = Decimal("1.0")
    strategy_risk_multipliers: dict[Name, Multiplier] = Field(default_factory=dict)
    min_lot: PositiveDecimal = Decimal("0.01")
    lot_step: PositiveDecimal = Decimal("0.01")
    max_lot: Annotated[Decimal, Field(gt=0, le=Decimal("9999.99"))] = Decimal("100")
    daily_drawdown_limit_percent: Annotated[Decimal, Field(gt=0, le=100)] = Decimal("5.0")
    max_open_positions: Annotated[int, Field(ge=1)] = 5
    max_positions_per_symbol: Annotated[int, Field(ge=1)] = 1
    currency_exposure_cap_percent: Annotated[Decimal, Field(gt=0, le=100)] = Decimal("5.0")
    correlation_limit: Annotated[float, Field(gt=0.0, le=1.0)] = 0.7
    correlated_pairs: tuple[CorrelatedPair, ...] = DEFAULT_CORRELATED_PAIRS
    max_spread_pips: PositiveDecimal = Decimal("5.0")
    max_spread_pips_by_symbol: dict[Symbol, PositiveDecimal] = Field(default_factory=dict)
    max_quote_age_seconds: Annotated[float, Field(gt=0)] = 300.0
    min_tp_sl_ratio: PositiveDecimal = Decimal("1.2")
    default_tp_sl_ratio: PositiveDecimal = Decimal("2.0")
    conversion_via: tuple[Currency, ...] = ("USD", "EUR")
    instruments: dict[Symbol, Instrument] = Field(default_factory=dict)
    decision_memory: Annotated[int, Field(ge=1)] = 100_000  # signal ids remembered for idempotency
    trade_memory: Annotated[int, Field(ge=1)] = 100_000  # trade ids remembered for idempotency
    restart_lookback_days: Annotated[int, Field(ge=1)] = 7  # realized history loaded on restart

    @model_validator(mode="after")
    def _consistent(self) -> RiskConfig:
        if self.default_tp_sl_ratio < self.min_tp_sl_ratio:
            raise ValueError(f"default_tp_sl_ratio ({self.default_tp_sl_ratio}) must be >= min_tp_sl_ratio "
                             f"({self.min_tp_sl_ratio})")
        if self.min_lot % self.lot_step != 0:
            raise ValueError(f"min_lot ({self.min_lot}) must be a multiple of lot_step ({self.lot_step})")
        if self.max_lot < self.min_lot:
            raise ValueError(f"max_lot ({self.max_lot}) must be >= min_lot ({self.min_lot})")
        seen: set[frozenset[str]] = set()
        for pair in self.correlated_pairs:
            key = frozenset(pair.symbols)
            if key in seen:
                raise ValueError(f"correlated_pairs lists {'/'.join(sorted(key))} twice")
            seen.add(key)
        return self

    def multiplier_for(self, strategy: str) -> Decimal:
        return self.strategy_risk_multipliers.get(strategy, self.risk_multiplier)

    def spread_limit(self, symbol: str) -> Decimal:
        return self.max_spread_pips_by_symbol.get(symbol, self.max_spread_pips)


# --- pip arithmetic and conversion ---------------------------------------------------------------


class MissingQuoteError(LookupError):
    """A price the computation needs has not been seen (fail closed: SAFETY_FAIL)."""


def pip_size(symbol: str, instruments: Mapping[str, Instrument] | None = None) -> Decimal:
    """0.01 for a JPY quote currency, else 0.0001, unless an instrument override says otherwise."""
    if instruments and symbol in instruments:
        return instruments[symbol].pip_size
    return fx.pip_size(symbol)


def _contract_size(symbol: str, instruments: Mapping[str, Instrument] | None) -> Decimal:
    if instruments and symbol in instruments:
        return instruments[symbol].contract_size
    return STANDARD_LOT


def _direct_rate(src: str, dst: str, quotes: Mapping[str, PriceTick]) -> Fraction | None:
    # units of dst per unit of src at the mid, as an exact fraction
    tick = quotes.get(src + dst)
    if tick is not None:
        return tick.bid + tick.ask, Decimal(2)
    tick = quotes.get(dst + src)
    if tick is not None:
        return Decimal(2), tick.bid + tick.ask
    return None


def conversion_rate(src: str, dst: str, quotes: Mapping[str, PriceTick], via: Iterable[str] = ()) -> Fraction | None:
    """Units of `dst` per unit of `src` as (numerator, denominator), from mids of the latest quotes:
    the direct pair, the inverse pair, or one hop through a `via` currency; None if none is quoted."""
    if src == dst:
        return Decimal(1), Decimal(1)
    rate = _direct_rate(src, dst, quotes)
    if rate is not None:
        return rate
    for mid in via:
        if mid in (src, dst):
            continue
        first, second = _direct_rate(src, mid, quotes), _direct_rate(mid, dst, quotes)
        if first is not None and second is not None:
            with localcontext() as ctx:
                ctx.prec = _PRECISION
                return first[0] * second[0], first[1] * second[1]
    return None


def pip_value_per_lot(
    symbol: str,
    account_currency: str,
    quotes: Mapping[str, PriceTick],
    *,
    instruments: Mapping[str, Instrument] | None = None,
    via: Iterable[str] = (),
) -> Fraction:
    """Value of one pip on one lot in the account currency, as an exact fraction.

    In the quote currency it is pip_size x contract_size (10 USD for EURUSD, 1000 JPY for USDJPY);
    it is converted with `conversion_rate(quote, account)`. Raises MissingQuoteError without a rate."""
    quote_ccy = symbol[3:]
    rate = conversion_rate(quote_ccy, account_currency, quotes, via)
    if rate is None:
        raise MissingQuoteError(
            f"no quote to convert {quote_ccy} to {account_currency} "
            f"(need {quote_ccy}{account_currency} or {account_currency}{quote_ccy}"
            + (f" or a cross via {'/'.join(via)}" if via else "") + ")"
        )
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return pip_size(symbol, instruments) * _contract_size(symbol, instruments) * rate[0], rate[1]


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of `step` that is <= value (0.6666 -> 0.66 for step 0.01), written with the
    step's decimal places (1 -> 1.00)."""
    return ((value / step).to_integral_value(rounding=ROUND_FLOOR) * step).quantize(step)


@dataclass(frozen=True, slots=True)
class Sizing:
    """Result of the lot formula. `exceeds_target`: the minimum lot risks more than the effective risk."""

    lots: Decimal
    effective_risk_percent: Decimal
    actual_risk_percent: Decimal  # what `lots` risks at the stop, % of balance (8 decimals)
    risk_amount: Decimal  # lots x risk_per_lot, account currency
    risk_per_lot: Decimal  # sl_pips x pip value per lot, account currency (8 decimals)
    pip_value_per_lot: Decimal  # account currency (8 decimals)
    min_lot_applied: bool
    max_lot_applied: bool
    exceeds_target: bool


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
        max_applied = lots > max_lot
        if max_applied:
            lots = floor_to_step(max_lot, lot_step)
        min_applied = lots < min_lot
        if min_applied:
            lots = min_lot
        # exact comparison: lots x sl x pv / balance x 100 > effective  (cross-multiplied)
        exceeds = lots * sl_pips * pv_num * 100 > effective * pv_den * balance
        risk_per_lot = (sl_pips * pv_num / pv_den).quantize(_MONEY_PLACES, ROUND_HALF_UP)
        actual = (lots * sl_pips * pv_num * 100 / (pv_den * balance)).quantize(_MONEY_PLACES, ROUND_HALF_UP)
        pip_value_decimal = (pv_num / pv_den).quantize(_MONEY_PLACES, ROUND_HALF_UP)
        risk_amount = (lots * risk_per_lot).quantize(_MONEY_PLACES, ROUND_HALF_UP)
    return Sizing(lots, effective, actual, risk_amount, risk_per_lot, pip_value_decimal, min_applied, max_applied,
                  exceeds)


# --- portfolio state -----------------------------------------------------------------------------


class PositionState(StrEnum):
    PENDING = "PENDING"  # approved OrderIntent, no fill yet: counts against every limit (reservation)
    OPEN = "OPEN"  # at least partly filled


@dataclass(frozen=True, slots=True)
class Position:
    client_order_id: str
    signal_id: str | None
    symbol: str
    direction: Direction
    state: PositionState
    lots: Decimal  # volume at risk: reserved lots until terminal, then the filled lots
    filled_lots: Decimal
    sl_pips: Decimal | None
    risk_per_lot: Decimal  # account currency lost per lot at the stop (sized at approval)
    entry_price: Decimal | None
    opened_at: datetime
    updated_at: datetime

    @property
    def risk_amount(self) -> Decimal:
        return self.lots * self.risk_per_lot

    @property
    def currencies(self) -> tuple[str, str]:
        return self.symbol[:3], self.symbol[3:]


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    seq: int
    signal_id: str
    decided_at: datetime
    decision: OrderIntent | RiskRejected

    @property
    def approved(self) -> bool:
        return isinstance(self.decision, OrderIntent)


@dataclass(frozen=True, slots=True)
class RealizedTrade:
    trade_id: str
    client_order_id: str
    symbol: str
    pnl: Decimal  # account currency
    close_time: datetime


@dataclass(frozen=True, slots=True)
class AccountRecord:
    account_id: str
    account_currency: str
    opening_balance: Decimal
    created_at: datetime


# Changes the adapter persists (in order, one transaction per handled message).
@dataclass(frozen=True, slots=True)
class DecisionRecorded:
    record: DecisionRecord


@dataclass(frozen=True, slots=True)
class PositionUpserted:
    position: Position


@dataclass(frozen=True, slots=True)
class PositionRemoved:
    client_order_id: str


@dataclass(frozen=True, slots=True)
class TradeRealized:
    trade: RealizedTrade


PortfolioChange = DecisionRecorded | PositionUpserted | PositionRemoved | TradeRealized


@dataclass(frozen=True)
class PortfolioSnapshot:
    """What a repository loads to rebuild the engine after a restart."""

    account: AccountRecord
    positions: tuple[Position, ...] = ()
    realized_total: Decimal = Decimal(0)
    realized_by_day: Mapping[date, Decimal] = field(default_factory=dict)  # UTC days since the lookback
    recent_trade_ids: tuple[str, ...] = ()  # trades closed since the lookback, oldest first
    decisions: tuple[DecisionRecord, ...] = ()  # most recent ones, ascending seq
    last_seq: int = 0


class Portfolio:
    """Balance (opening + realized), open/reserved positions, realized P&L per UTC day."""

    _DAYS_KEPT = 8

    def __init__(self, account: AccountRecord, *, realized_total: Decimal = Decimal(0),
                 positions: Iterable[Position] = (), realized_by_day: Mapping[date, Decimal] | None = None) -> None:
        self.account = account
        self.realized_total = realized_total
        self.positions: dict[str, Position] = {p.client_order_id: p for p in positions}
        self.realized_by_day: dict[date, Decimal] = dict(realized_by_day or {})

    @property
    def currency(self) -> str:
        return self.account.account_currency

    @property
    def balance(self) -> Decimal:
        return self.account.opening_balance + self.realized_total

    def daily_pnl(self, day: date) -> Decimal:
        return self.realized_by_day.get(day, Decimal(0))

    def book(self, trade: RealizedTrade) -> None:
        self.realized_total += trade.pnl
        day = trade.close_time.date()
        self.realized_by_day[day] = self.realized_by_day.get(day, Decimal(0)) + trade.pnl
        if len(self.realized_by_day) > self._DAYS_KEPT:
            for old in sorted(self.realized_by_day)[: len(self.realized_by_day) - self._DAYS_KEPT]:
                del self.realized_by_day[old]

    def count(self, symbol: str | None = None) -> int:
        if symbol is None:
            return len(self.positions)
        return sum(1 for p in self.positions.values() if p.symbol == symbol)

    def exposure(self, currency: str) -> Decimal:
        """Risk-at-stop (account currency) of the positions whose base or quote is `currency`."""
        return sum((p.risk_amount for p in self.positions.values() if currency in p.currencies), Decimal(0))


# --- rules ---------------------------------------------------------------------------------------


class CheckUnavailable(Exception):
    """A rule cannot decide (missing input); the engine turns it into SAFETY_FAIL."""


@dataclass(slots=True)
class Evaluation:
    """Everything the rules see for one signal, and what they found."""

    signal: Signal
    now: datetime
    config: RiskConfig
    portfolio: Portfolio
    quotes: Mapping[str, PriceTick]
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
    if sizing.exceeds_target:
        ev.reject(RiskRejectReason.PER_TRADE_RISK_EXCEEDED,
                  f"risk {sizing.actual_risk_percent.quantize(_PERCENT_PLACES, ROUND_UP)} % of minimum lot "
                  f"{sizing.lots} > limit {sizing.effective_risk_percent} %")


def rule_max_open_positions(ev: Evaluation) -> None:
    total, limit = ev.portfolio.count(), ev.config.max_open_positions
    if total >= limit:
        ev.reject(RiskRejectReason.MAX_OPEN_POSITIONS, f"{total} open/pending positions, limit {limit}")
    symbol = ev.signal.symbol
    on_symbol, per_symbol = ev.portfolio.count(symbol), ev.config.max_positions_per_symbol
    if on_symbol >= per_symbol:
        ev.reject(RiskRejectReason.MAX_OPEN_POSITIONS,
                  f"{on_symbol} open/pending positions on {symbol}, limit {per_symbol}")


def rule_currency_exposure(ev: Evaluation) -> None:
    sizing = ev.need_sizing()
    cap = ev.config.currency_exposure_cap_percent
    for currency in (ev.signal.symbol[:3], ev.signal.symbol[3:]):
        exposure = ev.portfolio.exposure(currency) + sizing.risk_amount
        if exposure * 100 > cap * ev.balance:
            percent = (exposure * 100 / ev.balance).quantize(_PERCENT_PLACES, ROUND_UP)
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
    spread = (tick.ask - tick.bid) / pip_size(symbol, ev.config.instruments)
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


def _correlation_table(config: RiskConfig) -> dict[frozenset[str], float]:
    return {frozenset(p.symbols): p.coefficient for p in config.correlated_pairs}


def _details(parts: Sequence[str]) -> str:
    text = "; ".join(parts) or "rejected"
    return text if len(text) <= _DETAILS_MAX else text[: _DETAILS_MAX - 3] + "..."


def _rule_name(rule: Rule) -> str:
    return getattr(rule, "__name__", type(rule).__name__)


# --- results of the synchronous checks -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Validation:
    """Dry-run outcome of a signal (nothing reserved or recorded), or the recorded decision."""

    signal_id: str
    approved: bool
    reasons: tuple[RiskRejectReason, ...]
    details: str
    warnings: tuple[str, ...]
    sizing: Sizing | None
    tp_pips: Decimal | None
    balance: Decimal
    account_currency: str
    already_processed: bool = False
    decision: OrderIntent | RiskRejected | None = None


@dataclass(frozen=True, slots=True)
class PositionSizeResult:
    symbol: str
    sl_pips: Decimal
    risk_percent: Decimal
    multiplier: Decimal
    balance: Decimal
    account_currency: str
    sizing: Sizing | None
    reasons: tuple[RiskRejectReason, ...]
    details: str

    @property
    def approved(self) -> bool:
        return not self.reasons


# --- the engine ----------------------------------------------------------------------------------


class RiskEngine:
    """Stands between strategy and execution. A refusal is a RiskRejected event, never an exception.

    `snapshot` rebuilds the portfolio (and the idempotency memory) from a repository; without it the
    account starts at `config.opening_balance`. `rules` replaces DEFAULT_RULES (tests inject faults).
    With `track_changes` every state change is queued for `drain_changes()` (the service adapter
    persists them); leave it off in a backtest without a repository.
    """

    def __init__(self, config: RiskConfig, clock: Clock, snapshot: PortfolioSnapshot | None = None, *,
                 rules: Sequence[Rule] | None = None, track_changes: bool = False) -> None:
        self._config = config
        self._clock = clock
        if snapshot is None:
            snapshot = PortfolioSnapshot(AccountRecord(config.account_id, config.account_currency,
                                                       config.opening_balance, clock.now()))
        account = snapshot.account
        if account.account_currency != config.account_currency:
            raise ValueError(f"account {account.account_id} is kept in {account.account_currency}, "
                             f"configuration says {config.account_currency}")
        self._portfolio = Portfolio(account, realized_total=snapshot.realized_total,
                                    positions=snapshot.positions, realized_by_day=snapshot.realized_by_day)
        self._rules = tuple(DEFAULT_RULES if rules is None else rules)
        self._correlations = _correlation_table(config)
        self._quotes: dict[str, PriceTick] = {}
        self._decisions: OrderedDict[str, DecisionRecord] = OrderedDict(
            (r.signal_id, r) for r in snapshot.decisions[-config.decision_memory:])
        self._seq = max(snapshot.last_seq, max((r.seq for r in snapshot.decisions), default=0))
        self._trade_ids: OrderedDict[str, None] = OrderedDict.fromkeys(snapshot.recent_trade_ids[-config.trade_memory:])
        self._track = track_changes
        self._changes: list[PortfolioChange] = []
        self._halted: str | None = None

    # -- state ---------------------------------------------------------------------------------

    @property
    def config(self) -> RiskConfig:
        return self._config

    @property
    def portfolio(self) -> Portfolio:
        return self._portfolio

    @property
    def account_id(self) -> str:
        return self._portfolio.account.account_id

    @property
    def halted(self) -> str | None:
        """Why the engine refuses everything (an accounting inconsistency), or None."""
        return self._halted

    def now(self) -> datetime:
        """The engine's clock (the day boundary of the drawdown rule is taken from it)."""
        return self._clock.now()

    def quote(self, symbol: str) -> PriceTick | None:
        return self._quotes.get(symbol)

    def quotes(self) -> list[PriceTick]:
        """The latest quote of every symbol seen (e.g. to carry into an engine reloaded from storage)."""
        return list(self._quotes.values())

    def decision_for(self, signal_id: str) -> DecisionRecord | None:
        return self._decisions.get(signal_id)

    def drain_changes(self) -> list[PortfolioChange]:
        changes, self._changes = self._changes, []
        return changes

    def _record(self, change: PortfolioChange) -> None:
        if self._track:
            self._changes.append(change)

    # -- inputs --------------------------------------------------------------------------------

    def on_tick(self, tick: PriceTick) -> None:
        """Keep the latest quote per symbol (an older tick never replaces a newer one)."""
        current = self._quotes.get(tick.symbol)
        if current is None or tick.ts >= current.ts:
            self._quotes[tick.symbol] = tick

    def on_signal(self, signal: Signal) -> OrderIntent | RiskRejected:
        """Decide on a signal. A signal seen before gets the decision it got then (idempotent)."""
        try:
            known = self._decisions.get(signal.signal_id)
            if known is not None:
                return known.decision
            ev = self._evaluate(signal)
            seq = self._seq + 1
            position: Position | None = None
            if ev.reasons:
                decision: OrderIntent | RiskRejected = self._rejected(signal, ev.reasons, ev.details)
            else:
                sizing = ev.need_sizing()
                client_order_id = f"O-{ev.now:%Y%m%dT%H%M%S}Z-{seq:06d}"
                decision = OrderIntent(
                    client_order_id=client_order_id,
                    idempotency_key=client_order_id,
                    signal_id=signal.signal_id,
                    symbol=signal.symbol,
                    direction=signal.direction,
                    lots=sizing.lots,
                    sl_pips=signal.sl_pips,
                    tp_pips=ev.tp_pips,
                    entry_price=signal.entry_price,
                    risk_percent=sizing.actual_risk_percent.quantize(_PERCENT_PLACES, ROUND_UP),
                    account_balance=ev.balance,
                    account_currency=self._portfolio.currency,
                )
                position = Position(client_order_id, signal.signal_id, signal.symbol, signal.direction,
                                    PositionState.PENDING, sizing.lots, Decimal(0), signal.sl_pips,
                                    sizing.risk_per_lot, signal.entry_price, ev.now, ev.now)
            self._commit(DecisionRecord(seq, signal.signal_id, ev.now, decision), position)
            return decision
        except Exception as exc:  # fail closed: the risk stage never raises to its caller
            return self._internal_failure(signal, exc)

    def validate(self, signal: Signal) -> Validation:
        """What on_signal would decide now, without reserving or recording anything."""
        balance, currency = self._portfolio.balance, self._portfolio.currency
        known = self._decisions.get(signal.signal_id)
        if known is not None:
            decision = known.decision
            if isinstance(decision, OrderIntent):
                return Validation(signal.signal_id, True, (), "already approved", (), None, decision.tp_pips,
                                  decision.account_balance, currency, True, decision)
            return Validation(signal.signal_id, False, decision.reasons, decision.details, (), None, None,
                              balance, currency, True, decision)
        try:
            ev = self._evaluate(signal)
        except Exception as exc:
            return Validation(signal.signal_id, False, (RiskRejectReason.SAFETY_FAIL,),
                              _details([f"internal error: {type(exc).__name__}: {exc}"]), (), None, None,
                              balance, currency)
        return Validation(signal.signal_id, not ev.reasons, tuple(ev.reasons), _details(ev.details) if ev.reasons
                          else "approved", tuple(ev.warnings), ev.sizing, ev.tp_pips, ev.balance, currency)

    def position_size(self, symbol: str, sl_pips: Decimal, *, risk_percent: Decimal | None = None,
                      multiplier: Decimal | None = None, balance: Decimal | None = None) -> PositionSizeResult:
        """Lot size for a stop distance at the configured (or given) risk; refusals are in `reasons`."""
        cfg = self._config
        risk = cfg.risk_percent if risk_percent is None else risk_percent
        mult = cfg.risk_multiplier if multiplier is None else multiplier
        bal = self._portfolio.balance if balance is None else balance
        currency = self._portfolio.currency

        def result(sizing: Sizing | None, reasons: tuple[RiskRejectReason, ...], details: str) -> PositionSizeResult:
            return PositionSizeResult(symbol, sl_pips, risk, mult, bal, currency, sizing, reasons, details)

        try:
            sizing = self._size(symbol, sl_pips, risk, mult, bal)
        except (MissingQuoteError, CheckUnavailable) as exc:
            return result(None, (RiskRejectReason.SAFETY_FAIL,), str(exc))
        except Exception as exc:
            return result(None, (RiskRejectReason.SAFETY_FAIL,), f"internal error: {type(exc).__name__}: {exc}")
        if sizing.exceeds_target:
            return result(sizing, (RiskRejectReason.PER_TRADE_RISK_EXCEEDED,),
                          f"minimum lot {sizing.lots} risks {sizing.actual_risk_percent} % > "
                          f"{sizing.effective_risk_percent} %")
        return result(sizing, (), "ok")

    def on_execution_report(self, report: ExecutionReport) -> Position | None:
        """Fills open the reserved position; a terminal report without fills releases it.

        Returns the position after the report, or None when it was released or is not ours (orders
        this engine did not approve are ignored: their stop, hence their risk, is unknown). CLOSED is
        left to TradeClosed, which carries the realized P&L."""
        position = self._portfolio.positions.get(report.client_order_id)
        if position is None:
            return None
        status = report.status
        now = self._clock.now()
        if status in (ExecutionStatus.PENDING, ExecutionStatus.SUBMITTED, ExecutionStatus.CLOSED):
            return position
        if status in (ExecutionStatus.PARTIAL, ExecutionStatus.FILLED):
            filled = report.filled_lots
            lots = filled if status is ExecutionStatus.FILLED else max(position.lots, filled)
            updated = replace(position, state=PositionState.OPEN, lots=lots, filled_lots=filled,
                              entry_price=report.avg_price, updated_at=now)
        else:  # REJECTED, CANCELLED, TIMEOUT, EXPIRED: the order stops working
            filled = max(report.filled_lots, position.filled_lots)
            if filled == 0:
                del self._portfolio.positions[position.client_order_id]
                self._record(PositionRemoved(position.client_order_id))
                return None
            updated = replace(position, state=PositionState.OPEN, lots=filled, filled_lots=filled, updated_at=now)
        if replace(updated, updated_at=position.updated_at) == position:
            return position  # redelivered report: nothing changed
        self._portfolio.positions[position.client_order_id] = updated
        self._record(PositionUpserted(updated))
        return updated

    def on_trade_closed(self, trade: TradeClosed) -> RealizedTrade | None:
        """Book the realized P&L (net of costs) and remove or reduce the position. Idempotent on trade_id.

        P&L in another currency is converted at the latest mid; without a rate the engine halts
        (every later signal is SAFETY_FAIL) rather than keep a balance it knows to be wrong."""
        if trade.trade_id in self._trade_ids:
            return None
        pnl = trade.pnl
        if trade.account_currency != self._portfolio.currency:
            rate = conversion_rate(trade.account_currency, self._portfolio.currency, self._quotes,
                                   self._config.conversion_via)
            if rate is None:
                self._halted = (f"trade {trade.trade_id} P&L is in {trade.account_currency}, no rate to "
                                f"{self._portfolio.currency}")
                return None
            with localcontext() as ctx:
                ctx.prec = _PRECISION
                pnl = (pnl * rate[0] / rate[1]).quantize(_MONEY_PLACES, ROUND_HALF_UP)
        realized = RealizedTrade(trade.trade_id, trade.client_order_id, trade.symbol, pnl, trade.close_time)
        self._portfolio.book(realized)
        self._remember_trade(trade.trade_id)
        self._record(TradeRealized(realized))
        position = self._portfolio.positions.get(trade.client_order_id)
        if position is not None:
            remaining = position.lots - trade.lots
            if remaining <= 0:
                del self._portfolio.positions[position.client_order_id]
                self._record(PositionRemoved(position.client_order_id))
            else:
                reduced = replace(position, lots=remaining, filled_lots=min(position.filled_lots, remaining),
                                  updated_at=self._clock.now())
                self._portfolio.positions[position.client_order_id] = reduced
                self._record(PositionUpserted(reduced))
        return realized

    # -- internals -----------------------------------------------------------------------------

    def _size(self, symbol: str, sl_pips: Decimal, risk: Decimal, multiplier: Decimal, balance: Decimal) -> Sizing:
        if balance <= 0:
            raise CheckUnavailable(f"account balance {balance} {self._portfolio.currency} is not positive")
        cfg = self._config
        pip_value = pip_value_per_lot(symbol, self._portfolio.currency, self._quotes, instruments=cfg.instruments,
                                      via=cfg.conversion_via)
        return size_position(balance, risk, multiplier, sl_pips, pip_value, min_lot=cfg.min_lot,
                             lot_step=cfg.lot_step, max_lot=cfg.max_lot)

    def _evaluate(self, signal: Signal) -> Evaluation:
        cfg = self._config
        balance = self._portfolio.balance
        multiplier = cfg.multiplier_for(signal.strategy)
        tp = signal.tp_pips
        warnings: list[str] = []
        if tp is None:
            tp = (signal.sl_pips * cfg.default_tp_sl_ratio).quantize(_TENTH, ROUND_CEILING)
            warnings.append(f"tp_pips defaulted to {tp} (sl x {cfg.default_tp_sl_ratio})")
        ev = Evaluation(signal, self._clock.now(), cfg, self._portfolio, self._quotes, balance, multiplier, tp,
                        self._correlations, warnings=warnings)
        if self._halted is not None:
            ev.reject(RiskRejectReason.SAFETY_FAIL, f"engine halted: {self._halted}")
            return ev
        try:
            ev.sizing = self._size(signal.symbol, signal.sl_pips, cfg.risk_percent, multiplier, balance)
            if ev.sizing.min_lot_applied:
                warnings.append(f"minimum lot {cfg.min_lot} applied")
            if ev.sizing.max_lot_applied:
                warnings.append(f"maximum lot {cfg.max_lot} applied")
        except (MissingQuoteError, CheckUnavailable) as exc:
            ev.sizing_error = str(exc)
        except Exception as exc:
            ev.sizing_error = f"internal error: {type(exc).__name__}: {exc}"
        for rule in self._rules:
            try:
                rule(ev)
            except CheckUnavailable as exc:
                ev.reject(RiskRejectReason.SAFETY_FAIL, str(exc))
            except Exception as exc:
                ev.reject(RiskRejectReason.SAFETY_FAIL,
                          f"internal error in {_rule_name(rule)}: {type(exc).__name__}: {exc}")
        if not ev.reasons and ev.sizing is None:  # approval needs a size, whatever the rules said
            ev.reject(RiskRejectReason.SAFETY_FAIL, f"position size unavailable: {ev.sizing_error}")
        return ev

    @staticmethod
    def _rejected(signal: Signal, reasons: Sequence[RiskRejectReason], details: Sequence[str]) -> RiskRejected:
        return RiskRejected(signal_id=signal.signal_id, symbol=signal.symbol, direction=signal.direction,
                            reasons=tuple(reasons), details=_details(details))

    def _internal_failure(self, signal: Signal, exc: Exception) -> RiskRejected:
        decision = self._rejected(signal, (RiskRejectReason.SAFETY_FAIL,),
                                  (f"internal error: {type(exc).__name__}: {exc}",))
        try:  # remember it, so a redelivery gets the same answer
            if signal.signal_id not in self._decisions:
                self._commit(DecisionRecord(self._seq + 1, signal.signal_id, self._clock.now(), decision), None)
        except Exception:
            pass  # nothing more can be done; the refusal still goes out
        return decision

    def _commit(self, record: DecisionRecord, position: Position | None) -> None:
        self._seq = record.seq
        self._decisions[record.signal_id] = record
        if len(self._decisions) > self._config.decision_memory:
            self._decisions.popitem(last=False)
        self._record(DecisionRecorded(record))
        if position is not None:
            self._portfolio.positions[position.client_order_id] = position
            self._record(PositionUpserted(position))

    def _remember_trade(self, trade_id: str) -> None:
        self._trade_ids[trade_id] = None
        if len(self._trade_ids) > self._config.trade_memory:
            self._trade_ids.popitem(last=False)


def snapshot_since(now: datetime, config: RiskConfig) -> datetime:
    """Start of the realized history a restart needs (the current UTC day and the lookback)."""
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day_start - timedelta(days=config.restart_lookback_days)
