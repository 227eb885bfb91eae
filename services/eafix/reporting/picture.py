"""The report as one PNG (`eafix backtest --format png`), drawn with matplotlib's Agg backend: no
browser, no display, so CI and a terminal user get a picture. Price (resampled candle closes) with
entries and exits, equity with the max-drawdown interval shaded, drawdown in percent, trade P&L,
and the statistics table beside them."""

from __future__ import annotations

from pathlib import Path

from eafix.reporting.candles import resample
from eafix.reporting.charts import LINE, LOSS, MUTED, WIN, marked
from eafix.reporting.content import ReportContent
from eafix.reporting.metrics import equity_points, ordered
from eafix.reporting.render import statistics


def write_png(content: ReportContent, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.dates import date2num  # times as matplotlib's day numbers; the axes show them as dates

    s = content.summary
    fig = plt.figure(figsize=(16, 10), dpi=100)
    grid = fig.add_gridspec(4, 2, width_ratios=(2.6, 1.4), height_ratios=(3, 2, 1.2, 1.2), hspace=0.25, wspace=0.05)
    price = fig.add_subplot(grid[0, 0])
    equity, falls, pnl = (fig.add_subplot(grid[row, 0], sharex=price) for row in (1, 2, 3))
    trades = ordered(content.trades)
    shown = marked(trades)  # the markers: as many as the HTML report's
    for candles in content.candles or resample(content.bars):
        price.plot(date2num(candles.ts), candles.close, color=MUTED, linewidth=0.8, label=f"{candles.symbol} close")
    for side, marker in (("LONG", "^"), ("SHORT", "v")):
        entries = [t for t in shown if t.direction == side]
        price.scatter(date2num([t.open_time for t in entries]), [float(t.open_price) for t in entries], marker=marker,
                      color=LINE, s=18, zorder=3, label=f"{side.lower()} entry")
    price.scatter(date2num([t.close_time for t in shown]), [float(t.close_price) for t in shown], marker="x", s=18,
                  color=[WIN if t.pnl > 0 else LOSS for t in shown], zorder=3, label="exit")
    price.legend(loc="upper left", fontsize=8)
    price.set_title(content.title, loc="left")
    price.xaxis_date()
    points = equity_points(trades, s.start_balance)
    if points:
        times = date2num([ts for ts, _ in points])
        equity.step(times, [float(v) for _, v in points], where="post", color=LINE)
        peak, pct = s.start_balance, []
        for _, value in points:
            peak = max(peak, value)
            pct.append(float((value - peak) / peak * 100) if peak > 0 else 0.0)
        falls.fill_between(times, pct, 0, step="post", color=LOSS, alpha=0.4)
        pnl.vlines(date2num([t.close_time for t in trades]), 0, [float(t.pnl) for t in trades],
                   colors=[WIN if t.pnl > 0 else LOSS for t in trades], linewidth=1)  # one collection: fast
    if s.max_drawdown_start is not None and s.max_drawdown_end is not None:
        for ax in (equity, falls):
            ax.axvspan(date2num(s.max_drawdown_start), date2num(s.max_drawdown_end), color=LOSS, alpha=0.12)
    for ax, label in ((price, "price"), (equity, f"equity {s.currency}"), (falls, "drawdown %"),
                      (pnl, f"trade P&L {s.currency}")):
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    table = fig.add_subplot(grid[:, 1])
    table.axis("off")
    cells = table.table(cellText=[[label, value] for label, value in statistics(s)], loc="upper left",
                        colWidths=(0.36, 0.64), cellLoc="left")
    cells.auto_set_font_size(False)
    cells.set_fontsize(8)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
