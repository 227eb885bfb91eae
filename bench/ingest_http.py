"""data-ingestor's HTTP batch API: accepted ticks per second of one replica.

    .venv/bin/python bench/ingest_http.py [--ticks 200000] [--batch 1000] [--concurrency 4]

Starts a throwaway redis-server (eafix.local.servers, as the tests do) and one `eafix serve
data-ingestor` process on a free port, then POSTs `--ticks` distinct synthetic EURUSD ticks (one
second apart, recent enough for the ingest age limit) to /api/v1/ticks in batches of `--batch`
from `--concurrency` concurrent connections. The request bodies are serialised before the clock
starts, so the feeder spends its time waiting on the service. Counted: the `accepted` figures of
the 200 answers (normalised, de-duplicated and published on eafix.price.tick with XADD), checked
against the stream's length. The feeder and redis-server share the machine with the replica.
Written to bench/results/ingest_http.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from service import servers  # noqa: E402  (the test suite's throwaway servers)

RESULTS = Path(__file__).resolve().parent / "results" / "ingest_http.json"
TARGET = 50_000


def bodies(total: int, batch: int) -> list[bytes]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=total + 60)
    out = []
    for first in range(0, total, batch):
        ticks = []
        for i in range(first, min(total, first + batch)):
            bid = 1.08 + (i % 200) * 0.00001
            ts = (start + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
            ticks.append({"symbol": "EURUSD", "ts": ts, "bid": f"{bid:.5f}", "ask": f"{bid + 0.0001:.5f}"})
        out.append(json.dumps(ticks).encode())
    return out


def start_service(workdir: Path, rds: servers.RedisServer, profile: Path | None) -> tuple[subprocess.Popen, str]:
    port = servers.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_") and k != "EAFIX_SERVICE"}
    env.update({"SERVICE_REDIS_URL": rds.url, "SERVICE_PORT": str(port), "SERVICE_LOG_LEVEL": "WARNING",
                "SERVICE_SECRETS_DIR": str(workdir / "no-secrets"), "SERVICE_CONSUMER_NAME": "data-ingestor-0",
                "SERVICE_INGEST": json.dumps({"max_price_age_seconds": 30 * 86400})})
    if rds.password:
        env["SERVICE_REDIS_PASSWORD"] = rds.password
    log = (workdir / "data-ingestor.log").open("w")
    # --profile: the replica runs under pyinstrument, which writes its report when SIGINT stops it
    wrap = ["-m", "pyinstrument", "-r", "text", "-p", "flat=true", "-o", str(profile)] if profile else []
    proc = subprocess.Popen([sys.executable, *wrap, "-m", "eafix", "serve", "data-ingestor"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"data-ingestor exited: {(workdir / 'data-ingestor.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("data-ingestor did not become ready")
        time.sleep(0.1)


async def feed(url: str, payloads: list[bytes], concurrency: int) -> tuple[int, float]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for payload in payloads:
        queue.put_nowait(payload)
    accepted = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal accepted
        while not queue.empty():
            payload = queue.get_nowait()
            response = await client.post(f"{url}/api/v1/ticks", content=payload,
                                         headers={"content-type": "application/json"})
            if response.status_code != 200:
                raise SystemExit(f"ingest answered {response.status_code}: {response.text[:300]}")
            accepted += response.json()["accepted"]

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        await client.post(f"{url}/api/v1/ticks", content=b"[]", headers={"content-type": "application/json"})
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return accepted, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--profile", type=Path, help="run the replica under pyinstrument, its text report here")
    args = parser.parse_args()
    payloads = bodies(args.ticks, args.batch)
    with tempfile.TemporaryDirectory(prefix="eafix-bench-ingest-") as tmp, servers.redis_server() as rds:
        proc, url = start_service(Path(tmp), rds, args.profile)
        try:
            accepted, seconds = asyncio.run(feed(url, payloads, args.concurrency))
            with redis.Redis.from_url(rds.url, password=rds.password) as r:
                published = sum(r.xlen(s) for s in r.scan_iter(match="eafix.price.tick*", _type="stream"))
        finally:
            proc.send_signal(signal.SIGINT if args.profile else signal.SIGTERM)
            proc.wait(timeout=60)
    document = {
        "benchmark": "ingest_http",
        "command": f"POST /api/v1/ticks, batches of {args.batch}, {args.concurrency} connections, one replica",
        "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
                    "platform": platform.platform(), "python": platform.python_version()},
        "ticks": args.ticks, "accepted": accepted, "published_on_stream": published, "seconds": round(seconds, 3),
        "accepted_ticks_per_s": round(accepted / seconds), "target_ticks_per_s": TARGET,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(f"data-ingestor: {accepted:,} of {args.ticks:,} ticks accepted in {seconds:.2f} s = "
          f"{accepted / seconds:,.0f} ticks/s (target {TARGET:,}); {published:,} on the stream; wrote {RESULTS}")
    return 0 if accepted == args.ticks == published else 1


if __name__ == "__main__":
    sys.exit(main())
