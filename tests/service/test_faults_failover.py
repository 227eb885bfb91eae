"""Fault suite (test_faults.py): the primary of Redis or of PostgreSQL dies mid-chain under the
workload and the services go on with the promoted replica.

Redis: one primary, two replicas and three sentinels on loopback (sentinel_cluster.py); the services
find the primary through the sentinels (SERVICE_REDIS_SENTINELS) and publish the order flow with
WAIT for one replica (SERVICE_BUS_REPLICATION, as the prod chart does). PostgreSQL: a primary and a
synchronous streaming replica made with pg_basebackup (pg_replication.py); the services connect with
the multi-host URL and target_session_attrs=read-write, and the replica is promoted as an operator
would (docs/runbooks/postgres-down.md) a few seconds after the primary died.

The primary is SIGKILLed right after a bar's first tick is posted, at a bar whose tick fills an order
(from the replay), so a signal's chain is in flight. Asserted: the ledger is the replay's (nothing
lost, nothing done twice: every signal, decision, order, fill and trade, one order and one opening
fill per approval) and no message was dead-lettered; for PostgreSQL also that every row committed
before the kill (orders, fills, transitions, the OMS's audit log, and risk decisions) is on the
promoted replica, and that each order's transition log is complete (versions 1..n).

What Redis replication promises is asserted, not more: ticks are published without WAIT, so a tick
the feed was told is stored may be lost with the primary (docs/decisions.md; a feed re-sends), and
the test kills only once both replicas hold the posted tick. Everything the services derive from it
after that (bars, indicators, signals: not replicated synchronously either; decisions, orders,
fills, trades: WAIT 1) is on the primary only for a moment, and their acknowledgements too: what
the promoted replica lacks is redelivered or derived again, and must come out exactly once."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import timedelta

import pytest
import redis

from service import servers
from service.fault_ledger import reference, workload
from service.fault_pipeline import add_figures, running
from service.pg_replication import replicated_postgres
from service.pipeline_procs import WAIT, Pipeline, settled
from service.sentinel_cluster import MASTER, SentinelCluster, sentinel_cluster
from service.test_faults import (
    BARS,
    SEED,
    assert_same_ledger,
    dead_letters,
    feed,
    ledger_of,
    recovered,
    start_of_history,
)

pytestmark = pytest.mark.slow  # minutes of real processes: scheduled first (tests/conftest.py)

PROMOTE_AFTER = 3.0  # seconds between the PostgreSQL primary's death and the operator's promotion


def fill_bar(expected, start) -> int:
    """The first bar from the middle on whose first tick fills an order (the replay's trades)."""
    return next(int((t - start).total_seconds() // 60) for t in sorted(expected.fill_times)
                if t - start >= timedelta(minutes=BARS // 2))


def replicated(cluster, primary: int, stream: str) -> str:
    """Wait until both replicas hold the primary's newest entry of `stream`; returns its id."""
    with redis.Redis(port=primary, password=cluster.password, decode_responses=True) as r:
        [(newest, _)] = r.xrevrange(stream, count=1)
    deadline = time.monotonic() + WAIT
    for port in cluster.data_ports:
        if port == primary:
            continue
        with redis.Redis(port=port, password=cluster.password, decode_responses=True) as r:
            while not r.xrange(stream, min=newest, max=newest):
                assert time.monotonic() < deadline, f"replica {port} never received {stream} {newest}"
                time.sleep(0.001)
    return newest


def promoted(cluster, old: int) -> int:
    """The new primary's port once every sentinel names it and the remaining replica follows it (the
    sentinels close the clients of a reconfigured node: the test connects after that)."""
    deadline = time.monotonic() + WAIT

    def settled_on() -> int | None:
        named = set()
        for port in cluster.sentinel_ports:
            with redis.Redis(port=port, password=cluster.password, socket_timeout=2) as s:
                named.add(int(s.sentinel_get_master_addr_by_name(MASTER)[1]))
        if len(named) != 1 or old in named:
            return None
        [new] = named
        with redis.Redis(port=new, password=cluster.password, socket_timeout=2) as r:
            info = r.info("replication")
        return new if info["role"] == "master" and info.get("connected_slaves") == 1 else None

    while True:
        try:
            new = settled_on()
        except (redis.RedisError, OSError):
            new = None
        if new is not None:
            return new
        assert time.monotonic() < deadline, "the sentinels promoted no replica"
        time.sleep(0.1)


@dataclass
class SentinelPipeline(Pipeline):
    """Reads the bus on the primary the sentinels name (the URL's host is not used by the services)."""

    cluster: SentinelCluster | None = None

    def redis(self) -> redis.Redis:
        assert self.cluster is not None
        return redis.Redis(port=self.cluster.primary_port(), password=self.redis_password, decode_responses=True)


@pytest.fixture
def on_sentinels(tmp_path):
    # sentinels judge a primary down after 5 s, as in prod (1 s flaps on a loaded 2-core machine)
    with sentinel_cluster(down_after_ms=5000) as cluster, servers.postgres_server() as pg:
        p = SentinelPipeline(f"redis://127.0.0.1:{cluster.primary_port()}/0", cluster.password, pg.url, pg.user,
                             pg.password, tmp_path, cluster=cluster)
        ha = {"SERVICE_REDIS_SENTINELS": cluster.sentinels, "SERVICE_REDIS_SENTINEL_MASTER": MASTER,
              "SERVICE_BUS_REPLICATION": json.dumps({"replicas": 1, "wait_ms": 100})}
        with running(p, lambda name, port: ha):
            yield p, cluster


def test_redis_primary_killed_mid_chain_the_services_follow_the_sentinels_and_keep_the_replays_ledger(on_sentinels):
    pipeline, cluster = on_sentinels
    start = start_of_history()
    bars = workload(SEED, BARS, start)
    expected = reference(bars)
    at = fill_bar(expected, start)
    seen: dict[str, object] = {}

    def failover(k: int) -> None:
        if k != at:
            return
        old = cluster.primary_port()
        seen["tick_replicated"] = replicated(cluster, old, "eafix.price.tick")
        seen["in_flight"] = not settled(pipeline)  # recorded, not asserted: how far the chain got is timing
        cluster.kill(old)  # the tick was just posted: its chain is in flight
        killed = time.monotonic()
        promoted(cluster, old)  # from then on the test reads the bus on the new primary (SentinelPipeline)
        seen["promoted"] = round(time.monotonic() - killed, 2)
        seen["recovery"] = recovered(pipeline, "redis-failover", killed, promoted_after=seen["promoted"], bar=k,
                                     chain_in_flight_at_kill=seen["in_flight"])

    feed(pipeline, bars, after_first_tick=failover)
    assert "recovery" in seen, "the primary was killed"
    differences = ledger_of(pipeline).differences(expected)
    if differences:
        pytest.fail(f"kill at bar {at}, {seen}:\n" + "\n".join(differences))
    assert_same_ledger(pipeline, expected)
    assert dead_letters(pipeline) == 0  # no message given up for the failover
    add_figures("redis-failover", lost=0, duplicated=0)


AUDITED = {  # the rows a commit makes, by their keys
    "orders": "SELECT client_order_id FROM orders.orders",
    "fills": "SELECT fill_id FROM orders.fills",
    "transitions": "SELECT client_order_id || ':' || version FROM orders.transitions",
    "decisions": "SELECT signal_id FROM risk.decisions",
    "trades": "SELECT trade_id FROM trades.trades",
}


def committed(p: Pipeline) -> dict[str, set[str]]:
    return {name: {r for (r,) in p.sql(query)} for name, query in AUDITED.items()}


@pytest.fixture
def on_replicated_postgres(tmp_path):
    with servers.redis_server() as rds, replicated_postgres(synchronous=True) as pg:
        p = Pipeline(rds.url, rds.password, pg.url, pg.user, pg.password, tmp_path)
        with running(p):
            yield p, pg


def test_postgres_primary_killed_mid_chain_the_promoted_replica_has_every_commit_and_the_replays_ledger(
        on_replicated_postgres):
    pipeline, pg = on_replicated_postgres
    start = start_of_history()
    bars = workload(SEED, BARS, start)
    expected = reference(bars)
    at = fill_bar(expected, start)
    before: dict[str, set[str]] = {}

    def failover(k: int) -> None:
        if k != at:
            return
        before.update(committed(pipeline))  # committed, hence on the synchronous replica
        pg.kill_primary()  # the tick was just posted: its chain is in flight
        killed = time.monotonic()
        time.sleep(PROMOTE_AFTER)  # the services wait for a server that accepts writes
        pg.promote()
        promoted = time.monotonic()
        recovered(pipeline, "postgres-failover", killed, promoted_after=round(promoted - killed, 2), bar=k)

    feed(pipeline, bars, after_first_tick=failover)
    assert before, "the primary was killed"
    with pg.admin(pg.ports[1]) as new_primary:
        assert new_primary.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
    after = committed(pipeline)
    lost = {name: sorted(keys - after[name])[:5] for name, keys in before.items() if keys - after[name]}
    assert lost == {}, f"rows committed before the kill and missing after the failover: {lost}"
    assert_same_ledger(pipeline, expected)
    assert dead_letters(pipeline) == 0  # no message given up for the failover
    gaps = pipeline.sql("SELECT o.client_order_id FROM orders.orders o JOIN orders.transitions t USING "
                        "(client_order_id) GROUP BY o.client_order_id, o.version "
                        "HAVING count(*) <> o.version OR max(t.version) <> o.version")
    assert gaps == [], f"orders whose transition log has a gap: {gaps[:5]}"
    add_figures("postgres-failover", lost=0, duplicated=0,
                committed_before_kill={name: len(keys) for name, keys in before.items()})
