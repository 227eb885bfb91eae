"""calendar-ingestor's bus stage: imports become CalendarEvents; every refresh, lifecycle transitions
become CalendarEvents and each tracked symbol gets a CalendarSignal (its gate, nearby windows,
proximity).

An import is all or nothing: a file with a rejected row changes nothing and its report says which
rows and why; a readable file is merged into the book, stored (events and the import's report in one
transaction) and then published. The gate is BLOCKED for every symbol while no calendar has been
imported and `require_calendar` is set (fail safe).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry

from eafix.calendar_ingestor.blackout import WindowConfig, gate
from eafix.calendar_ingestor.book import CalendarBook
from eafix.calendar_ingestor.entries import CalendarEntry
from eafix.calendar_ingestor.intake import Intake
from eafix.calendar_ingestor.repository import CalendarRepository, ImportRecord, InMemoryCalendarRepository
from eafix.calendar_ingestor.timing import Lifecycle, lifecycle, minutes_to
from eafix.calendar_ingestor.wire import event_message, signal_message
from eafix.contracts.calendar import CalendarSignal
from eafix.contracts.messaging import Messenger
from eafix.instruments import Instruments
from eafix.runtime import metric_names as mn

NO_CALENDAR = "no calendar imported yet"


@dataclass(frozen=True)
class CalendarConfig:
    symbols: tuple[str, ...] = ("EURUSD", "GBPUSD", "USDJPY", "XAUUSD")
    windows: WindowConfig = field(default_factory=WindowConfig)
    refresh_seconds: float = 30.0  # DES: 30 s refresh, stale after 2 x refresh + 30 s
    require_calendar: bool = True

    @property
    def valid_for(self) -> timedelta:
        return timedelta(seconds=2 * self.refresh_seconds + 30)


@dataclass
class CalendarStage:
    book: CalendarBook
    messenger: Messenger
    instruments: Instruments
    config: CalendarConfig = field(default_factory=CalendarConfig)
    repo: CalendarRepository = field(default_factory=InMemoryCalendarRepository)
    latest: dict[str, CalendarSignal] = field(default_factory=dict)
    registry: CollectorRegistry | None = None

    def __post_init__(self) -> None:
        self.metrics = mn.stage_metrics(self.registry, mn.CALENDAR_LAST_REFRESH, mn.BLACKOUT_ACTIVE)

    def currencies(self, symbol: str) -> tuple[str, str]:
        instrument = self.instruments[symbol]
        return (instrument.base, instrument.quote)

    async def import_intake(self, intake: Intake, source: str, content: bytes) -> ImportRecord:
        now = self.messenger.clock.now()
        digest = hashlib.sha256(content).hexdigest()
        if not intake.ok:
            record = ImportRecord.of(source, digest, now, intake, accepted=False)
            await self.repo.save_import(record, [])
            return record
        merge = self.book.merge(intake.rows, source)
        changed = [*merge.new, *merge.updated]
        record = ImportRecord.of(source, digest, now, intake, accepted=True, new=len(merge.new),
                                 updated=len(merge.updated), unchanged=merge.unchanged)
        await self.repo.save_import(record, changed)
        await self.messenger.publish([event_message(e, self._state(e, now), now)
                                      for e in changed])
        return record

    def _state(self, entry: CalendarEntry, now: datetime) -> Lifecycle:
        return self.book.states.get(entry.cal8) or lifecycle(entry.event_type, minutes_to(entry.event_time, now))

    async def on_clock(self) -> list[CalendarSignal]:
        now = self.messenger.clock.now()
        transitions = self.book.advance(now)
        if transitions:
            await self.repo.save_transitions(transitions)
            moved = [(entry, t.state) for t in transitions if (entry := self.book.get(t.cal8)) is not None]
            await self.messenger.publish([event_message(entry, state, now) for entry, state in moved])
        signals = [self.signal(symbol, now) for symbol in self.config.symbols]
        await self.messenger.publish(signals)
        self.latest.update({s.symbol: s for s in signals})
        if self.metrics is not None:
            self.metrics[mn.CALENDAR_LAST_REFRESH].set(now.timestamp())
            for s in signals:
                self.metrics[mn.BLACKOUT_ACTIVE].labels(s.symbol).set(0 if s.allow_new_trades else 1)
        return signals

    def untrusted(self) -> str | None:
        return NO_CALENDAR if self.config.require_calendar and not len(self.book) else None

    def signal(self, symbol: str, now: datetime) -> CalendarSignal:
        currencies = self.currencies(symbol)
        valid_for = self.config.valid_for
        windows = self.book.windows_near(currencies, self.config.windows, now - valid_for, now + valid_for)
        return signal_message(gate(symbol, windows, now, untrusted=self.untrusted()), windows,
                              self.book.proximity(currencies, now), valid_for)


__all__ = ["NO_CALENDAR", "CalendarConfig", "CalendarStage"]
