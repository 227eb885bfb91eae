"""risk-manager as a process: Signal -> OrderIntent | RiskRejected; fills and closed trades update the
portfolio, which lives in PostgreSQL (schema `risk`).

Settings (besides the runtime's):
    SERVICE_RISK    JSON object of RiskConfig fields (account, sizing, limits, max_quote_age_seconds,
                    ...); default: RiskConfig(). Errors name the key: `SERVICE_RISK: risk_percent: ...`.
    SERVICE_CALENDAR_REQUIRED  reject (CALENDAR_BLACKOUT) a symbol calendar-ingestor has published no gate
                    for (default false; the chart sets it while calendar-ingestor is enabled)

Calendar: every replica follows `eafix.calendar.signals`; a signal decided while its symbol is in a
blackout window, or after the symbol's latest gate went stale, is rejected with CALENDAR_BLACKOUT.

State: at start the engine is rebuilt from the repository (`restore_engine`). The bus stage and the
HTTP routes always use the current engine (`stage.engine`), which is replaced, never mutated in
place, when it is reloaded:
- when this replica acquires a partition lease of one of its topics (bus `on_acquired`): it stood
  by while another replica changed the portfolio, so its memory is stale. The four topics (ticks,
  signals, execution reports, closed trades) are co-located: one replica consumes all of them.
- after a handler failed (e.g. PostgreSQL was down while its changes were stored): the next message
  reloads first, so a change that never reached storage is not kept in memory (nor re-decided from
  a state that storage does not have).
Handlers and reloads share one lock; the last quotes are carried into a reloaded engine.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from pydantic import Field

from eafix.contracts import CalendarGate, CalendarSignal
from eafix.contracts.messaging import Messenger
from eafix.risk_manager.app import build_router
from eafix.risk_manager.config import RiskConfig
from eafix.risk_manager.engine import RiskEngine
from eafix.risk_manager.repository import (
    InMemoryPortfolioRepository,
    PortfolioRepository,
    PostgresPortfolioRepository,
    restore_engine,
)
from eafix.risk_manager.stage import RiskStage
from eafix.runtime.clock import WallClock
from eafix.runtime.service import (
    PipelineSettings,
    ServiceParts,
    StageGuard,
    Subscriptions,
    json_model,
    pipeline_bus,
    pipeline_database,
)


class RiskSettings(PipelineSettings):
    risk: RiskConfig = Field(default_factory=RiskConfig)
    calendar_required: bool = False  # see signal-generator: a symbol without a calendar gate is rejected

    _risk = json_model("risk", RiskConfig)


SETTINGS = RiskSettings


def build(settings: RiskSettings) -> ServiceParts:
    parts = ServiceParts()
    clock = WallClock()
    config = settings.risk
    db = pipeline_database(settings, parts)
    repo: PortfolioRepository = PostgresPortfolioRepository(db.pool) if db is not None \
        else InMemoryPortfolioRepository()

    async def reload() -> None:  # `stage` is bound below, before anything can call this
        engine = await restore_engine(repo, config, clock, instruments=settings.instruments)
        engine.blackout = calendar
        for quote in stage.engine.quote_book.quotes():
            engine.on_tick(quote)
        stage.engine = engine

    calendar = CalendarGate(required=settings.calendar_required)
    guard = StageGuard(reload)
    bus = pipeline_bus(settings, parts, on_acquired=guard.reload)
    # the engine is a placeholder until the start step restores the stored portfolio
    stage_registry = CollectorRegistry()  # the stage's business metrics
    parts.collectors.append(stage_registry)
    stage = RiskStage(RiskEngine(config, clock, instruments=settings.instruments, track_changes=True),
                      Messenger(bus, settings.name, clock), repo, registry=stage_registry, calendar=calendar)
    subscriptions = Subscriptions(bus, guard.wrap, follow={CalendarSignal.TOPIC})
    stage.subscribe(subscriptions)
    subscriptions.run_in(parts)
    parts.add_step(guard.reload)  # after the pool opened (its step was added first)
    parts.routers.append(build_router(lambda: stage.engine))
    parts.state.update(stage=stage, guard=guard, repository=repo)
    return parts
