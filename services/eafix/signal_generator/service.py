"""signal-generator as a process: bars + indicator vectors -> Signal / SignalSuppressed on the bus.

Settings (besides the runtime's):
    SERVICE_STRATEGY_CONFIG   the strategies document itself as JSON (what the chart renders from
                              `signal-generator.config.strategy_config`); wins over the file
    SERVICE_STRATEGIES_FILE   strategies YAML (format: eafix.contracts.strategies); default: the
                              strategies shipped with the package. Bad strategies stop start-up with
                              one line naming the setting and every problem.

Risk-off latch (`eafix.system.risk_off`): every replica applies every message (it is read without a
consumer group, see TopicFollower), and at start the newest message restores the latch, so a
restarted or newly scaled replica does not trade through an active risk-off. An operator reset
(`POST /api/v1/risk-off/reset`) releases the latch of the replica that served it and publishes
SystemRiskOff(active=false, source="operator") so that every other replica releases too.

Calendar (`eafix.calendar.signals`, followed like the risk-off latch): a vector whose bar time falls
in a blackout window of its symbol, or after the symbol's latest gate went stale, is suppressed with
CALENDAR_BLACKOUT. SERVICE_CALENDAR_REQUIRED (default false; the chart sets it while calendar-ingestor
is enabled) also suppresses a symbol calendar-ingestor has said nothing about.

Replicas divide the symbol partitions (SERVICE_BUS_PARTITIONS; co-located leases: partition n of
the bars and of the vectors is read by the same replica, which it must be, to pair each vector with
its bar); with one partition one replica consumes and the others stand by. A replica that acquires a
partition first rebuilds what its previous reader held in memory and had not finished, from what the
group handled there (`take_over`): the closes of recent bars (for vectors still to come) and the
vectors whose bar nobody handled yet (they wait for it). Strategy state (each strategy's previous
reading) is in memory only and starts cold on a partition taken over.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from eafix.contracts import Bar, CalendarGate, CalendarSignal, IndicatorVector, SystemRiskOff
from eafix.contracts.messaging import Messenger
from eafix.runtime.bus import RedisStreamsBus, stream_names
from eafix.runtime.clock import WallClock
from eafix.runtime.service import PipelineSettings, ServiceParts, Subscriptions, pipeline_bus, setting_error
from eafix.signal_generator.app import ResetRequest, build_router
from eafix.signal_generator.config import (
    SignalGeneratorConfig,
    StrategyConfigError,
    load_default_strategies,
    load_strategies_file,
    load_strategies_text,
)
from eafix.signal_generator.domain import RiskOffState, SignalEngine
from eafix.signal_generator.stage import SignalStage

RESET_SOURCE = "operator"
TAKEOVER_HISTORY = 1024  # handled bars and vectors read back per partition taken over (a few read batches)


class SignalSettings(PipelineSettings):
    strategy_config: str | None = None  # JSON text of the strategies document (not *_FILE: see below)
    strategies_file: Path | None = None
    calendar_required: bool = False


SETTINGS = SignalSettings


def load_strategies(settings: SignalSettings) -> SignalGeneratorConfig:
    """The configured strategies; a SettingsError naming SERVICE_STRATEGIES_FILE if they are invalid."""
    # Named strategy_config, not strategies: a setting X also reads SERVICE_X_FILE, which would
    # collide with SERVICE_STRATEGIES_FILE (a path, not the document).
    setting = "strategy_config" if settings.strategy_config else "strategies_file"
    try:
        if settings.strategy_config:
            # JSON is YAML: the same loader reads the document the chart renders inline
            return load_strategies_text(settings.strategy_config, source="SERVICE_STRATEGY_CONFIG")
        if settings.strategies_file is not None:
            return load_strategies_file(settings.strategies_file)
    except StrategyConfigError as exc:
        problems = "; ".join(exc.errors)
        raise setting_error(setting, f"invalid strategies in {exc.source}: {problems}") from None
    return load_default_strategies()


def build(settings: SignalSettings) -> ServiceParts:
    parts = ServiceParts()
    clock = WallClock()
    async def take_over(topic: str, group: str, stream: str) -> None:  # bound below, before the bus runs
        if topic in (Bar.TOPIC, IndicatorVector.TOPIC) and isinstance(bus, RedisStreamsBus):
            await messenger.publish(await take_over_partition(bus, engine, group, topic, stream))

    # per-symbol state only (closes, waiting vectors, each strategy's previous reading): the replicas
    # divide the bar/vector partitions between them
    bus = pipeline_bus(settings, parts, spread=True, on_acquired=take_over)
    messenger = Messenger(bus, settings.name, clock)
    calendar = CalendarGate(required=settings.calendar_required)
    engine = SignalEngine(load_strategies(settings), clock, instruments=settings.instruments, blackout=calendar)
    stage_registry = CollectorRegistry()  # the stage's business metrics
    parts.collectors.append(stage_registry)
    stage = SignalStage(engine, messenger, registry=stage_registry, calendar=calendar)
    subscriptions = Subscriptions(bus, follow={SystemRiskOff.TOPIC, CalendarSignal.TOPIC})
    stage.subscribe(subscriptions)
    subscriptions.run_in(parts)

    async def release_everywhere(previous: RiskOffState, request: ResetRequest) -> None:
        who = f" by {request.operator}" if request.operator else ""
        reason = f"operator reset{who}" + (f": {request.reason}" if request.reason else "")
        await messenger.publish([SystemRiskOff(active=False, reason=reason[:500], source=RESET_SOURCE)])

    parts.routers.append(build_router(engine, on_reset=release_everywhere))
    parts.state.update(engine=engine, stage=stage, messenger=messenger, followers=subscriptions.followers)
    return parts


async def take_over_partition(bus: RedisStreamsBus, engine: SignalEngine, group: str, topic: str,
                              stream: str) -> list:
    """Rebuild what the previous reader of `stream`'s partition held and had not evaluated: its bars
    and vectors are separate streams, so it may have handled a bar whose vector comes to us, or a
    vector whose bar comes to us. From what the group handled there: the closes of the bars, and the
    vectors newer than the newest handled bar of their symbol (their bar was handled by no one; the
    older ones were evaluated with theirs). Returns what the engine makes of them now (a vector we
    already hold meeting a restored close), to be published."""
    n = stream_names(topic, bus.config.partitions_for(topic)).index(stream)
    bars = [Bar.model_validate(e["data"]) for e in await bus.handled(Bar.TOPIC, group, TAKEOVER_HISTORY, partition=n)
            if e.get("event_type") == "Bar"]
    vectors = [IndicatorVector.model_validate(e["data"])
               for e in await bus.handled(IndicatorVector.TOPIC, group, TAKEOVER_HISTORY, partition=n)
               if e.get("event_type") == "IndicatorVector"]
    newest: dict[tuple[str, str], object] = {}
    outputs: list = []
    for bar in sorted(bars, key=lambda b: b.ts_close):
        newest[bar.symbol, bar.timeframe] = bar.ts_close
        outputs += engine.on_bar(bar)
    for vector in sorted(vectors, key=lambda v: v.ts):
        last = newest.get((vector.symbol, vector.timeframe))
        if last is None or vector.ts > last:  # type: ignore[operator]
            outputs += engine.on_indicators(vector)
    return outputs
