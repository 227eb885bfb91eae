"""execution-engine HTTP API over httpx.ASGITransport, and the gateway that persists the engine's work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal as D

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from eafix import services
from eafix.contracts import ExecutionReport, OrderIntent, TradeClosed
from eafix.contracts.messaging import Messenger, decode
from eafix.contracts.primitives import ExecutionStatus
from eafix.execution_engine.app import build_router
from eafix.execution_engine.brokers import Costs, PaperBroker
from eafix.execution_engine.domain import ExecutionEngine
from eafix.execution_engine.gateway import ExecutionGateway
from eafix.execution_engine.mt4_bridge import MT4Broker
from eafix.execution_engine.repository import InMemoryExecutionRepository, PostgresExecutionRepository
from eafix.runtime.app import create_app
from eafix.runtime.bus.memory import InMemoryBus
from eafix.runtime.clock import TestClock
from eafix.runtime.settings import Settings
from service.asgi import client_for
from service.factories import T0, intent, tick

pytestmark = pytest.mark.anyio

S = ExecutionStatus


def order(n: int, **fields) -> OrderIntent:
    """An intent with this module's ids (O-0001, key K-0001) and entry price."""
    return intent(n, client_order_id=f"O-{n:04d}", key=f"K-{n:04d}", entry="1.03437", **fields)


class Env:
    """The API over a gateway that publishes (through its outbox) on an in-memory bus."""

    def __init__(self, repo, broker=None) -> None:
        self.clock = TestClock(T0)
        self.engine = ExecutionEngine(self.clock, broker or PaperBroker(Costs(commission_per_lot=D("7"))))
        self.repo = repo
        self.bus = InMemoryBus()
        self.published: list = []  # what reached the bus, in publish order

        async def keep(message) -> None:
            self.published.append(decode(message).data)

        for topic in (ExecutionReport.TOPIC, TradeClosed.TOPIC):
            self.bus.subscribe(topic, "test", keep)
        self.gateway = ExecutionGateway(self.engine, repo, Messenger(self.bus, "execution-engine", self.clock))
        spec = services.get("execution-engine")
        self.app = create_app(spec, Settings(name=spec.name))
        self.app.include_router(build_router(self.gateway))

    async def sent(self) -> list:
        await self.bus.drain()
        return self.published


@pytest.fixture
async def env() -> AsyncIterator[tuple[Env, httpx.AsyncClient]]:
    environment = Env(InMemoryExecutionRepository())
    async with client_for(environment.app) as client:
        yield environment, client


async def open_two(environment: Env) -> None:
    g = environment.gateway
    await g.run(lambda: environment.engine.on_tick(tick("EURUSD", "1.03430", "1.03441")))
    await g.run(lambda: environment.engine.on_tick(tick("GBPUSD", "1.24700", "1.24710")))
    environment.clock.advance(1)
    await g.order_intent(order(1))
    environment.clock.advance(1)
    await g.order_intent(order(2, symbol="GBPUSD", direction="SHORT"))


async def test_orders_listing_with_filters(env):
    environment, client = env
    await open_two(environment)
    response = await client.get("/api/v1/orders")
    assert response.status_code == 200
    body = response.json()
    assert [o["client_order_id"] for o in body] == ["O-0002", "O-0001"]  # newest first
    first = body[1]
    assert (first["status"], first["lots"], first["avg_price"], first["commission"], first["created_at"]) == (
        "FILLED", "1.00", "1.03441", "7.00", "2025-01-06T12:00:01Z")
    assert [o["client_order_id"] for o in (await client.get("/api/v1/orders?symbol=GBPUSD")).json()] == ["O-0002"]
    assert (await client.get("/api/v1/orders?status=REJECTED")).json() == []
    assert len((await client.get("/api/v1/orders?limit=1")).json()) == 1
    for bad in ("status=DONE", "symbol=eurusd", "limit=0", "limit=1001"):
        assert (await client.get(f"/api/v1/orders?{bad}")).status_code == 422, bad


async def test_positions_listing(env):
    environment, client = env
    await open_two(environment)
    body = (await client.get("/api/v1/positions")).json()
    assert {p["position_id"]: (p["direction"], p["open_price"], p["status"]) for p in body} == {
        "O-0001": ("LONG", "1.03441", "OPEN"), "O-0002": ("SHORT", "1.24700", "OPEN")}
    assert (await client.get("/api/v1/positions?status=CLOSED")).json() == []
    assert [p["position_id"] for p in (await client.get("/api/v1/positions?symbol=GBPUSD")).json()] == ["O-0002"]


async def test_close_position_then_409_and_404(env):
    environment, client = env
    await open_two(environment)
    environment.clock.advance(3600)
    later = tick("EURUSD", "1.03686", "1.03696", at=environment.clock.now())
    await environment.gateway.run(lambda: environment.engine.on_tick(later))
    (await environment.sent()).clear()

    response = await client.post("/api/v1/positions/O-0001/close")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "CLOSED"
    assert (body["position"]["status"], body["position"]["close_reason"]) == ("CLOSED", "MANUAL")
    # the contract's example trade: 24.5 pips, 245.00 - 7.00 commission
    assert (body["trade"]["pips"], body["trade"]["pnl"], body["trade"]["close_reason"]) == ("24.5", "238.00", "MANUAL")
    assert TradeClosed.model_validate(body["trade"]).trade_id == "O-0001"

    # stored and published
    assert (await environment.repo.get_position("O-0001")).close_reason.value == "MANUAL"
    published = await environment.sent()
    assert [type(e).__name__ for e in published] == ["ExecutionReport", "TradeClosed"]
    assert published[0].status is S.CLOSED

    again = await client.post("/api/v1/positions/O-0001/close")
    assert again.status_code == 409
    assert (await client.post("/api/v1/positions/O-9999/close")).status_code == 404
    assert (await client.post("/api/v1/positions/not%20an%20id/close")).status_code == 422
    assert [p["position_id"] for p in (await client.get("/api/v1/positions")).json()] == ["O-0002"]


async def test_closed_position_known_only_to_storage_is_409():
    repo = InMemoryExecutionRepository()
    first = Env(repo)
    await open_two(first)
    await first.gateway.close_position("O-0001")
    second = Env(repo)  # a restarted process that did not keep the closed position in memory
    await second.gateway.restore()
    async with client_for(second.app) as client:
        assert (await client.post("/api/v1/positions/O-0001/close")).status_code == 409
        assert [p["position_id"] for p in (await client.get("/api/v1/positions")).json()] == ["O-0002"]


async def test_mt4_close_is_requested_with_202():
    environment = Env(InMemoryExecutionRepository(), broker=MT4Broker())
    from eafix.execution_engine.domain import Filled

    await environment.gateway.order_intent(order(1))
    await environment.gateway.run(lambda: environment.engine.on_broker_events(
        [Filled("O-0001", "D-1", D("1.00"), D("1.03441"), T0, broker_order_id="4821")]))
    async with client_for(environment.app) as client:
        response = await client.post("/api/v1/positions/O-0001/close")
        assert response.status_code == 202
        body = response.json()
        assert (body["status"], body["trade"], body["position"]["status"]) == ("CLOSE_REQUESTED", None, "OPEN")
        assert body["position"]["close_requested_at"] == "2025-01-06T12:00:00Z"
        assert (await client.post("/api/v1/positions/O-0001/close")).status_code == 202  # asked once
    rows = environment.engine.broker.outbox()
    assert [(r.action.value, r.ticket) for r in rows] == [("OPEN", ""), ("CLOSE", "4821")]


async def test_gateway_makes_a_redelivered_intent_a_no_op_after_a_restart():
    repo = InMemoryExecutionRepository()
    first = Env(repo)
    await open_two(first)
    restarted = Env(repo)  # knows nothing in memory
    assert await restarted.gateway.order_intent(order(1)) == []
    assert await restarted.sent() == []
    assert len(await repo.list_orders()) == 2


async def test_gateway_retries_a_change_set_that_failed_to_store():
    class Flaky(InMemoryExecutionRepository):
        fail = True

        async def apply(self, changes, outbox=()):
            if self.fail:
                self.fail = False
                raise ConnectionError("database away")
            return await super().apply(changes, outbox)

    environment = Env(Flaky())
    await environment.gateway.run(lambda: environment.engine.on_tick(tick("EURUSD", "1.03430", "1.03441")))
    with pytest.raises(ConnectionError):
        await environment.gateway.order_intent(order(1))
    assert await environment.sent() == []  # nothing published before it is stored
    environment.clock.advance(60)
    await environment.gateway.run(lambda: environment.engine.on_clock(environment.clock.now()))
    assert (await environment.repo.get_order("O-0001")).status is S.FILLED
    # the reports of the failed call went out once their changes were stored
    assert [r.status for r in await environment.sent()] == [S.PENDING, S.SUBMITTED, S.SUBMITTED, S.FILLED]


@pytest.fixture
async def pg_env(fresh_db_url) -> AsyncIterator[tuple[Env, httpx.AsyncClient]]:
    pool = AsyncConnectionPool(fresh_db_url, min_size=1, max_size=2, open=False)
    await pool.open()
    try:
        environment = Env(PostgresExecutionRepository(pool))
        async with client_for(environment.app) as client:
            yield environment, client
    finally:
        await pool.close()


async def test_api_on_postgres(pg_env):
    environment, client = pg_env
    await open_two(environment)
    environment.clock.advance(60)
    response = await client.post("/api/v1/positions/O-0002/close")
    assert response.status_code == 200
    # SHORT GBPUSD opened at the bid 1.24700, closed at the ask 1.24710: -1.0 pip, -10.00 - 7.00
    assert (response.json()["trade"]["pips"], response.json()["trade"]["pnl"]) == ("-1.0", "-17.00")
    orders = (await client.get("/api/v1/orders?status=CLOSED")).json()
    assert [(o["client_order_id"], o["commission"], o["avg_price"]) for o in orders] == [("O-0002", "7.00", "1.24700")]
    assert [p["position_id"] for p in (await client.get("/api/v1/positions")).json()] == ["O-0001"]
    closed = (await client.get("/api/v1/positions?status=CLOSED")).json()
    assert (closed[0]["close_price"], closed[0]["pnl"], closed[0]["close_time"]) == (
        "1.24710", "-17.00", (T0 + timedelta(seconds=62)).strftime("%Y-%m-%dT%H:%M:%SZ"))
