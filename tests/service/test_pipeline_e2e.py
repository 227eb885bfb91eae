"""Eight services as separate `eafix serve` processes on a real Redis and PostgreSQL: the five of the
pipeline, calendar-ingestor, reentry-matrix-svc and reporter.

Ticks posted to data-ingestor flow through indicator-engine, signal-generator, risk-manager and
execution-engine and end as orders and closed trades in PostgreSQL; a redelivered message never
creates a second order (an OrderIntent re-published as it was, and execution-engine killed with
SIGKILL and restarted while ticks and intents keep flowing). Closed trades re-enter through
reentry-matrix-svc (a chain O -> R1 through risk and execution again) and reporter keeps the same
ledger; a calendar imported through calendar-ingestor's API gates every entry: signal-generator and
risk-manager wait for its gates (`calendar_required`), and a HIGH USD event imported mid-run makes
risk-manager reject EURUSD entries with CALENDAR_BLACKOUT.

Set-up, as the chart deploys it: a throwaway PostgreSQL migrated by `eafix migrate` (the hook
Job's command), a throwaway Redis, one process per service with SERVICE_* variables. The feed is
synthetic *history*: ticks stamped two days ago, ten per M1 bar, so a few seconds of posting span
many bars. Hence the settings that let history through: SERVICE_INGEST max_price_age_seconds and
SERVICE_RISK max_quote_age_seconds of a week (live defaults: 30 s and 300 s). The strategy fires on
every bar once RSI is warm (oversold 49.99 / overbought 50, no cross needed, no duplicate window)
and the price is a sine of 60 pips amplitude, so positions hit their stop-loss or take-profit
within a few bars. Bars are posted one per request, paced, so that orders reach the paper broker
before the ticks that close them. The indicator-engine's one-second flush timer may close a bar
(in the past) between two requests or even within one: the bar is then shorter, nothing else
changes.

Every wait polls with a generous deadline that only guards against hangs; nothing asserts speed.
Processes are killed in the fixture's finalizer whatever happens.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from service import pipeline_env, servers
from service.pipeline_env import AROUND, PIPELINE
from service.pipeline_procs import (
    STARTUP,
    WAIT,
    Pipeline,
    Service,
    envelopes,
    quiet,
    ready,
    settled,
    wait_for,
)
from service.servers import free_port

pytestmark = pytest.mark.slow  # minutes of real processes: scheduled first (tests/conftest.py)

SYMBOL = "EURUSD"
TICKS_PER_BAR = 10
PIP = 0.0001


def bar_ticks(start: datetime, bar: int) -> list[dict]:
    """Ten ticks of M1 bar `bar` (6 s apart): a sine over 12 bars, 60 pips amplitude, 1 pip spread."""
    ticks = []
    for i in range(TICKS_PER_BAR):
        x = bar + i / TICKS_PER_BAR
        bid = round(1.1 + 60 * PIP * math.sin(2 * math.pi * x / 12), 5)
        ts = start + timedelta(minutes=bar, seconds=i * 60 / TICKS_PER_BAR)
        ticks.append({"symbol": SYMBOL, "ts": ts.isoformat().replace("+00:00", "Z"),
                      "bid": f"{bid:.5f}", "ask": f"{bid + PIP:.5f}"})
    return ticks


def base_env(pipeline: Pipeline) -> dict[str, str]:
    return pipeline_env.base_env(redis_url=pipeline.redis_url, redis_password=pipeline.redis_password,
                                 pg_url=pipeline.pg_url, pg_user=pipeline.pg_user, pg_password=pipeline.pg_password,
                                 workdir=pipeline.workdir)


def service_env(pipeline: Pipeline, name: str, port: int) -> dict[str, str]:
    extra = {"SERVICE_BUS": json.dumps({"block_ms": 200})}
    if name == "execution-engine":
        extra["SERVICE_COSTS"] = json.dumps({"commission_per_lot": "3.5"})
    if name in ("signal-generator", "risk-manager"):
        extra["SERVICE_CALENDAR_REQUIRED"] = "true"  # no entry before calendar-ingestor's first gate
    return pipeline_env.service_env(base_env(pipeline), name, port, pipeline.workdir,
                                    risk={"account_id": "e2e", "daily_drawdown_limit_percent": "100",
                                          "max_positions_per_symbol": 10, "max_open_positions": 20,
                                          "currency_exposure_cap_percent": "100"},
                                    extra=extra)  # room for re-entries beside the strategy's positions


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    workdir = tmp_path_factory.mktemp("pipeline")
    with servers.redis_server() as rds, servers.postgres_server() as pg:
        p = Pipeline(rds.url, rds.password, pg.url, pg.user, pg.password, workdir)
        migrate = subprocess.run([sys.executable, "-m", "eafix", "migrate"], env=base_env(p), capture_output=True,
                                 text=True, timeout=WAIT)
        assert migrate.returncode == 0, migrate.stderr
        try:
            for name in (*PIPELINE, *AROUND):
                port = free_port()
                p.services[name] = Service(name, port, service_env(p, name, port), workdir / name)
                p.services[name].start()
            for svc in p.services.values():
                wait_for(lambda svc=svc: ready(svc), f"{svc.name} to be ready", p, timeout=STARTUP)
            # the week's calendar: one event, hours away (entries stay allowed until the test adds one)
            imported = import_calendar(p, datetime.now(UTC) + timedelta(hours=6), "Retail Sales m/m")
            assert imported.status_code == 200, imported.text
            wait_for(lambda: gate_states(p) and gate_states(p)[-1] == "CLEAR", "a CLEAR EURUSD gate", p)
            yield p
        finally:
            p.stop()


def import_calendar(pipeline: Pipeline, at: datetime, title: str) -> httpx.Response:
    """A HIGH USD event at `at` (New York wall time in the ForexFactory layout), through the API."""
    local = at.astimezone(ZoneInfo("America/New_York"))
    csv_text = ("Title,Country,Date,Time,Impact,Forecast,Previous,URL\n"
                f"{title},USD,{local:%m-%d-%Y},{local:%I:%M%p},High,0.3%,0.2%,\n")
    return httpx.post(f"{pipeline.services['calendar-ingestor'].url}/api/v1/calendar/import?source={title[:3]}.csv",
                      content=csv_text, timeout=30)


def open_positions(pipeline: Pipeline) -> list[dict]:
    return httpx.get(f"{pipeline.services['execution-engine'].url}/api/v1/positions", timeout=30).json()


def gate_states(pipeline: Pipeline) -> list[str]:
    return [e["data"]["state"] for e in envelopes(pipeline, "eafix.calendar.signals")
            if e["data"]["symbol"] == SYMBOL]


def post_bars(pipeline: Pipeline, start: datetime, bars: range, pause: float = 0.1) -> None:
    url = pipeline.services["data-ingestor"].url
    with httpx.Client(timeout=30) as client:
        for bar in bars:
            response = client.post(f"{url}/api/v1/ticks", json=bar_ticks(start, bar))
            assert response.status_code == 200, response.text
            assert response.json()["accepted"] == TICKS_PER_BAR
            time.sleep(pause)


def test_ticks_become_orders_and_trades_and_redelivery_never_doubles_an_order(pipeline: Pipeline) -> None:
    start = (datetime.now(UTC) - timedelta(days=2)).replace(second=0, microsecond=0)
    execution = pipeline.services["execution-engine"]

    # 1. history flows until execution-engine has stored orders
    post_bars(pipeline, start, range(0, 30))
    wait_for(lambda: pipeline.sql("SELECT count(*) FROM orders.orders")[0][0] > 0, "a first order", pipeline)

    # 2. execution-engine dies without warning while the feed goes on, and comes back (same pod name)
    execution.kill(signal.SIGKILL)
    post_bars(pipeline, start, range(30, 45))
    execution.start()
    wait_for(lambda: ready(execution), "execution-engine to be ready again", pipeline, timeout=STARTUP)

    # 3. an OrderIntent delivered a second time: the same envelope (event id, idempotency key) again
    r = pipeline.redis()
    try:
        first_id, first_fields = r.xrange("eafix.orders.validated", count=1)[0]
        r.xadd("eafix.orders.validated", first_fields)
    finally:
        r.close()
    replayed = json.loads(first_fields["envelope"])["data"]

    post_bars(pipeline, start, range(45, 90))
    wait_for(lambda: quiet(pipeline), "every consumer group to catch up and the pipeline to fall quiet", pipeline)

    intents = [e["data"] for e in envelopes(pipeline, "eafix.orders.validated")]
    keys = [i["idempotency_key"] for i in intents]
    assert keys.count(replayed["idempotency_key"]) == 2  # the original and the redelivery
    orders = pipeline.sql("SELECT idempotency_key, client_order_id, status FROM orders.orders")
    # exactly one order per idempotency key published, none without an intent
    assert sorted(k for k, _, _ in orders) == sorted(set(keys))
    assert len(orders) >= 3

    # the redelivered intent produced no second order life: one PENDING report, one CREATE transition
    reports = [e["data"] for e in envelopes(pipeline, "eafix.execution.reports")]
    pending = [r for r in reports if r["client_order_id"] == replayed["client_order_id"] and r["status"] == "PENDING"]
    assert len(pending) == 1
    created = pipeline.sql("SELECT count(*) FROM orders.transitions WHERE client_order_id = %s AND event = 'CREATE'",
                           (replayed["client_order_id"],))
    assert created == [(1,)]
    dead = pipeline.redis()
    try:
        assert dead.exists("eafix.orders.validated.dlq") == 0
    finally:
        dead.close()

    # trades: every TradeClosed is stored once; the bus is at least once, so a publish retried after
    # a timeout may put a trade on the stream twice, but only as the same event (never a second close)
    closed = [e["data"] for e in envelopes(pipeline, "eafix.trades.closed")]
    trade_ids = [t["trade_id"] for t in closed]
    by_id: dict[str, list[dict]] = {}
    for t in closed:
        by_id.setdefault(t["trade_id"], []).append(t)
    assert all(all(copy == copies[0] for copy in copies) for copies in by_id.values())
    stored = {row[0]: row for row in pipeline.sql(
        "SELECT trade_id, client_order_id, close_reason, pnl, close_time > open_time FROM trades.trades")}
    assert set(trade_ids) <= set(stored)
    assert stored
    statuses = {cid: status for _, cid, status in orders}
    for _trade_id, client_order_id, reason, _pnl, ordered in stored.values():
        assert statuses[client_order_id] == "CLOSED"
        assert reason in ("SL", "TP")
        assert ordered is True
    # risk-manager booked each trade it heard of once (its ledger's primary key), only real trades
    booked = [row[0] for row in pipeline.sql("SELECT trade_id FROM risk.realized_trades WHERE account_id = 'e2e'")]
    assert len(booked) == len(set(booked))
    assert set(booked) <= set(stored)
    assert booked


def test_closed_trades_reenter_and_reporter_keeps_the_same_ledger(pipeline: Pipeline) -> None:
    # after the first test: 90 bars traded, every consumer group caught up
    wait_for(lambda: quiet(pipeline), "the pipeline to fall quiet", pipeline)
    decisions = [e["data"] for e in envelopes(pipeline, "eafix.reentry.decisions")]
    closed = {e["data"]["trade_id"] for e in envelopes(pipeline, "eafix.trades.closed")}
    assert {d["trade_id"] for d in decisions} == closed  # every closed trade decided, once each
    approved = [d for d in decisions if d["approved"]]
    assert approved and all(d["reentry_signal_id"] == f"RE-{d['trade_id']}" for d in approved)
    # an approved re-entry went round again: a Signal from reentry-matrix-svc, sized by risk-manager
    # (at most half the parent's lots), executed, closed, and decided as an R1 trade
    reentries = {e["data"]["signal_id"]: e for e in envelopes(pipeline, "eafix.signals.generated")
                 if e["data"]["signal_id"].startswith("RE-")}
    assert {d["reentry_signal_id"] for d in approved} <= set(reentries)
    assert all(e["producer"] == "reentry-matrix-svc" for e in reentries.values())
    intents = {e["data"]["signal_id"]: e["data"] for e in envelopes(pipeline, "eafix.orders.validated")}
    reentered = [intents[s] for s in reentries if s in intents]
    refused = [e["data"] for e in envelopes(pipeline, "eafix.risk.rejected") if e["data"]["signal_id"] in reentries]
    assert reentered, f"risk-manager sized a re-entry; it refused: {refused[:3]}"
    parent_lots = {t["trade_id"]: float(t["lots"]) for t in (e["data"] for e in envelopes(pipeline,
                                                                                           "eafix.trades.closed"))}
    for intent in reentered:
        parent = intent["signal_id"].removeprefix("RE-")
        assert float(intent["lots"]) <= parent_lots[parent]
    assert any(d["generation"] == "R1" for d in decisions), "a re-entry's trade closed and was decided"
    # reporter stored every closed trade once, as execution-engine did
    assert pipeline.sql("SELECT count(*) FROM reports.trades") == pipeline.sql("SELECT count(*) FROM trades.trades")
    summary = httpx.get(f"{pipeline.services['reporter'].url}/api/v1/reports/summary", timeout=30)
    assert summary.status_code == 200


def test_a_high_event_imported_mid_run_blocks_new_entries(pipeline: Pipeline) -> None:
    start = (datetime.now(UTC) - timedelta(days=2)).replace(second=0, microsecond=0)
    # bars until a position is open (no tick closes it until the event is imported)
    bar = 100
    while not open_positions(pipeline) and bar < 160:
        post_bars(pipeline, start, range(bar, bar + 1))
        bar += 1
        wait_for(lambda: settled(pipeline), "the bar to be traded", pipeline)
    assert open_positions(pipeline), "no position opened to close after the import"
    response = import_calendar(pipeline, datetime.now(UTC) + timedelta(minutes=30), "CPI m/m")
    assert response.status_code == 200 and response.json()["new"] == 1
    wait_for(lambda: gate_states(pipeline)[-1] == "PRE_EVENT_BLOCK", "EURUSD's gate to block", pipeline)
    time.sleep(1.5)  # risk-manager follows the gates' stream: let it read the blocking one
    wait_for(lambda: quiet(pipeline), "the signals of the first bars to be decided", pipeline)
    imported_at = datetime.fromisoformat(response.json()["imported_at"])
    before = {i["signal_id"] for i in (e["data"] for e in envelopes(pipeline, "eafix.orders.validated"))}

    post_bars(pipeline, start, range(bar, bar + 16))
    wait_for(lambda: quiet(pipeline), "the pipeline to fall quiet", pipeline)
    rejected = [e["data"] for e in envelopes(pipeline, "eafix.risk.rejected")
                if "CALENDAR_BLACKOUT" in e["data"]["reasons"]]
    assert rejected and all("before HIGH USD CPI m/m" in r["details"] for r in rejected)
    new_intents = [i for i in (e["data"] for e in envelopes(pipeline, "eafix.orders.validated"))
                   if i["signal_id"] not in before]
    assert new_intents == []  # not one entry while the window is on
    # the positions opened before closed after the import: decided with the calendar's proximity
    # (CPI 30 minutes ahead: SH, 21-90 minutes)
    after = [d for d in (e["data"] for e in envelopes(pipeline, "eafix.reentry.decisions"))
             if datetime.fromisoformat(d["decided_at"]) > imported_at + timedelta(seconds=2)]
    assert after and {d["proximity"] for d in after} == {"SH"}
