"""Field types shared by the event models, mirroring `schemas/events/common.v1.schema.json`.

Every type validates a JSON value exactly as the matching `$defs` entry of the common schema does
under `Draft202012Validator` with `FORMAT_CHECKER`: the regular expressions are the same strings,
applied with `re.search` like `jsonschema` applies `pattern`, and the `date-time` / `uuid` format
checks are the same functions. A test compares `PATTERNS` with the schema file and feeds every
`$defs` example and counter-example to both sides.

Wire forms:
- prices, lots, pips, money and percentages are decimal *strings* ("1.08420"); a JSON number is
  refused. The model holds `decimal.Decimal`, and JSON output writes it back in plain notation,
  so a valid string survives a round trip character for character;
- timestamps are UTC RFC 3339 strings ending in `Z` with at most 6 fractional digits; the model
  holds an aware `datetime` in UTC and writes `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`;
- ids are canonical lower-case UUID strings, held as `uuid.UUID`.

Python callers may also pass `Decimal`, aware `datetime`, `UUID` and enum members directly; they are
checked against the same rules (a Decimal with too many places is refused, not rounded).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import Field, PlainSerializer, PlainValidator, StrictFloat, WithJsonSchema

__all__ = [
    "PATTERNS",
    "CloseReason",
    "Direction",
    "ExecutionStatus",
    "RiskRejectReason",
    "SuppressionReason",
    "Timeframe",
    "format_timestamp",
    "is_rfc3339_datetime",
    "is_uuid",
]

# --- regular expressions: identical to the `pattern` of the `$defs` in common.v1.schema.json -------

_POSITIVE = r"^(?=[0-9.]*[1-9])"  # at least one non-zero digit: the value is > 0
PATTERNS: dict[str, str] = {
    "Symbol": r"^[A-Z]{6}$",
    "Currency": r"^[A-Z]{3}$",
    "Uuid": r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    "Timestamp": (
        r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
        r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?Z$"
    ),
    "Id": r"^[A-Za-z0-9][A-Za-z0-9._:~-]{0,63}$",
    "Name": r"^[a-z][a-z0-9_]{0,63}$",
    "Producer": r"^[a-z][a-z0-9-]{0,62}$",
    "EventType": r"^[A-Z][A-Za-z0-9]{0,63}$",
    "SchemaVersion": r"^(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)$",
    "WindowVersion": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$",
    "IndicatorKey": (
        r"^[a-z]{2,16}\((?:0|[1-9][0-9]{0,5})(?:\.[0-9]{1,8})?"
        r"(?:,(?:0|[1-9][0-9]{0,5})(?:\.[0-9]{1,8})?){0,3}\)(?:\.[a-z]{1,16})?$"
    ),
    "Price": _POSITIVE + r"(?:0|[1-9][0-9]{0,11})(?:\.[0-9]{1,8})?$",
    "Lots": _POSITIVE + r"(?:0|[1-9][0-9]{0,3})(?:\.[0-9]{1,2})?$",
    "LotsOrZero": r"^(?:0|[1-9][0-9]{0,3})(?:\.[0-9]{1,2})?$",
    "Pips": _POSITIVE + r"(?:0|[1-9][0-9]{0,5})(?:\.[0-9])?$",
    "SignedPips": r"^-?(?:0|[1-9][0-9]{0,5})(?:\.[0-9])?$",
    "Money": r"^-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,8})?$",
    "MoneyOrZero": r"^(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,8})?$",
    "PositiveMoney": _POSITIVE + r"(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,8})?$",
    "Percent": _POSITIVE + r"(?:100(?:\.0{1,4})?|[1-9]?[0-9](?:\.[0-9]{1,4})?)$",
    "Multiplier": _POSITIVE + r"[0-9](?:\.[0-9]{1,2})?$",
}

_RX = {name: re.compile(pattern) for name, pattern in PATTERNS.items()}
_TIMESTAMP, _UUID = _RX["Timestamp"], _RX["Uuid"]


def _matches(name: str, value: str) -> bool:
    # `re.search`, as jsonschema evaluates `pattern` (ECMA-262 semantics would differ only in that
    # Python's `$` also matches before one trailing newline; both Python validators agree).
    return _RX[name].search(value) is not None


# --- format checks shared with the JSON Schema FORMAT_CHECKER -------------------------------------

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:[Zz]|[+-](\d{2}):(\d{2}))"
)


def is_rfc3339_datetime(value: object) -> bool:
    """`format: date-time` (RFC 3339 section 5.6, calendar-checked; leap second 60 allowed)."""
    if not isinstance(value, str):
        return True
    m = _RFC3339.fullmatch(value)
    if m is None or not value.isascii():
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if hour > 23 or minute > 59 or second > 60:
        return False
    if m.group(8) is not None and (int(m.group(8)) > 23 or int(m.group(9)) > 59):
        return False
    try:
        datetime(year, month, day)
    except ValueError:
        return False
    return True


def is_uuid(value: object) -> bool:
    """`format: uuid` exactly as jsonschema checks it (parses, dashes at 8/13/18/23)."""
    if not isinstance(value, str):
        return True
    try:
        UUID(value)
    except ValueError:
        return False
    return all(value[i] == "-" for i in (8, 13, 18, 23))


# --- validators ------------------------------------------------------------------------------------


def _string(name: str) -> Callable[[Any], str]:
    def validate(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"{name}: expected a string")
        if not _matches(name, value):
            raise ValueError(f"{name}: {value!r} does not match {PATTERNS[name]}")
        return value

    return validate


def _decimal(name: str) -> Callable[[Any], Decimal]:
    def validate(value: Any) -> Decimal:
        if isinstance(value, str):
            if not _matches(name, value):
                raise ValueError(f"{name}: {value!r} is not a decimal string matching {PATTERNS[name]}")
            return Decimal(value)
        if isinstance(value, Decimal):
            if not value.is_finite() or not _matches(name, format(value, "f")):
                raise ValueError(f"{name}: {value} does not match {PATTERNS[name]}")
            return value
        raise ValueError(f"{name} must be a decimal string such as '1.0842' (JSON numbers are refused)")

    return validate


def _format_decimal(value: Decimal) -> str:
    return format(value, "f")


def _timestamp(value: Any) -> datetime:
    if isinstance(value, str):
        # The pattern fixes every character's place (ASCII digits, hours <= 23, no leap second, Z);
        # fromisoformat refuses the dates the calendar lacks (02-30): that is all is_rfc3339_datetime
        # adds. fullmatch, because `$` of `search` would let a trailing newline through. Python >= 3.11
        # reads the Z (as UTC) and the 1-6 fraction digits the pattern allows.
        if _TIMESTAMP.fullmatch(value) is not None:
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                pass
        raise ValueError(f"Timestamp: {value!r} is not a UTC RFC 3339 time like 2025-01-06T12:00:00Z")
    if isinstance(value, datetime):
        offset = value.utcoffset()
        if offset is None:
            raise ValueError("Timestamp: naive datetime; pass an aware UTC datetime")
        return value.astimezone(UTC)
    raise ValueError("Timestamp must be a string like 2025-01-06T12:00:00Z")


def format_timestamp(value: datetime) -> str:
    """The wire form of a timestamp: `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` (UTC). isoformat() writes the
    fraction only when there is one, as the wire form wants, and is several times faster than strftime."""
    return value.astimezone(UTC).isoformat()[:-6] + "Z"  # [:-6]: its "+00:00"


def _uuid(value: Any) -> UUID:
    if isinstance(value, UUID):
        return value
    if isinstance(value, str) and _UUID.fullmatch(value) is not None:  # canonical: what is_uuid checks, and more
        return UUID(value)
    raise ValueError("Uuid: expected a canonical lower-case UUID string")


def _integer(minimum: int | None = None) -> Callable[[Any], int]:
    # JSON Schema `integer` accepts any number with a zero fractional part (2.0); booleans are not numbers.
    def validate(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("expected an integer, got a boolean")
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise ValueError("expected an integer")
        if minimum is not None and value < minimum:
            raise ValueError(f"must be >= {minimum}")
        return value

    return validate


def _enum(enum: type[StrEnum]) -> Callable[[Any], StrEnum]:
    def validate(value: Any) -> StrEnum:
        if isinstance(value, str):
            try:
                return enum(value)
            except ValueError:
                pass
        raise ValueError(f"{enum.__name__}: expected one of {', '.join(m.value for m in enum)}")

    return validate


def _ser(func: Callable[[Any], Any]) -> PlainSerializer:
    return PlainSerializer(func, return_type=str, when_used="json")


# --- enums -----------------------------------------------------------------------------------------


class Direction(StrEnum):
    LONG = "LONG"
    SHORT = "SHORT"


class Timeframe(StrEnum):
    M1 = "M1"
    M5 = "M5"
    M15 = "M15"
    H1 = "H1"
    H4 = "H4"
    D1 = "D1"


class SuppressionReason(StrEnum):
    RISK_OFF = "RISK_OFF"
    LOW_CONFIDENCE = "LOW_CONFIDENCE"
    DUPLICATE_WITHIN_WINDOW = "DUPLICATE_WITHIN_WINDOW"
    CALENDAR_BLACKOUT = "CALENDAR_BLACKOUT"
    NEUTRAL_BIAS = "NEUTRAL_BIAS"


class RiskRejectReason(StrEnum):
    DAILY_DRAWDOWN_LIMIT_REACHED = "DAILY_DRAWDOWN_LIMIT_REACHED"
    PER_TRADE_RISK_EXCEEDED = "PER_TRADE_RISK_EXCEEDED"
    MAX_OPEN_POSITIONS = "MAX_OPEN_POSITIONS"
    CURRENCY_EXPOSURE_CAP = "CURRENCY_EXPOSURE_CAP"
    CORRELATION_GUARD = "CORRELATION_GUARD"
    SPREAD_TOO_WIDE = "SPREAD_TOO_WIDE"
    SL_TP_RATIO = "SL_TP_RATIO"
    SAFETY_FAIL = "SAFETY_FAIL"
    CALENDAR_BLACKOUT = "CALENDAR_BLACKOUT"


class ExecutionStatus(StrEnum):
    PENDING = "PENDING"
    SUBMITTED = "SUBMITTED"
    PARTIAL = "PARTIAL"
    FILLED = "FILLED"
    CLOSED = "CLOSED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    EXPIRED = "EXPIRED"


class CloseReason(StrEnum):
    TP = "TP"
    SL = "SL"
    MANUAL = "MANUAL"
    TIMEOUT = "TIMEOUT"
    BROKER_REJECT = "BROKER_REJECT"
    REVERSE = "REVERSE"  # closed by a stop-and-reverse order on the same symbol (TradeClosed 1.1)


# --- annotated field types -------------------------------------------------------------------------


def _pattern_str(name: str) -> Any:
    return Annotated[str, PlainValidator(_string(name)), WithJsonSchema(
        {"type": "string", "pattern": PATTERNS[name]})]


def _decimal_str(name: str, description: str) -> Any:
    return Annotated[Decimal, PlainValidator(_decimal(name)), _ser(_format_decimal), WithJsonSchema(
        {"type": "string", "pattern": PATTERNS[name], "description": description})]


def _enum_type(enum: type[StrEnum]) -> Any:
    return Annotated[enum, PlainValidator(_enum(enum)), _ser(lambda v: v.value), WithJsonSchema(
        {"type": "string", "enum": [m.value for m in enum]})]


Symbol = _pattern_str("Symbol")
Currency = _pattern_str("Currency")
Id = _pattern_str("Id")
Name = _pattern_str("Name")
Producer = _pattern_str("Producer")
EventTypeName = _pattern_str("EventType")
SchemaVersion = _pattern_str("SchemaVersion")
WindowVersion = _pattern_str("WindowVersion")
IndicatorKey = _pattern_str("IndicatorKey")
Uuid = Annotated[UUID, PlainValidator(_uuid), _ser(str), WithJsonSchema(
    {"type": "string", "format": "uuid", "pattern": PATTERNS["Uuid"]})]
Timestamp = Annotated[datetime, PlainValidator(_timestamp), _ser(format_timestamp), WithJsonSchema(
    {"type": "string", "format": "date-time", "pattern": PATTERNS["Timestamp"]})]

Price = _decimal_str("Price", "price in quote currency per unit of base, > 0")
Lots = _decimal_str("Lots", "volume in standard lots, > 0, step 0.01")
LotsOrZero = _decimal_str("LotsOrZero", "volume in standard lots, >= 0, step 0.01")
Pips = _decimal_str("Pips", "distance in pips, > 0, at most one decimal")
SignedPips = _decimal_str("SignedPips", "signed distance in pips, at most one decimal")
Money = _decimal_str("Money", "signed amount in account currency")
MoneyOrZero = _decimal_str("MoneyOrZero", "amount in account currency, >= 0")
PositiveMoney = _decimal_str("PositiveMoney", "amount in account currency, > 0")
Percent = _decimal_str("Percent", "percentage, > 0 and <= 100")
Multiplier = _decimal_str("Multiplier", "size multiplier, > 0 and < 10, at most 2 decimals")

Confidence = Annotated[StrictFloat, Field(ge=0, le=1, allow_inf_nan=False)]
Number = Annotated[StrictFloat, Field(allow_inf_nan=False)]
NonNegativeInt = Annotated[int, PlainValidator(_integer(minimum=0)), WithJsonSchema(
    {"type": "integer", "minimum": 0})]

DirectionField = _enum_type(Direction)
TimeframeField = _enum_type(Timeframe)
SuppressionReasonField = _enum_type(SuppressionReason)
RiskRejectReasonField = _enum_type(RiskRejectReason)
ExecutionStatusField = _enum_type(ExecutionStatus)
CloseReasonField = _enum_type(CloseReason)

# `$defs` name in common.v1.schema.json -> the Python type that must accept the same values.
DEFS: dict[str, Any] = {
    "Symbol": Symbol,
    "Currency": Currency,
    "Uuid": Uuid,
    "Timestamp": Timestamp,
    "Id": Id,
    "Name": Name,
    "Producer": Producer,
    "EventType": EventTypeName,
    "SchemaVersion": SchemaVersion,
    "WindowVersion": WindowVersion,
    "IndicatorKey": IndicatorKey,
    "Price": Price,
    "Lots": Lots,
    "LotsOrZero": LotsOrZero,
    "Pips": Pips,
    "SignedPips": SignedPips,
    "Money": Money,
    "MoneyOrZero": MoneyOrZero,
    "PositiveMoney": PositiveMoney,
    "Percent": Percent,
    "Multiplier": Multiplier,
    "Confidence": Confidence,
    "Direction": DirectionField,
    "Timeframe": TimeframeField,
}
