"""The report of a sample run in a real browser (Playwright driving Debian's chromium, never a
downloaded one): the charts render without console errors, hovering a trade's entry marker shows
that trade, zooming in draws the SL/TP levels, and the screenshot README shows is saved to
docs/images/report.png."""

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from eafix import cli
from eafix.backtest.data import write_sample
from eafix.contracts import TradeClosed
from eafix.reporting.charts import LEVELS_IN_VIEW
from eafix.reporting.content import ReportContent
from eafix.reporting.metrics import summarize
from eafix.reporting.page import write_html

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "images" / "report.png"

# The viewport position of an entry marker with no other hoverable point within 10 px (hover picks the
# closest point), and its hover text; computed from the chart's own axes.
FIND_MARKER = """() => {
  const gd = document.getElementById('timeline');
  const entry = gd._fullData.find(t => t.meta === 'entry');
  const xa = gd._fullLayout[entry.xaxis.replace('x', 'xaxis')], ya = gd._fullLayout[entry.yaxis.replace('y', 'yaxis')];
  const at = (t, k) => [xa._offset + xa.d2p(t.x[k]), ya._offset + ya.d2p(t.y[k])];
  const others = gd._fullData.filter(t => t.xaxis === entry.xaxis && t.hoverinfo !== 'skip')
    .flatMap(t => t.x.map((_, k) => t === entry ? null : at(t, k)).filter(p => p));
  const box = gd.querySelector('.main-svg').getBoundingClientRect();
  for (let k = 0; k < entry.x.length; k++) {
    const [x, y] = at(entry, k);
    const near = others.concat(entry.x.map((_, j) => j === k ? null : at(entry, j)).filter(p => p))
      .some(([ox, oy]) => Math.hypot(ox - x, oy - y) < 10);
    if (!near) return {x: box.left + x, y: box.top + y, text: entry.text[k]};
  }
  return null;
}"""


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    data = write_sample(tmp_path_factory.mktemp("sample") / "EURUSD_H1.csv", seed=7, bars=2000)
    out = data.parent / "out"
    assert cli.main(["backtest", "--data", str(data), "--out", str(out)]) == 0
    return out


def _browser(p):
    return p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])


DRAWN = "[...document.querySelectorAll('.figure')].every(d => d.classList.contains('drawn'))"
LEVEL_POINTS = """() => document.getElementById('timeline')._fullData.filter(t => t.meta === 'levels')
  .map(t => t.x.filter(x => x !== null).length)"""


def test_the_report_renders_and_a_trade_marker_shows_its_trade(report):
    trades = {row["trade_id"]: row for row in csv.DictReader((report / "trades.csv").open())}
    errors: list[str] = []
    with sync_playwright() as p:
        browser = _browser(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1700})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto((report / "report.html").as_uri())
            page.wait_for_function(DRAWN)
            assert page.locator("#timeline .trace.boxes path").count() > 100  # candlesticks
            assert page.locator("#timeline .scatterlayer .point").count() >= 2 * len(trades)  # entries + exits
            assert len(trades) <= LEVELS_IN_VIEW and page.evaluate(LEVEL_POINTS) == [2 * len(trades)] * 2  # SL, TP
            assert page.locator("#distribution .barlayer .point").count() > 5
            assert page.locator("table.monthly td[style*='rgba']").count() > 3  # months coloured by return
            page.locator("#timeline").scroll_into_view_if_needed()
            marker = page.evaluate(FIND_MARKER)
            assert marker is not None, "no entry marker stands alone"
            page.mouse.move(marker["x"], marker["y"])
            tooltip = page.locator("#timeline .hoverlayer .hovertext")
            tooltip.wait_for(state="visible")
            text = tooltip.text_content() or ""
            trade_id = text.split("trade ")[1].split("open")[0]
            row = trades[trade_id]  # the tooltip names a trade of trades.csv, with its figures
            assert f"{row['symbol']} {row['direction']}" in text and f"@ {row['open_price']}" in text
            assert f"P&L {Decimal(row['pnl']):,.2f} USD" in text
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
        finally:
            browser.close()
    assert errors == []
    assert SCREENSHOT.read_bytes()[:4] == b"\x89PNG"


def test_sl_tp_levels_are_drawn_once_a_zoom_holds_few_trades(tmp_path):
    start = datetime(2026, 1, 5, tzinfo=UTC)
    trades = [TradeClosed(trade_id=f"T-{k}", client_order_id=f"T-{k}", symbol="EURUSD", direction="LONG",
                          lots=Decimal("0.10"), open_price=Decimal("1.10000"), close_price=Decimal("1.10100"),
                          open_time=start + timedelta(hours=2 * k), close_time=start + timedelta(hours=2 * k + 1),
                          pips=Decimal(10), pnl=Decimal(10), account_currency="USD", close_reason="TP")
              for k in range(LEVELS_IN_VIEW + 100)]
    levels = {t.trade_id: (Decimal("1.09800"), Decimal("1.10400")) for t in trades}
    write_html(ReportContent("many trades", trades, summarize(trades, Decimal("10000")), levels=levels),
               tmp_path / "report.html")
    errors: list[str] = []
    with sync_playwright() as p:
        browser = _browser(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1700})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto((tmp_path / "report.html").as_uri())
            page.wait_for_function(DRAWN)
            assert page.evaluate(LEVEL_POINTS) == [0, 0]  # 400 trades in view: none drawn
            # zoom to the first 10 trades (opened at 0, 2, .., 18 h; the 10th closes at 19 h)
            page.evaluate("Plotly.relayout('timeline', {'xaxis.range': ['2026-01-05 00:00', '2026-01-05 19:30']})")
            page.wait_for_function(f"({LEVEL_POINTS})()[0] > 0")
            assert page.evaluate(LEVEL_POINTS) == [20, 20]
            page.evaluate("Plotly.relayout('timeline', {'xaxis.autorange': true})")
            page.wait_for_function(f"({LEVEL_POINTS})()[0] === 0")
        finally:
            browser.close()
    assert errors == []
