"""Per-symbol, per-strategy and per-day figures of a trade ledger, computed with polars.

The figures of a group follow `eafix.reporting.metrics` (win rate over all trades of the group,
profit factor None without a losing trade, average loss as a positive amount, expectancy = net / trades);
money stays exact (polars Decimal). polars is imported when a breakdown is asked for, so importing
this package costs nothing in a process that never breaks a ledger down.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from eafix.contracts import TradeClosed

Dimension = Literal["symbol", "strategy", "day"]
DIMENSIONS: tuple[Dimension, ...] = ("symbol", "strategy", "day")
UNKNOWN_STRATEGY = "unknown"  # a trade whose order's signal the ledger never saw
_MONEY = (38, 10)  # polars Decimal precision, scale: more places than any pnl carries


@dataclass(frozen=True)
class GroupFigures:
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


def _plain(value: Decimal) -> Decimal:
    """Trailing zeros of the polars scale removed, without switching to exponent notation."""
    return Decimal(format(value.normalize(), "f"))


def breakdown(trades: Sequence[TradeClosed], by: Dimension,
              strategy_of: Mapping[str, str] | None = None) -> list[GroupFigures]:
    """Figures per group, sorted by key. `strategy_of` maps a trade id to its strategy."""
    if not trades:
        return []
    import polars as pl

    strategies = strategy_of or {}
    frame = pl.DataFrame(
        {
            "symbol": [t.symbol for t in trades],
            "strategy": [strategies.get(str(t.trade_id), UNKNOWN_STRATEGY) for t in trades],
            "day": [t.close_time.date().isoformat() for t in trades],
            "pnl": [t.pnl for t in trades],
            "pips": [t.pips for t in trades],
        },
        schema={"symbol": pl.Utf8, "strategy": pl.Utf8, "day": pl.Utf8, "pnl": pl.Decimal(*_MONEY),
                "pips": pl.Decimal(*_MONEY)},
    )
    pnl = pl.col("pnl")
    grouped = frame.group_by(by).agg(
        pl.len().alias("trades"),
        (pnl > 0).sum().alias("wins"),
        (pnl < 0).sum().alias("losses"),
        pnl.sum().alias("net_pnl"),
        pl.col("pips").sum().alias("net_pips"),
        pnl.filter(pnl > 0).sum().alias("gross_profit"),
        (-pnl.filter(pnl < 0)).sum().alias("gross_loss"),
    ).sort(by)
    return [_figures(row, by) for row in grouped.iter_rows(named=True)]


def _figures(row: dict, by: str) -> GroupFigures:
    trades, wins, losses = row["trades"], row["wins"], row["losses"]
    gross_profit, gross_loss = _plain(row["gross_profit"] or Decimal(0)), _plain(row["gross_loss"] or Decimal(0))
    net = _plain(row["net_pnl"])
    return GroupFigures(
        key=row[by], trades=trades, wins=wins, losses=losses, win_rate=wins / trades, net_pnl=net,
        net_pips=_plain(row["net_pips"]), gross_profit=gross_profit, gross_loss=gross_loss,
        profit_factor=float(gross_profit / gross_loss) if gross_loss else None,
        avg_win=gross_profit / wins if wins else None, avg_loss=gross_loss / losses if losses else None,
        expectancy=net / trades,
    )
