"""Fault suite (test_faults.py): a network partition between one service and Redis, healed after 20 s.

execution-engine reaches Redis at 127.0.0.2 (Redis listens on 127.0.0.1 and 127.0.0.2), the other
services and the test at 127.0.0.1. The partition is two iptables rules on loopback that DROP every
packet to and from 127.0.0.2:<redis port>: no RST, no FIN, the victim's connections simply go silent
(its reads and writes time out, its reconnects are never answered) while the rest of the pipeline
and PostgreSQL stay reachable. It is cut right after a bar's first tick is posted, so the chain is
in flight (the tick and the order intent it leads to reach execution-engine's streams while it is
cut), and healed 20 s later. The victim must report not-ready while cut, and afterwards resume; the
ledger is the replay's.

Needs root (iptables); CI runs as root and ci/ensure_packages.sh installs iptables."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from datetime import timedelta

import httpx
import pytest

from service import servers
from service.fault_ledger import reference, workload
from service.fault_pipeline import add_figures, running
from service.pipeline_procs import STARTUP, Pipeline, at_rest, ready, wait_for
from service.test_faults import BARS, SEED, assert_same_ledger, dead_letters, feed, recovered, start_of_history

VICTIM = "execution-engine"
CUT_SECONDS = 20.0
ALIAS = "127.0.0.2"  # loopback: the victim's way to Redis, the only one the rules drop

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="a network partition needs root (iptables rules)")]


def iptables() -> str:
    found = shutil.which("iptables") or ("/usr/sbin/iptables" if os.path.exists("/usr/sbin/iptables") else None)
    assert found, "iptables is missing: ci/ensure_packages.sh installs it"
    return found


def rules(port: int) -> list[list[str]]:
    tag = ["-m", "comment", "--comment", f"eafix-fault-partition-{port}"]
    return [["OUTPUT", "-o", "lo", "-p", "tcp", "-d", ALIAS, "--dport", str(port), *tag, "-j", "DROP"],
            ["OUTPUT", "-o", "lo", "-p", "tcp", "-s", ALIAS, "--sport", str(port), *tag, "-j", "DROP"]]


def cut(port: int) -> None:
    for rule in rules(port):
        done = subprocess.run([iptables(), "-w", "-I", *rule], capture_output=True, text=True)
        assert done.returncode == 0, f"iptables -I {' '.join(rule)}: {done.stderr}"


def heal(port: int) -> None:
    for rule in rules(port):
        subprocess.run([iptables(), "-w", "-D", *rule], capture_output=True)  # absent already: nothing to do


@pytest.fixture
def pipeline(tmp_path):
    with servers.redis_server() as rds, servers.postgres_server() as pg:
        p = Pipeline(rds.url, rds.password, pg.url, pg.user, pg.password, tmp_path)
        port = redis_port(p)
        r = p.redis()
        try:
            r.config_set("bind", f"127.0.0.1 {ALIAS}")
        finally:
            r.close()
        victim_url = rds.url.replace("127.0.0.1", ALIAS)
        try:
            with running(p, lambda name, _port: {"SERVICE_REDIS_URL": victim_url} if name == VICTIM else {}):
                yield p
        finally:
            heal(port)


def redis_port(p: Pipeline) -> int:
    return int(p.redis_url.rsplit(":", 1)[1].split("/")[0])


def readiness(p: Pipeline) -> int | None:
    try:
        return httpx.get(f"{p.services[VICTIM].url}/readyz", timeout=10).status_code
    except httpx.TransportError:
        return None


def test_a_service_cut_off_from_redis_for_20_s_reports_not_ready_and_resumes(pipeline):
    start = start_of_history()
    bars = workload(SEED, BARS, start)
    expected = reference(bars)
    port = redis_port(pipeline)
    # a bar whose first tick fills an order (from the replay): the intent reaches the victim while cut
    at = next(int((t - start).total_seconds() // 60) for t in sorted(expected.fill_times)
              if t - start >= timedelta(minutes=BARS // 2))
    seen: dict[str, object] = {}

    def partition(k: int) -> None:
        if k != at:
            return
        cut(port)  # the bar's first tick was just posted: its chain is in flight
        since = time.monotonic()
        wait_for(lambda: at_rest(pipeline, but=VICTIM), f"the chain to reach {VICTIM}", pipeline)
        seen["not_ready"] = wait_for(lambda: readiness(pipeline) == 503, f"{VICTIM} to report not ready", pipeline)
        r = pipeline.redis()
        try:  # what reached the victim's streams while it was cut and waits for it
            seen["waiting"] = sum((g["lag"] or 0) + g["pending"] for s in ("eafix.price.tick", "eafix.orders.validated")
                                  for g in r.xinfo_groups(s) if g["name"] == VICTIM)
        finally:
            r.close()
        time.sleep(max(0.0, CUT_SECONDS - (time.monotonic() - since)))
        heal(port)
        healed = time.monotonic()
        wait_for(lambda: ready(pipeline.services[VICTIM]), f"{VICTIM} to be ready again", pipeline, timeout=STARTUP)
        seen["recovery"] = recovered(pipeline, f"partition-{VICTIM}", healed, cut_seconds=CUT_SECONDS, bar=k)

    feed(pipeline, bars, after_first_tick=partition)
    assert seen["not_ready"] and seen["waiting"], seen  # it was cut off mid-chain, with work waiting for it
    assert_same_ledger(pipeline, expected)
    assert dead_letters(pipeline) == 0  # no message given up for the partition
    add_figures(f"partition-{VICTIM}", lost=0, duplicated=0)
