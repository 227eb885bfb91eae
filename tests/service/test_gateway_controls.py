"""gui-gateway's emergency controls, operator audit and system status end to end, on real Redis and
PostgreSQL: pause publishes SystemRiskOff on the bus and a real signal-generator (served over HTTP,
following the topic) latches it; close-all closes the open positions of a real execution-engine API;
every control lands in `gateway.operator_audit`, which refuses UPDATE and DELETE; the status reports
the peers' readiness and version, the tick age, a stream's lag and dead letters and the latch."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal as D
from importlib.metadata import version

import httpx
import psycopg
import pytest

from eafix import services
from eafix.contracts import PriceTick
from eafix.contracts.messaging import Messenger
from eafix.execution_engine.app import build_router as execution_router
from eafix.execution_engine.brokers import Costs, PaperBroker
from eafix.execution_engine.domain import ExecutionEngine
from eafix.execution_engine.gateway import ExecutionGateway
from eafix.execution_engine.repository import InMemoryExecutionRepository
from eafix.gui_gateway.principals import Role
from eafix.platform.status import gateway_report
from eafix.runtime.app import create_app
from eafix.runtime.bus.memory import InMemoryBus
from eafix.runtime.clock import TestClock, WallClock
from eafix.runtime.settings import Settings
from service.asgi import client_for, served
from service.factories import T0, intent, tick
from service.gateway_env import key_pair
from service.harness import ServiceEnv, eventually, fresh_env, publish
from service.servers import free_port

pytestmark = pytest.mark.anyio


async def execution_engine_with_two_positions():
    """execution-engine's real API over a paper broker, with a EURUSD long and a GBPUSD short open."""
    clock = TestClock(T0)
    engine = ExecutionEngine(clock, PaperBroker(Costs(commission_per_lot=D("7"))))
    messenger = Messenger(InMemoryBus(), "execution-engine", clock)
    gateway = ExecutionGateway(engine, InMemoryExecutionRepository(), messenger)
    await gateway.run(lambda: engine.on_tick(tick("EURUSD", "1.03430", "1.03441")))
    await gateway.run(lambda: engine.on_tick(tick("GBPUSD", "1.24700", "1.24710")))
    clock.advance(1)
    await gateway.order_intent(intent(1, client_order_id="O-0001", key="K-0001", entry="1.03437"))
    clock.advance(1)
    await gateway.order_intent(intent(2, symbol="GBPUSD", direction="SHORT", client_order_id="O-0002",
                                      key="K-0002", entry="1.24705"))
    spec = services.get("execution-engine")
    app = create_app(spec, Settings(name=spec.name))
    app.include_router(execution_router(gateway))
    return app


@pytest.fixture
async def env(monkeypatch, redis_server, tmp_path, migrated_db) -> ServiceEnv:
    return await fresh_env(monkeypatch, redis_server, tmp_path, migrated_db)


def audit_rows(db, after: int) -> list[tuple]:
    with psycopg.connect(db.url, user=db.user, password=db.password) as conn:
        return conn.execute("SELECT actor, roles, action, reason, result, correlation_id, detail FROM "
                            "gateway.operator_audit WHERE id > %s ORDER BY id", (after,)).fetchall()


def last_audit_id(db) -> int:
    with psycopg.connect(db.url, user=db.user, password=db.password) as conn:
        return conn.execute("SELECT coalesce(max(id), 0) FROM gateway.operator_audit").fetchone()[0]


async def test_pause_close_all_resume_through_the_real_peers(env, migrated_db):
    admin_key, admin_line = key_pair("ops", Role.ADMIN)
    viewer_key, viewer_line = key_pair("desk", Role.VIEWER)
    signals_app = env.app("signal-generator")
    execution_app = await execution_engine_with_two_positions()
    before = last_audit_id(migrated_db)
    with served(signals_app) as signals_url, served(execution_app) as execution_url:
        gateway = env.app("gui-gateway", api_keys=f"{admin_line}\n{viewer_line}", signal_generator_url=signals_url,
                          execution_engine_url=execution_url)
        admin = {"X-API-Key": admin_key}
        async with client_for(gateway) as client, httpx.AsyncClient(base_url=signals_url) as signals:
            paused = await client.post("/api/v1/trading/pause", json={"reason": "NFP drill"}, headers=admin)
            assert paused.status_code == 200, paused.text
            assert paused.json()["result"] == "ok"

            async def latched():
                state = (await signals.get("/api/v1/risk-off")).json()
                return state if state["active"] else None

            state = await eventually(latched, "signal-generator latching the risk-off")
            assert (state["reason"], state["source"]) == ("NFP drill", "operator:apikey:ops")

            status = (await client.get("/api/v1/system/status", headers={"X-API-Key": viewer_key})).json()
            assert status["risk_off"]["active"] is True and status["risk_off"]["reason"] == "NFP drill"
            assert status["services"]["signal-generator"] == {
                "ready": True, "version": version("eafix"), "checks": {"redis": {"status": "up"}}}
            assert status["services"]["execution-engine"]["ready"] is True
            via_proxy = await client.get("/api/v1/risk-off", headers={"X-API-Key": viewer_key})
            assert via_proxy.json()["active"] is True  # the read proxy reaches the same latch

            closed = await client.post("/api/v1/trading/close-all", json={"reason": "flatten"}, headers=admin)
            body = closed.json()
            assert body["result"] == "ok" and len(body["details"]) == 2
            assert all(d.endswith(": closed") for d in body["details"])
            open_now = await client.get("/api/v1/positions", headers={"X-API-Key": viewer_key})
            assert open_now.status_code == 200 and open_now.json() == []
            trades = await client.get("/api/v1/trades", params={"status": "OPEN"}, headers={"X-API-Key": viewer_key})
            assert sorted(t["symbol"] for t in trades.json()) == ["EURUSD", "GBPUSD"]  # status is fixed: CLOSED
            assert {t["status"] for t in trades.json()} == {"CLOSED"}

            resumed = await client.post("/api/v1/trading/resume", json={"reason": "all clear"}, headers=admin)
            assert resumed.json()["result"] == "ok"

            async def released():
                return not (await signals.get("/api/v1/risk-off")).json()["active"]

            await eventually(released, "signal-generator releasing the risk-off")
            audit = (await client.get("/api/v1/audit", params={"after": before, "action": "close-all"},
                                      headers=admin)).json()
            assert [e["reason"] for e in audit["entries"]] == ["flatten"]
            assert (await client.get("/api/v1/audit", headers={"X-API-Key": viewer_key})).status_code == 403

    rows = audit_rows(migrated_db, before)
    controls = [(r[0], r[1], r[2], r[3], r[4]) for r in rows if r[2] != "auth-failure"]
    assert controls == [("apikey:ops", "admin", "pause", "NFP drill", "ok"),
                        ("apikey:ops", "admin", "close-all", "flatten", "ok"),
                        ("apikey:ops", "admin", "resume", "all clear", "ok")]
    assert [(r[0], r[2]) for r in rows if r[2] == "auth-failure"] == [("apikey:desk", "auth-failure")]
    assert all(len(r[5]) == 32 for r in rows)  # each request's correlation id
    with psycopg.connect(migrated_db.url, user=migrated_db.user, password=migrated_db.password) as conn:
        for statement in ("UPDATE gateway.operator_audit SET result = 'ok'",
                          "DELETE FROM gateway.operator_audit"):
            with pytest.raises(psycopg.Error, match="append-only"):
                conn.execute(statement)
            conn.rollback()


async def test_outcomes_say_what_failed(env, migrated_db):
    admin_key, admin_line = key_pair("ops", Role.ADMIN)
    gateway = env.app("gui-gateway", api_keys=admin_line, execution_engine_url=f"http://127.0.0.1:{free_port()}")
    admin = {"X-API-Key": admin_key}
    async with client_for(gateway) as client:
        closed = (await client.post("/api/v1/trading/close-all", json={"reason": "r"}, headers=admin)).json()
        stopped = (await client.post("/api/v1/trading/stop-all", json={"reason": "r"}, headers=admin)).json()
        unknown = await client.post("/api/v1/trading/halt-everything", json={"reason": "r"}, headers=admin)
        blank = await client.post("/api/v1/trading/pause", json={"reason": "   "}, headers=admin)
        missing = await client.post("/api/v1/trading/pause", json={}, headers=admin)
    assert closed["result"] == "failed"
    assert closed["details"][0].startswith("open positions not listed: execution-engine")
    assert stopped["result"] == "partial"  # the latch went out, the closes did not
    assert stopped["details"][0] == "risk-off latched (signal-generator suppresses new signals)"
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["path", "action"]
    assert "'pause', 'resume', 'stop-all' or 'close-all'" in unknown.json()["detail"][0]["msg"]
    assert blank.status_code == 422 and "reason must not be blank" in blank.text
    assert missing.status_code == 422 and "reason" in missing.text


async def test_status_reports_ticks_lag_and_dead_letters(env, migrated_db):
    viewer_key, viewer_line = key_pair("desk", Role.VIEWER)
    now = WallClock().now()
    await publish(env, PriceTick(symbol="EURUSD", ts=now - timedelta(seconds=90), bid=D("1.1"), ask=D("1.1001"),
                                 volume=None),
                  PriceTick(symbol="USDJPY", ts=now - timedelta(seconds=2), bid=D("150.1"), ask=D("150.12"),
                            volume=None))
    async with env.redis() as redis:
        await redis.xgroup_create("eafix.price.tick", "indicator-engine", id="0")  # nothing read yet: lag 2
        await redis.xadd("eafix.price.tick.dlq", {"envelope": json.dumps({"broken": True}), "error": "x"})
    gateway = env.app("gui-gateway", api_keys=viewer_line, data_ingestor_url=f"http://127.0.0.1:{free_port()}")
    async with client_for(gateway) as client:
        status = (await client.get("/api/v1/system/status", headers={"X-API-Key": viewer_key})).json()
    assert status["streams"]["eafix.price.tick"] == {"lag": 2, "pending": 0, "dlq": 1}
    assert set(status["ticks"]) == {"EURUSD", "USDJPY"}
    assert status["ticks"]["EURUSD"]["age_seconds"] >= 90 > status["ticks"]["USDJPY"]["age_seconds"]
    assert status["services"]["data-ingestor"]["ready"] is False
    assert status["risk_off"] == {"active": False, "reason": None, "source": None, "since": None}
    stale = [p for p in status["problems"] if "last tick" in p]
    assert len(stale) == 1 and stale[0].startswith("EURUSD: last tick ")  # 90 s > 30 s; USDJPY is fresh
    assert "eafix.price.tick: 1 dead letter(s)" in status["problems"]
    # `eafix status --gateway` reads this shape: the same figures and findings
    report = gateway_report(status)
    assert report["streams"]["eafix.price.tick"] == {"lag": 2, "pending": 0, "dlq": 1}
    assert report["ticks"]["EURUSD"] >= 90 and report["risk_off"]["active"] is False
    assert [p for p in report["problems"] if p.startswith("EURUSD")] == stale
    assert "eafix.price.tick: 1 dead letter(s)" in report["problems"]
