"""The calendar: imported economic events under their identity, their lifecycle states, and what a
symbol sees at a time (its blackout windows and its proximity to events).

An event is the same event when its UTC minute, currency and title (case and spacing aside) are
the same: importing it again keeps its cal8 and updates what changed (impact, forecast, previous,
URL, quality). A new event gets the lowest collision suffix not yet used by its currency and minute.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from eafix.calendar_ingestor.blackout import Window, WindowConfig, windows
from eafix.calendar_ingestor.entries import CalendarEntry, Kind
from eafix.calendar_ingestor.identity import MAX_SUFFIX, cal5, cal8, cal8_stem, event_type, signal_type
from eafix.calendar_ingestor.intake import Row
from eafix.calendar_ingestor.timing import Lifecycle, Proximity, lifecycle, minutes_to, path, proximity

Key = tuple[datetime, str, str]


def key_of(event_time: datetime, currency: str, title: str) -> Key:
    return (event_time, currency, " ".join(title.casefold().split()))


@dataclass(frozen=True)
class Merge:
    new: tuple[CalendarEntry, ...]
    updated: tuple[CalendarEntry, ...]
    unchanged: int


@dataclass(frozen=True)
class Transition:
    cal8: str
    previous: Lifecycle | None
    state: Lifecycle
    at: datetime


class CalendarFull(ValueError):
    pass


class CalendarBook:
    def __init__(self, entries: Iterable[CalendarEntry] = (), states: dict[str, Lifecycle] | None = None) -> None:
        self._entries: dict[str, CalendarEntry] = {}
        self._by_key: dict[Key, str] = {}
        self.states: dict[str, Lifecycle] = dict(states or {})
        for entry in entries:
            self._put(entry)

    def _put(self, entry: CalendarEntry) -> None:
        self._entries[entry.cal8] = entry
        self._by_key[key_of(entry.event_time, entry.currency, entry.title)] = entry.cal8

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[CalendarEntry]:
        return sorted(self._entries.values(), key=lambda e: (e.event_time, e.cal8))

    def get(self, cal8_id: str) -> CalendarEntry | None:
        return self._entries.get(cal8_id)

    # -- intake ---------------------------------------------------------------------------------

    def entry_for(self, row: Row, source: str) -> CalendarEntry:
        """The event a row describes, under the identity it has (or would get) in this book."""
        known = self._by_key.get(key_of(row.event_time, row.currency, row.title))
        ident = known or self._next_cal8(row)
        return CalendarEntry(
            cal8=ident, cal5=cal5(row.currency, row.impact), kind=Kind.ECONOMIC, title=row.title,
            currency=row.currency, impact=row.impact, event_time=row.event_time, event_type=event_type(row.title),
            signal_type=signal_type(row.currency, row.impact), quality=row.quality, forecast=row.forecast,
            previous=row.previous, url=row.url, source=source)

    def _next_cal8(self, row: Row) -> str:
        stem = cal8_stem(row.event_time, row.currency)
        used = {int(c[-3:]) for c in self._entries if c.startswith(stem)}
        suffix = next((n for n in range(1, MAX_SUFFIX + 1) if n not in used), None)
        if suffix is None:
            raise CalendarFull(f"more than {MAX_SUFFIX} {row.currency} events at {row.event_time:%Y-%m-%d %H:%M}Z")
        return cal8(row.event_time, row.currency, suffix)

    def merge(self, rows: Iterable[Row], source: str) -> Merge:
        new: list[CalendarEntry] = []
        updated: list[CalendarEntry] = []
        unchanged = 0
        for row in rows:
            entry = self.entry_for(row, source)
            old = self._entries.get(entry.cal8)
            if old is None:
                new.append(entry)
            elif replace(old, source=source) != entry:
                updated.append(entry)
            else:
                unchanged += 1
                continue
            self._put(entry)
        return Merge(tuple(new), tuple(updated), unchanged)

    # -- clock ----------------------------------------------------------------------------------

    def advance(self, now: datetime) -> list[Transition]:
        """Move every event's lifecycle to where the clock says it is, one recorded step at a time."""
        out: list[Transition] = []
        for entry in self.entries():
            current = self.states.get(entry.cal8)
            for state in path(current, lifecycle(entry.event_type, minutes_to(entry.event_time, now))):
                out.append(Transition(entry.cal8, current, state, now))
                current = state
            if current is not None:
                self.states[entry.cal8] = current
        return out

    # -- what a symbol sees ---------------------------------------------------------------------

    def windows(self, currencies: Iterable[str], config: WindowConfig) -> list[Window]:
        return windows(self._entries.values(), currencies, config)

    def proximity(self, currencies: Iterable[str], now: datetime) -> tuple[Proximity | None, CalendarEntry | None]:
        """The symbol's proximity for re-entry decisions: CD while an event of its currencies is in its
        cooldown (the latest such event), else the bucket of the next event; None without either.
        Only events that drive re-entry count (not CHF/ECO_UNCAT, LOW or derived events)."""
        wanted = set(currencies)
        relevant = [e for e in self.entries() if e.currency in wanted and e.drives_reentry]
        cooling = [e for e in relevant if e.event_time <= now and
                   proximity(e.event_type, minutes_to(e.event_time, now)) is Proximity.CD]
        if cooling:
            return Proximity.CD, cooling[-1]
        upcoming = next((e for e in relevant if e.event_time > now), None)
        if upcoming is None:
            return None, None
        return proximity(upcoming.event_type, minutes_to(upcoming.event_time, now)), upcoming

    def upcoming(self, now: datetime, until: datetime) -> list[CalendarEntry]:
        return [e for e in self.entries() if now <= e.event_time <= until]


__all__ = ["CalendarBook", "CalendarFull", "Merge", "Transition", "key_of"]
