"""signal-generator HTTP API over httpx.ASGITransport: risk-off reset and state, recent signals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from eafix.contracts import Bar, IndicatorValues, IndicatorVector, SystemRiskOff
from eafix.runtime.clock import TestClock
from eafix.signal_generator.app import build_router
from eafix.signal_generator.config import load_strategies_text
from eafix.signal_generator.domain import SignalEngine

pytestmark = pytest.mark.anyio

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
CONFIG = """
version: 1
defaults: {duplicate_window_seconds: 0}
strategies:
  rsi_level: {type: rsi_mean_reversion, on_cross: false}
"""


@pytest.fixture
def clock() -> TestClock:
    return TestClock(T0)


@pytest.fixture
def engine(clock) -> SignalEngine:
    return SignalEngine(load_strategies_text(CONFIG, "test.yaml"), clock)


def feed(engine: SignalEngine, clock: TestClock, n: int, symbol: str = "EURUSD", start: datetime = T0) -> None:
    """n consecutive M5 bars with RSI 20 (each one triggers); the clock follows the bar closes."""
    for i in range(n):
        ts = start + timedelta(minutes=5 * i)
        clock.set(ts)
        engine.on_bar(Bar(symbol=symbol, timeframe="M5", ts_open=ts - timedelta(minutes=5), ts_close=ts,
                          open="1.1", high="1.1", low="1.1", close="1.1", volume=1))
        values = dict.fromkeys(IndicatorValues.model_fields)
        values["rsi_14"] = 20.0
        engine.on_indicators(IndicatorVector(symbol=symbol, timeframe="M5", ts=ts, window_version="w1",
                                             values=values, currency_strength={}))


def make_client(engine, **kwargs) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(build_router(engine, **kwargs))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://signals")


async def test_reset_releases_the_latch_and_calls_the_hook(engine):
    calls = []

    async def on_reset(previous, request):
        calls.append((previous.source, request.operator))

    engine.on_risk_off(SystemRiskOff(active=True, reason="drawdown", source="compliance-monitor"))
    async with make_client(engine, on_reset=on_reset) as client:
        state = (await client.get("/api/v1/risk-off")).json()
        assert state == {"active": True, "reason": "drawdown", "source": "compliance-monitor",
                         "since": "2025-01-06T12:00:00Z"}
        r = await client.post("/api/v1/risk-off/reset", json={"operator": "alice", "reason": "checked"})
        assert r.status_code == 200
        body = r.json()
        assert body["released"] is True and body["previous"]["active"] is True
        assert body["current"]["active"] is False
        assert calls == [("compliance-monitor", "alice")]
        assert engine.risk_off is None
        again = (await client.post("/api/v1/risk-off/reset")).json()  # no body, nothing latched
        assert again["released"] is False and calls == [("compliance-monitor", "alice")]


async def test_signals_flow_again_after_reset(engine, clock):
    engine.on_risk_off(SystemRiskOff(active=True, reason="drawdown", source="compliance-monitor"))
    feed(engine, clock, 1)
    async with make_client(engine) as client:
        await client.post("/api/v1/risk-off/reset")
        feed(engine, clock, 1, start=T0 + timedelta(minutes=5))
        items = (await client.get("/api/v1/signals/recent")).json()["items"]
    assert [i["event_type"] for i in items] == ["Signal", "SignalSuppressed"]
    assert items[1]["data"]["reason"] == "RISK_OFF"


async def test_reset_body_is_validated(engine):
    async with make_client(engine) as client:
        r = await client.post("/api/v1/risk-off/reset", json={"operator": ""})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "operator"
        r = await client.post("/api/v1/risk-off/reset", json={"who": "bob"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "who"


async def test_recent_signals_newest_first_with_filters(engine, clock):
    feed(engine, clock, 3)
    feed(engine, clock, 2, symbol="GBPUSD", start=T0 + timedelta(hours=1))
    async with make_client(engine) as client:
        body = (await client.get("/api/v1/signals/recent", params={"limit": 2})).json()
        assert body["count"] == 2
        assert [i["data"]["ts"] for i in body["items"]] == ["2025-01-06T13:05:00Z", "2025-01-06T13:00:00Z"]
        assert body["items"][0]["data"]["sl_pips"] == "20"  # wire form: decimal strings
        eur = (await client.get("/api/v1/signals/recent", params={"symbol": "EURUSD"})).json()
        assert eur["count"] == 3 and {i["data"]["symbol"] for i in eur["items"]} == {"EURUSD"}
        none = (await client.get("/api/v1/signals/recent", params={"kind": "suppressed"})).json()
        assert none == {"count": 0, "items": []}


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 0}, "limit"),
    ({"limit": 501}, "limit"),
    ({"symbol": "eurusd"}, "symbol"),
    ({"kind": "everything"}, "kind"),
])
async def test_recent_bad_query_is_422_naming_the_parameter(engine, params, field):
    async with make_client(engine) as client:
        r = await client.get("/api/v1/signals/recent", params=params)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", field]
