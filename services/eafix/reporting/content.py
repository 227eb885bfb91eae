"""What a report shows: the ledger and its statistics, and what only a backtest knows (the bars, the
suppressed signals, each trade's SL/TP). The reporter fills the first part, the backtest all of it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from eafix.contracts import Bar, SignalSuppressed, TradeClosed
from eafix.contracts.events import ReentryDecision
from eafix.reporting.breakdown import GroupFigures
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
