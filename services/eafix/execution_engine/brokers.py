"""The two in-process execution clients of the `Broker` port (domain.py): the paper broker (simulator
on live ticks) and the simulated bar broker (backtest on bars). The MT4 bridge (`mt4_bridge.MT4Broker`)
is the third. A broker never touches orders or positions of the engine: it answers with
`BrokerEvent`s (acknowledged, filled, rejected, cancelled, expired, closed), and `ExecutionEngine`
applies them through its single fill path.

Prices: LONG opens at the ask and closes at the bid; SHORT opens at the bid and closes at the ask.
Slippage (pips, >= 0) is always adverse and applies to market executions: opening fills, stop-loss
exits and operator closes; a take-profit is a limit order and fills without slippage (at the market
price of the tick that reached it, which is at least as good as the level). Commission is money in
the account currency per lot: `commission_per_lot` on the opening fill (a round-turn charge, as in
the contract examples) and `close_commission_per_lot` on the closing fill (0 by default). Pips are
converted to prices with the instrument table (eafix.instruments).

Fault drills: a `FaultSchedule` makes the paper broker reject or leave unanswered every n-th order it
is given (off by default), so that the OMS's REJECTED and TIMEOUT paths and risk-manager's release of
the reserved exposure can be exercised end to end on a running system (and replayed in a backtest).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from eafix.contracts.events import Bar, PriceTick
from eafix.contracts.primitives import CloseReason, Direction, Timeframe
from eafix.execution_engine.domain import (
    Acknowledged,
    BrokerEvent,
    Cancelled,
    Closed,
    ExecutionError,
    Filled,
    Order,
    Position,
    Rejected,
    protective_levels,
)
from eafix.instruments import DEFAULT_INSTRUMENTS, Instruments

_NOTHING: tuple[BrokerEvent, ...] = ()


@dataclass(frozen=True)
class Costs:
    slippage_pips: Decimal = Decimal(0)
    commission_per_lot: Decimal = Decimal(0)
    close_commission_per_lot: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        for name in ("slippage_pips", "commission_per_lot", "close_commission_per_lot"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise ValueError(f"{name} must be a finite Decimal >= 0, got {value!r}")


@dataclass(frozen=True)
class FaultSchedule:
    """Which orders the paper broker fails on purpose, counted from 1 in the order it is given them
    (per broker: a restarted process counts again). `reject_every` N: orders N, 2N, ... are rejected
    at once; `ignore_every` M: orders M, 2M, ... get no answer at all (no ticket, never filled), so
    the OMS times them out after its ack timeout. 0 turns either off; an order both would hit is
    rejected."""

    reject_every: int = 0
    ignore_every: int = 0

    def __post_init__(self) -> None:
        for name in ("reject_every", "ignore_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")

    def rejects(self, n: int) -> bool:
        return self.reject_every > 0 and n % self.reject_every == 0

    def ignores(self, n: int) -> bool:
        return not self.rejects(n) and self.ignore_every > 0 and n % self.ignore_every == 0


def _adverse(direction: Direction, opening: bool) -> int:
    """+1 when slippage raises the price (buying), -1 when it lowers it (selling)."""
    buying = (direction is Direction.LONG) == opening
    return 1 if buying else -1


class SimulatedBroker:
    """What both simulators share: tickets, orders waiting for a price, costs, fill and close events.
    A subclass says where the market is (`on_tick` / `on_bar`) and how it closes at market (`close`)."""

    def __init__(self, costs: Costs | None, instruments: Instruments, ticket_prefix: str) -> None:
        self.costs = costs or Costs()
        self.instruments = instruments
        self._prefix = ticket_prefix
        self._seq = 0
        self._waiting: dict[str, dict[str, tuple[Order, str]]] = {}  # symbol -> orders without a price yet

    def _ticket(self) -> str:
        self._seq += 1
        return f"{self._prefix}{self._seq}"

    def slippage(self, symbol: str) -> Decimal:
        return self.instruments[symbol].distance(self.costs.slippage_pips)

    def _filled(self, order: Order, ticket: str, market: Decimal, ts: datetime) -> Filled:
        price = market + _adverse(order.direction, True) * self.slippage(order.symbol)
        return Filled(order.client_order_id, f"{order.client_order_id}:open", order.lots, price, ts,
                      commission=self.costs.commission_per_lot * order.lots, broker_order_id=ticket)

    def _closed(self, position_id: str, lots: Decimal, price: Decimal, reason: CloseReason, ts: datetime) -> Closed:
        return Closed(position_id, f"{position_id}:close", price, reason, ts,
                      commission=self.costs.close_commission_per_lot * lots)

    def _wait(self, order: Order, ticket: str) -> None:
        self._waiting.setdefault(order.symbol, {})[order.client_order_id] = (order, ticket)

    def _take_waiting(self, symbol: str) -> Iterable[tuple[Order, str]]:
        waiting = self._waiting.pop(symbol, None)
        return waiting.values() if waiting else ()

    def cancel(self, order: Order, now: datetime, reason: str) -> Sequence[BrokerEvent]:
        self.abandon(order, now)
        return [Cancelled(order.client_order_id, reason, now)]

    def abandon(self, order: Order, now: datetime) -> None:
        waiting = self._waiting.get(order.symbol)
        if waiting is not None:
            waiting.pop(order.client_order_id, None)

    def on_tick(self, tick: PriceTick, positions: Iterable[Position]) -> Sequence[BrokerEvent]:
        return _NOTHING

    def on_bar(self, bar: Bar, positions: Iterable[Position]) -> Sequence[BrokerEvent]:
        return _NOTHING


class PaperBroker(SimulatedBroker):
    """Simulator on live ticks: market orders fill at the latest tick of their symbol (LONG at the ask,
    SHORT at the bid, plus adverse slippage), or at the first tick if none was seen yet; open
    positions are checked against SL/TP on every tick and closed on the tick that crosses a level.
    A position filled on a tick is checked from the next tick on."""

    def __init__(self, costs: Costs | None = None, *, instruments: Instruments = DEFAULT_INSTRUMENTS,
                 ticket_prefix: str = "P", faults: FaultSchedule | None = None) -> None:
        super().__init__(costs, instruments, ticket_prefix)
        self._last: dict[str, PriceTick] = {}
        self.faults = faults or FaultSchedule()
        self._given = 0  # orders submitted to this broker (what the fault schedule counts)

    @staticmethod
    def _entry(order: Order, tick: PriceTick) -> Decimal:
        return tick.ask if order.direction is Direction.LONG else tick.bid

    def submit(self, order: Order, now: datetime) -> Sequence[BrokerEvent]:
        self._given += 1
        if self.faults.rejects(self._given):
            return [Rejected(order.client_order_id, f"paper broker fault schedule: order {self._given} rejected",
                             now)]
        if self.faults.ignores(self._given):
            return _NOTHING
        ticket = self._ticket()
        ack = Acknowledged(order.client_order_id, ticket, now)
        tick = self._last.get(order.symbol)
        if tick is None:
            self._wait(order, ticket)
            return [ack]
        return [ack, self._filled(order, ticket, self._entry(order, tick), now)]

    def _exit(self, position: Position, tick: PriceTick, reason: CloseReason, ts: datetime) -> Closed:
        price = tick.bid if position.direction is Direction.LONG else tick.ask
        if reason is not CloseReason.TP:
            price += _adverse(position.direction, False) * self.slippage(position.symbol)
        return self._closed(position.position_id, position.lots, price, reason, ts)

    def close(self, position: Position, reason: CloseReason, now: datetime) -> Sequence[BrokerEvent]:
        tick = self._last.get(position.symbol)
        if tick is None:
            raise ExecutionError(f"paper broker: no price for {position.symbol} to close {position.position_id}")
        return [self._exit(position, tick, reason, now)]

    def on_tick(self, tick: PriceTick, positions: Iterable[Position]) -> Sequence[BrokerEvent]:
        events: list[BrokerEvent] = []
        for position in positions:  # positions opened before this tick
            if position.direction is Direction.LONG:
                hit = (CloseReason.SL if tick.bid <= position.sl_price
                       else CloseReason.TP if tick.bid >= position.tp_price else None)
            else:
                hit = (CloseReason.SL if tick.ask >= position.sl_price
                       else CloseReason.TP if tick.ask <= position.tp_price else None)
            if hit is not None:
                events.append(self._exit(position, tick, hit, tick.ts))
        self._last[tick.symbol] = tick
        events.extend(self._filled(order, ticket, self._entry(order, tick), tick.ts)
                      for order, ticket in self._take_waiting(tick.symbol))
        return events or _NOTHING


class FillAt(StrEnum):
    NEXT_OPEN = "next_open"  # default: the open of the first bar after the order
    LAST_CLOSE = "last_close"  # immediately, at the close of the latest bar (optimistic)


class SimulatedBarBroker(SimulatedBroker):
    """Backtest broker on bars (bid prices, as MT4 bars; ask = bid + `spread_pips`).

    - A market order fills at the open of the NEXT bar of its symbol (`fill_at=NEXT_OPEN`, default),
      or at once at the latest bar's close (`LAST_CLOSE`), with spread for LONG and slippage.
    - SL/TP are checked against each bar's high/low (LONG: bid low <= SL, bid high >= TP; SHORT: ask
      high >= SL, ask low <= TP), including the bar whose open filled the order. When one bar reaches
      both levels we cannot know which came first and assume the worse: the stop-loss.
    - Exit prices: the level, or the bar's open when the bar opened beyond it (a gap); SL exits take
      slippage. Exits are stamped at the bar's close (`ts_close`); fills at its open (`ts_open`).
    - A stop-and-reverse close (CloseReason.REVERSE) goes with the reversing order: with NEXT_OPEN it
      waits for the next bar and closes at its open (stamped `ts_open`, before SL/TP are looked at),
      where that order fills; other closes (an operator's) take the latest bar's close at once.
    - `timeframe`: only bars of this timeframe drive the broker (None: every bar it is given).
    """

    def __init__(self, costs: Costs | None = None, *, instruments: Instruments = DEFAULT_INSTRUMENTS,
                 fill_at: FillAt = FillAt.NEXT_OPEN, spread_pips: Decimal = Decimal(0),
                 timeframe: Timeframe | None = None, ticket_prefix: str = "S") -> None:
        if not isinstance(spread_pips, Decimal) or not spread_pips.is_finite() or spread_pips < 0:
            raise ValueError(f"spread_pips must be a finite Decimal >= 0, got {spread_pips!r}")
        super().__init__(costs, instruments, ticket_prefix)
        self.fill_at = FillAt(fill_at)
        self.spread_pips = spread_pips
        self.timeframe = timeframe
        self._last_bar: dict[str, Bar] = {}
        self._reversing: dict[str, dict[str, Position]] = {}  # symbol -> positions closing at the next open

    def _spread(self, symbol: str) -> Decimal:
        return self.instruments[symbol].distance(self.spread_pips)

    def _entry(self, order: Order, bid: Decimal) -> Decimal:
        return bid + self._spread(order.symbol) if order.direction is Direction.LONG else bid

    def submit(self, order: Order, now: datetime) -> Sequence[BrokerEvent]:
        ticket = self._ticket()
        ack = Acknowledged(order.client_order_id, ticket, now)
        last = self._last_bar.get(order.symbol)
        if self.fill_at is FillAt.LAST_CLOSE and last is not None:
            return [ack, self._filled(order, ticket, self._entry(order, last.close), now)]
        self._wait(order, ticket)
        return [ack]

    def bar_exit(self, symbol: str, direction: Direction, sl: Decimal, tp: Decimal,
                 bar: Bar) -> tuple[CloseReason, Decimal] | None:
        """(reason, exit price) when `bar` reaches SL or TP, the stop-loss winning a tie."""
        slip = self.slippage(symbol)
        if direction is Direction.LONG:
            if bar.low <= sl:
                return CloseReason.SL, min(sl, bar.open) - slip
            if bar.high >= tp:
                return CloseReason.TP, max(tp, bar.open)
            return None
        spread = self._spread(symbol)
        if bar.high + spread >= sl:
            return CloseReason.SL, max(sl, bar.open + spread) + slip
        if bar.low + spread <= tp:
            return CloseReason.TP, min(tp, bar.open + spread)
        return None

    def close(self, position: Position, reason: CloseReason, now: datetime) -> Sequence[BrokerEvent]:
        if reason is CloseReason.REVERSE and self.fill_at is FillAt.NEXT_OPEN:
            self._reversing.setdefault(position.symbol, {})[position.position_id] = position
            return _NOTHING
        last = self._last_bar.get(position.symbol)
        if last is None:
            raise ExecutionError(f"simulated broker: no bar for {position.symbol} to close {position.position_id}")
        market = last.close if position.direction is Direction.LONG else last.close + self._spread(position.symbol)
        price = market + _adverse(position.direction, False) * self.slippage(position.symbol)
        return [self._closed(position.position_id, position.lots, price, reason, now)]

    def on_bar(self, bar: Bar, positions: Iterable[Position]) -> Sequence[BrokerEvent]:
        if self.timeframe is not None and bar.timeframe != self.timeframe:
            return _NOTHING
        events: list[BrokerEvent] = []
        reversing = self._reversing.pop(bar.symbol, None) or {}
        for position in reversing.values():
            market = bar.open if position.direction is Direction.LONG else bar.open + self._spread(bar.symbol)
            price = market + _adverse(position.direction, False) * self.slippage(bar.symbol)
            events.append(self._closed(position.position_id, position.lots, price, CloseReason.REVERSE, bar.ts_open))
        for position in positions:  # open before this bar
            if position.position_id in reversing:
                continue
            hit = self.bar_exit(position.symbol, position.direction, position.sl_price, position.tp_price, bar)
            if hit is not None:
                events.append(self._closed(position.position_id, position.lots, hit[1], hit[0], bar.ts_close))
        self._last_bar[bar.symbol] = bar
        for order, ticket in self._take_waiting(bar.symbol):
            fill = self._filled(order, ticket, self._entry(order, bar.open), bar.ts_open)
            events.append(fill)
            sl, tp = protective_levels(self.instruments[order.symbol], order.direction, fill.price, order.sl_pips,
                                       order.tp_pips)
            hit = self.bar_exit(order.symbol, order.direction, sl, tp, bar)
            if hit is not None:
                events.append(self._closed(order.client_order_id, order.lots, hit[1], hit[0], bar.ts_close))
        return events or _NOTHING


__all__ = ["Costs", "FaultSchedule", "FillAt", "PaperBroker", "SimulatedBarBroker", "SimulatedBroker"]
