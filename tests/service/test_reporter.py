"""reporter: its book (unrealized P&L, fill rate, slippage, redelivery), its API, and the replay test:
the reporter's figures on a backtest's trade ledger equal the backtest report's."""

from __future__ import annotations

import asyncio
import math
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from pydantic import TypeAdapter

from eafix import services
from eafix.backtest.data import load, write_sample
from eafix.backtest.runner import run
from eafix.contracts import ExecutionReport, TradeClosed, make_envelope
from eafix.reporter.book import ReportBook
from eafix.reporting.metrics import Summary, summarize
from eafix.runtime.app import create_app
from eafix.runtime.service import build_parts, settings_class
from eafix.signal_generator.config import load_default_strategies
from service.factories import intent, signal, tick

T = datetime(2026, 1, 5, 12, tzinfo=UTC)


def filled(cid: str, symbol: str, lots: str, price: str) -> ExecutionReport:
    return ExecutionReport(client_order_id=cid, broker_order_id="B-" + cid, symbol=symbol, status="FILLED",
                           filled_lots=Decimal(lots), avg_price=Decimal(price), commission=Decimal(0), reason=None)


def closed(n: int, cid: str, pnl: str, at: datetime, symbol: str = "EURUSD") -> TradeClosed:
    return TradeClosed(trade_id=cid, client_order_id=cid, symbol=symbol, direction="LONG", lots="0.50",
                       open_price="1.10000", close_price="1.10100", open_time=at - timedelta(hours=1),
                       close_time=at, pips="10", pnl=pnl, account_currency="USD",
                       close_reason="TP" if Decimal(pnl) > 0 else "SL")


def test_unrealized_fill_rate_and_slippage_by_hand():
    book = ReportBook(Decimal("10000"))
    book.on_order(intent(1, client_order_id="E", lots="0.50", entry="1.09990"), T)
    book.on_order(intent(2, client_order_id="J", symbol="USDJPY", direction="SHORT", entry="150.02"), T)
    book.on_order(intent(3, client_order_id="G", symbol="GBPUSD", entry="1.25000"), T)
    book.on_order(intent(4, client_order_id="X", entry="1.10000"), T)  # never filled
    book.on_execution(filled("E", "EURUSD", "0.50", "1.10000"), T)
    book.on_execution(filled("J", "USDJPY", "1.00", "150.00"), T)
    book.on_execution(filled("G", "GBPUSD", "1.00", "1.25000"), T)
    book.on_tick(tick("EURUSD", "1.10200", "1.10220", at=T))
    book.on_tick(tick("USDJPY", "149.50", "149.60", at=T))
    u = book.unrealized()
    # LONG at the bid: 0.00200 x 0.5 x 100,000 = 100 USD; SHORT at the ask: 0.40 x 100,000 = 40,000 JPY at
    # the USDJPY mid 149.55; GBPUSD has no tick: unmarked
    assert u.by_symbol["EURUSD"] == Decimal(100)
    assert math.isclose(u.by_symbol["USDJPY"], Decimal(40000) / Decimal("149.55"), rel_tol=1e-12)
    assert (u.open_positions, u.unmarked) == (3, 1)
    assert book.fill_rate() == (4, 3, 0.75)
    slips = {s.client_order_id: s for s in book.slippage()}
    assert slips["E"].pips == Decimal("1.0")  # LONG filled 1 pip above the intended price: a cost
    assert slips["J"].pips == Decimal("2")  # SHORT filled 2 pips below: a cost too
    assert slips["G"].pips == 0
    assert slips["E"].bps == Decimal("0.0001") / Decimal("1.09990") * 10000


def test_a_redelivered_trade_counts_once_and_closes_its_position():
    book = ReportBook(Decimal("10000"))
    book.on_order(intent(1, client_order_id="E"), T)
    book.on_execution(filled("E", "EURUSD", "0.50", "1.10000"), T)
    trade = closed(1, "E", "50", T)
    assert book.on_trade(trade) is not None and book.on_trade(trade) is None
    assert book.realized_total() == 50 and book.open_fills() == [] and len(book.ledger()) == 1


def message(event, at: datetime = T) -> dict:
    return make_envelope(event, "test", at).model_dump(mode="json")


def reporter_app():
    spec = services.BY_NAME["reporter"]
    settings = settings_class(spec).defaults(spec)
    app = create_app(spec, settings, build_parts(spec, settings))
    return app, app.state.parts.state["stage"]


async def get(app, url: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        return await client.get(url)


def test_api_reports_and_bad_dates():
    app, stage = reporter_app()

    async def feed():
        await stage.on_signal(message(signal("SIG-1", strategy="ema_cross")))
        await stage.on_order(message(intent(1, client_order_id="A", signal_id="SIG-1")))
        for t in (closed(1, "A", "120", T), closed(2, "B", "-20", T + timedelta(hours=1)),
                  closed(3, "C", "30", T + timedelta(days=1))):
            await stage.on_trade_closed(message(t))
            await stage.on_trade_closed(message(t))  # redelivery

    asyncio.run(feed())
    daily = asyncio.run(get(app, "/api/v1/reports/daily-pnl?date=2026-01-05")).json()
    assert (daily["realized"], daily["total"], daily["unrealized"], daily["total_trades"]) == ("100", "100", None, 2)
    assert {g["key"]: g["net_pnl"] for g in daily["by_strategy"]} == {"ema_cross": "120", "unknown": "-20"}
    summary = asyncio.run(get(app, "/api/v1/reports/summary?from=2026-01-05&to=2026-01-06")).json()
    assert summary["from"] == "2026-01-05" and summary["summary"]["trades"] == 3
    assert summary["summary"]["profit_factor"] == 150 / 20 and summary["summary"]["net_pnl"] == "130"
    later = asyncio.run(get(app, "/api/v1/reports/summary?from=2026-01-06")).json()["summary"]
    assert (later["trades"], later["start_balance"]) == (1, "10100")  # starts from the earlier realized P&L
    csv = asyncio.run(get(app, "/api/v1/reports/equity.csv")).text.splitlines()
    assert csv == ["ts,equity", ",10000", "2026-01-05T12:00:00Z,10120", "2026-01-05T13:00:00Z,10100",
                   "2026-01-06T12:00:00Z,10130"]
    assert asyncio.run(get(app, "/api/v1/reports/equity.svg")).status_code == 404  # the report draws it
    page = asyncio.run(get(app, "/api/v1/reports/report.html")).text
    assert "<h2>By strategy</h2>" in page and page.split("<h2>Trades")[1].count("<tr>") == 4
    assert page.count('class="figure"') == 2 and "<td>net P&amp;L</td><td>130.00 USD" in page
    for url, param in (("/api/v1/reports/daily-pnl?date=2026-02-30", "date"),
                       ("/api/v1/reports/summary?from=yesterday", "from"),
                       ("/api/v1/reports/summary?to=2026-1-5", "to"),
                       ("/api/v1/reports/summary?from=2026-01-06&to=2026-01-05", "from"),
                       ("/api/v1/reports/equity.csv?from=2026-01-06&to=2026-01-05", "from")):
        response = asyncio.run(get(app, url))
        assert response.status_code == 422, url
        assert response.json()["detail"][0]["loc"] == ["query", param], url
    metrics = asyncio.run(get(app, "/metrics")).text
    assert 'eafix_trades_closed_total{outcome="win",symbol="EURUSD"} 2.0' in metrics  # once per trade id
    assert "eafix_equity_peak_usd 10130.0" in metrics


@pytest.fixture(scope="module")
def backtest(tmp_path_factory):
    path = write_sample(tmp_path_factory.mktemp("sample") / "EURUSD_H1.csv", seed=7, bars=2000)
    return asyncio.run(run(load(path), load_default_strategies()))


def test_the_reporter_on_a_replayed_ledger_equals_the_backtest_report(backtest):
    assert len(backtest.trades) > 20
    expected = summarize(backtest.trades, backtest.opening_balance, backtest.account_currency)
    app, stage = reporter_app()

    async def replay():
        for t in backtest.trades:
            await stage.on_trade_closed(message(t, t.close_time))

    asyncio.run(replay())
    got = asyncio.run(get(app, "/api/v1/reports/summary")).json()["summary"]
    assert set(got) == {f.name for f in fields(Summary)}
    assert TypeAdapter(Summary).validate_python(got) == expected  # every statistic, each one equal
    assert expected.sqn is not None and expected.calmar is not None and expected.exposure_time is not None
    # the reporter stage the backtest wires holds the same ledger
    assert sorted(t.trade_id for t in backtest.ledger.ledger()) == sorted(t.trade_id for t in backtest.trades)
    assert backtest.ledger.strategy_of() == {t.trade_id: backtest.strategy_of[t.trade_id] for t in backtest.trades}
