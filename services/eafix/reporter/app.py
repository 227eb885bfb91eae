"""reporter HTTP API: reports over the current book (read-only).

    GET /api/v1/reports/daily-pnl?date=YYYY-MM-DD   realized, unrealized (today only), total, trades;
                                                    per symbol and strategy (default: today, UTC)
    GET /api/v1/reports/summary?from=&to=           statistics of the trades closed on those UTC days
                                                    (inclusive, each optional), execution quality, open
                                                    positions, per symbol / strategy / day
    GET /api/v1/reports/equity.svg?from=&to=        equity curve (balance after each closed trade)
    GET /api/v1/reports/equity.csv?from=&to=
    GET /api/v1/reports/report.html?from=&to=       the HTML report the backtest writes, same renderer

A malformed date is FastAPI's 422 whose `detail[].loc` names the parameter; `from` after `to` is a 422
naming `from`. Figures are defined in `eafix.reporting.metrics` (profit factor null without a losing
trade; Sharpe/Sortino null with fewer than two days or no variance / no losing day).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from eafix.reporter.book import ReportBook
from eafix.reporter.reports import RangeReport, daily_pnl, range_report
from eafix.reporting.metrics import equity_curve
from eafix.reporting.render import equity_csv, equity_svg, render_html
from eafix.runtime.clock import Clock

__all__ = ["build_router"]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class GroupOut(_Out):
    key: str
    trades: int
    wins: int
    losses: int
    win_rate: float
    net_pnl: Decimal
    net_pips: Decimal
    gross_profit: Decimal
    gross_loss: Decimal
    profit_factor: float | None
    avg_win: Decimal | None
    avg_loss: Decimal | None
    expectancy: Decimal


class DailyPnlOut(_Out):
    date: date
    currency: str
    realized: Decimal
    unrealized: Decimal | None
    total: Decimal
    total_trades: int
    wins: int
    losses: int
    by_symbol: list[GroupOut]
    by_strategy: list[GroupOut]


class SummaryFigures(_Out):
    trades: int
    wins: int
    losses: int
    win_rate: float | None
    net_pnl: Decimal
    net_pips: Decimal
    gross_profit: Decimal
    gross_loss: Decimal
    profit_factor: float | None
    avg_win: Decimal | None
    avg_loss: Decimal | None
    expectancy: Decimal | None
    max_drawdown: Decimal
    max_drawdown_pct: float
    sharpe: float | None
    sortino: float | None
    start_balance: Decimal
    end_balance: Decimal
    currency: str


class ExecutionOut(_Out):
    submitted: int
    filled: int
    fill_rate: float | None
    avg_slippage_pips: Decimal | None
    avg_slippage_bps: Decimal | None


class OpenOut(BaseModel):
    open_positions: int
    unmarked: int
    unrealized: Decimal
    unrealized_by_symbol: dict[str, Decimal]


class SummaryOut(BaseModel):
    from_: date | None = Field(serialization_alias="from")
    to: date | None
    summary: SummaryFigures
    execution: ExecutionOut
    open: OpenOut
    by_symbol: list[GroupOut]
    by_strategy: list[GroupOut]
    by_day: list[GroupOut]


DateQuery = Annotated[date | None, Query(description="UTC day, YYYY-MM-DD")]
FromQuery = Annotated[date | None, Query(alias="from", description="first UTC day, YYYY-MM-DD (inclusive)")]
ToQuery = Annotated[date | None, Query(description="last UTC day, YYYY-MM-DD (inclusive)")]


def _range(start: date | None, end: date | None) -> None:
    if start and end and start > end:
        raise HTTPException(422, [{"loc": ["query", "from"], "type": "value_error",
                                   "msg": f"from ({start}) is after to ({end})"}])


def build_router(book: Callable[[], ReportBook], clock: Clock) -> APIRouter:
    router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

    @router.get("/daily-pnl", response_model=DailyPnlOut)
    async def daily(date: DateQuery = None) -> DailyPnlOut:
        now = clock.now()
        return DailyPnlOut.model_validate(daily_pnl(book(), date or now.date(), now))

    @router.get("/summary", response_model=SummaryOut)
    async def summary(start: FromQuery = None, to: ToQuery = None) -> SummaryOut:
        _range(start, to)
        report = range_report(book(), start, to)
        u = report.unrealized
        return SummaryOut(
            from_=start, to=to, summary=SummaryFigures.model_validate(report.summary),
            execution=ExecutionOut.model_validate(report.execution),
            open=OpenOut(open_positions=u.open_positions, unmarked=u.unmarked, unrealized=u.total,
                         unrealized_by_symbol=u.by_symbol),
            **{f"by_{k}": [GroupOut.model_validate(g) for g in v] for k, v in report.breakdowns.items()})

    def _report(start: date | None, end: date | None) -> RangeReport:
        _range(start, end)
        return range_report(book(), start, end)

    @router.get("/equity.svg", response_class=Response,
                responses={200: {"content": {"image/svg+xml": {}}}})
    async def svg(start: FromQuery = None, to: ToQuery = None) -> Response:
        report = _report(start, to)
        return Response(equity_svg(equity_curve(report.trades, report.summary.start_balance),
                                   report.summary.start_balance), media_type="image/svg+xml")

    @router.get("/equity.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
    async def csv(start: FromQuery = None, to: ToQuery = None) -> Response:
        report = _report(start, to)
        return Response(equity_csv(report.trades, report.summary.start_balance), media_type="text/csv")

    @router.get("/report.html", response_class=HTMLResponse)
    async def html(start: FromQuery = None, to: ToQuery = None) -> HTMLResponse:
        report = _report(start, to)
        span = f"{start or 'start'} to {to or 'now'}"
        return HTMLResponse(render_html(report.trades, report.summary, f"EAFIX report {span}", report.breakdowns))

    return router
