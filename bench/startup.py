"""Start-up of `eafix backtest`: seconds from process start to its first bar.

    .venv/bin/python bench/startup.py [--repeat 7]

Runs `eafix backtest --format json` on a 30-bar sample `--repeat` times and takes, per run, the
seconds from spawning the process to its first line of output. That line is printed after the
replay of the 30 bars, so the figure is an upper bound of "start to first bar" (imports, argument
parsing, reading the CSV, building the five stages, 30 bars). Also: a bare `python -c pass` (the
interpreter's own floor) and `python -X importtime` of the same command (the ten slowest top-level
imports). Best and median are printed and written to bench/results/startup.json.

The children run with bytecode caching on (PYTHONDONTWRITEBYTECODE removed; a warm-up run writes
__pycache__), as an installed package or image runs: without .pyc files every start compiles the
sources again (~1 s more here). On a shared machine the wall figure carries the other processes'
load; the CPU seconds (user + system, from wait4) of the same runs do not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "startup.json"
TARGET_S = 0.5


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def first_line_seconds(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds to the first output line, CPU seconds of the whole run)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - started
    proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not line.startswith("backtest "):
        raise SystemExit(f"{' '.join(cmd)} failed (exit {proc.returncode}): {line!r}")
    return elapsed, usage.ru_utime + usage.ru_stime


def slowest_imports(cmd: list[str], top: int = 10) -> list[dict]:
    """Top-level imports (cumulative microseconds) of one run under -X importtime."""
    done = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True, text=True, check=True,
                          env=ENV)
    rows = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if match:  # no indentation: a top-level import of the command
            rows.append({"module": match.group(2), "cumulative_ms": round(int(match.group(1)) / 1000, 1)})
    return sorted(rows, key=lambda r: -r["cumulative_ms"])[:top]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="eafix-bench-startup-") as tmp:
        data = Path(tmp) / "EURUSD_H1.csv"
        subprocess.run([sys.executable, "-m", "eafix", "sample-data", "--out", str(data), "--bars", "30"],
                       check=True, capture_output=True)
        cmd = [sys.executable, "-m", "eafix", "backtest", "--data", str(data), "--out", str(Path(tmp) / "out"),
               "--format", "json"]
        first_line_seconds(cmd)  # warm the page cache and __pycache__
        measured = [first_line_seconds(cmd) for _ in range(args.repeat)]
        runs, cpu = [m[0] for m in measured], [m[1] for m in measured]
        bare = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            bare.append(time.perf_counter() - started)
        imports = slowest_imports(cmd)
    document = {
        "benchmark": "startup",
        "command": "eafix backtest --data <30 H1 bars> --format json (spawn to first output line)",
        "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
                    "platform": platform.platform(), "python": platform.python_version()},
        "repeat": args.repeat,
        "first_bar_seconds_best": round(min(runs), 3),
        "first_bar_seconds_median": round(statistics.median(runs), 3),
        "runs_seconds": [round(r, 3) for r in runs],
        "cpu_seconds_whole_run_best": round(min(cpu), 3),
        "python_bare_seconds_best": round(min(bare), 3),
        "target_seconds": TARGET_S,
        "slowest_top_level_imports": imports,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(f"eafix backtest, process start to first bar: best {min(runs):.3f} s, median "
          f"{statistics.median(runs):.3f} s (target < {TARGET_S} s; bare python {min(bare):.3f} s; CPU of the whole "
          f"run {min(cpu):.3f} s)")
    for row in imports[:5]:
        print(f"  import {row['module']}: {row['cumulative_ms']} ms")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
