"""reporter HTTP API: reports over the current book (read-only).

    GET /api/v1/reports/daily-pnl?date=YYYY-MM-DD   realized, unrealized (today only), total, trades;
                                                    per symbol and strategy (default: today, UTC)
    GET /api/v1/reports/summary?from=&to=           statistics of the trades closed on those UTC days
                                                    (inclusive, each optional), execution quality, open
                                                    positions, per symbol / strategy / day
    GET /api/v1/reports/equity.csv?from=&to=        equity curve (balance after each closed trade)
    GET /api/v1/reports/report.html?from=&to=       the HTML report the backtest writes, same renderer
                                                    (eafix.reporting.page: statistics, Plotly charts,
                                                    breakdowns; the price as the candles and suppressed
                                                    signals of `market` in the range, when given)

A malformed date is FastAPI's 422 whose `detail[].loc` names the parameter; `from` after `to` is a 422
naming `from`. Figures are defined in `eafix.reporting.metrics` (profit factor null without a losing
trade; Sharpe/Sortino null with fewer than two days or no variance / no losing day).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from eafix.reporter.book import ReportBook
from eafix.reporter.market import MarketView
from eafix.reporter.reports import DailyPnl, Execution, RangeReport, daily_pnl, day_start, range_report
from eafix.reporting.breakdown import GroupFigures
from eafix.reporting.content import ReportContent
from eafix.reporting.metrics import Summary
from eafix.reporting.page import render_html
from eafix.reporting.render import equity_csv
from eafix.runtime.clock import Clock

__all__ = ["build_router"]


class OpenOut(BaseModel):
    open_positions: int
    unmarked: int
    unrealized: Decimal
    unrealized_by_symbol: dict[str, Decimal]


class SummaryOut(BaseModel):
    from_: date | None = Field(serialization_alias="from")
    to: date | None
    summary: Summary
    execution: Execution
    open: OpenOut
    by_symbol: list[GroupFigures]
    by_strategy: list[GroupFigures]
    by_day: list[GroupFigures]


DateQuery = Annotated[date | None, Query(description="UTC day, YYYY-MM-DD")]
FromQuery = Annotated[date | None, Query(alias="from", description="first UTC day, YYYY-MM-DD (inclusive)")]
ToQuery = Annotated[date | None, Query(description="last UTC day, YYYY-MM-DD (inclusive)")]


def _range(start: date | None, end: date | None) -> None:
    if start and end and start > end:
        raise HTTPException(422, [{"loc": ["query", "from"], "type": "value_error",
                                   "msg": f"from ({start}) is after to ({end})"}])


def build_router(book: Callable[[], ReportBook], clock: Clock, market: MarketView | None = None) -> APIRouter:
    router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

    @router.get("/daily-pnl", response_model=DailyPnl)
    async def daily(date: DateQuery = None) -> DailyPnl:
        now = clock.now()
        return daily_pnl(book(), date or now.date(), now)

    @router.get("/summary", response_model=SummaryOut)
    async def summary(start: FromQuery = None, to: ToQuery = None) -> SummaryOut:
        _range(start, to)
        report = range_report(book(), start, to)
        u = report.unrealized
        return SummaryOut(
            from_=start, to=to, summary=report.summary, execution=report.execution,
            open=OpenOut(open_positions=u.open_positions, unmarked=u.unmarked, unrealized=u.total,
                         unrealized_by_symbol=u.by_symbol),
            **{f"by_{k}": list(v) for k, v in report.breakdowns.items()})

    def _report(start: date | None, end: date | None) -> RangeReport:
        _range(start, end)
        return range_report(book(), start, end)

    @router.get("/equity.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
    async def csv(start: FromQuery = None, to: ToQuery = None) -> Response:
        report = _report(start, to)
        return Response(equity_csv(report.trades, report.summary.start_balance), media_type="text/csv")

    @router.get("/report.html", response_class=HTMLResponse)
    async def html(start: FromQuery = None, to: ToQuery = None) -> HTMLResponse:
        report = _report(start, to)  # read on the loop, which is where the stage writes the book
        span = f"{start or 'start'} to {to or 'now'}"
        candles, suppressed = market.price(day_start(start) if start else None,
                                           day_start(to + timedelta(days=1)) if to else None) if market else ([], [])
        content = ReportContent(f"EAFIX report {span}", report.trades, report.summary, report.breakdowns,
                                candles=candles, suppressed=suppressed, levels=book().levels(report.trades))
        # drawing a long ledger takes a while: off the loop
        return HTMLResponse(await asyncio.to_thread(render_html, content))

    return router
