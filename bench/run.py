"""`make bench`: every benchmark under bench/, one JSON and one Markdown table of the figures.

    .venv/bin/python bench/run.py [--quick] [--docs] [--only NAME,...]
    .venv/bin/python bench/run.py --render [--docs]    # the last run's figures, the current texts

Runs each benchmark script as its own process (the commands are in STEPS; their output goes to
bench/results/logs/<name>.log), reads the JSON each writes, and writes bench/results/bench.json
and bench/results/bench.md: per figure the measured value, its floor or peer (measured in the same
run where there is one), the ratio, the target of issue 12, the command and what limits it now.
`--quick` runs smaller sizes (3-5 min; no replication or report-opening runs); `--docs` puts the
table into docs/performance.md between its bench markers (done by a full `make bench`). A step
that fails is reported as such in the table and makes the exit status 1; the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin (bench/run.py --docs writes this part) -->", "<!-- bench:end -->"
PY = "bench/{}.py"

# name: (script, full arguments, quick arguments or None to skip in quick mode, JSON it writes)
STEPS: dict[str, tuple[str, list[str], list[str] | None, str]] = {
    "peers": ("bench/peers/compare.py", ["--out", "out/peers"], ["--out", "out/peers"], "out/peers/compare.json"),
    "backtest": (PY.format("backtest"), [], ["--bars", "5000", "--ticks", "50000", "--repeat", "1"],
                 "bench/results/backtest.json"),
    "startup": (PY.format("startup"), ["--repeat", "7"], ["--repeat", "3"], "bench/results/startup.json"),
    "memory": (PY.format("memory"), ["--bars", "50000,500000"], ["--bars", "5000,50000"],
               "bench/results/memory.json"),
    "pipeline": (PY.format("pipeline_latency"), ["--seconds", "20"], ["--seconds", "5"],
                 "bench/results/pipeline_latency.json"),
    "bus": (PY.format("bus_throughput"), [],
            ["--messages", "10000", "--memory-messages", "50000", "--latency-seconds", "1"],
            "bench/results/bus_throughput.json"),
    "ingest": (PY.format("ingest_http"), ["--ticks", "100000"], ["--ticks", "20000"],
               "bench/results/ingest_http.json"),
    "indicators": (PY.format("indicators"), [], ["--bars", "20000", "--repeats", "1"],
                   "bench/results/indicators.json"),
    "replication": (PY.format("redis_replication"), ["--publishes", "1000"], None,
                    "bench/results/redis_replication.json"),
    "report_open": (PY.format("report_open"), ["--bars", "100000", "--repeat", "2"], None,
                    "bench/results/report_open.json"),
    "scaleout": (PY.format("scaleout"), [], ["--bars", "400"], "bench/results/scaleout.json"),
}

# What stands between each figure and its target now (profiles in docs/performance.md).
LIMITS = {
    "batch": "~0.5 ms per active bar (a signal or a fill, two per trade): the event-driven risk, execution and "
             "reporter stages on the in-memory bus, pydantic events, Decimal money (indicators and triggers are "
             "vectorised)",
    "event": "pydantic models and Decimal arithmetic per event on five in-process stages; one asyncio hop per event",
    "ticks": "a pydantic PriceTick and a Bar builder step per tick before the stages see a bar",
    "startup": "building the pydantic contract models at import (~0.25 s) and the interpreter's imports "
               "(a CSV under 256 KB is read without importing polars)",
    "memory": "bars stream from the file; what grows is output (the reporter's ledger, trades) and the "
              "execution engine's bounded id caches until they fill",
    "pipeline": "per hop (p50): ~4 ms to the bar (data-ingestor and indicator-engine work through the feeder's "
                "50-tick batches), ~2.5 ms signal-generator, ~8 ms risk-manager (the signal waits ~5 ms behind the "
                "service's quotes and execution reports, then a PostgreSQL commit before it publishes); five "
                "processes, Redis, PostgreSQL and the feeder on 2 cores",
    "bus": "JSON encoding and redis-py's command packing per message (the floor pays the packing too)",
    "bus_latency": "the consumer's XREADGROUP BLOCK wake-up and the asyncio loop on a loaded machine",
    "ingest": "per tick: the normaliser's checks (Decimal, regex, timestamp), model_dump of tick and envelope, "
              "JSON; uvicorn + FastAPI per request (the tick and envelope are no longer validated twice)",
    "indicators": "Python-level incremental updates per indicator and bar",
    "scaleout": "two cores shared by both replicas, Redis, the feeder and the machine's other work",
}


def run_step(name: str, quick: bool) -> dict:
    script, full, small, output = STEPS[name]
    args = small if quick else full
    cmd = [sys.executable, script, *(args or [])]
    shown = " ".join([".venv/bin/python", script, *(args or [])])
    if args is None:
        return {"name": name, "command": shown, "skipped": "not in --quick"}
    logs = RESULTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    out = ROOT / output
    out.unlink(missing_ok=True)  # a figure from an earlier run must not pass for this one
    started = time.perf_counter()
    with (logs / f"{name}.log").open("w") as log:
        code = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
    step = {"name": name, "command": shown, "exit_code": code, "seconds": round(time.perf_counter() - started, 1),
            "log": str((logs / f"{name}.log").relative_to(ROOT))}
    if out.exists():
        step["result"] = json.loads(out.read_text())
    print(f"{name:12} exit {code} in {step['seconds']:>6} s  {shown}", flush=True)
    return step


def row(figure: str, value: float | None, unit: str, *, floor: str = "", ratio: float | None = None,
        target: str = "", met: bool | None = None, command: str = "", limit: str = "") -> dict:
    return {"figure": figure, "value": value, "unit": unit, "floor_or_peer": floor,
            "ratio": None if ratio is None else round(ratio, 3), "target": target, "met": met,
            "command": command, "limit": limit}


def backtest_rows(steps: dict) -> list[dict]:
    rows = []
    peers = steps["peers"].get("result")
    if peers:
        peer, cmd = peers["peer_bars_per_s"], steps["peers"]["command"]
        floor = f"backtesting.py 0.6.6 SmaCross {peer:,.0f} bars/s"
        batch, event = peers["eafix_batch_bars_per_s"], peers["eafix_bars_per_s"]
        rows.append(row("backtest --batch, bars/s (sma_cross, 5,000 H1 bars)", round(batch), "bars/s", floor=floor,
                        ratio=batch / peer, target=">= 2x peer", met=batch >= 2 * peer, command=cmd,
                        limit=LIMITS["batch"]))
        rows.append(row("backtest event-driven, bars/s (same run)", round(event), "bars/s", floor=floor,
                        ratio=event / peer, target=">= 0.5x peer", met=event >= 0.5 * peer, command=cmd,
                        limit=LIMITS["event"]))
        if "nautilus_bars_per_s" in peers:
            nautilus = peers["nautilus_bars_per_s"]
            rows.append(row("backtest --batch against NautilusTrader (same run, same entries)", round(batch),
                            "bars/s", floor=f"NautilusTrader 1.221.0 SMA cross {nautilus:,.0f} bars/s",
                            ratio=batch / nautilus, target=">= 5x peer", met=batch >= 5 * nautilus, command=cmd,
                            limit=LIMITS["batch"]))
    bt = steps["backtest"].get("result")
    if bt:
        for key, what in (("ticks.no_orders", "no orders"), ("ticks.default", "shipped strategies")):
            r = bt["results"][key]
            rows.append(row(f"backtest replaying ticks, ticks/s ({r['inputs']:,} ticks, {what})", r["per_s"],
                            "ticks/s", ratio=r["per_s"] / 500_000, target=">= 500,000 (ratio to target)",
                            met=r["per_s"] >= 500_000, command=steps["backtest"]["command"], limit=LIMITS["ticks"]))
        r = bt["results"]["bars.no_orders"]
        rows.append(row(f"backtest bars/s without orders ({r['inputs']:,} H1 bars, in-process)", r["per_s"],
                        "bars/s", ratio=r["per_s"] / 50_000, target=">= 50,000 (DESIGN budget)",
                        met=r["per_s"] >= 50_000, command=steps["backtest"]["command"], limit=LIMITS["event"]))
    st = steps["startup"].get("result")
    if st:
        rows.append(row("eafix backtest: process start to first bar (best)", st["first_bar_seconds_best"], "s",
                        floor=f"bare python {st['python_bare_seconds_best']} s",
                        ratio=st["first_bar_seconds_best"] / 0.5, target="< 0.5 s (ratio to target)",
                        met=st["first_bar_seconds_best"] < 0.5, command=steps["startup"]["command"],
                        limit=LIMITS["startup"]))
        rows.append(row("  the same runs' CPU time (user + system; not inflated by other processes' load)",
                        st["cpu_seconds_whole_run_best"], "s", ratio=st["cpu_seconds_whole_run_best"] / 0.5,
                        target="< 0.5 s (ratio to target)", met=st["cpu_seconds_whole_run_best"] < 0.5,
                        command=steps["startup"]["command"], limit=LIMITS["startup"]))
    mem = steps["memory"].get("result")
    if mem:
        for r in mem["rows"]:
            rows.append(row(f"eafix backtest peak RSS at {r['bars']:,} bars", r["peak_rss_mb"], "MB",
                            command=steps["memory"]["command"], limit=LIMITS["memory"] if r["bars"] > 30 else ""))
        rows.append(row("memory growth per bar (two largest sizes)", mem["bytes_per_bar_between_largest"], "B/bar",
                        target="flat (~0) beyond output", met=mem["bytes_per_bar_between_largest"] < 100,
                        command=steps["memory"]["command"], limit=LIMITS["memory"]))
    return rows


def live_rows(steps: dict) -> list[dict]:
    rows = []
    bus = steps["bus"].get("result")
    trip = bus["latency"].get("round_trip") if bus else None
    pipe = steps["pipeline"].get("result")
    if pipe:
        s = pipe["results"]["tick_to_order_intent_ts_init"]
        floor = f"5 hops x loopback round trip p50 {trip['p50_ms']} ms = {5 * trip['p50_ms']:.2f} ms" if trip else ""
        rate = pipe["parameters"]["rate"]
        for q, target in (("p50", 3.0), ("p99", 10.0)):
            value = s.get(f"{q}_ms")
            rows.append(row(f"live pipeline tick -> OrderIntent {q} ({rate} ticks/s, 5 processes, n={s['count']})",
                            value, "ms", floor=floor, ratio=None if value is None else value / target,
                            target=f"<= {target:g} ms (ratio to target)",
                            met=None if value is None else value <= target, command=steps["pipeline"]["command"],
                            limit=LIMITS["pipeline"]))
        cpu = pipe.get("cpu_ms_per_tick")
        if cpu:  # the CPU the five services spent, per fed tick: not inflated by the machine's load
            rows.append(row("  the five services' CPU per fed tick (" + ", ".join(f"{n} {v}" for n, v in cpu.items())
                            + ")", round(sum(cpu.values()), 3), "ms", floor=f"{1000 / rate:g} ms between ticks",
                            ratio=sum(cpu.values()) / (1000 / rate), command=steps["pipeline"]["command"],
                            limit="per hop: XREADGROUP + JSON + envelope validation, handler, publish, XACK; "
                                  "PostgreSQL commits per signal, report and trade"))
    if bus:
        raw = bus["results"]["redis.raw_pipelined_xadd"]["msgs_per_s"]
        floor = f"pipelined XADD (redis-py) {raw:,} msg/s"
        for key, what in (("redis.publish_many", "publish"), ("redis.consume", "consume")):
            got = bus["results"][key]["msgs_per_s"]
            rows.append(row(f"bus {what}, msg/s ({bus['parameters']['messages']:,} envelopes)", got, "msg/s",
                            floor=floor, ratio=got / raw, target=">= 0.5x floor", met=got >= 0.5 * raw,
                            command=steps["bus"]["command"], limit=LIMITS["bus"]))
        lat = bus["latency"]
        for q in ("p50", "p99"):
            rows.append(row(f"bus one hop publish -> handler {q} ({lat['rate_per_s']} msg/s)", lat[f"{q}_ms"], "ms",
                            floor=f"loopback round trip {q} {trip[f'{q}_ms']} ms",
                            ratio=lat[f"{q}_ms"] / trip[f"{q}_ms"] if trip[f"{q}_ms"] else None,
                            command=steps["bus"]["command"], limit=LIMITS["bus_latency"]))
    ing = steps["ingest"].get("result")
    if ing:
        got = ing["accepted_ticks_per_s"]
        rows.append(row("data-ingestor accepted ticks/s, one replica (HTTP batch API)", got, "ticks/s",
                        ratio=got / 50_000, target=">= 50,000 (ratio to target)", met=got >= 50_000,
                        command=steps["ingest"]["command"], limit=LIMITS["ingest"]))
    ind = steps["indicators"].get("result")
    if ind:
        got = ind["bars_per_second_best"]
        rows.append(row("indicator-engine on_bar, bars/s", got, "bars/s", ratio=got / 50_000,
                        target=">= 50,000 (DESIGN budget)", met=got >= 50_000,
                        command=steps["indicators"]["command"], limit=LIMITS["indicators"]))
    rep = steps["replication"].get("result")
    if rep:
        base = rep["rows"][0]["p50_ms"]
        for r in rep["rows"][1:]:
            rows.append(row(f"order-flow publish waiting for {r['replicas']} replica(s), p50", r["p50_ms"], "ms",
                            floor=f"no WAIT p50 {base} ms", ratio=r["p50_ms"] / base if base else None,
                            command=steps["replication"]["command"]))
    out = steps["scaleout"].get("result")
    if out:
        one, two = out["one"]["bars_per_s"], out["two"]["bars_per_s"]
        rows.append(row(f"signal-generator, 2 replicas pinned one per core vs 1 ({out['parameters']['strategies']} "
                        "strategies), bars/s", two, "bars/s", floor=f"1 replica {one:,.0f} bars/s", ratio=two / one,
                        target=">= 1.7x one replica", met=two >= 1.7 * one and out.get("complete", False),
                        command=steps["scaleout"]["command"], limit=LIMITS["scaleout"]))
    rep = steps["report_open"].get("result")
    if rep:
        rows.append(row(f"report.html of {rep.get('bars', '?'):,} bars: opened in chromium (best)",
                        min(rep["open_seconds"]), "s", command=steps["report_open"]["command"]))
    return rows


def fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and value < 100:
        return f"{value:g}"
    return f"{value:,.0f}"


def markdown(document: dict) -> str:
    lines = [f"Measured {document['measured_at']} on {document['machine']['cpus']} CPUs "
             f"({document['machine']['platform']}, Python {document['machine']['python']}), "
             f"{'quick' if document['quick'] else 'full'} run, load average {document['machine']['load_before']} "
             f"before and {document['machine']['load_after']} after; {document['seconds']:.0f} s in all.", "",
             "| Figure | Measured | Floor / peer | Ratio | Target | Met | Command | What limits it now |",
             "|---|---|---|---|---|---|---|---|"]
    for r in document["rows"]:
        met = {True: "yes", False: "**no**", None: ""}[r["met"]]
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(f"| {r['figure']} | {fmt(r['value'])} {r['unit']} | {r['floor_or_peer']} | {ratio} | "
                     f"{r['target']} | {met} | "
                     f"`{r['command']}` | {r['limit']} |")
    failed = [s for s in document["steps"] if s.get("exit_code")]
    skipped = [s for s in document["steps"] if s.get("skipped")]
    if failed:
        lines += ["", "Failed steps (no figures): " + ", ".join(f"{s['name']} (exit {s['exit_code']}, {s['log']})"
                                                               for s in failed)]
    if skipped:
        lines += ["", "Not run: " + ", ".join(f"{s['name']} ({s['skipped']})" for s in skipped)]
    return "\n".join(lines) + "\n"


def write_docs(table: str) -> None:
    text = DOC.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{BEGIN}\n{table}{END}{tail}")


def render(docs: bool) -> int:
    """The rows again from the figures of the last run, with this file's current texts."""
    document = json.loads((RESULTS / "bench.json").read_text())
    steps = {s["name"]: {**s, **({"result": document["results"][s["name"]]} if s["name"] in document["results"]
                                 else {})} for s in document["steps"]}
    document["rows"] = backtest_rows(steps) + live_rows(steps)
    (RESULTS / "bench.json").write_text(json.dumps(document, indent=2) + "\n")
    table = markdown(document)
    (RESULTS / "bench.md").write_text(table)
    if docs:
        write_docs(table)
    print(table)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes; skip replication and report opening")
    parser.add_argument("--docs", action="store_true", help="write the table into docs/performance.md")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(STEPS)}")
    parser.add_argument("--render", action="store_true",
                        help="measure nothing: rebuild the table from bench/results/bench.json (after editing LIMITS)")
    args = parser.parse_args()
    if args.render:
        return render(args.docs)
    names = args.only.split(",") if args.only else list(STEPS)
    unknown = set(names) - set(STEPS)
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}; known: {', '.join(STEPS)}")
    load_before, started = os.getloadavg(), time.perf_counter()
    steps = {name: {"name": name, "skipped": "not in --only"} for name in STEPS}
    for name in names:
        steps[name] = run_step(name, args.quick)
    document = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "quick": args.quick,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_before": round(load_before[0], 2), "load_after": round(os.getloadavg()[0], 2)},
        "rows": backtest_rows(steps) + live_rows(steps),
        "steps": [{k: v for k, v in s.items() if k != "result"} for s in steps.values()],
        "results": {name: s["result"] for name, s in steps.items() if "result" in s},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench.json").write_text(json.dumps(document, indent=2) + "\n")
    table = markdown(document)
    (RESULTS / "bench.md").write_text(table)
    if args.docs:
        write_docs(table)
    print(table)
    print(f"wrote {RESULTS / 'bench.json'} and {RESULTS / 'bench.md'}{' and ' + str(DOC) if args.docs else ''}")
    return 1 if any(s.get("exit_code") for s in document["steps"]) else 0


if __name__ == "__main__":
    sys.exit(main())
