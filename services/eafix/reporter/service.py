"""reporter as a process: signals, orders, execution reports, closed trades and ticks -> the trade
ledger (PostgreSQL schema `reports`) and the reports of `app`; P&L business metrics on /metrics.

Settings (besides the runtime's):
    SERVICE_REPORTER   JSON {opening_balance, account_currency}: the account the equity curve starts
                       from (default 10000 USD, risk-manager's default account)

State: the book is rebuilt from the repository at start and whenever this replica acquires a lease
of its topics (it stood by while another replica recorded); ticks are not stored, the first ticks
after a start mark the open positions again.
"""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict, Field

from eafix.contracts.primitives import Currency, PositiveMoney
from eafix.reporter.app import build_router
from eafix.reporter.book import ReportBook
from eafix.reporter.repository import InMemoryLedgerRepository, LedgerRepository, PostgresLedgerRepository
from eafix.reporter.stage import ReporterStage
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


class ReporterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    opening_balance: PositiveMoney = Decimal("10000")
    account_currency: Currency = "USD"


class ReporterSettings(PipelineSettings):
    reporter: ReporterConfig = Field(default_factory=ReporterConfig)

    _reporter = json_model("reporter", ReporterConfig)


SETTINGS = ReporterSettings


def build(settings: ReporterSettings) -> ServiceParts:
    parts = ServiceParts()
    clock = WallClock()
    config = settings.reporter
    db = pipeline_database(settings, parts)
    repo: LedgerRepository = PostgresLedgerRepository(db.pool) if db is not None else InMemoryLedgerRepository()

    def new_book() -> ReportBook:
        return ReportBook(config.opening_balance, config.account_currency, settings.instruments)

    async def reload() -> None:  # `stage` is bound below, before anything can call this
        book = new_book()
        book.restore(await repo.load())
        for quote in stage.book.quotes.quotes():
            book.quotes.update(quote)
        stage.book = book
        stage.restored()

    guard = StageGuard(reload)
    bus = pipeline_bus(settings, parts, on_acquired=guard.reload)
    registry = CollectorRegistry()  # the stage's business metrics
    parts.collectors.append(registry)
    stage = ReporterStage(new_book(), clock, repo, registry=registry)
    stage.subscribe(Subscriptions(bus, guard.wrap))
    parts.add_step(guard.reload)  # after the pool opened (its step was added first)
    parts.routers.append(build_router(lambda: stage.book, clock))
    parts.state.update(stage=stage, guard=guard, repository=repo)
    return parts


__all__ = ["SETTINGS", "ReporterConfig", "ReporterSettings", "build"]
