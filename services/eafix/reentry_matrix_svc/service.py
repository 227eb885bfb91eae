"""reentry-matrix-svc as a process: closed trades -> re-entry decisions (eafix.reentry.decisions), due
re-entries -> Signals (1.1) for risk-manager; the chain ledger in PostgreSQL (schema `reentry`).

Settings (besides the runtime's):
    SERVICE_MATRIX_FILE      a matrix YAML (schemas/reentry/matrix.v1.schema.json) replacing the shipped
                             default; a bad file stops the start with the path and the failing key
    SERVICE_LEDGER           JSON {cooldown_minutes, per_hour, per_day, duplicate_seconds}
    SERVICE_RESTORE_HOURS    how far back a restart reloads origins, orders and decisions (default 48)

Proximity: every replica follows `eafix.calendar.signals`; a trade is keyed by its symbol's proximity
as last published (NONE when calendar-ingestor said nothing or the gate is stale).

State: rebuilt from the repository at start and whenever this replica acquires a lease of its topics
(it stood by while another replica decided). Scheduled re-entries are rows with a due time, so a
restart keeps them; every CLOCK_SECONDS the replica that consumes the closed trades publishes those
due (a Signal id is RE-<trade id>: a second copy is decided once by risk-manager).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict, Field, field_validator

from eafix.contracts import CalendarGate, CalendarSignal, TradeClosed
from eafix.contracts.messaging import Messenger
from eafix.reentry_matrix_svc.app import build_router
from eafix.reentry_matrix_svc.engine import ReentryEngine
from eafix.reentry_matrix_svc.ledger import Ledger, LedgerConfig
from eafix.reentry_matrix_svc.matrix import DEFAULT_MATRIX, Matrix, MatrixError, load_matrix
from eafix.reentry_matrix_svc.repository import (
    InMemoryReentryRepository,
    PostgresReentryRepository,
    ReentryRepository,
)
from eafix.reentry_matrix_svc.stage import ReentryStage
from eafix.reentry_matrix_svc.wire import calendar_proximity
from eafix.runtime.clock import WallClock
from eafix.runtime.service import (
    ActiveReplica,
    PipelineSettings,
    ServiceParts,
    StageGuard,
    Subscriptions,
    json_model,
    pipeline_bus,
    pipeline_database,
)

CLOCK_SECONDS = 1.0
GROUP = ReentryStage.group


class LedgerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cooldown_minutes: float = Field(15, ge=0, le=1440)
    per_hour: int = Field(5, ge=0, le=1000)
    per_day: int = Field(5, ge=0, le=10000)
    duplicate_seconds: float = Field(300, ge=0, le=86400)

    def config(self) -> LedgerConfig:
        return LedgerConfig(timedelta(minutes=self.cooldown_minutes), self.per_hour, self.per_day,
                            self.duplicate_seconds)


class ReentrySettings(PipelineSettings):
    matrix_file: Path = DEFAULT_MATRIX
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    restore_hours: float = Field(48, gt=0, le=24 * 31)

    _ledger = json_model("ledger", LedgerSettings)

    @field_validator("matrix_file")
    @classmethod
    def _readable_matrix(cls, value: Path) -> Path:
        try:
            load_matrix(value)
        except OSError as exc:
            raise ValueError(f"cannot read {value}: {exc.strerror}") from None
        except MatrixError as exc:
            raise ValueError(str(exc)) from None
        return value

    def matrix(self) -> Matrix:
        return load_matrix(self.matrix_file)


SETTINGS = ReentrySettings


def build(settings: ReentrySettings) -> ServiceParts:
    parts = ServiceParts()
    clock = WallClock()
    matrix = settings.matrix()
    db = pipeline_database(settings, parts)
    repo: ReentryRepository = PostgresReentryRepository(db.pool) if db is not None \
        else InMemoryReentryRepository()

    calendar = CalendarGate()

    def new_engine() -> ReentryEngine:
        return ReentryEngine(matrix, clock, ledger=Ledger(settings.ledger.config()),
                             proximity=calendar_proximity(calendar))

    async def reload() -> None:  # `stage` is bound below, before anything can call this
        engine = new_engine()
        engine.restore(await repo.load(clock.now() - timedelta(hours=settings.restore_hours)))
        stage.engine = engine

    guard = StageGuard(reload)
    replica = ActiveReplica(TradeClosed.TOPIC, GROUP, guard.reload)
    bus = pipeline_bus(settings, parts, on_acquired=replica.on_acquired)
    replica.attach(bus)
    registry = CollectorRegistry()
    parts.collectors.append(registry)
    stage = ReentryStage(new_engine(), Messenger(bus, settings.name, clock), repo, calendar=calendar,
                         registry=registry)
    subscriptions = Subscriptions(bus, guard.wrap, follow={CalendarSignal.TOPIC})
    stage.subscribe(subscriptions)
    subscriptions.run_in(parts)
    parts.add_step(guard.reload)  # after the pool opened (its step was added first)

    async def publish_due() -> None:
        await stage.on_clock()

    guarded_publish_due = guard.wrap(publish_due)  # never while a message is handled or state reloads

    async def due_reentries() -> None:
        if replica.active():
            await guarded_publish_due()

    parts.every("due-reentries", CLOCK_SECONDS, due_reentries)
    parts.routers.append(build_router(lambda: stage.engine, repo.chain))
    parts.state.update(stage=stage, guard=guard, replica=replica, repository=repo)
    return parts


__all__ = ["SETTINGS", "ReentrySettings", "build"]
