"""Scale-out: bars/s of signal-generator with 1 replica against 2, on partitioned streams.

    .venv/bin/python bench/scaleout.py [--bars 1000] [--strategies 240] [--seconds 30]

Starts a throwaway redis-server (the test suite's helper) and writes a CPU-heavy strategy set
(`--strategies` crossovers, RSI and Bollinger strategies over the fixed indicators, so evaluating a
vector costs about a millisecond, more than its bus hop). The workload: `--bars` M1 bars per symbol
of twelve symbols, six in each of two partitions, with the vectors indicator-engine's own engine
computes (tests/service/partition_workload.py), published as indicator-engine publishes them.

Run 1: one `eafix serve signal-generator` pinned to CPU 0 (`taskset -c 0`). Run 2 (on fresh streams):
two replicas, pinned to CPU 0 and CPU 1, once they have divided the partitions. The workload is encoded
before any clock runs; a feeder then copies it to Redis as fast as the group takes it, keeping at most
BACKLOG vectors unread, so the replicas never wait for work; each run counts the bars evaluated (per
replica the smaller of its `eafix_bus_handled_total` of bars and of vectors: a bar is evaluated when
the second of the pair arrives) from a tenth to nine tenths of the workload (start-up and the
indicators' warm-up bars left out): bars/s = bars evaluated / window. Each run also records how much
of its core each replica got (`core_share`, CPU seconds per second from /proc), what Redis and the
bench process (feeder and polling) took beside them, and bars per CPU second, which the machine's
other load does not change. Each run then waits for as many outputs (signals + suppressions) as the
in-process reference makes: no vector was skipped. Redis, the feeder and the bench run unpinned on
the same two cores, so the figure is under that load and whatever else the machine runs (the load
average is recorded). Writes bench/results/scaleout.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from service import servers  # noqa: E402  (the test suite's throwaway Redis)
from service.partition_workload import bars_and_vectors, reference  # noqa: E402

from eafix.contracts.messaging import Messenger, partition_key  # noqa: E402
from eafix.instruments import DEFAULT_INSTRUMENTS  # noqa: E402
from eafix.runtime.bus import partition_of  # noqa: E402
from eafix.runtime.bus.redis_streams import FIELD  # noqa: E402
from eafix.runtime.clock import WallClock  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "scaleout.json"
PARTITIONS = 2
PER_PARTITION = 6
VECTORS = "eafix.indicators.computed"
BARS = "eafix.price.bars"
GROUP = "signal-generator"
STARTUP = 240.0
BACKLOG = 400  # bars or vectors left unread at most: the consumers are saturated, never far apart


def balanced_symbols() -> list[str]:
    """PER_PARTITION symbols in each partition, so two replicas get equal work."""
    chosen: list[str] = []
    for p in range(PARTITIONS):
        currencies = sorted(s for s in DEFAULT_INSTRUMENTS if not s.startswith("X"))  # no metals
        chosen += [s for s in currencies if partition_of(s, PARTITIONS) == p][:PER_PARTITION]
    return chosen


def heavy_strategies(count: int) -> str:
    """A strategy set whose evaluation dominates the handling of a vector."""
    pairs = [("ema_20", "ema_50"), ("sma_20", "sma_50"), ("ema_20", "sma_50"), ("sma_20", "ema_50")]
    lines = ["version: 1", "defaults:", "  min_confidence: 0.6", "  duplicate_window_seconds: 300",
             "strategies:"]
    for i in range(count):
        kind = i % 3
        lines.append(f"  s{i}:")
        if kind == 0:
            fast, slow = pairs[(i // 3) % len(pairs)]
            lines += ["    type: ma_crossover", f"    fast: {fast}", f"    slow: {slow}",
                      f"    base_confidence: {0.5 + (i % 7) / 20:.2f}", "    confirm: macd_hist"]
        elif kind == 1:
            low = 20 + (i % 11)
            lines += ["    type: rsi_mean_reversion", f"    oversold: {low}", f"    overbought: {100 - low}",
                      "    on_cross: true"]
        else:
            lines += ["    type: bollinger_breakout", "    on_cross: true", f"    excess_weight: {1 + i % 5}"]
    return "\n".join(lines) + "\n"


def handled(url: str) -> float:
    """Bars the replica has evaluated: a bar is evaluated by whichever of its bar and its vector is
    handled second, so the smaller of the two topics' handled counts."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    counts = {s.labels.get("topic"): s.value for f in text_string_to_metric_families(text)
              if f.name == "eafix_bus_handled" for s in f.samples if s.name.endswith("_total")}
    return min(counts.get(VECTORS, 0.0), counts.get(BARS, 0.0))


def owned(url: str) -> set[float]:
    """The replica's owned partitions of each of the group's topics (one value once they agree)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {s.value for f in text_string_to_metric_families(text) if f.name == "eafix_bus_owned_partitions"
            for s in f.samples if s.labels.get("group") == GROUP}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (a replica: taskset execs it, the same process)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def wait(check, what: str, timeout: float = STARTUP) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.05)


def start_replica(n: int, cpu: int, env: dict[str, str], workdir: Path) -> tuple[subprocess.Popen, str]:
    port = servers.free_port()
    env = {**env, "SERVICE_PORT": str(port), "SERVICE_CONSUMER_NAME": f"bench-sg-{n}"}
    log = (workdir / f"sg-{n}.log").open("w")
    proc = subprocess.Popen(["taskset", "-c", str(cpu), sys.executable, "-m", "eafix", "serve", GROUP], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc, f"http://127.0.0.1:{port}"


def unread(r) -> int:
    """Bars or vectors (the larger) not yet delivered to the group, over the partitions."""
    totals = []
    for topic in (BARS, VECTORS):
        total = 0
        for n in range(PARTITIONS):
            stream = f"{topic}.p{n}"
            if not r.exists(stream):
                continue
            lag = next((g["lag"] for g in r.xinfo_groups(stream) if g["name"] == GROUP), None)
            total += r.xlen(stream) if lag is None else lag
        totals.append(total)
    return max(totals)


def encoded(items: list) -> list[tuple[str, str]]:
    """The workload as indicator-engine publishes it (bar then vector, keyed by symbol), each message
    as its stream and its JSON, made before any clock runs: the feeder then only copies bytes to Redis
    and takes little of the two cores the replicas are pinned to (it took 0.3-0.4 of one encoding
    envelopes as it went)."""
    messenger = Messenger(None, "indicator-engine", WallClock())  # type: ignore[arg-type]  (envelopes only)
    events = [e for bar, vector in items for e in ((bar, vector) if vector is not None else (bar,))]
    return [(f"{env.data.TOPIC}.p{partition_of(partition_key(env), PARTITIONS)}",
             json.dumps(messenger.encode(env), separators=(",", ":"), ensure_ascii=False))
            for env in messenger.envelopes(events)]


def feeder(r, messages: list[tuple[str, str]]) -> threading.Thread:
    """Publishes the messages as fast as the group takes them, keeping at most BACKLOG vectors unread: a
    saturated consumer without a deep backlog (over a deep one its bars consumer runs ahead of its
    vectors consumer, see docs/operations.md)."""
    def run() -> None:
        sent = 0
        while sent < len(messages):
            room = BACKLOG - unread(r)  # a few checks a second: each costs eight round trips
            if room < BACKLOG // 2:
                time.sleep(0.05)  # BACKLOG is about half a second of work: no need to spin on the cores
                continue
            pipe = r.pipeline(transaction=False)
            for stream, payload in messages[sent:sent + 2 * room]:  # a bar and a vector per unread slot
                pipe.xadd(stream, {FIELD: payload})
            pipe.execute()
            sent += 2 * room

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def outputs(r) -> int:
    """Signals and suppressions published so far (entries added: the streams are trimmed at their maxlen)."""
    return sum(r.xinfo_stream(t)["entries-added"] if r.exists(t) else 0
               for t in ("eafix.signals.generated", "eafix.signals.suppressed"))


def measure(cpus: list[int], env: dict[str, str], workdir: Path, r, total: int, messages: list[tuple[str, str]],
            expected: int, seconds: float) -> dict:
    redis_pid = int(r.info("server")["process_id"])
    procs = [start_replica(n, cpu, env, workdir) for n, cpu in enumerate(cpus)]
    feed = None
    try:
        for proc, url in procs:
            wait(lambda proc=proc, url=url: ready(url) or proc.poll() is not None, "a replica to start")
            if proc.poll() is not None:
                raise SystemExit(f"a replica exited: {(workdir / 'sg-0.log').read_text()[-2000:]}")
        share = PARTITIONS // len(procs)
        wait(lambda: all(owned(url) == {share} for _, url in procs), "the partitions divided")
        feed = feeder(r, messages)
        # past the indicators' cheap warm-up bars
        wait(lambda: sum(handled(url) for _, url in procs) >= 0.1 * total, "a tenth of the bars")
        t0, c0 = time.perf_counter(), sum(handled(url) for _, url in procs)
        cpu0 = sum(cpu_seconds(proc.pid) for proc, _ in procs)
        others0 = cpu_seconds(redis_pid), cpu_seconds(os.getpid())
        deadline = t0 + seconds
        while time.perf_counter() < deadline and sum(handled(url) for _, url in procs) < 0.9 * total:
            time.sleep(0.5)  # each look costs the replicas a /metrics page
        t1, c1 = time.perf_counter(), sum(handled(url) for _, url in procs)
        cpu1 = sum(cpu_seconds(proc.pid) for proc, _ in procs)
        others1 = cpu_seconds(redis_pid), cpu_seconds(os.getpid())
        feed.join()
        # every vector evaluated (none dropped on the way): as many outputs as the reference
        with contextlib.suppress(SystemExit):  # reported below: fewer outputs than the reference
            wait(lambda: outputs(r) >= expected, "the outputs", timeout=600)
        made = outputs(r)
    finally:
        if feed is not None:
            feed.join()
        for proc, _ in procs:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {"replicas": len(procs), "cpus": cpus, "vectors": int(c1 - c0), "seconds": round(t1 - t0, 2),
            "bars_per_s": round((c1 - c0) / (t1 - t0), 1), "outputs": made, "expected_outputs": expected,
            # what the machine's other load left them: CPU seconds per second per replica (1 = a whole core)
            "core_share": round((cpu1 - cpu0) / (t1 - t0) / len(procs), 2),
            "bars_per_cpu_s": round((c1 - c0) / (cpu1 - cpu0), 1),
            # what ran beside them on the same two cores, unpinned (CPU seconds per second)
            "redis_share": round((others1[0] - others0[0]) / (t1 - t0), 2),
            "feeder_share": round((others1[1] - others0[1]) / (t1 - t0), 2)}


def reset(r) -> None:
    """Delete the streams, the outputs, the group's leases and records: the next run starts afresh."""
    for key in [*r.scan_iter(match="eafix.*"), *r.scan_iter(match="eafix:bus:*")]:
        r.delete(key)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1000, help="M1 bars per symbol (12 symbols)")
    parser.add_argument("--strategies", type=int, default=240)
    parser.add_argument("--seconds", type=float, default=30.0, help="longest measuring window per run")
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs two CPUs to pin two replicas one per core")
    load_before = os.getloadavg()
    symbols = balanced_symbols()
    start = (datetime.now(UTC) - timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    items = bars_and_vectors(symbols, args.bars, start, seed=7)
    signals, suppressed = reference(items, heavy_strategies(args.strategies))
    expected = len(signals) + len(suppressed)  # one output per candidate, whatever the clock
    messages = encoded(items)
    with tempfile.TemporaryDirectory(prefix="eafix-scaleout-") as tmp, servers.redis_server() as rds:
        workdir = Path(tmp)
        strategies = workdir / "strategies.yaml"
        strategies.write_text(heavy_strategies(args.strategies))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
        env.update({"SERVICE_REDIS_URL": rds.url, "SERVICE_SECRETS_DIR": str(workdir / "none"),
                    "SERVICE_LOG_LEVEL": "WARNING", "SERVICE_STRATEGIES_FILE": str(strategies),
                    "SERVICE_BUS_PARTITIONS": str(PARTITIONS), "SERVICE_BUS": json.dumps({"lease_ms": 3000})})
        if rds.password:
            env["SERVICE_REDIS_PASSWORD"] = rds.password
        r = redis.Redis.from_url(rds.url, password=rds.password, decode_responses=True)
        one = measure([0], env, workdir, r, len(items), messages, expected, args.seconds)
        print(f"1 replica  (CPU 0):    {one['bars_per_s']:8.1f} bars/s ({one['vectors']} in {one['seconds']} s), "
              f"{one['bars_per_cpu_s']} bars per CPU second, {one['core_share']} of its core;"
              f" Redis {one['redis_share']}, feeder {one['feeder_share']}", flush=True)
        reset(r)
        two = measure([0, 1], env, workdir, r, len(items), messages, expected, args.seconds)
        r.close()
        print(f"2 replicas (CPU 0, 1): {two['bars_per_s']:8.1f} bars/s ({two['vectors']} in {two['seconds']} s), "
              f"{two['bars_per_cpu_s']} bars per CPU second, {two['core_share']} of a core each;"
              f" Redis {two['redis_share']}, feeder {two['feeder_share']}", flush=True)
    ratio = two["bars_per_s"] / one["bars_per_s"]
    complete = all(run["outputs"] == expected for run in (one, two))
    if not complete:
        print(f"outputs {one['outputs']} and {two['outputs']}, the reference {expected}: vectors were skipped")
    load_after = os.getloadavg()
    print(f"ratio {ratio:.2f}x; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "parameters": {"symbols": symbols, "bars_per_symbol": args.bars, "strategies": args.strategies,
                       "partitions": PARTITIONS, "window_seconds": args.seconds},
        "one": one, "two": two, "ratio": round(ratio, 3), "complete": complete,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in load_after]},
    }, indent=1) + "\n")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
