"""The business metrics the pipeline stages export (the names the alert rules query)."""

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from prometheus_client import CollectorRegistry

from eafix.contracts import PriceTick, Signal
from eafix.contracts.messaging import Messenger
from eafix.execution_engine.brokers import PaperBroker
from eafix.execution_engine.domain import ExecutionEngine
from eafix.execution_engine.gateway import ExecutionGateway
from eafix.execution_engine.repository import InMemoryExecutionRepository
from eafix.execution_engine.stage import ExecutionStage
from eafix.risk_manager.config import RiskConfig
from eafix.risk_manager.engine import RiskEngine
from eafix.risk_manager.stage import RiskStage
from eafix.runtime.bus.memory import InMemoryBus
from eafix.runtime.clock import TestClock
from service.factories import signal

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def long_signal(signal_id: str) -> Signal:
    return signal(signal_id, entry="1.10000", sl="20.0", tp="40.0", at=T0)


def test_risk_and_execution_metrics_count_decisions_orders_and_fills():
    async def scenario():
        registry = CollectorRegistry()
        clock = TestClock(T0)
        bus = InMemoryBus()
        feed = Messenger(bus, "test-feed", clock, in_process=True)
        RiskStage(RiskEngine(RiskConfig(), clock), Messenger(bus, "risk-manager", clock, in_process=True),
                  registry=registry).subscribe(bus)
        await feed.publish([PriceTick(symbol="EURUSD", ts=T0, bid="1.10000", ask="1.10010", volume=None)])
        await bus.drain()
        # execution joins after that quote: the paper broker fills the order at the next tick
        messenger = Messenger(bus, "execution-engine", clock, in_process=True)
        gateway = ExecutionGateway(ExecutionEngine(clock, PaperBroker(), record_changes=False),
                                   InMemoryExecutionRepository(), messenger)
        ExecutionStage(gateway, registry=registry).subscribe(bus)
        await feed.publish([long_signal("S-1"), long_signal("S-2")])  # the second: one position per symbol -> rejected
        await bus.drain()
        clock.advance(1)
        await feed.publish([PriceTick(symbol="EURUSD", ts=clock.now(), bid="1.10002", ask="1.10012", volume=None)])
        await bus.drain()
        return registry

    registry = asyncio.run(scenario())

    def value(name, **labels):
        return registry.get_sample_value(name, labels)

    assert value("eafix_risk_decisions_total", outcome="approved") == 1
    assert value("eafix_risk_decisions_total", outcome="rejected") == 1
    assert value("eafix_risk_check_duration_seconds_count") == 2
    assert value("eafix_orders_submitted_total", symbol="EURUSD", broker="paper") == 1
    assert value("eafix_orders_filled_total", symbol="EURUSD", broker="paper") == 1
    assert value("eafix_order_execution_seconds_count", broker="paper") == 1
    # the intent and its fill are one clock second apart
    assert value("eafix_order_execution_seconds_sum", broker="paper") == Decimal(1)


class FlakyBus(InMemoryBus):
    """Fails the first `failures` publish calls, like a Redis connection that drops."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def publish_many(self, messages):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("redis went away")
        return await super().publish_many(messages)


def test_execution_outputs_of_a_failed_publish_go_out_on_the_next_call():
    from eafix.backtest.collector import Collector
    from eafix.contracts import ExecutionReport, OrderIntent

    async def scenario(failures: int):
        clock = TestClock(T0)
        quiet = InMemoryBus()
        risk = RiskEngine(RiskConfig(), clock)
        risk.on_tick(PriceTick(symbol="EURUSD", ts=T0, bid="1.10000", ask="1.10010", volume=None))
        intent = risk.on_signal(long_signal("S-9"))
        assert isinstance(intent, OrderIntent)
        bus = FlakyBus(failures)
        stage = ExecutionStage(ExecutionGateway(ExecutionEngine(clock, PaperBroker(), record_changes=False),
                                                InMemoryExecutionRepository(),
                                                Messenger(bus, "execution-engine", clock, in_process=True)))
        collector = Collector([ExecutionReport.TOPIC])
        collector.subscribe(bus)
        message = Messenger(quiet, "risk-manager", clock, in_process=True).encode(
            Messenger(quiet, "risk-manager", clock, in_process=True).envelope(intent))
        if failures:  # the outputs stay in the outbox; the handler does not fail (they are stored)
            await stage.on_order_intent(message)
            await bus.drain()
            assert collector.events[ExecutionReport.TOPIC] == []
        await stage.on_order_intent(message)  # (re)delivery: the engine answers nothing new the 2nd time
        await bus.drain()
        return [(str(r.client_order_id), str(r.status)) for r in collector.events[ExecutionReport.TOPIC]]

    expected = asyncio.run(scenario(0))
    assert [status for _, status in expected][:2] == ["PENDING", "SUBMITTED"]
    assert asyncio.run(scenario(1)) == expected
