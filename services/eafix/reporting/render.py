"""Renderings of a ledger besides the charts: the statistics table and text summary, trades.csv, the
equity curve as CSV and the JSON report (every statistic, for machines). The backtest writes them to
files, the reporter serves them; both call these functions."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from pydantic import TypeAdapter

from eafix.contracts import TradeClosed
from eafix.reporting.content import ReportContent
from eafix.reporting.metrics import Summary, equity_curve, monthly_returns, ordered


def fmt(value: float | Decimal | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _days(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f} days"


def statistics(s: Summary) -> list[tuple[str, str]]:
    """The statistics table (label, value): the same rows in the text summary, the HTML and the PNG."""
    c = s.currency
    period = "n/a" if s.start is None or s.end is None else f"{s.start:%Y-%m-%d %H:%M} .. {s.end:%Y-%m-%d %H:%M} UTC"
    return [
        ("period", period),
        ("balance", f"{s.start_balance:,.2f} -> {s.end_balance:,.2f} {c}"),
        ("return", fmt(s.return_pct, ".2%")),
        ("CAGR", fmt(s.cagr, ".2%")),
        ("volatility (ann.)", fmt(s.volatility, ".2%")),
        ("Sharpe", fmt(s.sharpe, ".2f")),
        ("Sortino", fmt(s.sortino, ".2f")),
        ("Calmar", fmt(s.calmar, ".2f")),
        ("max drawdown", f"{s.max_drawdown_pct:.2%} of peak equity; {s.max_drawdown:,.2f} {c} deepest in money"),
        ("avg drawdown", f"{fmt(s.avg_drawdown, ',.2f')} {c} ({fmt(s.avg_drawdown_pct, '.2%')})"),
        ("max drawdown duration", _days(s.max_drawdown_days)),
        ("avg drawdown duration", _days(s.avg_drawdown_days)),
        ("trades", f"{s.trades} ({s.wins} won, {s.losses} lost)"),
        ("win rate", fmt(s.win_rate, ".1%")),
        ("net P&L", f"{s.net_pnl:,.2f} {c} ({s.net_pips:+} pips)"),
        ("best / worst trade", f"{fmt(s.best_trade, ',.2f')} / {fmt(s.worst_trade, ',.2f')} {c}"),
        ("avg trade", f"{fmt(s.expectancy, ',.2f')} {c} ({fmt(s.avg_trade_pips, '+.1f')} pips)"),
        ("avg win / loss", f"{fmt(s.avg_win, ',.2f')} / {fmt(s.avg_loss, ',.2f')} {c}"),
        ("profit factor", fmt(s.profit_factor, ".2f")),
        ("expectancy", f"{fmt(s.expectancy, ',.2f')} {c} per trade"),
        ("SQN", fmt(s.sqn, ".2f")),
        ("exposure time", fmt(s.exposure_time, ".1%")),
    ]


def format_summary(s: Summary) -> str:
    rows = statistics(s)
    width = max(len(label) for label, _ in rows) + 2
    return "\n".join(f"{label:<{width}}{value}" for label, value in rows)


TRADE_COLUMNS = ("trade_id", "client_order_id", "symbol", "direction", "lots", "open_time", "open_price",
                 "close_time", "close_price", "pips", "pnl", "account_currency", "close_reason")


def trades_csv(trades: Sequence[TradeClosed]) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(TRADE_COLUMNS)
    for t in ordered(trades):
        row = t.model_dump(mode="json")
        writer.writerow([row[c] for c in TRADE_COLUMNS])
    return out.getvalue()


def write_trades_csv(trades: Sequence[TradeClosed], path: Path) -> None:
    with path.open("w", newline="") as f:
        f.write(trades_csv(trades))


def equity_csv(trades: Sequence[TradeClosed], start_balance: Decimal) -> str:
    """The equity curve: the opening balance, then the balance after each closed trade."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(("ts", "equity"))
    writer.writerow(("", start_balance))
    for ts, balance in equity_curve(trades, start_balance):
        writer.writerow((ts.isoformat().replace("+00:00", "Z"), balance))
    return out.getvalue()


def report_json(content: ReportContent) -> str:
    """Every statistic, the breakdowns, the monthly returns and the run's counts; money as strings."""
    s = content.summary
    document = {
        "title": content.title, "summary": s, "counts": dict(content.counts),
        "breakdowns": {by: list(groups) for by, groups in content.breakdowns.items()},
        "monthly_returns": [{"year": y, "month": m, "return": r}
                            for y, m, r in monthly_returns(equity_curve(content.trades, s.start_balance),
                                                           s.start_balance)],
        "reentry_decisions": len(content.reentry),
    }
    return TypeAdapter(dict).dump_json(document, indent=2).decode() + "\n"
