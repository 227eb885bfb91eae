"""What a report shows: the ledger and its statistics, and the market around it (the price as bars or
candles, the suppressed signals, each trade's SL/TP). The backtest gives its replayed bars, reporter
the candles it keeps from the bars topic (`eafix.reporting.candles.CandleBook`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from eafix.contracts import Bar, SignalSuppressed, TradeClosed
from eafix.contracts.events import ReentryDecision
from eafix.instruments import Instruments
from eafix.reporting.breakdown import GroupFigures
from eafix.reporting.candles import Candles
from eafix.reporting.metrics import Summary


@dataclass(frozen=True)
class ReportContent:
    title: str
    trades: Sequence[TradeClosed]
    summary: Summary
    breakdowns: Mapping[str, Sequence[GroupFigures]] = field(default_factory=dict)
    reentry: Sequence[ReentryDecision] = ()
    bars: Sequence[Bar] = ()  # the replayed bars, resampled for the price chart
    suppressed: Sequence[SignalSuppressed] = ()
    levels: Mapping[str, tuple[Decimal, Decimal]] = field(default_factory=dict)  # trade id -> (SL, TP) price
    counts: Mapping[str, int] = field(default_factory=dict)  # signals, orders, ... of a backtest run
    candles: Sequence[Candles] = ()  # instead of bars: candles already resampled (reporter's)


def trade_levels(trade: TradeClosed, sl_pips: Decimal, tp_pips: Decimal,
                 instruments: Instruments) -> tuple[Decimal, Decimal]:
    """A trade's (SL, TP) price: its order's pip distances from the fill, against the trade's side."""
    side = 1 if trade.direction == "LONG" else -1
    pip = instruments[trade.symbol].distance
    return trade.open_price - side * pip(sl_pips), trade.open_price + side * pip(tp_pips)
