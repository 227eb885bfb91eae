"""Persistence of reentry-matrix-svc: a Protocol and two implementations with one semantics.

- `InMemoryReentryRepository`: tests and the backtest.
- `PostgresReentryRepository`: schema `reentry` (services/eafix/migrations/reentry/*.sql), psycopg 3
  async through an `AsyncConnectionPool`; every parameter is bound.

The stage stores what the engine learnt after each message, before the bus acknowledges it: the
origin of a signal, the order of an intent, a verdict together with the re-entry it scheduled (one
transaction), and the publication of a due re-entry. Both implementations ignore a second copy of
the same key (redelivery). `load(since)` is what a restart rebuilds the engine from (`Snapshot`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from eafix.contracts.primitives import Direction
from eafix.reentry_matrix_svc.classify import Duration, Outcome
from eafix.reentry_matrix_svc.engine import OrderInfo, Origin, ReentrySignal, Snapshot, Verdict
from eafix.reentry_matrix_svc.ledger import Refusal
from eafix.reentry_matrix_svc.matrix import Action, Generation, Proximity


class ReentryRepository(Protocol):
    async def save_origin(self, origin: Origin, seen_at: datetime) -> None: ...

    async def save_order(self, client_order_id: str, order: OrderInfo, seen_at: datetime) -> None: ...

    async def save_verdict(self, verdict: Verdict, scheduled: ReentrySignal | None) -> None:
        """The verdict and the re-entry it scheduled, atomically."""
        ...

    async def mark_published(self, signal_id: str, at: datetime) -> None: ...

    async def load(self, since: datetime) -> Snapshot:
        """Origins, orders and verdicts seen since `since`, and every re-entry not published yet."""
        ...

    async def chain(self, trade_id: str) -> list[Verdict]:
        """The verdicts of the chain `trade_id` belongs to (the original trade's and its re-entries'),
        oldest first; empty when no decision names it."""
        ...


# --- the scheduled re-entry as JSON (the `payload` column) -------------------------------------------

def reentry_to_json(reentry: ReentrySignal) -> dict[str, Any]:
    return {k: (format(v, "f") if isinstance(v, Decimal) else v.isoformat() if isinstance(v, datetime)
                else str(v) if hasattr(v, "value") else v) for k, v in asdict(reentry).items()}


def reentry_from_json(doc: dict[str, Any]) -> ReentrySignal:
    values = dict(doc)
    for name in ("sl_pips", "tp_pips", "size_multiplier", "max_lots", "fallback_price"):
        values[name] = Decimal(values[name])
    values["due_at"] = datetime.fromisoformat(values["due_at"])
    values["direction"] = Direction(values["direction"])
    values["generation"] = Generation(values["generation"])
    return ReentrySignal(**values)


class InMemoryReentryRepository:
    def __init__(self) -> None:
        self._origins: dict[str, tuple[Origin, datetime]] = {}
        self._orders: dict[str, tuple[OrderInfo, datetime]] = {}
        self._verdicts: dict[str, Verdict] = {}  # trade_id -> verdict
        self._scheduled: dict[str, tuple[ReentrySignal, datetime | None]] = {}

    async def save_origin(self, origin: Origin, seen_at: datetime) -> None:
        self._origins.setdefault(origin.signal_id, (origin, seen_at))

    async def save_order(self, client_order_id: str, order: OrderInfo, seen_at: datetime) -> None:
        self._orders.setdefault(client_order_id, (order, seen_at))

    async def save_verdict(self, verdict: Verdict, scheduled: ReentrySignal | None) -> None:
        if verdict.trade_id in self._verdicts:
            return
        self._verdicts[verdict.trade_id] = verdict
        if scheduled is not None:
            self._scheduled.setdefault(scheduled.signal_id, (scheduled, None))

    async def mark_published(self, signal_id: str, at: datetime) -> None:
        found = self._scheduled.get(signal_id)
        if found is not None and found[1] is None:
            self._scheduled[signal_id] = (found[0], at)

    async def load(self, since: datetime) -> Snapshot:
        return Snapshot(
            tuple(o for o, seen in self._origins.values() if seen >= since),
            tuple((cid, o) for cid, (o, seen) in self._orders.items() if seen >= since),
            tuple(sorted((v for v in self._verdicts.values() if v.decided_at >= since), key=lambda v: v.decided_at)),
            tuple(sorted((r for r, published in self._scheduled.values() if published is None),
                         key=lambda r: (r.due_at, r.signal_id))))

    async def chain(self, trade_id: str) -> list[Verdict]:
        member = self._verdicts.get(trade_id)
        original = trade_id if member is None else member.original_trade_id
        return sorted((v for v in self._verdicts.values() if v.original_trade_id == original),
                      key=lambda v: (v.decided_at, v.decision_id))


_VERDICT_COLUMNS = ("decision_id", "trade_id", "original_trade_id", "symbol", "family", "generation",
                    "next_generation", "outcome", "duration", "proximity", "action", "tier", "parameter_set",
                    "size_multiplier", "delay_minutes", "confidence_adjustment", "hybrid_id", "refusal", "decided_at")
_INSERT_ORIGIN = ("INSERT INTO reentry.origins (signal_id, family, timeframe, confidence, generation, parent_trade_id, "
                  "seen_at) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (signal_id) DO NOTHING")
_INSERT_ORDER = ("INSERT INTO reentry.orders (client_order_id, signal_id, sl_pips, tp_pips, seen_at) "
                 "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (client_order_id) DO NOTHING")
_INSERT_VERDICT = (f"INSERT INTO reentry.decisions ({', '.join(_VERDICT_COLUMNS)}, approved) "
                   f"VALUES ({', '.join(['%s'] * (len(_VERDICT_COLUMNS) + 1))}) ON CONFLICT (trade_id) DO NOTHING "
                   "RETURNING decision_id")
_INSERT_SCHEDULED = ("INSERT INTO reentry.scheduled (signal_id, decision_id, payload, due_at) VALUES (%s, %s, %s, %s) "
                     "ON CONFLICT (signal_id) DO NOTHING")
_SELECT_VERDICTS = f"SELECT {', '.join(_VERDICT_COLUMNS)} FROM reentry.decisions"


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _verdict(row: tuple) -> Verdict:
    v = dict(zip(_VERDICT_COLUMNS, row, strict=True))
    return Verdict(
        decision_id=v["decision_id"], trade_id=v["trade_id"], original_trade_id=v["original_trade_id"],
        symbol=v["symbol"], family=v["family"], generation=Generation(v["generation"]),
        next_generation=Generation(v["next_generation"]) if v["next_generation"] else None,
        outcome=Outcome(v["outcome"]), duration=Duration(v["duration"]), proximity=Proximity(v["proximity"]),
        action=Action(v["action"]), tier=v["tier"], parameter_set=v["parameter_set"],
        size_multiplier=v["size_multiplier"], delay_minutes=v["delay_minutes"],
        confidence_adjustment=v["confidence_adjustment"], hybrid_id=v["hybrid_id"],
        refusal=Refusal(v["refusal"]) if v["refusal"] else None, decided_at=_utc(v["decided_at"]))


class PostgresReentryRepository:
    """Schema `reentry` in PostgreSQL. `pool` is an open psycopg_pool.AsyncConnectionPool."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def save_origin(self, origin: Origin, seen_at: datetime) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(_INSERT_ORIGIN, (origin.signal_id, origin.family, origin.timeframe, origin.confidence,
                                                str(origin.generation), origin.parent_trade_id, seen_at))

    async def save_order(self, client_order_id: str, order: OrderInfo, seen_at: datetime) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(_INSERT_ORDER, (client_order_id, order.signal_id, order.sl_pips, order.tp_pips,
                                               seen_at))

    async def save_verdict(self, verdict: Verdict, scheduled: ReentrySignal | None) -> None:
        values = [getattr(verdict, c) for c in _VERDICT_COLUMNS]
        values = [str(v) if hasattr(v, "value") else v for v in values]
        async with self._pool.connection() as conn, conn.transaction():
            inserted = await (await conn.execute(_INSERT_VERDICT, (*values, verdict.approved))).fetchone()
            if inserted is not None and scheduled is not None:
                await conn.execute(_INSERT_SCHEDULED, (scheduled.signal_id, verdict.decision_id,
                                                       json.dumps(reentry_to_json(scheduled)), scheduled.due_at))

    async def mark_published(self, signal_id: str, at: datetime) -> None:
        async with self._pool.connection() as conn:
            await conn.execute("UPDATE reentry.scheduled SET published_at = %s WHERE signal_id = %s "
                               "AND published_at IS NULL", (at, signal_id))

    async def load(self, since: datetime) -> Snapshot:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            origins = await (await conn.execute(
                "SELECT signal_id, family, timeframe, confidence, generation, parent_trade_id FROM reentry.origins "
                "WHERE seen_at >= %s ORDER BY seen_at", (since,))).fetchall()
            orders = await (await conn.execute(
                "SELECT client_order_id, signal_id, sl_pips, tp_pips FROM reentry.orders WHERE seen_at >= %s "
                "ORDER BY seen_at", (since,))).fetchall()
            verdicts = await (await conn.execute(
                f"{_SELECT_VERDICTS} WHERE decided_at >= %s ORDER BY decided_at, decision_id", (since,))).fetchall()
            pending = await (await conn.execute(
                "SELECT payload FROM reentry.scheduled WHERE published_at IS NULL ORDER BY due_at, signal_id"
            )).fetchall()
        return Snapshot(
            tuple(Origin(r[0], r[1], r[2], r[3], Generation(r[4]), r[5]) for r in origins),
            tuple((r[0], OrderInfo(r[1], r[2], r[3])) for r in orders),
            tuple(_verdict(r) for r in verdicts),
            tuple(reentry_from_json(r[0]) for r in pending))

    async def chain(self, trade_id: str) -> list[Verdict]:
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(
                f"{_SELECT_VERDICTS} WHERE original_trade_id = COALESCE("
                "(SELECT original_trade_id FROM reentry.decisions WHERE trade_id = %s), %s) "
                "ORDER BY decided_at, decision_id", (trade_id, trade_id))).fetchall()
        return [_verdict(r) for r in rows]


__all__ = ["InMemoryReentryRepository", "PostgresReentryRepository", "ReentryRepository", "reentry_from_json",
           "reentry_to_json"]
