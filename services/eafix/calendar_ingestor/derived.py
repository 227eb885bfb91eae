"""Events derived from the calendar (domain notes §6.4): anticipation events 8 h and 1 h before each
HIGH economic event, and the cash-equity opens of Tokyo, London and New York on weekdays.

The opens are the exchanges' own (09:00 Asia/Tokyo, 08:00 Europe/London, 09:30 America/New_York),
each in its zone, so DST moves them in UTC as it moves the exchange; the original config's fixed
CST times do not match the exchanges (docs/decisions.md). They inform (events list, strategies);
they never block trading.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from eafix.calendar_ingestor.entries import CalendarEntry, EventType, Impact, Kind
from eafix.calendar_ingestor.identity import UNCATEGORISED

ANTICIPATION_HOURS = (8, 1)
# name -> (zone, local open, currencies it moves)
EQUITY_OPENS: dict[str, tuple[str, time, tuple[str, ...]]] = {
    "TOKYO": ("Asia/Tokyo", time(9, 0), ("JPY", "AUD", "NZD")),
    "LONDON": ("Europe/London", time(8, 0), ("EUR", "GBP", "CHF")),
    "NY": ("America/New_York", time(9, 30), ("USD", "CAD")),
}


def anticipations(entry: CalendarEntry) -> list[CalendarEntry]:
    if entry.kind is not Kind.ECONOMIC or entry.impact is not Impact.HIGH:
        return []
    return [CalendarEntry(
        cal8=f"{entry.cal8}-A{hours}H", cal5=UNCATEGORISED, kind=Kind.ANTICIPATION,
        title=f"{hours}H Before {entry.title} Anticipation - {entry.currency} - {entry.impact}",
        currency=entry.currency, impact=entry.impact, event_time=entry.event_time - timedelta(hours=hours),
        event_type=entry.event_type, signal_type=f"ANTICIPATION_{hours}HR_{entry.currency}", source=entry.source)
        for hours in ANTICIPATION_HOURS]


def equity_opens(start: datetime, end: datetime) -> Iterator[CalendarEntry]:
    """Every open in [start, end], in time order; one entry per currency the exchange moves."""
    day: date = (start - timedelta(days=1)).date()
    found: list[CalendarEntry] = []
    while day <= end.date() + timedelta(days=1):
        if day.weekday() < 5:
            for name, (zone, local, currencies) in EQUITY_OPENS.items():
                at = datetime.combine(day, local, ZoneInfo(zone)).astimezone(UTC)
                if start <= at <= end:
                    found.extend(_open(name, at, c) for c in currencies)
        day += timedelta(days=1)
    return iter(sorted(found, key=lambda e: (e.event_time, e.cal8)))


def _open(name: str, at: datetime, currency: str) -> CalendarEntry:
    return CalendarEntry(cal8=f"OPEN-{at:%Y%m%d-%H%M}-{name}-{currency}", cal5=UNCATEGORISED,
                         kind=Kind.EQUITY_OPEN, title=f"{name.title()} equity open", currency=currency,
                         impact=Impact.MEDIUM, event_time=at, event_type=EventType.DEFAULT,
                         signal_type=f"{name}_OPEN", source="derived")


def with_derived(entries: Iterable[CalendarEntry]) -> list[CalendarEntry]:
    out: list[CalendarEntry] = []
    for entry in entries:
        out.append(entry)
        out.extend(anticipations(entry))
    return out


__all__ = ["EQUITY_OPENS", "anticipations", "equity_opens", "with_derived"]
