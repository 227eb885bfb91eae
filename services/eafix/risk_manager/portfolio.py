"""risk-manager's portfolio: balance (opening + realized), open and reserved positions, realized P&L
per UTC day, the decisions taken, and the change records the adapter persists (one transaction per
handled message). `PortfolioSnapshot` is what a repository loads to rebuild the engine on restart."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from eafix.contracts import Direction, OrderIntent, RiskRejected


class PositionState(StrEnum):
    PENDING = "PENDING"  # approved OrderIntent, no fill yet: counts against every limit (reservation)
    OPEN = "OPEN"  # at least partly filled


@dataclass(frozen=True, slots=True)
class Position:
    client_order_id: str
    signal_id: str | None
    symbol: str
    direction: Direction
    state: PositionState
    lots: Decimal  # volume at risk: reserved lots until terminal, then the filled lots
    filled_lots: Decimal
    sl_pips: Decimal | None
    risk_per_lot: Decimal  # account currency lost per lot at the stop (sized at approval)
    entry_price: Decimal | None
    opened_at: datetime
    updated_at: datetime

    @property
    def risk_amount(self) -> Decimal:
        return self.lots * self.risk_per_lot

    @property
    def currencies(self) -> tuple[str, str]:
        return self.symbol[:3], self.symbol[3:]


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    seq: int
    signal_id: str
    decided_at: datetime
    decision: OrderIntent | RiskRejected

    @property
    def approved(self) -> bool:
        return isinstance(self.decision, OrderIntent)


@dataclass(frozen=True, slots=True)
class RealizedTrade:
    trade_id: str
    client_order_id: str
    symbol: str
    pnl: Decimal  # account currency
    close_time: datetime


@dataclass(frozen=True, slots=True)
class AccountRecord:
    account_id: str
    account_currency: str
    opening_balance: Decimal
    created_at: datetime


# Changes the adapter persists (in order, one transaction per handled message).
@dataclass(frozen=True, slots=True)
class DecisionRecorded:
    record: DecisionRecord


@dataclass(frozen=True, slots=True)
class PositionUpserted:
    position: Position


@dataclass(frozen=True, slots=True)
class PositionRemoved:
    client_order_id: str


@dataclass(frozen=True, slots=True)
class TradeRealized:
    trade: RealizedTrade


PortfolioChange = DecisionRecorded | PositionUpserted | PositionRemoved | TradeRealized


@dataclass(frozen=True)
class PortfolioSnapshot:
    """What a repository loads to rebuild the engine after a restart."""

    account: AccountRecord
    positions: tuple[Position, ...] = ()
    realized_total: Decimal = Decimal(0)
    realized_by_day: Mapping[date, Decimal] = field(default_factory=dict)  # UTC days since the lookback
    recent_trade_ids: tuple[str, ...] = ()  # trades closed since the lookback, oldest first
    decisions: tuple[DecisionRecord, ...] = ()  # most recent ones, ascending seq
    last_seq: int = 0


class Portfolio:
    """Balance (opening + realized), open/reserved positions, realized P&L per UTC day."""

    _DAYS_KEPT = 8

    def __init__(self, account: AccountRecord, *, realized_total: Decimal = Decimal(0),
                 positions: Iterable[Position] = (), realized_by_day: Mapping[date, Decimal] | None = None) -> None:
        self.account = account
        self.realized_total = realized_total
        self.positions: dict[str, Position] = {p.client_order_id: p for p in positions}
        self.realized_by_day: dict[date, Decimal] = dict(realized_by_day or {})

    @property
    def currency(self) -> str:
        return self.account.account_currency

    @property
    def balance(self) -> Decimal:
        return self.account.opening_balance + self.realized_total

    def daily_pnl(self, day: date) -> Decimal:
        return self.realized_by_day.get(day, Decimal(0))

    def book(self, trade: RealizedTrade) -> None:
        self.realized_total += trade.pnl
        day = trade.close_time.date()
        self.realized_by_day[day] = self.realized_by_day.get(day, Decimal(0)) + trade.pnl
        if len(self.realized_by_day) > self._DAYS_KEPT:
            for old in sorted(self.realized_by_day)[: len(self.realized_by_day) - self._DAYS_KEPT]:
                del self.realized_by_day[old]

    def count(self, symbol: str | None = None) -> int:
        if symbol is None:
            return len(self.positions)
        return sum(1 for p in self.positions.values() if p.symbol == symbol)

    def exposure(self, currency: str) -> Decimal:
        """Risk-at-stop (account currency) of the positions whose base or quote is `currency`."""
        return sum((p.risk_amount for p in self.positions.values() if currency in p.currencies), Decimal(0))

