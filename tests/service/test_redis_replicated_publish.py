"""Publishes to the order-flow topics that wait for Redis replicas (`SERVICE_BUS_REPLICATION`): on a
primary with two replicas every acknowledged publish is already on a replica when `publish` returns
(read back from the replica itself, after each publish); without enough replicas the publish fails
with NotReplicated instead of claiming a durability it does not have; other topics never wait."""

from __future__ import annotations

import asyncio

import pytest
import redis
from prometheus_client import CollectorRegistry

from eafix.contracts import ExecutionReport, OrderIntent, TradeClosed
from eafix.runtime.bus import DURABLE_TOPICS, BusConfig, BusMetrics, NotReplicated, RedisStreamsBus
from eafix.runtime.service import PipelineSettings
from eafix.runtime.settings import SettingsError
from service.redis_bus import GUARD, envelope
from service.sentinel_cluster import sentinel_cluster

ORDERS = OrderIntent.TOPIC


def bus_on(port: int, password: str | None, **config) -> RedisStreamsBus:
    import redis.asyncio as aioredis

    client = aioredis.Redis(host="127.0.0.1", port=port, password=password)
    return RedisStreamsBus(client, owns_client=True, consumer="pod-0", metrics=BusMetrics(CollectorRegistry()),
                           config=BusConfig(**config))


def test_the_durable_topics_are_the_order_flow_contracts():
    assert {OrderIntent.TOPIC, ExecutionReport.TOPIC, TradeClosed.TOPIC} == DURABLE_TOPICS


def test_an_acknowledged_durable_publish_is_on_a_replica():
    with sentinel_cluster() as cluster:
        primary = cluster.primary_port()
        replica_ports = [p for p in cluster.data_ports if p != primary]

        async def scenario() -> None:
            bus = bus_on(primary, cluster.password, replicas=2, wait_ms=2000)
            replicas = [redis.Redis(port=p, password=cluster.password) for p in replica_ports]
            try:
                for seq in range(200):
                    await bus.publish(ORDERS, envelope(seq))
                    # the moment publish returns, both replicas hold the entry
                    assert [r.xlen(ORDERS) for r in replicas] == [seq + 1, seq + 1]
                ids = await bus.publish_many([(ORDERS, envelope(200 + i)) for i in range(50)])
                assert len(ids) == 50 and [r.xlen(ORDERS) for r in replicas] == [250, 250]
            finally:
                await bus.stop()
                for r in replicas:
                    r.close()

        asyncio.run(asyncio.wait_for(scenario(), GUARD))


def test_without_enough_replicas_a_durable_publish_fails_and_others_do_not_wait(redis_server):
    port = int(redis_server.url.rsplit(":", 1)[1].split("/")[0])

    async def scenario() -> None:
        bus = bus_on(port, redis_server.password, replicas=1, wait_ms=50)
        try:
            with pytest.raises(NotReplicated, match="0 of 1 Redis replicas acknowledged the publish to "
                                                    "eafix.orders.validated within 50 ms"):
                await bus.publish(ORDERS, envelope(1))
            await bus.publish("eafix.price.tick", envelope(2))  # not an order-flow topic: no WAIT
            off = bus_on(port, redis_server.password)  # replicas 0: nothing waits
            await off.publish(ORDERS, envelope(3))
            await off.stop()
        finally:
            await bus.stop()

    asyncio.run(asyncio.wait_for(scenario(), GUARD))


def test_the_setting_names_a_bad_key():
    settings = PipelineSettings(name="risk-manager", bus_replication={"replicas": 1, "wait_ms": 250})
    assert (settings.bus_replication.replicas, settings.bus_replication.wait_ms) == (1, 250)
    with pytest.raises(SettingsError, match="SERVICE_BUS_REPLICATION: replicas: Input should be less than or equal "
                                            "to 5"):
        PipelineSettings(name="risk-manager", bus_replication={"replicas": 9})
