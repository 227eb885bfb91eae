"""Redis failover through Sentinel, on loopback with real processes: one primary, two replicas, three
sentinels. The services' Redis client (runtime/redis_client.py) follows the promoted replica: a bus
keeps publishing and consuming after the primary is SIGKILLed, and readiness recovers.

What an acknowledged publish guarantees across a failover is measured, not assumed: replication is
asynchronous, so entries the primary acknowledged but had not yet sent to a replica may be gone.
The test reads back every entry published before the kill before killing; entries published after
the failover must all arrive, once. Acks are replicated asynchronously too, so entries from before
the kill may be redelivered (at-least-once delivery, which every consumer handles)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis
from prometheus_client import CollectorRegistry

from eafix.contracts import OrderIntent
from eafix.runtime.bus import BusConfig, BusMetrics, NotReplicated, RedisStreamsBus
from eafix.runtime.bus.redis_streams import PUBLISH_RETRIED
from eafix.runtime.health import Backends
from eafix.runtime.redis_client import redis_client
from eafix.runtime.settings import Settings, SettingsError
from service.redis_bus import FAST, GUARD, envelope, eventually, seq_of
from service.sentinel_cluster import MASTER, sentinel_cluster

pytestmark = pytest.mark.slow  # minutes of real processes: scheduled first (tests/conftest.py)

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
        # Delivery is at least once: an ack the old primary took but had not replicated is redone on
        # the new one, so messages from before the kill may come again (consumers are idempotent).
        # Nothing published after the failover comes twice.
        after = [s for s in seen if s >= 100]
        assert len(after) == len(set(after)), "nothing after the failover delivered twice"
        print(f"\nfailover: first publish on the new primary {recovered:.1f} s after SIGKILL of the old one; "
              f"{len(seen) - len(set(seen))} redeliveries of messages from before it")


ORDERS = OrderIntent.TOPIC  # an order-flow topic: its publishes WAIT for a replica
ORDERS_TOTAL = 600


def test_with_wait_for_one_replica_no_acknowledged_order_is_lost_when_the_primary_dies_mid_flow():
    """A publisher keeps publishing orders (WAIT 1) and a consumer keeps consuming while the primary
    is SIGKILLed. A failed publish is done again, as risk-manager's redelivery and execution-engine's
    outbox do; so an order may be stored twice (consumers are idempotent), but every publish that
    returned must be on the promoted replica and reach the consumer."""
    with sentinel_cluster() as cluster:
        first_primary = cluster.primary_port()
        acked: list[int] = []
        seen: list[int] = []
        failures: list[str] = []
        killed: list[float] = []
        recovered: list[float] = []

        async def publisher(bus: RedisStreamsBus) -> None:
            seq = 0
            while seq < ORDERS_TOTAL:
                try:
                    await bus.publish(ORDERS, envelope(seq))
                except (NotReplicated, *PUBLISH_RETRIED) as exc:
                    if killed:
                        failures.append(type(exc).__name__)
                    await asyncio.sleep(0.05)
                    continue
                # the first success after a failure is the new primary's (a reply read just after the
                # kill may still be the old primary's)
                if failures and not recovered:
                    recovered.append(time.monotonic() - killed[0])
                acked.append(seq)
                seq += 1

        async def scenario() -> None:
            s = settings(cluster)
            options = {**RedisStreamsBus.client_options("pod-0", FAST["block_ms"])}
            bus = RedisStreamsBus(redis_client(s, **options), owns_client=True, consumer="pod-0",
                                  metrics=BusMetrics(CollectorRegistry()),
                                  config=BusConfig(replicas=1, wait_ms=1000), **FAST)
            bus.subscribe(ORDERS, GROUP, lambda env: seen.append(seq_of(env)))
            consuming = asyncio.create_task(bus.run())
            publishing = asyncio.create_task(publisher(bus))
            try:
                await eventually(lambda: len(acked) >= ORDERS_TOTAL // 3, "a third of the orders published")
                cluster.kill(first_primary)  # mid-flow: the publisher and the consumer are both busy
                killed.append(time.monotonic())
                await publishing
                await eventually(lambda: set(acked) <= set(seen), "every acknowledged order consumed")
            finally:
                publishing.cancel()
                await bus.stop()
                await consuming

        asyncio.run(asyncio.wait_for(scenario(), GUARD))
        new_primary = cluster.primary_port()
        assert new_primary != first_primary
        with redis.Redis(port=new_primary, password=cluster.password) as r:
            stored = [json.loads(fields[b"envelope"])["data"]["seq"] for _id, fields in r.xrange(ORDERS)]
        assert acked == list(range(ORDERS_TOTAL))
        assert failures and recovered, "the kill interrupted publishing and publishing recovered"
        lost = sorted(set(acked) - set(stored))
        assert lost == [], f"acknowledged orders missing on the promoted replica: {lost}"
        assert set(stored) == set(acked), "nothing stored that was never published"
        assert set(seen) == set(acked), "every acknowledged order consumed, nothing else"
        print(f"\nfailover with WAIT 1: first acknowledged publish on the new primary {recovered[0]:.1f} s after "
              f"SIGKILL; {len(failures)} failed publishes redone ({', '.join(sorted(set(failures)))}); "
              f"acknowledged and lost 0 of {len(acked)}; stored twice {len(stored) - len(set(stored))}; "
              f"delivered twice {len(seen) - len(set(seen))}")
