"""The Redis Streams bus against a real redis-server (the session's throwaway server).

Every test uses its own topic. Waits poll with generous timeouts that only guard against hangs;
no test asserts how fast anything happens.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from redis.exceptions import ConnectionError as RedisConnectionError

from eafix.runtime.bus import BusConfig, NotReplicated, partition_of, stream_names
from service.redis_bus import admin_client, envelope, eventually, make_bus, run, running, seq_of
from service.servers import RedisServer

GROUP = "svc"


@pytest.fixture
def topic() -> str:
    return f"eafix.test.{uuid.uuid4().hex[:12]}"


async def pending_ids(admin: aioredis.Redis, stream: str) -> list[str]:
    return [row["message_id"] for row in await admin.xpending_range(stream, GROUP, "-", "+", 1000)]


async def no_pending(admin: aioredis.Redis, stream: str) -> bool:
    return await pending_ids(admin, stream) == []


def metric(registry: CollectorRegistry, name: str, topic: str) -> float:
    return registry.get_sample_value(name, {"topic": topic, "group": GROUP}) or 0.0


def test_round_trip(redis_server: RedisServer, topic: str) -> None:
    registry = CollectorRegistry()
    seen: list[dict] = []
    sent = [envelope(i) for i in range(3)]

    async def scenario() -> None:
        admin = admin_client(redis_server)
        bus = make_bus(redis_server, "pod-1", registry)
        bus.subscribe(topic, GROUP, seen.append)  # a plain function works as well as a coroutine
        async with running(bus):
            ids = [await bus.publish(topic, sent[0])]
            ids += await bus.publish_many([(topic, e) for e in sent[1:]])
            await eventually(lambda: len(seen) == 3, "3 messages")
            await eventually(lambda: no_pending(admin, topic), "acks")
            # One JSON field per entry, the envelope as published.
            entries = await admin.xrange(topic)
            assert [entry_id for entry_id, _ in entries] == ids
            assert [json.loads(fields["envelope"]) for _, fields in entries] == sent
            assert all(set(fields) == {"envelope"} for _, fields in entries)
        await admin.aclose()

    run(scenario())
    assert seen == sent
    assert registry.get_sample_value("eafix_bus_published_total", {"topic": topic}) == 3
    assert metric(registry, "eafix_bus_handled_total", topic) == 3
    assert metric(registry, "eafix_bus_handler_failures_total", topic) == 0


def test_a_fresh_ordered_consumer_reads_once_its_first_heartbeat_leases_the_stream(
        redis_server: RedisServer, topic: str) -> None:
    # Standing by (no lease yet) used to be a fixed sleep of min(block_ms, lease_ms / 3): a new replica's
    # first read came that late. With both at 5 minutes the message arrives only if the heartbeat that
    # leased the stream wakes the consumer (the 60 s wait only guards against a hang).
    seen: list[dict] = []

    async def scenario() -> None:
        bus = make_bus(redis_server, "pod-1", block_ms=300_000, lease_ms=900_000)
        bus.subscribe(topic, GROUP, seen.append)
        await bus.publish(topic, envelope(1))
        task = asyncio.create_task(bus.run())
        try:
            await eventually(lambda: len(seen) == 1, "the message, read as soon as the lease is held")
        finally:  # its next XREADGROUP blocks for block_ms: cancelled rather than waited for
            await bus.stop(timeout=0.5)
            await task

    run(scenario())
    assert [seq_of(e) for e in seen] == [1]


def test_ack_only_after_the_handler_succeeds_and_failures_are_redelivered_in_place(
        redis_server: RedisServer, topic: str) -> None:
    registry = CollectorRegistry()
    calls: list[tuple[int, list[int]]] = []  # (seq, delivery counts Redis shows while the handler runs)

    async def scenario() -> list:
        admin = admin_client(redis_server)

        async def handler(env: dict) -> None:
            rows = await admin.xpending_range(topic, GROUP, "-", "+", 10)
            calls.append((seq_of(env), [row["times_delivered"] for row in rows]))
            if seq_of(env) == 0 and len(calls) < 3:
                raise RuntimeError("the handler failed")  # its own error: counted (an outage is not)

        bus = make_bus(redis_server, "pod-1", registry)
        bus.subscribe(topic, GROUP, handler)
        async with running(bus):
            await bus.publish_many([(topic, envelope(0)), (topic, envelope(1))])
            await eventually(lambda: len(calls) == 4, "4 handler calls")
            await eventually(lambda: no_pending(admin, topic), "acks")
            letters = await bus.dead_letters(topic)
        await admin.aclose()
        return letters

    assert run(scenario()) == []
    # Both entries were read in one batch. Seq 0 stays unacknowledged while it fails, each retry is a
    # counted delivery, and seq 1 waits until seq 0 succeeded (the batch is acked after its handlers).
    assert calls == [(0, [1, 1]), (0, [2, 1]), (0, [3, 1]), (1, [3, 1])]
    assert metric(registry, "eafix_bus_handler_failures_total", topic) == 2
    assert metric(registry, "eafix_bus_handled_total", topic) == 2


def test_delivery_cap_moves_the_message_to_the_dlq_and_acks_it(redis_server: RedisServer, topic: str) -> None:
    registry = CollectorRegistry()
    calls: list[int] = []
    poison, fine = envelope(0), envelope(1)

    def handler(env: dict) -> None:
        calls.append(seq_of(env))
        if seq_of(env) == 0:
            raise ValueError("price must be positive")

    async def scenario() -> None:
        admin = admin_client(redis_server)
        bus = make_bus(redis_server, "pod-1", registry)
        bus.subscribe(topic, GROUP, handler)
        async with running(bus):
            ids = await bus.publish_many([(topic, poison), (topic, fine)])
            await eventually(lambda: 1 in calls, "the next message")
            await eventually(lambda: no_pending(admin, topic), "acks")
            letters = await bus.dead_letters(topic)
        raw = await admin.xrange(f"{topic}.dlq")
        await admin.aclose()

        assert len(letters) == 1 and len(raw) == 1
        letter = letters[0]
        assert letter.original_id == ids[0]
        assert (letter.topic, letter.group, letter.stream, letter.consumer) == (topic, GROUP, topic, "pod-1")
        assert letter.deliveries == 5
        assert letter.error == "ValueError: price must be positive"
        assert letter.envelope == poison
        fields = raw[0][1]
        assert fields["error"] == "ValueError: price must be positive" and fields["deliveries"] == "5"
        assert fields["original_id"] == ids[0] and fields["topic"] == topic and fields["group"] == GROUP
        assert json.loads(fields["envelope"]) == poison

    run(scenario())
    assert calls == [0, 0, 0, 0, 0, 1]
    assert metric(registry, "eafix_bus_dead_lettered_total", topic) == 1
    assert metric(registry, "eafix_bus_handled_total", topic) == 1


def test_a_handler_failing_because_redis_did_is_retried_without_spending_its_deliveries(
        redis_server: RedisServer, topic: str) -> None:
    """A publish no replica acknowledged (a failover in progress) or a lost connection is the bus's
    failure, not the message's: 8 of them (more than the 5 deliveries) and the message is still handled,
    not dead-lettered; a failure of the message itself after that still counts from where it was."""
    calls: list[int] = []
    counters: list[int] = []
    failures = [NotReplicated("0 of 1 Redis replicas acknowledged"), RedisConnectionError("closed")] * 4 + [
        ValueError("a real one")]

    async def scenario() -> None:
        admin = admin_client(redis_server)

        async def handler(env: dict) -> None:
            calls.append(seq_of(env))
            [row] = await admin.xpending_range(topic, GROUP, "-", "+", 1)
            counters.append(row["times_delivered"])
            if failures:
                raise failures.pop(0)

        bus = make_bus(redis_server, "pod-1")
        bus.subscribe(topic, GROUP, handler)
        async with running(bus):
            await bus.publish(topic, envelope(0))
            await eventually(lambda: len(calls) == 10, "the handler's tenth call")
            await eventually(lambda: no_pending(admin, topic), "the ack")
            letters = await bus.dead_letters(topic)
        await admin.aclose()
        assert letters == []

    run(scenario())
    assert calls == [0] * 10
    assert counters == [1] * 9 + [2]  # only the ValueError spent a delivery


def test_a_message_that_keeps_killing_its_consumers_is_dead_lettered_unhandled(
        redis_server: RedisServer, topic: str) -> None:
    calls = []

    async def scenario() -> None:
        admin = admin_client(redis_server)
        await admin.xgroup_create(topic, GROUP, id="0", mkstream=True)
        msg_id = await admin.xadd(topic, {"envelope": json.dumps(envelope(0))})
        # Five consumers took it and died before acking (e.g. it makes the process run out of memory).
        await admin.xreadgroup(GROUP, "pod-dead", {topic: ">"})
        await admin.xclaim(topic, GROUP, "pod-dead", 0, [msg_id], retrycount=5)

        bus = make_bus(redis_server, "pod-2", min_idle_ms=50)
        bus.subscribe(topic, GROUP, calls.append, ordered=False)
        async with running(bus):
            await eventually(lambda: no_pending(admin, topic), "the entry to leave the PEL")
            letters = await bus.dead_letters(topic)
        await admin.aclose()
        assert [(x.original_id, x.deliveries) for x in letters] == [(msg_id, 5)]
        assert "not acknowledged after 5 deliveries" in letters[0].error

    run(scenario())
    assert calls == []


def test_undecodable_entries_go_to_the_dlq_at_once(redis_server: RedisServer, topic: str) -> None:
    seen = []

    async def scenario() -> None:
        admin = admin_client(redis_server)
        for fields in ({"envelope": "{not json"}, {"envelope": "[1, 2]"}, {"other": "x"},
                       {"envelope": "[" * 100_000},  # deeper than the JSON parser goes: a RecursionError
                       {"envelope": json.dumps(envelope(7))}):
            await admin.xadd(topic, fields)
        bus = make_bus(redis_server, "pod-1")
        bus.subscribe(topic, GROUP, seen.append)
        async with running(bus):
            await eventually(lambda: len(seen) == 1, "the valid message")
            await eventually(lambda: no_pending(admin, topic), "acks")
            letters = await bus.dead_letters(topic)
        await admin.aclose()
        assert [x.deliveries for x in letters] == [1, 1, 1, 1]
        assert all(x.error.startswith("undecodable entry:") and x.envelope is None for x in letters)

    run(scenario())
    assert [seq_of(e) for e in seen] == [7]


def test_xautoclaim_takes_over_the_entries_of_a_dead_consumer(redis_server: RedisServer, topic: str) -> None:
    registry = CollectorRegistry()
    seen: list[int] = []

    async def scenario() -> None:
        admin = admin_client(redis_server)
        await admin.xgroup_create(topic, GROUP, id="0", mkstream=True)
        publisher = make_bus(redis_server, "publisher")
        await publisher.publish_many([(topic, envelope(i)) for i in range(20)])
        await publisher.stop()
        # Consumer A reads everything and dies without acking.
        taken = await admin.xreadgroup(GROUP, "pod-a", {topic: ">"}, count=100)
        assert len(taken[0][1]) == 20

        bus = make_bus(redis_server, "pod-b", registry, min_idle_ms=200)
        bus.subscribe(topic, GROUP, lambda env: seen.append(seq_of(env)), ordered=False)
        async with running(bus):
            await eventually(lambda: len(seen) == 20, "all 20 reclaimed entries")
            await eventually(lambda: no_pending(admin, topic), "acks")
        consumers = {c["name"]: c["pending"] for c in await admin.xinfo_consumers(topic, GROUP)}
        await admin.aclose()
        assert consumers["pod-a"] == 0

    run(scenario())
    assert seen == list(range(20))
    assert metric(registry, "eafix_bus_reclaimed_total", topic) == 20


def test_an_ordered_consumer_takes_over_a_dead_owner_partition_once_its_lease_expires(
        redis_server: RedisServer, topic: str) -> None:
    seen: list[int] = []

    async def scenario() -> None:
        admin = admin_client(redis_server)
        await admin.xgroup_create(topic, GROUP, id="0", mkstream=True)
        for i in range(10):
            await admin.xadd(topic, {"envelope": json.dumps(envelope(i))})
        await admin.xreadgroup(GROUP, "pod-a", {topic: ">"}, count=4)  # in flight when pod-a died
        await admin.set(f"eafix:bus:lease:{GROUP}:{topic}", "pod-a", px=500)

        # min_idle is an hour: only the lease takeover can hand pod-a's entries to pod-b.
        bus = make_bus(redis_server, "pod-b", min_idle_ms=3_600_000)
        bus.subscribe(topic, GROUP, lambda env: seen.append(seq_of(env)))
        async with running(bus):
            await eventually(lambda: len(seen) == 10, "all 10 entries")
            assert bus.owned_streams(topic, GROUP) == {topic}
        await admin.aclose()

    run(scenario())
    assert seen == list(range(10))  # pod-a's unacked entries first, in order


@pytest.mark.parametrize("ordered", [False, True], ids=["shared", "ordered"])
def test_a_restarted_consumer_handles_its_own_pending_entries_first(
        redis_server: RedisServer, topic: str, ordered: bool) -> None:
    seen: list[tuple[int, int]] = []  # (seq, delivery count while handled)

    async def scenario() -> None:
        admin = admin_client(redis_server)
        await admin.xgroup_create(topic, GROUP, id="0", mkstream=True)
        for i in range(5):
            await admin.xadd(topic, {"envelope": json.dumps(envelope(i))})
        # The previous incarnation of pod-1 read them and was killed (StatefulSet: same name).
        await admin.xreadgroup(GROUP, "pod-1", {topic: ">"}, count=100)
        if ordered:
            await admin.set(f"eafix:bus:lease:{GROUP}:{topic}", "pod-1", px=60_000)

        async def handler(env: dict) -> None:
            rows = await admin.xpending_range(topic, GROUP, "-", "+", 100, consumername="pod-1")
            count = {row["message_id"]: row["times_delivered"] for row in rows}
            seen.append((seq_of(env), max(count.values(), default=0)))

        bus = make_bus(redis_server, "pod-1", min_idle_ms=3_600_000)
        bus.subscribe(topic, GROUP, handler, ordered=ordered)
        async with running(bus):
            await eventually(lambda: len(seen) == 5, "the 5 pending entries")
            await bus.publish_many([(topic, envelope(i)) for i in range(5, 8)])
            await eventually(lambda: len(seen) == 8, "3 new entries")
            await eventually(lambda: no_pending(admin, topic), "acks")
        await admin.aclose()

    run(scenario())
    assert [s for s, _ in seen] == list(range(8))
    assert all(count == 2 for _, count in seen[:5])  # second delivery of the pending ones


@pytest.mark.parametrize("loss", ["group-destroyed", "stream-deleted"])
def test_consumption_continues_after_redis_loses_the_group(redis_server: RedisServer, topic: str, loss: str) -> None:
    registry = CollectorRegistry()
    seen: list[int] = []

    async def scenario() -> None:
        admin = admin_client(redis_server)
        bus = make_bus(redis_server, "pod-1", registry)
        bus.subscribe(topic, GROUP, lambda env: seen.append(seq_of(env)))
        async with running(bus):
            await bus.publish_many([(topic, envelope(i)) for i in range(5)])
            await eventually(lambda: set(seen) == set(range(5)), "first batch")
            if loss == "group-destroyed":
                assert await admin.xgroup_destroy(topic, GROUP)
            else:
                assert await admin.delete(topic) == 1
            await bus.publish_many([(topic, envelope(i)) for i in range(5, 10)])
            await eventually(lambda: set(seen) >= set(range(10)), "second batch")
            groups = await admin.xinfo_groups(topic)
            assert [g["name"] for g in groups] == [GROUP]
        await admin.aclose()

    run(scenario())
    assert metric(registry, "eafix_bus_group_recreated_total", topic) >= 1
    # Re-created at id 0: nothing published meanwhile is skipped (what is still in the stream
    # may be delivered again, which idempotent handlers absorb); the order holds throughout.
    second = [s for s in seen if s >= 5]
    assert second == sorted(second)


def test_streams_are_trimmed_near_their_maxlen(redis_server: RedisServer, topic: str) -> None:
    other = f"{topic}.other"

    async def scenario() -> None:
        admin = admin_client(redis_server)
        bus = make_bus(redis_server, "publisher", config=BusConfig(maxlen={topic: 1000}, default_maxlen=300))
        ids = await bus.publish_many([(topic, envelope(i)) for i in range(10_000)])
        for i in range(1000):
            last = await bus.publish(other, envelope(i))
        length, other_length = await admin.xlen(topic), await admin.xlen(other)
        newest, other_newest = await admin.xrevrange(topic, count=1), await admin.xrevrange(other, count=1)
        await bus.stop()
        await admin.aclose()
        # MAXLEN ~ removes whole radix-tree nodes (100 entries by default), never below the bound.
        assert 1000 <= length < 1000 + 200
        assert 300 <= other_length < 300 + 200
        assert newest[0][0] == ids[-1] and other_newest[0][0] == last  # the newest entries are kept

    run(scenario())


def test_pipelined_publish_many_of_10000_arrives_complete_and_in_order(redis_server: RedisServer, topic: str) -> None:
    seen: list[int] = []

    async def scenario() -> None:
        admin = admin_client(redis_server)
        bus = make_bus(redis_server, "pod-1")
        bus.subscribe(topic, GROUP, lambda env: seen.append(seq_of(env)))
        async with running(bus):
            ids = await bus.publish_many([(topic, envelope(i)) for i in range(10_000)])
            await eventually(lambda: len(seen) >= 10_000, "10,000 messages")
        stored = [entry_id for entry_id, _ in await admin.xrange(topic)]
        await admin.aclose()
        assert stored == ids
        assert len(set(ids)) == 10_000

    run(scenario())
    assert seen == list(range(10_000))


def _keys_covering(partitions: int, count: int) -> list[str]:
    candidates = ["EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCHF", "NZDUSD", "USDCAD", "EURGBP", "EURJPY",
                  "GBPJPY", "EURCHF", "AUDJPY", "CADJPY", "CHFJPY", "EURAUD", "GBPCHF"]
    keys = []
    for p in range(partitions):  # one key per partition first, then fill up
        keys.append(next(k for k in candidates if partition_of(k, partitions) == p and k not in keys))
    keys += [k for k in candidates if k not in keys][:count - len(keys)]
    return keys


def test_per_key_order_holds_across_two_consumers_and_a_rebalance(redis_server: RedisServer, topic: str) -> None:
    partitions, per_phase = 4, 25
    keys = _keys_covering(partitions, 8)
    config = BusConfig(partitions={topic: partitions})
    handled: list[tuple[str, str, int]] = []  # (consumer, key, seq)
    in_flight: set[str] = set()
    overlaps: list[str] = []
    rng = random.Random(42)

    def handler_for(name: str):
        async def handler(env: dict) -> None:
            key = env["data"]["key"]
            if key in in_flight:
                overlaps.append(key)
            in_flight.add(key)
            try:
                await asyncio.sleep(rng.random() * 0.002)  # let the two consumers interleave
                handled.append((name, key, seq_of(env)))
            finally:
                in_flight.discard(key)
        return handler

    def phase(first: int) -> list:
        return [(topic, envelope(n, key=k), k) for n in range(first, first + per_phase) for k in keys]

    owners: dict[str, str] = {}

    async def scenario() -> None:
        admin = admin_client(redis_server)
        # Small read batches: competing consumers would interleave within every key.
        # Leases of 3 s: a loaded CI machine must not let one lapse and move a partition mid-test.
        a, b = (make_bus(redis_server, name, config=config, batch=5, lease_ms=3000) for name in ("pod-a", "pod-b"))
        a.subscribe(topic, GROUP, handler_for("pod-a"))
        b.subscribe(topic, GROUP, handler_for("pod-b"))
        async with running(a):
            await eventually(lambda: len(a.owned_streams(topic, GROUP)) == partitions, "pod-a to own everything")
            await a.publish_many(phase(0))
            async with running(b):  # joins while pod-a is still working through phase 1
                await eventually(lambda: len(a.owned_streams(topic, GROUP)) == 2
                                 and len(b.owned_streams(topic, GROUP)) == 2, "a 2/2 split")
                for bus in (a, b):
                    owners.update(dict.fromkeys(bus.owned_streams(topic, GROUP), bus.consumer))
                await b.publish_many(phase(per_phase))
                await eventually(lambda: len(handled) == 2 * per_phase * len(keys), "every message")
        # The key chose the stream: each key's messages are all in one partition stream.
        for stream in stream_names(topic, partitions):
            for _, fields in await admin.xrange(stream):
                key = json.loads(fields["envelope"])["data"]["key"]
                assert stream == f"{topic}.p{partition_of(key, partitions)}"
        await admin.aclose()

    run(scenario())
    assert overlaps == []
    for key in keys:
        assert [seq for _, k, seq in handled if k == key] == list(range(2 * per_phase)), key
        # After the split each key is handled by the owner of its partition only.
        phase2 = {name for name, k, seq in handled if k == key and seq >= per_phase}
        assert phase2 == {owners[f"{topic}.p{partition_of(key, partitions)}"]}
    assert {name for name, _, seq in handled if seq >= per_phase} == {"pod-a", "pod-b"}


def test_graceful_stop_finishes_the_handler_in_flight_and_releases_the_partition(
        redis_server: RedisServer, topic: str) -> None:
    seen: list[int] = []

    async def scenario() -> None:
        admin = admin_client(redis_server)
        entered, release = asyncio.Event(), asyncio.Event()

        async def slow(env: dict) -> None:
            if seq_of(env) == 0:
                entered.set()
                await release.wait()
            seen.append(seq_of(env))

        bus = make_bus(redis_server, "pod-1")
        bus.subscribe(topic, GROUP, slow)
        task = asyncio.create_task(bus.run())
        ids = await bus.publish_many([(topic, envelope(0)), (topic, envelope(1))])
        await entered.wait()
        stopping = asyncio.create_task(bus.stop())
        await asyncio.sleep(0.2)
        assert not stopping.done() and not task.done()  # waits for the handler, however long it takes
        release.set()
        await stopping
        await task
        # The in-flight message was acked; the one not started yet stays pending for the next owner.
        assert seen == [0]
        assert await pending_ids(admin, topic) == [ids[1]]
        assert await admin.exists(f"eafix:bus:lease:{GROUP}:{topic}") == 0
        assert await admin.zrange(f"eafix:bus:members:{GROUP}:{topic}", 0, -1) == []

        again = make_bus(redis_server, "pod-2")
        again.subscribe(topic, GROUP, slow)
        async with running(again):
            await eventually(lambda: seen == [0, 1], "the left-over message")
            await eventually(lambda: no_pending(admin, topic), "acks")
        await admin.aclose()

    run(scenario())


def test_pending_and_lag_gauges(redis_server: RedisServer, topic: str) -> None:
    registry = CollectorRegistry()
    seen: list[int] = []

    async def scenario() -> None:
        entered, release = asyncio.Event(), asyncio.Event()

        async def handler(env: dict) -> None:
            entered.set()
            await release.wait()
            seen.append(seq_of(env))

        publisher = make_bus(redis_server, "publisher")
        await publisher.publish_many([(topic, envelope(i)) for i in range(5)])
        await publisher.stop()
        bus = make_bus(redis_server, "pod-1", registry, batch=1)
        bus.subscribe(topic, GROUP, handler)
        async with running(bus):
            await entered.wait()
            # Sampled periodically even while the handler is stuck (when lag matters most).
            await eventually(lambda: metric(registry, "eafix_bus_lag", topic) == 4, "the lag gauge")
            await bus.refresh_metrics()
            assert metric(registry, "eafix_bus_pending", topic) == 1
            assert metric(registry, "eafix_bus_lag", topic) == 4
            release.set()
            await eventually(lambda: len(seen) == 5, "all 5 handled")
            await eventually(lambda: metric(registry, "eafix_bus_pending", topic) == 0, "pending gauge at 0")
            await bus.refresh_metrics()
            assert metric(registry, "eafix_bus_lag", topic) == 0

    run(scenario())


class Proxy:
    """A TCP relay to Redis that can drop every connection and refuse new ones (a network outage)."""

    def __init__(self, host: str, port: int) -> None:
        self.target, self.up, self.writers = (host, port), True, set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.transport.abort()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, upstream_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    def cut(self) -> None:
        self.up = False
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    async def close(self) -> None:
        self.cut()
        self.server.close()


@pytest.mark.parametrize("ordered", [False, True], ids=["shared", "ordered"])
def test_the_consumer_reconnects_with_backoff_after_an_outage(redis_server: RedisServer, topic: str,
                                                              ordered: bool) -> None:
    registry = CollectorRegistry()
    seen: list[int] = []

    async def scenario() -> None:
        target = urlsplit(redis_server.url)
        proxy = Proxy(target.hostname, target.port)
        port = await proxy.start()
        publisher = make_bus(redis_server, "publisher")  # straight to Redis
        bus = make_bus(redis_server, "pod-1", registry, url=f"redis://127.0.0.1:{port}/0")
        bus.subscribe(topic, GROUP, lambda env: seen.append(seq_of(env)), ordered=ordered)
        admin = admin_client(redis_server)
        async with running(bus):
            await publisher.publish(topic, envelope(0))
            await eventually(lambda: seen == [0], "the first message")
            await eventually(lambda: no_pending(admin, topic), "its ack")
            proxy.cut()
            await publisher.publish(topic, envelope(1))
            await eventually(lambda: metric(registry, "eafix_bus_connection_errors_total", topic) >= 2,
                             "repeated connection errors during the outage")
            assert seen == [0]
            proxy.up = True
            await eventually(lambda: seen == [0, 1], "the message published during the outage")
        await publisher.stop()
        await admin.aclose()
        await proxy.close()

    run(scenario())


def test_handled_gives_what_the_group_acknowledged_newest_first_not_what_is_pending_or_unread(
        redis_server: RedisServer, topic: str) -> None:
    async def scenario() -> tuple[list[int], list[int], list[int]]:
        admin = admin_client(redis_server)
        await admin.xgroup_create(topic, GROUP, id="0", mkstream=True)
        for i in range(8):
            await admin.xadd(topic, {"envelope": json.dumps(envelope(i))})
        await admin.xadd(topic, {"envelope": "{not json"})  # 8th entry: dead-lettered when consumed
        await admin.xadd(topic, {"envelope": json.dumps(envelope(8))})
        await admin.xadd(topic, {"envelope": json.dumps(envelope(9))})
        read = await admin.xreadgroup(GROUP, "pod-1", {topic: ">"}, count=10)  # 0-7, the bad one, 8
        ids = [entry_id for entry_id, _ in read[0][1]]
        await admin.xack(topic, GROUP, *(ids[:5] + ids[6:]))  # 5 stays pending; 9 was never read
        bus = make_bus(redis_server, "pod-2")
        everything = [seq_of(e) for e in await bus.handled(topic, GROUP, 100)]
        newest_three = [seq_of(e) for e in await bus.handled(topic, GROUP, 3)]
        other_group = [seq_of(e) for e in await bus.handled(topic, "nobody", 100)]
        await admin.aclose()
        return everything, newest_three, other_group

    everything, newest_three, other_group = run(scenario())
    assert everything == [8, 7, 6, 4, 3, 2, 1, 0]
    assert newest_three == [8, 7, 6]
    assert other_group == []
