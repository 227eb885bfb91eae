"""execution-engine OMS: the transition table, idempotency, partial fills, TIMEOUT and EXPIRED on the clock."""

from __future__ import annotations

import itertools
import logging
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal as D

import pytest

from eafix.contracts import ExecutionReport, TradeClosed
from eafix.contracts.primitives import CloseReason, Direction, ExecutionStatus
from eafix.execution_engine.domain import (
    Acknowledged,
    AnomalyKind,
    Cancelled,
    Closed,
    ExecutionEngine,
    Expired,
    Filled,
    IllegalTransition,
    Order,
    OrderEvent,
    OrderNotCancellableError,
    Position,
    Rejected,
    UnknownOrderError,
    next_status,
    transition,
)
from eafix.execution_engine.mt4_bridge import MT4Broker
from eafix.runtime.clock import TestClock
from service.factories import T0, intent

S, E = ExecutionStatus, OrderEvent

# The specification, written out by hand (not read from the code): every legal (state, event) pair.
LEGAL = {
    (S.PENDING, E.SUBMIT): S.SUBMITTED,
    (S.PENDING, E.REJECT): S.REJECTED,
    (S.PENDING, E.CANCEL): S.CANCELLED,
    (S.PENDING, E.TIMEOUT): S.TIMEOUT,
    (S.PENDING, E.EXPIRE): S.EXPIRED,
    (S.SUBMITTED, E.ACCEPT): S.SUBMITTED,
    (S.SUBMITTED, E.PARTIAL_FILL): S.PARTIAL,
    (S.SUBMITTED, E.FILL): S.FILLED,
    (S.SUBMITTED, E.REJECT): S.REJECTED,
    (S.SUBMITTED, E.CANCEL): S.CANCELLED,
    (S.SUBMITTED, E.TIMEOUT): S.TIMEOUT,
    (S.SUBMITTED, E.EXPIRE): S.EXPIRED,
    (S.PARTIAL, E.PARTIAL_FILL): S.PARTIAL,
    (S.PARTIAL, E.FILL): S.FILLED,
    (S.PARTIAL, E.REMAINDER_CANCELLED): S.FILLED,
    (S.PARTIAL, E.CLOSE): S.CLOSED,
    (S.FILLED, E.CLOSE): S.CLOSED,
}
ALL_PAIRS = list(itertools.product(ExecutionStatus, OrderEvent))
ILLEGAL = [pair for pair in ALL_PAIRS if pair not in LEGAL]


def order_in(status: ExecutionStatus, *, lots: str = "1.00", filled: str = "0") -> Order:
    base = Order.from_intent(intent(7, lots=lots), T0)
    filled_lots = D(filled)
    return replace(base, status=status, filled_lots=filled_lots, fill_notional=filled_lots * D("1.10000"),
                   submitted_at=None if status is S.PENDING else T0, version=3)


def position_for(order: Order) -> Position:
    return Position(position_id=order.client_order_id, client_order_id=order.client_order_id, symbol=order.symbol,
                    direction=order.direction, account_currency="USD", lots=order.filled_lots,
                    open_notional=order.fill_notional, open_price=D("1.10000"), sl_price=D("1.09800"),
                    tp_price=D("1.10400"), open_time=T0, commission=D(0))


# --- the table itself -----------------------------------------------------------------------------------------

def test_the_table_is_exactly_the_specified_one():
    for status, event in ALL_PAIRS:
        assert next_status(status, event) == LEGAL.get((status, event)), (status, event)


@pytest.mark.parametrize(("status", "event"), list(LEGAL), ids=lambda v: v.value)
def test_every_legal_transition_is_applied(status, event):
    order = order_in(status)
    new = transition(order, event, T0 + timedelta(seconds=5), reason="why")
    assert new.status is LEGAL[(status, event)]
    assert new.version == order.version + 1
    assert new.updated_at == T0 + timedelta(seconds=5)
    assert new.reason == "why"
    assert order.status is status and order.version == 3  # the original record is untouched


@pytest.mark.parametrize(("status", "event"), ILLEGAL, ids=lambda v: v.value)
def test_every_illegal_transition_is_refused(status, event):
    order = order_in(status)
    with pytest.raises(IllegalTransition) as info:
        transition(order, event, T0 + timedelta(seconds=5))
    assert info.value.status is status and info.value.event is event
    assert order.status is status and order.version == 3 and order.updated_at == T0


def test_terminal_states_have_no_way_out():
    for status in (S.CLOSED, S.REJECTED, S.CANCELLED, S.TIMEOUT, S.EXPIRED):
        assert all(next_status(status, event) is None for event in OrderEvent)


# --- the engine applies broker answers only along the table ---------------------------------------------------

class SilentBroker(MT4Broker):
    """Answers nothing by itself (like the MT4 bridge): tests deliver broker events by hand."""


def seeded_engine(status: ExecutionStatus) -> tuple[ExecutionEngine, Order, TestClock]:
    clock = TestClock(T0 + timedelta(seconds=1))
    engine = ExecutionEngine(clock, SilentBroker())
    filled = {S.PARTIAL: "0.40", S.FILLED: "1.00", S.CLOSED: "1.00"}.get(status, "0")
    order = order_in(status, filled=filled)
    positions = [position_for(order)] if status in (S.PARTIAL, S.FILLED) else []
    engine.restore([order], positions)
    return engine, order, clock


def stimulus(event: OrderEvent, order: Order):
    ts = T0 + timedelta(seconds=2)
    cid = order.client_order_id
    return {
        E.ACCEPT: Acknowledged(cid, "T-NEW", ts),
        E.PARTIAL_FILL: Filled(cid, "F-partial", D("0.10"), D("1.10010"), ts),
        E.FILL: Filled(cid, "F-rest", order.lots - order.filled_lots or D("0.10"), D("1.10010"), ts),
        E.REJECT: Rejected(cid, "invalid stops (130)", ts),
        E.CANCEL: Cancelled(cid, "cancelled by the EA", ts),
        E.REMAINDER_CANCELLED: Cancelled(cid, "remainder cancelled", ts),
        E.EXPIRE: Expired(cid, "expired at the broker", ts),
        E.CLOSE: Closed(cid, "F-close", D("1.10100"), CloseReason.MANUAL, ts),
    }[event]


# Broker answers for each state, by hand: the resulting state, or None when it must be refused.
# (CANCEL and REMAINDER_CANCELLED both arrive as a Cancelled answer: REMAINDER_CANCELLED when PARTIAL.)
BROKER_EXPECTED = {
    S.PENDING: {E.ACCEPT: None, E.PARTIAL_FILL: None, E.FILL: None, E.REJECT: S.REJECTED, E.CANCEL: S.CANCELLED,
                E.EXPIRE: S.EXPIRED, E.CLOSE: None},
    S.SUBMITTED: {E.ACCEPT: S.SUBMITTED, E.PARTIAL_FILL: S.PARTIAL, E.FILL: S.FILLED, E.REJECT: S.REJECTED,
                  E.CANCEL: S.CANCELLED, E.EXPIRE: S.EXPIRED, E.CLOSE: None},
    S.PARTIAL: {E.ACCEPT: None, E.PARTIAL_FILL: S.PARTIAL, E.FILL: S.FILLED, E.REJECT: None,
                E.REMAINDER_CANCELLED: S.FILLED, E.EXPIRE: None, E.CLOSE: S.CLOSED},
    S.FILLED: {E.ACCEPT: None, E.PARTIAL_FILL: None, E.FILL: None, E.REJECT: None, E.CANCEL: None,
               E.EXPIRE: None, E.CLOSE: S.CLOSED},
    S.CLOSED: {E.ACCEPT: None, E.PARTIAL_FILL: None, E.FILL: None, E.REJECT: None, E.CANCEL: None, E.EXPIRE: None,
               E.CLOSE: None},
    S.REJECTED: {E.ACCEPT: None, E.PARTIAL_FILL: None, E.FILL: None, E.CANCEL: None, E.EXPIRE: None,
                 E.CLOSE: None},
    S.CANCELLED: {E.ACCEPT: None, E.PARTIAL_FILL: None, E.FILL: None, E.REJECT: None, E.EXPIRE: None,
                  E.CLOSE: None},
    S.TIMEOUT: {E.ACCEPT: None, E.PARTIAL_FILL: None, E.FILL: None, E.REJECT: None, E.EXPIRE: None,
                E.CLOSE: None},
    S.EXPIRED: {E.ACCEPT: None, E.PARTIAL_FILL: None, E.FILL: None, E.REJECT: None, E.CLOSE: None},
}
BROKER_CASES = [(status, event) for status, answers in BROKER_EXPECTED.items() for event in answers]


@pytest.mark.parametrize(("status", "event"), BROKER_CASES, ids=lambda v: v.value)
def test_engine_applies_or_refuses_each_broker_answer(status, event, caplog):
    engine, order, _ = seeded_engine(status)
    expected = BROKER_EXPECTED[status][event]
    with caplog.at_level(logging.WARNING, logger="eafix.execution_engine.domain"):
        outputs = engine.on_broker_events([stimulus(event, order)])
    after = engine.order(order.client_order_id)
    reports = [o for o in outputs if isinstance(o, ExecutionReport)]
    if expected is None:
        assert outputs == []
        assert after == order  # nothing applied: same status, same version, same fields
        assert len(engine.anomalies) == 1
        assert [r.levelno for r in caplog.records] == [logging.WARNING]
        changes = engine.drain_changes()
        assert not changes
    else:
        assert after.status is expected and after.version == order.version + 1
        assert [r.status for r in reports] == [expected]
        assert not engine.anomalies
        changes = engine.drain_changes()
        assert [(t.from_status, t.to_status, t.event) for t in changes.transitions] == [(status, expected, event.value)]


def test_same_final_answer_twice_is_silent():
    engine, order, _ = seeded_engine(S.SUBMITTED)
    rejected = Rejected(order.client_order_id, "no money", T0)
    assert [r.status for r in engine.on_broker_events([rejected])] == [S.REJECTED]
    assert engine.on_broker_events([rejected]) == []
    assert not engine.anomalies


def test_unknown_order_answer_is_an_anomaly():
    engine, _, _ = seeded_engine(S.SUBMITTED)
    assert engine.on_broker_events([Filled("O-unknown", "F1", D("1.00"), D("1.1"), T0)]) == []
    assert [a.kind for a in engine.anomalies] == [AnomalyKind.UNKNOWN_ORDER]


def test_overfill_is_refused():
    engine, order, _ = seeded_engine(S.SUBMITTED)
    assert engine.on_broker_events([Filled(order.client_order_id, "F1", D("1.01"), D("1.1"), T0)]) == []
    assert engine.order(order.client_order_id) == order
    assert [a.kind for a in engine.anomalies] == [AnomalyKind.OVERFILL]


def test_late_fill_after_timeout_is_refused():
    engine, order, _ = seeded_engine(S.TIMEOUT)
    assert engine.on_broker_events([Filled(order.client_order_id, "F1", D("1.00"), D("1.1"), T0)]) == []
    assert engine.order(order.client_order_id).status is S.TIMEOUT
    assert [a.kind for a in engine.anomalies] == [AnomalyKind.ILLEGAL_TRANSITION]
    assert engine.open_positions() == []


# --- intake and idempotency ---------------------------------------------------------------------------------------

def test_redelivered_intent_makes_no_second_order_or_report():
    clock = TestClock(T0)
    broker = SilentBroker()
    engine = ExecutionEngine(clock, broker)
    first = engine.on_order_intent(intent(1))
    assert [r.status for r in first] == [S.PENDING, S.SUBMITTED]
    clock.advance(5)
    assert engine.on_order_intent(intent(1)) == []
    assert len(broker.outbox()) == 1  # sent to the broker once
    assert len(engine.live_orders()) == 1
    changes = engine.drain_changes()
    assert len(changes.orders) == 1 and len(changes.transitions) == 2


def test_redelivery_is_a_no_op_after_the_order_finished():
    engine = ExecutionEngine(TestClock(T0), SilentBroker())
    engine.on_order_intent(intent(1))
    engine.on_broker_events([Rejected(intent(1).client_order_id, "no", T0)])
    assert engine.on_order_intent(intent(1)) == []


def test_same_client_order_id_with_another_key_is_refused():
    engine = ExecutionEngine(TestClock(T0), SilentBroker())
    engine.on_order_intent(intent(1))
    assert engine.on_order_intent(intent(1, key="another-key")) == []
    assert [a.kind for a in engine.anomalies] == [AnomalyKind.DUPLICATE_CLIENT_ORDER_ID]


def test_intake_rejects_an_order_whose_pnl_cannot_be_converted():
    engine = ExecutionEngine(TestClock(T0), SilentBroker())
    reports = engine.on_order_intent(intent(1, symbol="USDJPY", entry="150.000", account="EUR"))
    assert [r.status for r in reports] == [S.PENDING, S.REJECTED]
    assert reports[-1].reason == "no quote to convert JPY P&L into the account currency EUR"


# --- partial fills ------------------------------------------------------------------------------------------------

def test_partial_fills_aggregate_to_filled_with_the_average_price():
    engine = ExecutionEngine(TestClock(T0), SilentBroker())
    cid = intent(1).client_order_id
    engine.on_order_intent(intent(1))
    first = engine.on_broker_events([Filled(cid, "F1", D("0.40"), D("1.24710"), T0, commission=D("2.80"),
                                            broker_order_id="48213402")])
    assert [(r.status, r.filled_lots, r.avg_price, r.commission) for r in first] == [
        (S.PARTIAL, D("0.40"), D("1.24710"), D("2.80"))]
    second = engine.on_broker_events([Filled(cid, "F2", D("0.60"), D("1.24720"), T0, commission=D("4.20"))])
    # (0.40 x 1.24710 + 0.60 x 1.24720) / 1.00 = (0.498840 + 0.748320) / 1 = 1.24716
    assert [(r.status, r.filled_lots, r.avg_price, r.commission, r.broker_order_id) for r in second] == [
        (S.FILLED, D("1.00"), D("1.24716"), D("7.00"), "48213402")]
    position = engine.position(cid)
    assert (position.lots, position.open_price) == (D("1.00"), D("1.24716"))
    # levels move with the average: 20 pips below and 40 pips above 1.24716
    assert (position.sl_price, position.tp_price) == (D("1.24516"), D("1.25116"))


def test_average_price_beyond_eight_decimals_is_rounded():
    engine = ExecutionEngine(TestClock(T0), SilentBroker())
    cid = intent(1).client_order_id
    engine.on_order_intent(intent(1, lots="0.03"))
    engine.on_broker_events([Filled(cid, "F1", D("0.01"), D("1.00001"), T0)])
    reports = engine.on_broker_events([Filled(cid, "F2", D("0.02"), D("1.00002"), T0)])
    # (0.0100001 + 0.0200004) / 0.03 = 1.0000166666... -> 1.00001667
    assert reports[0].status is S.FILLED and reports[0].avg_price == D("1.00001667")


def test_the_same_fill_twice_counts_once():
    engine = ExecutionEngine(TestClock(T0), SilentBroker())
    cid = intent(1).client_order_id
    engine.on_order_intent(intent(1))
    fill = Filled(cid, "F1", D("0.40"), D("1.1"), T0)
    assert len(engine.on_broker_events([fill])) == 1
    assert engine.on_broker_events([fill]) == []
    assert engine.order(cid).filled_lots == D("0.40")


def test_remainder_cancelled_finishes_a_partial_order_as_filled():
    engine = ExecutionEngine(TestClock(T0), SilentBroker())
    cid = intent(1).client_order_id
    engine.on_order_intent(intent(1))
    engine.on_broker_events([Filled(cid, "F1", D("0.40"), D("1.10000"), T0)])
    reports = engine.on_broker_events([Cancelled(cid, "no liquidity", T0)])
    assert [(r.status, r.filled_lots) for r in reports] == [(S.FILLED, D("0.40"))]
    assert reports[0].reason == "unfilled remainder 0.60 cancelled: no liquidity"
    assert engine.position(cid).lots == D("0.40")


def test_closing_a_partially_filled_position_closes_the_order():
    engine = ExecutionEngine(TestClock(T0), SilentBroker())
    cid = intent(1).client_order_id
    engine.on_order_intent(intent(1))
    engine.on_broker_events([Filled(cid, "F1", D("0.40"), D("1.10000"), T0)])
    outputs = engine.on_broker_events([Closed(cid, "C1", D("1.10100"), CloseReason.TP, T0 + timedelta(minutes=5))])
    assert [type(o) for o in outputs] == [ExecutionReport, TradeClosed]
    assert outputs[0].status is S.CLOSED
    # 10 pips on 0.40 lots of EURUSD: 0.00100 x 40,000 = 40.00 USD
    assert (outputs[1].lots, outputs[1].pips, outputs[1].pnl) == (D("0.40"), D("10.0"), D("40.00"))


# --- TIMEOUT and EXPIRED on the clock -----------------------------------------------------------------------------

def test_timeout_after_exactly_30_seconds_not_before():
    clock = TestClock(T0)
    broker = SilentBroker()
    engine = ExecutionEngine(clock, broker)
    engine.on_order_intent(intent(1))
    broker.written(len(broker.outbox()))
    assert engine.on_clock(T0 + timedelta(seconds=29.999)) == []
    assert engine.order(intent(1).client_order_id).status is S.SUBMITTED
    clock.advance(30)
    reports = engine.on_clock(clock.now())
    assert [(r.status, r.reason) for r in reports] == [(S.TIMEOUT, "no broker answer within 30 s")]
    assert engine.on_clock(clock.now() + timedelta(seconds=60)) == []  # once
    # the broker is told to drop it: a CANCEL row goes to the EA
    assert [(row.action.value, row.client_order_id) for row in broker.outbox()] == [
        ("CANCEL", intent(1).client_order_id)]


def test_an_acknowledged_order_does_not_time_out():
    clock = TestClock(T0)
    engine = ExecutionEngine(clock, SilentBroker())
    cid = intent(1).client_order_id
    engine.on_order_intent(intent(1))
    clock.advance(10)
    engine.on_broker_events([Acknowledged(cid, "48213377", clock.now())])
    assert engine.on_clock(T0 + timedelta(hours=1)) == []
    assert engine.order(cid).status is S.SUBMITTED


def test_timeout_is_configurable_and_counts_from_submission():
    clock = TestClock(T0)
    engine = ExecutionEngine(clock, SilentBroker(), ack_timeout=timedelta(seconds=5))
    clock.advance(100)
    engine.on_order_intent(intent(1))
    assert engine.on_clock(clock.now() + timedelta(seconds=4.999999)) == []
    assert [r.status for r in engine.on_clock(clock.now() + timedelta(seconds=5))] == [S.TIMEOUT]


def test_acknowledged_but_unfilled_order_expires_after_its_ttl():
    clock = TestClock(T0)
    engine = ExecutionEngine(clock, SilentBroker(), order_ttl=timedelta(minutes=5))
    cid = intent(1).client_order_id
    engine.on_order_intent(intent(1))
    engine.on_broker_events([Acknowledged(cid, "1", T0)])
    assert engine.on_clock(T0 + timedelta(minutes=4, seconds=59)) == []
    reports = engine.on_clock(T0 + timedelta(minutes=5))
    assert [(r.status, r.reason) for r in reports] == [(S.EXPIRED, "unfilled at the end of its time to live")]


# --- cancel -------------------------------------------------------------------------------------------------------

def test_cancel_an_unfilled_order_and_refuse_a_filled_one():
    from eafix.execution_engine.brokers import PaperBroker

    engine = ExecutionEngine(TestClock(T0), PaperBroker())  # no tick yet: the order waits
    engine.on_order_intent(intent(1))
    reports = engine.cancel_order(intent(1).client_order_id, "operator")
    assert [(r.status, r.reason) for r in reports] == [(S.CANCELLED, "operator")]
    with pytest.raises(OrderNotCancellableError):
        engine.cancel_order(intent(1).client_order_id)
    with pytest.raises(UnknownOrderError):
        engine.cancel_order("nope")


def test_every_report_is_a_valid_contract_event():
    engine = ExecutionEngine(TestClock(T0), SilentBroker())
    reports = engine.on_order_intent(intent(1))
    for report in reports:
        assert ExecutionReport.model_validate_json(report.model_dump_json()) == report
    assert all(r.symbol == "EURUSD" and r.client_order_id == intent(1).client_order_id for r in reports)
    assert Direction.LONG is intent(1).direction
