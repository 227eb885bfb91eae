"""Helpers of the Redis Streams bus tests (test_bus_redis.py, test_service_bus.py): fast bus options,
buses running in the background, test envelopes and an admin client."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from eafix.runtime.bus import BusMetrics, RedisStreamsBus
from service.servers import RedisServer

GUARD = 120.0  # seconds: a hung test fails instead of blocking the suite
# Short blocking reads, leases and retry delays keep the suite quick; production uses the defaults.
FAST = {"block_ms": 50, "retry_base": 0.001, "retry_cap": 0.01, "reconnect_base": 0.01, "reconnect_cap": 0.2,
        "lease_ms": 600, "metrics_interval": 0.1}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, GUARD))


async def eventually(check: Callable, what: str, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.01)


def envelope(seq: int, **data: object) -> dict:
    return {
        "event_id": str(uuid.uuid4()), "event_type": "test.event", "schema_version": "1.0",
        "correlation_id": str(uuid.uuid4()), "causation_id": None, "ts_event": "2024-01-02T03:04:05.000Z",
        "ts_init": "2024-01-02T03:04:05.001Z", "producer": "test", "data": {"seq": seq, **data},
    }


def seq_of(env: dict) -> int:
    return env["data"]["seq"]


def make_bus(server: RedisServer, consumer: str, registry: CollectorRegistry | None = None,
             url: str | None = None, **options: object) -> RedisStreamsBus:
    return RedisStreamsBus.from_url(url or server.url, password=server.password, consumer=consumer,
                                    metrics=BusMetrics(registry if registry is not None else CollectorRegistry()),
                                    **{**FAST, **options})


def admin_client(server: RedisServer) -> aioredis.Redis:
    return aioredis.Redis.from_url(server.url, password=server.password, decode_responses=True)


@asynccontextmanager
async def running(*buses: RedisStreamsBus) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(bus.run()) for bus in buses]
    try:
        yield
    finally:
        for bus in buses:
            await bus.stop()
        await asyncio.gather(*tasks)
