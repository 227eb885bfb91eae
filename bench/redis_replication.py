"""What waiting for Redis replicas costs a publish to the order-flow topics.

    .venv/bin/python bench/redis_replication.py [--publishes 2000]

On a throwaway primary with two replicas and three sentinels (the failover tests' group, loopback,
one machine), the bus publishes `--publishes` OrderIntent-sized envelopes one at a time to
`eafix.orders.validated` with SERVICE_BUS_REPLICATION replicas 0 (no WAIT), 1 and 2, and prints the
per-publish latency (p50, p99) and publishes/s of each; also written to
bench/results/redis_replication.json. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from service.redis_bus import envelope  # noqa: E402  (the test suite's envelopes and replication group)
from service.sentinel_cluster import sentinel_cluster  # noqa: E402

from eafix.runtime.bus import BusConfig, BusMetrics, RedisStreamsBus  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "redis_replication.json"
TOPIC = "eafix.orders.validated"


async def measure(port: int, password: str, replicas: int, publishes: int) -> dict[str, float]:
    client = aioredis.Redis(host="127.0.0.1", port=port, password=password)
    bus = RedisStreamsBus(client, owns_client=True, consumer="bench", metrics=BusMetrics(CollectorRegistry()),
                          config=BusConfig(replicas=replicas, wait_ms=1000))
    latencies = []
    started = time.perf_counter()
    for seq in range(publishes):
        t0 = time.perf_counter()
        await bus.publish(TOPIC, envelope(seq))
        latencies.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - started
    await bus.stop()
    latencies.sort()
    return {"replicas": replicas, "p50_ms": round(statistics.median(latencies), 3),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 3),
            "publishes_per_s": round(publishes / elapsed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publishes", type=int, default=2000)
    args = parser.parse_args()
    with sentinel_cluster() as cluster:
        primary = cluster.primary_port()
        rows = [asyncio.run(measure(primary, cluster.password, n, args.publishes)) for n in (0, 1, 2)]
    for row in rows:
        print(f"replicas {row['replicas']}: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, "
              f"{row['publishes_per_s']} publishes/s")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"publishes": args.publishes, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
