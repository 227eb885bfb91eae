"""reporter built from its environment on a real Redis and a migrated PostgreSQL: events from the bus
enter the ledger once (a redelivered trade counts once), the open position is marked to the tick, and
a restart restores the ledger from PostgreSQL; the report's price chart has the candles of the bars
topic (seeded from the stream at start, then followed), the suppressed signals and each trade's SL/TP."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from eafix.contracts import ExecutionReport, SignalSuppressed, TradeClosed
from service.factories import bar, intent, signal, tick
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


async def test_the_report_draws_candles_suppressions_and_levels_from_the_bus(env):
    n = uuid.uuid4().hex[:8]
    t = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # a Monday
    five = timedelta(minutes=5)
    suppressed = SignalSuppressed(symbol="EURUSD", timeframe="M5", strategy="ema_cross", reason="LOW_CONFIDENCE",
                                  direction="LONG", confidence=None, detail=None, ts=t + timedelta(minutes=7))
    trade = TradeClosed(trade_id=f"T-{n}", client_order_id=f"T-{n}", symbol="EURUSD", direction="SHORT",
                        lots=Decimal("0.10"), open_price=Decimal("1.10100"), close_price=Decimal("1.10000"),
                        open_time=t + five, close_time=t + 2 * five, pips=Decimal(10), pnl=Decimal(10),
                        account_currency="USD", close_reason="TP")
    # before reporter starts: what it finds in the streams (an M1 bar is not the chart's M5)
    await publish(env, bar("1.10000", "1.10150", "1.09950", "1.10100", timeframe="M5", opened=t),
                  bar("1.10100", "1.10200", "1.10050", "1.10150", timeframe="M5", opened=t + five),
                  bar("1.3", "1.3", "1.3", "1.3", timeframe="M1", opened=t), producer="indicator-engine")
    await publish(env, suppressed, producer="signal-generator")
    async with started(env.app("reporter")) as client:
        # then live: a new bar, one seen before, the order (SL 20, TP 40 pips) and its trade
        await publish(env, bar("1.10150", "1.10160", "1.09900", "1.10000", timeframe="M5", opened=t + 2 * five),
                      bar("1.10100", "1.10200", "1.10050", "1.10150", timeframe="M5", opened=t + five),
                      producer="indicator-engine")
        await publish(env, intent(client_order_id=f"T-{n}", direction="SHORT", sl="20", tp="40"),
                      producer="risk-manager")
        await publish(env, trade, producer="execution-engine")

        async def chart():
            page = (await client.get("/api/v1/reports/report.html?from=2026-01-05&to=2026-01-05")).text
            found = re.search(r'<div id="timeline".*?<script type="application/json">(.*?)</script>', page)
            traces = {t["name"]: t for t in json.loads(found.group(1))["data"]}
            candles = traces.get("EURUSD M5", {})
            return traces if len(candles.get("x", ())) == 3 and "SL" in traces else None

        traces = await eventually(chart, "three M5 candles and the trade's levels in the report")
    candles = traces["EURUSD M5"]
    assert candles["type"] == "candlestick"
    assert candles["x"] == ["2026-01-05 10:00", "2026-01-05 10:05", "2026-01-05 10:10"]
    assert candles["open"] == [1.1, 1.101, 1.1015] and candles["close"] == [1.101, 1.1015, 1.1]
    assert candles["high"] == [1.1015, 1.102, 1.1016] and candles["low"] == [1.0995, 1.1005, 1.099]
    # the suppression at 10:07 on the close of the 10:05 candle
    assert traces["suppressed signal"]["x"] == ["2026-01-05 10:07"] and traces["suppressed signal"]["y"] == [1.1015]
    # SHORT at 1.10100: SL 20 pips above (1.10300), TP 40 below (1.09700), from open to close
    assert traces["SL"]["y"] == [1.103, 1.103, None] and traces["TP"]["y"] == [1.097, 1.097, None]
    assert traces["SL"]["x"] == ["2026-01-05 10:05", "2026-01-05 10:10", None]
    async with started(env.app("reporter")) as client:  # the order's pips come back from PostgreSQL
        page = (await client.get("/api/v1/reports/report.html?from=2026-01-05&to=2026-01-05")).text
    found = re.search(r'<div id="timeline".*?<script type="application/json">(.*?)</script>', page)
    assert {t["name"]: t for t in json.loads(found.group(1))["data"]}["TP"]["y"] == [1.097, 1.097, None]
