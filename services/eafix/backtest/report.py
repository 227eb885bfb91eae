"""Backtest results: summary statistics, trades.csv and a self-contained report.html.

Definitions (all in the account currency unless named pips):
- win rate: trades with pnl > 0 / all trades;
- profit factor: gross profit / gross loss (None when there is no losing trade);
- max drawdown: the largest fall of the equity curve (balance after each closed trade) from its
  running peak, in money and as a fraction of that peak;
- Sharpe: mean / standard deviation of daily equity returns (UTC days with closed trades; days
  without trades count as 0 return between the first and last trading day), times sqrt(252);
  None with fewer than two days.
"""

from __future__ import annotations

import csv
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from eafix.contracts import TradeClosed


@dataclass(frozen=True)
class Summary:
    trades: int
    wins: int
    losses: int
    win_rate: float | None
    net_pnl: Decimal
    net_pips: Decimal
    gross_profit: Decimal
    gross_loss: Decimal
    profit_factor: float | None
    max_drawdown: Decimal
    max_drawdown_pct: float
    sharpe: float | None
    start_balance: Decimal
    end_balance: Decimal
    currency: str


def equity_curve(trades: Sequence[TradeClosed], start_balance: Decimal) -> list[tuple[datetime, Decimal]]:
    points, balance = [], start_balance
    for t in sorted(trades, key=lambda t: (t.close_time, str(t.trade_id))):
        balance += t.pnl
        points.append((t.close_time, balance))
    return points


def _sharpe(curve: list[tuple[datetime, Decimal]], start_balance: Decimal) -> float | None:
    if not curve:
        return None
    by_day: dict[date, Decimal] = {}
    for ts, balance in curve:
        by_day[ts.date()] = balance  # the day's closing equity
    first, last = min(by_day), max(by_day)
    if first == last:
        return None
    returns, prev, day = [], start_balance, first
    while day <= last:
        close = by_day.get(day, prev)
        returns.append(float((close - prev) / prev) if prev else 0.0)
        prev, day = close, day + timedelta(days=1)
    mean = sum(returns) / len(returns)
    var = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    return None if var == 0 else mean / math.sqrt(var) * math.sqrt(252)


def summarize(trades: Sequence[TradeClosed], start_balance: Decimal, currency: str = "USD") -> Summary:
    wins = [t for t in trades if t.pnl > 0]
    losses = [t for t in trades if t.pnl < 0]
    gross_profit = sum((t.pnl for t in wins), Decimal(0))
    gross_loss = -sum((t.pnl for t in losses), Decimal(0))
    curve = equity_curve(trades, start_balance)
    peak, max_dd, max_dd_pct = start_balance, Decimal(0), 0.0
    for _, balance in curve:
        peak = max(peak, balance)
        if peak - balance > max_dd:
            max_dd = peak - balance
        if peak > 0:
            max_dd_pct = max(max_dd_pct, float((peak - balance) / peak))
    net = gross_profit - gross_loss
    return Summary(
        trades=len(trades), wins=len(wins), losses=len(losses),
        win_rate=len(wins) / len(trades) if trades else None,
        net_pnl=net, net_pips=sum((t.pips for t in trades), Decimal(0)),
        gross_profit=gross_profit, gross_loss=gross_loss,
        profit_factor=float(gross_profit / gross_loss) if gross_loss else None,
        max_drawdown=max_dd, max_drawdown_pct=max_dd_pct, sharpe=_sharpe(curve, start_balance),
        start_balance=start_balance, end_balance=start_balance + net, currency=currency,
    )


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def format_summary(s: Summary) -> str:
    return "\n".join([
        f"trades        {s.trades} ({s.wins} won, {s.losses} lost)",
        f"win rate      {_fmt(s.win_rate, '.1%')}",
        f"net P&L       {s.net_pnl:,.2f} {s.currency} ({s.net_pips:+} pips)",
        f"profit factor {_fmt(s.profit_factor, '.2f')}",
        f"max drawdown  {s.max_drawdown:,.2f} {s.currency} ({s.max_drawdown_pct:.2%} of peak equity)",
        f"Sharpe        {_fmt(s.sharpe, '.2f')} (daily, annualised)",
        f"balance       {s.start_balance:,.2f} -> {s.end_balance:,.2f} {s.currency}",
    ])


TRADE_COLUMNS = ("trade_id", "client_order_id", "symbol", "direction", "lots", "open_time", "open_price",
                 "close_time", "close_price", "pips", "pnl", "account_currency", "close_reason")


def write_trades_csv(trades: Sequence[TradeClosed], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(TRADE_COLUMNS)
        for t in sorted(trades, key=lambda t: (t.close_time, str(t.trade_id))):
            row = t.model_dump(mode="json")
            writer.writerow([row[c] for c in TRADE_COLUMNS])


def _svg(curve: list[tuple[datetime, Decimal]], start_balance: Decimal, width=900, height=260) -> str:
    values = [float(start_balance)] + [float(b) for _, b in curve]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    pts = " ".join(f"{i * (width - 20) / max(len(values) - 1, 1) + 10:.1f},"
                   f"{height - 10 - (v - lo) * (height - 20) / span:.1f}" for i, v in enumerate(values))
    return (f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="equity curve"><rect width="100%" height="100%" fill="#fafafa"/>'
            f'<polyline fill="none" stroke="#1f6feb" stroke-width="1.5" points="{pts}"/>'
            f'<text x="12" y="16" font-size="11">{hi:,.2f}</text>'
            f'<text x="12" y="{height - 14}" font-size="11">{lo:,.2f}</text></svg>')


def write_html(trades: Sequence[TradeClosed], summary: Summary, path: Path, title: str) -> None:
    curve = equity_curve(trades, summary.start_balance)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            t.close_time.strftime("%Y-%m-%d %H:%M"), t.symbol, t.direction, t.lots, t.open_price, t.close_price,
            t.pips, t.pnl, t.close_reason)) + "</tr>"
        for t in sorted(trades, key=lambda t: (t.close_time, str(t.trade_id))))
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ddd;padding:3px 8px;text-align:right}}pre{{background:#f4f4f4;padding:12px}}</style>
</head><body><h1>{html.escape(title)}</h1><pre>{html.escape(format_summary(summary))}</pre>
<h2>Equity</h2>{_svg(curve, summary.start_balance)}
<h2>Trades ({len(trades)})</h2><table><thead><tr><th>closed</th><th>symbol</th><th>direction</th><th>lots</th>
<th>open</th><th>close</th><th>pips</th><th>P&amp;L</th><th>reason</th></tr></thead><tbody>{rows}</tbody></table>
</body></html>
"""
    path.write_text(body)
