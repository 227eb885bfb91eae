"""Peak memory of `eafix backtest` against the number of bars.

    .venv/bin/python bench/memory.py [--bars 50000,500000] [--batch]

For each size: `eafix sample-data` writes that many H1 bars (seed 7), then `eafix backtest --format
json` (the shipped strategies; `--batch` for the fast path) runs them as its own process; its peak
resident set (ru_maxrss from wait4) and wall time are taken. Also the same for 30 bars (what the
interpreter and the imports hold). The slope (bytes per bar between the two largest sizes) says
whether memory is flat in the number of bars. Written to bench/results/memory.json.

5,000,000 bars is not in the default sizes: that run alone took 1,293 s on this machine (pass it
in --bars to measure).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "memory.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", default="50000,500000", help="comma-separated sizes (default 50000,500000)")
    parser.add_argument("--batch", action="store_true", help="measure `eafix backtest --batch`")
    args = parser.parse_args()
    sizes = sorted({30, *(int(b) for b in args.bars.split(","))})
    rows = []
    with tempfile.TemporaryDirectory(prefix="eafix-bench-memory-") as tmp:
        for bars in sizes:
            rows.append(measure(bars, Path(tmp), args.batch))
            print(f"{bars:>9,} bars: peak RSS {rows[-1]['peak_rss_mb']:,.1f} MB in {rows[-1]['seconds']} s")
    big, bigger = rows[-2], rows[-1]
    slope = (bigger["peak_rss_mb"] - big["peak_rss_mb"]) * 1e6 / (bigger["bars"] - big["bars"])
    document = {
        "benchmark": "memory",
        "command": f"eafix backtest --format json{' --batch' if args.batch else ''} (shipped strategies, H1 sample)",
        "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
                    "platform": platform.platform(), "python": platform.python_version()},
        "rows": rows,
        "bytes_per_bar_between_largest": round(slope),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(f"{slope:,.0f} bytes per extra bar between {big['bars']:,} and {bigger['bars']:,} bars; wrote {RESULTS}")
    return 0


def measure(bars: int, tmp: Path, batch: bool) -> dict:
    """One run in a child process whose peak RSS wait4 reports."""
    data = tmp / f"EURUSD_H1_{bars}.csv"
    subprocess.run([sys.executable, "-m", "eafix", "sample-data", "--out", str(data), "--bars", str(bars)],
                   check=True, capture_output=True)
    cmd = [sys.executable, "-m", "eafix", "backtest", "--data", str(data), "--out", str(tmp / f"out_{bars}"),
           "--format", "json", *(["--batch"] if batch else [])]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    data.unlink()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode})")
    return {"bars": bars, "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "seconds": round(elapsed, 2),
            "summary": out.splitlines()[0]}


if __name__ == "__main__":
    sys.exit(main())
