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

Replicas: bars and vectors are consumed by one replica (ordered, co-located leases: the same
replica reads both topics, which it must, to pair each vector with its bar); the others stand by.
Strategy state is in memory only; a replica that takes over starts from its (cold) state.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from eafix.contracts import CalendarGate, CalendarSignal, SystemRiskOff
from eafix.contracts.messaging import Messenger
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
    # per-symbol state only (closes, waiting vectors, each strategy's previous reading): the replicas
    # divide the bar/vector partitions between them
    bus = pipeline_bus(settings, parts, spread=True)
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
