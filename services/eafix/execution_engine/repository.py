"""Storage of orders, transitions, fills (schema `orders`), positions and trades (schema `trades`).

`ExecutionRepository` is the port; `InMemoryExecutionRepository` (unit tests, backtests) and
`PostgresExecutionRepository` (psycopg 3 async pool, parameters always bound) have the same
behaviour, which tests/service/test_execution_repository.py checks against both:

- `apply(changes, outbox=[...])` stores one `ChangeSet` and the outgoing envelopes of the same engine
  call (the transactional outbox, table `orders.outbox`) atomically (all of it or nothing), and returns
  the outbox ids; `unpublished(limit)` lists the outbox rows not marked yet in id order, and
  `mark_published(ids)` marks them (marking twice is a no-op);
- an order or position row is replaced only by a snapshot with a higher `version` (an older
  snapshot arriving late changes nothing); its identity columns never change;
- transitions (by client_order_id + version), fills (by fill_id) and trades (by trade_id) are
  append-only and inserting the same one twice is a no-op;
- a new order whose idempotency_key belongs to another order raises `IdempotencyConflict`, and a
  transition or fill of an order that is not stored raises `RepositoryError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol

from eafix.contracts import Envelope, parse_envelope
from eafix.contracts.messaging import LocalEnvelope, document, partition_key
from eafix.contracts.primitives import CloseReason, Direction, ExecutionStatus
from eafix.execution_engine.domain import (
    TERMINAL,
    ChangeSet,
    Fill,
    FillKind,
    Order,
    Position,
    PositionStatus,
    Trade,
    Transition,
)

if TYPE_CHECKING:  # psycopg is imported by the PostgreSQL repository only: the backtest starts without it
    from psycopg_pool import AsyncConnectionPool

MAX_LIMIT = 1000


class RepositoryError(Exception):
    pass


class IdempotencyConflict(RepositoryError):
    """A different order already holds this idempotency_key."""


@dataclass
class OpenState:
    """What an engine needs after a restart: live orders, open positions, their fills' ids."""

    orders: list[Order] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    fill_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class OutboxMessage:
    """An envelope to publish, on its event's topic under its partition key."""

    envelope: Envelope | LocalEnvelope

    @property
    def topic(self) -> str:
        return self.envelope.data.TOPIC

    @property
    def key(self) -> str | None:
        return partition_key(self.envelope)


@dataclass(frozen=True)
class OutboxRow:
    """A stored outbox message (`id` gives the publishing order)."""

    id: int
    message: OutboxMessage


def _check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


class ExecutionRepository(Protocol):
    async def apply(self, changes: ChangeSet, outbox: Sequence[OutboxMessage] = ()) -> list[int]:
        """Store `changes` and `outbox` in one transaction; the outbox rows' ids, in `outbox` order."""
        ...

    async def unpublished(self, limit: int = 100) -> list[OutboxRow]:
        """Outbox rows not marked published, oldest (lowest id) first."""
        ...

    async def mark_published(self, ids: Sequence[int]) -> None: ...

    async def prune_published(self, older_than_seconds: float) -> int:
        """Delete outbox rows published more than `older_than_seconds` ago; returns how many."""
        ...

    async def get_order(self, client_order_id: str) -> Order | None: ...

    async def get_order_by_idempotency_key(self, key: str) -> Order | None: ...

    async def list_orders(self, *, status: ExecutionStatus | None = None, symbol: str | None = None,
                          limit: int = 100) -> list[Order]:
        """Newest first (created_at, then client_order_id, descending)."""
        ...

    async def list_transitions(self, client_order_id: str) -> list[Transition]:
        """Oldest first (by version)."""
        ...

    async def list_fills(self, client_order_id: str) -> list[Fill]:
        """In time order."""
        ...

    async def get_position(self, position_id: str) -> Position | None: ...

    async def list_positions(self, *, status: PositionStatus | None = None, symbol: str | None = None,
                             limit: int = MAX_LIMIT) -> list[Position]:
        """Newest first (open_time, then position_id, descending)."""
        ...

    async def get_trade(self, trade_id: str) -> Trade | None: ...

    async def list_trades(self, *, symbol: str | None = None, limit: int = 100) -> list[Trade]:
        """Newest first (close_time, then trade_id, descending)."""
        ...

    async def load_open_state(self) -> OpenState: ...


# --- in memory ---------------------------------------------------------------------------------------------

class InMemoryExecutionRepository:
    def __init__(self) -> None:
        self._orders: dict[str, Order] = {}
        self._keys: dict[str, str] = {}
        self._transitions: dict[tuple[str, int], Transition] = {}
        self._fills: dict[str, Fill] = {}
        self._positions: dict[str, Position] = {}
        self._trades: dict[str, Trade] = {}
        self._outbox: dict[int, OutboxMessage] = {}  # unpublished only, in id order
        self._next_outbox_id = 1

    async def apply(self, changes: ChangeSet, outbox: Sequence[OutboxMessage] = ()) -> list[int]:
        # validate everything first, so a refused change set leaves nothing behind
        known = set(self._orders)
        for order in changes.orders:
            owner = self._keys.get(order.idempotency_key)
            if owner is not None and owner != order.client_order_id:
                raise IdempotencyConflict(f"idempotency_key {order.idempotency_key} belongs to order {owner}")
            known.add(order.client_order_id)
        keys = [o.idempotency_key for o in changes.orders if o.client_order_id not in self._orders]
        if len(keys) != len(set(keys)):
            raise IdempotencyConflict("two new orders share an idempotency_key")
        for owner_id in [t.client_order_id for t in changes.transitions] + [f.client_order_id for f in changes.fills]:
            if owner_id not in known:
                raise RepositoryError(f"order {owner_id} is not stored")
        for order in changes.orders:
            stored = self._orders.get(order.client_order_id)
            if stored is None:
                self._orders[order.client_order_id] = order
                self._keys[order.idempotency_key] = order.client_order_id
            elif order.version > stored.version:
                self._orders[order.client_order_id] = _keep_identity(stored, order)
        for transition in changes.transitions:
            self._transitions.setdefault((transition.client_order_id, transition.version), transition)
        for fill in changes.fills:
            self._fills.setdefault(fill.fill_id, fill)
        for position in changes.positions:
            stored_position = self._positions.get(position.position_id)
            if stored_position is None or position.version > stored_position.version:
                self._positions[position.position_id] = position
        for trade in changes.trades:
            self._trades.setdefault(trade.trade_id, trade)
        ids = list(range(self._next_outbox_id, self._next_outbox_id + len(outbox)))
        self._next_outbox_id += len(outbox)
        self._outbox.update(zip(ids, outbox, strict=True))
        return ids

    async def unpublished(self, limit: int = 100) -> list[OutboxRow]:
        _check_limit(limit)
        return [OutboxRow(i, m) for i, m in islice(self._outbox.items(), limit)]

    async def mark_published(self, ids: Sequence[int]) -> None:
        for i in ids:
            self._outbox.pop(i, None)

    async def prune_published(self, older_than_seconds: float) -> int:
        return 0  # published rows are dropped when marked

    async def get_order(self, client_order_id: str) -> Order | None:
        return self._orders.get(client_order_id)

    async def get_order_by_idempotency_key(self, key: str) -> Order | None:
        owner = self._keys.get(key)
        return self._orders[owner] if owner is not None else None

    async def list_orders(self, *, status: ExecutionStatus | None = None, symbol: str | None = None,
                          limit: int = 100) -> list[Order]:
        _check_limit(limit)
        rows = [o for o in self._orders.values()
                if (status is None or o.status is status) and (symbol is None or o.symbol == symbol)]
        rows.sort(key=lambda o: (o.created_at, o.client_order_id), reverse=True)
        return rows[:limit]

    async def list_transitions(self, client_order_id: str) -> list[Transition]:
        return sorted((t for (cid, _), t in self._transitions.items() if cid == client_order_id),
                      key=lambda t: t.version)

    async def list_fills(self, client_order_id: str) -> list[Fill]:
        return sorted((f for f in self._fills.values() if f.client_order_id == client_order_id),
                      key=lambda f: (f.ts, f.fill_id))

    async def get_position(self, position_id: str) -> Position | None:
        return self._positions.get(position_id)

    async def list_positions(self, *, status: PositionStatus | None = None, symbol: str | None = None,
                             limit: int = MAX_LIMIT) -> list[Position]:
        _check_limit(limit)
        rows = [p for p in self._positions.values()
                if (status is None or p.status is status) and (symbol is None or p.symbol == symbol)]
        rows.sort(key=lambda p: (p.open_time, p.position_id), reverse=True)
        return rows[:limit]

    async def get_trade(self, trade_id: str) -> Trade | None:
        return self._trades.get(trade_id)

    async def list_trades(self, *, symbol: str | None = None, limit: int = 100) -> list[Trade]:
        _check_limit(limit)
        rows = [t for t in self._trades.values() if symbol is None or t.symbol == symbol]
        rows.sort(key=lambda t: (t.close_time, t.trade_id), reverse=True)
        return rows[:limit]

    async def load_open_state(self) -> OpenState:
        orders = [o for o in self._orders.values() if o.status not in TERMINAL]
        live = {o.client_order_id for o in orders}
        return OpenState(orders=orders,
                         positions=[p for p in self._positions.values() if p.status is PositionStatus.OPEN],
                         fill_ids=[f.fill_id for f in self._fills.values() if f.client_order_id in live])


_ORDER_IDENTITY = ("idempotency_key", "signal_id", "symbol", "direction", "lots", "sl_pips", "tp_pips",
                   "entry_price", "risk_percent", "account_balance", "account_currency", "created_at")


def _keep_identity(stored: Order, new: Order) -> Order:
    return replace(new, **{name: getattr(stored, name) for name in _ORDER_IDENTITY})


# --- PostgreSQL -----------------------------------------------------------------------------------------------

_ORDER_COLUMNS = (
    "client_order_id", "idempotency_key", "signal_id", "symbol", "direction", "lots", "sl_pips", "tp_pips",
    "entry_price", "risk_percent", "account_balance", "account_currency", "status", "broker_order_id",
    "filled_lots", "fill_notional", "commission", "reason", "created_at", "updated_at", "submitted_at",
    "acknowledged_at", "version",
)
_ORDER_MUTABLE = ("status", "broker_order_id", "filled_lots", "fill_notional", "commission", "reason",
                  "updated_at", "submitted_at", "acknowledged_at", "version")
_TRANSITION_COLUMNS = ("client_order_id", "version", "event", "from_status", "to_status", "at", "detail")
_FILL_COLUMNS = ("fill_id", "client_order_id", "kind", "symbol", "direction", "lots", "price", "commission", "ts")
_POSITION_COLUMNS = (
    "position_id", "client_order_id", "symbol", "direction", "account_currency", "lots", "open_notional",
    "open_price", "sl_price", "tp_price", "open_time", "commission", "status", "version", "broker_order_id",
    "close_requested_at", "close_price", "close_time", "close_reason", "pips", "pnl",
)
_POSITION_MUTABLE = tuple(c for c in _POSITION_COLUMNS if c not in (
    "position_id", "client_order_id", "symbol", "direction", "account_currency"))
_TRADE_COLUMNS = (
    "trade_id", "client_order_id", "symbol", "direction", "lots", "open_price", "close_price", "open_time",
    "close_time", "pips", "gross_pnl", "commission", "pnl", "account_currency", "close_reason",
)


def _insert(table: str, columns: tuple[str, ...], conflict: str, update: tuple[str, ...] = ()) -> str:
    # identifiers are this module's constants; values are always bound parameters
    sql = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
           f"ON CONFLICT ({conflict}) ")
    if not update:
        return sql + "DO NOTHING"
    short = table.split(".")[1]
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in update)
    return sql + f"DO UPDATE SET {sets} WHERE {short}.version < EXCLUDED.version"


_UPSERT_ORDER = _insert("orders.orders", _ORDER_COLUMNS, "client_order_id", _ORDER_MUTABLE)
_INSERT_TRANSITION = _insert("orders.transitions", _TRANSITION_COLUMNS, "client_order_id, version")
_INSERT_FILL = _insert("orders.fills", _FILL_COLUMNS, "fill_id")
_UPSERT_POSITION = _insert("trades.positions", _POSITION_COLUMNS, "position_id", _POSITION_MUTABLE)
_INSERT_TRADE = _insert("trades.trades", _TRADE_COLUMNS, "trade_id")
_INSERT_OUTBOX = "INSERT INTO orders.outbox (topic, key, envelope) VALUES (%s, %s, %s) RETURNING id"


def _db(value: Any) -> Any:
    """Enums go to the database as their text."""
    return value.value if isinstance(value, ExecutionStatus | Direction | CloseReason | FillKind | PositionStatus) \
        else value


def _params(record: Any, columns: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(_db(getattr(record, c)) for c in columns)


def _order(row: dict[str, Any]) -> Order:
    values = {c: row[c] for c in _ORDER_COLUMNS}
    values["direction"] = Direction(values["direction"])
    values["status"] = ExecutionStatus(values["status"])
    return Order(**values)


def _transition(row: dict[str, Any]) -> Transition:
    values = {c: row[c] for c in _TRANSITION_COLUMNS}
    values["from_status"] = ExecutionStatus(values["from_status"]) if values["from_status"] else None
    values["to_status"] = ExecutionStatus(values["to_status"])
    return Transition(**values)


def _fill(row: dict[str, Any]) -> Fill:
    values = {c: row[c] for c in _FILL_COLUMNS}
    values["kind"] = FillKind(values["kind"])
    values["direction"] = Direction(values["direction"])
    return Fill(**values)


def _position(row: dict[str, Any]) -> Position:
    values = {c: row[c] for c in _POSITION_COLUMNS}
    values["direction"] = Direction(values["direction"])
    values["status"] = PositionStatus(values["status"])
    values["close_reason"] = CloseReason(values["close_reason"]) if values["close_reason"] else None
    return Position(**values)


def _trade(row: dict[str, Any]) -> Trade:
    values = {c: row[c] for c in _TRADE_COLUMNS}
    values["direction"] = Direction(values["direction"])
    values["close_reason"] = CloseReason(values["close_reason"])
    return Trade(**values)


_TERMINAL_TEXT = [s.value for s in TERMINAL]


class PostgresExecutionRepository:
    """On a psycopg `AsyncConnectionPool` to the `eafix_trading` database (migrations applied)."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def _fetch(self, query: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        from psycopg.rows import dict_row

        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, tuple(params))
            return await cur.fetchall()

    async def apply(self, changes: ChangeSet, outbox: Sequence[OutboxMessage] = ()) -> list[int]:
        if not changes and not outbox:
            return []
        import psycopg
        from psycopg.types.json import Jsonb

        ids: list[int] = []
        try:
            async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                if changes.orders:
                    await cur.executemany(_UPSERT_ORDER, [_params(o, _ORDER_COLUMNS) for o in changes.orders])
                if changes.transitions:
                    await cur.executemany(_INSERT_TRANSITION,
                                          [_params(t, _TRANSITION_COLUMNS) for t in changes.transitions])
                if changes.fills:
                    await cur.executemany(_INSERT_FILL, [_params(f, _FILL_COLUMNS) for f in changes.fills])
                if changes.positions:
                    await cur.executemany(_UPSERT_POSITION,
                                          [_params(p, _POSITION_COLUMNS) for p in changes.positions])
                if changes.trades:
                    await cur.executemany(_INSERT_TRADE, [_params(t, _TRADE_COLUMNS) for t in changes.trades])
                for message in outbox:
                    await cur.execute(_INSERT_OUTBOX, (message.topic, message.key, Jsonb(document(message.envelope))))
                    row = await cur.fetchone()
                    assert row is not None  # INSERT ... RETURNING id returns its row
                    ids.append(row[0])
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name == "orders_idempotency_key_unique":
                raise IdempotencyConflict(exc.diag.message_detail or str(exc)) from exc
            raise RepositoryError(str(exc)) from exc
        except psycopg.errors.ForeignKeyViolation as exc:
            raise RepositoryError(exc.diag.message_detail or str(exc)) from exc
        return ids

    async def unpublished(self, limit: int = 100) -> list[OutboxRow]:
        rows = await self._fetch("SELECT id, topic, key, envelope FROM orders.outbox WHERE published_at IS NULL "
                                 "ORDER BY id LIMIT %s", (_check_limit(limit),))
        return [OutboxRow(r["id"], OutboxMessage(parse_envelope(r["envelope"]))) for r in rows]

    async def mark_published(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        async with self._pool.connection() as conn:
            await conn.execute("UPDATE orders.outbox SET published_at = now() WHERE id = ANY(%s) "
                               "AND published_at IS NULL", (list(ids),))

    async def prune_published(self, older_than_seconds: float) -> int:
        async with self._pool.connection() as conn:
            cur = await conn.execute("DELETE FROM orders.outbox WHERE published_at < now() - make_interval(secs => %s)",
                                     (older_than_seconds,))
            return cur.rowcount

    async def get_order(self, client_order_id: str) -> Order | None:
        rows = await self._fetch("SELECT * FROM orders.orders WHERE client_order_id = %s", (client_order_id,))
        return _order(rows[0]) if rows else None

    async def get_order_by_idempotency_key(self, key: str) -> Order | None:
        rows = await self._fetch("SELECT * FROM orders.orders WHERE idempotency_key = %s", (key,))
        return _order(rows[0]) if rows else None

    async def list_orders(self, *, status: ExecutionStatus | None = None, symbol: str | None = None,
                          limit: int = 100) -> list[Order]:
        rows = await self._fetch(
            "SELECT * FROM orders.orders WHERE (%s::text IS NULL OR status = %s) AND (%s::text IS NULL OR symbol = %s) "
            "ORDER BY created_at DESC, client_order_id DESC LIMIT %s",
            (_db(status), _db(status), symbol, symbol, _check_limit(limit)))
        return [_order(r) for r in rows]

    async def list_transitions(self, client_order_id: str) -> list[Transition]:
        rows = await self._fetch("SELECT * FROM orders.transitions WHERE client_order_id = %s ORDER BY version",
                                 (client_order_id,))
        return [_transition(r) for r in rows]

    async def list_fills(self, client_order_id: str) -> list[Fill]:
        rows = await self._fetch("SELECT * FROM orders.fills WHERE client_order_id = %s ORDER BY ts, fill_id",
                                 (client_order_id,))
        return [_fill(r) for r in rows]

    async def get_position(self, position_id: str) -> Position | None:
        rows = await self._fetch("SELECT * FROM trades.positions WHERE position_id = %s", (position_id,))
        return _position(rows[0]) if rows else None

    async def list_positions(self, *, status: PositionStatus | None = None, symbol: str | None = None,
                             limit: int = MAX_LIMIT) -> list[Position]:
        rows = await self._fetch(
            "SELECT * FROM trades.positions WHERE (%s::text IS NULL OR status = %s) "
            "AND (%s::text IS NULL OR symbol = %s) ORDER BY open_time DESC, position_id DESC LIMIT %s",
            (_db(status), _db(status), symbol, symbol, _check_limit(limit)))
        return [_position(r) for r in rows]

    async def get_trade(self, trade_id: str) -> Trade | None:
        rows = await self._fetch("SELECT * FROM trades.trades WHERE trade_id = %s", (trade_id,))
        return _trade(rows[0]) if rows else None

    async def list_trades(self, *, symbol: str | None = None, limit: int = 100) -> list[Trade]:
        rows = await self._fetch(
            "SELECT * FROM trades.trades WHERE (%s::text IS NULL OR symbol = %s) "
            "ORDER BY close_time DESC, trade_id DESC LIMIT %s", (symbol, symbol, _check_limit(limit)))
        return [_trade(r) for r in rows]

    async def load_open_state(self) -> OpenState:
        orders = [_order(r) for r in await self._fetch(
            "SELECT * FROM orders.orders WHERE status <> ALL(%s) ORDER BY created_at", (_TERMINAL_TEXT,))]
        positions = [_position(r) for r in await self._fetch(
            "SELECT * FROM trades.positions WHERE status = 'OPEN' ORDER BY open_time")]
        fills = await self._fetch(
            "SELECT f.fill_id FROM orders.fills f JOIN orders.orders o USING (client_order_id) "
            "WHERE o.status <> ALL(%s)", (_TERMINAL_TEXT,))
        return OpenState(orders=orders, positions=positions, fill_ids=[r["fill_id"] for r in fills])


__all__ = [
    "MAX_LIMIT",
    "ExecutionRepository",
    "IdempotencyConflict",
    "InMemoryExecutionRepository",
    "OpenState",
    "OutboxMessage",
    "OutboxRow",
    "PostgresExecutionRepository",
    "RepositoryError",
]
