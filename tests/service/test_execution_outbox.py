"""execution-engine's transactional outbox on a real migrated PostgreSQL: the outputs' envelopes are
stored in the same transaction as the engine's changes, published, then marked; a failed publish
leaves the rows for the relay (and nothing new overtakes them); a crash between the store and the
publish loses nothing: a restarted process relays the envelopes exactly as first built.

The database is the session's (`migrated_db_url`); each test starts with every outbox row marked
and uses order ids and a symbol of its own, and only looks at its own events.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from psycopg_pool import AsyncConnectionPool

from eafix.contracts import ExecutionReport, OrderIntent, TradeClosed, parse_envelope
from eafix.contracts.messaging import Messenger, document
from eafix.contracts.primitives import ExecutionStatus
from eafix.execution_engine.brokers import PaperBroker
from eafix.execution_engine.domain import ChangeSet, ExecutionEngine, Transition
from eafix.execution_engine.gateway import ExecutionGateway
from eafix.execution_engine.repository import (
    InMemoryExecutionRepository,
    OutboxMessage,
    PostgresExecutionRepository,
    RepositoryError,
)
from eafix.execution_engine.stage import ExecutionStage
from eafix.runtime.bus.memory import InMemoryBus
from eafix.runtime.clock import TestClock
from service.factories import intent, tick

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SYMBOL = "NZDUSD"
TOPICS = (ExecutionReport.TOPIC, TradeClosed.TOPIC)


class Killed(BaseException):
    """The process dies here (kill -9): nothing after this line runs."""


class RecordingBus(InMemoryBus):
    """An in-memory bus that keeps every envelope published on TOPICS (JSON form, as over Redis), and
    can be made to fail (`fail`: a connection error, once) or to kill the process (`kill`)."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[dict] = []
        self.fail = 0
        self.kill = False
        self.attempted: list[dict] = []  # what a killed publish was about to send

    async def publish_many(self, messages):
        messages = list(messages)
        if self.kill:
            self.attempted.extend(m[1] for m in messages)
            raise Killed
        if self.fail:
            self.fail -= 1
            raise ConnectionError("redis went away")
        self.published.extend(m[1] for m in messages if m[0] in TOPICS)
        return await super().publish_many(messages)


@pytest.fixture
async def pool(migrated_db_url) -> AsyncIterator[AsyncConnectionPool]:
    pool = AsyncConnectionPool(migrated_db_url, min_size=1, max_size=3, open=False)
    await pool.open()
    try:
        async with pool.connection() as conn:  # rows of earlier tests are not ours to relay
            await conn.execute("UPDATE orders.outbox SET published_at = now() WHERE published_at IS NULL")
        yield pool
    finally:
        await pool.close()


async def outbox_rows(pool: AsyncConnectionPool, since: int = 0) -> list[tuple]:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT id, topic, key, envelope, published_at FROM orders.outbox WHERE id > %s "
                                 "ORDER BY id", (since,))
        return await cur.fetchall()


async def last_outbox_id(pool: AsyncConnectionPool) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT coalesce(max(id), 0) FROM orders.outbox")
        return (await cur.fetchone())[0]


def new_intent() -> OrderIntent:
    """An order of its own: the database is shared by the session's tests."""
    cid = f"OB-{uuid.uuid4().hex[:12]}"
    return intent(client_order_id=cid, signal_id=f"SIG-{cid}", symbol=SYMBOL, entry="1.1", risk_percent="2",
                  balance="10000")


def message(event, clock: TestClock, producer: str) -> tuple[dict, str]:
    """A bus message as another service publishes it, and its event id."""
    env = Messenger(InMemoryBus(), producer, clock).envelope(event)
    return env.model_dump(mode="json"), str(env.event_id)


def stage_on(pool: AsyncConnectionPool, bus: RecordingBus, clock: TestClock) -> ExecutionStage:
    """The execution-engine's parts as service.build wires them (a process)."""
    messenger = Messenger(bus, "execution-engine", clock)
    return ExecutionStage(ExecutionGateway(ExecutionEngine(clock, PaperBroker()), PostgresExecutionRepository(pool),
                                           messenger))


async def restarted(pool: AsyncConnectionPool, bus: RecordingBus, clock: TestClock) -> ExecutionStage:
    """A new process: a fresh engine restored from the database (service.build's reload step)."""
    stage = stage_on(pool, bus, clock)
    await stage.gateway.replace_engine(ExecutionEngine(clock, PaperBroker()))
    return stage


def ours(docs: list[dict], order: OrderIntent) -> list[dict]:
    return [d for d in docs if d["data"].get("client_order_id") == order.client_order_id]


def summary(docs: list[dict]) -> list[str]:
    return [d["data"]["status"] if d["event_type"] == "ExecutionReport" else "TRADE" for d in docs]


async def test_outputs_are_stored_with_the_changes_published_and_marked(pool):
    clock, bus = TestClock(T0), RecordingBus()
    stage = stage_on(pool, bus, clock)
    order = new_intent()
    since = await last_outbox_id(pool)
    intent_msg, intent_id = message(order, clock, "risk-manager")
    await stage.on_order_intent(intent_msg)
    clock.advance(1)
    fill_msg, fill_id = message(tick(SYMBOL, "0.60000", "0.60010", at=clock.now()), clock, "data-ingestor")
    await stage.on_tick(fill_msg)
    clock.advance(1)
    tp_msg, tp_id = message(tick(SYMBOL, "0.60420", "0.60430", at=clock.now()), clock, "data-ingestor")  # TP 0.60410
    await stage.on_tick(tp_msg)

    published = ours(bus.published, order)
    assert summary(published) == ["PENDING", "SUBMITTED", "SUBMITTED", "FILLED", "CLOSED", "TRADE"]
    rows = await outbox_rows(pool, since)
    # every published envelope is an outbox row, in the same order, byte for byte, and marked
    assert [r[3] for r in rows] == published
    assert all(r[4] is not None for r in rows)
    assert [(r[1], r[2]) for r in rows] == [(ExecutionReport.TOPIC, SYMBOL)] * 5 + [(TradeClosed.TOPIC, SYMBOL)]
    assert [d["causation_id"] for d in published] == [intent_id] * 3 + [fill_id] + [tp_id] * 2
    # the changes of the same calls are stored
    repo = stage.gateway.repo
    stored = await repo.get_order(order.client_order_id)
    assert stored is not None and stored.status.value == "CLOSED"
    assert (await repo.get_trade(order.client_order_id)).pnl == Decimal("410.00")  # 41 pips x 1 lot x 10 USD
    assert await repo.unpublished() == []


async def test_a_failed_publish_leaves_the_rows_for_the_relay_and_nothing_overtakes_them(pool):
    clock, bus = TestClock(T0), RecordingBus()
    stage = stage_on(pool, bus, clock)
    await stage.gateway.relay()  # start-up relay (nothing of ours yet)
    order = new_intent()
    since = await last_outbox_id(pool)
    bus.fail = 1
    await stage.on_order_intent(message(order, clock, "risk-manager")[0])  # stored; the publish fails

    assert ours(bus.published, order) == []
    rows = await outbox_rows(pool, since)
    assert [r[3]["data"]["status"] for r in rows] == ["PENDING", "SUBMITTED", "SUBMITTED"]
    assert all(r[4] is None for r in rows)  # unpublished, while the order itself is stored
    assert (await stage.gateway.repo.get_order(order.client_order_id)).status.value == "SUBMITTED"

    # the next call's outputs go out after the stored ones, in id order
    clock.advance(1)
    await stage.on_tick(message(tick(SYMBOL, "0.60000", "0.60010", at=clock.now()), clock, "data-ingestor")[0])
    published = ours(bus.published, order)
    assert summary(published) == ["PENDING", "SUBMITTED", "SUBMITTED", "FILLED"]
    assert published[:3] == [r[3] for r in rows]  # exactly as stored (same event ids)
    assert all(r[4] is not None for r in await outbox_rows(pool, since))
    assert await stage.gateway.relay() == 0  # nothing left


async def test_the_periodic_relay_publishes_what_a_failed_publish_left(pool):
    clock, bus = TestClock(T0), RecordingBus()
    stage = stage_on(pool, bus, clock)
    await stage.gateway.relay()
    order = new_intent()
    since = await last_outbox_id(pool)
    bus.fail = 1
    await stage.on_order_intent(message(order, clock, "risk-manager")[0])
    assert ours(bus.published, order) == []

    assert await stage.gateway.relay() == 3
    rows = await outbox_rows(pool, since)
    assert ours(bus.published, order) == [r[3] for r in rows]
    assert all(r[4] is not None for r in rows)


async def test_a_crash_between_store_and_publish_is_relayed_by_the_restarted_process(pool):
    clock, bus = TestClock(T0), RecordingBus()
    stage = stage_on(pool, bus, clock)
    await stage.gateway.relay()
    order = new_intent()
    await stage.on_order_intent(message(order, clock, "risk-manager")[0])
    clock.advance(1)
    fill_msg, _ = message(tick(SYMBOL, "0.60000", "0.60010", at=clock.now()), clock, "data-ingestor")
    bus.kill = True  # the process dies after storing the fill, before publishing it
    with pytest.raises(Killed):
        await stage.on_tick(fill_msg)
    del stage
    (filled_env,) = bus.attempted
    assert filled_env["data"]["status"] == "FILLED"

    # a new process on the same database: the relay runs before it consumes anything
    bus2 = RecordingBus()
    stage2 = await restarted(pool, bus2, clock)
    assert ours(bus2.published, order) == [filled_env]  # exactly as first built: same event_id, cause, times
    await stage2.on_tick(fill_msg)  # the redelivered tick: the fill is stored, the engine answers nothing
    assert ours(bus2.published, order) == [filled_env]

    # the same for the close: the take-profit's CLOSED report and TradeClosed
    clock.advance(1)
    tp_msg, tp_id = message(tick(SYMBOL, "0.60420", "0.60430", at=clock.now()), clock, "data-ingestor")
    bus2.kill = True
    with pytest.raises(Killed):
        await stage2.on_tick(tp_msg)
    del stage2
    closed = ours(bus2.attempted, order)
    assert summary(closed) == ["CLOSED", "TRADE"]
    trade = closed[1]
    assert trade["data"]["trade_id"] == order.client_order_id and trade["causation_id"] == tp_id
    assert parse_envelope(trade).data.pnl == Decimal("410.00")  # 41 pips x 1 lot x 10 USD

    bus3 = RecordingBus()
    stage3 = await restarted(pool, bus3, clock)
    assert ours(bus3.published, order) == closed  # the report and the trade, exactly as first built
    await stage3.on_tick(tp_msg)  # redelivered: the position is closed in storage, nothing new
    assert ours(bus3.published, order) == closed
    assert await stage3.gateway.repo.unpublished() == []


@pytest.fixture(params=["memory", "postgres"])
async def repo(request, pool):
    if request.param == "memory":
        return InMemoryExecutionRepository()
    return PostgresExecutionRepository(pool)


def outbox_message(n: int) -> OutboxMessage:
    """The envelope of a rejection report; the same `n` gives the same envelope (event id included)."""
    report = ExecutionReport(client_order_id=f"OB-{n}", broker_order_id=None, symbol=SYMBOL, status="REJECTED",
                             filled_lots=Decimal(0), avg_price=None, commission=Decimal(0), reason=f"refusé {n}")
    return OutboxMessage(Messenger(InMemoryBus(), "execution-engine", TestClock(T0),
                                   ids=lambda: uuid.UUID(int=n)).envelope(report))


def stored(message: OutboxMessage) -> tuple:
    return message.topic, message.key, document(message.envelope)


async def test_the_outbox_rows_commit_with_the_change_set_or_not_at_all(repo):
    before = [r.id for r in await repo.unpublished()]
    assert before == []
    bad = ChangeSet(transitions=[Transition(f"OB-unknown-{uuid.uuid4().hex[:8]}", 1, "submit", None,
                                            ExecutionStatus.PENDING, T0, None)])
    with pytest.raises(RepositoryError):
        await repo.apply(bad, [outbox_message(1)])
    assert await repo.unpublished() == []  # the refused change set took its outbox rows with it

    ids = await repo.apply(ChangeSet(), [outbox_message(2), outbox_message(3)])  # outbox only is stored too
    more = await repo.apply(ChangeSet(), [outbox_message(4)])
    assert len(ids) == 2 and ids[0] < ids[1] < more[0]
    rows = await repo.unpublished()
    assert [(r.id, stored(r.message)) for r in rows] == list(
        zip([*ids, *more], [stored(outbox_message(n)) for n in (2, 3, 4)], strict=True))
    assert [r.id for r in await repo.unpublished(limit=2)] == ids
    await repo.mark_published([ids[0], more[0]])
    await repo.mark_published([ids[0]])  # twice: no-op
    assert [r.id for r in await repo.unpublished()] == [ids[1]]
    await repo.mark_published([ids[1]])
    assert await repo.apply(ChangeSet(), []) == []



async def test_published_rows_are_pruned_once_old_and_unpublished_ones_never(pool):
    repo = PostgresExecutionRepository(pool)
    msg = outbox_message(99)
    ids = await repo.apply(ChangeSet(), outbox=[msg, msg, msg])
    await repo.mark_published(ids[:2])
    async with pool.connection() as conn:  # one published long ago, one just now, one never
        await conn.execute("UPDATE orders.outbox SET published_at = now() - interval '2 hours' WHERE id = %s",
                           (ids[0],))
    assert await repo.prune_published(3600) >= 1
    async with pool.connection() as conn:
        rows = await (await conn.execute("SELECT id FROM orders.outbox WHERE id = ANY(%s) ORDER BY id",
                                         (ids,))).fetchall()
    assert [r[0] for r in rows] == ids[1:]
    assert [r.id for r in await repo.unpublished()] == [ids[2]]
