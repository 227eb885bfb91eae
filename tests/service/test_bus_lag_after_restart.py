"""A consumer group's lag after Redis restarts from its AOF (eafix-infra's settings): Redis answers
nil for it until the group has caught up, and nil is not 0. The bus's lag gauge and gui-gateway's
stream readings count the entries the group has not been given instead (the fault suite's settle
check read nil as 0 and fed the next ticks while risk-manager was still behind: issue 13)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from eafix.gui_gateway.bus_status import read_streams
from eafix.runtime.bus.redis_streams import group_lag
from service.redis_bus import admin_client, envelope, eventually, make_bus, run, running, seq_of
from service.servers import AofRedis, RedisServer

TOPIC, GROUP = "eafix.test.lag", "lagging"


def test_the_lag_of_a_group_after_a_redis_restart_is_counted_not_read_as_zero(tmp_path: Path) -> None:
    server = AofRedis(tmp_path)
    server.start()
    rds = RedisServer(server.url, server.password)
    handled: list[int] = []
    registry = CollectorRegistry()

    async def handler(env: dict) -> None:
        handled.append(seq_of(env))

    async def before_restart() -> None:
        publisher = make_bus(rds, "publisher")
        await publisher.publish_many([(TOPIC, envelope(i)) for i in range(3)])
        await publisher.stop()
        bus = make_bus(rds, "pod-0")
        bus.subscribe(TOPIC, GROUP, handler)
        async with running(bus):
            await eventually(lambda: len(handled) == 3, "the first 3 handled")
            admin = admin_client(rds)
            await eventually(lambda: _acked(admin), "the first 3 acknowledged")
            await admin.aclose()

    async def after_restart() -> None:
        publisher = make_bus(rds, "publisher")
        await publisher.publish_many([(TOPIC, envelope(i)) for i in range(3, 7)])  # 4 the group has not had
        await publisher.stop()
        admin = admin_client(rds)
        [info] = await admin.xinfo_groups(TOPIC)
        assert info["lag"] is None and info["pending"] == 0, info  # what Redis says after loading the AOF
        assert await group_lag(admin, TOPIC, info) == 4
        assert await group_lag(admin, TOPIC, info, limit=3) == 3  # counted up to the limit
        assert (await read_streams(admin))[TOPIC].lag == 4  # gui-gateway's status
        bus = make_bus(rds, "pod-0", registry)
        bus.subscribe(TOPIC, GROUP, handler)
        await bus.refresh_metrics()  # sampled before the consumer runs: nothing of the 4 delivered yet
        assert registry.get_sample_value("eafix_bus_lag", {"topic": TOPIC, "group": GROUP}) == 4
        async with running(bus):
            await eventually(lambda: len(handled) == 7, "the 4 new ones handled")
            await eventually(lambda: _acked(admin), "the 4 acknowledged")
        [info] = await admin.xinfo_groups(TOPIC)
        assert info["lag"] == 0 and await group_lag(admin, TOPIC, info) == 0  # caught up: Redis knows again
        await bus.refresh_metrics()
        assert registry.get_sample_value("eafix_bus_lag", {"topic": TOPIC, "group": GROUP}) == 0
        await admin.aclose()

    try:
        run(before_restart())
        server.stop()  # SIGTERM: the AOF is written out
        server.start()
        run(after_restart())
    finally:
        server.stop()
    assert handled == list(range(7))  # nothing lost or repeated across the restart


async def _acked(admin) -> bool:
    groups = await admin.xinfo_groups(TOPIC)
    return bool(groups) and groups[0]["pending"] == 0 and groups[0]["lag"] == 0


