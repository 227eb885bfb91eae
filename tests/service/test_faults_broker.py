"""Fault suite (test_faults.py): broker rejects and timeouts. execution-engine's paper broker runs a
fault drill (SERVICE_BROKER_FAULTS): it rejects every 6th order it is given and leaves every 8th
unanswered (an order both would hit is rejected), and the OMS times the unanswered ones out after
SERVICE_ACK_TIMEOUT_SECONDS (1 s here, 30 s by default and in the replay).

Expected: the replay of the same ticks with the same drill (the backtest runs the same paper broker),
and, derived by hand from the schedule alone: the n-th order is REJECTED when 6 divides n, TIMEOUT
when 8 does and 6 does not, without a fill; every other order opened a position; risk-manager holds
exactly the positions execution-engine has open (no reservation left for a failed order, no position
it does not know of).

Before each bar the feed waits until no order is waiting for the broker (an unanswered one has timed
out and risk-manager has released it): in the replay the unanswered order times out 30 s of tick time
after its submission, within the same bar, before the next bar can bring a signal."""

from __future__ import annotations

import json

import pytest

from eafix.execution_engine.brokers import FaultSchedule
from service import servers
from service.fault_ledger import reference, workload
from service.fault_pipeline import running
from service.pipeline_procs import Pipeline, wait_for
from service.test_faults import BARS, FIGURES, SEED, dead_letters, feed, ledger_of, settle, start_of_history

pytestmark = pytest.mark.slow  # minutes of real processes: scheduled first (tests/conftest.py)

SCHEDULE = FaultSchedule(reject_every=6, ignore_every=8)
ACK_TIMEOUT_SECONDS = 1


@pytest.fixture
def pipeline(tmp_path):
    def drill(name: str, port: int) -> dict[str, str]:
        if name != "execution-engine":
            return {}
        return {"SERVICE_BROKER_FAULTS": json.dumps({"reject_every": SCHEDULE.reject_every,
                                                     "ignore_every": SCHEDULE.ignore_every}),
                "SERVICE_ACK_TIMEOUT_SECONDS": str(ACK_TIMEOUT_SECONDS)}

    with servers.redis_server() as rds, servers.postgres_server() as pg:
        p = Pipeline(rds.url, rds.password, pg.url, pg.user, pg.password, tmp_path)
        with running(p, drill):
            yield p


def expected_status(n: int) -> str:
    """The n-th order's final failure by the schedule (counted by hand: 6 | n rejects, 8 | n ignores)."""
    return "REJECTED" if n % 6 == 0 else "TIMEOUT" if n % 8 == 0 else "OK"


def test_broker_rejects_and_timeouts_leave_no_orphan_and_the_replays_ledger(pipeline):
    bars = workload(SEED, BARS, start_of_history())
    expected = reference(bars, broker_faults=SCHEDULE)
    failures = [expected_status(n) for n in range(1, expected.approved + 1)]
    assert failures.count("REJECTED") >= 10 and failures.count("TIMEOUT") >= 5  # the drill bites

    def unanswered() -> int:
        return pipeline.sql("SELECT count(*) FROM orders.orders WHERE status = 'SUBMITTED' "
                            "AND acknowledged_at IS NULL")[0][0]

    def await_timeouts(k: int) -> None:
        # before the next signal (the feed has settled the previous bar): as in the replay, where the
        # unanswered order times out 30 s of tick time after its submission, within its own bar
        if unanswered():
            wait_for(lambda: not unanswered(), "the unanswered order to time out", pipeline)
            settle(pipeline)  # the TIMEOUT report has reached risk-manager

    feed(pipeline, bars, before_bar=await_timeouts)

    sql = pipeline.sql
    statuses = [s for (s,) in sql("SELECT status FROM orders.orders ORDER BY created_at, client_order_id")]
    got = ["REJECTED" if s == "REJECTED" else "TIMEOUT" if s == "TIMEOUT" else "OK" for s in statuses]
    # the n-th order failed exactly as the schedule says, every other one went through
    assert got == failures[:len(got)], [(n, g) for n, g in enumerate(got, 1) if g != "OK"]
    assert ledger_of(pipeline).differences(expected) == []
    assert len(statuses) == expected.approved
    assert set(statuses) - {"REJECTED", "TIMEOUT"} <= {"CLOSED", "FILLED"}
    assert sql("SELECT count(*) FROM orders.fills f JOIN orders.orders o USING (client_order_id) "
               "WHERE o.status IN ('REJECTED', 'TIMEOUT')") == [(0,)]  # a failed order never filled
    assert sql("SELECT count(*) FROM trades.positions p JOIN orders.orders o ON o.client_order_id = p.position_id "
               "WHERE o.status IN ('REJECTED', 'TIMEOUT')") == [(0,)]  # nor opened a position
    reasons = sql("SELECT reason FROM orders.orders WHERE status = 'TIMEOUT'")
    assert {r for (r,) in reasons} == {f"no broker answer within {ACK_TIMEOUT_SECONDS} s"}
    fills = dict(sql("SELECT kind, count(*) FROM orders.fills GROUP BY kind"))
    went_through = failures.count("OK")
    assert fills.get("OPEN", 0) == went_through and fills.get("CLOSE", 0) == len(expected.trades)
    # risk-manager's book is execution-engine's: the same open positions, nothing reserved or orphaned
    open_exec = {r for (r,) in sql("SELECT position_id FROM trades.positions WHERE status = 'OPEN'")}
    risk_rows = sql("SELECT client_order_id, state FROM risk.positions")
    assert {c for c, _ in risk_rows} == open_exec and {s for _, s in risk_rows} <= {"OPEN"}
    assert went_through == len(expected.trades) + len(open_exec)
    assert dead_letters(pipeline) == 0

    FIGURES.mkdir(parents=True, exist_ok=True)
    (FIGURES / "broker-rejects-timeouts.json").write_text(json.dumps({
        "orders": len(statuses), "rejected": got.count("REJECTED"), "timed_out": got.count("TIMEOUT"),
        "lost": 0, "duplicated": 0,
        # the longest an unanswered order stayed SUBMITTED before the OMS timed it out
        "recovery_seconds": float(sql("SELECT round(extract(epoch FROM max(updated_at - submitted_at)), 2) "
                                      "FROM orders.orders WHERE status = 'TIMEOUT'")[0][0]),
    }, indent=1) + "\n")
