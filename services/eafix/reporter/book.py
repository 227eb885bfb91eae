"""The reporter's ledger in memory: what it learnt from the bus, and the figures only it can compute
(unrealized P&L, fill rate, slippage). The closed-trade statistics come from `eafix.reporting`.

Entries (append-only, each stored once by id, so a redelivered event changes nothing):
- SignalEntry    signal_id -> strategy (a trade's strategy: trade id = its order's client_order_id,
                 order -> signal_id -> strategy; resolved when asked, so arrival order does not matter);
- OrderEntry     an OrderIntent: an order submitted, with its intended entry price (slippage reference)
                 and its SL/TP pip distances (the report's levels; None on orders recorded before);
- FillEntry      the first FILLED/PARTIAL ExecutionReport of an order (fill rate, slippage, open position);
- TradeEntry     a TradeClosed: the ledger row the statistics run over.

Unrealized P&L: each filled order without a closed trade is an open position, marked to the latest
tick of its symbol (LONG at the bid, SHORT at the ask): (mark - fill) x direction x lots x contract
size, in the quote currency, converted to the account currency at the mids of the latest ticks
(`eafix.instruments.QuoteBook`); a position whose symbol or conversion has no tick yet counts as
`unmarked` rather than 0. Slippage of a fill: (fill - intended) in pips, positive when it cost the
trader (LONG filled higher, SHORT filled lower), and in basis points of the intended price.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from eafix.contracts import Direction, ExecutionReport, ExecutionStatus, OrderIntent, PriceTick, Signal, TradeClosed
from eafix.instruments import DEFAULT_INSTRUMENTS, Instruments, QuoteBook
from eafix.reporting.breakdown import UNKNOWN_STRATEGY
from eafix.reporting.content import trade_levels

_FILLS = (ExecutionStatus.FILLED, ExecutionStatus.PARTIAL)


@dataclass(frozen=True)
class SignalEntry:
    signal_id: str
    strategy: str
    symbol: str
    ts: datetime


@dataclass(frozen=True)
class OrderEntry:
    client_order_id: str
    signal_id: str
    symbol: str
    direction: Direction
    lots: Decimal
    entry_price: Decimal
    submitted_at: datetime
    sl_pips: Decimal | None = None
    tp_pips: Decimal | None = None


@dataclass(frozen=True)
class FillEntry:
    client_order_id: str
    symbol: str
    filled_lots: Decimal
    avg_price: Decimal
    filled_at: datetime


@dataclass(frozen=True)
class TradeEntry:
    trade: TradeClosed


Entry = SignalEntry | OrderEntry | FillEntry | TradeEntry


@dataclass(frozen=True)
class Slippage:
    client_order_id: str
    symbol: str
    pips: Decimal
    bps: Decimal


@dataclass(frozen=True)
class Unrealized:
    by_symbol: dict[str, Decimal]
    open_positions: int
    unmarked: int  # open positions without the ticks to mark or convert them

    @property
    def total(self) -> Decimal:
        return sum(self.by_symbol.values(), Decimal(0))


@dataclass
class ReportBook:
    opening_balance: Decimal
    account_currency: str = "USD"
    instruments: Instruments = DEFAULT_INSTRUMENTS
    signals: dict[str, SignalEntry] = field(default_factory=dict)
    orders: dict[str, OrderEntry] = field(default_factory=dict)
    fills: dict[str, FillEntry] = field(default_factory=dict)
    trades: dict[str, TradeClosed] = field(default_factory=dict)
    quotes: QuoteBook = field(default_factory=QuoteBook)
    # running totals, so the gauges a tick updates do not rescan the ledger
    _realized: Decimal = field(default=Decimal(0), init=False)
    _realized_by_day: dict[date, dict[str, Decimal]] = field(default_factory=dict, init=False)

    # --- intake: each returns the new entry, or None for one already known (redelivery) ---------

    def on_signal(self, signal: Signal) -> SignalEntry | None:
        if signal.signal_id in self.signals:
            return None
        entry = SignalEntry(signal.signal_id, signal.strategy, signal.symbol, signal.ts)
        self.add(entry)
        return entry

    def on_order(self, order: OrderIntent, at: datetime) -> OrderEntry | None:
        if order.client_order_id in self.orders:
            return None
        entry = OrderEntry(order.client_order_id, order.signal_id, order.symbol, Direction(order.direction),
                           order.lots, order.entry_price, at, order.sl_pips, order.tp_pips)
        self.add(entry)
        return entry

    def on_execution(self, report: ExecutionReport, at: datetime) -> FillEntry | None:
        if report.status not in _FILLS or report.client_order_id in self.fills or report.avg_price is None:
            return None
        entry = FillEntry(report.client_order_id, report.symbol, report.filled_lots, report.avg_price, at)
        self.add(entry)
        return entry

    def on_trade(self, trade: TradeClosed) -> TradeEntry | None:
        if trade.trade_id in self.trades:
            return None
        entry = TradeEntry(trade)
        self.add(entry)
        return entry

    def on_tick(self, tick: PriceTick) -> None:
        self.quotes.update(tick)

    def add(self, entry: Entry) -> None:
        """Record an entry (intake above, or a restore from storage)."""
        if isinstance(entry, SignalEntry):
            self.signals.setdefault(entry.signal_id, entry)
        elif isinstance(entry, OrderEntry):
            self.orders.setdefault(entry.client_order_id, entry)
        elif isinstance(entry, FillEntry):
            self.fills.setdefault(entry.client_order_id, entry)
        elif entry.trade.trade_id not in self.trades:
            trade = entry.trade
            self.trades[trade.trade_id] = trade
            self._realized += trade.pnl
            day = self._realized_by_day.setdefault(trade.close_time.date(), {})
            day[trade.symbol] = day.get(trade.symbol, Decimal(0)) + trade.pnl

    def restore(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            self.add(entry)

    # --- figures ----------------------------------------------------------------------------------

    def ledger(self, start: datetime | None = None, end: datetime | None = None) -> list[TradeClosed]:
        """Closed trades with start <= close_time < end."""
        return [t for t in self.trades.values()
                if (start is None or t.close_time >= start) and (end is None or t.close_time < end)]

    def strategy_of(self) -> dict[str, str]:
        """Trade id -> strategy, for the trades whose order and signal the ledger holds."""
        out = {}
        for trade_id, trade in self.trades.items():
            order = self.orders.get(trade.client_order_id)
            signal = self.signals.get(order.signal_id) if order else None
            out[trade_id] = signal.strategy if signal else UNKNOWN_STRATEGY
        return out

    def levels(self, trades: Iterable[TradeClosed]) -> dict[str, tuple[Decimal, Decimal]]:
        """Trade id -> (SL, TP) price of the `trades` whose order and its pip distances the ledger holds."""
        out = {}
        for trade in trades:
            order = self.orders.get(trade.client_order_id)
            if order is not None and order.sl_pips is not None and order.tp_pips is not None:
                out[trade.trade_id] = trade_levels(trade, order.sl_pips, order.tp_pips, self.instruments)
        return out

    def realized_total(self) -> Decimal:
        return self._realized

    def realized_on(self, day: date) -> dict[str, Decimal]:
        """Realized P&L per symbol of the trades closed on the UTC day `day`."""
        return dict(self._realized_by_day.get(day, {}))

    def open_fills(self) -> list[FillEntry]:
        closed = {t.client_order_id for t in self.trades.values()}
        return [f for f in self.fills.values() if f.client_order_id not in closed]

    def unrealized(self) -> Unrealized:
        by_symbol: dict[str, Decimal] = {}
        positions = self.open_fills()
        unmarked = 0
        for fill in positions:
            order = self.orders.get(fill.client_order_id)
            value = self._mark(fill, order.direction) if order else None
            if value is None:
                unmarked += 1
                continue
            by_symbol[fill.symbol] = by_symbol.get(fill.symbol, Decimal(0)) + value
        return Unrealized(by_symbol, len(positions), unmarked)

    def _mark(self, fill: FillEntry, direction: Direction) -> Decimal | None:
        quote = self.quotes.get(fill.symbol)
        if quote is None:
            return None
        instrument = self.instruments[fill.symbol]
        sign = 1 if direction is Direction.LONG else -1
        mark = quote.bid if sign == 1 else quote.ask
        in_quote = (mark - fill.avg_price) * sign * fill.filled_lots * instrument.contract_size
        return self.quotes.convert(in_quote, instrument.quote, self.account_currency)

    def equity(self) -> Decimal:
        return self.opening_balance + self.realized_total() + self.unrealized().total

    def fill_rate(self, start: datetime | None = None, end: datetime | None = None) -> tuple[int, int, float | None]:
        """(submitted, filled, filled / submitted) over the orders submitted in [start, end)."""
        orders = [o for o in self.orders.values()
                  if (start is None or o.submitted_at >= start) and (end is None or o.submitted_at < end)]
        filled = sum(1 for o in orders if o.client_order_id in self.fills)
        return len(orders), filled, filled / len(orders) if orders else None

    def slippage(self, start: datetime | None = None, end: datetime | None = None) -> list[Slippage]:
        out = []
        for fill in self.fills.values():
            order = self.orders.get(fill.client_order_id)
            if order is None or (start is not None and fill.filled_at < start) or (end is not None
                                                                                    and fill.filled_at >= end):
                continue
            sign = 1 if order.direction is Direction.LONG else -1
            diff = (fill.avg_price - order.entry_price) * sign
            out.append(Slippage(fill.client_order_id, fill.symbol, self.instruments[fill.symbol].pips(diff),
                                diff / order.entry_price * 10000))
        return out
