"""calendar-ingestor HTTP API.

    POST /api/v1/calendar/import      a calendar CSV as the body (text/csv, at most 2 MiB); `source`
                                      names it, `timezone` overrides the source zone. 200 with the
                                      import report when taken; 422 with the same report (every
                                      rejected row by line and reason) when not — nothing is taken
    GET  /api/v1/calendar/events      events in the next `hours_ahead` hours (and the last hour),
                                      with state, proximity and weight; `derived=true` adds
                                      anticipation and equity-open events
    GET  /api/v1/calendar/blackouts   one row per tracked symbol: the gate as last published
    GET  /api/v1/calendar/imports     the latest import reports
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from eafix.calendar_ingestor.derived import anticipations, equity_opens
from eafix.calendar_ingestor.entries import CalendarEntry
from eafix.calendar_ingestor.intake import IntakeError, read_calendar_csv
from eafix.calendar_ingestor.stage import CalendarStage
from eafix.calendar_ingestor.timing import lifecycle, minutes_to, priority_weight, proximity
from eafix.contracts.primitives import format_timestamp

MAX_BODY = 2 * 1024 * 1024
PAST_HOURS = 1


def _entry(entry: CalendarEntry, stage: CalendarStage, now) -> dict[str, Any]:
    minutes = minutes_to(entry.event_time, now)
    prox = proximity(entry.event_type, minutes)
    return {"cal8": entry.cal8, "cal5": entry.cal5, "kind": entry.kind.value, "title": entry.title,
            "currency": entry.currency, "impact": entry.impact.value, "event_type": entry.event_type.value,
            "signal_type": entry.signal_type, "scheduled_at": format_timestamp(entry.event_time),
            "state": (stage.book.states.get(entry.cal8) or lifecycle(entry.event_type, minutes)).value,
            "minutes_to_event": round(minutes, 3), "proximity": None if prox is None else prox.value,
            "priority_weight": None if prox is None else priority_weight(entry, prox), "quality": entry.quality,
            "forecast": entry.forecast, "previous": entry.previous, "source": entry.source}


def build_router(stage: Callable[[], CalendarStage],
                 import_csv: Callable[[bytes, str, str | None], Awaitable[tuple[bool, dict[str, Any]]]]) -> APIRouter:
    router = APIRouter(prefix="/api/v1/calendar", tags=["calendar"])

    @router.post("/import", responses={422: {"description": "rows rejected; nothing imported"}})
    async def import_calendar(request: Request, source: str = Query("upload", min_length=1, max_length=200),
                              timezone: str | None = Query(None, description="IANA zone of naive times")) -> Any:
        body = await request.body()
        if len(body) > MAX_BODY:
            raise HTTPException(413, f"calendar file is {len(body)} bytes; at most {MAX_BODY}")
        accepted, report = await import_csv(body, source, timezone)
        return report if accepted else JSONResponse(report, status_code=422)

    @router.get("/events")
    async def events(hours_ahead: float = Query(24, gt=0, le=24 * 31), derived: bool = False) -> dict[str, Any]:
        s = stage()
        now = s.messenger.clock.now()
        start, end = now - timedelta(hours=PAST_HOURS), now + timedelta(hours=hours_ahead)
        found = s.book.upcoming(start, end)
        if derived:
            found += [a for e in s.book.entries() for a in anticipations(e) if start <= a.event_time <= end]
            found += list(equity_opens(start, end))
        found.sort(key=lambda e: (e.event_time, e.cal8))
        return {"now": format_timestamp(now), "hours_ahead": hours_ahead, "events": [_entry(e, s, now) for e in found]}

    @router.get("/blackouts")
    async def blackouts() -> dict[str, Any]:
        s = stage()
        now = s.messenger.clock.now()
        rows = []
        for symbol in s.config.symbols:
            signal = s.latest.get(symbol) or s.signal(symbol, now)
            event = signal.event
            rows.append({"symbol": symbol, "current_time_utc": format_timestamp(now),
                         "next_event_time_utc": None if event is None else format_timestamp(event.scheduled_at),
                         "next_event_currency": None if event is None else event.currency,
                         "next_event_impact": None if event is None else event.impact,
                         "minutes_to_event": signal.minutes_to_event, "state": signal.state,
                         "allow_new_trades": signal.allow_new_trades,
                         "risk_mode": "NORMAL" if signal.allow_new_trades else "BLOCKED",
                         "event_title": None if event is None else event.title, "reason": signal.reason,
                         "generated_at_utc": format_timestamp(signal.generated_at),
                         "valid_until_utc": format_timestamp(signal.valid_until)})
        return {"blackouts": rows}

    @router.get("/imports")
    async def imports(limit: int = Query(20, ge=1, le=500)) -> dict[str, Any]:
        return {"imports": [r.report() for r in await stage().repo.imports(limit)]}

    return router


def read_or_report(body: bytes, zone: str):
    """The intake of a body, or IntakeError naming why the file as a whole cannot be read."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IntakeError(f"the file is not UTF-8 text (byte {exc.start})") from None
    return read_calendar_csv(text, zone)


__all__ = ["MAX_BODY", "build_router", "read_or_report"]
