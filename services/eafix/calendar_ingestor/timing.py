"""Time relative to an event: proximity bucket, lifecycle state and priority weight (domain notes §6.5).

Minutes are signed: positive before the event, negative after it. Buckets per event type (RATE and
GDP use DEFAULT), inclusive upper bounds in minutes before the event:

    type     IM     SH      LG      EX     CD (after)
    CPI      <=20   <=90    <=300   >300   45
    NFP      <=30   <=120   <=360   >360   60
    PMI      <=10   <=45    <=180   >180   30
    DEFAULT  <=15   <=60    <=240   >240   30

After the event it is CD for its cooldown, then it no longer has a proximity (None). Far in the
future is EX, never None (CAL-GUARD-008).

Lifecycle: SCHEDULED -> ANTICIPATION_8HR (480 min before) -> ANTICIPATION_1HR (60 before) -> ACTIVE
(15 before until 15 after) -> COOLDOWN (until the cooldown of its type ends) -> EXPIRED. A state is
a function of the clock; `path` lists the states a stored event walks through to reach it, so
every recorded transition is one step (SCHEDULED -> ACTIVE never happens in one).

priority weight = impact score (HIGH 3, MEDIUM 2, LOW or ECO_UNCAT 1) x proximity score (IM 4, SH 3,
LG 2, EX 1, CD 0): 0-12 (DEC-CAL-008).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from eafix.calendar_ingestor.entries import CalendarEntry, EventType, Impact
from eafix.calendar_ingestor.identity import UNCAT_SIGNAL


class Proximity(StrEnum):
    IM = "IM"
    SH = "SH"
    LG = "LG"
    EX = "EX"
    CD = "CD"


class Lifecycle(StrEnum):
    SCHEDULED = "SCHEDULED"
    ANTICIPATION_8HR = "ANTICIPATION_8HR"
    ANTICIPATION_1HR = "ANTICIPATION_1HR"
    ACTIVE = "ACTIVE"
    COOLDOWN = "COOLDOWN"
    EXPIRED = "EXPIRED"


ORDER = tuple(Lifecycle)
# (IM, SH, LG upper bounds before; cooldown after), minutes
BUCKETS: dict[EventType, tuple[int, int, int, int]] = {
    EventType.CPI: (20, 90, 300, 45),
    EventType.NFP: (30, 120, 360, 60),
    EventType.PMI: (10, 45, 180, 30),
    EventType.DEFAULT: (15, 60, 240, 30),
}
IMPACT_SCORE = {Impact.HIGH: 3, Impact.MEDIUM: 2, Impact.LOW: 1}
PROXIMITY_SCORE = {Proximity.IM: 4, Proximity.SH: 3, Proximity.LG: 2, Proximity.EX: 1, Proximity.CD: 0}
ANTICIPATION_8HR_MINUTES = 480
ANTICIPATION_1HR_MINUTES = 60
ACTIVE_MINUTES = 15  # either side of the event


def minutes_to(event_time: datetime, now: datetime) -> float:
    return (event_time - now).total_seconds() / 60


def buckets(event_type: EventType) -> tuple[int, int, int, int]:
    return BUCKETS.get(event_type, BUCKETS[EventType.DEFAULT])


def proximity(event_type: EventType, minutes: float) -> Proximity | None:
    immediate, short, long_, cooldown = buckets(event_type)
    if minutes < 0:
        return Proximity.CD if -minutes <= cooldown else None
    if minutes <= immediate:
        return Proximity.IM
    if minutes <= short:
        return Proximity.SH
    return Proximity.LG if minutes <= long_ else Proximity.EX


def lifecycle(event_type: EventType, minutes: float) -> Lifecycle:
    if minutes > ANTICIPATION_8HR_MINUTES:
        return Lifecycle.SCHEDULED
    if minutes > ANTICIPATION_1HR_MINUTES:
        return Lifecycle.ANTICIPATION_8HR
    if minutes > ACTIVE_MINUTES:
        return Lifecycle.ANTICIPATION_1HR
    if minutes >= -ACTIVE_MINUTES:
        return Lifecycle.ACTIVE
    return Lifecycle.COOLDOWN if -minutes <= buckets(event_type)[3] else Lifecycle.EXPIRED


def path(current: Lifecycle | None, target: Lifecycle) -> list[Lifecycle]:
    """The states after `current` up to `target`, one step each (a new event starts at SCHEDULED);
    empty when `target` is not ahead of `current` (the lifecycle never goes back)."""
    start = 0 if current is None else ORDER.index(current) + 1
    return list(ORDER[start: ORDER.index(target) + 1])


def priority_weight(entry: CalendarEntry, prox: Proximity) -> int:
    impact = 1 if entry.signal_type == UNCAT_SIGNAL else IMPACT_SCORE[entry.impact]
    return impact * PROXIMITY_SCORE[prox]


__all__ = ["BUCKETS", "Lifecycle", "Proximity", "lifecycle", "minutes_to", "path", "priority_weight", "proximity"]
