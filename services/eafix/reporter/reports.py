"""The reporter's reports over its book: daily P&L and the summary of a date range (UTC days).

A day is the UTC calendar day of a trade's close time; a range [from, to] includes both days.
Unrealized P&L is a figure of now: the daily P&L of the current UTC day carries it (total = realized
+ unrealized), a past day's has none (null, total = realized).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from eafix.contracts import TradeClosed
from eafix.reporter.book import ReportBook, Unrealized
from eafix.reporting.breakdown import DIMENSIONS, GroupFigures, breakdown
from eafix.reporting.metrics import Summary, summarize


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


@dataclass(frozen=True)
class Execution:
    submitted: int
    filled: int
    fill_rate: float | None
    avg_slippage_pips: Decimal | None
    avg_slippage_bps: Decimal | None


@dataclass(frozen=True)
class DailyPnl:
    date: date
    currency: str
    realized: Decimal
    unrealized: Decimal | None
    total: Decimal
    total_trades: int
    wins: int
    losses: int
    by_symbol: list[GroupFigures]
    by_strategy: list[GroupFigures]


@dataclass(frozen=True)
class RangeReport:
    start: date | None
    end: date | None
    summary: Summary
    execution: Execution
    unrealized: Unrealized
    breakdowns: dict[str, list[GroupFigures]]
    trades: list[TradeClosed]


def execution(book: ReportBook, start: datetime | None, end: datetime | None) -> Execution:
    submitted, filled, rate = book.fill_rate(start, end)
    slips = book.slippage(start, end)
    n = len(slips)
    return Execution(submitted, filled, rate,
                     sum((s.pips for s in slips), Decimal(0)) / n if n else None,
                     sum((s.bps for s in slips), Decimal(0)) / n if n else None)


def daily_pnl(book: ReportBook, day: date, now: datetime) -> DailyPnl:
    start = day_start(day)
    trades = book.ledger(start, start + timedelta(days=1))
    strategies = book.strategy_of()
    realized = sum((t.pnl for t in trades), Decimal(0))
    unrealized = book.unrealized().total if day == now.astimezone(UTC).date() else None
    return DailyPnl(day, book.account_currency, realized, unrealized, realized + (unrealized or 0), len(trades),
                    sum(1 for t in trades if t.pnl > 0), sum(1 for t in trades if t.pnl < 0),
                    breakdown(trades, "symbol", strategies), breakdown(trades, "strategy", strategies))


def range_report(book: ReportBook, start: date | None, end: date | None) -> RangeReport:
    """Statistics of the trades closed from `start` to `end` (inclusive UTC days; None = unbounded).
    The equity curve starts at the balance before `start`: opening balance + earlier realized P&L."""
    lo = day_start(start) if start else None
    hi = day_start(end) + timedelta(days=1) if end else None
    trades = book.ledger(lo, hi)
    before = sum((t.pnl for t in book.ledger(None, lo)), Decimal(0)) if lo else Decimal(0)
    strategies = book.strategy_of()
    return RangeReport(
        start, end, summarize(trades, book.opening_balance + before, book.account_currency),
        execution(book, lo, hi), book.unrealized(),
        {by: breakdown(trades, by, strategies) for by in DIMENSIONS}, trades)
