"""indicator-engine as a process: ticks from the bus -> closed bars + IndicatorVectors on the bus.

Settings (besides the runtime's):
    SERVICE_TIMEFRAMES    JSON list of timeframes to build (default ["M1", "M5", "M15", "H1"])
    SERVICE_CURRENCIES    JSON list of the currencies of the strength index (default: the 8 majors)

A timer flushes every second, so a bar closes on time in a quiet market (no tick after its end).
Ticks and the timer go through one lock: bars and their vectors leave in close-time order.

Replicas: the tick topic is consumed by one replica (ordered, one partition); the others stand by
with empty state, and only the consuming replica flushes (one that lost its lease keeps open bars it
must not close). Bars and indicators live in memory only, so a replica that takes over starts its
series afresh (indicators warm up again: a new window_version tells consumers).
"""

from __future__ import annotations

from typing import Annotated

from prometheus_client import CollectorRegistry
from pydantic import Field, field_validator

from eafix.contracts import PriceTick
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


class IndicatorSettings(PipelineSettings):
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


def build(settings: IndicatorSettings) -> ServiceParts:
    parts = ServiceParts()
    clock = WallClock()
    replica = ActiveReplica(PriceTick.TOPIC, IndicatorStage.group)  # nothing to reload: memory only
    bus = pipeline_bus(settings, parts, on_acquired=replica.on_acquired)
    replica.attach(bus)
    engine = IndicatorEngine(timeframes=settings.timeframes, currencies=settings.currencies, clock=clock)
    stage_registry = CollectorRegistry()  # the stage's business metrics
    parts.collectors.append(stage_registry)
    stage = IndicatorStage(engine, Messenger(bus, settings.name, clock), registry=stage_registry)
    guard = StageGuard()  # no storage to reload; the lock orders the tick handler and the flush timer

    async def flush() -> None:
        if replica.active():
            await stage.flush()

    stage.subscribe(Subscriptions(bus, guard.wrap))
    parts.every("bar-flush", FLUSH_SECONDS, guard.wrap(flush))
    parts.routers.append(build_router(engine))
    parts.state.update(engine=engine, stage=stage, guard=guard, replica=replica)
    return parts
