"""The two bus hooks the services need, on a real redis-server: `on_acquired` (a stateful stage reloads
its state before it handles anything of a partition it just took over) and `colocate` (one replica
reads a partition of every ordered topic of its group, so a stage that joins topics is never split).

Waits poll with generous timeouts that only guard against hangs; nothing asserts speed.
"""

from __future__ import annotations

import asyncio
import json
import uuid

from service.redis_bus import admin_client, envelope, eventually, make_bus, run, running, seq_of
from service.servers import RedisServer

GROUP = "stage"


def new_topic() -> str:
    return f"eafix.test.{uuid.uuid4().hex[:12]}"


def test_on_acquired_runs_before_the_partition_is_read_and_again_on_takeover(redis_server: RedisServer) -> None:
    topic = new_topic()
    log: list[tuple[str, str, int | str]] = []  # (consumer, what, seq or stream)

    def recorder(consumer: str):
        async def on_acquired(topic_: str, group: str, stream: str) -> None:
            assert (topic_, group) == (topic, GROUP)
            await asyncio.sleep(0.05)  # a reload takes time; nothing may be handled meanwhile
            log.append((consumer, "acquired", stream))

        def handler(env: dict) -> None:
            log.append((consumer, "handled", seq_of(env)))

        return on_acquired, handler

    async def scenario() -> None:
        admin = admin_client(redis_server)
        for i in range(3):  # a backlog before anyone consumes
            await admin.xadd(topic, {"envelope": json.dumps(envelope(i))})
        hook_a, handle_a = recorder("a")
        hook_b, handle_b = recorder("b")
        a = make_bus(redis_server, "pod-a", on_acquired=hook_a)
        b = make_bus(redis_server, "pod-b", on_acquired=hook_b)
        a.subscribe(topic, GROUP, handle_a)
        b.subscribe(topic, GROUP, handle_b)
        task_a = asyncio.create_task(a.run())
        await eventually(lambda: sum(1 for c, w, _ in log if w == "handled") == 3, "pod-a handles the backlog")
        async with running(b):  # stands by while pod-a holds the lease
            await b.publish(topic, envelope(3))
            await eventually(lambda: ("a", "handled", 3) in log, "pod-a handles seq 3")
            await a.stop()
            await task_a
            await b.publish(topic, envelope(4))
            await eventually(lambda: ("b", "handled", 4) in log, "pod-b takes over and handles seq 4")
        await admin.aclose()

    run(scenario())
    assert log[0] == ("a", "acquired", topic)
    assert [entry for entry in log if entry[0] == "a"][1:] == [("a", "handled", i) for i in range(4)]
    assert [entry for entry in log if entry[0] == "b"] == [("b", "acquired", topic), ("b", "handled", 4)]


def test_a_failing_on_acquired_is_retried_and_nothing_is_handled_before_it_succeeds(
        redis_server: RedisServer) -> None:
    topic = new_topic()
    calls: list[str] = []

    def on_acquired(topic_: str, group: str, stream: str) -> None:  # sync hooks are fine too
        calls.append("hook")
        if calls.count("hook") < 3:
            raise RuntimeError("storage not reachable yet")

    async def scenario() -> None:
        bus = make_bus(redis_server, "pod-a", on_acquired=on_acquired)
        bus.subscribe(topic, GROUP, lambda env: calls.append(f"handled {seq_of(env)}"))
        await bus.publish(topic, envelope(0))
        async with running(bus):
            await eventually(lambda: "handled 0" in calls, "the message")

    run(scenario())
    assert calls == ["hook", "hook", "hook", "handled 0"]


def test_colocated_groups_read_all_their_topics_on_one_replica_and_move_them_together(
        redis_server: RedisServer) -> None:
    topics = [new_topic(), new_topic(), new_topic()]
    seen: dict[str, list[str]] = {"pod-a": [], "pod-b": []}

    async def scenario() -> None:
        buses = {name: make_bus(redis_server, name, colocate=True) for name in seen}
        for name, bus in buses.items():
            for topic in topics:
                bus.subscribe(topic, GROUP, lambda env, name=name, topic=topic: seen[name].append(topic))
        tasks = {name: asyncio.create_task(bus.run()) for name, bus in buses.items()}  # racing for the leases

        def owners() -> dict[str, list[str]]:
            return {name: [t for t in topics if bus.owned_streams(t, GROUP)] for name, bus in buses.items()}

        await eventually(lambda: sum(map(len, owners().values())) == len(topics), "every topic owned")
        first = owners()
        holder = next(name for name, owned in first.items() if owned)
        other = "pod-b" if holder == "pod-a" else "pod-a"
        assert first == {holder: topics, other: []}
        await buses[holder].publish_many([(t, envelope(0)) for t in topics])
        await eventually(lambda: len(seen[holder]) == len(topics), "the holder reads every topic")

        await buses[holder].stop()
        await tasks.pop(holder)
        await eventually(lambda: owners()[other] == topics, "the standby takes all of them over")
        await buses[other].publish_many([(t, envelope(1)) for t in topics])
        await eventually(lambda: len(seen[other]) == len(topics), "the new holder reads every topic")
        await buses[other].stop()
        await tasks.pop(other)
        return holder, other

    holder, other = run(scenario())
    assert sorted(seen[holder]) == sorted(topics) and sorted(seen[other]) == sorted(topics)


def test_colocated_leases_are_one_key_per_partition_index(redis_server: RedisServer) -> None:
    topics = [new_topic(), new_topic()]

    async def scenario() -> list[str]:
        admin = admin_client(redis_server)
        bus = make_bus(redis_server, "pod-a", colocate=True, lease_ms=60_000)
        for topic in topics:
            bus.subscribe(topic, "joined", lambda env: None)
        async with running(bus):
            await eventually(lambda: all(bus.owned_streams(t, "joined") for t in topics), "both topics owned")
            keys = [k async for k in admin.scan_iter(match="eafix:bus:lease:joined:*")]
            holders = [await admin.get(k) for k in keys]
        await admin.aclose()
        return keys, holders

    keys, holders = run(scenario())
    assert keys == ["eafix:bus:lease:joined:partition:0/1"]
    assert holders == ["pod-a"]
