"""ReentryEngine: a closed trade in, one decision out; approved re-entries come out as signals when
they are due. Pure: no I/O, the clock injected, delays are due times checked by `on_clock` (a
restart keeps them: the repository stores what `pending()` holds).

    on_signal(signal)          remember the strategy (family), timeframe, confidence and, for a
                               re-entry signal, its generation and parent trade
    on_order_intent(intent)    remember the order's signal, stops and lots
    on_tick(tick)              the latest quote (the re-entry's entry price)
    on_trade_closed(trade)     -> Verdict (classify, resolve in the matrix, check the ledger)
    on_clock(now)              -> the re-entries due now (ReentrySignal), each once

The family of a trade is the strategy of the signal that opened it; a trade whose signal is unknown
(opened before this service saw it, or by hand) is family `unknown`, which no matrix names, so it
gets the global fallback (NO_REENTRY).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from eafix.contracts.primitives import Direction
from eafix.reentry_matrix_svc.classify import Duration, Outcome, duration, outcome
from eafix.reentry_matrix_svc.ledger import Approval, Ledger, Refusal
from eafix.reentry_matrix_svc.matrix import Action, Generation, Matrix, Proximity, Resolution
from eafix.runtime.clock import Clock

UNKNOWN_FAMILY = "unknown"
ENTERING = (Action.SAME_TRADE, Action.REVERSE, Action.INCREASE_SIZE)


@dataclass(frozen=True)
class Origin:
    """What opened a trade: its signal (and, for a re-entry, its place in the chain)."""

    signal_id: str
    family: str
    timeframe: str
    confidence: float
    generation: Generation = Generation.O
    parent_trade_id: str | None = None


@dataclass(frozen=True)
class OrderInfo:
    signal_id: str
    sl_pips: Decimal
    tp_pips: Decimal


@dataclass(frozen=True)
class ClosedTrade:
    """The fields of a TradeClosed the engine reads."""

    trade_id: str
    client_order_id: str
    symbol: str
    direction: Direction
    lots: Decimal
    close_price: Decimal
    open_time: datetime
    close_time: datetime
    pips: Decimal


@dataclass(frozen=True)
class Verdict:
    decision_id: str
    trade_id: str
    original_trade_id: str
    symbol: str
    family: str
    generation: Generation  # of the closed trade
    next_generation: Generation | None
    outcome: Outcome
    duration: Duration
    proximity: Proximity
    action: Action
    tier: int
    parameter_set: str  # id@matrix_version
    size_multiplier: Decimal
    delay_minutes: int
    confidence_adjustment: float
    hybrid_id: str
    refusal: Refusal | None
    decided_at: datetime

    @property
    def approved(self) -> bool:
        return self.action in ENTERING and self.refusal is None and self.next_generation is not None

    @property
    def reentry_signal_id(self) -> str | None:
        """The id of the Signal an approved verdict publishes when due."""
        return f"RE-{self.trade_id}" if self.approved else None

    @property
    def due_at(self) -> datetime | None:
        return self.decided_at + timedelta(minutes=self.delay_minutes) if self.approved else None


@dataclass(frozen=True)
class ReentrySignal:
    """An approved re-entry, waiting for its due time and then turned into a Signal."""

    signal_id: str
    decision_id: str
    symbol: str
    timeframe: str
    strategy: str
    direction: Direction
    confidence: float
    sl_pips: Decimal
    tp_pips: Decimal
    generation: Generation
    parent_trade_id: str
    original_trade_id: str
    size_multiplier: Decimal
    max_lots: Decimal  # the parent's lots: sizes only shrink along a chain
    fallback_price: Decimal  # the parent's close price, when no quote arrived since
    due_at: datetime


@dataclass(frozen=True)
class Snapshot:
    """What a repository loads to rebuild the engine (oldest first)."""

    origins: tuple[Origin, ...] = ()
    orders: tuple[tuple[str, OrderInfo], ...] = ()
    verdicts: tuple[Verdict, ...] = ()
    pending: tuple[ReentrySignal, ...] = ()


def hybrid_id(symbol: str, family: str, generation: Generation, dur: Duration, out: Outcome, prox: Proximity) -> str:
    """`<SYMBOL>-<FAMILY>-<NEXT GENERATION>-<DURATION>-<OUTCOME>-<PROXIMITY>-<6 hex>`: the duplicate guard's
    key and the comment an EA can carry; the suffix is the first 6 hex digits of its SHA-256."""
    text = f"{symbol}-{family}-{generation}-{dur}-{out}-{prox}"
    return f"{text}-{hashlib.sha256(text.encode()).hexdigest()[:6]}"


class ReentryEngine:
    def __init__(self, matrix: Matrix, clock: Clock, *, ledger: Ledger | None = None,
                 proximity: Callable[[str, datetime], Proximity] | None = None, remember: int = 100_000) -> None:
        self.matrix = matrix
        self._clock = clock
        self.ledger = ledger or Ledger()
        self._proximity = proximity or (lambda symbol, now: Proximity.NONE)
        self._remember = remember
        self._origins: OrderedDict[str, Origin] = OrderedDict()  # signal_id -> origin
        self._orders: OrderedDict[str, OrderInfo] = OrderedDict()  # client_order_id -> order
        self._chains: OrderedDict[str, str] = OrderedDict()  # trade_id -> original trade id
        self._decided: OrderedDict[str, Verdict] = OrderedDict()  # trade_id -> verdict (idempotency)
        self._pending: dict[str, ReentrySignal] = {}  # signal_id -> due re-entry
        self._quotes: dict[str, tuple[Decimal, Decimal]] = {}

    # -- inputs --------------------------------------------------------------------------------------

    def on_signal(self, signal_id: str, family: str, timeframe: str, confidence: float,
                  generation: Generation = Generation.O, parent_trade_id: str | None = None) -> None:
        self._put(self._origins, signal_id, Origin(signal_id, family, timeframe, confidence, generation,
                                                   parent_trade_id))

    def on_order_intent(self, client_order_id: str, signal_id: str, sl_pips: Decimal, tp_pips: Decimal) -> None:
        self._put(self._orders, client_order_id, OrderInfo(signal_id, sl_pips, tp_pips))

    def on_tick(self, symbol: str, bid: Decimal, ask: Decimal) -> None:
        self._quotes[symbol] = (bid, ask)

    def on_trade_closed(self, trade: ClosedTrade) -> Verdict:
        """The decision for `trade` (the same one again for a redelivered trade)."""
        known = self._decided.get(trade.trade_id)
        if known is not None:
            return known
        now = self._clock.now()
        order = self._orders.get(trade.client_order_id)
        origin = self._origins.get(order.signal_id) if order is not None else None
        if origin is None:
            origin = Origin("", UNKNOWN_FAMILY, "H1", 0.0)
        original = self._chains.get(origin.parent_trade_id, origin.parent_trade_id) if origin.parent_trade_id \
            else trade.trade_id
        verdict = self._judge(trade, origin, original, order.sl_pips if order else None,
                              self._proximity(trade.symbol, now), now)
        self._put(self._chains, trade.trade_id, original)
        self._put(self._decided, trade.trade_id, verdict)
        if verdict.approved and order is not None and verdict.next_generation is not None:
            self.ledger.approve(trade.symbol, verdict.hybrid_id, now)
            self._schedule(verdict, trade, origin, order, verdict.next_generation)
        return verdict

    def what_if(self, trade: ClosedTrade, origin: Origin, sl_pips: Decimal | None,
                proximity: Proximity | None = None) -> Verdict:
        """The decision a trade closed now would get, with today's ledger; nothing is recorded."""
        now = self._clock.now()
        prox = self._proximity(trade.symbol, now) if proximity is None else proximity
        return self._judge(trade, origin, trade.trade_id, sl_pips, prox, now)

    def on_clock(self, now: datetime) -> list[tuple[ReentrySignal, Decimal]]:
        """The re-entries due at `now` with their entry price (latest ask for LONG, bid for SHORT), oldest
        first; each is handed out once."""
        due = sorted((r for r in self._pending.values() if r.due_at <= now), key=lambda r: (r.due_at, r.signal_id))
        out = []
        for reentry in due:
            del self._pending[reentry.signal_id]
            quote = self._quotes.get(reentry.symbol)
            price = reentry.fallback_price if quote is None else (
                quote[1] if reentry.direction is Direction.LONG else quote[0])
            out.append((reentry, price))
        return out

    # -- state ---------------------------------------------------------------------------------------

    def pending(self) -> list[ReentrySignal]:
        return sorted(self._pending.values(), key=lambda r: (r.due_at, r.signal_id))

    def restore(self, snapshot: Snapshot) -> None:
        """After a restart: what opened the recent trades, their verdicts (idempotency, chains, the
        ledger's approvals) and the re-entries still scheduled."""
        for origin in snapshot.origins:
            self._put(self._origins, origin.signal_id, origin)
        for client_order_id, order in snapshot.orders:
            self._put(self._orders, client_order_id, order)
        for verdict in snapshot.verdicts:
            self._put(self._decided, verdict.trade_id, verdict)
            self._put(self._chains, verdict.trade_id, verdict.original_trade_id)
        self.ledger.restore([Approval(v.symbol, v.hybrid_id, v.decided_at) for v in snapshot.verdicts if v.approved])
        self._pending = {r.signal_id: r for r in snapshot.pending}

    def verdict_for(self, trade_id: str) -> Verdict | None:
        return self._decided.get(trade_id)

    def origin(self, signal_id: str) -> Origin | None:
        return self._origins.get(signal_id)

    def order(self, client_order_id: str) -> OrderInfo | None:
        return self._orders.get(client_order_id)

    def scheduled(self, signal_id: str | None) -> ReentrySignal | None:
        """A re-entry still waiting for its due time."""
        return None if signal_id is None else self._pending.get(signal_id)

    # -- internals -----------------------------------------------------------------------------------

    def _judge(self, trade: ClosedTrade, origin: Origin, original: str, sl_pips: Decimal | None, prox: Proximity,
               now: datetime) -> Verdict:
        out, dur = outcome(trade.pips, sl_pips), duration(trade.open_time, trade.close_time)
        next_gen = origin.generation.next
        hybrid = hybrid_id(trade.symbol, origin.family, next_gen or origin.generation, dur, out, prox)
        refusal: Refusal | None = None
        if next_gen is None:  # an R2 closed: the chain is complete, whatever the matrix says
            resolution, refusal = Resolution(self.matrix.fallback, 4), Refusal.CHAIN_COMPLETE
        else:
            resolution = self.matrix.resolve(origin.generation, origin.family, dur, out, prox)
            refusal = self.ledger.refusal(trade.symbol, hybrid, False, now) \
                if resolution.decision.action in ENTERING else None
        decision = resolution.decision
        return Verdict(
            decision_id=f"RD-{trade.trade_id}", trade_id=trade.trade_id, original_trade_id=original,
            symbol=trade.symbol, family=origin.family, generation=origin.generation, next_generation=next_gen,
            outcome=out, duration=dur, proximity=prox, action=decision.action, tier=resolution.tier,
            parameter_set=self.matrix.parameter_set(decision), size_multiplier=decision.size_multiplier,
            delay_minutes=decision.delay_minutes, confidence_adjustment=decision.confidence_adjustment,
            hybrid_id=hybrid, refusal=refusal, decided_at=now)

    def _schedule(self, verdict: Verdict, trade: ClosedTrade, origin: Origin, order: OrderInfo,
                  generation: Generation) -> None:
        direction = trade.direction
        if verdict.action is Action.REVERSE:
            direction = Direction.SHORT if direction is Direction.LONG else Direction.LONG
        confidence = min(max(origin.confidence + verdict.confidence_adjustment, 0.0), 1.0)
        assert verdict.reentry_signal_id is not None and verdict.due_at is not None
        reentry = ReentrySignal(
            signal_id=verdict.reentry_signal_id, decision_id=verdict.decision_id, symbol=trade.symbol,
            timeframe=origin.timeframe, strategy=origin.family, direction=direction, confidence=confidence,
            sl_pips=order.sl_pips, tp_pips=order.tp_pips, generation=generation, parent_trade_id=trade.trade_id,
            original_trade_id=verdict.original_trade_id, size_multiplier=verdict.size_multiplier,
            max_lots=trade.lots, fallback_price=trade.close_price,
            due_at=verdict.due_at)
        self._pending[reentry.signal_id] = reentry

    def _put(self, store: OrderedDict, key: str, value: object) -> None:
        store[key] = value
        store.move_to_end(key)
        while len(store) > self._remember:
            store.popitem(last=False)


__all__ = ["ClosedTrade", "OrderInfo", "Origin", "ReentryEngine", "ReentrySignal", "Snapshot", "Verdict",
           "hybrid_id"]
