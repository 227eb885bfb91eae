"""Calendar contracts (calendar-ingestor) and the gate their consumers keep.

- CalendarEvent (`eafix.calendar.events`): an economic event as imported, and again at each
  lifecycle transition.
- CalendarSignal (`eafix.calendar.signals`): per tracked symbol, every refresh: the trade gate
  (state, the event behind it), the blackout windows near in time, and the symbol's proximity to
  events for re-entry decisions. `valid_until` is the refresh time + 2 refresh intervals + 30 s:
  past it the state is stale and consumers block (fail safe).
- CalendarGate: the latest CalendarSignal per symbol, answering "may this symbol trade at ts"
  (signal-generator, risk-manager) and "what is its proximity" (reentry-matrix-svc).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal, Protocol

from pydantic import Field, StrictBool, StrictInt, StrictStr, model_validator

from eafix.contracts.events import Contract, Event
from eafix.contracts.primitives import Currency, Number, Symbol, Timestamp

Cal8 = Annotated[StrictStr, Field(pattern=r"^CAL8-[0-9]{8}-[0-9]{4}-[A-Z]{3}-[0-9]{3}$")]
Cal5 = Annotated[StrictStr, Field(pattern=r"^[0-9]{5}$")]
Title = Annotated[StrictStr, Field(min_length=1, max_length=200)]
Figure = Annotated[StrictStr, Field(min_length=1, max_length=40)]
SignalType = Annotated[StrictStr, Field(pattern=r"^[A-Z][A-Z0-9_]{0,39}$")]
ImpactName = Literal["HIGH", "MEDIUM", "LOW"]
GateStateName = Literal["CLEAR", "PRE_EVENT_BLOCK", "POST_EVENT_BLOCK", "BLOCKED"]
ProximityName = Literal["IM", "SH", "LG", "EX", "CD", "NONE"]


class CalendarEvent(Event):
    EVENT_TYPE: ClassVar[str] = "CalendarEvent"
    SCHEMA_VERSION: ClassVar[str] = "1.0"
    TOPIC: ClassVar[str] = "eafix.calendar.events"

    cal8: Cal8
    cal5: Cal5
    title: Title
    currency: Currency
    impact: ImpactName
    event_type: Literal["CPI", "NFP", "PMI", "RATE", "GDP", "DEFAULT"]
    signal_type: SignalType
    scheduled_at: Timestamp
    state: Literal["SCHEDULED", "ANTICIPATION_8HR", "ANTICIPATION_1HR", "ACTIVE", "COOLDOWN", "EXPIRED"]
    quality: Annotated[StrictInt, Field(ge=0, le=100)]
    forecast: Figure | None
    previous: Figure | None
    source: Title
    changed_at: Timestamp

    def event_time(self) -> datetime:  # the envelope's ts_event
        return self.changed_at


class CalendarRef(Contract):
    cal8: Cal8
    title: Title
    currency: Currency
    impact: ImpactName
    scheduled_at: Timestamp


class BlackoutWindow(Contract):
    cal8: Cal8
    title: Title
    currency: Currency
    impact: ImpactName
    scheduled_at: Timestamp
    start: Timestamp
    end: Timestamp  # start <= scheduled_at <= end by construction (not expressible in the schema)


class CalendarSignal(Event):
    EVENT_TYPE: ClassVar[str] = "CalendarSignal"
    SCHEMA_VERSION: ClassVar[str] = "1.0"
    TOPIC: ClassVar[str] = "eafix.calendar.signals"

    symbol: Symbol
    generated_at: Timestamp
    valid_until: Timestamp
    state: GateStateName
    allow_new_trades: StrictBool
    reason: Annotated[StrictStr, Field(min_length=1, max_length=500)] | None
    event: CalendarRef | None
    minutes_to_event: Number | None
    proximity: ProximityName
    proximity_event: Cal8 | None
    priority_weight: Annotated[StrictInt, Field(ge=0, le=12)]
    windows: Annotated[list[BlackoutWindow], Field(max_length=200)]

    @model_validator(mode="after")
    def _gate(self) -> CalendarSignal:
        if self.allow_new_trades != (self.state == "CLEAR"):
            raise ValueError("allow_new_trades is true exactly when state is CLEAR")
        return self

    def event_time(self) -> datetime:
        return self.generated_at


CALENDAR_MODELS: tuple[type[Event], ...] = (CalendarEvent, CalendarSignal)


class BlackoutGate(Protocol):
    """What signal-generator and risk-manager ask: why `symbol` must not trade at `ts`, or None."""

    def blackout(self, symbol: str, ts: datetime) -> str | None: ...


class CalendarGate:
    """The latest CalendarSignal per symbol. `required`: a symbol calendar-ingestor has said nothing
    about is blocked too (the chart sets it where calendar-ingestor runs)."""

    def __init__(self, *, required: bool = False) -> None:
        self.required = required
        self._latest: dict[str, CalendarSignal] = {}

    def update(self, signal: CalendarSignal) -> None:
        known = self._latest.get(signal.symbol)
        if known is None or signal.generated_at >= known.generated_at:
            self._latest[signal.symbol] = signal

    def latest(self, symbol: str) -> CalendarSignal | None:
        return self._latest.get(symbol)

    def blackout(self, symbol: str, ts: datetime) -> str | None:
        """Why `symbol` must not open a trade at `ts`, or None."""
        signal = self._latest.get(symbol)
        if signal is None:
            return f"no calendar state for {symbol}" if self.required else None
        if signal.state == "BLOCKED":
            return f"calendar blocked: {signal.reason}"
        if ts > signal.valid_until:
            return f"calendar state for {symbol} is stale (valid until {signal.valid_until:%Y-%m-%dT%H:%M:%SZ})"
        for w in signal.windows:
            if w.start <= ts <= w.end:
                side = "before" if ts < w.scheduled_at else "after"
                return f"{side} {w.impact} {w.currency} {w.title} at {w.scheduled_at:%Y-%m-%dT%H:%MZ} ({w.cal8})"
        return None

    def proximity(self, symbol: str, ts: datetime) -> str:
        """The symbol's proximity bucket as last published; NONE when unknown or stale."""
        signal = self._latest.get(symbol)
        if signal is None or ts > signal.valid_until:
            return "NONE"
        return signal.proximity


__all__ = ["CALENDAR_MODELS", "BlackoutGate", "BlackoutWindow", "CalendarEvent", "CalendarGate", "CalendarRef",
           "CalendarSignal"]
