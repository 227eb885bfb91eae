"""indicator-engine as a process: ticks from the bus -> closed bars + IndicatorVectors on the bus.

Settings (besides the runtime's):
    SERVICE_TIMEFRAMES    JSON list of timeframes to build (default ["M1", "M5", "M15", "H1"])
    SERVICE_CURRENCIES    JSON list of the currencies of the strength index (default: the 8 majors)
    SERVICE_WARMUP_HISTORY  how many of the newest bars on `eafix.price.bars` seed the indicators
                          when this replica starts consuming (default 20000; 0: none)

A timer flushes every second, so a bar closes on time in a quiet market (no tick after its end).
Ticks and the timer go through one lock: bars and their vectors leave in close-time order.

Warm-up: whenever this replica starts consuming the ticks (at start, and when it takes the lease
over from another replica), the bars this service published are read back from the bar stream (the
newest SERVICE_WARMUP_HISTORY, all partitions) into a polars frame and run through the incremental
indicators (`IndicatorEngine.warm_up`), so the series continue where they stopped instead of warming
up again; bars already in a series are skipped. Bars still open at a takeover are lost (the new
owner starts them with its first tick).

Replicas: the tick topic is consumed by one replica (ordered, one partition); the others stand by,
and only the consuming replica flushes (one that lost its lease keeps open bars it must not close).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from prometheus_client import CollectorRegistry
from pydantic import Field, field_validator

from eafix.contracts import Bar, PriceTick
from eafix.contracts.messaging import Messenger
from eafix.contracts.primitives import Currency, Timeframe
from eafix.indicator_engine.app import build_router
from eafix.indicator_engine.domain import DEFAULT_TIMEFRAMES, IndicatorEngine
from eafix.indicator_engine.stage import IndicatorStage
from eafix.indicator_engine.strength import MAJORS
from eafix.runtime.clock import WallClock
from eafix.runtime.service import (
    ActiveReplica,
    PipelineSettings,
    ServiceParts,
    StageGuard,
    Subscriptions,
    pipeline_bus,
)

FLUSH_SECONDS = 1.0
log = logging.getLogger(__name__)


class IndicatorSettings(PipelineSettings):
    warmup_history: int = Field(20_000, ge=0, le=1_000_000)
    timeframes: Annotated[list[Timeframe], Field(min_length=1)] = Field(
        default_factory=lambda: list(DEFAULT_TIMEFRAMES))
    currencies: Annotated[list[Currency], Field(min_length=2)] = Field(default_factory=lambda: list(MAJORS))

    @field_validator("timeframes", "currencies")
    @classmethod
    def _distinct(cls, value: list) -> list:
        if len(set(value)) != len(value):
            raise ValueError("lists a value twice")
        return value


SETTINGS = IndicatorSettings


def warm_up(engine: IndicatorEngine, bars: list[dict[str, Any]]) -> int:
    """Seed `engine` from Bar envelopes (any order, other timeframes ignored); returns how many
    symbol/timeframe series received bars."""
    import polars as pl  # only indicator-engine's image carries polars

    rows = [e["data"] for e in bars if e.get("event_type") == "Bar" and isinstance(e.get("data"), dict)]
    if not rows:
        return 0
    frame = (pl.DataFrame(rows, infer_schema_length=None)
             .select("symbol", "timeframe", pl.col("ts_close").str.to_datetime(time_zone="UTC"), "high", "low", "close")
             .filter(pl.col("timeframe").is_in([str(t) for t in engine.bars.timeframes])))
    groups = frame.partition_by("symbol", "timeframe", as_dict=True)
    for (symbol, timeframe), history in groups.items():
        engine.warm_up(str(symbol), str(timeframe), history)
    return len(groups)


def build(settings: IndicatorSettings) -> ServiceParts:
    parts = ServiceParts()
    clock = WallClock()
    engine = IndicatorEngine(timeframes=settings.timeframes, currencies=settings.currencies, clock=clock)

    async def reload() -> None:  # `bus` and `guard` are bound below, before the bus can call this
        if settings.warmup_history:
            warmed = warm_up(engine, await bus.history(Bar.TOPIC, settings.warmup_history))
            log.info("indicators warmed up from the bar stream", extra={"series": warmed})

    guard = StageGuard(reload)  # also orders the tick handler and the flush timer
    replica = ActiveReplica(PriceTick.TOPIC, IndicatorStage.group, guard.reload)
    bus = pipeline_bus(settings, parts, on_acquired=replica.on_acquired)
    replica.attach(bus)
    stage_registry = CollectorRegistry()  # the stage's business metrics
    parts.collectors.append(stage_registry)
    stage = IndicatorStage(engine, Messenger(bus, settings.name, clock), registry=stage_registry)

    async def flush() -> None:
        if replica.active():
            await stage.flush()

    stage.subscribe(Subscriptions(bus, guard.wrap))
    parts.every("bar-flush", FLUSH_SECONDS, guard.wrap(flush))
    parts.routers.append(build_router(engine))
    parts.state.update(engine=engine, stage=stage, guard=guard, replica=replica)
    return parts
