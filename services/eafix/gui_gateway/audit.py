"""The operator audit: every emergency control, login and refused authentication, append-only.
A repository port with an in-memory implementation (tests, `eafix serve` without PostgreSQL); the
PostgreSQL one (schema `gateway`) is in repository.py."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class AuditRecord:
    at: datetime
    actor: str  # principal name, or what was presented when authentication failed ("anonymous")
    roles: str  # comma-separated roles at the time
    action: str  # pause | resume | stop-all | close-all | login | auth-failure
    result: str  # ok | partial | failed | refused
    correlation_id: str
    source: str  # the client's address
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    id: int = 0  # assigned by the repository, increasing


@dataclass(frozen=True)
class AuditQuery:
    after: int = 0
    limit: int = 100
    action: str | None = None
    actor: str | None = None


@dataclass(frozen=True)
class AuditPage:
    records: list[AuditRecord]
    next_after: int | None  # pass as `after` for the next page; None on the last page


class OperatorAudit(Protocol):
    async def append(self, record: AuditRecord) -> AuditRecord: ...

    async def page(self, query: AuditQuery) -> AuditPage: ...


def page_of(rows: list[AuditRecord], limit: int) -> AuditPage:
    """`rows` fetched with limit + 1: the page and whether another follows."""
    shown = rows[:limit]
    return AuditPage(shown, shown[-1].id if len(rows) > limit else None)


@dataclass
class InMemoryOperatorAudit:
    records: list[AuditRecord] = field(default_factory=list)

    async def append(self, record: AuditRecord) -> AuditRecord:
        stored = replace(record, detail=dict(record.detail), id=len(self.records) + 1)
        self.records.append(stored)
        return stored

    async def page(self, query: AuditQuery) -> AuditPage:
        rows = [r for r in self.records if r.id > query.after and query.action in (None, r.action)
                and query.actor in (None, r.actor)]
        return page_of(rows[: query.limit + 1], query.limit)
