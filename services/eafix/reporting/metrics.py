"""Summary statistics of a trade ledger (closed trades), exact in Decimal for money.

Definitions (all in the account currency unless named pips):
- win rate: trades with pnl > 0 / all trades (None without trades); a trade with pnl = 0 is neither
  a win nor a loss but counts in the denominator;
- profit factor: gross profit / gross loss; None when there is no losing trade (all wins, or no
  trades): infinity has no JSON form, and "n/a" is what the report prints;
- average win / average loss: gross profit / wins, gross loss / losses (loss as a positive amount);
- expectancy: net P&L / trades (the average trade);
- max drawdown: the largest fall of the equity curve (balance after each closed trade) from its
  running peak, in money and as (peak - equity) / peak;
- daily returns: per trading day (UTC, Monday to Friday, plus a weekend day that has a closed trade)
  from the first to the last day with a closed trade, the day's closing equity over the previous
  day's (a trading day without trades returns 0);
- Sharpe: mean / sample standard deviation of the daily returns, times sqrt(252) (252 trading days
  a year, the usual annualisation, which is why weekend days without trades are not returns: counting
  them as zeros would annualise ~365 periods a year with sqrt(252)); None with fewer than two days or
  zero variance;
- Sortino: mean / downside deviation, downside deviation = sqrt(sum(min(r, 0)^2) / n) over all n
  daily returns (target return 0), times sqrt(252); None with fewer than two days or no losing day.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from eafix.contracts import TradeClosed

ANNUALISATION = math.sqrt(252)


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


def ordered(trades: Sequence[TradeClosed]) -> list[TradeClosed]:
    """Ledger order: by close time, then trade id (ties stay deterministic)."""
    return sorted(trades, key=lambda t: (t.close_time, str(t.trade_id)))


def equity_curve(trades: Sequence[TradeClosed], start_balance: Decimal) -> list[tuple[datetime, Decimal]]:
    points, balance = [], start_balance
    for t in ordered(trades):
        balance += t.pnl
        points.append((t.close_time, balance))
    return points


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


def sharpe(returns: list[float]) -> float | None:
    if len(returns) < 2:
        return None
    mean = sum(returns) / len(returns)
    var = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    return None if var == 0 else mean / math.sqrt(var) * ANNUALISATION


def sortino(returns: list[float]) -> float | None:
    if len(returns) < 2:
        return None
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    return None if downside == 0 else sum(returns) / len(returns) / downside * ANNUALISATION


def drawdown(curve: list[tuple[datetime, Decimal]], start_balance: Decimal) -> tuple[Decimal, float]:
    """Largest fall from the running peak: (money, fraction of that peak)."""
    peak, max_dd, max_dd_pct = start_balance, Decimal(0), 0.0
    for _, balance in curve:
        peak = max(peak, balance)
        max_dd = max(max_dd, peak - balance)
        if peak > 0:
            max_dd_pct = max(max_dd_pct, float((peak - balance) / peak))
    return max_dd, max_dd_pct


def summarize(trades: Sequence[TradeClosed], start_balance: Decimal, currency: str = "USD") -> Summary:
    wins = [t for t in trades if t.pnl > 0]
    losses = [t for t in trades if t.pnl < 0]
    gross_profit = sum((t.pnl for t in wins), Decimal(0))
    gross_loss = -sum((t.pnl for t in losses), Decimal(0))
    curve = equity_curve(trades, start_balance)
    max_dd, max_dd_pct = drawdown(curve, start_balance)
    returns = daily_returns(curve, start_balance)
    net = gross_profit - gross_loss
    return Summary(
        trades=len(trades), wins=len(wins), losses=len(losses),
        win_rate=len(wins) / len(trades) if trades else None,
        net_pnl=net, net_pips=sum((t.pips for t in trades), Decimal(0)),
        gross_profit=gross_profit, gross_loss=gross_loss,
        profit_factor=float(gross_profit / gross_loss) if gross_loss else None,
        avg_win=gross_profit / len(wins) if wins else None,
        avg_loss=gross_loss / len(losses) if losses else None,
        expectancy=net / len(trades) if trades else None,
        max_drawdown=max_dd, max_drawdown_pct=max_dd_pct, sharpe=sharpe(returns), sortino=sortino(returns),
        start_balance=start_balance, end_balance=start_balance + net, currency=currency,
    )
