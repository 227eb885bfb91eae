"""The compliance audit trail: every alert received, decision taken and action done, append-only.
A repository port with an in-memory implementation (tests, `eafix serve` without PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    kind: str  # alert | decision | action | approval
    subject: str  # the alert fingerprint, or "circuit-breaker"
    detail: dict[str, Any]
    actor: str = "compliance-monitor"
    id: int = 0  # assigned by the repository, increasing


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_after: int | None  # pass as `after` for the next page; None on the last page


class AuditLog(Protocol):
    async def append(self, entry: AuditEntry) -> AuditEntry: ...

    async def page(self, after: int, limit: int) -> AuditPage: ...


@dataclass
class InMemoryAuditLog:
    entries: list[AuditEntry] = field(default_factory=list)

    async def append(self, entry: AuditEntry) -> AuditEntry:
        stored = AuditEntry(entry.at, entry.kind, entry.subject, dict(entry.detail), entry.actor,
                            len(self.entries) + 1)
        self.entries.append(stored)
        return stored

    async def page(self, after: int, limit: int) -> AuditPage:
        rows = [e for e in self.entries if e.id > after][: limit + 1]
        more = len(rows) > limit
        rows = rows[:limit]
        return AuditPage(rows, rows[-1].id if more else None)
