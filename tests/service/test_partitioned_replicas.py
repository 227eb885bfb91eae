"""Replicas of signal-generator (`eafix serve` processes, real Redis) dividing four symbol partitions:
two share them; one is stopped, made to hold entries it read, and SIGKILLed, and the survivor takes
over every partition and the dead one's pending entries; a third joins and is given partitions while
bars and vectors arrive (a partition's two topics move together). At
the end every signal and suppression the in-process reference makes of the same bars and vectors
was published exactly once, and each symbol's outputs are in time order.

Ownership is read from the lease keys and from each replica's `eafix_bus_owned_partitions` gauge.
Waits are guarded against hangs; nothing asserts speed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from eafix.contracts import Bar, IndicatorVector
from eafix.runtime.bus import partition_of, stream_names
from service import servers
from service.partition_workload import SYMBOLS, bars_and_vectors, publish, reference
from service.pipeline_env import FIRES_EVERY_BAR
from service.pipeline_procs import STARTUP, Pipeline, Service, at_rest, ready, wait_for
from service.servers import free_port

pytestmark = pytest.mark.slow  # minutes of real processes: scheduled first (tests/conftest.py)

P = 4
GROUP = "signal-generator"
TOPICS = (Bar.TOPIC, IndicatorVector.TOPIC)
BARS = 45  # per symbol, in three phases of 15


def replica_env(p: Pipeline, n: int, port: int) -> dict[str, str]:
    strategies = p.workdir / "strategies.yaml"
    strategies.write_text(FIRES_EVERY_BAR)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_") and k != "EAFIX_SERVICE"}
    env.update({
        "SERVICE_REDIS_URL": p.redis_url, "SERVICE_SECRETS_DIR": str(p.workdir / "no-secrets"),
        "SERVICE_LOG_LEVEL": "INFO", "SERVICE_PORT": str(port), "SERVICE_CONSUMER_NAME": f"sg-{n}",
        "SERVICE_STRATEGIES_FILE": str(strategies), "SERVICE_BUS_PARTITIONS": str(P),
        # a lost replica's leases lapse after 2 s; its entries are then the new owner's at once
        "SERVICE_BUS": json.dumps({"block_ms": 50, "lease_ms": 2000, "min_idle_ms": 60_000}),
    })
    if p.redis_password:
        env["SERVICE_REDIS_PASSWORD"] = p.redis_password
    return env


def start(p: Pipeline, n: int) -> Service:
    port = free_port()
    svc = p.services[f"sg-{n}"] = Service("signal-generator", port, replica_env(p, n, port), p.workdir / f"sg-{n}")
    svc.start()
    wait_for(lambda: ready(svc), f"sg-{n} to be ready", p, timeout=STARTUP)
    return svc


def lease_holders(p: Pipeline) -> dict[int, str | None]:
    r = p.redis()
    try:
        return {n: r.get(f"eafix:bus:lease:{GROUP}:partition:{n}/{P}") for n in range(P)}
    finally:
        r.close()


def owned(svc: Service) -> dict[str, float]:
    """The replica's eafix_bus_owned_partitions per topic of the group."""
    text = httpx.get(f"{svc.url}/metrics", timeout=10).text
    return {s.labels["topic"]: s.value for family in text_string_to_metric_families(text)
            if family.name == "eafix_bus_owned_partitions" for s in family.samples if s.labels["group"] == GROUP}


def split_as(p: Pipeline, expected: dict[str, int]) -> dict[int, str] | None:
    """The partition owners if the leases and the gauges both show exactly `expected` (consumer ->
    number of partitions, each topic of the group), else None."""
    holders = lease_holders(p)
    counts = {name: sum(1 for h in holders.values() if h == name) for name in expected}
    if None in holders.values() or counts != expected:
        return None
    for name, count in expected.items():
        if owned(p.services[name]) != dict.fromkeys(TOPICS, float(count)):
            return None
    return holders  # type: ignore[return-value]


def settle(p: Pipeline) -> None:
    wait_for(lambda: at_rest(p), "every group to read and acknowledge everything", p)


def take_as(p: Pipeline, consumer: str, partitions: list[int]) -> int:
    """Read, as `consumer`, what waits in its partitions' streams: pending and held by it, as if it had
    read them and died before acknowledging; returns how many it holds."""
    r = p.redis()
    try:
        streams = [stream_names(t, P)[n] for t in TOPICS for n in partitions]
        r.xreadgroup(GROUP, consumer, dict.fromkeys(streams, ">"), count=10_000)
        return sum(c["pending"] for s in streams for c in r.xinfo_consumers(s, GROUP) if c["name"] == consumer)
    finally:
        r.close()


def outputs(p: Pipeline, topic: str) -> list[dict]:
    r = p.redis()
    try:
        return [json.loads(fields["envelope"])["data"] for _, fields in r.xrange(topic)]
    finally:
        r.close()


@pytest.fixture
def pipeline(tmp_path):
    with servers.redis_server() as rds:
        p = Pipeline(rds.url, rds.password, "", "", "", tmp_path)
        try:
            yield p
        finally:
            p.stop()


def test_replicas_divide_the_partitions_take_over_a_dead_one_and_admit_a_new_one(pipeline):
    p = pipeline
    assert {partition_of(s, P) for s in SYMBOLS} == set(range(P))  # every partition has symbols
    start_at = (datetime.now(UTC) - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    items = bars_and_vectors(SYMBOLS, BARS, start_at, seed=20261204)
    phases = [items[k * len(items) // 3:(k + 1) * len(items) // 3] for k in range(3)]
    expected_signals, expected_suppressed = reference(items, FIRES_EVERY_BAR)
    assert expected_signals  # the strategy fires: there is something to lose

    start(p, 0)
    start(p, 1)
    wait_for(lambda: split_as(p, {"sg-0": 2, "sg-1": 2}), "two replicas to share the four partitions", p)
    asyncio.run(publish(p.redis_url, p.redis_password, phases[0], P))
    settle(p)

    # sg-1 stops (as a hung pod would), holds what it read of its partitions, and is killed
    dead = [n for n, holder in lease_holders(p).items() if holder == "sg-1"]
    victim = p.services["sg-1"]
    assert victim.proc is not None
    victim.proc.send_signal(signal.SIGSTOP)
    asyncio.run(publish(p.redis_url, p.redis_password, phases[1], P))
    held = take_as(p, "sg-1", dead)
    victim.kill(signal.SIGKILL)
    del p.services["sg-1"]  # exited on purpose: wait_for must not take it for a crash
    assert held > 0
    wait_for(lambda: split_as(p, {"sg-0": 4}), "the survivor to own every partition", p)
    settle(p)  # its pending entries reclaimed and handled
    r = p.redis()
    try:
        assert all(c["name"] != "sg-1" or c["pending"] == 0
                   for t in TOPICS for s in stream_names(t, P) for c in r.xinfo_consumers(s, GROUP))
    finally:
        r.close()

    start(p, 2)  # a third joins and the last bars arrive while the survivor hands it half
    asyncio.run(publish(p.redis_url, p.redis_password, phases[2], P, chunk=16,
                        before_chunk=lambda: asyncio.sleep(0.1)))  # over ~1.5 s: across the hand-over
    wait_for(lambda: split_as(p, {"sg-0": 2, "sg-2": 2}), "the new replica to be given partitions", p)
    settle(p)

    signals = outputs(p, "eafix.signals.generated")
    suppressed = outputs(p, "eafix.signals.suppressed")
    ids = [s["signal_id"] for s in signals]
    assert len(ids) == len(set(ids))  # none twice
    assert set(ids) == set(expected_signals)  # none lost, none extra
    for s in signals:
        ref = expected_signals[s["signal_id"]]
        assert (s["direction"], s["entry_price"], s["sl_pips"]) == (ref.direction.value, str(ref.entry_price),
                                                                   str(ref.sl_pips))
    assert suppressed == [] and expected_suppressed == []  # the every-bar strategy suppresses nothing
    by_symbol: dict[str, list[str]] = defaultdict(list)
    for s in signals:  # the signal stream is one stream: its order is the order they were published
        by_symbol[s["symbol"]].append(s["ts"])
    assert set(by_symbol) == set(SYMBOLS)
    for symbol, times in by_symbol.items():
        assert times == sorted(times), symbol
