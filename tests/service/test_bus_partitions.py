"""Symbol partitions on the Redis Streams bus (real redis-server): account-wide groups on one lease,
the owned-partitions gauge, the refusal to start over undrained streams of another partition count,
and the partition-count change of docs/operations.md (drain, reconfigure, resume) losing nothing.

Waits poll with generous timeouts that only guard against hangs; nothing asserts speed."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from prometheus_client import CollectorRegistry

from eafix.runtime.bus import BusConfig, partition_of, stream_names
from eafix.runtime.bus.base import SYMBOL_TOPICS, symbol_partitions
from eafix.runtime.bus.redis_streams import PartitionLayoutError
from service.redis_bus import admin_client, envelope, eventually, make_bus, run, running, seq_of
from service.servers import RedisServer

GROUP = "svc"
KEYS = ["EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCHF", "NZDUSD", "USDCAD", "EURGBP"]


@pytest.fixture
def topic() -> str:
    return f"eafix.test.{uuid.uuid4().hex[:12]}"


def owned_gauge(registry: CollectorRegistry, topic: str) -> float | None:
    return registry.get_sample_value("eafix_bus_owned_partitions", {"topic": topic, "group": GROUP})


def messages(topic: str, first: int, count: int) -> list:
    """`count` messages per key, numbered from `first`, interleaved across the keys."""
    return [(topic, envelope(n, key=k), k) for n in range(first, first + count) for k in KEYS]


async def drained(admin, topic: str, partitions: int, group: str = GROUP) -> bool:
    """What the operator checks before a partition change: no entry the group has not read or not acked."""
    for stream in stream_names(topic, partitions):
        for info in await admin.xinfo_groups(stream):
            if info["name"] == group and (info["pending"] or info["lag"]):
                return False
    return True


def test_the_symbol_topics_are_contract_topics_keyed_by_symbol() -> None:
    from eafix.contracts import events

    keyed = {cls.TOPIC for cls in vars(events).values()
             if isinstance(cls, type) and hasattr(cls, "TOPIC") and "symbol" in getattr(cls, "model_fields", {})}
    assert keyed >= SYMBOL_TOPICS
    assert symbol_partitions(1) == {}  # one stream per topic, named as the topic
    assert symbol_partitions(8) == {t: 8 for t in SYMBOL_TOPICS}
    with pytest.raises(ValueError, match="between 1 and 64"):
        symbol_partitions(65)


def test_an_account_wide_group_reads_every_partition_on_one_lease(redis_server: RedisServer, topic: str) -> None:
    """spread=False: the first replica holds all four partitions (and the group's unpartitioned topic)
    under the one lease a single partition would have; the second stands by with none and takes all
    of them over when the first leaves. Each key stays in order throughout."""
    other = topic + ".whole"
    config = BusConfig(partitions={topic: 4})
    handled: list[tuple[str, str, int]] = []
    regs = {name: CollectorRegistry() for name in ("pod-a", "pod-b")}

    def handler_for(name: str):
        def handler(env: dict) -> None:
            handled.append((name, env["data"].get("key", ""), seq_of(env)))
        return handler

    async def scenario() -> None:
        admin = admin_client(redis_server)
        a, b = (make_bus(redis_server, name, regs[name], config=config, colocate=True, spread=False, lease_ms=1500)
                for name in ("pod-a", "pod-b"))
        for bus in (a, b):
            bus.subscribe(topic, GROUP, handler_for(bus.consumer))
            bus.subscribe(other, GROUP, handler_for(bus.consumer))
        task_a = asyncio.create_task(a.run())
        await eventually(lambda: len(a.owned_streams(topic, GROUP)) == 4, "pod-a to own the four partitions")
        async with running(b):
            standby = b._consumers[topic, GROUP]
            await eventually(lambda: b.owned_streams(topic, GROUP) == set() and standby.leases_confirmed,
                             "pod-b to stand by")
            assert a.owned_streams(other, GROUP) == {other} and b.owned_streams(other, GROUP) == set()
            assert await admin.get(f"eafix:bus:lease:{GROUP}:partition:0/1") == "pod-a"
            await eventually(lambda: owned_gauge(regs["pod-a"], topic) == 4 and owned_gauge(regs["pod-b"], topic) == 0,
                             "the gauges")
            await a.publish_many(messages(topic, 0, 10))
            await a.publish(other, envelope(0))
            await eventually(lambda: len(handled) == 10 * len(KEYS) + 1, "the first messages")
            assert {name for name, _, _ in handled} == {"pod-a"}
            await a.stop()  # pod-a leaves (its leases released): pod-b holds everything
            await task_a
            await eventually(lambda: len(b.owned_streams(topic, GROUP)) == 4
                             and b.owned_streams(other, GROUP) == {other}, "pod-b to take everything over")
            await b.publish_many(messages(topic, 10, 10))
            await eventually(lambda: len(handled) == 20 * len(KEYS) + 1, "the second messages")
            assert {name for name, _, seq in handled if seq >= 10} == {"pod-b"}
            assert owned_gauge(regs["pod-b"], topic) == 4 and owned_gauge(regs["pod-a"], topic) == 0
        await admin.aclose()

    run(scenario())
    for key in KEYS:
        assert [seq for _, k, seq in handled if k == key] == list(range(20)), key


def test_a_consumer_refuses_to_start_over_undrained_streams_of_another_count(
        redis_server: RedisServer, topic: str) -> None:
    """The group consumed two partitions (the count it recorded) and has entries left there, some read
    and unacknowledged, some unread; a consumer configured for four refuses, naming the streams and
    the counts, while one configured for two starts; once drained, the four-partition one starts too."""
    old, new = BusConfig(partitions={topic: 2}), BusConfig(partitions={topic: 4})

    async def scenario() -> None:
        admin = admin_client(redis_server)
        seen: list[dict] = []
        two = make_bus(redis_server, "pod-2", config=old, min_idle_ms=200)
        two.subscribe(topic, GROUP, seen.append)
        await two.check_partitions()  # the first start records the group's count
        assert await admin.get(f"eafix:bus:partitions:{GROUP}:{topic}") == "2"
        producer = make_bus(redis_server, "feed", config=old)
        await producer.publish_many(messages(topic, 0, 5))  # 40 entries over .p0 and .p1
        for stream in stream_names(topic, 2):
            await admin.xgroup_create(stream, GROUP, id="0")
        await admin.xreadgroup(GROUP, "pod-dead", {f"{topic}.p0": ">"}, count=3)  # read, never acked

        four = make_bus(redis_server, "pod-4", config=new)
        four.subscribe(topic, GROUP, lambda env: None)
        with pytest.raises(PartitionLayoutError) as refused:
            await four.check_partitions()
        text = str(refused.value)
        for stream in stream_names(topic, 2):
            count = 5 * sum(1 for k in KEYS if f"{topic}.p{partition_of(k, 2)}" == stream)
            assert f"{stream} (2 partition(s)): {count} entries group {GROUP} has not handled" in text, text
        assert "configured for 4 partition(s) (SERVICE_BUS_PARTITIONS)" in text
        assert await admin.get(f"eafix:bus:partitions:{GROUP}:{topic}") == "2"  # unchanged by a refusal

        await two.check_partitions()  # its own count: nothing to refuse
        async with running(two):
            await eventually(lambda: len(seen) == 5 * len(KEYS), "the old partitions drained")
            await eventually(lambda: drained(admin, topic, 2), "no lag, nothing pending")
        await four.check_partitions()  # drained: the new count may start, and is recorded
        assert await admin.get(f"eafix:bus:partitions:{GROUP}:{topic}") == "4"
        for bus in (producer, four):
            await bus.stop()
        await admin.aclose()

    run(scenario())


def test_without_a_record_streams_of_no_configured_layout_are_checked(redis_server: RedisServer, topic: str) -> None:
    """A group that recorded no count (it ran before the record existed) with entries left in the
    unpartitioned stream: a four-partition consumer refuses; the other groups' backlog does not count."""

    async def scenario() -> None:
        admin = admin_client(redis_server)
        await admin.xgroup_create(topic, GROUP, id="0", mkstream=True)
        await admin.xgroup_create(topic, "someone-else", id="$")
        one = make_bus(redis_server, "feed")
        await one.publish_many(messages(topic, 0, 2))
        four = make_bus(redis_server, "pod-4", config=BusConfig(partitions={topic: 4}))
        four.subscribe(topic, GROUP, lambda env: None)
        with pytest.raises(PartitionLayoutError, match=rf"{topic} \(another layout\): 16 entries group {GROUP} "):
            await four.check_partitions()
        await admin.xgroup_setid(topic, GROUP, "$")  # the operator's last resort: skip the backlog
        await four.check_partitions()
        other = make_bus(redis_server, "pod-x", config=BusConfig(partitions={topic: 4}))
        other.subscribe(topic, "someone-else", lambda env: None)
        await admin.xgroup_setid(topic, "someone-else", "0")  # that group's backlog is its own business
        await four.check_partitions()
        for bus in (one, four, other):
            await bus.stop()
        await admin.aclose()

    run(scenario())


def test_changing_the_partition_count_drain_reconfigure_resume_loses_nothing(
        redis_server: RedisServer, topic: str) -> None:
    """docs/operations.md's procedure on the bus: two replicas share two partitions; the feed pauses and
    the group drains; everything restarts with four partitions (the start-up check passes); the feed
    resumes. Every message is handled once, each key in order, and each entry sits in the stream
    crc32 gave its key under the count it was published with."""
    handled: list[tuple[str, str, int]] = []

    def handler_for(name: str):
        def handler(env: dict) -> None:
            handled.append((name, env["data"]["key"], seq_of(env)))
        return handler

    async def phase(partitions: int, first: int, names: tuple[str, ...]) -> None:
        config = BusConfig(partitions={topic: partitions})
        feed = make_bus(redis_server, "feed", config=config)
        replicas = [make_bus(redis_server, name, config=config, colocate=True, lease_ms=1500) for name in names]
        for bus in replicas:
            bus.subscribe(topic, GROUP, handler_for(bus.consumer))
            await bus.check_partitions()  # the start-up check every consuming service runs
        async with running(replicas[0]), running(replicas[1]):
            await eventually(lambda: sum(len(b.owned_streams(topic, GROUP)) for b in replicas) == partitions
                             and all(b.owned_streams(topic, GROUP) for b in replicas), "the partitions divided")
            await feed.publish_many(messages(topic, first, 15))
            await eventually(lambda: len(handled) == (first + 15) * len(KEYS), "the phase's messages")
            admin = admin_client(redis_server)
            await eventually(lambda: drained(admin, topic, partitions), "the group drained")  # 1. drain
            await admin.aclose()
        await feed.stop()  # 2. reconfigure: every process stops, and starts with the new count

    async def scenario() -> None:
        admin = admin_client(redis_server)
        await phase(2, 0, ("pod-a", "pod-b"))
        await phase(4, 15, ("pod-a", "pod-c"))  # 3. resume
        stored = 0
        for stream in stream_names(topic, 4):  # .p0 and .p1 hold both layouts' entries, in turn
            for _, fields in await admin.xrange(stream):
                env = json.loads(fields["envelope"])
                count = 2 if seq_of(env) < 15 else 4
                assert stream == f"{topic}.p{partition_of(env['data']['key'], count)}", (stream, env["data"])
                stored += 1
        assert stored == 30 * len(KEYS)
        await admin.aclose()

    run(scenario())
    assert len(handled) == 30 * len(KEYS)
    for key in KEYS:
        assert [seq for _, k, seq in handled if k == key] == list(range(30)), key
    assert {name for name, _, seq in handled if seq >= 15} == {"pod-a", "pod-c"}


def test_history_and_handled_take_an_equal_share_of_every_partition(redis_server: RedisServer, topic: str) -> None:
    """A restore of the newest N entries (indicator-engine's warm-up, signal-generator's takeover) must
    reach every partition's symbols, not fill up from the first stream."""
    config = BusConfig(partitions={topic: 4})
    assert {partition_of(k, 4) for k in KEYS} == set(range(4))  # every partition has keys

    async def scenario() -> None:
        bus = make_bus(redis_server, "pod-a", config=config)
        seen: list[dict] = []
        bus.subscribe(topic, GROUP, seen.append)
        await bus.publish_many(messages(topic, 0, 10))  # 10 per key
        async with running(bus):
            await eventually(lambda: len(seen) == 10 * len(KEYS), "everything handled")
        newest = await bus.history(topic, 8)
        handled = await bus.handled(topic, GROUP, 8)
        one = await bus.handled(topic, GROUP, 3, partition=partition_of("EURUSD", 4))
        await bus.stop()
        for got in (newest, handled):
            assert {p: sum(1 for e in got if partition_of(e["data"]["key"], 4) == p) for p in range(4)} == {
                p: 2 for p in range(4)}, got
            assert all(seq_of(e) >= 8 for e in got), got  # the newest two of each partition
        assert len(one) == 3 and {partition_of(e["data"]["key"], 4) for e in one} == {partition_of("EURUSD", 4)}

    run(scenario())
