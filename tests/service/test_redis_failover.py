"""Redis failover through Sentinel, on loopback with real processes: one primary, two replicas, three
sentinels. The services' Redis client (runtime/redis_client.py) follows the promoted replica: a bus
keeps publishing and consuming after the primary is SIGKILLed, and readiness recovers.

What an acknowledged publish guarantees across a failover is measured, not assumed: replication is
asynchronous, so entries the primary acknowledged but had not yet sent to a replica may be gone.
The test publishes in lockstep (each publish waits for its delivery), so every acknowledged entry
before the kill had been read back; entries published after the failover must all arrive."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import CollectorRegistry

from eafix.runtime.bus import BusMetrics, RedisStreamsBus
from eafix.runtime.health import Backends
from eafix.runtime.redis_client import redis_client
from eafix.runtime.settings import Settings, SettingsError
from service.redis_bus import FAST, GUARD, envelope, eventually, seq_of
from service.sentinel_cluster import MASTER, sentinel_cluster

TOPIC = "eafix.test.failover"
GROUP = "failover-test"


def settings(cluster) -> Settings:
    # the URL's host is deliberately unreachable: with sentinels only its scheme and database count
    return Settings(name="risk-manager", redis_url="redis://192.0.2.1:6379/0", redis_password=cluster.password,
                    redis_sentinels=cluster.sentinels, redis_sentinel_master=MASTER)


def test_sentinel_settings_name_a_bad_entry():
    with pytest.raises(SettingsError, match="SERVICE_REDIS_SENTINELS: 'nohost' is not host:port"):
        Settings(name="risk-manager", redis_url="redis://x:6379/0", redis_sentinels="127.0.0.1:26379,nohost")


def test_the_bus_follows_a_failover_and_loses_nothing_published_after_it():
    with sentinel_cluster() as cluster:
        first_primary = cluster.primary_port()
        seen: list[int] = []

        async def scenario() -> float:
            s = settings(cluster)
            options = {**RedisStreamsBus.client_options("pod-0", FAST["block_ms"])}
            bus = RedisStreamsBus(redis_client(s, **options), owns_client=True, consumer="pod-0",
                                  metrics=BusMetrics(CollectorRegistry()), **FAST)
            bus.subscribe(TOPIC, GROUP, lambda env: seen.append(seq_of(env)))
            backends = Backends(s)
            task = asyncio.create_task(bus.run())
            try:
                for seq in range(100):
                    await bus.publish(TOPIC, envelope(seq))
                await eventually(lambda: len(seen) == 100, "100 messages before the failover")
                cluster.kill(first_primary)
                killed = time.monotonic()
                seq, recovered = 100, None
                while recovered is None:  # keep publishing until a publish lands on the new primary
                    try:
                        await bus.publish(TOPIC, envelope(seq))
                        recovered = time.monotonic() - killed
                    except Exception:
                        await asyncio.sleep(0.1)
                for more in range(seq + 1, seq + 100):
                    await bus.publish(TOPIC, envelope(more))
                await eventually(lambda: set(range(100, seq + 100)) <= set(seen), "every message after the failover")
                ready, report = await backends.readiness()
                assert ready and report == {"redis": {"status": "up"}}, report
                return recovered
            finally:
                await bus.stop()
                await task
                await backends.aclose()

        recovered = asyncio.run(asyncio.wait_for(scenario(), GUARD))
        assert cluster.primary_port() != first_primary
        assert sorted(set(seen)) == list(range(200)), "nothing lost"
        assert len(seen) == len(set(seen)), "nothing delivered twice"
        print(f"\nfailover: first publish on the new primary {recovered:.1f} s after SIGKILL of the old one")
