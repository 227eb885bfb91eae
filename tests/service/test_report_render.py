"""The one report renderer: resampled candles, thinned lines, marked trades, and the HTML, JSON and PNG
of a small hand-made run (bars, trades with SL/TP, a suppressed signal)."""

import json
import re
import struct
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from eafix.contracts import Bar, SignalSuppressed, TradeClosed
from eafix.reporting.breakdown import DIMENSIONS, breakdown
from eafix.reporting.candles import CandleBook, coarser, frame_for, resample
from eafix.reporting.charts import histogram, marked, thinned, timeline
from eafix.reporting.content import ReportContent
from eafix.reporting.metrics import summarize
from eafix.reporting.page import MAX_TABLE_ROWS, render_html
from eafix.reporting.picture import write_png
from eafix.reporting.render import report_json
from eafix.reporting.returns_table import monthly_table

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def bar(hour: int, o: str, h: str, lo: str, c: str) -> Bar:
    start = MONDAY + timedelta(hours=hour)
    return Bar(symbol="EURUSD", timeframe="H1", ts_open=start, ts_close=start + timedelta(hours=1), open=o, high=h,
               low=lo, close=c, volume=0)


BARS = [bar(2, "1.1000", "1.1010", "1.0990", "1.1005"), bar(3, "1.1005", "1.1030", "1.1000", "1.1020"),
        bar(4, "1.1020", "1.1025", "1.0980", "1.0990"), bar(5, "1.0990", "1.1000", "1.0970", "1.0975"),
        bar(6, "1.0975", "1.1040", "1.0975", "1.1035"), bar(7, "1.1035", "1.1036", "1.1010", "1.1012")]


def trade(n: int, pnl: str, opened: int, closed: int, direction: str = "LONG") -> TradeClosed:
    return TradeClosed(
        trade_id=f"T-{n}", client_order_id=f"T-{n}", symbol="EURUSD", direction=direction, lots="0.10",
        open_price="1.10000", close_price="1.10100", open_time=MONDAY + timedelta(hours=opened),
        close_time=MONDAY + timedelta(hours=closed), pips="10", pnl=pnl, account_currency="USD",
        close_reason="TP" if Decimal(pnl) > 0 else "SL")


def test_candles_are_resampled_to_a_coarser_frame_by_hand():
    candles = resample(BARS, limit=2)[0]
    # 6 H1 bars, 02:00 .. 07:00, in at most 2 candles: a span of 5 hours / 2 = 2.5 h -> H4, buckets
    # from midnight: 00:00-04:00 holds 02:00 and 03:00, 04:00-08:00 holds 04:00 .. 07:00
    assert (candles.frame, candles.bars) == ("H4", 6)
    assert candles.ts == [MONDAY, MONDAY + timedelta(hours=4)]
    assert candles.open == [1.1000, 1.1020] and candles.close == [1.1020, 1.1012]
    assert candles.high == [1.1030, 1.1040] and candles.low == [1.0990, 1.0970]
    assert resample(BARS)[0].frame == "source" and len(resample(BARS)[0].ts) == 6  # few bars: as they are
    # 500,000 H1 bars over ~57 years in 3000 candles: ~7 days each -> W1 is the first frame that fits
    first = datetime(2026, 1, 5, tzinfo=UTC)
    assert frame_for(first, first + timedelta(hours=499_999), 3600, 500_000, 3000) == ("W1", 7 * 86400)
    # 80 years: 9.7 days a candle -> two weeks; in 2000 candles 14.6 days -> three weeks
    assert frame_for(first, first + timedelta(days=80 * 365), 3600, 500_000, 3000)[0] == "W2"
    assert frame_for(first, first + timedelta(days=80 * 365), 3600, 500_000, 2000)[0] == "W3"


def test_a_candle_book_follows_bars_in_bounded_candles_by_hand():
    book = CandleBook("H1", limit=2)
    for b in (BARS[1], BARS[0], BARS[1]):  # out of order and redelivered
        assert book.add(b)
    assert not book.add(bar(8, "1", "1", "1", "1").model_copy(update={"timeframe": "M5"}))  # other timeframe
    (two,) = book.candles()
    assert (two.frame, [c.hour for c in two.ts], two.open, two.close) == ("H1", [2, 3], [1.1000, 1.1005],
                                                                          [1.1005, 1.1020])
    for b in BARS[2:]:
        book.add(b)
    # 6 H1 bars, 02:00 .. 07:00, over 2 candles at most: H4 (00:00-04:00: 02:00, 03:00; 04:00-08:00: the rest)
    (merged,) = book.candles()
    assert merged.frame == "H4" and merged.ts == [MONDAY, MONDAY + timedelta(hours=4)]
    assert merged.open == [1.1000, 1.1020] and merged.close == [1.1020, 1.1012]
    assert merged.high == [1.1030, 1.1040] and merged.low == [1.0990, 1.0970]
    assert [c.ts for c in book.candles(start=MONDAY + timedelta(hours=4))] == [[MONDAY + timedelta(hours=4)]]
    assert coarser(3600) == ("H4", 14400) and coarser(86400) == ("W1", 7 * 86400)
    assert coarser(7 * 86400) == ("W2", 14 * 86400) and coarser(14 * 86400) == ("W4", 28 * 86400)


def test_the_pnl_histogram_is_binned_by_hand():
    # -40 .. 120 in 5 bins of 32: [-40, -8) [-8, 24) [24, 56) [56, 88) [88, 120]
    assert histogram([-40.0, 15.0, 120.0, -8.0], 5) == ([-40.0, -8.0, 24.0, 56.0, 88.0], 32.0, [1, 2, 0, 0, 1])
    assert histogram([7.0, 7.0], 5) == ([7.0, 8.0, 9.0, 10.0, 11.0], 1.0, [2, 0, 0, 0, 0])
    assert histogram([], 5) == ([], 1.0, [])


def test_lines_keep_each_buckets_extremes_and_trades_are_marked_by_size():
    values = [5.0, 1.0, 9.0, 4.0, 3.0, 2.0, 8.0, 7.0]
    assert thinned(values, limit=8) == list(range(8))  # short enough: every point
    # limit 4 -> one bucket of ceil(8 * 4 / 4) = 8 points: first (0), lowest (1), highest (2), last (7)
    assert thinned(values, limit=4) == [0, 1, 2, 7]
    trades = [trade(1, "10", 1, 2), trade(2, "-50", 2, 3), trade(3, "30", 3, 4), trade(4, "-5", 4, 5)]
    assert [t.trade_id for t in marked(trades, limit=2)] == ["T-2", "T-3"]  # |-50|, |30|, in ledger order


TRADES = [trade(1, "120", 2, 4), trade(2, "-40", 4, 6, "SHORT"), trade(3, "15", 6, 7)]
SUPPRESSED = SignalSuppressed(symbol="EURUSD", timeframe="H1", strategy="ema_cross", reason="LOW_CONFIDENCE",
                              direction="LONG", confidence=None, detail=None,
                              ts=MONDAY + timedelta(hours=5, minutes=30))


def content(trades=TRADES) -> ReportContent:
    summary = summarize(trades, Decimal("10000"))
    return ReportContent(
        "EURUSD test run", trades, summary, {by: breakdown(trades, by) for by in DIMENSIONS}, bars=BARS,
        suppressed=[SUPPRESSED], levels={"T-1": (Decimal("1.0950"), Decimal("1.1100"))}, counts={"signals": 4})


def test_the_timeline_marks_trades_levels_and_suppressions_on_one_time_axis():
    fig = timeline(content())
    traces = {t.name: t for t in fig.data}
    assert {"EURUSD", "entry", "exit", "SL", "TP", "suppressed signal", "equity", "drawdown", "drawdown %",
            "winning trade", "losing trade", "lots open"} <= set(traces)
    assert traces["entry"].x == ("2026-01-05 02:00", "2026-01-05 04:00", "2026-01-05 06:00")
    assert traces["entry"].marker.symbol == ("triangle-up", "triangle-down", "triangle-up")
    assert "trade T-2" in traces["exit"].text[1] and "P&L -40.00 USD" in traces["exit"].text[1]
    assert traces["SL"].y == (1.095, 1.095, None) and traces["TP"].x == ("2026-01-05 02:00", "2026-01-05 04:00", None)
    # the suppressed signal at 05:30 sits on the close of the 05:00 bar
    assert traces["suppressed signal"].y == (1.0975,)
    # equity 10000 (02:00), 10120 (04:00), 10080 (06:00), 10095 (07:00); drawdown -40 at 06:00, -25 at 07:00
    assert traces["equity"].y == (10000.0, 10120.0, 10080.0, 10095.0)
    assert traces["drawdown"].y == (0.0, 0.0, -40.0, -25.0)
    assert traces["drawdown %"].y[2] == -40 / 10120 * 100
    axes = {t.xaxis for t in fig.data}
    assert len({fig.layout[a.replace("x", "xaxis")].matches or a for a in axes}) == 1  # one shared time axis
    assert [s.x0 for s in fig.layout.shapes] == ["2026-01-05 04:00"] * 2  # the max-drawdown interval, 2 rows
    assert fig.layout.shapes[0].x1 == "2026-01-05 07:00"  # not recovered: to the end of the curve


def test_html_is_one_offline_file_with_the_statistics_charts_and_tables():
    page = render_html(content())
    assert "cdn" not in re.sub(r"<script>.*?</script>", "", page, flags=re.S).lower()
    head = page.split("</head>")[0]
    pinned = json.loads((REPO / "ci/plotly-js/package.json").read_text())["dependencies"]
    # the partial bundle at the version pinned (a stale copy in the package fails here), not the full 4.8 MB
    assert f"plotly.js (finance - minified) v{pinned['plotly.js-finance-dist-min']}" in head
    assert len(head) < 1_500_000
    figures = re.findall(r'<div id="(\w+)" class="figure" style="height:(\d+)px"></div>'
                         r'<script type="application/json">(.*?)</script>', page, flags=re.S)
    assert [name for name, _, _ in figures] == ["distribution", "timeline"]
    for _, height, document in figures:  # each a JSON figure of the div's height, drawn by the loader
        figure = json.loads(document)
        assert figure["layout"]["height"] == int(height) and figure["data"]
    assert {t["type"] for _, _, d in figures for t in json.loads(d)["data"]} == {"bar", "candlestick", "scatter"}
    assert "Plotly.newPlot(" in page.split("</table>")[-1]  # the loader, after the last table
    assert "<svg" not in page.split("</head>")[1]  # no hand-drawn SVG: plotly draws in the browser
    stats = dict(re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td></tr>", page.split("</table>")[0]))
    assert stats["net P&amp;L"] == "95.00 USD (+30 pips)" and stats["win rate"] == "66.7%"
    assert stats["best / worst trade"] == "120.00 / -40.00 USD" and stats["exposure time"] == "100.0%"
    assert "<h2>By symbol</h2>" in page and "<h2>By day</h2>" in page
    assert page.split("<h2>Trades (3)</h2>")[1].count("<tr>") == 4


def test_a_string_in_the_data_cannot_close_the_figure_script():
    # ids are validated upstream; the escape holds whatever a hover text carries
    odd = TradeClosed.model_construct(**{**dict(TRADES[0]), "trade_id": "</script><b>x"})
    page = render_html(content([odd]))
    assert "</script><b>x" not in page
    timeline = re.search(r'<div id="timeline".*?<script type="application/json">(.*?)</script>', page).group(1)
    assert "trade </script><b>x<br>" in json.loads(timeline)["data"][1]["text"][0]


def test_monthly_returns_are_a_table_coloured_by_return():
    # 10000 +500 in Jan 2026 (+5 %), nothing in Feb (0 %), -210 in Mar (10500 -> 10290: -2 %), nothing
    # until +102.90 in Jan 2027 (10290 -> 10392.90: +1 %); 2026 compounded: 1.05 * 0.98 - 1 = +2.9 %
    day = 24
    trades = [trade(1, "500", 1, 2), trade(2, "-210", 60 * day, 60 * day + 1),
              trade(3, "102.90", 366 * day, 366 * day + 1)]
    page = render_html(content(trades))
    table = page.split("<h2>Monthly returns (%)</h2>")[1].split("</table>")[0]
    rows = re.findall(r"<tr><th>(\d+)</th>(.*?)</tr>", table)
    assert [year for year, _ in rows] == ["2026", "2027"]
    cells = [re.findall(r"<td[^>]*>([^<]*)</td>", row) for _, row in rows]
    assert cells[0] == ["+5.00", "+0.00", "-2.00", *["+0.00"] * 9, "+2.90"]
    assert cells[1] == ["+1.00", *[""] * 11, "+1.00"]
    # shading: 0.1 + 0.65 x |return| / the largest month's (5 %), green gains, red losses
    assert '<td style="background:rgba(26,127,55,0.75)" title="2026 Jan: +5.00%">' in table
    assert '<td style="background:rgba(207,34,46,0.36)" title="2026 Mar: -2.00%">' in table
    assert '<td style="background:transparent" title="2026 Feb: +0.00%">' in table
    assert '<td style="background:rgba(26,127,55,0.48)" title="2026: +2.90%">' in table
    assert monthly_table(content(trades), max_years=1).startswith(
        '<h2>Monthly returns (%)</h2><p>The last 1 of 2 years.</p><table class="monthly"><thead><tr><th></th><th>Jan'
    ) and "<th>2026</th>" not in monthly_table(content(trades), max_years=1)


def test_long_tables_show_their_last_rows():
    many = [trade(n, "1", n, n + 1) for n in range(MAX_TABLE_ROWS + 20)]
    page = render_html(content(many))
    trades = page.split(f"<h2>Trades ({MAX_TABLE_ROWS + 20})</h2>")[1]
    assert trades.startswith(f"<p>The last {MAX_TABLE_ROWS} of {MAX_TABLE_ROWS + 20:,} rows.</p>")
    assert trades.count("<tr>") == MAX_TABLE_ROWS + 1 and "<td>T-0</td>" not in trades


def test_json_carries_every_statistic():
    c = content()
    document = json.loads(report_json(c))
    assert set(document["summary"]) == set(c.summary.__dataclass_fields__)
    assert document["summary"]["net_pnl"] == "95" and document["summary"]["sqn"] == c.summary.sqn
    assert document["summary"]["max_drawdown_start"] == "2026-01-05T04:00:00Z"
    assert document["monthly_returns"] == [{"year": 2026, "month": 1, "return": 95 / 10000}]
    assert [g["key"] for g in document["breakdowns"]["symbol"]] == ["EURUSD"] and document["counts"] == {"signals": 4}


def test_png_is_a_picture(tmp_path):
    path = tmp_path / "report.png"
    write_png(content(), path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert width > 1000 and height > 600


def test_an_empty_ledger_still_renders(tmp_path):
    empty = ReportContent("no trades yet", [], summarize([], Decimal("1000")))
    page = render_html(empty)
    assert page.count('class="figure"') == 2 and "<h2>Trades (0)</h2>" in page and "(no trades) price" in page
    assert "<h2>Monthly returns (%)</h2><p>No closed trades.</p>" in page
    assert json.loads(report_json(empty))["summary"]["cagr"] is None
    write_png(empty, tmp_path / "empty.png")
    assert (tmp_path / "empty.png").read_bytes()[:4] == b"\x89PNG"
