"""The one way callers (the bus stage, the timers, the HTTP routes) drive execution-engine, and the
one publish path of its outputs: a transactional outbox.

Under one asyncio lock `ExecutionGateway` calls the engine, stores the engine's `ChangeSet` together
with the envelopes of the outputs (caused by the handled envelope) in one transaction, then
publishes them and marks them published. Storing happens before publishing (and, for the bus
consumer, before the ack), so a crash can repeat an event but never lose a stored order or an
output: `relay()` publishes the unmarked rows in id order, exactly as first built (same event ids);
the service runs it at start, after a lease takeover (`replace_engine`) and every few seconds. A
failed store keeps the change set (and its envelopes) and retries it before the next one; a failed
publish is logged, not raised (the outputs are stored): until a relay succeeds, every commit relays
the stored backlog first, so nothing new overtakes it. At least once: a row published but not marked
goes out again; consumers are idempotent on business keys.

The repository decides where the outbox lives: PostgreSQL (`orders.outbox`) in a service, memory in
the backtest and the tests (InMemoryExecutionRepository).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eafix.contracts.events import OrderIntent, TradeClosed
from eafix.contracts.messaging import Messenger
from eafix.contracts.primitives import CloseReason
from eafix.execution_engine.domain import (
    ChangeSet,
    EngineOutput,
    ExecutionEngine,
    ExecutionError,
    Position,
    PositionClosedError,
    UnknownPositionError,
)
from eafix.execution_engine.repository import ExecutionRepository, OutboxMessage

RELAY_BATCH = 500

log = logging.getLogger(__name__)


class PositionNotLoadedError(ExecutionError):
    """The repository has the position open but the engine does not (state not restored)."""


@dataclass(frozen=True)
class CloseResult:
    position: Position
    trade: TradeClosed | None  # None: the broker closes later (the close was requested)
    events: tuple[EngineOutput, ...] = ()  # the engine's outputs (published already)


class ExecutionGateway:
    def __init__(self, engine: ExecutionEngine, repo: ExecutionRepository, messenger: Messenger) -> None:
        self.engine, self.repo, self.messenger = engine, repo, messenger
        self.lock = asyncio.Lock()
        # stored not yet: change sets with the outbox envelopes of the same engine call
        self._unsaved: list[tuple[ChangeSet, list[Any]]] = []
        # rows may be stored and not published (a previous process, a failed publish); until a relay
        # empties the outbox, every commit relays first so that order is kept
        self._backlog = True

    async def _commit(self, outputs: Sequence[EngineOutput], cause: Any = None) -> None:
        changes = self.engine.drain_changes()
        envelopes = self.messenger.envelopes(outputs, cause) if outputs else []
        if changes or envelopes:
            self._unsaved.append((changes, envelopes))
        stored: list[tuple[int, Any]] = []
        while self._unsaved:
            changes, envs = self._unsaved[0]
            ids = await self.repo.apply(changes, [OutboxMessage(env) for env in envs])
            self._unsaved.pop(0)
            stored.extend(zip(ids, envs, strict=True))
        await self._deliver(stored)

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
        published = 0
        self._backlog = True
        while True:
            rows = await self.repo.unpublished(RELAY_BATCH)
            if not rows:
                break
            await self.messenger.publish_envelopes([r.message.envelope for r in rows])
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
        The unpublished outbox rows (of a crashed process, of the replica that stood down) are relayed
        before anything new is handled; if that fails, the next commit relays first."""
        async with self.lock:
            await self._commit([])
            state = await self.repo.load_open_state()
            engine.restore(state.orders, state.positions, state.fill_ids)
            self.engine = engine
            if on_replaced is not None:
                on_replaced(engine)
            if self.relays_on_reload():
                try:
                    await self._relay()
                except Exception as exc:
                    log.warning("outbox relay after the reload failed (the next commit retries): %s", exc)

    async def order_intent(self, intent: OrderIntent, cause: Any = None) -> list[EngineOutput]:
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


__all__ = ["CloseResult", "ExecutionGateway", "PositionNotLoadedError"]
