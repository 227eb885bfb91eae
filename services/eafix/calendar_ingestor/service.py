"""calendar-ingestor as a process: calendar CSV files (upload or watched directory) -> events and
per-symbol gates on the bus (eafix.calendar.events, eafix.calendar.signals); the calendar in
PostgreSQL (schema `calendar`).

Settings (besides the runtime's):
    SERVICE_TRACKED_SYMBOLS   JSON list of the symbols gated (default EURUSD, GBPUSD, USDJPY, XAUUSD);
                              both currencies of each are checked against events
    SERVICE_SOURCE_TIMEZONE   IANA zone of naive times in the files (default America/New_York)
    SERVICE_WATCH_DIR         a directory whose new *.csv files are imported every refresh (optional)
    SERVICE_REFRESH_SECONDS   gate refresh period (default 30); a gate is valid 2 x refresh + 30 s
    SERVICE_REQUIRE_CALENDAR  block every symbol until a calendar is imported (default true)
    SERVICE_WINDOWS           JSON {"HIGH": [before, after], "MEDIUM": [...]} in minutes (default 60/30, 30/15)

State: the book is rebuilt from PostgreSQL at start. Run one replica (the chart's default): a second
would refresh too, publishing the same gates (consumers keep the newest) and recording each lifecycle
transition twice; an import through one replica reaches the other only at its restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from pydantic import Field, field_validator

from eafix.calendar_ingestor.app import build_router, read_or_report
from eafix.calendar_ingestor.blackout import WindowConfig
from eafix.calendar_ingestor.book import CalendarBook
from eafix.calendar_ingestor.entries import Impact
from eafix.calendar_ingestor.intake import DEFAULT_SOURCE_TIMEZONE, Intake, IntakeError, RowProblem, source_zone
from eafix.calendar_ingestor.repository import (
    CalendarRepository,
    InMemoryCalendarRepository,
    PostgresCalendarRepository,
)
from eafix.calendar_ingestor.stage import CalendarConfig, CalendarStage
from eafix.calendar_ingestor.watch import scan
from eafix.contracts.messaging import Messenger
from eafix.contracts.primitives import Symbol
from eafix.runtime.clock import WallClock
from eafix.runtime.service import PipelineSettings, ServiceParts, pipeline_bus, pipeline_database

Span = tuple[float, float]


class CalendarSettings(PipelineSettings):
    tracked_symbols: list[Symbol] = Field(default_factory=lambda: list(CalendarConfig().symbols), min_length=1)
    source_timezone: str = DEFAULT_SOURCE_TIMEZONE
    watch_dir: Path | None = None
    refresh_seconds: float = Field(30.0, ge=1, le=3600)
    require_calendar: bool = True
    windows: dict[Impact, tuple[float, float]] = Field(default_factory=lambda: dict(WindowConfig().minutes))

    @field_validator("source_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            source_zone(value)
        except IntakeError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("windows")
    @classmethod
    def _spans(cls, value: dict[Impact, Span]) -> dict[Impact, Span]:
        for impact, (before, after) in value.items():
            if not (0 <= before <= 1440 and 0 <= after <= 1440):
                raise ValueError(f"{impact}: minutes before/after must be within 0-1440 (got {before}, {after})")
        return value

    def calendar_config(self) -> CalendarConfig:
        return CalendarConfig(tuple(self.tracked_symbols), WindowConfig(dict(self.windows)), self.refresh_seconds,
                              self.require_calendar)


SETTINGS = CalendarSettings


def build(settings: CalendarSettings) -> ServiceParts:
    parts = ServiceParts()
    clock = WallClock()
    config = settings.calendar_config()
    db = pipeline_database(settings, parts)
    repo: CalendarRepository = PostgresCalendarRepository(db.pool) if db is not None \
        else InMemoryCalendarRepository()
    bus = pipeline_bus(settings, parts, consume=False)
    registry = CollectorRegistry()
    parts.collectors.append(registry)
    stage = CalendarStage(CalendarBook(), Messenger(bus, settings.name, clock), settings.instruments, config, repo,
                          registry=registry)

    async def restore() -> None:
        snapshot = await repo.load()
        stage.book = CalendarBook(snapshot.entries, snapshot.states)

    parts.add_step(restore)

    async def import_csv(body: bytes, source: str, zone: str | None) -> tuple[bool, dict[str, Any]]:
        try:
            intake = read_or_report(body, zone or settings.source_timezone)
        except IntakeError as exc:
            intake = Intake((), (), (RowProblem(1, str(exc)),))
        record = await stage.import_intake(intake, source, body)
        if record.accepted:
            await stage.on_clock()  # gates reflect the new calendar now, not at the next refresh
        return record.accepted, record.report()

    async def refresh() -> None:
        if settings.watch_dir is not None:
            async def import_file(content: bytes, name: str) -> bool:
                return (await import_csv(content, name, None))[0]

            await scan(settings.watch_dir, repo.has_digest, import_file)
        await stage.on_clock()

    parts.every("calendar-refresh", config.refresh_seconds, refresh)
    parts.routers.append(build_router(lambda: stage, import_csv))
    parts.state.update(stage=stage, repository=repo)
    return parts


__all__ = ["SETTINGS", "CalendarSettings", "build"]
