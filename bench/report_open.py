"""Size of a long run's report and the time Debian's chromium takes to open it.

    .venv/bin/python bench/report_open.py [--bars 500000] [--repeat 3] [--report out/bench-report/report.html]

Without --report: writes `--bars` sample H1 bars (seed 7), runs `eafix backtest` on them (default
strategies) into out/bench-report/ and times that too. Then opens report.html `--repeat` times in a
fresh headless chromium page (Playwright, /usr/bin/chromium) and takes, per run, the seconds from
navigation to every chart drawn (each Plotly div holding its SVG). Prints the figures and writes
them to bench/results/report_open.json with the machine (cpus, load average).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
EAFIX = str(Path(sys.executable).parent / "eafix")
# every chart of the page drawn (a chart is drawn when its place nears the screen: the report's two are)
DRAWN = "(f => f.length > 0 && f.every(d => d.classList.contains('drawn')))([...document.querySelectorAll('.figure')])"


def backtest(bars: int, out: Path) -> tuple[Path, float]:
    data = out / "EURUSD_H1.csv"
    subprocess.run([EAFIX, "sample-data", "--out", str(data), "--bars", str(bars)], check=True)
    started = time.perf_counter()
    subprocess.run([EAFIX, "backtest", "--data", str(data), "--out", str(out)], check=True)
    return out / "report.html", time.perf_counter() - started


def open_times(report: Path, repeat: int) -> list[float]:
    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            for _ in range(repeat):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                started = time.perf_counter()
                page.goto(report.resolve().as_uri())
                page.wait_for_function(DRAWN, timeout=120_000)
                times.append(time.perf_counter() - started)
                page.close()
        finally:
            browser.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--report", type=Path, help="an existing report.html (no backtest run)")
    args = parser.parse_args()
    figures: dict = {"machine": {"cpus": os.cpu_count(), "load": os.getloadavg(), "python": platform.python_version()}}
    report = args.report
    if report is None:
        out = REPO / "out" / "bench-report"
        out.mkdir(parents=True, exist_ok=True)
        report, seconds = backtest(args.bars, out)
        figures["bars"], figures["backtest_and_report_seconds"] = args.bars, round(seconds, 1)
    figures["report"] = str(report)
    figures["bytes"] = report.stat().st_size
    figures["open_seconds"] = [round(t, 2) for t in open_times(report, args.repeat)]
    print(f"{report}: {figures['bytes'] / 1e6:.2f} MB, opened (every chart drawn) in "
          f"{min(figures['open_seconds']):.2f} s (best of {args.repeat}: {figures['open_seconds']})")
    results = REPO / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "report_open.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
