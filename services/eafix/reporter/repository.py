"""Persistence of the reporter's ledger: a Protocol and two implementations with one semantics.

- `InMemoryLedgerRepository`: unit tests and backtests;
- `PostgresLedgerRepository`: schema `reports` (services/eafix/migrations/reports/*.sql), psycopg 3
  async through an `AsyncConnectionPool`; every parameter is bound.

`append` stores entries all-or-nothing; an entry whose id is already stored is skipped (redelivery),
so the ledger counts a trade once. `load` returns every entry, in order signals, orders, fills, trades.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from eafix.contracts import Direction, TradeClosed
from eafix.reporter.book import Entry, FillEntry, OrderEntry, SignalEntry, TradeEntry

__all__ = ["InMemoryLedgerRepository", "LedgerRepository", "PostgresLedgerRepository"]


class LedgerRepository(Protocol):
    async def append(self, entries: Sequence[Entry]) -> None: ...

    async def load(self) -> list[Entry]: ...


def _key(entry: Entry) -> tuple[str, str]:
    if isinstance(entry, SignalEntry):
        return "signal", entry.signal_id
    if isinstance(entry, OrderEntry | FillEntry):
        return type(entry).__name__, entry.client_order_id
    return "trade", entry.trade.trade_id


class InMemoryLedgerRepository:
    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], Entry] = {}

    async def append(self, entries: Sequence[Entry]) -> None:
        for entry in entries:
            self._entries.setdefault(_key(entry), entry)

    async def load(self) -> list[Entry]:
        order = (SignalEntry, OrderEntry, FillEntry, TradeEntry)
        return sorted(self._entries.values(), key=lambda e: order.index(type(e)))


_INSERT_SIGNAL = ("INSERT INTO reports.signals (signal_id, strategy, symbol, ts) VALUES (%s, %s, %s, %s) "
                  "ON CONFLICT (signal_id) DO NOTHING")
_INSERT_ORDER = ("INSERT INTO reports.orders (client_order_id, signal_id, symbol, direction, lots, entry_price, "
                 "submitted_at, sl_pips, tp_pips) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                 "ON CONFLICT (client_order_id) DO NOTHING")
_INSERT_FILL = ("INSERT INTO reports.fills (client_order_id, symbol, filled_lots, avg_price, filled_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (client_order_id) DO NOTHING")
_INSERT_TRADE = ("INSERT INTO reports.trades (trade_id, close_time, payload) VALUES (%s, %s, %s::jsonb) "
                 "ON CONFLICT (trade_id) DO NOTHING")


def _row(entry: Entry) -> tuple[str, tuple[Any, ...]]:
    if isinstance(entry, SignalEntry):
        return _INSERT_SIGNAL, (entry.signal_id, entry.strategy, entry.symbol, entry.ts)
    if isinstance(entry, OrderEntry):
        return _INSERT_ORDER, (entry.client_order_id, entry.signal_id, entry.symbol, entry.direction.value,
                               entry.lots, entry.entry_price, entry.submitted_at, entry.sl_pips, entry.tp_pips)
    if isinstance(entry, FillEntry):
        return _INSERT_FILL, (entry.client_order_id, entry.symbol, entry.filled_lots, entry.avg_price,
                              entry.filled_at)
    trade = entry.trade
    return _INSERT_TRADE, (trade.trade_id, trade.close_time, trade.model_dump_json())


class PostgresLedgerRepository:
    """Schema `reports` in PostgreSQL. `pool` is an open psycopg_pool.AsyncConnectionPool."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def append(self, entries: Sequence[Entry]) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            for entry in entries:
                await conn.execute(*_row(entry))

    async def load(self) -> list[Entry]:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            signals = await (await conn.execute(
                "SELECT signal_id, strategy, symbol, ts FROM reports.signals")).fetchall()
            orders = await (await conn.execute(
                "SELECT client_order_id, signal_id, symbol, direction, lots, entry_price, submitted_at, sl_pips, "
                "tp_pips FROM reports.orders")).fetchall()
            fills = await (await conn.execute(
                "SELECT client_order_id, symbol, filled_lots, avg_price, filled_at FROM reports.fills")).fetchall()
            trades = await (await conn.execute(
                "SELECT payload FROM reports.trades ORDER BY close_time, trade_id")).fetchall()
        entries: list[Entry] = [SignalEntry(*r) for r in signals]
        entries += [OrderEntry(r[0], r[1], r[2], Direction(r[3]), *r[4:]) for r in orders]
        entries += [FillEntry(*r) for r in fills]
        entries += [TradeEntry(TradeClosed.model_validate_json(json.dumps(r[0]))) for r in trades]
        return entries
