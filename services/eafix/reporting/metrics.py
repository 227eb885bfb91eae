"""The statistics of a trade ledger (closed trades), each computed here once; money exact in Decimal.

Both the backtest and the reporter call `summarize`, so a replayed ledger gives the same figures.
Definitions (all in the account currency unless named pips or a fraction):
- win rate: trades with pnl > 0 / all trades (None without trades); a trade with pnl = 0 is neither
  a win nor a loss but counts in the denominator;
- profit factor: gross profit / gross loss; None when there is no losing trade (all wins, or no
  trades): infinity has no JSON form, and "n/a" is what the report prints;
- average win / average loss: gross profit / wins, gross loss / losses (loss as a positive amount);
- expectancy: net P&L / trades (the average trade in money); average trade in pips: net pips / trades;
  best / worst trade: the largest and smallest pnl;
- SQN (van Tharp): sqrt(trades) * mean(pnl) / sample standard deviation of pnl; None with fewer
  than two trades or equal pnl;
- the span of a ledger: from its first open time to its last close time; exposure time: the fraction
  of the span with at least one position open;
- return: net P&L / opening balance; CAGR: (end / start balance) ^ (1 / years) - 1 with years =
  span / 365.25 days (None for an empty span, a non-positive end balance, or a span so short that
  the annualised figure is beyond a float: +20 % in an hour is 10^690 % a year);
- the equity curve: the opening balance at the span's start, then the balance after each closed
  trade; drawdowns: its periods below a running peak (`eafix.reporting.drawdown`): max drawdown is
  the deepest in money and, separately, as a fraction of its peak (two periods, when a later, larger
  balance falls more money but a smaller fraction); average drawdown the mean depth of all periods;
  durations in days from the peak to the recovery (or the curve's end); the max-drawdown interval
  (start and end) is the period deepest as a fraction;
- daily returns: per trading day (UTC, Monday to Friday, plus a weekend day that has a closed trade)
  from the first to the last day with a closed trade, the day's closing equity over the previous
  day's (a trading day without trades returns 0);
- volatility: sample standard deviation of the daily returns times sqrt(252) (252 trading days a
  year, the usual annualisation, which is why weekend days without trades are not returns: counting
  them as zeros would annualise ~365 periods a year with sqrt(252)); None with fewer than two days;
- Sharpe: mean / sample standard deviation of the daily returns, times sqrt(252); None with fewer
  than two days or zero variance;
- Sortino: mean / downside deviation, downside deviation = sqrt(sum(min(r, 0)^2) / n) over all n
  daily returns (target return 0), times sqrt(252); None with fewer than two days or no losing day;
- Calmar: CAGR / max drawdown (fraction); None without a drawdown or a CAGR;
- monthly returns: each calendar month's last equity over the previous month's (the first month over
  the opening balance), months without a trade included as 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from eafix.contracts import TradeClosed
from eafix.reporting.drawdown import DAY_SECONDS, Drawdown, drawdowns

ANNUALISATION = math.sqrt(252)
YEAR_SECONDS = 365.25 * DAY_SECONDS


@dataclass(frozen=True)
class Summary:
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
    return_pct: float | None = None
    cagr: float | None = None
    volatility: float | None = None
    calmar: float | None = None
    avg_drawdown: Decimal | None = None
    avg_drawdown_pct: float | None = None
    max_drawdown_days: float | None = None
    avg_drawdown_days: float | None = None
    max_drawdown_start: datetime | None = None  # the deepest period: its peak ...
    max_drawdown_end: datetime | None = None  # ... and its recovery (or the curve's end)
    best_trade: Decimal | None = None
    worst_trade: Decimal | None = None
    avg_trade_pips: Decimal | None = None
    sqn: float | None = None
    exposure_time: float | None = None
    start: datetime | None = None  # the span: first open time ...
    end: datetime | None = None  # ... last close time


def ordered(trades: Sequence[TradeClosed]) -> list[TradeClosed]:
    """Ledger order: by close time, then trade id (ties stay deterministic)."""
    return sorted(trades, key=lambda t: (t.close_time, str(t.trade_id)))


def span(trades: Sequence[TradeClosed]) -> tuple[datetime, datetime] | None:
    return (min(t.open_time for t in trades), max(t.close_time for t in trades)) if trades else None


def equity_curve(trades: Sequence[TradeClosed], start_balance: Decimal) -> list[tuple[datetime, Decimal]]:
    """The balance after each closed trade (without the opening point: see `equity_points`)."""
    points, balance = [], start_balance
    for t in ordered(trades):
        balance += t.pnl
        points.append((t.close_time, balance))
    return points


def equity_points(trades: Sequence[TradeClosed], start_balance: Decimal) -> list[tuple[datetime, Decimal]]:
    """The equity curve with its opening point: the opening balance at the first open time."""
    bounds = span(trades)
    return [] if bounds is None else [(bounds[0], start_balance), *equity_curve(trades, start_balance)]


def daily_returns(curve: list[tuple[datetime, Decimal]], start_balance: Decimal) -> list[float]:
    if not curve:
        return []
    by_day: dict[date, Decimal] = {}
    for ts, balance in curve:
        by_day[ts.date()] = balance  # the day's closing equity
    first, last = min(by_day), max(by_day)
    returns, prev, day = [], start_balance, first
    while day <= last:
        if day in by_day or day.weekday() < 5:
            close = by_day.get(day, prev)
            returns.append(float((close - prev) / prev) if prev else 0.0)
            prev = close
        day += timedelta(days=1)
    return returns


def monthly_returns(curve: list[tuple[datetime, Decimal]], start_balance: Decimal) -> list[tuple[int, int, float]]:
    """(year, month, return) from the first to the last month with a closed trade."""
    if not curve:
        return []
    by_month: dict[tuple[int, int], Decimal] = {}
    for ts, balance in curve:
        by_month[(ts.year, ts.month)] = balance
    (year, month), last = min(by_month), max(by_month)
    out, prev = [], start_balance
    while (year, month) <= last:
        close = by_month.get((year, month), prev)
        out.append((year, month, float((close - prev) / prev) if prev else 0.0))
        prev = close
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def open_lots(trades: Sequence[TradeClosed]) -> list[tuple[datetime, Decimal]]:
    """Lots open over time: a step at every open (+lots) and close (-lots), a close before an open at
    the same instant."""
    steps = sorted([(t.open_time, 1, t.lots) for t in trades] + [(t.close_time, 0, -t.lots) for t in trades],
                   key=lambda s: (s[0], s[1]))
    points, total = [], Decimal(0)
    for ts, _, change in steps:
        total += change
        points.append((ts, total))
    return points


def exposure_time(trades: Sequence[TradeClosed]) -> float | None:
    bounds = span(trades)
    if bounds is None or bounds[1] <= bounds[0]:
        return None
    covered, reach = timedelta(0), bounds[0]
    for t in sorted(trades, key=lambda t: t.open_time):  # union of the [open, close] intervals
        if t.close_time > reach:
            covered += t.close_time - max(t.open_time, reach)
            reach = t.close_time
    return covered / (bounds[1] - bounds[0])


def _stdev(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def volatility(returns: list[float]) -> float | None:
    return None if len(returns) < 2 else _stdev(returns) * ANNUALISATION


def sharpe(returns: list[float]) -> float | None:
    if len(returns) < 2:
        return None
    std = _stdev(returns)
    return None if std == 0 else sum(returns) / len(returns) / std * ANNUALISATION


def sortino(returns: list[float]) -> float | None:
    if len(returns) < 2:
        return None
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    return None if downside == 0 else sum(returns) / len(returns) / downside * ANNUALISATION


def sqn(trades: Sequence[TradeClosed]) -> float | None:
    if len(trades) < 2:
        return None
    pnl = [float(t.pnl) for t in trades]
    std = _stdev(pnl)
    return None if std == 0 else math.sqrt(len(pnl)) * (sum(pnl) / len(pnl)) / std


def cagr(start_balance: Decimal, end_balance: Decimal, bounds: tuple[datetime, datetime] | None) -> float | None:
    if bounds is None or bounds[1] <= bounds[0] or start_balance <= 0 or end_balance <= 0:
        return None
    years = (bounds[1] - bounds[0]).total_seconds() / YEAR_SECONDS
    try:
        return math.exp(math.log(float(end_balance / start_balance)) / years) - 1
    except OverflowError:  # not a number a report can show; Calmar goes with it
        return None


def _drawdown_figures(periods: list[Drawdown]) -> dict:
    if not periods:
        return {"max_drawdown": Decimal(0), "max_drawdown_pct": 0.0}
    deepest = max(periods, key=lambda p: p.depth_pct)  # the interval shown: the peers' "max drawdown [%]"
    return {
        "max_drawdown": max(p.depth for p in periods), "max_drawdown_pct": deepest.depth_pct,
        "avg_drawdown": sum((p.depth for p in periods), Decimal(0)) / len(periods),
        "avg_drawdown_pct": sum(p.depth_pct for p in periods) / len(periods),
        "max_drawdown_days": max(p.days for p in periods),
        "avg_drawdown_days": sum(p.days for p in periods) / len(periods),
        "max_drawdown_start": deepest.peak_time, "max_drawdown_end": deepest.end_time,
    }


def summarize(trades: Sequence[TradeClosed], start_balance: Decimal, currency: str = "USD") -> Summary:
    wins = [t for t in trades if t.pnl > 0]
    losses = [t for t in trades if t.pnl < 0]
    gross_profit = sum((t.pnl for t in wins), Decimal(0))
    gross_loss = -sum((t.pnl for t in losses), Decimal(0))
    curve = equity_curve(trades, start_balance)
    returns = daily_returns(curve, start_balance)
    net = gross_profit - gross_loss
    net_pips = sum((t.pips for t in trades), Decimal(0))
    bounds = span(trades)
    end_balance = start_balance + net
    dd = _drawdown_figures(drawdowns(equity_points(trades, start_balance)))
    growth = cagr(start_balance, end_balance, bounds)
    return Summary(
        trades=len(trades), wins=len(wins), losses=len(losses),
        win_rate=len(wins) / len(trades) if trades else None,
        net_pnl=net, net_pips=net_pips,
        gross_profit=gross_profit, gross_loss=gross_loss,
        profit_factor=float(gross_profit / gross_loss) if gross_loss else None,
        avg_win=gross_profit / len(wins) if wins else None,
        avg_loss=gross_loss / len(losses) if losses else None,
        expectancy=net / len(trades) if trades else None,
        sharpe=sharpe(returns), sortino=sortino(returns),
        start_balance=start_balance, end_balance=end_balance, currency=currency,
        return_pct=float(net / start_balance) if start_balance else None, cagr=growth,
        volatility=volatility(returns),
        calmar=growth / dd["max_drawdown_pct"] if growth is not None and dd["max_drawdown_pct"] else None,
        best_trade=max((t.pnl for t in trades), default=None), worst_trade=min((t.pnl for t in trades), default=None),
        avg_trade_pips=net_pips / len(trades) if trades else None, sqn=sqn(trades),
        exposure_time=exposure_time(trades), start=bounds[0] if bounds else None, end=bounds[1] if bounds else None,
        **dd,
    )
