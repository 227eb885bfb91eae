"""The report's interactive charts, drawn with Plotly (imported when a chart is asked for).

`timeline` stacks, on one shared time axis (zooming one zooms all): the price of each symbol
(candlesticks resampled by `eafix.reporting.candles`, or the trades' own prices without bars) with
entries, exits, SL/TP levels and suppressed signals marked, the equity, the drawdown in money and
in percent with the max-drawdown interval shaded, each trade's P&L and the lots open. `distribution`
is the histogram of trade P&L, binned here (the monthly returns are a table: `returns_table`). Times
are UTC.

Bounded size whatever the run's length and quick to draw (every SVG point is a DOM node): candles are
resampled; the equity, drawdown, trade-P&L and lots-open series keep at most about MAX_LINE_POINTS
points (each bucket's first, lowest, highest and last, so peaks and troughs survive); at most
MAX_MARKED_TRADES trades are marked with their hover, the ones of largest absolute P&L (those that
shape the equity curve), and their SL/TP levels are drawn by the page only once a zoom holds at most
LEVELS_IN_VIEW of them; every trade stays in the histogram and trades.csv. Trace types: candlestick,
scatter and bar, all in the finance bundle of plotly.js the page inlines (`eafix.reporting.page`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from eafix.contracts import SignalSuppressed, TradeClosed
from eafix.reporting.candles import Candles, resample
from eafix.reporting.content import ReportContent
from eafix.reporting.metrics import equity_points, open_lots, ordered

WIN, LOSS, LINE, MUTED = "#1a7f37", "#cf222e", "#1f6feb", "#8c959f"
MAX_LINE_POINTS = 2000
MAX_MARKED_TRADES = 2000
LEVELS_IN_VIEW = 300  # read by static/report.js from the layout's meta


def _t(ts: datetime) -> str:
    """A UTC time as plotly.js reads dates (it takes no offsets); seconds only when there are some."""
    return ts.strftime("%Y-%m-%d %H:%M:%S" if ts.second else "%Y-%m-%d %H:%M")


def trade_label(t: TradeClosed, currency: str) -> str:
    """The hover text of a trade's markers."""
    return (f"{t.symbol} {t.direction} {t.lots} lots, trade {t.trade_id}<br>"
            f"open {t.open_time:%Y-%m-%d %H:%M} @ {t.open_price}<br>"
            f"close {t.close_time:%Y-%m-%d %H:%M} @ {t.close_price} {t.close_reason}<br>"
            f"P&L {t.pnl:,.2f} {currency} ({t.pips:+} pips)")


def marked(trades: Sequence[TradeClosed], limit: int = MAX_MARKED_TRADES) -> list[TradeClosed]:
    """The trades drawn with markers, in ledger order: all, or the `limit` of largest absolute P&L."""
    if len(trades) <= limit:
        return ordered(trades)
    return ordered(sorted(trades, key=lambda t: (-abs(t.pnl), str(t.trade_id)))[:limit])


def thinned(values: Sequence[float], limit: int = MAX_LINE_POINTS) -> list[int]:
    """Indices of the points of a line to draw: all, or per bucket of consecutive points its first,
    lowest, highest and last (in order), about `limit` in all."""
    if len(values) <= limit:
        return list(range(len(values)))
    size = -(-len(values) * 4 // limit)  # ceil: four points a bucket
    keep: set[int] = set()
    for start in range(0, len(values), size):
        bucket = range(start, min(start + size, len(values)))
        keep.update((bucket[0], bucket[-1], min(bucket, key=values.__getitem__), max(bucket, key=values.__getitem__)))
    return sorted(keep)


def _price_traces(go: Any, symbol: str, content: ReportContent, candles: Candles | None) -> list:
    trades = [t for t in marked(content.trades) if t.symbol == symbol]
    currency = content.summary.currency
    traces = []
    if candles is not None:
        name = f"{symbol} {candles.frame}" if candles.frame != "source" else symbol
        traces.append(go.Candlestick(x=[_t(ts) for ts in candles.ts], open=candles.open, high=candles.high,
                                     low=candles.low, close=candles.close, name=name, hoverinfo="skip",
                                     increasing_line_color=MUTED, decreasing_line_color="#57606a"))
    labels = [trade_label(t, currency) for t in trades]
    longs = [t.direction == "LONG" for t in trades]
    traces.append(go.Scatter(
        x=[_t(t.open_time) for t in trades], y=[float(t.open_price) for t in trades], mode="markers", name="entry",
        text=labels, hoverinfo="text", meta="entry",
        marker={"symbol": ["triangle-up" if long else "triangle-down" for long in longs], "size": 9,
                "color": [LINE if long else "#8250df" for long in longs]}))
    traces.append(go.Scatter(
        x=[_t(t.close_time) for t in trades], y=[float(t.close_price) for t in trades], mode="markers", name="exit",
        text=labels, hoverinfo="text", meta="exit",
        marker={"symbol": "x", "size": 8, "color": [WIN if t.pnl > 0 else LOSS for t in trades]}))
    for index, (name, color) in enumerate((("SL", LOSS), ("TP", WIN))):
        x: list[str | None] = []
        y: list[float | None] = []
        for t in trades:
            if t.trade_id in content.levels:
                x += [_t(t.open_time), _t(t.close_time), None]
                y += [float(content.levels[t.trade_id][index]), float(content.levels[t.trade_id][index]), None]
        if x:
            # meta "levels": the page draws these for the trades in view only, once a zoom holds few
            traces.append(go.Scatter(x=x, y=y, mode="lines", name=name, hoverinfo="skip", meta="levels",
                                     line={"color": color, "width": 1, "dash": "dot"}))
    suppressed = [s for s in content.suppressed if s.symbol == symbol]
    if suppressed and candles is not None:
        traces.append(_suppressed_trace(go, suppressed, candles))
    return traces


def _suppressed_trace(go: Any, suppressed: Sequence[SignalSuppressed], candles: Candles) -> Any:
    """Suppressed signals at the close of the candle they fell in."""
    y = [candles.close[max(bisect_right(candles.ts, s.ts) - 1, 0)] for s in suppressed]
    text = [f"suppressed {s.strategy} {s.direction or ''} {s.ts:%Y-%m-%d %H:%M}: {s.reason}" for s in suppressed]
    return go.Scatter(x=[_t(s.ts) for s in suppressed], y=y, mode="markers", name="suppressed signal", text=text,
                      hoverinfo="text", marker={"symbol": "circle-open", "size": 7, "color": "#bf8700"})


def _symbols(content: ReportContent, candles: dict[str, Candles]) -> list[str]:
    return sorted(set(candles) | {t.symbol for t in content.trades}) or ["(no trades)"]


def timeline(content: ReportContent) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    candles = {c.symbol: c for c in content.candles or resample(content.bars)}
    symbols = _symbols(content, candles)
    rows = len(symbols) + 4
    heights = [0.42 / len(symbols)] * len(symbols) + [0.2, 0.14, 0.14, 0.1]
    shown = len(marked(content.trades))
    note = "" if shown == len(content.trades) else f" ({shown:,} of {len(content.trades):,} trades marked)"
    if content.levels:
        note += f"; SL/TP when a zoom holds at most {LEVELS_IN_VIEW} trades"
    titles = [*(f"{s} price{note}" for s in symbols), f"equity ({content.summary.currency})", "drawdown",
              "trade P&L", "lots open"]
    specs = [[{"secondary_y": i == len(symbols) + 1}] for i in range(rows)]
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.03, row_heights=heights,
                        subplot_titles=titles, specs=specs)
    for row, symbol in enumerate(symbols, start=1):
        for trace in _price_traces(go, symbol, content, candles.get(symbol)):
            fig.add_trace(trace, row=row, col=1)
        fig.update_yaxes(title_text="price", row=row, col=1)
    _equity_rows(go, fig, content, len(symbols) + 1)
    fig.update_xaxes(rangeslider_visible=False)
    fig.update_layout(height=300 * len(symbols) + 650, hovermode="closest", template="plotly_white",
                      meta={"levels_in_view": LEVELS_IN_VIEW},
                      margin={"l": 60, "r": 60, "t": 80, "b": 30},
                      legend={"orientation": "h", "y": 1, "yanchor": "top", "yref": "container", "x": 0})
    return fig


def _equity_rows(go: Any, fig: Any, content: ReportContent, row: int) -> None:
    s = content.summary
    points = equity_points(content.trades, s.start_balance)
    values = [float(v) for _, v in points]
    peak, falls, pct = s.start_balance, [], []
    for _, equity in points:
        peak = max(peak, equity)
        falls.append(float(equity - peak))
        pct.append(float((equity - peak) / peak * 100) if peak > 0 else 0.0)
    keep = sorted(set(thinned(values)) | set(thinned(falls)))
    times = [_t(points[i][0]) for i in keep]
    values, falls, pct = [values[i] for i in keep], [falls[i] for i in keep], [pct[i] for i in keep]
    fig.add_trace(go.Scatter(x=times, y=values, mode="lines", name="equity",
                             line={"color": LINE, "shape": "hv"}), row=row, col=1)
    fig.add_trace(go.Scatter(x=times, y=falls, mode="lines", name="drawdown", fill="tozeroy",
                             line={"color": LOSS, "shape": "hv"}), row=row + 1, col=1)
    fig.add_trace(go.Scatter(x=times, y=pct, mode="lines", name="drawdown %", line={"color": "#953800",
                             "width": 1, "dash": "dot", "shape": "hv"}), row=row + 1, col=1, secondary_y=True)
    # both drawdown axes from their deepest value up to 0, so the money and percent lines overlay
    fig.update_yaxes(title_text=s.currency, row=row + 1, col=1, secondary_y=False, rangemode="tozero")
    fig.update_yaxes(title_text="%", row=row + 1, col=1, secondary_y=True, rangemode="tozero", showgrid=False)
    every = ordered(content.trades)
    trades = [every[i] for i in thinned([float(t.pnl) for t in every])]
    for name, color, side in (("winning trade", WIN, [t for t in trades if t.pnl > 0]),
                              ("losing trade", LOSS, [t for t in trades if t.pnl <= 0])):
        fig.add_trace(go.Scatter(x=[_t(t.close_time) for t in side], y=[float(t.pnl) for t in side], name=name,
                                 mode="markers", marker={"color": color, "size": 5},
                                 hovertemplate="closed %{x}: %{y:,.2f}<extra></extra>"), row=row + 2, col=1)
    lots = open_lots(content.trades)
    open_now = [float(v) for _, v in lots]
    keep = thinned(open_now)
    fig.add_trace(go.Scatter(x=[_t(lots[i][0]) for i in keep], y=[open_now[i] for i in keep], mode="lines",
                             name="lots open", line={"color": MUTED, "shape": "hv"}, fill="tozeroy"),
                  row=row + 3, col=1)
    if s.max_drawdown_start is not None and s.max_drawdown_end is not None:
        for r in (row, row + 1):
            fig.add_vrect(x0=_t(s.max_drawdown_start), x1=_t(s.max_drawdown_end), fillcolor=LOSS, opacity=0.12,
                          line_width=0, row=r, col=1)
        axes = fig.get_subplot(row, 1)  # names like "xaxis3" / "yaxis3": references "x3" / "y3 domain"
        fig.add_annotation(x=_t(s.max_drawdown_start), xref=axes.xaxis.plotly_name.replace("axis", ""),
                           y=1, yref=axes.yaxis.plotly_name.replace("axis", "") + " domain", xanchor="left",
                           showarrow=False, font={"size": 11, "color": LOSS},
                           text=f"max drawdown {s.max_drawdown_pct:.2%}")


def histogram(values: Sequence[float], count: int) -> tuple[list[float], float, list[int]]:
    """(left edges, width, counts) of `count` equal bins from the lowest to the highest value (the
    highest in the last bin): drawn as bars, so the page carries ~60 numbers, not every trade's."""
    if not values:
        return [], 1.0, []
    low, high = min(values), max(values)
    width = (high - low) / count if high > low else 1.0
    counts = [0] * count
    for v in values:
        counts[min(int((v - low) / width), count - 1)] += 1
    return [low + i * width for i in range(count)], width, counts


def distribution(content: ReportContent) -> Any:
    import plotly.graph_objects as go

    pnl = [float(t.pnl) for t in content.trades]
    lefts, width, counts = histogram(pnl, min(60, max(len(pnl) // 3, 5)))
    fig = go.Figure(go.Bar(x=[x + width / 2 for x in lefts], y=counts, width=width, marker_color=LINE, name="trades",
                           customdata=[[x, x + width] for x in lefts],
                           hovertemplate="%{customdata[0]:,.2f} .. %{customdata[1]:,.2f}: %{y} trades<extra></extra>"))
    fig.add_vline(x=0, line_color=MUTED)
    fig.update_layout(title="P&L distribution", xaxis_title=f"trade P&L ({content.summary.currency})",
                      yaxis_title="trades", height=320, template="plotly_white", bargap=0.05,
                      margin={"l": 60, "r": 20, "t": 50, "b": 40})
    return fig
