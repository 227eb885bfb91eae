"""reporter as a process: signals, orders, execution reports, closed trades and ticks -> the trade
ledger (PostgreSQL schema `reports`) and the reports of `app`; P&L business metrics on /metrics.

Settings (besides the runtime's):
    SERVICE_REPORTER   JSON {opening_balance, account_currency}: the account the equity curve starts
                       from (default 10000 USD, risk-manager's default account); {candle_timeframe,
                       candle_history}: the bars (default M5) the report's price chart is drawn from
                       and how many newest entries of the bars topic seed it at start (default 100000)

State: the book is rebuilt from the repository at start and whenever this replica acquires a lease
of its topics (it stood by while another replica recorded); ticks are not stored, the first ticks
after a start mark the open positions again. The price chart's candles and suppressed signals are
followed by every replica (no consumer group) in bounded memory, seeded from the streams at start
(`eafix.reporter.market`).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict, Field

from eafix.contracts import Bar, SignalSuppressed
from eafix.contracts.messaging import decode
from eafix.contracts.primitives import Currency, PositiveMoney, Timeframe
from eafix.reporter.app import build_router
from eafix.reporter.book import ReportBook
from eafix.reporter.market import MarketView
from eafix.reporter.repository import InMemoryLedgerRepository, LedgerRepository, PostgresLedgerRepository
from eafix.reporter.stage import ReporterStage
from eafix.reporting.page import require_plotly_js
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
    candle_timeframe: Timeframe = Timeframe.M5
    candle_history: int = Field(100_000, ge=0)


class ReporterSettings(PipelineSettings):
    reporter: ReporterConfig = Field(default_factory=ReporterConfig)

    _reporter = json_model("reporter", ReporterConfig)


SETTINGS = ReporterSettings


def build(settings: ReporterSettings) -> ServiceParts:
    require_plotly_js()  # report.html inlines it: a build without it stops here, not at the first report
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
    market = MarketView(config.candle_timeframe)
    stage = ReporterStage(new_book(), clock, repo, registry=registry, market=market)
    subscriptions = Subscriptions(bus, guard.wrap, follow={Bar.TOPIC, SignalSuppressed.TOPIC})
    stage.subscribe(subscriptions)
    subscriptions.run_in(parts)

    async def seed() -> None:  # after the followers took their start: an overlap merges, no gap
        timeframe = str(config.candle_timeframe)
        bars = await bus.history(Bar.TOPIC, config.candle_history)
        suppressed = await bus.history(SignalSuppressed.TOPIC, market.max_suppressed)
        market.seed(_events(e for e in bars if e.get("data", {}).get("timeframe") == timeframe),
                    _events(suppressed))

    parts.add_step(guard.reload)  # after the pool opened (its step was added first)
    parts.add_step(seed)
    parts.routers.append(build_router(lambda: stage.book, clock, market))
    parts.state.update(stage=stage, guard=guard, repository=repo, market=market)
    return parts


def _events(envelopes: Iterable[dict[str, Any]]) -> list[Any]:
    """The events of stored envelopes; one that no longer decodes is left out (it was dead-lettered)."""
    out = []
    for envelope in envelopes:
        try:
            out.append(decode(envelope).data)
        except ValueError:  # pydantic's ValidationError among them
            continue
    return out


__all__ = ["SETTINGS", "ReporterConfig", "ReporterSettings", "build"]
