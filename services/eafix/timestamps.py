"""One parser for the times that come from outside (price feeds, the MT4 bridge, backtest files), so
every edge accepts and refuses the same texts with the same messages. Pure.

Accepted: an RFC 3339 time with `Z` or an offset (converted to UTC, at most 6 fractional digits), or
Unix epoch seconds as a number (at most 6 decimals; milliseconds are refused as out of range).
Options for file formats: `epoch_text` takes numeric text as epoch seconds (CSV cells are text);
`naive_utc` takes a time without offset as UTC, also MT4's `YYYY.MM.DD HH:MM[:SS]` — only for a
writer known to emit UTC (the MT4 bridge's EA); anywhere else a time without offset is refused.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

__all__ = ["parse_timestamp"]

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?([Zz]|[+-]\d{2}:\d{2})?"
)
_MT4 = re.compile(r"(\d{4})\.(\d{2})\.(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?")
_EPOCH_TEXT = re.compile(r"\d{1,10}(?:\.\d{1,6})?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def _from_epoch(seconds: Decimal) -> datetime:
    if not seconds.is_finite() or seconds < 0:
        raise ValueError("epoch seconds must be a finite number >= 0")
    micros = seconds * 1_000_000
    if micros != micros.to_integral_value():
        raise ValueError("epoch seconds have more than 6 decimal places")
    try:
        return _EPOCH + int(micros) * _ONE_US
    except OverflowError:
        raise ValueError(f"epoch seconds {seconds} are out of range (milliseconds?)") from None


def _iso(text: str, m: re.Match[str], naive_utc: bool) -> datetime:
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    micro = int((m.group(7) or "").ljust(6, "0"))
    offset = m.group(8)
    if offset is None and not naive_utc:
        raise ValueError(f"time {text!r} has no UTC offset (add Z)")
    try:
        ts = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"time {text!r}: {exc}") from None
    if offset and offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError(f"time {text!r}: bad UTC offset")
        try:
            ts -= sign * timedelta(hours=hours, minutes=minutes)
        except OverflowError:  # 0001-01-01T00:00+01:00 is in year 0 at UTC
            raise ValueError(f"time {text!r} is out of range at UTC (years 1-9999)") from None
    return ts


def parse_timestamp(value: Any, *, naive_utc: bool = False, epoch_text: bool = False) -> datetime:
    """`value` as an aware UTC datetime. Raises ValueError with a message naming the value."""
    if isinstance(value, bool):
        raise ValueError("a time must be a time string or epoch seconds, not a boolean")
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            if not naive_utc:
                raise ValueError("the time has no UTC offset")
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, int | float | Decimal):
        return _from_epoch(Decimal(str(value)))
    if not isinstance(value, str):
        raise ValueError("a time must be a time string or epoch seconds")
    text = value.strip()
    m = _ISO.fullmatch(text)
    if m is not None:
        return _iso(text, m, naive_utc)
    if naive_utc:
        m = _MT4.fullmatch(text)
        if m is not None:
            year, month, day, hour, minute = (int(g) for g in m.groups()[:5])
            try:
                return datetime(year, month, day, hour, minute, int(m.group(6) or 0), tzinfo=UTC)
            except ValueError as exc:
                raise ValueError(f"time {text!r}: {exc}") from None
    if (naive_utc or epoch_text) and _EPOCH_TEXT.fullmatch(text):
        return _from_epoch(Decimal(text))
    raise ValueError(f"time {text!r} is not an RFC 3339 time such as 2025-01-06T12:00:00Z"
                     + (" or epoch seconds" if naive_utc or epoch_text else ""))
