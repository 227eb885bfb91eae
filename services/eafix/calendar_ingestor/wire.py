"""The domain's values as bus contracts: a CalendarEntry in a state as a CalendarEvent, a symbol's
gate and proximity as a CalendarSignal."""

from __future__ import annotations

from datetime import datetime, timedelta

from eafix.calendar_ingestor.blackout import SymbolGate, Window
from eafix.calendar_ingestor.entries import CalendarEntry
from eafix.calendar_ingestor.timing import Lifecycle, Proximity, priority_weight
from eafix.contracts.calendar import BlackoutWindow, CalendarEvent, CalendarRef, CalendarSignal

MAX_WINDOWS = 200  # CalendarSignal.windows maxItems


def event_message(entry: CalendarEntry, state: Lifecycle, at: datetime) -> CalendarEvent:
    return CalendarEvent(
        cal8=entry.cal8, cal5=entry.cal5, title=entry.title[:200], currency=entry.currency, impact=entry.impact.value,
        event_type=entry.event_type.value, signal_type=entry.signal_type, scheduled_at=entry.event_time,
        state=state.value, quality=entry.quality, forecast=_figure(entry.forecast), previous=_figure(entry.previous),
        source=(entry.source or "unknown")[:200], changed_at=at)


def _figure(value: str | None) -> str | None:
    return value[:40] if value else None


def ref(entry: CalendarEntry) -> CalendarRef:
    return CalendarRef(cal8=entry.cal8, title=entry.title[:200], currency=entry.currency, impact=entry.impact.value,
                       scheduled_at=entry.event_time)


def signal_message(symbol_gate: SymbolGate, windows: list[Window], prox: tuple[Proximity | None, CalendarEntry | None],
                   valid_for: timedelta) -> CalendarSignal:
    now = symbol_gate.at
    valid_until = now + valid_for
    near = [w for w in windows if w.end >= now - valid_for and w.start <= valid_until][:MAX_WINDOWS]
    bucket, prox_entry = prox
    minutes = symbol_gate.minutes_to_event
    return CalendarSignal(
        symbol=symbol_gate.symbol, generated_at=now, valid_until=valid_until, state=symbol_gate.state.value,
        allow_new_trades=symbol_gate.allow_new_trades,
        reason=None if symbol_gate.reason is None else symbol_gate.reason[:500],
        event=None if symbol_gate.event is None else ref(symbol_gate.event),
        minutes_to_event=None if minutes is None else round(minutes, 3),
        proximity="NONE" if bucket is None else bucket.value,
        proximity_event=None if prox_entry is None else prox_entry.cal8,
        priority_weight=0 if bucket is None or prox_entry is None else priority_weight(prox_entry, bucket),
        windows=[BlackoutWindow(cal8=w.entry.cal8, title=w.entry.title[:200], currency=w.entry.currency,
                                impact=w.entry.impact.value, scheduled_at=w.entry.event_time, start=w.start, end=w.end)
                 for w in near])


__all__ = ["event_message", "ref", "signal_message"]
