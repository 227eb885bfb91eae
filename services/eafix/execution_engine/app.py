"""HTTP side of execution-engine, and the gateway that persists what the engine does.

`ExecutionGateway` is the one way callers (these routes, and the bus consumers wired elsewhere)
drive the engine: under one asyncio lock it calls the engine, stores the engine's `ChangeSet` in the
repository and publishes the output events. Storing happens before publishing (and, for the bus
consumer, before the ack), so a crash can repeat an event but never lose a stored order; a failed
store keeps the change set (and its outbox envelopes) and retries it before the next one.

With a `messenger` (the service process) the gateway keeps a transactional outbox: the outputs'
envelopes (caused by the handled envelope) are stored in the same transaction as the change set,
then published, then marked published. A crash between the store and the publish loses nothing:
`relay()` publishes the unmarked rows in id order, exactly as first built (same event ids); the
service runs it at start, after a lease takeover (`replace_engine`) and every few seconds. A failed
publish is logged, not raised (the outputs are stored): until a relay succeeds, every commit relays
the stored backlog first, so nothing new overtakes it. At least once: a row published but not marked
goes out again; consumers are idempotent on business keys. With a `publish` callback instead (no
outbox) the outputs are handed to it after the store and kept in memory until it succeeds.

Routes (`build_router`):
- `GET /api/v1/orders?status=&symbol=&limit=` newest first (limit 1..1000, default 100);
- `GET /api/v1/positions?status=OPEN|CLOSED&symbol=` (default: open positions);
- `POST /api/v1/positions/{position_id}/close`: 200 with the closed position and its trade, 202 when
  the broker answers later (MT4: the close is requested), 404 unknown id, 409 already closed,
  503 when the broker cannot close now (e.g. no price yet).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from eafix.contracts import parse_envelope
from eafix.contracts.events import Event, ExecutionReport, OrderIntent, TradeClosed
from eafix.contracts.primitives import PATTERNS, CloseReason, ExecutionStatus, format_timestamp
from eafix.execution_engine.domain import (
    ChangeSet,
    EngineOutput,
    ExecutionEngine,
    ExecutionError,
    Order,
    Position,
    PositionClosedError,
    PositionStatus,
    Trade,
    UnknownPositionError,
)
from eafix.execution_engine.repository import MAX_LIMIT, ExecutionRepository, OutboxMessage
from eafix.runtime.messaging import Messenger, document, partition_key

Publish = Callable[[Sequence[Event]], Awaitable[None]]
RELAY_BATCH = 500

log = logging.getLogger(__name__)


class PositionNotLoadedError(ExecutionError):
    """The repository has the position open but the engine does not (state not restored)."""


@dataclass(frozen=True)
class CloseResult:
    position: Position
    trade: TradeClosed | None  # None: the broker closes later (the close was requested)
    events: tuple[EngineOutput, ...] = ()  # the engine's outputs (published already if the gateway publishes)


class ExecutionGateway:
    def __init__(self, engine: ExecutionEngine, repo: ExecutionRepository, publish: Publish | None = None, *,
                 messenger: Messenger | None = None) -> None:
        if publish is not None and messenger is not None:
            raise ValueError("pass `publish` (no outbox) or `messenger` (outbox), not both")
        self.engine, self.repo = engine, repo
        self._publish = publish
        self.messenger = messenger
        self.lock = asyncio.Lock()
        # stored not yet: change sets with the outbox envelopes of the same engine call
        self._unsaved: list[tuple[ChangeSet, list[Any]]] = []
        self._unpublished: list[EngineOutput] = []  # `publish` mode only
        # outbox mode: rows may be stored and not published (a previous process, a failed publish);
        # until a relay empties the outbox, every commit relays first so that order is kept
        self._backlog = messenger is not None

    @property
    def publishes(self) -> bool:
        """True when the gateway publishes the outputs itself (it was given `publish` or `messenger`)."""
        return self._publish is not None or self.messenger is not None

    async def _commit(self, outputs: Sequence[EngineOutput], cause: Any = None) -> None:
        changes = self.engine.drain_changes()
        envelopes = self.messenger.envelopes(outputs, cause) if self.messenger is not None and outputs else []
        if changes or envelopes:
            self._unsaved.append((changes, envelopes))
        if self._publish is not None:
            self._unpublished.extend(outputs)
        stored: list[tuple[int, Any]] = []
        while self._unsaved:
            changes, envs = self._unsaved[0]
            outbox = [OutboxMessage(env.data.TOPIC, partition_key(env), document(env)) for env in envs]
            ids = await self.repo.apply(changes, outbox)
            self._unsaved.pop(0)
            stored.extend(zip(ids, envs, strict=True))
        if self.messenger is not None:
            await self._deliver(stored)
        elif self._unpublished and self._publish is not None:
            events, self._unpublished = self._unpublished, []
            try:
                await self._publish(events)
            except BaseException:
                self._unpublished[:0] = events  # at least once: publish them again next time
                raise

    async def _deliver(self, stored: list[tuple[int, Any]]) -> None:
        """Publish what was just stored (after the backlog, if there is one), then mark it."""
        if self._backlog:
            try:
                await self._relay()  # the backlog and the rows just stored, in id order
            except Exception as exc:
                log.warning("execution outputs stored, publishing deferred to the outbox relay: %s", exc)
            return
        if not stored:
            return
        assert self.messenger is not None
        try:
            await self.messenger.publish_envelopes([env for _, env in stored])
        except Exception as exc:
            self._backlog = True
            log.warning("execution outputs stored, publishing deferred to the outbox relay: %s", exc)
            return
        await self._mark([i for i, _ in stored])

    async def _mark(self, ids: list[int]) -> bool:
        try:
            await self.repo.mark_published(ids)
        except Exception as exc:  # harmless: a relay publishes them again (at least once)
            log.warning("outbox rows published but not marked (a relay republishes them): %s", exc)
            return False
        return True

    async def _relay(self) -> int:
        assert self.messenger is not None
        published = 0
        self._backlog = True
        while True:
            rows = await self.repo.unpublished(RELAY_BATCH)
            if not rows:
                break
            await self.messenger.publish_envelopes([parse_envelope(r.message.envelope) for r in rows])
            published += len(rows)
            if not await self._mark([r.id for r in rows]) or len(rows) < RELAY_BATCH:
                break  # unmarked rows would come back at once: the next relay takes them
        self._backlog = False
        return published

    def relays_on_reload(self) -> bool:
        """Whether `replace_engine` relays the outbox (a standby must not: the active replica publishes)."""
        return True

    async def relay(self) -> int:
        """Publish the outbox rows not marked published, in id order, and mark them; returns how many
        were published. Raises if publishing fails (the rows stay for the next relay)."""
        if self.messenger is None:
            return 0
        async with self.lock:
            return await self._relay()

    async def run(self, call: Callable[[], Sequence[EngineOutput]], cause: Any = None) -> list[EngineOutput]:
        """`call` the engine (e.g. `lambda: engine.on_tick(tick)`), store, publish (`cause`: the handled
        envelope, the outputs' causation); returns the outputs."""
        async with self.lock:
            outputs = list(call())
            await self._commit(outputs, cause)
            return outputs

    async def restore(self) -> None:
        """Load live orders and open positions after a restart."""
        async with self.lock:
            state = await self.repo.load_open_state()
            self.engine.restore(state.orders, state.positions, state.fill_ids)

    async def replace_engine(self, engine: ExecutionEngine,
                             on_replaced: Callable[[ExecutionEngine], None] | None = None) -> None:
        """Swap in `engine` (new, empty) restored from storage, e.g. when this replica takes over from
        another one that changed the orders meanwhile. Under the lock: what the current engine has not
        stored yet is stored first (raises if it still cannot be), then the open state is loaded into
        `engine`, which replaces the current one; `on_replaced(engine)` runs before the lock is released.
        With an outbox, the unpublished rows (of a crashed process, of the replica that stood down) are
        relayed before anything new is handled; if that fails, the next commit relays first."""
        async with self.lock:
            await self._commit([])
            state = await self.repo.load_open_state()
            engine.restore(state.orders, state.positions, state.fill_ids)
            self.engine = engine
            if on_replaced is not None:
                on_replaced(engine)
            if self.messenger is not None and self.relays_on_reload():
                try:
                    await self._relay()
                except Exception as exc:
                    log.warning("outbox relay after the reload failed (the next commit retries): %s", exc)

    async def order_intent(self, intent: OrderIntent, cause: Any = None) -> list[ExecutionReport]:
        """Exactly once per idempotency_key, also for keys the engine no longer remembers."""
        async with self.lock:
            if not self.engine.knows_idempotency_key(intent.idempotency_key):
                stored = await self.repo.get_order_by_idempotency_key(intent.idempotency_key)
                if stored is not None:
                    self.engine.remember(stored)
                    return []
            outputs = self.engine.on_order_intent(intent)
            await self._commit(outputs, cause)
            return outputs

    async def close_position(self, position_id: str, reason: CloseReason = CloseReason.MANUAL) -> CloseResult:
        async with self.lock:
            position = self.engine.position(position_id)
            if position is None:
                stored = await self.repo.get_position(position_id)
                if stored is None:
                    raise UnknownPositionError(position_id)
                if not stored.is_open:
                    raise PositionClosedError(f"position {position_id} is already closed")
                raise PositionNotLoadedError(f"position {position_id} is open in storage but not in the engine")
            if not position.is_open:
                raise PositionClosedError(f"position {position_id} is already closed")
            outputs = [] if position.close_requested_at is not None else self.engine.close_position(position_id,
                                                                                                    reason)
            await self._commit(outputs)
            trade = next((o for o in outputs if isinstance(o, TradeClosed)), None)
            current = self.engine.position(position_id)
            return CloseResult(current if current is not None else position, trade, tuple(outputs))


# --- JSON shapes ---------------------------------------------------------------------------------------------

def _text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return format_timestamp(value)
    if hasattr(value, "value"):  # StrEnum
        return value.value
    return value


class OrderOut(BaseModel):
    client_order_id: str
    idempotency_key: str
    signal_id: str
    symbol: str
    direction: str
    lots: str
    sl_pips: str
    tp_pips: str
    entry_price: str
    account_currency: str
    status: str
    broker_order_id: str | None
    filled_lots: str
    avg_price: str | None
    commission: str
    reason: str | None
    created_at: str
    updated_at: str
    submitted_at: str | None
    version: int

    @classmethod
    def of(cls, order: Order) -> OrderOut:
        return cls(**{name: _text(getattr(order, name)) for name in cls.model_fields})


class PositionOut(BaseModel):
    position_id: str
    client_order_id: str
    symbol: str
    direction: str
    lots: str
    open_price: str
    sl_price: str
    tp_price: str
    open_time: str
    commission: str
    account_currency: str
    status: str
    broker_order_id: str | None
    close_requested_at: str | None
    close_price: str | None
    close_time: str | None
    close_reason: str | None
    pips: str | None
    pnl: str | None

    @classmethod
    def of(cls, position: Position) -> PositionOut:
        return cls(**{name: _text(getattr(position, name)) for name in cls.model_fields})


class CloseOut(BaseModel):
    status: str  # CLOSED | CLOSE_REQUESTED
    position: PositionOut
    trade: dict[str, Any] | None  # the TradeClosed event (wire form)


def trade_out(trade: Trade | TradeClosed) -> dict[str, Any]:
    event = trade.to_event() if isinstance(trade, Trade) else trade
    return event.model_dump(mode="json")


# --- routes ---------------------------------------------------------------------------------------------------

SymbolQuery = Annotated[str | None, Query(pattern=PATTERNS["Symbol"], description="e.g. EURUSD")]
IdPath = Annotated[str, Path(pattern=PATTERNS["Id"])]


def build_router(engine: ExecutionEngine, repo: ExecutionRepository, *, publish: Publish | None = None,
                 gateway: ExecutionGateway | None = None) -> APIRouter:
    """The execution-engine API. Pass the `gateway` the bus consumers use, so both share its lock.

    `publish` receives the events of the routes' engine calls (a manual close: CLOSED report and
    TradeClosed): through the gateway created here, or, with a `gateway` that does not publish (the
    bus stage publishes its own outputs with their causation), by the route after the gateway stored
    them."""
    route_publish: Publish | None = None
    if gateway is None:
        gateway = ExecutionGateway(engine, repo, publish)
    elif publish is not None:
        if gateway.publishes:
            raise ValueError("the gateway publishes already; pass `publish` to the gateway or here, not both")
        route_publish = publish
    router = APIRouter(prefix="/api/v1", tags=["execution"])

    @router.get("/orders", response_model=list[OrderOut], summary="Orders, newest first")
    async def list_orders(status: ExecutionStatus | None = None, symbol: SymbolQuery = None,
                          limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100) -> list[OrderOut]:
        orders = await repo.list_orders(status=status, symbol=symbol, limit=limit)
        return [OrderOut.of(o) for o in orders]

    @router.get("/positions", response_model=list[PositionOut], summary="Positions (open by default)")
    async def list_positions(status: PositionStatus = PositionStatus.OPEN,
                             symbol: SymbolQuery = None) -> list[PositionOut]:
        positions = await repo.list_positions(status=status, symbol=symbol)
        return [PositionOut.of(p) for p in positions]

    @router.post(
        "/positions/{position_id}/close", response_model=CloseOut, summary="Close a position at market (MANUAL)",
        responses={202: {"model": CloseOut, "description": "Close requested; the broker answers later"},
                   404: {"description": "No such position"}, 409: {"description": "Already closed"},
                   503: {"description": "The broker cannot close it now"}},
    )
    async def close_position(position_id: IdPath) -> JSONResponse:
        try:
            result = await gateway.close_position(position_id, CloseReason.MANUAL)
        except UnknownPositionError:
            raise HTTPException(404, f"no position {position_id}") from None
        except PositionClosedError as exc:
            raise HTTPException(409, str(exc)) from None
        except ExecutionError as exc:
            raise HTTPException(503, str(exc)) from None
        if route_publish is not None and result.events:
            await route_publish(list(result.events))
        body = CloseOut(status="CLOSED" if result.trade is not None else "CLOSE_REQUESTED",
                        position=PositionOut.of(result.position),
                        trade=trade_out(result.trade) if result.trade is not None else None)
        return JSONResponse(body.model_dump(mode="json"), status_code=200 if result.trade is not None else 202)

    return router


__all__ = ["CloseResult", "ExecutionGateway", "OrderOut", "PositionNotLoadedError", "PositionOut", "build_router"]
