"""A handler that finds PostgreSQL down (a real server, shut down) is retried without counting a
delivery: the message waits for as long as the outage lasts instead of being dead-lettered after
`max_deliveries` (an outage is not a poison message), and is handled once the server is back."""

from __future__ import annotations

import psycopg

from eafix.runtime.bus import BusConfig
from eafix.runtime.service import BACKEND_UNAVAILABLE
from service.redis_bus import admin_client, envelope, eventually, make_bus, run, running, seq_of
from service.servers import RedisServer, RestartablePostgres

TOPIC, GROUP = "eafix.test.backend_down", "storing"
LIMIT = BusConfig(max_deliveries=2)  # a message that failed twice for its own sake is dead-lettered


def test_a_handler_that_finds_postgres_down_is_retried_until_it_is_back_and_not_dead_lettered(
        redis_server: RedisServer) -> None:
    pg = RestartablePostgres()
    attempts: list[str] = []
    stored: list[int] = []

    async def handler(env: dict) -> None:  # stores the message, as a stage does before it is acked
        try:
            conn = await psycopg.AsyncConnection.connect(pg.url, user=pg.user, password=pg.password,
                                                         connect_timeout=2)
        except psycopg.OperationalError:
            attempts.append("down")
            raise
        async with conn:
            await conn.execute("SELECT 1")
        attempts.append("up")
        stored.append(seq_of(env))

    async def scenario() -> None:
        admin, bus = await _fresh_bus(redis_server, handler)
        async with running(bus):
            await bus.publish(TOPIC, envelope(1))
            await eventually(lambda: attempts.count("down") >= 5, "5 attempts while PostgreSQL is down")
            [row] = await admin.xpending_range(TOPIC, GROUP, "-", "+", 10)
            assert row["times_delivered"] == 1  # the outage counted no delivery
            assert await admin.xlen(f"{TOPIC}.dlq") == 0
            pg.start()
            await eventually(lambda: stored == [1], "the message handled once PostgreSQL is back")
            await eventually(lambda: _acked(admin), "the message acknowledged")
        assert await admin.xlen(f"{TOPIC}.dlq") == 0
        await admin.aclose()

    try:
        pg.create()
        pg.stop()  # a fast shutdown: connections are refused until it starts again
        run(scenario())
    finally:
        pg.remove()
    assert attempts[-1] == "up" and attempts.count("up") == 1


async def _fresh_bus(redis_server: RedisServer, handler) -> tuple:
    """An admin client and a bus with `handler` on a topic emptied of earlier runs' entries."""
    admin = admin_client(redis_server)
    await admin.delete(TOPIC, f"{TOPIC}.dlq")
    bus = make_bus(redis_server, "pod-0", config=LIMIT, unavailable=BACKEND_UNAVAILABLE)
    bus.subscribe(TOPIC, GROUP, handler)
    return admin, bus


def test_a_handler_error_of_the_message_itself_is_still_dead_lettered(redis_server: RedisServer) -> None:
    async def handler(env: dict) -> None:
        raise ValueError(f"message {seq_of(env)} is broken")

    async def scenario() -> None:
        admin, bus = await _fresh_bus(redis_server, handler)
        async with running(bus):
            await bus.publish(TOPIC, envelope(7))
            await eventually(lambda: _dead_lettered(admin), "the broken message dead-lettered")
        [(_, fields)] = await admin.xrange(f"{TOPIC}.dlq")
        assert fields["deliveries"] == "2" and "message 7 is broken" in fields["error"], fields
        await admin.aclose()

    run(scenario())


async def _acked(admin) -> bool:
    groups = await admin.xinfo_groups(TOPIC)
    return groups[0]["pending"] == 0 and groups[0]["lag"] == 0


async def _dead_lettered(admin) -> bool:
    return await admin.xlen(f"{TOPIC}.dlq") == 1

