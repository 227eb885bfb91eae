"""Bus throughput: publish and consume N messages through the Redis Streams bus and the in-memory bus.

    .venv/bin/python bench/bus_throughput.py [--messages 50000] [--redis-url redis://:pw@host:6379/0]

Without --redis-url a throwaway redis-server (from PATH) is started on a free local port. Figures
are printed and written to bench/results/bus_throughput.json. Scenarios (Redis):
  publish_many   pipelined batches (publish_chunk per round trip)
  publish        one awaited XADD per message (what a naive producer does)
  consume        a backlog of N, one consumer, no-op handler (ack per read batch)
  end_to_end     producer and consumer running together until the last message is handled
  latency        one-hop publish -> handler latency at a fixed rate (p50/p99/max, ms)
and the floors the bus is held against, measured in the same run on the same server:
  raw_pipelined_xadd  redis-py pipelines of XADD (MAXLEN ~) of the same envelopes, JSON-encoded
                      before the clock starts, `--chunk` per round trip: what Redis and the client
                      library can take without the bus (publish_many / this = the bus's ratio)
  round_trip          PING round trips on loopback, one at a time (p50/p99 ms): the floor of one hop
and in memory: publish + drain with an async and with a sync handler, and a two-hop chain.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from eafix.runtime.bus import BusConfig, InMemoryBus, RedisStreamsBus

RESULTS = Path(__file__).resolve().parent / "results" / "bus_throughput.json"


def tick(seq: int) -> dict:
    """A realistic envelope (about 400 bytes of JSON)."""
    return {
        "event_id": str(uuid.uuid4()), "event_type": "PriceTick", "schema_version": "1.0",
        "correlation_id": str(uuid.uuid4()), "causation_id": None,
        "ts_event": "2024-03-01T12:00:00.123456Z", "ts_init": "2024-03-01T12:00:00.124001Z",
        "producer": "data-ingestor",
        "data": {"symbol": "EURUSD", "bid": "1.08412", "ask": "1.08425", "volume": 1000000,
                 "source": "mt4-bridge", "seq": seq, "sent_ns": 0},
    }


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH; pass --redis-url")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="eafix-bench-redis-")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", workdir], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                redis.Redis(port=port, socket_timeout=1).ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def rate(n: int, seconds: float) -> dict:
    return {"messages": n, "seconds": round(seconds, 4), "msgs_per_s": round(n / seconds) if seconds else None}


async def redis_scenarios(url: str, n: int, latency_rate: int, latency_seconds: float, batch: int,
                          chunk: int) -> tuple[dict, dict]:
    run_id = uuid.uuid4().hex[:8]
    topics: list[str] = []

    def new_topic(name: str) -> str:
        topics.append(f"eafix.bench.{name}_{run_id}")
        return topics[-1]

    config = BusConfig(default_maxlen=max(100_000, 2 * n))
    options = {"config": config, "batch": batch, "publish_chunk": chunk, "block_ms": 100}
    publisher = RedisStreamsBus.from_url(url, consumer="bench-publisher", **options)
    results: dict[str, dict] = {}

    topic = new_topic("publish_many")
    messages = [(topic, tick(i)) for i in range(n)]
    start = time.perf_counter()
    await publisher.publish_many(messages)
    results["redis.publish_many"] = rate(n, time.perf_counter() - start)

    floors = await redis_floors(publisher.redis, new_topic("raw_xadd"), n, chunk, config.maxlen_for("x"))
    results["redis.raw_pipelined_xadd"] = floors.pop("raw_pipelined_xadd")

    single = min(n, 10_000)
    single_topic = new_topic("publish")
    start = time.perf_counter()
    for i in range(single):
        await publisher.publish(single_topic, tick(i))
    results["redis.publish"] = rate(single, time.perf_counter() - start)

    async def consume(topic: str, expected: int, produce=None) -> float:
        done = asyncio.Event()
        count = 0

        async def handler(env: dict) -> None:
            nonlocal count
            count += 1
            if count == expected:
                done.set()

        consumer = RedisStreamsBus.from_url(url, consumer="bench-consumer", **options)
        consumer.subscribe(topic, "bench", handler)
        start = time.perf_counter()
        task = asyncio.create_task(consumer.run())
        if produce is not None:
            await produce()
        await done.wait()
        elapsed = time.perf_counter() - start
        await consumer.stop()
        await task
        return elapsed

    # The publish_many topic holds a backlog of n.
    results["redis.consume"] = rate(n, await consume(topic, n))

    e2e_topic = new_topic("end_to_end")

    async def produce() -> None:
        for start_at in range(0, n, chunk):
            await publisher.publish_many([(e2e_topic, tick(i)) for i in range(start_at, min(n, start_at + chunk))])

    results["redis.end_to_end"] = rate(n, await consume(e2e_topic, n, produce))

    latency_topic = new_topic("latency")
    latencies: list[float] = []
    total = int(latency_rate * latency_seconds)
    done = asyncio.Event()

    async def measure(env: dict) -> None:
        latencies.append((time.perf_counter_ns() - env["data"]["sent_ns"]) / 1e6)
        if len(latencies) == total:
            done.set()

    consumer = RedisStreamsBus.from_url(url, consumer="bench-latency", **options)
    consumer.subscribe(latency_topic, "bench", measure)
    task = asyncio.create_task(consumer.run())
    await asyncio.sleep(0.5)  # let it take its lease and block on XREADGROUP
    interval, began = 1 / latency_rate, time.perf_counter()
    for i in range(total):
        delay = began + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        envelope = tick(i)
        envelope["data"]["sent_ns"] = time.perf_counter_ns()
        await publisher.publish(latency_topic, envelope)
    await done.wait()
    await consumer.stop()
    await task
    ordered = sorted(latencies)
    latency = {"rate_per_s": latency_rate, "messages": total,
               "p50_ms": round(statistics.median(ordered), 3),
               "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 3),
               "max_ms": round(ordered[-1], 3)}

    await publisher.redis.delete(*topics)
    await publisher.redis.delete(*[key for t in topics for key in (f"eafix:bus:lease:bench:{t}",
                                                                   f"eafix:bus:members:bench:{t}")])
    await publisher.stop()
    latency["round_trip"] = floors["round_trip"]
    return results, latency


async def redis_floors(client, topic: str, n: int, chunk: int, maxlen: int) -> dict:
    """Pipelined XADD of pre-encoded envelopes, and one-at-a-time PING round trips."""
    payloads = [json.dumps(tick(i), separators=(",", ":")) for i in range(n)]
    start = time.perf_counter()
    for first in range(0, n, chunk):
        pipe = client.pipeline(transaction=False)
        for payload in payloads[first:first + chunk]:
            pipe.xadd(topic, {"envelope": payload}, maxlen=maxlen, approximate=True)
        await pipe.execute()
    xadd = rate(n, time.perf_counter() - start)
    pings = []
    for _ in range(2000):
        t0 = time.perf_counter_ns()
        await client.ping()
        pings.append((time.perf_counter_ns() - t0) / 1e6)
    pings.sort()
    return {"raw_pipelined_xadd": xadd,
            "round_trip": {"pings": len(pings), "p50_ms": round(statistics.median(pings), 3),
                           "p99_ms": round(pings[int(0.99 * (len(pings) - 1))], 3)}}


async def memory_scenarios(n: int) -> dict:
    results: dict[str, dict] = {}
    envelopes = [tick(i) for i in range(n)]

    async def async_noop(env: dict) -> None:
        return None

    def sync_noop(env: dict) -> None:
        return None

    for name, handler in (("async_handler", async_noop), ("sync_handler", sync_noop)):
        bus = InMemoryBus()
        bus.subscribe("eafix.price.tick", "bench", handler)
        start = time.perf_counter()
        for envelope in envelopes:
            await bus.publish("eafix.price.tick", envelope)
        await bus.drain()
        results[f"memory.publish_drain.{name}"] = rate(n, time.perf_counter() - start)

    # Two hops: each tick handler publishes a derived event, as indicator-engine does.
    bus = InMemoryBus()

    async def on_tick(env: dict) -> None:
        await bus.publish("eafix.indicators.computed", env)

    bus.subscribe("eafix.price.tick", "indicators", on_tick)
    bus.subscribe("eafix.indicators.computed", "signals", lambda env: None)
    start = time.perf_counter()
    for envelope in envelopes:
        await bus.publish("eafix.price.tick", envelope)
    await bus.drain()
    results["memory.two_hops"] = rate(n, time.perf_counter() - start)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=50_000, help="messages per Redis scenario")
    parser.add_argument("--memory-messages", type=int, default=200_000, help="messages per in-memory scenario")
    parser.add_argument("--redis-url", default=os.environ.get("EAFIX_BENCH_REDIS_URL"),
                        help="use this Redis (password in the URL) instead of starting one")
    parser.add_argument("--batch", type=int, default=100, help="consumer read batch (XREADGROUP COUNT)")
    parser.add_argument("--chunk", type=int, default=1000, help="messages per pipelined publish round trip")
    parser.add_argument("--latency-rate", type=int, default=1000, help="msg/s of the latency scenario")
    parser.add_argument("--latency-seconds", type=float, default=3.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    async def redis_part(url: str) -> tuple[dict, dict, str]:
        with redis.Redis.from_url(url) as client:
            version = client.info("server")["redis_version"]
        results, latency = await redis_scenarios(url, args.messages, args.latency_rate, args.latency_seconds,
                                                 args.batch, args.chunk)
        return results, latency, version

    if args.redis_url:
        results, latency, version = asyncio.run(redis_part(args.redis_url))
    else:
        with redis_server() as url:
            results, latency, version = asyncio.run(redis_part(url))
    results.update(asyncio.run(memory_scenarios(args.memory_messages)))

    report = {
        "benchmark": "bus_throughput",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "redis_server": version, "redis_py": redis.__version__},
        "parameters": {"messages": args.messages, "memory_messages": args.memory_messages, "batch": args.batch,
                       "chunk": args.chunk, "envelope_bytes": len(json.dumps(tick(0), separators=(",", ":")))},
        "results": results,
        "latency": latency,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    width = max(map(len, results))
    for name, figures in results.items():
        print(f"{name:<{width}}  {figures['msgs_per_s']:>10,} msg/s  "
              f"({figures['messages']:,} in {figures['seconds']} s)")
    print(f"{'redis.latency':<{width}}  p50 {latency['p50_ms']} ms  p99 {latency['p99_ms']} ms  "
          f"max {latency['max_ms']} ms at {latency['rate_per_s']} msg/s")
    trip = latency["round_trip"]
    print(f"{'redis.round_trip':<{width}}  p50 {trip['p50_ms']} ms  p99 {trip['p99_ms']} ms (PING on loopback)")
    ratio = results["redis.publish_many"]["msgs_per_s"] / results["redis.raw_pipelined_xadd"]["msgs_per_s"]
    print(f"bus publish_many / raw pipelined XADD: {ratio:.2f}")
    print(f"machine: {report['machine']}; written to {args.output}")


if __name__ == "__main__":
    main()
