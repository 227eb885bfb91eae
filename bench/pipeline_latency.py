"""Pipeline latency: the five services as `eafix serve` processes over Redis, ticks in, OrderIntents out.

    .venv/bin/python bench/pipeline_latency.py [--rate 1000] [--seconds 20] [--ticks-per-bar 50]

Starts a throwaway redis-server and PostgreSQL (the test suite's helpers), runs `eafix migrate`, then
data-ingestor, indicator-engine, signal-generator, risk-manager and execution-engine, each its own
process on a free port (paper broker). The feed POSTs `--rate` ticks/s to data-ingestor in batches
every 50 ms for `--seconds`: synthetic EURUSD history (a 60-pip sine over 12 bars plus noise) with
`--ticks-per-bar` ticks per M1 bar, so bars close many times a second. The strategy fires on every
bar once RSI is warm (oversold 49.99 / overbought 50, no cross needed) and the risk limits let
almost every signal become an order (a large account, no position limits); ingest and quote ages
allow history (see tests/service/test_pipeline_e2e.py).

Latency, per OrderIntent: every stage publishes with the handled envelope as causation, so an
OrderIntent's correlation_id is the event_id of the tick envelope whose arrival closed the bar
(data-ingestor publishes each tick as a root event). latency = OrderIntent ts_init (risk-manager's
clock when it published) - tick ts_init (data-ingestor's clock when it published), same machine and
clock; also with the OrderIntent's stream entry time (Redis clock, ms). Intents whose bar the
indicator-engine's one-second flush closed (no tick caused it) have no tick to measure from and are
counted apart. p50/p99/max are printed and written to bench/results/pipeline_latency.json.

`--profile DIR` runs each service under pyinstrument and writes DIR/<service>.txt (self time per
function) when it stops; the profiler's overhead inflates the latencies of that run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from service import pipeline_env, servers  # noqa: E402  (the test suite's throwaway servers, env)
from service.pipeline_env import PIPELINE  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "pipeline_latency.json"
PIP = 0.0001
BATCH_PERIOD = 0.05  # seconds between POSTs
RISK = {"account_id": "bench", "opening_balance": "1000000000", "max_open_positions": 1_000_000,
        "max_positions_per_symbol": 1_000_000, "currency_exposure_cap_percent": "100",
        "daily_drawdown_limit_percent": "100", "correlation_limit": 1.0}


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, math.ceil(p / 100 * len(ordered)) - 1)
    return ordered[k]


def summary(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    return {"count": len(values), "p50_ms": round(percentile(values, 50), 3),
            "p99_ms": round(percentile(values, 99), 3), "max_ms": round(max(values), 3),
            "mean_ms": round(statistics.fmean(values), 3)}


class Services:
    def __init__(self, workdir: Path, rds: servers.RedisServer, pg: servers.PostgresServer,
                 profile: Path | None = None) -> None:
        self.workdir, self.rds, self.pg, self.profile = workdir, rds, pg, profile
        self.procs: dict[str, subprocess.Popen] = {}
        self.ports: dict[str, int] = {}

    def base_env(self) -> dict[str, str]:
        return pipeline_env.base_env(redis_url=self.rds.url, redis_password=self.rds.password, pg_url=self.pg.url,
                                     pg_user=self.pg.user, pg_password=self.pg.password, workdir=self.workdir)

    def env(self, name: str) -> dict[str, str]:
        return pipeline_env.service_env(self.base_env(), name, self.ports[name], self.workdir, risk=RISK)

    def start(self) -> None:
        migrate = subprocess.run([sys.executable, "-m", "eafix", "migrate"], env=self.base_env(),
                                 capture_output=True, text=True, timeout=60)
        if migrate.returncode != 0:
            raise SystemExit(f"eafix migrate failed: {migrate.stderr}")
        for name in PIPELINE:
            self.ports[name] = servers.free_port()
            log = (self.workdir / f"{name}.log").open("w")
            wrap = ["-m", "pyinstrument", "-r", "text", "-p", "flat=true", "-o", str(self.profile / f"{name}.txt")
                    ] if self.profile else []
            self.procs[name] = subprocess.Popen([sys.executable, *wrap, "-m", "eafix", "serve", name],
                                                env=self.env(name), stdout=log, stderr=subprocess.STDOUT)
            log.close()
        deadline = time.monotonic() + 60
        for name in PIPELINE:
            while True:
                if self.procs[name].poll() is not None:
                    raise SystemExit(f"{name} exited: {(self.workdir / f'{name}.log').read_text()[-2000:]}")
                try:
                    if httpx.get(f"{self.url(name)}/readyz", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name} did not become ready")
                time.sleep(0.1)

    def cpu_seconds(self) -> dict[str, float]:
        """User + system CPU seconds each service process has used so far (/proc/<pid>/stat)."""
        tick = os.sysconf("SC_CLK_TCK")
        used = {}
        for name, proc in self.procs.items():
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rpartition(")")[2].split()
            used[name] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14 and 15)
        return used

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:  # pyinstrument writes its report on SIGINT, not on SIGTERM
                proc.send_signal(signal.SIGINT if self.profile else signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def make_ticks(total: int, per_bar: int, seed: int = 5) -> list[dict]:
    rng = random.Random(seed)
    bars = total // per_bar + 1
    start = (datetime.now(UTC) - timedelta(minutes=bars + 10)).replace(second=0, microsecond=0)
    step = 60 / per_bar
    ticks = []
    for i in range(total):
        x = i / per_bar
        bid = 1.1 + 60 * PIP * math.sin(2 * math.pi * x / 12) + rng.gauss(0, 2 * PIP)
        ts = start + timedelta(seconds=i * step)
        ticks.append({"symbol": "EURUSD", "ts": ts.isoformat().replace("+00:00", "Z"),
                      "bid": f"{bid:.5f}", "ask": f"{bid + PIP:.5f}"})
    return ticks


def feed(url: str, ticks: list[dict], rate: int) -> dict:
    per_batch = max(1, round(rate * BATCH_PERIOD))
    started = time.monotonic()
    late = 0
    with httpx.Client(timeout=30) as client:
        for n, first in enumerate(range(0, len(ticks), per_batch)):
            due = started + n * BATCH_PERIOD
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                late += 1
            response = client.post(f"{url}/api/v1/ticks", json=ticks[first:first + per_batch])
            if response.status_code != 200:
                raise SystemExit(f"ingest failed: {response.status_code} {response.text[:300]}")
    elapsed = time.monotonic() - started
    return {"ticks": len(ticks), "seconds": round(elapsed, 3), "ticks_per_s": round(len(ticks) / elapsed),
            "batch": per_batch, "batches_behind_schedule": late}


def wait_quiet(r: redis.Redis, timeout: float = 120.0) -> None:
    """Every consumer group caught up and nothing new published for 2 s (the flush timer has run)."""
    deadline = time.monotonic() + timeout
    previous = None
    while time.monotonic() < deadline:
        lengths = {s: r.xlen(s) for s in r.scan_iter(match="eafix.*", _type="stream")}
        caught_up = all(not g["pending"] and not g["lag"] for s in lengths for g in r.xinfo_groups(s))
        if caught_up and lengths == previous:
            return
        previous = lengths if caught_up else None
        time.sleep(2.0)
    raise SystemExit("the pipeline did not fall quiet")


def measure(r: redis.Redis) -> dict:
    ticks = {}
    for _, fields in r.xrange("eafix.price.tick"):
        env = json.loads(fields["envelope"])
        ticks[env["event_id"]] = parse_ts(env["ts_init"])
    by_init, by_stream, unmatched = [], [], 0
    for entry_id, fields in r.xrange("eafix.orders.validated"):
        env = json.loads(fields["envelope"])
        origin = ticks.get(env["correlation_id"])
        if origin is None:
            unmatched += 1  # its bar was closed by the flush timer: no tick caused it
            continue
        by_init.append((parse_ts(env["ts_init"]) - origin).total_seconds() * 1000)
        stream_ms = int(entry_id.split("-")[0])
        by_stream.append(stream_ms - origin.timestamp() * 1000)
    return {"order_intents": len(by_init) + unmatched, "caused_by_a_tick": len(by_init),
            "caused_by_the_flush_timer": unmatched, "tick_to_order_intent_ts_init": summary(by_init),
            "tick_to_order_intent_stream_entry": summary(by_stream)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000, help="ticks per second (default 1000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="feed duration (default 20)")
    parser.add_argument("--ticks-per-bar", type=int, default=50, help="ticks per M1 bar (default 50)")
    parser.add_argument("--profile", type=Path, help="run the services under pyinstrument; reports in this directory")
    args = parser.parse_args()
    ticks = make_ticks(int(args.rate * args.seconds), args.ticks_per_bar)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="eafix-bench-pipeline-") as tmp, \
            servers.redis_server() as rds, servers.postgres_server() as pg:
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
        services = Services(Path(tmp), rds, pg, args.profile)
        try:
            services.start()
            cpu_before = services.cpu_seconds()
            fed = feed(services.url("data-ingestor"), ticks, args.rate)
            load_during = os.getloadavg()
            r = redis.Redis.from_url(rds.url, password=rds.password, decode_responses=True)
            wait_quiet(r)
            cpu_after = services.cpu_seconds()
            latency = measure(r)
            counts = {topic: r.xlen(topic) for topic in ("eafix.price.bars", "eafix.signals.generated",
                                                          "eafix.risk.rejected", "eafix.orders.validated",
                                                          "eafix.execution.reports", "eafix.trades.closed")}
            r.close()
            with psycopg.connect(pg.url, user=pg.user, password=pg.password) as conn:
                counts["orders_rows"] = conn.execute("SELECT count(*) FROM orders.orders").fetchone()[0]
                counts["trades_rows"] = conn.execute("SELECT count(*) FROM trades.trades").fetchone()[0]
        finally:
            services.stop()
    document = {
        "benchmark": "pipeline_latency",
        "machine": {"cpus": os.cpu_count(), "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_end_of_feed": [round(x, 2) for x in load_during],
                    "platform": platform.platform(), "python": platform.python_version(),
                    "processes": "5 services + redis-server + postgres + this feeder on the same machine"},
        "parameters": {"rate": args.rate, "seconds": args.seconds, "ticks_per_bar": args.ticks_per_bar,
                       "batch_period_s": BATCH_PERIOD, "timeframe": "M1", "broker": "paper"},
        "feed": fed, "stream_counts": counts, "results": latency,
        # CPU each service spent on the run (including its idle loops and the quiet wait), per fed tick:
        # unlike the latencies, not inflated by other processes competing for the cores
        "cpu_ms_per_tick": {name: round(1000 * (cpu_after[name] - cpu_before[name]) / len(ticks), 4)
                            for name in PIPELINE},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(f"machine: {os.cpu_count()} cpus, load average {load_before[0]:.2f} before, {load_during[0]:.2f} "
          f"at the end of the feed")
    print(f"fed {fed['ticks']} ticks in {fed['seconds']} s ({fed['ticks_per_s']} ticks/s, batches of {fed['batch']}, "
          f"{fed['batches_behind_schedule']} behind schedule)")
    print(f"bars {counts['eafix.price.bars']}, signals {counts['eafix.signals.generated']}, order intents "
          f"{counts['eafix.orders.validated']} ({latency['caused_by_the_flush_timer']} from flushed bars), "
          f"rejections {counts['eafix.risk.rejected']}, orders stored {counts['orders_rows']}, "
          f"trades {counts['trades_rows']}")
    cpu = document["cpu_ms_per_tick"]
    print("CPU ms per tick: " + ", ".join(f"{name} {ms}" for name, ms in cpu.items())
          + f" (sum {sum(cpu.values()):.3f})")
    for name in ("tick_to_order_intent_ts_init", "tick_to_order_intent_stream_entry"):
        s = latency[name]
        if s["count"]:
            print(f"{name}: n={s['count']} p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, max {s['max_ms']} ms")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
