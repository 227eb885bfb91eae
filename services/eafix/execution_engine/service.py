"""execution-engine as a process: OrderIntent -> broker -> ExecutionReports and TradeClosed; orders,
fills, positions and trades in PostgreSQL (schemas `orders`, `trades`).

Settings (besides the runtime's):
    SERVICE_BROKER             `paper` (default: fills at the live bid/ask, SL/TP on every tick) or `mt4`
    SERVICE_MT4_BRIDGE_DIR     with `mt4`: the directory shared with the EA: `orders/` (we write),
                               `fills/` (the EA writes), `state/bridge-state.json` (file sequence numbers)
    SERVICE_MT4_POLL_SECONDS   how often orders are written and fills read (default 0.5)
    SERVICE_COSTS              JSON {slippage_pips, commission_per_lot, close_commission_per_lot} (paper)
    SERVICE_BROKER_FAULTS      JSON {reject_every, ignore_every} (paper, off by default): a fault drill,
                               the paper broker rejects or leaves unanswered every n-th order
                               (brokers.FaultSchedule)
    SERVICE_ACK_TIMEOUT_SECONDS  an order the broker has not answered this long is TIMEOUT (default 30)

Every engine call goes through one ExecutionGateway (one lock: call, store, then publish): the bus
stage (intents, ticks), the timers and the HTTP routes. A redelivered OrderIntent is a no-op, also
for keys the engine forgot (the gateway asks the repository): one order per idempotency key.
The outputs go through a transactional outbox (`orders.outbox`): stored with the changes of the
call that produced them, then published and marked; the relay publishes what a crash or a failed
publish left unpublished: when this replica takes the orders over (the reload on acquiring a lease,
before it consumes; a single in-process instance at start), and every RELAY_SECONDS while it consumes.

Timers: every second `on_clock` times out orders the broker did not answer (TIMEOUT); every
RELAY_SECONDS the outbox relay; with `mt4` the bridge writes the orders file and applies the EA's fills.

Replicas: intents and ticks are co-located and consumed by one replica. The engine is restored from
the repository at start and replaced by a freshly restored one whenever this replica acquires a
partition lease (it stood by while another replica changed the orders), and the outbox rows left
unpublished are relayed (a standby does not relay). Timers (the relay too), the MT4 bridge and the
manual close run only on the replica that consumes (a standby answers the close with 503), so a
stale standby never times out, fills or closes anything.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from prometheus_client import CollectorRegistry
from pydantic import Field, ValidationInfo, field_validator

from eafix.contracts import OrderIntent
from eafix.contracts.messaging import Messenger
from eafix.contracts.primitives import CloseReason
from eafix.execution_engine.app import build_router
from eafix.execution_engine.brokers import Costs, FaultSchedule, PaperBroker
from eafix.execution_engine.domain import Broker, ExecutionEngine, ExecutionError
from eafix.execution_engine.gateway import CloseResult, ExecutionGateway
from eafix.execution_engine.mt4_bridge import MT4Broker, MT4FileBridge
from eafix.execution_engine.repository import (
    ExecutionRepository,
    InMemoryExecutionRepository,
    PostgresExecutionRepository,
)
from eafix.execution_engine.stage import ExecutionStage
from eafix.runtime.bus import RedisStreamsBus
from eafix.runtime.clock import Clock, WallClock
from eafix.runtime.service import (
    ActiveReplica,
    PipelineSettings,
    ServiceParts,
    StageGuard,
    json_model,
    pipeline_bus,
    pipeline_database,
)

CLOCK_SECONDS = 1.0
RELAY_SECONDS = 5.0  # outbox rows whose publish failed go out within this
PRUNE_SECONDS = 600.0  # how often published outbox rows are deleted ...
PRUNE_AFTER_SECONDS = 3600.0  # ... once they are this old (recent ones stay for inspection)
GROUP = ExecutionStage.group


class ExecutionSettings(PipelineSettings):
    broker: Literal["paper", "mt4"] = "paper"
    mt4_bridge_dir: Path | None = Field(None, validate_default=True)
    mt4_poll_seconds: float = Field(0.5, gt=0, le=60)
    costs: Costs = Field(default_factory=Costs)
    broker_faults: FaultSchedule = Field(default_factory=FaultSchedule)
    ack_timeout_seconds: float = Field(30.0, gt=0, le=3600)

    _costs = json_model("costs", Costs)
    _broker_faults = json_model("broker_faults", FaultSchedule)

    @field_validator("mt4_bridge_dir")
    @classmethod
    def _bridge_dir_for_mt4(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if info.data.get("broker") == "mt4" and value is None:
            raise ValueError("required when SERVICE_BROKER is mt4 (the directory shared with the EA)")
        return value


SETTINGS = ExecutionSettings


class StandbyError(ExecutionError):
    """This replica does not consume the orders now (another one does)."""


class ServiceGateway(ExecutionGateway):
    """The process's gateway: only the replica that consumes the orders may close a position by hand."""

    def __init__(self, engine: ExecutionEngine, repo: ExecutionRepository, replica: ActiveReplica,
                 messenger: Messenger) -> None:
        super().__init__(engine, repo, messenger)
        self._replica = replica

    def relays_on_reload(self) -> bool:
        # a reload on lease acquisition runs while the stream is owned but not yet marked ready; the
        # start-up reload of a replica that owns nothing (a standby) leaves the relay to the owner
        bus = self._replica.bus
        return not isinstance(bus, RedisStreamsBus) or bool(bus.owned_streams(OrderIntent.TOPIC, GROUP))

    async def close_position(self, position_id: str, reason: CloseReason = CloseReason.MANUAL) -> CloseResult:
        if not self._replica.active():
            raise StandbyError("this replica is standing by (another replica executes the orders); retry")
        return await super().close_position(position_id, reason)


def _broker(settings: ExecutionSettings, clock: Clock) -> Broker:
    if settings.broker == "mt4":
        return MT4Broker()
    # tickets unique across restarts: the process start time in the prefix
    return PaperBroker(settings.costs, instruments=settings.instruments,
                       ticket_prefix=f"P{clock.now():%Y%m%d%H%M%S}-", faults=settings.broker_faults)


def build(settings: ExecutionSettings) -> ServiceParts:
    parts = ServiceParts()
    clock = WallClock()
    broker = _broker(settings, clock)
    db = pipeline_database(settings, parts)
    repo: ExecutionRepository = PostgresExecutionRepository(db.pool) if db is not None \
        else InMemoryExecutionRepository()

    def new_engine() -> ExecutionEngine:
        return ExecutionEngine(clock, broker, instruments=settings.instruments,
                               ack_timeout=timedelta(seconds=settings.ack_timeout_seconds))

    async def reload() -> None:  # `gateway` is bound below, before anything can call this
        await gateway.replace_engine(new_engine())

    guard = StageGuard(reload)  # coalesces the reloads; the gateway's lock serialises the engine calls
    replica = ActiveReplica(OrderIntent.TOPIC, GROUP, guard.reload)
    bus = pipeline_bus(settings, parts, on_acquired=replica.on_acquired)
    replica.attach(bus)
    gateway = ServiceGateway(new_engine(), repo, replica, Messenger(bus, settings.name, clock))
    stage_registry = CollectorRegistry()  # the stage's business metrics
    parts.collectors.append(stage_registry)
    stage = ExecutionStage(gateway, registry=stage_registry, broker_name=settings.broker)
    stage.subscribe(bus)
    parts.add_step(guard.reload)  # restore from the repository once the pool is open

    async def on_clock() -> None:
        if replica.active():
            await stage.on_clock()

    parts.every("order-timeouts", CLOCK_SECONDS, on_clock)

    async def relay() -> None:
        if replica.active():
            await gateway.relay()

    parts.every("outbox-relay", RELAY_SECONDS, relay)

    async def prune() -> None:
        if replica.active():
            await repo.prune_published(PRUNE_AFTER_SECONDS)

    parts.every("outbox-prune", PRUNE_SECONDS, prune)

    if settings.broker == "mt4":
        assert isinstance(broker, MT4Broker) and settings.mt4_bridge_dir is not None
        directory = settings.mt4_bridge_dir

        async def open_bridge() -> None:  # creates the directories, reads the state file
            parts.state["mt4_bridge"] = MT4FileBridge(directory / "orders", directory / "fills",
                                                      directory / "state" / "bridge-state.json", clock)

        async def bridge_cycle() -> None:
            if not replica.active():
                return
            bridge: MT4FileBridge = parts.state["mt4_bridge"]
            async with gateway.lock:
                bridge.flush(broker)  # the outbox of the orders submitted since the last cycle
            batch = bridge.poll_fills()
            if batch.events:  # stored with their outputs (the outbox), then published
                await gateway.run(lambda: gateway.engine.on_broker_events(batch.events))
            if batch.files:
                bridge.acknowledge(batch)  # only once the fills are applied and stored

        parts.add_step(open_bridge)
        parts.every("mt4-bridge", settings.mt4_poll_seconds, bridge_cycle)

    parts.routers.append(build_router(gateway))
    parts.state.update(gateway=gateway, stage=stage, replica=replica, guard=guard, broker=broker, repository=repo)
    return parts


__all__ = ["SETTINGS", "ExecutionSettings", "ServiceGateway", "StandbyError", "build"]
