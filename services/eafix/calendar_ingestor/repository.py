"""Persistence of calendar-ingestor: a Protocol and two implementations with one semantics.

- `InMemoryCalendarRepository`: tests and the backtest.
- `PostgresCalendarRepository`: schema `calendar` (services/eafix/migrations/calendar/*.sql): the
  events (one row per cal8, updated by later imports), every import's report (accepted or not, with
  its skipped and rejected rows) and the lifecycle transitions (append-only).

`load()` is what a restart rebuilds the book from: the events and each one's latest state.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from eafix.calendar_ingestor.book import Transition
from eafix.calendar_ingestor.entries import CalendarEntry, EventType, Impact, Kind
from eafix.calendar_ingestor.intake import Intake, RowProblem
from eafix.calendar_ingestor.timing import Lifecycle


@dataclass(frozen=True)
class ImportRecord:
    import_id: str
    source: str
    sha256: str
    imported_at: datetime
    accepted: bool
    rows: int  # rows taken from the file (0 when not accepted)
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: tuple[RowProblem, ...] = ()
    rejected: tuple[RowProblem, ...] = ()

    @classmethod
    def of(cls, source: str, digest: str, at: datetime, intake: Intake, *, accepted: bool, new: int = 0,
           updated: int = 0, unchanged: int = 0) -> ImportRecord:
        return cls(f"IMP-{at:%Y%m%dT%H%M%S}-{digest[:12]}", source, digest, at, accepted,
                   len(intake.rows) if accepted else 0, new, updated, unchanged, intake.skipped, intake.rejected)

    def report(self) -> dict[str, Any]:
        return {"import_id": self.import_id, "source": self.source, "sha256": self.sha256,
                "imported_at": self.imported_at.isoformat().replace("+00:00", "Z"), "accepted": self.accepted,
                "rows": self.rows, "new": self.new, "updated": self.updated, "unchanged": self.unchanged,
                "skipped": [{"line": p.line, "reason": p.reason} for p in self.skipped],
                "rejected": [{"line": p.line, "reason": p.reason} for p in self.rejected]}


@dataclass(frozen=True)
class Snapshot:
    entries: list[CalendarEntry] = field(default_factory=list)
    states: dict[str, Lifecycle] = field(default_factory=dict)


class CalendarRepository(Protocol):
    async def save_import(self, record: ImportRecord, changed: Sequence[CalendarEntry]) -> None:
        """The import's report and the events it added or changed, atomically."""
        ...

    async def save_transitions(self, transitions: Sequence[Transition]) -> None: ...

    async def load(self) -> Snapshot: ...

    async def imports(self, limit: int) -> list[ImportRecord]:
        """The latest imports, newest first."""
        ...

    async def has_digest(self, sha256: str) -> bool:
        """Whether a file with these bytes was imported (accepted or not) before."""
        ...


class InMemoryCalendarRepository:
    def __init__(self) -> None:
        self.entries: dict[str, CalendarEntry] = {}
        self.records: list[ImportRecord] = []
        self.transitions: list[Transition] = []

    async def save_import(self, record: ImportRecord, changed: Sequence[CalendarEntry]) -> None:
        self.records.append(record)
        self.entries.update({e.cal8: e for e in changed})

    async def save_transitions(self, transitions: Sequence[Transition]) -> None:
        self.transitions.extend(transitions)

    async def load(self) -> Snapshot:
        states = {t.cal8: t.state for t in self.transitions}
        return Snapshot(list(self.entries.values()), states)

    async def imports(self, limit: int) -> list[ImportRecord]:
        return list(reversed(self.records))[:limit]

    async def has_digest(self, sha256: str) -> bool:
        return any(r.sha256 == sha256 for r in self.records)


# --- PostgreSQL ---------------------------------------------------------------------------------------

_EVENT_COLUMNS = ("cal8", "cal5", "kind", "title", "currency", "impact", "scheduled_at", "event_type",
                  "signal_type", "quality", "forecast", "previous", "url", "source")
_UPSERT = (f"INSERT INTO calendar.events ({', '.join(_EVENT_COLUMNS)}) "
           f"VALUES ({', '.join(['%s'] * len(_EVENT_COLUMNS))}) ON CONFLICT (cal8) DO UPDATE SET "
           + ", ".join(f"{c} = EXCLUDED.{c}" for c in _EVENT_COLUMNS[1:]) + ", updated_at = now()")


def _event_row(e: CalendarEntry) -> tuple[Any, ...]:
    return (e.cal8, e.cal5, e.kind.value, e.title, e.currency, e.impact.value, e.event_time, e.event_type.value,
            e.signal_type, e.quality, e.forecast, e.previous, e.url, e.source)


def _entry(row: Sequence[Any]) -> CalendarEntry:
    (cal8, cal5, kind, title, currency, impact, at, event_type, signal_type, quality, forecast, previous, url,
     source) = row
    return CalendarEntry(cal8=cal8, cal5=cal5, kind=Kind(kind), title=title, currency=currency, impact=Impact(impact),
                         event_time=at, event_type=EventType(event_type), signal_type=signal_type, quality=quality,
                         forecast=forecast, previous=previous, url=url, source=source)


def _problems(doc: list[dict[str, Any]]) -> tuple[RowProblem, ...]:
    return tuple(RowProblem(int(p["line"]), str(p["reason"])) for p in doc)


class PostgresCalendarRepository:
    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def save_import(self, record: ImportRecord, changed: Sequence[CalendarEntry]) -> None:
        report = record.report()
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO calendar.imports (import_id, source, sha256, imported_at, accepted, rows, new, updated,"
                " unchanged, skipped, rejected) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (import_id) DO NOTHING",
                (record.import_id, record.source, record.sha256, record.imported_at, record.accepted, record.rows,
                 record.new, record.updated, record.unchanged, json.dumps(report["skipped"]),
                 json.dumps(report["rejected"])))
            for entry in changed:
                await conn.execute(_UPSERT, _event_row(entry))

    async def save_transitions(self, transitions: Sequence[Transition]) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            for t in transitions:
                await conn.execute(
                    "INSERT INTO calendar.state_transitions (cal8, previous, state, at) VALUES (%s, %s, %s, %s)",
                    (t.cal8, None if t.previous is None else t.previous.value, t.state.value, t.at))

    async def load(self) -> Snapshot:
        async with self._pool.connection() as conn:
            events = await (await conn.execute(
                f"SELECT {', '.join(_EVENT_COLUMNS)} FROM calendar.events ORDER BY scheduled_at, cal8")).fetchall()
            states = await (await conn.execute(
                "SELECT DISTINCT ON (cal8) cal8, state FROM calendar.state_transitions ORDER BY cal8, id DESC"
            )).fetchall()
        return Snapshot([_entry(r) for r in events], {c: Lifecycle(s) for c, s in states})

    async def imports(self, limit: int) -> list[ImportRecord]:
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(
                "SELECT import_id, source, sha256, imported_at, accepted, rows, new, updated, unchanged, skipped,"
                " rejected FROM calendar.imports ORDER BY imported_at DESC, import_id DESC LIMIT %s", (limit,)
            )).fetchall()
        return [ImportRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], _problems(r[9]), _problems(r[10]))
                for r in rows]

    async def has_digest(self, sha256: str) -> bool:
        async with self._pool.connection() as conn:
            row = await (await conn.execute("SELECT 1 FROM calendar.imports WHERE sha256 = %s LIMIT 1",
                                            (sha256,))).fetchone()
        return row is not None


__all__ = ["CalendarRepository", "ImportRecord", "InMemoryCalendarRepository", "PostgresCalendarRepository",
           "Snapshot"]
