"""risk-manager HTTP API over httpx.ASGITransport: validate, position-size, portfolio; 422 names the field."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI

from eafix.contracts import PriceTick
from eafix.risk_manager.app import build_router
from eafix.risk_manager.config import RiskConfig
from eafix.risk_manager.engine import RiskEngine
from eafix.runtime.clock import TestClock

pytestmark = pytest.mark.anyio

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)


def signal_doc(**overrides) -> dict:
    doc = {"signal_id": "SIG-20250106T120000Z-000001", "symbol": "EURUSD", "timeframe": "M5",
           "strategy": "ema_cross", "direction": "LONG", "confidence": 0.72,
           "source_indicators": {"ema_20": 1.1, "ema_50": 1.09}, "entry_price": "1.10010", "sl_pips": "20",
           "tp_pips": "40", "ts": "2025-01-06T12:00:00Z"}
    doc.update(overrides)
    return doc


@pytest.fixture
def engine() -> RiskEngine:
    e = RiskEngine(RiskConfig(correlated_pairs=()), TestClock(T0))
    e.on_tick(PriceTick(symbol="EURUSD", ts=T0, bid="1.10000", ask="1.10010", volume=None))
    return e


@pytest.fixture
async def client(engine):
    app = FastAPI()
    ids = iter(f"val-{i}" for i in range(1, 100))
    app.include_router(build_router(engine, new_validation_id=lambda: next(ids)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://risk") as c:
        yield c


async def test_validate_approves_without_reserving(client, engine):
    r = await client.post("/api/v1/validate", json=signal_doc())
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "approved" and body["reasons"] == [] and body["rejection_reason"] is None
    assert body["validation_id"] == "val-1" and body["already_processed"] is False
    # 10,000 x 2 % / (20 x 10) = 1.00 lot; decimals travel as strings
    assert body["order"]["lots"] == "1.00" and body["order"]["tp_pips"] == "40"
    assert body["order"]["risk_percent"] == "2.0000" and body["order"]["client_order_id"] is None
    assert engine.portfolio.positions == {}  # a dry run reserves nothing
    assert engine.decision_for("SIG-20250106T120000Z-000001") is None


async def test_validate_rejection_is_a_200_with_reasons(client):
    r = await client.post("/api/v1/validate", json=signal_doc(tp_pips="20"))
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "rejected" and body["reasons"] == ["SL_TP_RATIO"]
    assert body["rejection_reason"] == "SL_TP_RATIO" and body["order"] is None


async def test_validate_missing_conversion_is_safety_fail(client):
    r = await client.post("/api/v1/validate", json=signal_doc(symbol="EURGBP", entry_price="0.88"))
    body = r.json()
    assert r.status_code == 200 and body["status"] == "rejected" and "SAFETY_FAIL" in body["reasons"]


async def test_validate_returns_the_recorded_decision_of_a_processed_signal(client, engine):
    from eafix.contracts import Signal

    intent = engine.on_signal(Signal.model_validate(signal_doc()))
    body = (await client.post("/api/v1/validate", json=signal_doc())).json()
    assert body["already_processed"] is True and body["status"] == "approved"
    assert body["order"]["client_order_id"] == intent.client_order_id


async def test_validate_null_tp_reports_the_default(client):
    body = (await client.post("/api/v1/validate", json=signal_doc(tp_pips=None))).json()
    assert body["status"] == "approved" and body["order"]["tp_pips"] == "40.0"
    assert any("tp_pips defaulted" in w for w in body["warnings"])


@pytest.mark.parametrize(("overrides", "field"), [
    ({"sl_pips": 20}, "sl_pips"),  # JSON number instead of a decimal string
    ({"direction": "BUY"}, "direction"),
    ({"confidence": 1.5}, "confidence"),
    ({"symbol": "eurusd"}, "symbol"),
    ({"unexpected": 1}, "unexpected"),
])
async def test_validate_bad_input_is_422_naming_the_field(client, overrides, field):
    r = await client.post("/api/v1/validate", json=signal_doc(**overrides))
    assert r.status_code == 422
    assert any(err["loc"][-1] == field for err in r.json()["detail"]), r.json()


async def test_validate_missing_field_is_422(client):
    doc = signal_doc()
    del doc["tp_pips"]
    r = await client.post("/api/v1/validate", json=doc)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "tp_pips"]


async def test_position_size(client):
    r = await client.post("/api/v1/position-size", json={"symbol": "EURUSD", "sl_pips": "30"})
    assert r.status_code == 200
    body = r.json()
    # 200 / (30 x 10) = 0.666 -> 0.66; risks 198 USD = 1.98 %
    assert body["status"] == "approved" and body["sizing"]["lots"] == "0.66"
    assert Decimal(body["sizing"]["actual_risk_percent"]) == Decimal("1.98")
    assert Decimal(body["sizing"]["pip_value_per_lot"]) == 10 and body["account_currency"] == "USD"
    r = await client.post("/api/v1/position-size", json={"symbol": "EURUSD", "sl_pips": "20", "risk_percent": "3",
                                                         "multiplier": "2", "account_balance": "20000"})
    body = r.json()
    # 20,000 x min(6, 3.5) % = 700 / 200 = 3.50
    assert body["sizing"]["lots"] == "3.50" and Decimal(body["sizing"]["effective_risk_percent"]) == Decimal("3.5")


async def test_position_size_refusals_are_200(client):
    r = await client.post("/api/v1/position-size", json={"symbol": "USDJPY", "sl_pips": "20"})
    assert r.status_code == 200 and r.json()["status"] == "rejected" and r.json()["reasons"] == ["SAFETY_FAIL"]
    r = await client.post("/api/v1/position-size", json={"symbol": "EURUSD", "sl_pips": "20.1",
                                                         "account_balance": "100"})
    assert r.json()["reasons"] == ["PER_TRADE_RISK_EXCEEDED"] and r.json()["sizing"]["lots"] == "0.01"


@pytest.mark.parametrize(("body", "field"), [
    ({"symbol": "EURUSD"}, "sl_pips"),
    ({"symbol": "EURUSD", "sl_pips": "-5"}, "sl_pips"),
    ({"symbol": "EURUSD", "sl_pips": "20.25"}, "sl_pips"),
    ({"symbol": "EUR", "sl_pips": "20"}, "symbol"),
    ({"symbol": "EURUSD", "sl_pips": "20", "multiplier": "5"}, "multiplier"),
    ({"symbol": "EURUSD", "sl_pips": "20", "risk_percent": "0"}, "risk_percent"),
    ({"symbol": "EURUSD", "sl_pips": "20", "account_balance": "-1"}, "account_balance"),
])
async def test_position_size_bad_input_is_422_naming_the_field(client, body, field):
    r = await client.post("/api/v1/position-size", json=body)
    assert r.status_code == 422
    assert [err["loc"][-1] for err in r.json()["detail"]] == [field], r.json()


async def test_portfolio_summary(client, engine):
    from eafix.contracts import Signal

    engine.on_signal(Signal.model_validate(signal_doc()))
    body = (await client.get("/api/v1/portfolio")).json()
    assert body["balance"] == "10000" and body["open_positions"] == 1
    assert body["positions"][0]["state"] == "PENDING" and body["positions"][0]["lots"] == "1.00"
    assert body["halted"] is None
