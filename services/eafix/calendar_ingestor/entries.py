"""What the calendar holds: one scheduled economic event (or an event derived from one)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Impact(StrEnum):
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class EventType(StrEnum):
    CPI = "CPI"
    NFP = "NFP"
    PMI = "PMI"
    RATE = "RATE"
    GDP = "GDP"
    DEFAULT = "DEFAULT"


class Kind(StrEnum):
    ECONOMIC = "ECONOMIC"  # imported from a calendar file; only these block trading
    ANTICIPATION = "ANTICIPATION"  # 8 h and 1 h before a HIGH economic event
    EQUITY_OPEN = "EQUITY_OPEN"  # Tokyo, London, New York cash-equity opens, Monday to Friday


@dataclass(frozen=True, slots=True)
class CalendarEntry:
    cal8: str  # CAL8-YYYYMMDD-HHMM-CCC-NNN (economic); derived ids extend their parent's or name the open
    cal5: str  # region/country/impact/checksum; 00000 for CHF, LOW and derived events
    kind: Kind
    title: str
    currency: str
    impact: Impact
    event_time: datetime  # UTC
    event_type: EventType
    signal_type: str  # ECO_HIGH_USD, ECO_MED_EUR, ECO_LOW_JPY, ECO_UNCAT, ANTICIPATION_1HR_USD, TOKYO_OPEN...
    quality: int = 100  # 0-100, from the fields the source row carried
    forecast: str | None = None
    previous: str | None = None
    url: str | None = None
    source: str = ""  # the import that brought it (file name or upload label)

    @property
    def drives_reentry(self) -> bool:
        """CHF (ECO_UNCAT) and LOW events block or inform but never key a re-entry lookup."""
        return self.kind is Kind.ECONOMIC and self.cal5 != "00000"


__all__ = ["CalendarEntry", "EventType", "Impact", "Kind"]
