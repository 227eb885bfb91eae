"""The report of a sample run in a real browser (Playwright driving Debian's chromium, never a
downloaded one): the charts render without console errors, hovering a trade's entry marker shows
that trade, and the screenshot README shows is saved to docs/images/report.png."""

import csv
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from eafix import cli
from eafix.backtest.data import write_sample

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


def test_the_report_renders_and_a_trade_marker_shows_its_trade(report):
    trades = {row["trade_id"]: row for row in csv.DictReader((report / "trades.csv").open())}
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1700})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto((report / "report.html").as_uri())
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 6")
            assert page.locator("#timeline .trace.boxes path").count() > 100  # candlesticks
            assert page.locator("#timeline .scatterlayer .point").count() >= 2 * len(trades)  # entries + exits
            assert page.locator("#distribution .barlayer .point").count() > 5
            assert page.locator("#monthly .hm image, #monthly .heatmaplayer image").count() == 1
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
