"""The HTML report: one self-contained file with the statistics table, the charts of
`eafix.reporting.charts`, the monthly returns table, one table per breakdown, the re-entry chains and
the trades. `eafix backtest` writes it, reporter serves it. A table shows its last MAX_TABLE_ROWS rows
(a long run has thousands of days and trades): every trade is in trades.csv, every group in the JSON
report.

It opens offline and quickly: plotly.js is the finance partial bundle (`static/plotly-finance.min.js`,
1.3 MB instead of the full 4.8 MB; every trace type the charts use is in it), copied into the package
by `make plotly-js` from the npm package pinned with its sha512 in ci/plotly-js/package-lock.json.
Each figure is a JSON document (parsed faster than a script literal) that `static/report.js` draws when
its place comes near the screen, and the SL/TP levels only once a zoom holds few enough trades.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TypeVar

from eafix.contracts.events import ReentryDecision
from eafix.reporting.breakdown import GroupFigures
from eafix.reporting.charts import distribution, timeline
from eafix.reporting.content import ReportContent
from eafix.reporting.metrics import ordered
from eafix.reporting.render import fmt, statistics
from eafix.reporting.returns_table import monthly_table

T = TypeVar("T")
MAX_TABLE_ROWS = 500
STYLE = """body{font:14px system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin-bottom:16px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f6f8fa}
table.stats td:first-child{text-align:left;color:#57606a}.row{display:flex;flex-wrap:wrap;gap:16px}
.row>div{flex:1 1 480px;min-width:0}table.monthly td{min-width:44px}"""
PLOTLY_JS = "plotly-finance.min.js"


class ReportAssetMissing(RuntimeError):
    """The plotly.js bundle is not in the package (a checkout where `make plotly-js` has not run)."""


def require_plotly_js() -> Traversable:
    """The bundle's place in the package, or ReportAssetMissing (reporter checks it at start)."""
    bundle = resources.files("eafix.reporting") / "static" / PLOTLY_JS
    if not bundle.is_file():
        raise ReportAssetMissing(f"{bundle} is missing: `make plotly-js` fetches the pinned plotly.js bundle "
                                 "(ci/plotly-js) into the package")
    return bundle


@cache
def plotly_js() -> str:
    return require_plotly_js().read_text(encoding="utf-8")


@cache
def loader_js() -> str:
    """Draws the figures as they near the screen; SL/TP levels when zoomed in (static/report.js)."""
    return (resources.files("eafix.reporting") / "static" / "report.js").read_text(encoding="utf-8")


def _cells(values: Sequence[object]) -> str:
    return "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in values) + "</tr>"


def _last(rows: Sequence[T]) -> tuple[Sequence[T], str]:
    """The rows a table shows, and the note saying so when some are left out."""
    if len(rows) <= MAX_TABLE_ROWS:
        return rows, ""
    return rows[-MAX_TABLE_ROWS:], f"<p>The last {MAX_TABLE_ROWS} of {len(rows):,} rows.</p>"


_GROUP_HEAD = ("trades", "won", "lost", "win rate", "net P&L", "pips", "profit factor", "avg win", "avg loss",
               "expectancy")


def _group_table(title: str, groups: Sequence[GroupFigures]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in (title, *_GROUP_HEAD))
    shown, note = _last(groups)
    rows = "".join(_cells((g.key, g.trades, g.wins, g.losses, fmt(g.win_rate, ".1%"), f"{g.net_pnl:,.2f}",
                           g.net_pips, fmt(g.profit_factor, ".2f"), fmt(g.avg_win, ",.2f"),
                           fmt(g.avg_loss, ",.2f"), f"{g.expectancy:,.2f}")) for g in shown)
    return (f"<h2>By {html.escape(title)}</h2>{note}<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>"
            "</table>\n")


def _chains_table(decisions: Sequence[ReentryDecision]) -> str:
    """Re-entry decisions grouped by chain (original trade), in decision order within a chain."""
    if not decisions:
        return ""
    chains: dict[str, list[ReentryDecision]] = {}
    for d in decisions:
        chains.setdefault(d.original_trade_id, []).append(d)
    shown, note = _last([(origin, d) for origin, chain in chains.items() for d in chain])
    rows = "".join(_cells((origin, d.generation, d.trade_id, d.outcome, d.duration, d.proximity, d.action, d.tier,
                           d.next_generation if d.approved else f"refused: {d.refusal or d.action}"))
                   for origin, d in shown)
    return (f"<h2>Re-entry chains ({len(chains)})</h2>{note}<table><thead><tr><th>original trade</th>"
            "<th>generation</th><th>trade</th><th>outcome</th><th>duration</th><th>proximity</th><th>action</th><th>tier</th>"
            f"<th>re-entry</th></tr></thead><tbody>{rows}</tbody></table>")


def _figure(fig, div_id: str) -> str:
    """A div of the figure's height (so the page does not jump when it draws) and the figure as JSON
    (plotly's encoder writes <, > and / as \\u escapes: no string in the data can close the script)."""
    height = fig.layout.height or 450
    figure = fig.to_json(validate=False)
    return (f'<div id="{div_id}" class="figure" style="height:{height}px"></div>'
            f'<script type="application/json">{figure}</script>')


def render_html(content: ReportContent) -> str:
    s = content.summary
    stats = "".join(_cells(row) for row in statistics(s))
    counts = ", ".join(f"{k} {v:,}" for k, v in content.counts.items())
    trades = ordered(content.trades)
    shown, note = _last(trades)
    rows = "".join(_cells((t.trade_id, t.close_time.strftime("%Y-%m-%d %H:%M"), t.symbol, t.direction, t.lots,
                           t.open_price, t.close_price, t.pips, t.pnl, t.close_reason)) for t in shown)
    groups = "".join(_group_table(name, figures) for name, figures in content.breakdowns.items())
    title = html.escape(content.title)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{STYLE}</style><script>{plotly_js()}</script></head><body><h1>{title}</h1>
<div class="row"><div><h2>Statistics</h2><table class="stats"><tbody>{stats}</tbody></table>
<p>{html.escape(counts)}</p></div><div>{_figure(distribution(content), "distribution")}</div></div>
{_figure(timeline(content), "timeline")}
{monthly_table(content, MAX_TABLE_ROWS)}{groups}{_chains_table(content.reentry)}
<h2>Trades ({len(trades)})</h2>{note}<table><thead><tr><th>trade</th><th>closed</th><th>symbol</th><th>direction</th>
<th>lots</th><th>open</th><th>close</th><th>pips</th><th>P&amp;L</th><th>reason</th></tr></thead><tbody>{rows}</tbody>
</table><script>{loader_js()}</script></body></html>
"""


def write_html(content: ReportContent, path: Path) -> None:
    path.write_text(render_html(content))
