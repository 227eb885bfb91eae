"""Pydantic models of the event payloads (`data` of an envelope), one per `schemas/events/*.v1.schema.json`.

The schema files are the source of truth; these models accept exactly the same JSON documents
(tests/service/test_contracts.py proves it on every example, counter-example and on randomly mutated
documents). Rules of the translation:
- every property is required, as in the schemas; "optional" values are nullable (`T | None`, no default);
  a property a MINOR version added is the one exception (old producers omit it): it defaults to None
  and is left out of the JSON while None, so a 1.0 consumer still reads what a 1.1 producer writes
  for an event that does not use it;
- `extra="forbid"` mirrors `additionalProperties: false`; models are frozen;
- field types come from `primitives` (decimal strings -> Decimal, UTC timestamps, strict numbers);
- cross-field rules exist only where the schema states them too (ExecutionReport's `allOf`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    model_validator,
)

from eafix.contracts.primitives import (
    CloseReason,
    CloseReasonField,
    Confidence,
    Currency,
    DirectionField,
    ExecutionStatus,
    ExecutionStatusField,
    Id,
    IndicatorKey,
    Lots,
    LotsOrZero,
    Money,
    MoneyOrZero,
    Multiplier,
    Name,
    NonNegativeInt,
    Number,
    Percent,
    Pips,
    PositiveMoney,
    Price,
    RiskRejectReason,
    RiskRejectReasonField,
    SignedPips,
    SuppressionReasonField,
    Symbol,
    TimeframeField,
    Timestamp,
    WindowVersion,
)


class Contract(BaseModel):
    """Base of every contract model: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def trusted(cls, fields: dict) -> Self:
        """An instance of values already checked as the contract checks them, every field given (the hot
        path of a process's own data: validation stays where data comes in). What model_construct does,
        less its per-field default handling, at a third of its cost."""
        model = cls.__new__(cls)
        object.__setattr__(model, "__dict__", fields)
        object.__setattr__(model, "__pydantic_fields_set__", set(fields))
        object.__setattr__(model, "__pydantic_extra__", None)
        object.__setattr__(model, "__pydantic_private__", None)
        return model


class Event(Contract):
    """Base of the event payloads. Subclasses set the three class constants."""

    EVENT_TYPE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[str]  # MAJOR.MINOR, equal to the schema file's x-schema-version
    TOPIC: ClassVar[str]

    def event_time(self) -> datetime | None:
        """When the event happened, if the payload says so (used as the envelope's ts_event)."""
        return None


class PriceTick(Event):
    EVENT_TYPE: ClassVar[str] = "PriceTick"
    SCHEMA_VERSION: ClassVar[str] = "1.0"
    TOPIC: ClassVar[str] = "eafix.price.tick"

    symbol: Symbol
    ts: Timestamp
    bid: Price
    ask: Price
    volume: NonNegativeInt | None

    def event_time(self) -> datetime:
        return self.ts


class Bar(Event):
    EVENT_TYPE: ClassVar[str] = "Bar"
    SCHEMA_VERSION: ClassVar[str] = "1.0"
    TOPIC: ClassVar[str] = "eafix.price.bars"

    symbol: Symbol
    timeframe: TimeframeField
    ts_open: Timestamp
    ts_close: Timestamp
    open: Price
    high: Price
    low: Price
    close: Price
    volume: NonNegativeInt

    def event_time(self) -> datetime:
        return self.ts_close


Rsi = Annotated[Number, Field(ge=0, le=100)]
NonNegativeNumber = Annotated[Number, Field(ge=0)]


class IndicatorValues(Contract):
    """The fixed indicator set; a value is None while its window warms up."""

    ema_20: Number | None
    ema_50: Number | None
    sma_20: Number | None
    sma_50: Number | None
    rsi_14: Rsi | None
    macd: Number | None
    macd_signal: Number | None
    macd_hist: Number | None
    bb_upper: Number | None
    bb_middle: Number | None
    bb_lower: Number | None
    atr_14: NonNegativeNumber | None


def _absent_when_none(value: object) -> bool:
    return value is None


class IndicatorVector(Event):
    EVENT_TYPE: ClassVar[str] = "IndicatorVector"
    SCHEMA_VERSION: ClassVar[str] = "1.1"
    TOPIC: ClassVar[str] = "eafix.indicators.computed"

    symbol: Symbol
    timeframe: TimeframeField
    ts: Timestamp
    window_version: WindowVersion
    values: IndicatorValues
    currency_strength: dict[Currency, Number]
    # since 1.1: the parameterized indicators the strategies declared beyond the fixed set
    parameterized: dict[IndicatorKey, Number | None] | None = Field(default=None, exclude_if=_absent_when_none)

    def event_time(self) -> datetime:
        return self.ts


class ReentryLink(Contract):
    """A re-entry signal's place in its chain (Signal 1.1, reentry-matrix-svc)."""

    decision_id: Id
    parent_trade_id: Id
    original_trade_id: Id
    generation: Literal["R1", "R2"]
    size_multiplier: Multiplier
    max_lots: Lots


class Signal(Event):
    EVENT_TYPE: ClassVar[str] = "Signal"
    SCHEMA_VERSION: ClassVar[str] = "1.2"
    TOPIC: ClassVar[str] = "eafix.signals.generated"

    signal_id: Id
    symbol: Symbol
    timeframe: TimeframeField
    strategy: Name
    direction: DirectionField
    confidence: Confidence
    source_indicators: Annotated[dict[Name, Number], Field(min_length=1)]
    entry_price: Price
    sl_pips: Pips
    tp_pips: Pips | None
    ts: Timestamp
    reentry: ReentryLink | None = Field(default=None, exclude_if=_absent_when_none)  # since 1.1
    # since 1.2: stop and reverse: the opposite positions of this symbol close when this one opens
    reverse: Literal[True] | None = Field(default=None, exclude_if=_absent_when_none)

    def event_time(self) -> datetime:
        return self.ts


class SignalSuppressed(Event):
    EVENT_TYPE: ClassVar[str] = "SignalSuppressed"
    SCHEMA_VERSION: ClassVar[str] = "1.0"
    TOPIC: ClassVar[str] = "eafix.signals.suppressed"

    symbol: Symbol
    timeframe: TimeframeField
    strategy: Name
    reason: SuppressionReasonField
    direction: DirectionField | None
    confidence: Confidence | None
    detail: Annotated[StrictStr, Field(max_length=500)] | None
    ts: Timestamp

    def event_time(self) -> datetime:
        return self.ts


class OrderIntent(Event):
    EVENT_TYPE: ClassVar[str] = "OrderIntent"
    SCHEMA_VERSION: ClassVar[str] = "1.1"
    TOPIC: ClassVar[str] = "eafix.orders.validated"

    client_order_id: Id
    idempotency_key: Id
    signal_id: Id
    symbol: Symbol
    direction: DirectionField
    lots: Lots
    sl_pips: Pips
    tp_pips: Pips
    entry_price: Price
    risk_percent: Percent
    account_balance: PositiveMoney
    account_currency: Currency
    # since 1.1: execution closes the open opposite positions of the symbol (CloseReason REVERSE) first
    reverse: Literal[True] | None = Field(default=None, exclude_if=_absent_when_none)


def _unique(reasons: tuple[RiskRejectReason, ...]) -> tuple[RiskRejectReason, ...]:
    if len(set(reasons)) != len(reasons):
        raise ValueError("reasons must be unique")
    return reasons


def _list_or_tuple(value: object) -> object:
    # a JSON array; refuse the other iterables pydantic's lax tuple would take (str is refused anyway)
    if not isinstance(value, list | tuple):
        raise ValueError("expected an array")
    return value


class RiskRejected(Event):
    EVENT_TYPE: ClassVar[str] = "RiskRejected"
    SCHEMA_VERSION: ClassVar[str] = "1.0"
    TOPIC: ClassVar[str] = "eafix.risk.rejected"

    signal_id: Id
    symbol: Symbol
    direction: DirectionField
    reasons: Annotated[
        tuple[RiskRejectReasonField, ...], BeforeValidator(_list_or_tuple), Field(min_length=1), AfterValidator(_unique)
    ]
    details: Annotated[StrictStr, Field(min_length=1, max_length=1000)]


_FILL_STATUSES = frozenset({ExecutionStatus.PARTIAL, ExecutionStatus.FILLED, ExecutionStatus.CLOSED})


class ExecutionReport(Event):
    EVENT_TYPE: ClassVar[str] = "ExecutionReport"
    SCHEMA_VERSION: ClassVar[str] = "1.0"
    TOPIC: ClassVar[str] = "eafix.execution.reports"

    client_order_id: Id
    broker_order_id: Id | None
    symbol: Symbol
    status: ExecutionStatusField
    filled_lots: LotsOrZero
    avg_price: Price | None
    commission: MoneyOrZero
    reason: Annotated[StrictStr, Field(min_length=1, max_length=500)] | None

    @model_validator(mode="after")
    def _status_rules(self) -> ExecutionReport:
        # the schema's allOf: fills for PARTIAL/FILLED/CLOSED, a reason for REJECTED
        if self.status in _FILL_STATUSES and (self.filled_lots <= 0 or self.avg_price is None):
            raise ValueError(f"{self.status.value} needs filled_lots > 0 and avg_price")
        if self.status is ExecutionStatus.REJECTED and self.reason is None:
            raise ValueError("REJECTED needs a reason")
        return self


class TradeClosed(Event):
    EVENT_TYPE: ClassVar[str] = "TradeClosed"
    SCHEMA_VERSION: ClassVar[str] = "1.1"
    TOPIC: ClassVar[str] = "eafix.trades.closed"

    trade_id: Id
    client_order_id: Id
    symbol: Symbol
    direction: DirectionField
    lots: Lots
    open_price: Price
    close_price: Price
    open_time: Timestamp
    close_time: Timestamp
    pips: SignedPips
    pnl: Money
    account_currency: Currency
    close_reason: CloseReasonField

    def event_time(self) -> datetime:
        return self.close_time


Generation = Literal["O", "R1", "R2"]


def _at_most(limit: int) -> AfterValidator:
    def check(value: int) -> int:
        if value > limit:
            raise ValueError(f"must be <= {limit}")
        return value

    return AfterValidator(check)


class ReentryDecision(Event):
    EVENT_TYPE: ClassVar[str] = "ReentryDecision"
    SCHEMA_VERSION: ClassVar[str] = "1.0"
    TOPIC: ClassVar[str] = "eafix.reentry.decisions"

    decision_id: Id
    trade_id: Id
    original_trade_id: Id
    symbol: Symbol
    strategy: Name
    generation: Generation
    next_generation: Literal["R1", "R2"] | None
    outcome: Literal["O1", "O2", "O3", "O4", "O5", "O6"]
    duration: Literal["FLASH", "QUICK", "LONG", "EXTENDED"]
    proximity: Literal["IM", "SH", "LG", "EX", "CD", "NONE"]
    action: Literal["NO_REENTRY", "SAME_TRADE", "REVERSE", "INCREASE_SIZE", "HOLD"]
    tier: Annotated[NonNegativeInt, _at_most(4)]
    parameter_set: Annotated[StrictStr, Field(pattern=r"^PS-[a-z0-9-]{1,60}@[0-9]+\.[0-9]+\.[0-9]+$")]
    size_multiplier: Multiplier
    delay_minutes: Annotated[NonNegativeInt, _at_most(1440)]
    confidence_adjustment: Annotated[Number, Field(ge=-1, le=1)]
    hybrid_id: Annotated[StrictStr, Field(
        pattern=r"^[A-Z]{6}-[a-z][a-z0-9_]{0,63}-(?:O|R1|R2)-[A-Z]+-O[1-6]-[A-Z]+-[0-9a-f]{6}$")]
    approved: StrictBool
    refusal: Literal["CHAIN_COMPLETE", "DUPLICATE", "COOLDOWN", "HOURLY_LIMIT", "DAILY_LIMIT"] | None
    reentry_signal_id: Id | None
    due_at: Timestamp | None
    decided_at: Timestamp

    def event_time(self) -> datetime:
        return self.decided_at


class SystemRiskOff(Event):
    EVENT_TYPE: ClassVar[str] = "SystemRiskOff"
    SCHEMA_VERSION: ClassVar[str] = "1.0"
    TOPIC: ClassVar[str] = "eafix.system.risk_off"

    active: StrictBool
    reason: Annotated[StrictStr, Field(min_length=1, max_length=500)]
    source: Id


CORE_MODELS: tuple[type[Event], ...] = (
    PriceTick,
    Bar,
    IndicatorVector,
    Signal,
    SignalSuppressed,
    OrderIntent,
    RiskRejected,
    ExecutionReport,
    TradeClosed,
    ReentryDecision,
    SystemRiskOff,
)

__all__ = [
    "CORE_MODELS",
    "Bar",
    "CloseReason",
    "Contract",
    "Event",
    "ExecutionReport",
    "IndicatorValues",
    "IndicatorVector",
    "OrderIntent",
    "PriceTick",
    "ReentryDecision",
    "ReentryLink",
    "RiskRejected",
    "Signal",
    "SignalSuppressed",
    "SystemRiskOff",
    "TradeClosed",
]
