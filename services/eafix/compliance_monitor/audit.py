"""The compliance audit trail: every alert received, decision taken and action done, append-only.
A repository port, in memory (tests, `eafix serve` without PostgreSQL) or in PostgreSQL (schema
`compliance`, migrations/compliance: append-only, pruned past the retention by compliance.prune_audit())."""

from __future__ import annotations

import json
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


class PostgresAuditLog:
    """`pool` is an open psycopg_pool.AsyncConnectionPool."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def append(self, entry: AuditEntry) -> AuditEntry:
        async with self._pool.connection() as conn:
            row = await (await conn.execute(
                "INSERT INTO compliance.audit (recorded_at, kind, subject, actor, detail) "
                "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (entry.at, entry.kind, entry.subject, entry.actor, json.dumps(entry.detail)))).fetchone()
        return AuditEntry(entry.at, entry.kind, entry.subject, dict(entry.detail), entry.actor, row[0])

    async def page(self, after: int, limit: int) -> AuditPage:
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(
                "SELECT id, recorded_at, kind, subject, actor, detail FROM compliance.audit WHERE id > %s "
                "ORDER BY id LIMIT %s", (after, limit + 1))).fetchall()
        entries = [AuditEntry(r[1], r[2], r[3], r[5], r[4], r[0]) for r in rows[:limit]]
        return AuditPage(entries, entries[-1].id if len(rows) > limit else None)

    async def prune(self) -> int:
        """Delete the rows past the retention in force (the pruning job); returns how many."""
        async with self._pool.connection() as conn:
            row = await (await conn.execute("SELECT compliance.prune_audit()")).fetchone()
        return int(row[0])
