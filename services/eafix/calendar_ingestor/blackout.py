"""The trade gate per symbol (domain notes §6.6, MVP spec): an economic event of either currency of
the symbol blocks new trades from `before` minutes before it until `after` minutes after it (both
ends included; HIGH 60/30 and MEDIUM 30/15 by default, LOW never). States: PRE_EVENT_BLOCK (the
event is ahead; wins over POST when windows overlap), POST_EVENT_BLOCK (at or after the event), CLEAR,
and BLOCKED when the calendar cannot be trusted (none imported, or stale).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from eafix.calendar_ingestor.entries import CalendarEntry, Impact, Kind
from eafix.calendar_ingestor.timing import minutes_to


class GateState(StrEnum):
    CLEAR = "CLEAR"
    PRE_EVENT_BLOCK = "PRE_EVENT_BLOCK"
    POST_EVENT_BLOCK = "POST_EVENT_BLOCK"
    BLOCKED = "BLOCKED"


@dataclass(frozen=True)
class WindowConfig:
    """Minutes blocked (before, after) per impact; an impact not named never blocks."""

    minutes: Mapping[Impact, tuple[float, float]] = field(default_factory=lambda: {
        Impact.HIGH: (60.0, 30.0), Impact.MEDIUM: (30.0, 15.0)})


@dataclass(frozen=True, slots=True)
class Window:
    entry: CalendarEntry
    start: datetime
    end: datetime

    def covers(self, ts: datetime) -> bool:
        return self.start <= ts <= self.end


@dataclass(frozen=True)
class SymbolGate:
    symbol: str
    at: datetime
    state: GateState
    event: CalendarEntry | None  # the event blocking, or else the next one that will
    reason: str | None  # why new trades are not allowed; None when CLEAR

    @property
    def allow_new_trades(self) -> bool:
        return self.state is GateState.CLEAR

    @property
    def minutes_to_event(self) -> float | None:
        return None if self.event is None else minutes_to(self.event.event_time, self.at)


def windows(entries: Iterable[CalendarEntry], currencies: Iterable[str], config: WindowConfig) -> list[Window]:
    wanted = set(currencies)
    out = []
    for e in entries:
        span = config.minutes.get(e.impact)
        if e.kind is Kind.ECONOMIC and span is not None and e.currency in wanted:
            out.append(Window(e, e.event_time - timedelta(minutes=span[0]), e.event_time + timedelta(minutes=span[1])))
    return sorted(out, key=lambda w: (w.entry.event_time, w.entry.cal8))


def describe(entry: CalendarEntry) -> str:
    return f"{entry.impact} {entry.currency} {entry.title} at {entry.event_time:%Y-%m-%dT%H:%MZ} ({entry.cal8})"


def gate(symbol: str, symbol_windows: list[Window], now: datetime, *, untrusted: str | None = None) -> SymbolGate:
    """The state of `symbol` at `now` from its windows (sorted by event time); `untrusted` names why
    the calendar cannot be relied on, which blocks."""
    upcoming = next((w for w in symbol_windows if w.entry.event_time > now), None)
    if untrusted is not None:
        return SymbolGate(symbol, now, GateState.BLOCKED, upcoming.entry if upcoming else None, untrusted)
    pre = next((w for w in symbol_windows if w.covers(now) and now < w.entry.event_time), None)
    if pre is not None:
        return SymbolGate(symbol, now, GateState.PRE_EVENT_BLOCK, pre.entry, f"before {describe(pre.entry)}")
    post = [w for w in symbol_windows if w.covers(now)]
    if post:
        latest = post[-1].entry
        return SymbolGate(symbol, now, GateState.POST_EVENT_BLOCK, latest, f"after {describe(latest)}")
    return SymbolGate(symbol, now, GateState.CLEAR, upcoming.entry if upcoming else None, None)


__all__ = ["GateState", "SymbolGate", "Window", "WindowConfig", "describe", "gate", "windows"]
