"""The fault suite's workload, its reference and the ledger both are compared by.

Workload: seeded ticks of one symbol, ten per M1 bar, a random walk of 1.5 pips per tick (so the
every-bar strategy's 10-40 pip stops and targets are hit within a few bars), stamped on a day in
the past (history: the services take it with the week-long quote ages of `pipeline_env`). A bar's
first tick repeats the previous tick's prices: the tick that closes a bar (and may bring a signal)
never also hits a stop, whose TradeClosed would race the signal to risk-manager on two streams.

Reference: the same ticks through `eafix backtest`'s in-process replay (the five pipeline stages on
the in-memory bus, the same strategy, risk policy and paper broker).

Ledger: what the reference and the services must agree on exactly — the numbers of signals,
approved and rejected risk decisions, and every closed trade (direction, lots, open and close
price, pips, P&L, close reason, in closing order); the services' is read from PostgreSQL (risk's
decisions, execution's orders, fills and trades) and from the signal stream. Ids and wall-clock
times differ by design and are left out."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from eafix.backtest.data import Dataset
from eafix.backtest.runner import run
from eafix.contracts import PriceTick
from eafix.contracts.strategies import load_strategies_text
from eafix.execution_engine.brokers import FaultSchedule
from eafix.risk_manager.config import RiskConfig
from service.pipeline_env import FIRES_EVERY_BAR, WEEK

SYMBOL = "EURUSD"
TICKS_PER_BAR = 10
STEP_PIPS = 1.5
# the policy both sides run: the services get it as SERVICE_RISK (plus the history's quote age)
RISK = {"account_id": "faults", "daily_drawdown_limit_percent": "100"}


@dataclass(frozen=True)
class Ledger:
    signals: int
    approved: int
    rejected: int
    trades: tuple[tuple[Any, ...], ...]
    fill_times: tuple[datetime, ...] = ()  # the replay's: when each closed trade opened (not compared)

    def differences(self, other: Ledger) -> list[str]:
        out = [f"{name}: {getattr(self, name)} != {getattr(other, name)}"
               for name in ("signals", "approved", "rejected") if getattr(self, name) != getattr(other, name)]
        for i, (mine, theirs) in enumerate(zip(self.trades, other.trades, strict=False)):
            if mine != theirs:  # the first difference, with its neighbours on both sides
                out.append(f"trades from {max(i - 2, 0)}: {self.trades[max(i - 2, 0):i + 3]} != "
                           f"{other.trades[max(i - 2, 0):i + 3]}")
                break
        if sorted(self.trades) == sorted(other.trades) and self.trades != other.trades:
            out.append("the same trades in another order")
        if len(self.trades) != len(other.trades):
            out.append(f"trades: {len(self.trades)} != {len(other.trades)}")
        return out


def workload(seed: int, bars: int, start: datetime) -> list[list[dict[str, str]]]:
    """The ticks of each bar, as data-ingestor's batch API takes them."""
    rng = random.Random(seed)
    mid = 1.10000
    out = []
    for bar in range(bars):
        ticks = []
        for i in range(TICKS_PER_BAR):
            if i or not bar:
                mid = round(mid + rng.gauss(0, STEP_PIPS) * 0.0001, 5)
            ts = start + timedelta(minutes=bar, seconds=i * 60 / TICKS_PER_BAR)
            ticks.append({"symbol": SYMBOL, "ts": ts.isoformat().replace("+00:00", "Z"),
                          "bid": f"{mid:.5f}", "ask": f"{mid + 0.0001:.5f}"})
        out.append(ticks)
    return out


def trade_row(direction: str, lots: Any, open_price: Any, close_price: Any, pips: Any, pnl: Any,
              reason: str) -> tuple[Any, ...]:
    numbers = (Decimal(x).normalize() for x in (lots, open_price, close_price, pips, pnl))
    return (str(direction), *numbers, str(reason))


def reference(bars: list[list[dict[str, str]]], broker_faults: FaultSchedule | None = None) -> Ledger:
    """`broker_faults`: the paper broker's fault drill, as the services' SERVICE_BROKER_FAULTS."""
    ticks = [PriceTick.model_validate({**t, "volume": None}) for batch in bars for t in batch]
    result = asyncio.run(run(Dataset("ticks", ticks, (SYMBOL,)), load_strategies_text(FIRES_EVERY_BAR, source="faults"),
                             risk=RiskConfig.model_validate(RISK), timeframe="M1", broker_faults=broker_faults))
    trades = tuple(trade_row(t.direction, t.lots, t.open_price, t.close_price, t.pips, t.pnl, t.close_reason)
                   for t in result.trades)
    return Ledger(result.signals, result.orders, result.rejected, trades, tuple(t.open_time for t in result.trades))


def risk_env() -> dict[str, Any]:
    """SERVICE_RISK of the services' risk-manager."""
    return {**RISK, "max_quote_age_seconds": WEEK}


def services_ledger(sql: Any, signals: int) -> Ledger:
    """From PostgreSQL (`sql(query)` -> rows) and the signal stream's length."""
    decisions = dict(sql("SELECT outcome, count(*) FROM risk.decisions GROUP BY outcome"))
    trades = tuple(trade_row(*row) for row in sql(
        "SELECT direction, lots, open_price, close_price, pips, pnl, close_reason FROM trades.trades "
        "ORDER BY recorded_at, trade_id"))  # the order they were recorded in: the sequence of closes
    return Ledger(signals, decisions.get("APPROVED", 0), decisions.get("REJECTED", 0), trades)
