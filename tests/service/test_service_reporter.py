"""reporter built from its environment on a real Redis and a migrated PostgreSQL: events from the bus
enter the ledger once (a redelivered trade counts once), the open position is marked to the tick, and
a restart restores the ledger from PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from eafix.contracts import ExecutionReport, TradeClosed
from service.factories import intent, signal, tick
from service.harness import ServiceEnv, eventually, fresh_env, publish, started

pytestmark = pytest.mark.anyio


@pytest.fixture
async def env(monkeypatch, redis_server, migrated_db, tmp_path) -> ServiceEnv:
    return await fresh_env(monkeypatch, redis_server, tmp_path, postgres=migrated_db)


async def test_the_ledger_is_stored_once_and_survives_a_restart(env):
    n = uuid.uuid4().hex[:8]
    now = datetime.now(UTC).replace(microsecond=0)
    closed_id, open_id = f"C-{n}", f"P-{n}"
    trade = TradeClosed(trade_id=closed_id, client_order_id=closed_id, symbol="EURUSD", direction="LONG",
                        lots=Decimal("0.50"), open_price=Decimal("1.10000"), close_price=Decimal("1.10100"),
                        open_time=now - timedelta(hours=1), close_time=now, pips=Decimal(10), pnl=Decimal(50),
                        account_currency="USD", close_reason="TP")
    app = env.app("reporter")
    async with started(app) as client:
        await publish(env, signal(f"SIG-{n}", strategy="rsi_reversal", at=now), producer="signal-generator")
        await publish(env, intent(client_order_id=closed_id, signal_id=f"SIG-{n}"),
                      intent(client_order_id=open_id, signal_id=f"SIG-{n}", entry="1.10000"), producer="risk-manager")
        await publish(env, ExecutionReport(client_order_id=open_id, broker_order_id=None, symbol="EURUSD",
                                           status="FILLED", filled_lots=Decimal("1.00"), avg_price=Decimal("1.10000"),
                                           commission=Decimal(0), reason=None), producer="execution-engine")
        await publish(env, tick("EURUSD", "1.10030", at=now), producer="data-ingestor")
        await publish(env, trade, trade, producer="execution-engine")  # the second copy is a redelivery

        async def summary():
            body = (await client.get("/api/v1/reports/summary")).json()
            ready = body["summary"]["trades"] == 1 and body["open"]["unrealized"] != "0" and body["by_strategy"] \
                and body["by_strategy"][0]["key"] == "rsi_reversal"
            return body if ready else None

        body = await eventually(summary, "the trade, its strategy and the marked position")
        assert body["summary"]["net_pnl"] == "50"
        assert Decimal(body["open"]["unrealized"]) == Decimal(30)  # 0.00030 x 1 lot x 100,000 at the bid
        assert body["execution"]["filled"] == 1 and body["execution"]["submitted"] == 2
        async def equity():  # the gauges follow the last handled message, once it is stored
            text = (await client.get("/metrics")).text
            return text if "eafix_equity_usd 10080.0" in text else None  # 10,000 + 50 realized + 30 unrealized

        metrics = await eventually(equity, "the equity gauge")
        assert 'eafix_pnl_unrealized_usd{symbol="EURUSD"} 30.0' in metrics
        if datetime.now(UTC).date() == now.date():  # the gauge is today's realized P&L (UTC day)
            assert 'eafix_pnl_realized_usd{symbol="EURUSD"} 50.0' in metrics
    restarted = env.app("reporter")
    async with started(restarted) as client:
        body = (await client.get("/api/v1/reports/summary")).json()
        assert body["summary"]["trades"] == 1 and body["by_strategy"][0]["key"] == "rsi_reversal"
        assert body["open"]["open_positions"] == 1 and body["open"]["unmarked"] == 1  # no tick since the start
