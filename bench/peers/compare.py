"""EAFIX against backtesting.py and NautilusTrader on backtesting.py's own EURUSD H1 sample (`make bench-peers`).

1. A virtualenv of its own (out/peers/venv, made with the repository's uv) gets backtesting==0.6.6
   from PyPI; the EAFIX package is never installed there, nor backtesting.py in EAFIX's.
2. In that venv backtesting.py runs its SmaCross example (SMA 10/20 cross; on a cross it closes the
   position and opens the other way; orders fill at the next bar's open) on `backtesting.test.EURUSD`,
   with no commission and no spread, and writes the data set as an EAFIX OHLCV CSV.
3. `eafix backtest` runs bench/peers/sma_cross.yaml (the same rule, stop-and-reverse) on that CSV with
   a zero spread, closing what is open after the last bar (`--close-at-end`, as backtesting.py's
   `finalize_trades=True`), so every entry is a row of trades.csv.
4. The entries (bar time and side) are compared one by one; both tools' bars/s are printed, each
   timed around its own run only (data already loaded, process start-up excluded).
5. The same `eafix backtest` again with `--batch` (the fast path): its entries must be the same,
   its bars/s is the batch figure of `make bench`.
6. NautilusTrader (nautilus_trader 1.221.0, a second virtualenv, out/peers/nautilus-venv) runs the same
   rule on the same CSV (bench/peers/nautilus_sma.py); its entries are compared and its bars/s printed.

Not part of `make test`: it needs PyPI. docs/backtest.md explains the P&L differences.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".tools" / "uv" / "bin" / "uv"
STRATEGY = Path(__file__).with_name("sma_cross.yaml")
BACKTESTING = "backtesting==0.6.6"
NAUTILUS = "nautilus_trader==1.221.0"  # the release the issue measured; it still has CPython 3.11 wheels
NAUTILUS_SCRIPT = Path(__file__).with_name("nautilus_sma.py")

# Runs inside the peer venv: backtesting.py's SmaCross on its EURUSD sample.
PEER = r"""
import json, sys, time
import warnings
warnings.filterwarnings("ignore")
from backtesting import Backtest, Strategy
from backtesting.lib import crossover
from backtesting.test import EURUSD, SMA


class SmaCross(Strategy):  # the example of backtesting.py's README and quick-start
    n1 = 10
    n2 = 20

    def init(self):
        close = self.data.Close
        self.sma1 = self.I(SMA, close, self.n1)
        self.sma2 = self.I(SMA, close, self.n2)

    def next(self):
        if crossover(self.sma1, self.sma2):
            self.position.close()
            self.buy()
        elif crossover(self.sma2, self.sma1):
            self.position.close()
            self.sell()


out_csv = sys.argv[1]
with open(out_csv, "w") as f:  # the same bars for EAFIX: stamped by their open time, UTC
    f.write("timestamp,open,high,low,close,volume\n")
    for ts, row in EURUSD.iterrows():
        f.write(f"{ts:%Y-%m-%dT%H:%M:%SZ},{float(row.Open)!r},{float(row.High)!r},{float(row.Low)!r},{float(row.Close)!r},{int(row.Volume)}\n")
bt = Backtest(EURUSD, SmaCross, cash=10_000, commission=0.0, finalize_trades=True)
started = time.perf_counter()
stats = bt.run()
elapsed = time.perf_counter() - started
trades = stats["_trades"]
entries = [[f"{t:%Y-%m-%dT%H:%M:%SZ}", "LONG" if size > 0 else "SHORT"]
           for t, size in zip(trades["EntryTime"], trades["Size"])]
exits = [float(p) for p in trades["ExitPrice"]]
print(json.dumps({"bars": len(EURUSD), "seconds": elapsed, "entries": entries, "exits": exits,
                  "return_pct": float(stats["Return [%]"]), "trades": int(stats["# Trades"])}))
"""


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, text=True, capture_output=True, **kw)
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd[:4])} ... failed ({result.returncode}):\n{result.stderr.strip()}")
    return result


def peer_venv(venv: Path, requirement: str) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        _run([str(UV), "venv", "--quiet", "--python", f"{sys.version_info.major}.{sys.version_info.minor}",
              str(venv)])
    _run([str(UV), "pip", "install", "--quiet", "--python", str(python), requirement])
    return python


def run_peer(python: Path, data_csv: Path) -> dict:
    result = _run([str(python), "-c", PEER, str(data_csv)])
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_nautilus(python: Path, data_csv: Path) -> dict:
    result = _run([str(python), str(NAUTILUS_SCRIPT), str(data_csv)])
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_eafix(data_csv: Path, out: Path, batch: bool = False) -> dict:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = out / ("eafix-batch" if batch else "eafix")
    started = time.perf_counter()
    result = _run([sys.executable, "-m", "eafix", "backtest", "--data", str(data_csv), "--strategy", str(STRATEGY),
                   "--timeframe", "H1", "--symbol", "EURUSD", "--spread-pips", "0", "--close-at-end",
                   "--out", str(out), *(["--batch"] if batch else [])],
                  env=env)
    wall = time.perf_counter() - started
    first = result.stdout.splitlines()[0]  # "backtest EURUSD H1: 5000 bars in 0.532 s (9,398 bars/s)"
    seconds = float(first.split(" bars in ")[1].split(" s ")[0])
    with (out / "trades.csv").open() as f:
        rows = list(csv.DictReader(f))
    rows.sort(key=lambda r: r["open_time"])
    entries = [[r["open_time"], r["direction"]] for r in rows]
    exits = [float(r["close_price"]) for r in rows]
    return {"seconds": seconds, "wall": wall, "entries": entries, "exits": exits, "summary": result.stdout}


def compare(peer: list[list[str]], ours: list[list[str]]) -> tuple[int, list[str]]:
    """Entries equal at the same position, and the first differences."""
    equal = sum(1 for a, b in zip(peer, ours, strict=False) if a == b)
    diffs = [f"  #{i}: backtesting.py {a} vs eafix {b}" for i, (a, b) in enumerate(zip(peer, ours, strict=False))
             if a != b][:10]
    return equal, diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "peers")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    data_csv = args.out / "EURUSD_H1.csv"
    peer = run_peer(peer_venv(args.out / "venv", BACKTESTING), data_csv)
    ours = run_eafix(data_csv, args.out)
    batch = run_eafix(data_csv, args.out, batch=True)
    nautilus = run_nautilus(peer_venv(args.out / "nautilus-venv", NAUTILUS), data_csv)
    nautilus_equal, nautilus_diffs = compare(nautilus["entries"], ours["entries"])
    equal, diffs = compare(peer["entries"], ours["entries"])
    bars = peer["bars"]
    print(f"data: backtesting.test.EURUSD, {bars} H1 bars ({data_csv})")
    print(f"backtesting.py 0.6.6 SmaCross: {len(peer['entries'])} entries, {peer['seconds']:.3f} s "
          f"({bars / peer['seconds']:,.0f} bars/s), return {peer['return_pct']:.2f} %")
    print(f"eafix backtest sma_cross.yaml: {len(ours['entries'])} entries, {ours['seconds']:.3f} s "
          f"({bars / ours['seconds']:,.0f} bars/s; {ours['wall']:.2f} s with process start-up)")
    print(f"eafix backtest --batch: {len(batch['entries'])} entries, {batch['seconds']:.3f} s "
          f"({bars / batch['seconds']:,.0f} bars/s = {peer['seconds'] / batch['seconds']:.2f}x backtesting.py); "
          f"entries {'the same' if batch['entries'] == ours['entries'] else 'DIFFERENT'} as the event-driven run")
    print(f"NautilusTrader 1.221.0 SMA cross: {len(nautilus['entries'])} entries, {nautilus['seconds']:.3f} s "
          f"({bars / nautilus['seconds']:,.0f} bars/s; --batch = {nautilus['seconds'] / batch['seconds']:.2f}x); "
          f"entries equal to eafix's: {nautilus_equal} of {len(nautilus['entries'])}")
    print(f"entries equal (bar time and side): {equal} of {len(peer['entries'])}")
    same_exit = sum(1 for a, b in zip(peer["exits"], ours["exits"], strict=False) if abs(a - b) < 5e-6)
    print(f"exit prices equal: {same_exit} of {len(peer['exits'])}")
    for i, (a, b) in enumerate(zip(peer["exits"], ours["exits"], strict=False)):
        if abs(a - b) >= 5e-6:
            print(f"  exit #{i} ({peer['entries'][i][0]}): backtesting.py {a} vs eafix {b}")
    for line in diffs + [d.replace("backtesting.py", "NautilusTrader") for d in nautilus_diffs]:
        print(line)
    report = {"bars": bars, "peer_entries": len(peer["entries"]), "eafix_entries": len(ours["entries"]),
              "equal": equal, "exits_equal": same_exit, "peer_bars_per_s": bars / peer["seconds"],
              "eafix_bars_per_s": bars / ours["seconds"], "eafix_batch_bars_per_s": bars / batch["seconds"],
              "batch_entries_equal_event_driven": batch["entries"] == ours["entries"],
              "nautilus_bars_per_s": bars / nautilus["seconds"], "nautilus_entries": len(nautilus["entries"]),
              "nautilus_equal": nautilus_equal,
              "peer": BACKTESTING, "nautilus": NAUTILUS, "command": "make bench-peers (bench/peers/compare.py)"}
    (args.out / "compare.json").write_text(json.dumps(report, indent=2) + "\n")
    same = (equal == len(peer["entries"]) == len(ours["entries"]) == nautilus_equal == len(nautilus["entries"])
            and batch["entries"] == ours["entries"])
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
