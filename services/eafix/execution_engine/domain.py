"""The pure core of execution-engine: OMS transition table, orders, positions, fills, trades, P&L.

No I/O here: `ExecutionEngine` is driven by contract events (`OrderIntent`, `PriceTick`, `Bar`), by
clock checks (`on_clock(now)`) and by broker events, and returns contract events
(`ExecutionReport`, `TradeClosed`). Brokers are the `Broker` port (defined here; the simulators in
`brokers.py`, the MT4 bridge in `mt4_bridge.py`); what changed is handed to the storage adapter
through `drain_changes()`. Pips, levels and P&L use the instrument table (eafix.instruments).

OMS
    An order's life is a transition table over a closed set of events (`OrderEvent`); anything not
    in `TRANSITIONS` is refused: logged (WARNING), recorded in `ExecutionEngine.anomalies`, and the
    order is left exactly as it was. Every applied transition emits one `ExecutionReport`, bumps the
    order's `version` and appends a `Transition` (audit) row.

        PENDING   --SUBMIT--> SUBMITTED   --ACCEPT--> SUBMITTED (broker ticket known; stops the timeout)
        SUBMITTED --PARTIAL_FILL--> PARTIAL --PARTIAL_FILL--> PARTIAL
        SUBMITTED|PARTIAL --FILL--> FILLED  --CLOSE--> CLOSED       PARTIAL --CLOSE--> CLOSED
        PARTIAL   --REMAINDER_CANCELLED--> FILLED (the broker dropped the unfilled rest)
        PENDING|SUBMITTED --REJECT|CANCEL|TIMEOUT|EXPIRE--> REJECTED|CANCELLED|TIMEOUT|EXPIRED
        CLOSED, REJECTED, CANCELLED, TIMEOUT, EXPIRED are terminal.

    TIMEOUT: an order the broker has not answered (no ack, fill or reject) `ack_timeout` (30 s) after
    it was submitted times out at the first `on_clock(now)` with `now - submitted_at >= 30 s`
    (29.999 s is not enough). The clock decides, nothing sleeps. EXPIRED: an acknowledged order that
    is still unfilled `order_ttl` after submission (off by default), or the broker says so.

Fills
    Every broker (simulated, paper, MT4) answers with `BrokerEvent`s and they all go through ONE path
    (`_apply`): it moves the OMS, records fills (deduplicated by `fill_id`, so a re-read fills file
    changes nothing), builds the position (volume-weighted average open price, SL/TP levels from that
    average) and, on close, the trade with pips and P&L. One order opens at most one position; the
    position id (and trade id) is the order's `client_order_id`.

Idempotency
    A redelivered `OrderIntent` (same `idempotency_key`) is a no-op: no second order, no report.
    The engine remembers the keys of live orders and of the last `remember` finished ones;
    `ExecutionGateway` (gateway.py) also asks the repository about keys the engine has forgotten.

Money
    Decimal throughout. P&L of a closed trade = (close - open) x lots x contract size x (+1 LONG / -1
    SHORT), in the quote currency, converted to the account currency at the mids of the latest quotes
    (the same instrument and conversion model as risk-manager's sizing), minus the commissions of
    the opening and closing fills, rounded half-up to `money_quantum` (0.01). Pips: (close - open) /
    pip size for LONG, (open - close) / pip size for SHORT, rounded half-up (away from zero on a tie,
    so -12.25 -> -12.3) to 0.1. SL/TP levels lie on the instrument's price grid.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any, Protocol, TypeAlias

from eafix.contracts.events import Bar, ExecutionReport, OrderIntent, PriceTick, TradeClosed
from eafix.contracts.primitives import CloseReason, Direction, ExecutionStatus
from eafix.instruments import DEFAULT_INSTRUMENTS, Instrument, Instruments, QuoteBook, Quoted
from eafix.runtime.clock import Clock

log = logging.getLogger(__name__)

S = ExecutionStatus
ACK_TIMEOUT = timedelta(seconds=30)
PRICE_PLACES = Decimal("1e-8")  # the contracts' Price/Money carry at most 8 decimals
ONE_MICROSECOND = timedelta(microseconds=1)
_ZERO = Decimal(0)
_TENTH = Decimal("0.1")
_REASON_MAX = 500


# --- pips, levels, close reasons ---------------------------------------------------------------------

def signed(direction: Direction) -> int:
    return 1 if direction is Direction.LONG else -1


def pips_between(instrument: Instrument, direction: Direction, open_price: Decimal, close_price: Decimal) -> Decimal:
    """Result in pips, rounded half-up (ties away from zero) to 0.1."""
    pips = instrument.pips((close_price - open_price) * signed(direction)).quantize(_TENTH, rounding=ROUND_HALF_UP)
    return pips if pips else Decimal("0.0")  # never "-0.0"


def protective_levels(instrument: Instrument, direction: Direction, open_price: Decimal, sl_pips: Decimal,
                      tp_pips: Decimal) -> tuple[Decimal, Decimal]:
    """(stop-loss price, take-profit price) at `sl_pips` / `tp_pips` from the open price, on the
    instrument's price grid (a broker refuses a level with more decimals than the symbol quotes)."""
    side = signed(direction)
    return (instrument.round_price(open_price - side * instrument.distance(sl_pips)),
            instrument.round_price(open_price + side * instrument.distance(tp_pips)))


_CLOSE_REASONS: Mapping[str, CloseReason] = {
    "tp": CloseReason.TP, "take_profit": CloseReason.TP,
    "sl": CloseReason.SL, "stop_loss": CloseReason.SL,
    "manual": CloseReason.MANUAL,
    "timeout": CloseReason.TIMEOUT,
    "broker_reject": CloseReason.BROKER_REJECT, "rejected": CloseReason.BROKER_REJECT,
}


def classify_close_reason(raw: str | None) -> CloseReason:
    """A raw close reason (EA, broker) -> canonical; case-insensitive; anything unknown is MANUAL."""
    return _CLOSE_REASONS.get((raw or "").strip().lower(), CloseReason.MANUAL)


def average_price(notional: Decimal, lots: Decimal) -> Decimal:
    """Volume-weighted average price, exact when it has at most 8 decimals, else rounded to 8."""
    avg = notional / lots
    exponent = avg.as_tuple().exponent
    if isinstance(exponent, int) and (exponent < -8 or exponent > 0):
        avg = avg.quantize(PRICE_PLACES if exponent < -8 else Decimal(1), rounding=ROUND_HALF_EVEN)
    return avg


def _money8(value: Decimal) -> Decimal:
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -8:
        return value.quantize(PRICE_PLACES, rounding=ROUND_HALF_UP)
    return value


def _clip(reason: str | None) -> str | None:
    if reason is None:
        return None
    reason = reason.strip() or "unspecified"
    return reason if len(reason) <= _REASON_MAX else reason[: _REASON_MAX - 1] + "~"


# --- the OMS transition table ------------------------------------------------------------------------

class OrderEvent(StrEnum):
    """The closed set of order life-cycle events."""

    SUBMIT = "SUBMIT"
    ACCEPT = "ACCEPT"
    PARTIAL_FILL = "PARTIAL_FILL"
    FILL = "FILL"
    REMAINDER_CANCELLED = "REMAINDER_CANCELLED"
    CLOSE = "CLOSE"
    REJECT = "REJECT"
    CANCEL = "CANCEL"
    TIMEOUT = "TIMEOUT"
    EXPIRE = "EXPIRE"


E = OrderEvent
TRANSITIONS: Mapping[tuple[ExecutionStatus, OrderEvent], ExecutionStatus] = {
    (S.PENDING, E.SUBMIT): S.SUBMITTED,
    (S.PENDING, E.REJECT): S.REJECTED,
    (S.PENDING, E.CANCEL): S.CANCELLED,
    (S.PENDING, E.TIMEOUT): S.TIMEOUT,
    (S.PENDING, E.EXPIRE): S.EXPIRED,
    (S.SUBMITTED, E.ACCEPT): S.SUBMITTED,
    (S.SUBMITTED, E.PARTIAL_FILL): S.PARTIAL,
    (S.SUBMITTED, E.FILL): S.FILLED,
    (S.SUBMITTED, E.REJECT): S.REJECTED,
    (S.SUBMITTED, E.CANCEL): S.CANCELLED,
    (S.SUBMITTED, E.TIMEOUT): S.TIMEOUT,
    (S.SUBMITTED, E.EXPIRE): S.EXPIRED,
    (S.PARTIAL, E.PARTIAL_FILL): S.PARTIAL,
    (S.PARTIAL, E.FILL): S.FILLED,
    (S.PARTIAL, E.REMAINDER_CANCELLED): S.FILLED,
    (S.PARTIAL, E.CLOSE): S.CLOSED,
    (S.FILLED, E.CLOSE): S.CLOSED,
}
TERMINAL: frozenset[ExecutionStatus] = frozenset({S.CLOSED, S.REJECTED, S.CANCELLED, S.TIMEOUT, S.EXPIRED})
_AWAITING_BROKER = frozenset({S.PENDING, S.SUBMITTED})


def next_status(status: ExecutionStatus, event: OrderEvent) -> ExecutionStatus | None:
    """The state `event` leads to from `status`, or None when the transition is illegal."""
    return TRANSITIONS.get((status, event))


def evolve(record, **changes: object):
    """`dataclasses.replace` for this module's frozen slotted records, faster (it sits on the order hot
    path): the fields, in order, passed positionally. A name that is not a field raises AttributeError."""
    cls = type(record)
    new = cls(*[changes.pop(name) if name in changes else getattr(record, name) for name in cls.__slots__])
    if changes:
        raise AttributeError(f"{cls.__name__} has no field(s) {', '.join(changes)}")
    return new


class IllegalTransition(ValueError):
    def __init__(self, status: ExecutionStatus, event: OrderEvent) -> None:
        super().__init__(f"{event.value} is not allowed in state {status.value}")
        self.status, self.event = status, event


def transition(order: Order, event: OrderEvent, at: datetime, **changes: object) -> Order:
    """The order after `event` (a new record, version + 1); raises IllegalTransition, leaving `order` as is."""
    target = next_status(order.status, event)
    if target is None:
        raise IllegalTransition(order.status, event)
    return evolve(order, status=target, version=order.version + 1, updated_at=at, **changes)


# --- records -------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Order:
    client_order_id: str
    idempotency_key: str
    signal_id: str
    symbol: str
    direction: Direction
    lots: Decimal
    sl_pips: Decimal
    tp_pips: Decimal
    entry_price: Decimal
    risk_percent: Decimal
    account_balance: Decimal
    account_currency: str
    status: ExecutionStatus
    created_at: datetime
    updated_at: datetime
    version: int = 1
    broker_order_id: str | None = None
    filled_lots: Decimal = _ZERO
    fill_notional: Decimal = _ZERO  # sum of price x lots over the opening fills (exact)
    commission: Decimal = _ZERO
    reason: str | None = None
    submitted_at: datetime | None = None
    acknowledged_at: datetime | None = None

    @classmethod
    def from_intent(cls, intent: OrderIntent, now: datetime) -> Order:
        return cls(
            client_order_id=intent.client_order_id, idempotency_key=intent.idempotency_key,
            signal_id=intent.signal_id, symbol=intent.symbol, direction=intent.direction, lots=intent.lots,
            sl_pips=intent.sl_pips, tp_pips=intent.tp_pips, entry_price=intent.entry_price,
            risk_percent=intent.risk_percent, account_balance=intent.account_balance,
            account_currency=intent.account_currency, status=S.PENDING, created_at=now, updated_at=now,
        )

    @property
    def avg_price(self) -> Decimal | None:
        return average_price(self.fill_notional, self.filled_lots) if self.filled_lots else None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


class PositionStatus(StrEnum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"


@dataclass(frozen=True, slots=True)
class Position:
    position_id: str  # == client_order_id of the opening order (also the trade id)
    client_order_id: str
    symbol: str
    direction: Direction
    account_currency: str
    lots: Decimal
    open_notional: Decimal  # sum of price x lots of the opening fills (exact)
    open_price: Decimal  # volume-weighted average open price
    sl_price: Decimal
    tp_price: Decimal
    open_time: datetime
    commission: Decimal  # charged so far (opening fills, then the closing fill)
    status: PositionStatus = PositionStatus.OPEN
    version: int = 1
    broker_order_id: str | None = None
    close_requested_at: datetime | None = None
    close_price: Decimal | None = None
    close_time: datetime | None = None
    close_reason: CloseReason | None = None
    pips: Decimal | None = None
    pnl: Decimal | None = None

    @property
    def is_open(self) -> bool:
        return self.status is PositionStatus.OPEN


class FillKind(StrEnum):
    OPEN = "OPEN"
    CLOSE = "CLOSE"


@dataclass(frozen=True, slots=True)
class Fill:
    fill_id: str
    client_order_id: str
    kind: FillKind
    symbol: str
    direction: Direction  # of the position (a CLOSE fill of a LONG trades the other way)
    lots: Decimal
    price: Decimal
    commission: Decimal
    ts: datetime


@dataclass(frozen=True, slots=True)
class Transition:
    """Audit row: one applied OMS transition (version = the order's version after it)."""

    client_order_id: str
    version: int
    event: str  # an OrderEvent, or CREATE for the PENDING row
    from_status: ExecutionStatus | None
    to_status: ExecutionStatus
    at: datetime
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Trade:
    trade_id: str
    client_order_id: str
    symbol: str
    direction: Direction
    lots: Decimal
    open_price: Decimal
    close_price: Decimal
    open_time: datetime
    close_time: datetime
    pips: Decimal
    gross_pnl: Decimal  # account currency, before commission
    commission: Decimal
    pnl: Decimal  # net, rounded to the money quantum
    account_currency: str
    close_reason: CloseReason

    def to_event(self) -> TradeClosed:
        return TradeClosed(
            trade_id=self.trade_id, client_order_id=self.client_order_id, symbol=self.symbol,
            direction=self.direction, lots=self.lots, open_price=self.open_price, close_price=self.close_price,
            open_time=self.open_time, close_time=self.close_time, pips=self.pips, pnl=self.pnl,
            account_currency=self.account_currency, close_reason=self.close_reason,
        )


@dataclass
class ChangeSet:
    """What changed since the last drain, for the repository to apply in one transaction.
    `orders` and `positions` hold the latest snapshot of each changed row."""

    orders: list[Order] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.orders or self.transitions or self.fills or self.positions or self.trades)


# --- broker events (what every broker answers with) ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Acknowledged:
    client_order_id: str
    broker_order_id: str
    ts: datetime


@dataclass(frozen=True, slots=True)
class Filled:
    client_order_id: str
    fill_id: str
    lots: Decimal
    price: Decimal
    ts: datetime
    commission: Decimal = _ZERO
    broker_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    client_order_id: str
    reason: str
    ts: datetime
    broker_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class Cancelled:
    client_order_id: str
    reason: str
    ts: datetime


@dataclass(frozen=True, slots=True)
class Expired:
    client_order_id: str
    reason: str
    ts: datetime


@dataclass(frozen=True, slots=True)
class Closed:
    position_id: str
    fill_id: str
    price: Decimal
    reason: CloseReason
    ts: datetime
    commission: Decimal = _ZERO


BrokerEvent: TypeAlias = Acknowledged | Filled | Rejected | Cancelled | Expired | Closed
EngineOutput: TypeAlias = ExecutionReport | TradeClosed


class Broker(Protocol):
    """The execution-client port: what the engine needs from a venue (simulated, paper, MT4). Every
    method returns the broker's immediate answers (possibly none: the MT4 bridge answers later,
    through `ExecutionEngine.on_broker_events`)."""

    def submit(self, order: Order, now: datetime) -> Sequence[BrokerEvent]:
        """Send a market order for `order.lots` in `order.direction`."""
        ...

    def cancel(self, order: Order, now: datetime, reason: str) -> Sequence[BrokerEvent]:
        """Cancel an unfilled order (answer: Cancelled, now or later)."""
        ...

    def abandon(self, order: Order, now: datetime) -> None:
        """The engine gave up on the order by its own clock (TIMEOUT, EXPIRED): never fill it."""
        ...

    def close(self, position: Position, reason: CloseReason, now: datetime) -> Sequence[BrokerEvent]:
        """Close the whole position at market (answer: Closed, now or later)."""
        ...

    def on_tick(self, tick: PriceTick, positions: Iterable[Position]) -> Sequence[BrokerEvent]:
        """A quote for `tick.symbol`; `positions` are the engine's open positions of that symbol
        (read them, do not keep them)."""
        ...

    def on_bar(self, bar: Bar, positions: Iterable[Position]) -> Sequence[BrokerEvent]:
        """A closed bar for `bar.symbol` (backtest)."""
        ...


# --- anomalies and errors --------------------------------------------------------------------------------

class AnomalyKind(StrEnum):
    ILLEGAL_TRANSITION = "ILLEGAL_TRANSITION"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    UNKNOWN_POSITION = "UNKNOWN_POSITION"
    DUPLICATE_CLIENT_ORDER_ID = "DUPLICATE_CLIENT_ORDER_ID"
    OVERFILL = "OVERFILL"


@dataclass(frozen=True, slots=True)
class Anomaly:
    kind: AnomalyKind
    client_order_id: str
    detail: str
    at: datetime


class ExecutionError(Exception):
    """Base of the errors the engine raises on operator requests (never on bus events)."""


class UnknownPositionError(ExecutionError, LookupError):
    pass


class PositionClosedError(ExecutionError):
    pass


class UnknownOrderError(ExecutionError, LookupError):
    pass


class OrderNotCancellableError(ExecutionError):
    pass


# --- the engine ----------------------------------------------------------------------------------------------

def _bounded_put(store: OrderedDict, key: str, value: object, limit: int) -> None:
    store[key] = value
    store.move_to_end(key)
    while len(store) > limit:
        store.popitem(last=False)


class ExecutionEngine:
    """Orders -> broker -> fills -> positions -> trades, for one broker (see the module docstring).

    Not thread-safe; call it from one task (ExecutionGateway serialises the HTTP and bus callers).

    Options: `ack_timeout` (30 s) and `order_ttl` (None: off) drive TIMEOUT and EXPIRED; `money_quantum`
    rounds P&L; `instruments` is the instrument table (the broker's must be the same); `record_changes=False`
    (a backtest without storage) keeps no ChangeSet; `remember` bounds the finished orders, closed
    positions and fill ids kept for idempotency.
    """

    def __init__(self, clock: Clock, broker: Broker, *, ack_timeout: timedelta = ACK_TIMEOUT,
                 order_ttl: timedelta | None = None, money_quantum: Decimal = Decimal("0.01"),
                 instruments: Instruments = DEFAULT_INSTRUMENTS, record_changes: bool = True,
                 remember: int = 100_000) -> None:
        self._clock = clock
        self._broker = broker
        self._ack_timeout = ack_timeout
        self._order_ttl = order_ttl
        self._money_quantum = money_quantum
        self._record = record_changes
        self._remember = remember
        self._instruments = instruments
        self._book = QuoteBook()
        self._orders: dict[str, Order] = {}  # live: not terminal (FILLED/PARTIAL ones until their close)
        self._keys: dict[str, str] = {}  # idempotency key -> client_order_id, live orders
        self._done: OrderedDict[str, Order] = OrderedDict()  # recently finished orders (bounded)
        self._done_keys: OrderedDict[str, str] = OrderedDict()
        self._positions: dict[str, Position] = {}  # open
        self._by_symbol: dict[str, dict[str, Position]] = {}  # open, per symbol (what brokers watch)
        self._closed: OrderedDict[str, Position] = OrderedDict()  # recently closed (bounded)
        self._fill_ids: OrderedDict[str, None] = OrderedDict()
        self.anomalies: deque[Anomaly] = deque(maxlen=1000)
        self._changes = ChangeSet()
        self._dirty_orders: dict[str, Order] = {}
        self._dirty_positions: dict[str, Position] = {}

    # --- queries ---------------------------------------------------------------------------------------

    @property
    def broker(self) -> Broker:
        return self._broker

    @property
    def quotes(self) -> QuoteBook:
        return self._book

    def order(self, client_order_id: str) -> Order | None:
        return self._orders.get(client_order_id) or self._done.get(client_order_id)

    def live_orders(self) -> list[Order]:
        return list(self._orders.values())

    def position(self, position_id: str) -> Position | None:
        return self._positions.get(position_id) or self._closed.get(position_id)

    def open_positions(self, symbol: str | None = None) -> list[Position]:
        if symbol is None:
            return list(self._positions.values())
        return list(self._by_symbol.get(symbol, {}).values())

    def knows_idempotency_key(self, key: str) -> bool:
        return key in self._keys or key in self._done_keys

    # --- state from storage ------------------------------------------------------------------------------

    def restore(self, orders: Iterable[Order], positions: Iterable[Position] = (),
                fill_ids: Iterable[str] = ()) -> None:
        """Load state after a restart (live orders, open positions, their fill ids); records nothing."""
        for order in orders:
            self._put_order(order)
        for position in positions:
            self._put_position(position)
        for fill_id in fill_ids:
            _bounded_put(self._fill_ids, fill_id, None, self._remember)

    def remember(self, order: Order) -> None:
        """Make a stored order known again (e.g. found by its idempotency key in the repository)."""
        if self.order(order.client_order_id) is None:
            self._put_order(order)

    def drain_changes(self) -> ChangeSet:
        """What changed since the last call (empty when `record_changes` is off)."""
        changes, self._changes = self._changes, ChangeSet()
        changes.orders = list(self._dirty_orders.values())
        changes.positions = list(self._dirty_positions.values())
        self._dirty_orders.clear()
        self._dirty_positions.clear()
        return changes

    # --- inputs --------------------------------------------------------------------------------------------

    def on_order_intent(self, intent: OrderIntent) -> list[EngineOutput]:
        """Create, check and submit the order; a redelivered intent (same idempotency_key) is a no-op.
        A stop-and-reverse intent (`reverse`) first closes the open positions of its symbol in the
        other direction (CloseReason.REVERSE) at the broker's current price (see close_position)."""
        if self.knows_idempotency_key(intent.idempotency_key):
            return []
        now = self._clock.now()
        if self.order(intent.client_order_id) is not None:
            self._anomaly(AnomalyKind.DUPLICATE_CLIENT_ORDER_ID, intent.client_order_id,
                          f"a different idempotency_key ({intent.idempotency_key}) reuses an existing order id", now)
            return []
        out: list[EngineOutput] = []
        if intent.reverse:
            for position in self.open_positions(intent.symbol):
                if position.direction is not intent.direction and position.close_requested_at is None:
                    out.extend(self.close_position(position.position_id, CloseReason.REVERSE))
        order = Order.from_intent(intent, now)
        self._put_order(order)
        self._log_transition(order, "CREATE", None, now, None)
        out.append(self._report(order))
        problem = self._intake_problem(order)
        if problem is not None:
            rejected = self._transition(order, E.REJECT, now, reason=problem)
            if rejected is not None:
                out.append(self._report(rejected))
            return out
        submitted = self._transition(order, E.SUBMIT, now, submitted_at=now)
        if submitted is None:  # pragma: no cover - PENDING -> SUBMITTED is in the table
            return out
        out.append(self._report(submitted))
        self._apply_all(self._broker.submit(submitted, now), out)
        return out

    def on_tick(self, tick: PriceTick) -> list[EngineOutput]:
        """Update the quotes; the broker fills waiting orders and checks SL/TP on this tick."""
        self._book.update(tick)
        watched = self._by_symbol.get(tick.symbol)
        events = self._broker.on_tick(tick, watched.values() if watched else ())
        if not events:
            return []
        out: list[EngineOutput] = []
        self._apply_all(events, out)
        return out

    def on_bar(self, bar: Bar) -> list[EngineOutput]:
        """Backtest: the bar's close is the latest quote; the simulated broker fills at this bar's
        open what was submitted before it and checks SL/TP against its high/low."""
        self._book.update(Quoted(bar.symbol, bar.ts_close, bar.close, bar.close))
        watched = self._by_symbol.get(bar.symbol)
        events = self._broker.on_bar(bar, watched.values() if watched else ())
        if not events:
            return []
        out: list[EngineOutput] = []
        self._apply_all(events, out)
        return out

    def on_broker_events(self, events: Iterable[BrokerEvent]) -> list[EngineOutput]:
        """Answers that arrive on their own (the MT4 bridge's fills file)."""
        out: list[EngineOutput] = []
        self._apply_all(events, out)
        return out

    def on_clock(self, now: datetime) -> list[ExecutionReport]:
        """Timers: TIMEOUT for orders the broker has not answered within `ack_timeout`, EXPIRED for
        acknowledged orders still unfilled after `order_ttl`."""
        out: list[ExecutionReport] = []
        for order in [o for o in self._orders.values() if o.status in _AWAITING_BROKER]:
            since = order.submitted_at or order.created_at
            if order.acknowledged_at is None:
                if now - since >= self._ack_timeout:
                    seconds = format(Decimal(self._ack_timeout.total_seconds()).normalize(), "f")
                    self._expire(order, E.TIMEOUT, now, f"no broker answer within {seconds} s", out)
            elif self._order_ttl is not None and now - since >= self._order_ttl:
                self._expire(order, E.EXPIRE, now, "unfilled at the end of its time to live", out)
        return out

    def cancel_order(self, client_order_id: str, reason: str = "cancelled by operator") -> list[ExecutionReport]:
        order = self._orders.get(client_order_id)
        if order is None:
            if client_order_id in self._done:
                raise OrderNotCancellableError(f"order {client_order_id} is {self._done[client_order_id].status}")
            raise UnknownOrderError(client_order_id)
        now = self._clock.now()
        out: list[EngineOutput] = []
        if order.status is S.PENDING:
            self._apply(Cancelled(client_order_id, reason, now), out)
        elif order.status is S.SUBMITTED:
            self._apply_all(self._broker.cancel(order, now, reason), out)
        else:
            raise OrderNotCancellableError(f"order {client_order_id} is {order.status}")
        return [o for o in out if isinstance(o, ExecutionReport)]

    def close_position(self, position_id: str, reason: CloseReason = CloseReason.MANUAL) -> list[EngineOutput]:
        """Ask the broker to close an open position. Paper and simulated brokers close at once
        (the result holds the CLOSED report and the TradeClosed); the MT4 bridge answers later, so the
        position is marked `close_requested_at` and the result is empty."""
        position = self._positions.get(position_id)
        if position is None:
            if position_id in self._closed:
                raise PositionClosedError(f"position {position_id} is already closed")
            raise UnknownPositionError(position_id)
        now = self._clock.now()
        events = self._broker.close(position, reason, now)
        out: list[EngineOutput] = []
        self._apply_all(events, out)
        still_open = self._positions.get(position_id)
        if still_open is not None and still_open.close_requested_at is None:
            self._put_position(evolve(still_open, close_requested_at=now, version=still_open.version + 1),
                               dirty=True)
        return out

    # --- the one path for broker answers -------------------------------------------------------------

    def _apply_all(self, events: Iterable[BrokerEvent], out: list) -> None:
        for event in events:
            self._apply(event, out)

    def _apply(self, event: BrokerEvent, out: list) -> None:
        if isinstance(event, Filled):
            self._on_filled(event, out)
        elif isinstance(event, Closed):
            self._on_closed(event, out)
        elif isinstance(event, Acknowledged):
            self._on_acknowledged(event, out)
        elif isinstance(event, Rejected):
            self._on_final(event.client_order_id, E.REJECT, event.reason, out,
                           broker_order_id=event.broker_order_id)
        elif isinstance(event, Cancelled):
            order = self.order(event.client_order_id)
            kind = E.REMAINDER_CANCELLED if order is not None and order.status is S.PARTIAL else E.CANCEL
            self._on_final(event.client_order_id, kind, event.reason, out)
        elif isinstance(event, Expired):
            self._on_final(event.client_order_id, E.EXPIRE, event.reason, out)
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"not a broker event: {event!r}")

    def _on_acknowledged(self, event: Acknowledged, out: list) -> None:
        order = self._known_order(event.client_order_id, "acknowledgement")
        if order is None:
            return
        if order.status is S.SUBMITTED and order.acknowledged_at is not None \
                and order.broker_order_id == event.broker_order_id:
            return  # the same acknowledgement again
        now = self._clock.now()
        new = self._transition(order, E.ACCEPT, now, broker_order_id=event.broker_order_id, acknowledged_at=now,
                               detail=f"broker ticket {event.broker_order_id}")
        if new is not None:
            out.append(self._report(new))

    def _on_final(self, client_order_id: str, kind: OrderEvent, reason: str, out: list,
                  broker_order_id: str | None = None) -> None:
        order = self._known_order(client_order_id, kind.value.lower())
        if order is None:
            return
        if order.status in TERMINAL and next_status(order.status, kind) is None:
            if order.status == next_status(S.SUBMITTED, kind):
                return  # the same final answer again (a re-read fills file)
            if kind is E.CANCEL and order.status in (S.TIMEOUT, S.EXPIRED):
                return  # the broker confirms the cancel we sent when the order timed out or expired
        if kind is E.REMAINDER_CANCELLED:
            reason = f"unfilled remainder {order.lots - order.filled_lots} cancelled: {reason}"
        changes: dict[str, Any] = {"reason": _clip(reason)}
        if broker_order_id is not None:
            changes["broker_order_id"] = broker_order_id
        new = self._transition(order, kind, self._clock.now(), **changes)
        if new is None:
            return
        out.append(self._report(new))

    def _on_filled(self, event: Filled, out: list) -> None:
        if event.fill_id in self._fill_ids:
            return  # this fill was applied already
        order = self._known_order(event.client_order_id, f"fill {event.fill_id}")
        if order is None:
            return
        now = self._clock.now()
        cumulative = order.filled_lots + event.lots
        if event.lots <= 0 or cumulative > order.lots:
            self._anomaly(AnomalyKind.OVERFILL, order.client_order_id,
                          f"fill {event.fill_id} of {event.lots} lots on {order.filled_lots}/{order.lots} refused", now)
            return
        kind = E.FILL if cumulative == order.lots else E.PARTIAL_FILL
        new = self._transition(
            order, kind, now, filled_lots=cumulative,
            fill_notional=order.fill_notional + event.price * event.lots,
            commission=order.commission + event.commission,
            broker_order_id=event.broker_order_id or order.broker_order_id,
            acknowledged_at=order.acknowledged_at or now,
            detail=f"fill {event.fill_id}: {event.lots} @ {event.price}",
        )
        if new is None:
            return
        _bounded_put(self._fill_ids, event.fill_id, None, self._remember)
        if self._record:
            self._changes.fills.append(Fill(event.fill_id, order.client_order_id, FillKind.OPEN, order.symbol,
                                            order.direction, event.lots, event.price, event.commission, event.ts))
        self._open_or_add(new, event)
        out.append(self._report(new))

    def _open_or_add(self, order: Order, fill: Filled) -> None:
        position = self._positions.get(order.client_order_id)
        if position is None:
            notional, lots, commission, version = fill.price * fill.lots, fill.lots, fill.commission, 1
            open_time = fill.ts
        else:
            notional = position.open_notional + fill.price * fill.lots
            lots = position.lots + fill.lots
            commission, version = position.commission + fill.commission, position.version + 1
            open_time = position.open_time
        open_price = average_price(notional, lots)
        sl, tp = protective_levels(self._instruments[order.symbol], order.direction, open_price, order.sl_pips,
                                   order.tp_pips)
        updated = Position(
            position_id=order.client_order_id, client_order_id=order.client_order_id, symbol=order.symbol,
            direction=order.direction, account_currency=order.account_currency, lots=lots,
            open_notional=notional, open_price=open_price, sl_price=sl, tp_price=tp, open_time=open_time,
            commission=commission, version=version, broker_order_id=order.broker_order_id,
            close_requested_at=position.close_requested_at if position is not None else None,
        )
        self._put_position(updated, dirty=True)

    def _on_closed(self, event: Closed, out: list) -> None:
        if event.fill_id in self._fill_ids:
            return
        position = self._positions.get(event.position_id)
        now = self._clock.now()
        if position is None:
            detail = "already closed" if event.position_id in self._closed else "no such open position"
            self._anomaly(AnomalyKind.UNKNOWN_POSITION, event.position_id,
                          f"close {event.fill_id} at {event.price} refused: {detail}", now)
            return
        order = self._orders.get(position.client_order_id)
        if order is None:  # pragma: no cover - an open position keeps its order live
            self._anomaly(AnomalyKind.UNKNOWN_ORDER, position.client_order_id, "open position without its order", now)
            return
        commission = position.commission + event.commission
        new = self._transition(order, E.CLOSE, now, commission=order.commission + event.commission,
                               detail=f"close {event.fill_id} @ {event.price} ({event.reason})")
        if new is None:
            return
        _bounded_put(self._fill_ids, event.fill_id, None, self._remember)
        close_time = max(event.ts, position.open_time + ONE_MICROSECOND)  # close_time > open_time
        instrument = self._instruments[position.symbol]
        pips = pips_between(instrument, position.direction, position.open_price, event.price)
        gross_quote = (event.price * position.lots - position.open_notional) * instrument.contract_size * signed(
            position.direction)
        gross = self._to_account(position, gross_quote, event.price)
        pnl = (gross - commission).quantize(self._money_quantum, rounding=ROUND_HALF_UP)
        if not pnl:
            pnl = abs(pnl)
        trade = Trade(
            trade_id=position.position_id, client_order_id=position.client_order_id, symbol=position.symbol,
            direction=position.direction, lots=position.lots, open_price=position.open_price,
            close_price=event.price, open_time=position.open_time, close_time=close_time, pips=pips,
            gross_pnl=gross, commission=commission, pnl=pnl, account_currency=position.account_currency,
            close_reason=event.reason,
        )
        closed = evolve(position, status=PositionStatus.CLOSED, version=position.version + 1, commission=commission,
                         close_price=event.price, close_time=close_time, close_reason=event.reason, pips=pips, pnl=pnl)
        self._put_position(closed, dirty=True)
        if self._record:
            self._changes.fills.append(Fill(event.fill_id, position.client_order_id, FillKind.CLOSE, position.symbol,
                                            position.direction, position.lots, event.price, event.commission,
                                            close_time))
            self._changes.trades.append(trade)
        out.append(self._report(new))
        out.append(trade.to_event())

    # --- helpers ------------------------------------------------------------------------------------------------

    def _to_account(self, position: Position, amount: Decimal, close_price: Decimal) -> Decimal:
        """`amount` in the quote currency, in the account currency (at the mids; a position in the
        account's own base currency converts at its close price)."""
        instrument = self._instruments[position.symbol]
        account = position.account_currency
        converted = self._book.convert(amount, instrument.quote, account)
        if converted is None and account == instrument.base:
            converted = amount / close_price
        if converted is None:  # pragma: no cover - refused at intake (the book never forgets a pair)
            raise ExecutionError(f"no quote converts {instrument.quote} to {account}")
        return converted

    def _intake_problem(self, order: Order) -> str | None:
        try:
            instrument = self._instruments[order.symbol]
        except ValueError as exc:
            return str(exc)
        account = order.account_currency
        if account in (instrument.base, instrument.quote) or self._book.rate(instrument.quote, account) is not None:
            return None
        return f"no quote to convert {instrument.quote} P&L into the account currency {account}"

    def _expire(self, order: Order, kind: OrderEvent, now: datetime, reason: str, out: list) -> None:
        new = self._transition(order, kind, now, reason=reason)
        if new is not None:
            out.append(self._report(new))
            self._broker.abandon(new, now)

    def _known_order(self, client_order_id: str, what: str) -> Order | None:
        order = self.order(client_order_id)
        if order is None:
            self._anomaly(AnomalyKind.UNKNOWN_ORDER, client_order_id, f"{what} for an unknown order",
                          self._clock.now())
        return order

    def _transition(self, order: Order, event: OrderEvent, at: datetime, detail: str | None = None,
                    **changes: object) -> Order | None:
        try:
            new = transition(order, event, at, **changes)
        except IllegalTransition as exc:
            self._anomaly(AnomalyKind.ILLEGAL_TRANSITION, order.client_order_id,
                          f"{exc}" + (f" ({detail})" if detail else ""), at)
            return None
        self._put_order(new)
        self._log_transition(new, event.value, order.status, at, detail or new.reason)
        return new

    def _log_transition(self, order: Order, event: str, source: ExecutionStatus | None, at: datetime,
                        detail: str | None) -> None:
        if self._record:
            self._dirty_orders[order.client_order_id] = order
            self._changes.transitions.append(
                Transition(order.client_order_id, order.version, event, source, order.status, at, detail))

    def _put_order(self, order: Order) -> None:
        cid = order.client_order_id
        if order.terminal:
            self._orders.pop(cid, None)
            self._keys.pop(order.idempotency_key, None)
            _bounded_put(self._done, cid, order, self._remember)
            _bounded_put(self._done_keys, order.idempotency_key, cid, self._remember)
        else:
            self._orders[cid] = order
            self._keys[order.idempotency_key] = cid

    def _put_position(self, position: Position, *, dirty: bool = False) -> None:
        pid = position.position_id
        if position.is_open:
            self._positions[pid] = position
            self._by_symbol.setdefault(position.symbol, {})[pid] = position
        else:
            self._positions.pop(pid, None)
            per_symbol = self._by_symbol.get(position.symbol)
            if per_symbol is not None:
                per_symbol.pop(pid, None)
            _bounded_put(self._closed, pid, position, self._remember)
        if dirty and self._record:
            self._dirty_positions[pid] = position

    def _anomaly(self, kind: AnomalyKind, client_order_id: str, detail: str, at: datetime) -> None:
        self.anomalies.append(Anomaly(kind, client_order_id, detail, at))
        log.warning("execution anomaly", extra={"anomaly": kind.value, "client_order_id": client_order_id,
                                                 "detail": detail})

    def _report(self, order: Order) -> ExecutionReport:
        return ExecutionReport(
            client_order_id=order.client_order_id, broker_order_id=order.broker_order_id, symbol=order.symbol,
            status=order.status, filled_lots=order.filled_lots, avg_price=order.avg_price,
            commission=_money8(order.commission), reason=order.reason,
        )


__all__ = [
    "ACK_TIMEOUT",
    "TERMINAL",
    "TRANSITIONS",
    "Acknowledged",
    "Anomaly",
    "AnomalyKind",
    "Broker",
    "BrokerEvent",
    "Cancelled",
    "ChangeSet",
    "Closed",
    "EngineOutput",
    "ExecutionEngine",
    "ExecutionError",
    "Expired",
    "IllegalTransition",
    "Fill",
    "FillKind",
    "Filled",
    "Order",
    "OrderEvent",
    "OrderNotCancellableError",
    "Position",
    "PositionClosedError",
    "PositionStatus",
    "Rejected",
    "Trade",
    "Transition",
    "UnknownOrderError",
    "UnknownPositionError",
    "average_price",
    "classify_close_reason",
    "next_status",
    "pips_between",
    "protective_levels",
    "transition",
]
