"""Renderings of a ledger: the text summary, trades.csv, the equity curve (SVG, CSV) and the HTML
report. The backtest writes them to files, the reporter serves them; both call these functions."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from eafix.contracts import TradeClosed
from eafix.contracts.events import ReentryDecision
from eafix.reporting.breakdown import GroupFigures
from eafix.reporting.metrics import Summary, equity_curve, ordered


def _fmt(value: float | Decimal | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def format_summary(s: Summary) -> str:
    return "\n".join([
        f"trades        {s.trades} ({s.wins} won, {s.losses} lost)",
        f"win rate      {_fmt(s.win_rate, '.1%')}",
        f"net P&L       {s.net_pnl:,.2f} {s.currency} ({s.net_pips:+} pips)",
        f"profit factor {_fmt(s.profit_factor, '.2f')}",
        f"avg win/loss  {_fmt(s.avg_win, ',.2f')} / {_fmt(s.avg_loss, ',.2f')} {s.currency}, "
        f"expectancy {_fmt(s.expectancy, ',.2f')} per trade",
        f"max drawdown  {s.max_drawdown:,.2f} {s.currency} ({s.max_drawdown_pct:.2%} of peak equity)",
        f"Sharpe        {_fmt(s.sharpe, '.2f')} (daily, annualised)",
        f"Sortino       {_fmt(s.sortino, '.2f')} (daily, annualised)",
        f"balance       {s.start_balance:,.2f} -> {s.end_balance:,.2f} {s.currency}",
    ])


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


def equity_svg(curve: list[tuple[datetime, Decimal]], start_balance: Decimal, width=900, height=260) -> str:
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


def _cells(values: Sequence[object]) -> str:
    return "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in values) + "</tr>"


_GROUP_HEAD = ("trades", "won", "lost", "win rate", "net P&L", "pips", "profit factor", "avg win", "avg loss",
               "expectancy")


def _group_table(title: str, groups: Sequence[GroupFigures]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in (title, *_GROUP_HEAD))
    rows = "".join(_cells((g.key, g.trades, g.wins, g.losses, _fmt(g.win_rate, ".1%"), f"{g.net_pnl:,.2f}",
                           g.net_pips, _fmt(g.profit_factor, ".2f"), _fmt(g.avg_win, ",.2f"),
                           _fmt(g.avg_loss, ",.2f"), f"{g.expectancy:,.2f}")) for g in groups)
    return f"<h2>By {html.escape(title)}</h2><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>\n"


def _chains_table(decisions: Sequence[ReentryDecision]) -> str:
    """Re-entry decisions grouped by chain (original trade), in decision order within a chain."""
    if not decisions:
        return ""
    chains: dict[str, list[ReentryDecision]] = {}
    for d in decisions:
        chains.setdefault(d.original_trade_id, []).append(d)
    rows = "".join(_cells((origin, d.generation, d.trade_id, d.outcome, d.duration, d.proximity, d.action, d.tier,
                           d.next_generation if d.approved else f"refused: {d.refusal or d.action}"))
                   for origin, chain in chains.items() for d in chain)
    return (f"<h2>Re-entry chains ({len(chains)})</h2><table><thead><tr><th>original trade</th><th>generation</th>"
            "<th>trade</th><th>outcome</th><th>duration</th><th>proximity</th><th>action</th><th>tier</th>"
            f"<th>re-entry</th></tr></thead><tbody>{rows}</tbody></table>")


def render_html(trades: Sequence[TradeClosed], summary: Summary, title: str,
                breakdowns: Mapping[str, Sequence[GroupFigures]] | None = None,
                reentry: Sequence[ReentryDecision] = ()) -> str:
    """The self-contained report: summary, equity curve, one table per breakdown, the re-entry chains,
    the trades."""
    curve = equity_curve(trades, summary.start_balance)
    rows = "".join(_cells((t.close_time.strftime("%Y-%m-%d %H:%M"), t.symbol, t.direction, t.lots, t.open_price,
                           t.close_price, t.pips, t.pnl, t.close_reason)) for t in ordered(trades))
    groups = "".join(_group_table(name, figures) for name, figures in (breakdowns or {}).items())
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ddd;padding:3px 8px;text-align:right}}pre{{background:#f4f4f4;padding:12px}}</style>
</head><body><h1>{html.escape(title)}</h1><pre>{html.escape(format_summary(summary))}</pre>
<h2>Equity</h2>{equity_svg(curve, summary.start_balance)}
{groups}{_chains_table(reentry)}
<h2>Trades ({len(trades)})</h2><table><thead><tr><th>closed</th><th>symbol</th><th>direction</th><th>lots</th>
<th>open</th><th>close</th><th>pips</th><th>P&amp;L</th><th>reason</th></tr></thead><tbody>{rows}</tbody></table>
</body></html>
"""


def write_html(trades: Sequence[TradeClosed], summary: Summary, path: Path, title: str,
               breakdowns: Mapping[str, Sequence[GroupFigures]] | None = None,
               reentry: Sequence[ReentryDecision] = ()) -> None:
    path.write_text(render_html(trades, summary, title, breakdowns, reentry))
