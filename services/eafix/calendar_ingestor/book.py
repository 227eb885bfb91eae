"""The calendar: imported economic events under their identity, their lifecycle states, and what a
symbol sees at a time (its blackout windows and its proximity to events).

An event is the same event when its UTC minute, currency and title (case and spacing aside) are
the same: importing it again keeps its cal8 and updates what changed (impact, forecast, previous,
URL, quality). A new event gets the lowest collision suffix not yet used by its currency and minute.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from eafix.calendar_ingestor.blackout import Window, WindowConfig, windows
from eafix.calendar_ingestor.entries import CalendarEntry, Kind
from eafix.calendar_ingestor.identity import MAX_SUFFIX, cal5, cal8, cal8_stem, event_type, signal_type
from eafix.calendar_ingestor.intake import Row
from eafix.calendar_ingestor.timing import (
    ANTICIPATION_8HR_MINUTES,
    Lifecycle,
    Proximity,
    lifecycle,
    minutes_to,
    path,
    proximity,
)

LONGEST_COOLDOWN = timedelta(minutes=60)  # NFP's, the longest of timing.BUCKETS

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
        # caches, rebuilt after any change of the entries: the book is read every refresh (every bar
        # of a backtest) and changed only by imports
        self._sorted: list[CalendarEntry] | None = None
        self._windows: dict[tuple[frozenset[str], tuple], tuple[list[Window], list[datetime]]] = {}
        self._relevant: dict[frozenset[str], tuple[list[CalendarEntry], list[datetime]]] = {}
        self._expired_prefix = 0  # leading entries (by time) already EXPIRED: advance() skips them
        for entry in entries:
            self._put(entry)

    def _put(self, entry: CalendarEntry) -> None:
        self._entries[entry.cal8] = entry
        self._by_key[key_of(entry.event_time, entry.currency, entry.title)] = entry.cal8
        self._sorted, self._windows, self._relevant, self._expired_prefix = None, {}, {}, 0

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[CalendarEntry]:
        if self._sorted is None:
            self._sorted = sorted(self._entries.values(), key=lambda e: (e.event_time, e.cal8))
        return list(self._sorted)

    def _by_time(self) -> list[CalendarEntry]:
        if self._sorted is None:
            self.entries()
        assert self._sorted is not None
        return self._sorted

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
        entries = self._by_time()
        while self._expired_prefix < len(entries) and \
                self.states.get(entries[self._expired_prefix].cal8) is Lifecycle.EXPIRED:
            self._expired_prefix += 1
        far = now + timedelta(minutes=ANTICIPATION_8HR_MINUTES)
        for entry in entries[self._expired_prefix:]:
            current = self.states.get(entry.cal8)
            if current is Lifecycle.SCHEDULED and entry.event_time > far:
                continue  # stays SCHEDULED
            for state in path(current, lifecycle(entry.event_type, minutes_to(entry.event_time, now))):
                out.append(Transition(entry.cal8, current, state, now))
                current = state
            if current is not None:
                self.states[entry.cal8] = current
        return out

    # -- what a symbol sees ---------------------------------------------------------------------

    def windows(self, currencies: Iterable[str], config: WindowConfig) -> list[Window]:
        return list(self._windows_of(frozenset(currencies), config)[0])

    def _windows_of(self, currencies: frozenset[str], config: WindowConfig) -> tuple[list[Window], list[datetime]]:
        key = (currencies, tuple(sorted(config.minutes.items())))
        if key not in self._windows:
            found = windows(self._by_time(), currencies, config)
            self._windows[key] = (found, [w.entry.event_time for w in found])
        return self._windows[key]

    def windows_near(self, currencies: Iterable[str], config: WindowConfig, start: datetime,
                     end: datetime) -> list[Window]:
        """Windows overlapping [start, end], and after them the next window to start, by event time."""
        found, times = self._windows_of(frozenset(currencies), config)
        reach = timedelta(minutes=max((max(span) for span in config.minutes.values()), default=0))
        lo, hi = bisect_left(times, start - reach), bisect_right(times, end + reach)
        near = [w for w in found[lo:hi] if w.end >= start and w.start <= end]
        following = next((w for w in found[hi:] if w.start > end), None)
        return near if following is None else [*near, following]

    def proximity(self, currencies: Iterable[str], now: datetime) -> tuple[Proximity | None, CalendarEntry | None]:
        """The symbol's proximity for re-entry decisions: CD while an event of its currencies is in its
        cooldown (the latest such event), else the bucket of the next event; None without either.
        Only events that drive re-entry count (not CHF/ECO_UNCAT, LOW or derived events)."""
        key = frozenset(currencies)
        if key not in self._relevant:
            found = [e for e in self._by_time() if e.currency in key and e.drives_reentry]
            self._relevant[key] = (found, [e.event_time for e in found])
        relevant, times = self._relevant[key]
        split = bisect_right(times, now)  # relevant[:split] happened at or before now
        recent = relevant[bisect_left(times, now - LONGEST_COOLDOWN):split]
        cooling = [e for e in recent if proximity(e.event_type, minutes_to(e.event_time, now)) is Proximity.CD]
        if cooling:
            return Proximity.CD, cooling[-1]
        upcoming = relevant[split] if split < len(relevant) else None
        if upcoming is None:
            return None, None
        return proximity(upcoming.event_type, minutes_to(upcoming.event_time, now)), upcoming

    def upcoming(self, now: datetime, until: datetime) -> list[CalendarEntry]:
        return [e for e in self.entries() if now <= e.event_time <= until]


__all__ = ["CalendarBook", "CalendarFull", "Merge", "Transition", "key_of"]
