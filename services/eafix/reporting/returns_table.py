"""Monthly returns as an HTML table: a row per year, a cell per month coloured by its return (green
gains, red losses, the stronger the larger against the largest month of the run), and the year's
return compounded from its months. A table rather than a chart: it reads at a glance, costs no
plotly.js trace type (the report's bundle has no heatmap) and draws at once however many years."""

from __future__ import annotations

import html
from collections.abc import Sequence
from math import prod

from eafix.reporting.content import ReportContent
from eafix.reporting.metrics import equity_curve, monthly_returns

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
GAIN, LOSS = (26, 127, 55), (207, 34, 46)


def shade(value: float, scale: float) -> str:
    """The cell's background: transparent at 0, up to 0.75 opaque at `scale` (the largest |return|)."""
    if value == 0 or scale <= 0:
        return "transparent"
    r, g, b = GAIN if value > 0 else LOSS
    return f"rgba({r},{g},{b},{0.1 + 0.65 * min(abs(value) / scale, 1.0):.2f})"


def by_year(returns: Sequence[tuple[int, int, float]]) -> dict[int, list[float | None]]:
    """Year -> its twelve monthly returns (None outside the run)."""
    years: dict[int, list[float | None]] = {}
    for year, month, value in returns:
        years.setdefault(year, [None] * 12)[month - 1] = value
    return years


def _cell(value: float | None, scale: float, title: str) -> str:
    if value is None:
        return "<td></td>"
    return (f'<td style="background:{shade(value, scale)}" title="{html.escape(title)}: {value:+.2%}">'
            f"{value * 100:+.2f}</td>")


def monthly_table(content: ReportContent, max_years: int = 500) -> str:
    """The table of the last `max_years` years (a note says so when there are more)."""
    returns = monthly_returns(equity_curve(content.trades, content.summary.start_balance),
                              content.summary.start_balance)
    if not returns:
        return "<h2>Monthly returns (%)</h2><p>No closed trades.</p>"
    scale = max(abs(r) for _, _, r in returns)
    years = list(by_year(returns).items())
    note = f"<p>The last {max_years} of {len(years):,} years.</p>" if len(years) > max_years else ""
    rows = []
    for year, months in years[-max_years:]:
        cells = "".join(_cell(v, scale, f"{year} {MONTHS[m]}") for m, v in enumerate(months))
        total = prod(1 + v for v in months if v is not None) - 1
        rows.append(f"<tr><th>{year}</th>{cells}{_cell(total, scale, str(year))}</tr>")
    head = "".join(f"<th>{m}</th>" for m in ("", *MONTHS, "year"))
    return (f'<h2>Monthly returns (%)</h2>{note}<table class="monthly"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>\n")
