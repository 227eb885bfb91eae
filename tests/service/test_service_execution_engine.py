"""execution-engine built from its environment on a real Redis and its own migrated PostgreSQL: intents
become orders exactly once, ticks fill and close them, a manual close is published, a standby refuses
writes and takes the open positions over; the MT4 file bridge runs with SERVICE_BROKER=mt4.

The module has a database of its own (migrated with the real runner): the engine restores every open
order and position at start, so a database shared with other tests would hand it their rows.
Each test trades its own symbol.
"""

from __future__ import annotations

import asyncio
import csv
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from eafix import cli
from eafix.contracts import OrderIntent, PriceTick
from eafix.execution_engine.mt4_bridge import FILL_COLUMNS, atomic_write, encode_csv, row_checksum
from eafix.runtime.store import migrations
from service import servers
from service.factories import intent, tick
from service.harness import ServiceEnv, eventually, fresh_env, publish, read, redis_client, started

pytestmark = pytest.mark.anyio
GROUP = "execution-engine"


@pytest.fixture(scope="module")
def execution_db() -> Iterator[servers.PostgresServer]:
    with servers.postgres_server() as server:
        asyncio.run(migrations.run(server.url, {"user": server.user, "password": server.password}))
        yield server


@pytest.fixture
async def env(monkeypatch, redis_server, execution_db, tmp_path) -> ServiceEnv:
    return await fresh_env(monkeypatch, redis_server, tmp_path, postgres=execution_db)


def new_intent(symbol: str, **fields) -> OrderIntent:
    """An order of its own: the database is shared by the module's tests."""
    cid = f"O-{uuid.uuid4().hex[:12]}"
    return intent(client_order_id=cid, signal_id=f"SIG-{cid}", symbol=symbol, entry="1.1", risk_percent="2",
                  balance="10000", **fields)


def quote(symbol: str, bid: str, ask: str) -> PriceTick:
    return tick(symbol, bid, ask, at=datetime.now(UTC))


async def reports(env: ServiceEnv, client_order_id: str) -> list:
    return [e for e in await read(env, "eafix.execution.reports") if e.data.client_order_id == client_order_id]


async def statuses(env: ServiceEnv, client_order_id: str) -> list[str]:
    return [e.data.status.value for e in await reports(env, client_order_id)]


async def drained(env: ServiceEnv, topic: str) -> bool:
    async with redis_client(env) as client:
        groups = {g["name"]: g for g in await client.xinfo_groups(topic)}
    group = groups.get(GROUP)
    return group is not None and group["pending"] == 0 and group["lag"] == 0


async def closed_trades(env: ServiceEnv, symbol: str) -> list:
    return [e for e in await read(env, "eafix.trades.closed") if e.data.symbol == symbol]


async def test_an_intent_becomes_one_order_that_ticks_fill_and_close(env):
    app = env.app("execution-engine", COSTS='{"commission_per_lot": "2.5"}')
    order = new_intent("EURUSD")
    async with started(app) as client:
        ready = (await client.get("/readyz")).json()
        assert ready["checks"] == {"redis": {"status": "up"}, "postgres": {"status": "up"}}
        (intent_env,) = await publish(env, order, producer="risk-manager")
        # no price yet: the paper broker acknowledges and waits for the symbol's first tick
        await eventually(lambda: statuses_are(env, order.client_order_id, ["PENDING", "SUBMITTED", "SUBMITTED"]),
                         "the order to be submitted and acknowledged")
        await publish(env, quote("EURUSD", "1.10000", "1.10010"), producer="data-ingestor")
        await eventually(lambda: statuses_are(env, order.client_order_id,
                                              ["PENDING", "SUBMITTED", "SUBMITTED", "FILLED"]), "the fill")

        async with redis_client(env) as r:  # the same OrderIntent message again (a redelivery)
            (_, fields), = await r.xrange("eafix.orders.validated")
            await r.xadd("eafix.orders.validated", fields)
        await eventually(lambda: drained(env, "eafix.orders.validated"), "the redelivery to be handled")
        orders = (await client.get("/api/v1/orders", params={"symbol": "EURUSD"})).json()

        (tp_tick,) = await publish(env, quote("EURUSD", "1.10420", "1.10430"), producer="data-ingestor")
        (trade,) = await eventually(lambda: closed_trades(env, "EURUSD"), "the take-profit")
        positions = (await client.get("/api/v1/positions", params={"status": "CLOSED", "symbol": "EURUSD"})).json()

    history = await reports(env, order.client_order_id)
    assert [r.data.status.value for r in history] == ["PENDING", "SUBMITTED", "SUBMITTED", "FILLED", "CLOSED"]
    assert all(str(r.causation_id) == intent_env["event_id"] for r in history[:3])
    filled = history[3].data
    assert (filled.filled_lots, filled.avg_price, filled.commission) == (Decimal("1.00"), Decimal("1.10010"),
                                                                         Decimal("2.5"))
    assert [(o["idempotency_key"], o["status"]) for o in orders] == [(order.idempotency_key, "FILLED")]
    # TP at 1.10010 + 40 pips = 1.10410; closed at the bid 1.10420: 41 pips x 1 lot x 10 USD - 2.50
    t = trade.data
    assert (t.close_reason.value, t.close_price, t.pips, t.pnl) == ("TP", Decimal("1.10420"), Decimal("41.0"),
                                                                    Decimal("407.50"))
    assert str(trade.causation_id) == tp_tick["event_id"]
    assert [(p["position_id"], p["pnl"]) for p in positions] == [(order.client_order_id, "407.50")]


async def statuses_are(env: ServiceEnv, client_order_id: str, expected: list[str]) -> bool:
    return await statuses(env, client_order_id) == expected


async def test_a_standby_refuses_a_manual_close_and_takes_the_positions_over(env):
    a = env.app("execution-engine", consumer="pod-a")
    b = env.app("execution-engine", consumer="pod-b")
    bus_a, bus_b = a.state.parts.state["bus"], b.state.parts.state["bus"]
    first, second = new_intent("GBPUSD"), new_intent("GBPUSD", sl="30", tp="60")
    async with AsyncExitStack() as stack_a, AsyncExitStack() as stack_b:
        client_a = await stack_a.enter_async_context(started(a))
        await eventually(lambda: bus_a.owned_streams(OrderIntent.TOPIC, GROUP), "pod-a to consume")
        client_b = await stack_b.enter_async_context(started(b))
        await publish(env, first, producer="risk-manager")
        await eventually(lambda: has_n(reports(env, first.client_order_id), 3), "the first order to be acknowledged")
        await publish(env, quote("GBPUSD", "1.25000", "1.25010"), producer="data-ingestor")
        await eventually(lambda: statuses_has(env, first.client_order_id, "FILLED"), "the first fill")

        refused = await client_b.post(f"/api/v1/positions/{first.client_order_id}/close")
        assert refused.status_code == 503 and "standing by" in refused.json()["detail"]
        closed = await client_a.post(f"/api/v1/positions/{first.client_order_id}/close")
        assert closed.status_code == 200, closed.text
        (manual,) = await eventually(lambda: closed_trades(env, "GBPUSD"), "the manual close to be published")
        assert await statuses(env, first.client_order_id) == ["PENDING", "SUBMITTED", "SUBMITTED", "FILLED", "CLOSED"]

        await publish(env, second, producer="risk-manager")
        await eventually(lambda: statuses_has(env, second.client_order_id, "FILLED"), "the second fill")
        await stack_a.aclose()  # pod-a stops; pod-b takes over with the open position reloaded
        await eventually(lambda: bus_b.owned_streams(PriceTick.TOPIC, GROUP)
                         and bus_b.owned_streams(OrderIntent.TOPIC, GROUP), "pod-b to take over")
        # SL of the second: 1.25010 - 30 pips = 1.24710; the bid falls through it
        await publish(env, quote("GBPUSD", "1.24700", "1.24710"), producer="data-ingestor")
        trades = await eventually(lambda: has_n(closed_trades(env, "GBPUSD"), 2), "pod-b's stop-loss")
        reopened = await client_b.post(f"/api/v1/positions/{second.client_order_id}/close")

    assert closed.json()["status"] == "CLOSED" and closed.json()["trade"]["close_reason"] == "MANUAL"
    # closed at the bid 1.25000, opened at the ask 1.25010: -1 pip, -10 USD
    assert (manual.data.close_reason.value, manual.data.pnl) == ("MANUAL", Decimal("-10.00"))
    stop = trades[1].data
    assert (stop.trade_id, stop.close_reason.value, stop.pips, stop.pnl) == (second.client_order_id, "SL",
                                                                             Decimal("-31.0"), Decimal("-310.00"))
    assert reopened.status_code == 409  # pod-b knows it is closed


async def statuses_has(env: ServiceEnv, client_order_id: str, status: str) -> bool:
    return status in await statuses(env, client_order_id)


async def has_n(awaitable, n: int) -> list | None:
    items = await awaitable
    return items if len(items) >= n else None


async def test_the_mt4_bridge_writes_orders_and_applies_the_eas_fills(env, tmp_path):
    bridge = tmp_path / "mt4"
    app = env.app("execution-engine", BROKER="mt4", MT4_BRIDGE_DIR=str(bridge), MT4_POLL_SECONDS="0.05")
    order = new_intent("USDCAD", lots="0.50")
    async with started(app):
        await publish(env, order, producer="risk-manager")
        (orders_file,) = await eventually(lambda: list((bridge / "orders").glob("orders_*.csv")), "an orders file")
        rows = list(csv.DictReader(orders_file.read_text().splitlines()))
        assert [(r["action"], r["client_order_id"], r["lots"], r["file_seq"]) for r in rows] == [
            ("OPEN", order.client_order_id, "0.50", "1")]

        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        fills = [{"client_order_id": order.client_order_id, "ticket": "7001", "status": "SUBMITTED", "fill_id": "",
                  "lots": "", "price": "", "commission": "", "close_reason": "", "reason": ""},
                 {"client_order_id": order.client_order_id, "ticket": "7001", "status": "FILLED", "fill_id": "D-1",
                  "lots": "0.50", "price": "1.36120", "commission": "1.75", "close_reason": "", "reason": ""}]
        for row in fills:
            row.update(file_seq="1", timestamp=now)
            row["checksum_sha256"] = row_checksum(row)
        atomic_write(bridge / "fills" / "fills_20260105_120000.csv", encode_csv(FILL_COLUMNS, fills))
        await eventually(lambda: statuses_has(env, order.client_order_id, "FILLED"), "the EA's fill")
        await eventually(lambda: (bridge / "fills" / "processed" / "fills_20260105_120000.csv").exists(),
                         "the fills file to be retired")
    filled = (await reports(env, order.client_order_id))[-1].data
    assert (filled.broker_order_id, filled.avg_price, filled.commission) == ("7001", Decimal("1.36120"),
                                                                             Decimal("1.75"))


@pytest.mark.parametrize(("settings", "problem"), [
    ({"SERVICE_BROKER": "mt4"}, "SERVICE_MT4_BRIDGE_DIR: required when SERVICE_BROKER is mt4 (the directory "
                                "shared with the EA)"),
    ({"SERVICE_BROKER": "fix"}, "SERVICE_BROKER: Input should be 'paper' or 'mt4' (got 'fix')"),
    ({"SERVICE_COSTS": '{"slippage_pips": "-1"}'}, "SERVICE_COSTS: slippage_pips must be a finite Decimal >= 0, "
                                                   "got Decimal('-1')"),
    ({"SERVICE_BROKER_FAULTS": '{"reject_every": 3, "timeout_every": 2}'}, "SERVICE_BROKER_FAULTS: timeout_every: "
                                                                           "unknown key"),
    ({"SERVICE_ACK_TIMEOUT_SECONDS": "0"}, "SERVICE_ACK_TIMEOUT_SECONDS: Input should be greater than 0 (got '0')"),
])
def test_bad_execution_config_stops_serve_with_one_line(capsys, monkeypatch, settings, problem):
    monkeypatch.setenv("SERVICE_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("SERVICE_POSTGRES_URL", "postgresql://eafix@127.0.0.1:1/eafix_trading")
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    assert cli.main(["serve", "execution-engine"]) == 2
    assert capsys.readouterr().err == f"eafix serve execution-engine: {problem}\n"
