"""indicator-engine as a process: ticks from the bus -> closed bars + IndicatorVectors on the bus.

Settings (besides the runtime's):
    SERVICE_TIMEFRAMES    JSON list of timeframes to build (default ["M1", "M5", "M15", "H1"])
    SERVICE_CURRENCIES    JSON list of the currencies of the strength index (default: the 8 majors)
    SERVICE_WARMUP_HISTORY  how many of the newest bars on `eafix.price.bars` seed the indicators
                          when this replica starts consuming (default 20000; 0: none)
    SERVICE_STRATEGY_CONFIG / SERVICE_STRATEGIES_FILE  the strategies document signal-generator
                          runs (the same settings, the same document: the chart checks both get
                          it); the parameterized indicators its enabled strategies declare are
                          computed besides the fixed set. Unset: the fixed set only (all that the
                          shipped strategies read). Bad strategies stop start-up naming the setting.
    SERVICE_BAR_CLOSE_GRACE_SECONDS  the timer closes a bar only this long after its end (default 0);
                          a replay of history sets it beyond its span, so that only the next tick
                          closes a bar, as in `eafix backtest` (the fault suite compares the two)

A timer flushes every second, so a bar closes on time in a quiet market (no tick after its end).
Ticks and the timer go through one lock: bars and their vectors leave in close-time order.

Warm-up: whenever this replica starts consuming the ticks (at start, and when it takes the lease
over from another replica), and after a handler failed (what it changed in memory is dropped), the
bars this service published are read back from the bar stream (the newest SERVICE_WARMUP_HISTORY,
all partitions) into a polars frame and run through the incremental indicators
(`IndicatorEngine.warm_up`), so the series continue where they stopped instead of warming up again;
bars already in a series are skipped. Then the bars still open are rebuilt from the ticks
this group had handled (acknowledged) before, the newest SERVICE_RESTORE_TICKS (default 100000), from
the start of the longest timeframe's bar: a restart or a takeover continues the open bars instead of
starting them again with the next tick (ticks still pending come again and are handled as usual). A
bar that began before the oldest restored tick is continued from that tick.

Replicas: the tick topic is consumed by one replica (ordered, one partition); the others stand by,
and only the consuming replica flushes (one that lost its lease keeps open bars it must not close).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from prometheus_client import CollectorRegistry
from pydantic import Field, field_validator

from eafix.contracts import Bar, PriceTick
from eafix.contracts.indicator_specs import IndicatorSpec
from eafix.contracts.messaging import Messenger
from eafix.contracts.primitives import Currency, Timeframe
from eafix.contracts.strategies import StrategyConfigError, load_strategies_file, load_strategies_text
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
    setting_error,
)

FLUSH_SECONDS = 1.0
log = logging.getLogger(__name__)


class IndicatorSettings(PipelineSettings):
    warmup_history: int = Field(20_000, ge=0, le=1_000_000)
    restore_ticks: int = Field(100_000, ge=0, le=1_000_000)
    bar_close_grace_seconds: float = Field(0.0, ge=0)
    strategy_config: str | None = None  # JSON text of the strategies document (signal-generator's setting)
    strategies_file: Path | None = None
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


def ticks_of(envelopes: list[dict[str, Any]]) -> list[PriceTick]:
    """The ticks of tick envelopes read newest first (per partition: a symbol's ticks are in one), oldest
    first; an entry that is no valid tick was dead-lettered when it was consumed and is skipped."""
    ticks = []
    for envelope in reversed(envelopes):
        try:
            ticks.append(PriceTick.model_validate(envelope["data"]))
        except (KeyError, TypeError, ValueError):
            continue
    return ticks


def declared_indicators(settings: IndicatorSettings) -> frozenset[IndicatorSpec]:
    """What the configured strategies read; a SettingsError naming the setting if they are invalid."""
    setting = "strategy_config" if settings.strategy_config else "strategies_file"
    try:
        if settings.strategy_config:
            return load_strategies_text(settings.strategy_config, source="SERVICE_STRATEGY_CONFIG").indicators()
        if settings.strategies_file is not None:
            return load_strategies_file(settings.strategies_file).indicators()
    except StrategyConfigError as exc:
        raise setting_error(setting, f"invalid strategies in {exc.source}: {'; '.join(exc.errors)}") from None
    return frozenset()


def build(settings: IndicatorSettings) -> ServiceParts:
    parts = ServiceParts()
    clock = WallClock()
    engine = IndicatorEngine(timeframes=settings.timeframes, currencies=settings.currencies, clock=clock,
                             indicators=declared_indicators(settings))

    async def reload() -> None:  # `bus` and `guard` are bound below, before the bus can call this
        # at a takeover, and after a handler failed (a bar it closed may not have been published):
        # rebuilt from what the streams hold, never continued from memory
        engine.clear(series=bool(settings.warmup_history))
        if settings.warmup_history:
            warmed = warm_up(engine, await bus.history(Bar.TOPIC, settings.warmup_history))
            log.info("indicators warmed up from the bar stream", extra={"series": warmed})
        if settings.restore_ticks:
            handled = await bus.handled(PriceTick.TOPIC, IndicatorStage.group, settings.restore_ticks)
            restored = engine.bars.restore(ticks_of(handled))
            log.info("open bars rebuilt from the ticks handled before", extra={"ticks": restored})

    guard = StageGuard(reload)  # also orders the tick handler and the flush timer
    replica = ActiveReplica(PriceTick.TOPIC, IndicatorStage.group, guard.reload)
    bus = pipeline_bus(settings, parts, on_acquired=replica.on_acquired)
    replica.attach(bus)
    stage_registry = CollectorRegistry()  # the stage's business metrics
    parts.collectors.append(stage_registry)
    stage = IndicatorStage(engine, Messenger(bus, settings.name, clock), registry=stage_registry)

    grace = timedelta(seconds=settings.bar_close_grace_seconds)

    async def flush() -> None:
        if replica.active():
            await stage.flush(clock.now() - grace)

    stage.subscribe(Subscriptions(bus, guard.wrap))
    parts.every("bar-flush", FLUSH_SECONDS, guard.wrap(flush))
    parts.routers.append(build_router(engine))
    parts.state.update(engine=engine, stage=stage, guard=guard, replica=replica)
    return parts
