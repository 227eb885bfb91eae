"""Unit tests of the in-memory bus (no I/O) and of the bus helpers shared with the Redis bus."""

from __future__ import annotations

import asyncio
import random
import uuid
import zlib

import pytest
from prometheus_client import CollectorRegistry

from eafix.runtime.bus import Backoff, Bus, BusConfig, BusMetrics, InMemoryBus, RedisStreamsBus, partition_of
from eafix.runtime.logging import correlation_id


def envelope(seq: int, **data: object) -> dict:
    return {
        "event_id": str(uuid.UUID(int=seq + 1)), "event_type": "test.event", "schema_version": "1.0",
        "correlation_id": f"corr-{seq}", "causation_id": None, "ts_event": "2024-01-02T03:04:05Z",
        "ts_init": "2024-01-02T03:04:05Z", "producer": "test", "data": {"seq": seq, **data},
    }


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))  # a guard against hangs, not a speed limit


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_both_buses_implement_the_port() -> None:
    assert issubclass(InMemoryBus, Bus) and issubclass(RedisStreamsBus, Bus)


def test_round_trip_with_sync_and_async_handlers() -> None:
    sync_seen, async_seen = [], []

    async def on_async(env: dict) -> None:
        await asyncio.sleep(0)
        async_seen.append(env)

    async def scenario() -> list[str]:
        bus = InMemoryBus()
        bus.subscribe("eafix.t.a", "svc-sync", sync_seen.append)
        bus.subscribe("eafix.t.a", "svc-async", on_async)
        ids = [await bus.publish("eafix.t.a", envelope(0))]
        ids += await bus.publish_many([("eafix.t.a", envelope(1)), ("eafix.t.a", envelope(2), "EURUSD")])
        assert sync_seen == [] and bus.queued == 3  # nothing is delivered before drain()
        assert await bus.drain() == 3
        return ids

    ids = run(scenario())
    assert sync_seen == async_seen == [envelope(0), envelope(1), envelope(2)]
    assert ids == ["1-0", "2-0", "3-0"]


def test_the_handler_gets_the_published_object_without_copies() -> None:
    seen = []
    original = envelope(0)

    async def scenario() -> None:
        bus = InMemoryBus()
        bus.subscribe("eafix.t.a", "svc", seen.append)
        await bus.publish("eafix.t.a", original)
        await bus.drain()

    run(scenario())
    assert seen[0] is original


def test_fifo_across_topics_including_messages_published_by_handlers() -> None:
    log: list[tuple[str, int]] = []

    async def scenario() -> None:
        bus = InMemoryBus()

        async def on_tick(env: dict) -> None:
            log.append(("tick", env["data"]["seq"]))
            await bus.publish("eafix.t.bar", envelope(100 + env["data"]["seq"]))

        def on_bar(env: dict) -> None:
            log.append(("bar", env["data"]["seq"]))

        bus.subscribe("eafix.t.tick", "indicators", on_tick)
        bus.subscribe("eafix.t.bar", "signals", on_bar)
        await bus.publish_many([("eafix.t.tick", envelope(0)), ("eafix.t.tick", envelope(1))])
        await bus.drain()
        assert bus.queued == 0

    run(scenario())
    # tick 1 was queued before bar 100 (published while tick 0 was handled): strict FIFO.
    assert log == [("tick", 0), ("tick", 1), ("bar", 100), ("bar", 101)]


def test_replays_are_identical() -> None:
    async def replay() -> list[tuple[str, str, int]]:
        trace = []
        bus = InMemoryBus()

        async def relay(env: dict) -> None:
            trace.append(("a", await bus.publish("eafix.t.b", envelope(env["data"]["seq"] * 10)),
                          env["data"]["seq"]))

        bus.subscribe("eafix.t.a", "x", relay)
        bus.subscribe("eafix.t.b", "y", lambda env: trace.append(("b", "", env["data"]["seq"])))
        for seq in range(5):
            await bus.publish("eafix.t.a", envelope(seq))
        await bus.run_until_idle()
        return trace

    first, second = run(replay()), run(replay())
    assert first == second
    assert [t for t in first if t[0] == "b"] == [("b", "", s * 10) for s in range(5)]


def test_every_group_gets_every_message_and_a_group_subscribes_once() -> None:
    bus = InMemoryBus()
    bus.subscribe("eafix.t.a", "svc", lambda env: None)
    with pytest.raises(ValueError, match="already subscribes"):
        bus.subscribe("eafix.t.a", "svc", lambda env: None)
    bus.subscribe("eafix.t.b", "svc", lambda env: None)  # same group, other topic: fine


def test_messages_without_subscribers_are_dropped_when_delivered() -> None:
    async def scenario() -> int:
        bus = InMemoryBus()
        await bus.publish("eafix.t.nobody", envelope(0))
        return await bus.drain()

    assert run(scenario()) == 1


def test_subscribing_before_drain_receives_the_backlog() -> None:
    seen = []

    async def scenario() -> None:
        bus = InMemoryBus()
        await bus.publish("eafix.t.a", envelope(0))
        bus.subscribe("eafix.t.a", "late", seen.append)  # like a group created at id 0
        await bus.drain()

    run(scenario())
    assert [e["data"]["seq"] for e in seen] == [0]


def test_a_failing_handler_is_retried_in_place_before_later_messages() -> None:
    calls: list[int] = []

    def flaky(env: dict) -> None:
        calls.append(env["data"]["seq"])
        if env["data"]["seq"] == 0 and calls.count(0) < 3:
            raise ConnectionError("db unavailable")

    registry = CollectorRegistry()

    async def scenario() -> list:
        bus = InMemoryBus(metrics=BusMetrics(registry))
        bus.subscribe("eafix.t.a", "svc", flaky)
        await bus.publish_many([("eafix.t.a", envelope(0)), ("eafix.t.a", envelope(1))])
        await bus.drain()
        return await bus.dead_letters("eafix.t.a")

    assert run(scenario()) == []
    assert calls == [0, 0, 0, 1]
    assert value(registry, "eafix_bus_handler_failures_total", topic="eafix.t.a", group="svc") == 2
    assert value(registry, "eafix_bus_handled_total", topic="eafix.t.a", group="svc") == 2
    assert value(registry, "eafix_bus_published_total", topic="eafix.t.a") == 2


def test_delivery_cap_moves_the_message_to_the_dead_letters() -> None:
    calls: list[int] = []

    def poison(env: dict) -> None:
        calls.append(env["data"]["seq"])
        if env["data"]["seq"] == 0:
            raise ValueError("price must be positive")

    registry = CollectorRegistry()

    async def scenario() -> tuple[list, list[str]]:
        bus = InMemoryBus(metrics=BusMetrics(registry))
        bus.subscribe("eafix.t.a", "risk", poison)
        bus.subscribe("eafix.t.a", "reporter", lambda env: None)  # other groups are unaffected
        ids = await bus.publish_many([("eafix.t.a", envelope(0)), ("eafix.t.a", envelope(1))])
        await bus.drain()
        return await bus.dead_letters("eafix.t.a"), ids

    letters, ids = run(scenario())
    assert calls == [0] * 5 + [1]
    assert len(letters) == 1
    letter = letters[0]
    assert (letter.topic, letter.group, letter.original_id, letter.deliveries) == ("eafix.t.a", "risk", ids[0], 5)
    assert letter.error == "ValueError: price must be positive"
    assert letter.envelope == envelope(0)
    assert value(registry, "eafix_bus_dead_lettered_total", topic="eafix.t.a", group="risk") == 1
    assert value(registry, "eafix_bus_handled_total", topic="eafix.t.a", group="reporter") == 2


def test_delivery_cap_is_configurable() -> None:
    calls = []

    def always_fails(env: dict) -> None:
        calls.append(1)
        raise RuntimeError("no")

    async def scenario() -> list:
        bus = InMemoryBus(BusConfig(max_deliveries=2))
        bus.subscribe("eafix.t.a", "svc", always_fails)
        await bus.publish("eafix.t.a", envelope(0))
        await bus.drain()
        return await bus.dead_letters("eafix.t.a")

    letters = run(scenario())
    assert len(calls) == 2 and letters[0].deliveries == 2
    with pytest.raises(ValueError):
        BusConfig(max_deliveries=0)


class Abort(BaseException):
    """Like CancelledError or SystemExit: not a handler failure, must not be retried or swallowed."""


def test_base_exceptions_are_not_swallowed() -> None:
    def interrupt(env: dict) -> None:
        raise Abort

    async def scenario() -> None:
        bus = InMemoryBus()
        bus.subscribe("eafix.t.a", "svc", interrupt)
        await bus.publish("eafix.t.a", envelope(0))
        await bus.drain()

    with pytest.raises(Abort):
        run(scenario())


def test_a_handler_calling_drain_does_not_nest() -> None:
    order = []

    async def scenario() -> None:
        bus = InMemoryBus()

        async def first(env: dict) -> None:
            order.append(("a", env["data"]["seq"]))
            await bus.publish("eafix.t.b", envelope(9))
            assert await bus.drain() == 0  # the outer drain delivers it, after what is queued

        bus.subscribe("eafix.t.a", "x", first)
        bus.subscribe("eafix.t.b", "y", lambda env: order.append(("b", env["data"]["seq"])))
        await bus.publish_many([("eafix.t.a", envelope(0)), ("eafix.t.a", envelope(1))])
        await bus.drain()

    run(scenario())
    assert order == [("a", 0), ("a", 1), ("b", 9), ("b", 9)]


def test_handlers_run_with_the_correlation_id_of_their_message() -> None:
    seen = []

    async def scenario() -> None:
        bus = InMemoryBus()
        bus.subscribe("eafix.t.a", "svc", lambda env: seen.append(correlation_id.get()))
        await bus.publish_many([("eafix.t.a", envelope(0)), ("eafix.t.a", envelope(1))])
        await bus.drain()

    run(scenario())
    assert seen == ["corr-0", "corr-1"]
    assert correlation_id.get() is None


def test_run_delivers_as_messages_arrive_until_stop() -> None:
    seen = []

    async def scenario() -> None:
        bus = InMemoryBus()
        delivered = asyncio.Event()

        def handler(env: dict) -> None:
            seen.append(env["data"]["seq"])
            if len(seen) == 3:
                delivered.set()

        bus.subscribe("eafix.t.a", "svc", handler)
        task = asyncio.create_task(bus.run())
        await bus.publish("eafix.t.a", envelope(0))
        await asyncio.sleep(0)
        await bus.publish_many([("eafix.t.a", envelope(1)), ("eafix.t.a", envelope(2))])
        await delivered.wait()
        await bus.stop()
        await task
        await bus.publish("eafix.t.a", envelope(3))  # after stop: queued, not delivered
        assert bus.queued == 1

    run(scenario())
    assert seen == [0, 1, 2]


def test_stop_from_a_handler_finishes_that_delivery() -> None:
    seen = []

    async def scenario() -> None:
        bus = InMemoryBus()

        async def handler(env: dict) -> None:
            await bus.stop()
            seen.append(env["data"]["seq"])

        bus.subscribe("eafix.t.a", "svc", handler)
        await bus.publish_many([("eafix.t.a", envelope(0)), ("eafix.t.a", envelope(1))])
        await bus.run()  # returns: the handler stopped it
        assert bus.queued == 1

    run(scenario())
    assert seen == [0]


def test_backoff_is_exponential_jittered_and_capped() -> None:
    backoff = Backoff(base=0.1, cap=2.0, rng=random.Random(7))
    delays = [backoff.next() for _ in range(8)]
    ceilings = [min(2.0, 0.1 * 2**n) for n in range(8)]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == len(delays)  # jittered, not a fixed schedule
    backoff.reset()
    assert 0.05 <= backoff.next() <= 0.1
    # Two replicas that failed together do not retry in lock-step.
    a, b = Backoff(rng=random.Random(1)), Backoff(rng=random.Random(2))
    assert [a.next() for _ in range(3)] != [b.next() for _ in range(3)]


def test_partition_of_is_stable_and_in_range() -> None:
    # crc32 of the key, so every process agrees (str hash() would be salted per process).
    assert partition_of("EURUSD", 1) == 0
    parts = {partition_of(f"SYM{i}", 4) for i in range(100)}
    assert parts == {0, 1, 2, 3}
    assert partition_of("EURUSD", 8) == partition_of("EURUSD", 8)
    assert partition_of("EURUSD", 8) == zlib.crc32(b"EURUSD") % 8


def test_config_retention_defaults() -> None:
    config = BusConfig(default_maxlen=500, maxlen={"eafix.price.tick": 1000}, dlq_maxlen=50)
    assert config.maxlen_for("eafix.price.tick") == 1000
    assert config.maxlen_for("eafix.orders.validated") == 500
    assert config.maxlen_for("eafix.orders.validated.dlq") == 50
    assert config.partitions_for("eafix.price.tick") == 1
    with pytest.raises(ValueError):
        BusConfig(partitions={"eafix.price.tick": 0})
