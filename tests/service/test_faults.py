"""The fault suite: a seeded workload of ticks through the five pipeline services as processes on a
real Redis and PostgreSQL, a fault injected mid-run, and at the end the ledger (signals, risk
decisions, orders, fills, trades) compared with the in-process replay of the same ticks: equal,
nothing lost, nothing duplicated (fault_ledger.py says what is compared and why the workload is
shaped as it is).

The feed is closed-loop so that the live order of events is the replay's: each bar's first tick
(the one that closes the previous bar and may bring a signal) is posted alone and the bus left to
settle (every group has read and acknowledged every entry, `pipeline_procs.at_rest`), then the
bar's other ticks, settle again. indicator-engine's timer closes no bar of this history (SERVICE_BAR_CLOSE_GRACE_SECONDS
beyond its age), so only the next tick closes a bar, as in the replay. Waits are guarded against
hangs; nothing asserts speed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from eafix.services import get as service_spec
from service import pipeline_env, servers
from service.fault_ledger import Ledger, reference, risk_env, services_ledger, workload
from service.pipeline_env import PIPELINE, WEEK
from service.pipeline_procs import STARTUP, WAIT, Pipeline, Service, at_rest, behind, ready, wait_for
from service.servers import free_port

pytestmark = pytest.mark.slow  # minutes of real processes: scheduled first (tests/conftest.py)

BARS = int(os.environ.get("EAFIX_FAULT_BARS", "1000"))  # 10,000 ticks (fewer only to debug a fault)
SEED = 20261204


def start_of_history() -> datetime:
    """Midnight two days ago: the 1,000 M1 bars stay within that day (risk's daily figures)."""
    return (datetime.now(UTC) - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)


def service_env(p: Pipeline, name: str, port: int) -> dict[str, str]:
    # a replica that dies holding entries: its lease lapses and its entries are reclaimed after 2 s
    extra = {"SERVICE_BUS": json.dumps({"block_ms": 50, "lease_ms": 2000, "min_idle_ms": 2000})}
    if name == "indicator-engine":
        extra["SERVICE_BAR_CLOSE_GRACE_SECONDS"] = str(WEEK)
    base = pipeline_env.base_env(redis_url=p.redis_url, redis_password=p.redis_password, pg_url=p.pg_url,
                                 pg_user=p.pg_user, pg_password=p.pg_password, workdir=p.workdir)
    env = pipeline_env.service_env(base, name, port, p.workdir, risk=risk_env(), extra=extra)
    if not service_spec(name).uses_postgres:  # as the chart: no PostgreSQL settings (nor readiness check)
        for key in ("SERVICE_POSTGRES_URL", "SERVICE_POSTGRES_USER", "SERVICE_POSTGRES_PASSWORD"):
            env.pop(key)
    return env


@contextmanager
def redis_for(aof: bool, workdir: Path) -> Iterator[Any]:
    """A throwaway Redis, or with `aof` one run as eafix-infra runs it and restartable (servers.AofRedis)."""
    if not aof:
        with servers.redis_server() as rds:
            yield rds
        return
    workdir.mkdir()
    server = servers.AofRedis(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def postgres_for(restartable: bool) -> Iterator[Any]:
    """A throwaway PostgreSQL, or with `restartable` one that can be shut down and started again
    (servers.RestartablePostgres)."""
    if not restartable:
        with servers.postgres_server() as pg:
            yield pg
        return
    server = servers.RestartablePostgres()
    try:
        server.create()
        yield server
    finally:
        server.remove()


@pytest.fixture
def pipeline(request, tmp_path) -> Iterator[Pipeline]:
    """The five services; with `standbys` (indirect) a standby replica `<name>-1` of those named, with
    `aof` Redis as eafix-infra runs it (`pipeline.redis_server`: stop() and start() again), with
    `restartable_postgres` a PostgreSQL that can be stopped and started (`pipeline.postgres_server`)."""
    options = getattr(request, "param", {})
    with (redis_for(options.get("aof", False), tmp_path / "redis") as rds,
          postgres_for(options.get("restartable_postgres", False)) as pg):
        p = Pipeline(rds.url, rds.password, pg.url, pg.user, pg.password, tmp_path)
        p.redis_server = rds  # type: ignore[attr-defined]
        p.postgres_server = pg  # type: ignore[attr-defined]
        migrate = subprocess.run([sys.executable, "-m", "eafix", "migrate"], capture_output=True, text=True,
                                 timeout=WAIT, env=service_env(p, "reporter", free_port()))
        assert migrate.returncode == 0, migrate.stderr
        try:
            for name in PIPELINE:
                port = free_port()
                p.services[name] = Service(name, port, service_env(p, name, port), tmp_path / name)
                p.services[name].start()
            for name in options.get("standbys", ()):
                port = free_port()
                env = {**service_env(p, name, port), "SERVICE_CONSUMER_NAME": f"{name}-1"}
                p.services[f"{name}-1"] = Service(name, port, env, tmp_path / f"{name}-1")
                p.services[f"{name}-1"].start()
            for svc in p.services.values():
                wait_for(lambda svc=svc: ready(svc), f"{svc.name} to be ready", p, timeout=STARTUP)
            yield p
        finally:
            p.stop()


def settle(p: Pipeline) -> None:
    deadline = time.monotonic() + WAIT
    while not at_rest(p):
        if time.monotonic() > deadline:
            wait_for(lambda: at_rest(p), "the bus to settle", p, timeout=0)  # raises with the services' logs
        time.sleep(0.005)


def feed(p: Pipeline, bars: list[list[dict]], before_bar: Callable[[int], None] = lambda k: None,
         after_first_tick: Callable[[int], None] = lambda k: None) -> None:
    with httpx.Client(timeout=WAIT) as client:
        for k, ticks in enumerate(bars):
            before_bar(k)
            for part in (ticks[:1], ticks[1:]):  # the URL read each time: a restarted service has a new port
                response = client.post(f"{p.services['data-ingestor'].url}/api/v1/ticks", json=part)
                assert response.status_code == 200 and response.json()["accepted"] == len(part), response.text
                if len(part) == 1:
                    after_first_tick(k)
                settle(p)


FIGURES = Path(__file__).resolve().parents[2] / "out" / "faults"


def recovered(p: Pipeline, fault: str, since: float, **facts: Any) -> float:
    """Wait until the bus is at rest again; write how long that took after `since` (monotonic) to
    out/faults/<fault>.json (measured for the record, never asserted)."""
    deadline = time.monotonic() + STARTUP  # not wait_for: the victim of a SIGKILL has exited on purpose
    while not at_rest(p):
        assert time.monotonic() < deadline, f"no recovery from {fault}\n{p.diagnostics()}"
        time.sleep(0.01)
    seconds = round(time.monotonic() - since, 2)
    FIGURES.mkdir(parents=True, exist_ok=True)
    (FIGURES / f"{fault}.json").write_text(json.dumps({"recovery_seconds": seconds, **facts}, indent=1) + "\n")
    return seconds


def ledger_of(p: Pipeline) -> Ledger:
    r = p.redis()
    try:  # the signals published (not what a test wrote there itself, such as a poison message)
        signals = sum(1 for _, fields in r.xrange("eafix.signals.generated") if signal_published(fields))
    finally:
        r.close()
    return services_ledger(p.sql, signals)


def signal_published(fields: dict) -> bool:
    try:
        envelope = json.loads(fields["envelope"])
    except ValueError:
        return False
    return envelope.get("producer") == "signal-generator" and "signal_id" in envelope.get("data", {})


def assert_same_ledger(p: Pipeline, expected: Ledger) -> None:
    got = ledger_of(p)
    assert got.differences(expected) == []
    orders = p.sql("SELECT count(*), count(DISTINCT idempotency_key) FROM orders.orders")[0]
    assert orders == (expected.approved, expected.approved)  # one order per approval, none twice
    fills = p.sql("SELECT kind, count(*) FROM orders.fills GROUP BY kind")
    opens = dict(fills).get("OPEN", 0)
    assert opens == expected.approved and dict(fills).get("CLOSE", 0) == len(expected.trades)


def test_without_a_fault_the_services_keep_the_replays_ledger(pipeline):
    bars = workload(SEED, BARS, start_of_history())
    expected = reference(bars)
    assert min(expected.approved, expected.rejected, len(expected.trades)) > BARS // 20  # a workload that trades
    feed(pipeline, bars)
    assert_same_ledger(pipeline, expected)


def consumed_streams(p: Pipeline) -> dict[str, list[str]]:
    """Every stream the services consume, with its consumer groups."""
    r = p.redis()
    try:
        streams = {s: [g["name"] for g in r.xinfo_groups(s)] for s in r.scan_iter(match="eafix.*", _type="stream")
                   if not s.endswith(".dlq")}
    finally:
        r.close()
    return {s: groups for s, groups in sorted(streams.items()) if groups}


def test_a_poison_message_on_every_input_stream_is_dead_lettered_and_the_flow_goes_on(pipeline):
    bars = workload(SEED, BARS, start_of_history())
    expected = reference(bars)
    poisoned: dict[str, list[str]] = {}

    def poison(k: int) -> None:
        if k != BARS // 3:
            return
        poisoned.update(consumed_streams(pipeline))
        r = pipeline.redis()
        try:
            for stream in poisoned:
                [(_, fields)] = r.xrevrange(stream, count=1)
                envelope = json.loads(fields["envelope"])  # a real envelope of the topic, its data broken
                envelope.update(event_id=str(uuid.uuid4()), data={"poison": True})
                r.xadd(stream, {"envelope": json.dumps(envelope)})
                r.xadd(stream, {"envelope": "{not json"})
        finally:
            r.close()

    feed(pipeline, bars, before_bar=poison)
    assert_same_ledger(pipeline, expected)  # the poison changed nothing and held nothing back
    assert {"eafix.price.tick", "eafix.indicators.computed", "eafix.signals.generated", "eafix.orders.validated",
            "eafix.trades.closed"} <= set(poisoned)
    r = pipeline.redis()
    try:
        for stream, groups in poisoned.items():
            letters = [fields for _, fields in r.xrange(f"{stream}.dlq")]
            by_group = {g: [f for f in letters if f["group"] == g] for g in groups}
            for group, mine in by_group.items():
                assert len(mine) == 2, (stream, group, letters)  # each group dead-letters both, once
                broken, undecodable = sorted(mine, key=lambda f: f["envelope"].startswith("{not"))
                assert broken["deliveries"] == "5" and "validation error" in broken["error"], broken
                assert undecodable["error"].startswith("undecodable entry"), undecodable
    finally:
        r.close()


VICTIMS = ("indicator-engine", "signal-generator", "risk-manager", "execution-engine")
MAIN_INPUT = {"indicator-engine": "eafix.price.tick", "signal-generator": "eafix.indicators.computed",
              "risk-manager": "eafix.signals.generated", "execution-engine": "eafix.orders.validated"}


def consuming_replica(p: Pipeline, name: str) -> str:
    """The service key (`<name>` or `<name>-1`) of the replica holding the group's lease (one per
    stream, or one for partition 0 of every ordered topic when the group colocates them)."""
    r = p.redis()
    try:
        holder = (r.get(f"eafix:bus:lease:{name}:{MAIN_INPUT[name]}")
                  or r.get(f"eafix:bus:lease:{name}:partition:0/1"))
    finally:
        r.close()
    assert holder in (f"{name}-0", f"{name}-1"), holder
    return name if holder == f"{name}-0" else holder


def take_as(p: Pipeline, group: str, consumer: str) -> int:
    """Read, as `consumer` of `group`, everything still waiting for the group, so that it is pending and
    held by that consumer exactly as if it had read it and died before acknowledging; returns all the
    consumer holds (a read it had blocked in when it was stopped may have taken some already)."""
    r = p.redis()
    try:
        held = 0
        for stream in r.scan_iter(match="eafix.*", _type="stream"):
            if any(g["name"] == group for g in r.xinfo_groups(stream)):
                r.xreadgroup(group, consumer, {stream: ">"}, count=10_000)
                held += sum(c["pending"] for c in r.xinfo_consumers(stream, group) if c["name"] == consumer)
        return held
    finally:
        r.close()


@pytest.mark.parametrize("pipeline", [{"standbys": VICTIMS}], indirect=True)
def test_sigkill_of_a_replica_holding_entries_another_replica_reclaims_them(pipeline):
    """For each victim in turn, at a bar of its own: its consuming replica is stopped (SIGSTOP) before
    the bar's first tick, the chain runs up to it (every other group at rest), the entries the chain
    brought it are taken into its pending list (as its own read would), and it is SIGKILLed holding
    them. The standby takes the lease over once it lapses and reclaims them (the feed waits for that);
    then the killed one comes back as the new standby."""
    start = start_of_history()
    bars = workload(SEED, BARS, start)
    expected = reference(bars)
    when = {BARS * (i + 1) // (len(VICTIMS) + 1): name for i, name in enumerate(VICTIMS)}
    # execution-engine consumes order intents only: its turn comes at a bar whose first tick fills one
    fills = sorted(int((t - start).total_seconds() // 60) for t in expected.fill_times)
    del when[max(when)]
    when[next(b for b in fills if b > max(when) + 1)] = "execution-engine"
    assert sorted(when.values()) == sorted(VICTIMS)
    held: dict[str, int] = {}

    victims: dict[int, str] = {}  # bar -> the service key of the replica stopped at it

    def freeze(k: int) -> None:
        if k - 1 in victims:  # the one killed at the previous bar comes back, as the standby now
            victim = pipeline.services[victims[k - 1]]
            victim.start()
            wait_for(lambda: ready(victim), f"{victim.name} to be ready again", pipeline, timeout=STARTUP)
        if k in when:
            victims[k] = consuming_replica(pipeline, when[k])
            proc = pipeline.services[victims[k]].proc
            assert proc is not None
            proc.send_signal(signal.SIGSTOP)

    def kill(k: int) -> None:
        if k in when:
            name, key = when[k], victims[k]
            consumer = pipeline.services[key].env["SERVICE_CONSUMER_NAME"]
            wait_for(lambda: at_rest(pipeline, but=name), f"the chain to reach {name}", pipeline)
            held[name] = take_as(pipeline, name, consumer)
            pipeline.services[key].kill(signal.SIGKILL)
            recovered(pipeline, f"sigkill-{name}", time.monotonic(), held=held[name], bar=k)

    feed(pipeline, bars, before_bar=freeze, after_first_tick=kill)
    assert set(held) == set(VICTIMS) and all(held.values()), held  # each died holding entries
    assert_same_ledger(pipeline, expected)


def test_sigterm_of_every_service_mid_chain_finishes_in_flight_work_and_resumes(pipeline):
    """All five get SIGTERM at once while a signal's chain is in flight (grace: they finish the message in
    hand, acknowledge it and exit; uvicorn re-raises the SIGTERM once shut down, so the exit status is
    -SIGTERM, not a kill), then start again; nothing is lost or done twice."""
    bars = workload(SEED, BARS, start_of_history())
    expected = reference(bars)
    codes: list[int | None] = []

    def stop_all(k: int) -> None:
        if k == BARS // 2:
            since = time.monotonic()
            services = list(pipeline.services.values())
            for svc in services:
                assert svc.proc is not None
                svc.proc.send_signal(signal.SIGTERM)
            for svc in services:
                assert svc.proc is not None
                codes.append(svc.proc.wait(timeout=WAIT))
            for svc in services:
                svc.start()
            for svc in services:
                wait_for(lambda svc=svc: ready(svc), f"{svc.name} to be ready again", pipeline, timeout=STARTUP)
            recovered(pipeline, "sigterm-all", since, bar=k)

    feed(pipeline, bars, after_first_tick=stop_all)
    assert codes == [-signal.SIGTERM] * len(PIPELINE)  # each stopped by itself within the guard
    assert_same_ledger(pipeline, expected)


@pytest.mark.parametrize("pipeline", [{"aof": True}], indirect=True)
def test_a_redis_restart_with_aof_mid_stream_loses_and_doubles_nothing(pipeline):
    """Redis stops (SIGTERM: the AOF is written out) while a signal's chain is in flight and comes back
    on its port and directory 3 s later; the services reconnect and go on from their groups' positions.
    So that the chain is surely in flight, risk-manager is paused (SIGSTOP) before the bar's first
    tick, Redis is stopped once the chain has reached it, and it resumes while Redis is down."""
    bars = workload(SEED, BARS, start_of_history())
    expected = reference(bars)
    restarted = []
    risk = pipeline.services["risk-manager"]

    def pause(k: int) -> None:
        if k == BARS // 2:
            assert risk.proc is not None
            risk.proc.send_signal(signal.SIGSTOP)

    def restart(k: int) -> None:
        if k == BARS // 2:
            assert risk.proc is not None
            wait_for(lambda: at_rest(pipeline, but="risk-manager"), "the chain to reach risk-manager", pipeline)
            pipeline.redis_server.stop()
            risk.proc.send_signal(signal.SIGCONT)
            time.sleep(3)  # the services meanwhile retry with backoff
            pipeline.redis_server.start()
            restarted.append(k)
            back = time.monotonic()
            recovered(pipeline, "redis-restart", back, down_seconds=3, bar=k,
                      unacknowledged_when_back=unacknowledged(pipeline))

    feed(pipeline, bars, before_bar=pause, after_first_tick=restart)
    assert restarted == [BARS // 2]
    assert_same_ledger(pipeline, expected)


OUTAGE = 30.0  # seconds PostgreSQL is down


def readiness(svc: Service) -> tuple[int, str | None]:
    """/readyz's status code and what it says of PostgreSQL (None: not checked)."""
    response = httpx.get(f"{svc.url}/readyz", timeout=5)
    return response.status_code, response.json()["checks"].get("postgres", {}).get("status")


def unacknowledged(p: Pipeline) -> int:
    """Entries some consumer group has not acknowledged (pending) or not read yet (a group whose lag
    Redis cannot tell counts as 1 if it is behind)."""
    r = p.redis()
    try:
        return sum(g["pending"] + (g["lag"] if g["lag"] is not None else behind(r, s, g))
                   for s in r.scan_iter(match="eafix.*", _type="stream") for g in r.xinfo_groups(s))
    finally:
        r.close()


def most_deliveries(p: Pipeline) -> int:
    """The highest delivery count of an entry some group holds unacknowledged (0: none)."""
    r = p.redis()
    try:
        return max((row["times_delivered"] for s in r.scan_iter(match="eafix.*", _type="stream")
                    for g in r.xinfo_groups(s) for row in r.xpending_range(s, g["name"], "-", "+", 100)), default=0)
    finally:
        r.close()


def dead_letters(p: Pipeline) -> int:
    r = p.redis()
    try:
        return sum(r.xlen(s) for s in r.scan_iter(match="eafix.*.dlq", _type="stream"))
    finally:
        r.close()


@pytest.mark.parametrize("pipeline", [{"restartable_postgres": True}], indirect=True)
def test_postgres_down_for_30_s_the_services_stand_still_and_resume(pipeline):
    """PostgreSQL shuts down (fast: sessions terminated) before a bar's first tick and is back 30 s
    later. The tick goes through data-ingestor, indicator-engine and signal-generator (none uses
    PostgreSQL); risk-manager cannot store its decision, so it neither publishes nor acknowledges, and
    it and execution-engine report not ready naming postgres. Nothing is dead-lettered for the outage;
    once PostgreSQL is back the chain goes on."""
    bars = workload(SEED, BARS, start_of_history())
    expected = reference(bars)
    seen: dict[str, set[tuple[int, str | None]]] = {name: set() for name in pipeline.services}
    held: list[int] = []  # unacknowledged entries, sampled during the outage
    deliveries: list[int] = []  # the highest delivery count among them
    down_at: list[float] = []

    def stop(k: int) -> None:
        if k == BARS // 2:
            pipeline.postgres_server.stop()
            down_at.append(time.monotonic())

    def outage(k: int) -> None:
        if k != BARS // 2:
            return
        while time.monotonic() < down_at[0] + OUTAGE:  # the tick is on its way meanwhile
            for name, svc in pipeline.services.items():
                seen[name].add(readiness(svc))
            held.append(unacknowledged(pipeline))
            deliveries.append(most_deliveries(pipeline))
            time.sleep(0.5)
        assert dead_letters(pipeline) == 0
        pipeline.postgres_server.start()
        recovered(pipeline, "postgres-down", time.monotonic(), down_seconds=OUTAGE, bar=k,
                  unacknowledged_during_outage=max(held), most_deliveries_during_outage=max(deliveries))

    feed(pipeline, bars, before_bar=stop, after_first_tick=outage)
    for name in ("risk-manager", "execution-engine"):  # not ready while it was down, ready before and after
        assert (503, "down") in seen[name] and readiness(pipeline.services[name]) == (200, "up"), (name, seen[name])
    for name in ("data-ingestor", "indicator-engine", "signal-generator"):  # they do not use PostgreSQL
        assert seen[name] == {(200, None)}, (name, seen[name])
    assert held and held[-1] > 0  # the chain stood still at risk-manager: its signal unacknowledged
    assert max(deliveries) == 1  # retried all along, never counted as another delivery
    assert dead_letters(pipeline) == 0  # an outage is not a poison message
    assert_same_ledger(pipeline, expected)
