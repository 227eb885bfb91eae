"""risk-manager built from its environment on a real Redis and a migrated PostgreSQL: signals become
OrderIntents; the portfolio is restored at start and reloaded when a standby replica takes over."""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from eafix import cli
from eafix.contracts import PriceTick, Signal
from service.factories import signal, tick
from service.harness import ServiceEnv, eventually, fresh_env, publish, read, redis_client, started

pytestmark = pytest.mark.anyio


@pytest.fixture
async def env(monkeypatch, redis_server, migrated_db, tmp_path) -> ServiceEnv:
    return await fresh_env(monkeypatch, redis_server, tmp_path, postgres=migrated_db)


def risk_settings() -> str:
    # an account of its own: the migrated database is shared by the session's tests
    return f'{{"account_id": "acct-{uuid.uuid4().hex[:10]}", "opening_balance": "10000"}}'


def quote(bid: str = "1.08500") -> PriceTick:
    return tick("EURUSD", bid, at=datetime.now(UTC))


def new_signal(n: int) -> Signal:
    """A signal of its own (the database is shared by the session's tests), priced like `quote()`."""
    return signal(f"SIG-{uuid.uuid4().hex[:8]}-{n}", entry="1.08500", at=datetime.now(UTC))


async def knows_a_quote(client) -> bool:
    """Ticks and signals are separate streams: a signal handled before any tick is refused (no quote)."""
    probe = new_signal(0).model_dump(mode="json")  # a dry run: records nothing
    response = await client.post("/api/v1/validate", json=probe)
    return "SAFETY_FAIL" not in response.json()["reasons"]  # no quote: SAFETY_FAIL


async def decisions(env: ServiceEnv) -> list:
    """OrderIntents and RiskRejecteds so far (a wait for one of them fails with the other in view)."""
    return [*await read(env, "eafix.orders.validated"), *await read(env, "eafix.risk.rejected")]


async def portfolio(client) -> dict:
    return (await client.get("/api/v1/portfolio")).json()


async def test_signals_become_order_intents_and_the_portfolio_survives_a_restart(env):
    settings = risk_settings()
    first = env.app("risk-manager", RISK=settings)
    async with started(first) as client:
        ready = (await client.get("/readyz")).json()
        assert ready["checks"] == {"redis": {"status": "up"}, "postgres": {"status": "up"}}
        await publish(env, quote(), producer="data-ingestor")
        await eventually(lambda: knows_a_quote(client), "the quote")
        (signal_env,) = await publish(env, new_signal(1), producer="signal-generator")
        (intent,) = await eventually(lambda: decisions(env), "a decision")
        assert intent.event_type == "OrderIntent", intent.data
        before = await portfolio(client)
    assert str(intent.causation_id) == signal_env["event_id"]
    assert intent.data.signal_id == signal_env["data"]["signal_id"]
    # 2 % of 10,000 USD at 20 pips of 10 USD per lot: 1.00 lot
    assert intent.data.lots == Decimal("1.00") and intent.data.account_currency == "USD"
    assert [p["client_order_id"] for p in before["positions"]] == [intent.data.client_order_id]

    again = env.app("risk-manager", RISK=settings)  # a new process: the engine comes from PostgreSQL
    async with started(again) as client:
        after = await portfolio(client)
    assert after["positions"] == before["positions"] and after["open_positions"] == 1


async def test_a_standby_reloads_the_portfolio_when_it_takes_over(env):
    settings = risk_settings()
    a = env.app("risk-manager", consumer="pod-a", RISK=settings)
    b = env.app("risk-manager", consumer="pod-b", RISK=settings)
    bus_a, bus_b = a.state.parts.state["bus"], b.state.parts.state["bus"]
    async with AsyncExitStack() as stack_a, AsyncExitStack() as stack_b:  # b's closes first, then a's (if open)
        client_a = await stack_a.enter_async_context(started(a))
        await eventually(lambda: bus_a.owned_streams(Signal.TOPIC, "risk-manager"), "pod-a to consume")
        client_b = await stack_b.enter_async_context(started(b))
        await publish(env, quote(), producer="data-ingestor")
        await eventually(lambda: knows_a_quote(client_a), "pod-a to know the quote")
        await publish(env, new_signal(1), producer="signal-generator")
        (intent,) = await eventually(lambda: decisions(env), "pod-a's decision")
        assert intent.event_type == "OrderIntent", intent.data
        assert not bus_b.owned_streams(Signal.TOPIC, "risk-manager")
        assert (await portfolio(client_b))["open_positions"] == 0  # the standby's memory is stale

        await stack_a.aclose()  # pod-a stops (rolling update): its leases are released
        await eventually(lambda: all(bus_b.owned_streams(t, "risk-manager") for t in (
            "eafix.price.tick", "eafix.signals.generated", "eafix.execution.reports", "eafix.trades.closed")),
            "pod-b to take every topic over")
        reloaded = await eventually(lambda: positions_of(client_b), "pod-b's reloaded portfolio")
        assert reloaded == [intent.data.client_order_id]

        await publish(env, quote(), producer="data-ingestor")
        await eventually(lambda: knows_a_quote(client_b), "pod-b to know the quote")
        (second,) = await publish(env, new_signal(2), producer="signal-generator")
        (rejected,) = await eventually(lambda: read(env, "eafix.risk.rejected"), "pod-b's decision")
    # pod-b decided with pod-a's open position in its portfolio: one position per symbol
    assert rejected.data.signal_id == second["data"]["signal_id"]
    assert [r.value for r in rejected.data.reasons] == ["MAX_OPEN_POSITIONS"]
    assert rejected.producer == "risk-manager"


async def positions_of(client) -> list[str]:
    return [p["client_order_id"] for p in (await portfolio(client))["positions"]]


async def test_stopping_right_after_start_stops_the_consumers_instead_of_cancelling_them(env, caplog):
    app = env.app("risk-manager", RISK=risk_settings())
    async with started(app):
        pass  # SIGTERM before the consumer loop got a turn of the event loop
    assert not [r for r in caplog.records if r.levelname == "ERROR"], [r.getMessage() for r in caplog.records]
    async with redis_client(env) as r:
        left = [k async for k in r.scan_iter(match="eafix:bus:*")]
    # no lease or membership left; what stays is each group's partition-count record (check_partitions)
    assert [k for k in left if not k.startswith("eafix:bus:partitions:risk-manager:")] == []


@pytest.mark.parametrize(("value", "problem"), [
    ('{"risk_percent": "5"}', "SERVICE_RISK: risk_percent: Input should be less than or equal to 3.5 (got '5')"),
    ('{"max_open_positions": 0, "max_lots": 3}', "SERVICE_RISK: max_open_positions: Input should be greater than or "
                                                 "equal to 1 (got 0); max_lots: unknown key"),
    ('{"risk_percent": 2.0,}', "SERVICE_RISK: not valid JSON (Expecting property name enclosed in double quotes: "
                               "line 1 column 22 (char 21))"),
    ('["risk_percent", 2]', "SERVICE_RISK: expected a JSON object, got list"),
])
def test_bad_risk_config_stops_serve_with_one_clear_line(capsys, monkeypatch, value, problem):
    monkeypatch.setenv("SERVICE_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("SERVICE_POSTGRES_URL", "postgresql://eafix@127.0.0.1:1/eafix_trading")
    monkeypatch.setenv("SERVICE_RISK", value)
    assert cli.main(["serve", "risk-manager"]) == 2
    assert capsys.readouterr().err == f"eafix serve risk-manager: {problem}\n"
