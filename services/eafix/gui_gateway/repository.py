"""The operator audit in PostgreSQL (schema `gateway`, migrations/gateway: append-only)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from eafix.gui_gateway.audit import AuditPage, AuditQuery, AuditRecord, page_of

COLUMNS = "id, recorded_at, actor, roles, action, reason, result, correlation_id, source, detail"


class PostgresOperatorAudit:
    """`pool` is an open psycopg_pool.AsyncConnectionPool."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def append(self, record: AuditRecord) -> AuditRecord:
        async with self._pool.connection() as conn:
            row = await (await conn.execute(
                "INSERT INTO gateway.operator_audit (recorded_at, actor, roles, action, reason, result, "
                "correlation_id, source, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (record.at, record.actor, record.roles, record.action, record.reason, record.result,
                 record.correlation_id, record.source, json.dumps(record.detail)))).fetchone()
        return replace(record, id=row[0])

    async def page(self, query: AuditQuery) -> AuditPage:
        where: list[str] = ["id > %s"]
        args: list[object] = [query.after]
        if query.action is not None:
            where.append("action = %s")
            args.append(query.action)
        if query.actor is not None:
            where.append("actor = %s")
            args.append(query.actor)
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(
                f"SELECT {COLUMNS} FROM gateway.operator_audit WHERE {' AND '.join(where)} ORDER BY id LIMIT %s",
                (*args, query.limit + 1))).fetchall()
        return page_of([AuditRecord(at=r[1], actor=r[2], roles=r[3], action=r[4], reason=r[5], result=r[6],
                                    correlation_id=r[7], source=r[8], detail=r[9], id=r[0]) for r in rows],
                       query.limit)
