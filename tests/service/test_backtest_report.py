"""Backtest statistics on hand-computed trade lists, and the written artefacts."""

import csv
import math
from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

from eafix.contracts import TradeClosed
from eafix.reporting.content import ReportContent
from eafix.reporting.metrics import summarize
from eafix.reporting.page import write_html
from eafix.reporting.render import format_summary, write_trades_csv


def trade(pnl: str, pips: str, day: int, hour: int = 12) -> TradeClosed:
    return TradeClosed(
        trade_id=str(uuid4()), client_order_id=f"o-{day}-{hour}", symbol="EURUSD", direction="LONG", lots="0.10",
        open_price="1.10000", close_price="1.10100", open_time=datetime(2026, 1, day, hour - 1, tzinfo=UTC),
        close_time=datetime(2026, 1, day, hour, tzinfo=UTC), pips=pips, pnl=pnl, account_currency="USD",
        close_reason="TP" if Decimal(pnl) > 0 else "SL")


def test_summary_by_hand():
    trades = [trade("100", "10.0", 5), trade("-50", "-5.0", 6), trade("200", "20.0", 7), trade("-150", "-15.0", 8)]
    s = summarize(trades, Decimal("10000"))
    assert (s.trades, s.wins, s.losses) == (4, 2, 2)
    assert s.win_rate == 0.5
    assert s.net_pnl == Decimal("100") and s.net_pips == Decimal("10.0")
    assert s.profit_factor == 300 / 200
    # equity 10100, 10050, 10250, 10100: the worst fall is 10250 -> 10100
    assert s.max_drawdown == Decimal("150")
    assert math.isclose(s.max_drawdown_pct, 150 / 10250)
    returns = [100 / 10000, -50 / 10100, 200 / 10050, -150 / 10250]
    mean = sum(returns) / 4
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / 3)
    assert math.isclose(s.sharpe, mean / std * math.sqrt(252))
    assert s.end_balance == Decimal("10100")


def test_summary_without_losses_or_trades():
    assert summarize([trade("10", "1.0", 5)], Decimal("1000")).profit_factor is None
    empty = summarize([], Decimal("1000"))
    assert (empty.trades, empty.win_rate, empty.sharpe, empty.max_drawdown) == (0, None, None, Decimal(0))
    assert "n/a" in format_summary(empty)


def test_artefacts(tmp_path):
    trades = [trade("100", "10.0", 5), trade("-50", "-5.0", 6)]
    write_trades_csv(trades, tmp_path / "trades.csv")
    rows = list(csv.DictReader((tmp_path / "trades.csv").open()))
    assert [r["pnl"] for r in rows] == ["100", "-50"]
    assert rows[0]["close_reason"] == "TP"
    write_html(ReportContent("EURUSD H1", trades, summarize(trades, Decimal("1000"))), tmp_path / "report.html")
    text = (tmp_path / "report.html").read_text()
    assert text.split("<h2>Trades (2)</h2>")[1].count("<tr>") == 3 and "<title>EURUSD H1</title>" in text
    assert text.count('class="figure"') == 2  # the distribution and the timeline, drawn by the page
