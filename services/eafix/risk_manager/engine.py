"""RiskEngine: stands between strategy and execution. Pure: no I/O, no logging per event, no wall clock
(an injected `Clock` gives "now"). Driven by events, it answers with events:

    on_tick(PriceTick)                 keep the latest bid/ask per symbol (spread check, conversions)
    on_signal(Signal)                  -> OrderIntent | RiskRejected   (never raises)
    on_execution_report(Report)        fills turn a reserved order into an open position
    on_trade_closed(TradeClosed)       realized P&L booked, position removed, balance updated
    position_size(...) / validate(...) synchronous checks that change nothing

Money, prices, lots and pips are `Decimal` throughout. Pip size, contract size and lot limits come
from the instrument table (eafix.instruments); sizing is in `sizing`, the rules in `rules`.

Persistence without I/O: with `track_changes=True` every state change is also appended to a change
list (`DecisionRecorded`, `PositionUpserted`, `PositionRemoved`, `TradeRealized`) that the adapter
drains after each message and hands to a repository in one transaction (`repository.py`) before it
publishes and acks.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, ROUND_UP, Decimal

from eafix.contracts import (
    ExecutionReport,
    ExecutionStatus,
    OrderIntent,
    PriceTick,
    RiskRejected,
    RiskRejectReason,
    Signal,
    TradeClosed,
)
from eafix.contracts.calendar import BlackoutGate
from eafix.instruments import DEFAULT_INSTRUMENTS, Instruments, Quote, QuoteBook
from eafix.risk_manager.config import RiskConfig
from eafix.risk_manager.portfolio import (
    AccountRecord,
    DecisionRecord,
    DecisionRecorded,
    Portfolio,
    PortfolioChange,
    PortfolioSnapshot,
    Position,
    PositionRemoved,
    PositionState,
    PositionUpserted,
    RealizedTrade,
    TradeRealized,
)
from eafix.risk_manager.rules import (
    DEFAULT_RULES,
    PERCENT_PLACES,
    CheckUnavailable,
    Evaluation,
    Rule,
    correlation_table,
    rule_name,
)
from eafix.risk_manager.sizing import (
    MONEY_PLACES,
    MissingQuoteError,
    Sizing,
    cap_below_min_lot_detail,
    pip_value_per_lot,
    size_position,
)
from eafix.runtime.clock import Clock

_TENTH = Decimal("0.1")
_DETAILS_MAX = 1000  # RiskRejected.details maxLength


def _details(parts: Sequence[str]) -> str:
    text = "; ".join(parts) or "rejected"
    return text if len(text) <= _DETAILS_MAX else text[: _DETAILS_MAX - 3] + "..."



@dataclass(frozen=True, slots=True)
class Validation:
    """Dry-run outcome of a signal (nothing reserved or recorded), or the recorded decision."""

    signal_id: str
    approved: bool
    reasons: tuple[RiskRejectReason, ...]
    details: str
    warnings: tuple[str, ...]
    sizing: Sizing | None
    tp_pips: Decimal | None
    balance: Decimal
    account_currency: str
    already_processed: bool = False
    decision: OrderIntent | RiskRejected | None = None


@dataclass(frozen=True, slots=True)
class PositionSizeResult:
    symbol: str
    sl_pips: Decimal
    risk_percent: Decimal
    multiplier: Decimal
    balance: Decimal
    account_currency: str
    sizing: Sizing | None
    reasons: tuple[RiskRejectReason, ...]
    details: str

    @property
    def approved(self) -> bool:
        return not self.reasons


# --- the engine ----------------------------------------------------------------------------------


class RiskEngine:
    """Stands between strategy and execution. A refusal is a RiskRejected event, never an exception.

    `snapshot` rebuilds the portfolio (and the idempotency memory) from a repository; without it the
    account starts at `config.opening_balance`. `rules` replaces DEFAULT_RULES (tests inject faults).
    With `track_changes` every state change is queued for `drain_changes()` (the service adapter
    persists them); leave it off in a backtest without a repository.
    """

    def __init__(self, config: RiskConfig, clock: Clock, snapshot: PortfolioSnapshot | None = None, *,
                 instruments: Instruments = DEFAULT_INSTRUMENTS, rules: Sequence[Rule] | None = None,
                 track_changes: bool = False, blackout: BlackoutGate | None = None) -> None:
        self._config = config
        self.blackout = blackout
        self._clock = clock
        self._instruments = instruments
        if snapshot is None:
            snapshot = PortfolioSnapshot(AccountRecord(config.account_id, config.account_currency,
                                                       config.opening_balance, clock.now()))
        account = snapshot.account
        if account.account_currency != config.account_currency:
            raise ValueError(f"account {account.account_id} is kept in {account.account_currency}, "
                             f"configuration says {config.account_currency}")
        self._portfolio = Portfolio(account, realized_total=snapshot.realized_total,
                                    positions=snapshot.positions, realized_by_day=snapshot.realized_by_day)
        self._rules = tuple(DEFAULT_RULES if rules is None else rules)
        self._correlations = correlation_table(config)
        self._book = QuoteBook()
        self._decisions: OrderedDict[str, DecisionRecord] = OrderedDict(
            (r.signal_id, r) for r in snapshot.decisions[-config.decision_memory:])
        self._seq = max(snapshot.last_seq, max((r.seq for r in snapshot.decisions), default=0))
        self._trade_ids: OrderedDict[str, None] = OrderedDict.fromkeys(snapshot.recent_trade_ids[-config.trade_memory:])
        self._track = track_changes
        self._changes: list[PortfolioChange] = []
        self._halted: str | None = None

    # -- state ---------------------------------------------------------------------------------

    @property
    def config(self) -> RiskConfig:
        return self._config

    @property
    def portfolio(self) -> Portfolio:
        return self._portfolio

    @property
    def account_id(self) -> str:
        return self._portfolio.account.account_id

    @property
    def halted(self) -> str | None:
        """Why the engine refuses everything (an accounting inconsistency), or None."""
        return self._halted

    def now(self) -> datetime:
        """The engine's clock (the day boundary of the drawdown rule is taken from it)."""
        return self._clock.now()

    @property
    def instruments(self) -> Instruments:
        return self._instruments

    @property
    def quote_book(self) -> QuoteBook:
        """The latest quote of every symbol seen (e.g. to carry into an engine reloaded from storage)."""
        return self._book

    def decision_for(self, signal_id: str) -> DecisionRecord | None:
        return self._decisions.get(signal_id)

    def drain_changes(self) -> list[PortfolioChange]:
        changes, self._changes = self._changes, []
        return changes

    def _record(self, change: PortfolioChange) -> None:
        if self._track:
            self._changes.append(change)

    # -- inputs --------------------------------------------------------------------------------

    def on_tick(self, tick: PriceTick | Quote) -> None:
        """Keep the latest quote per symbol (an older tick never replaces a newer one)."""
        self._book.update(tick)

    def on_signal(self, signal: Signal) -> OrderIntent | RiskRejected:
        """Decide on a signal. A signal seen before gets the decision it got then (idempotent)."""
        try:
            known = self._decisions.get(signal.signal_id)
            if known is not None:
                return known.decision
            ev = self._evaluate(signal)
            seq = self._seq + 1
            position: Position | None = None
            if ev.reasons:
                decision: OrderIntent | RiskRejected = self._rejected(signal, ev.reasons, ev.details)
            else:
                sizing = ev.need_sizing()
                client_order_id = f"O-{ev.now:%Y%m%dT%H%M%S}Z-{seq:06d}"
                decision = OrderIntent(
                    client_order_id=client_order_id,
                    idempotency_key=client_order_id,
                    signal_id=signal.signal_id,
                    symbol=signal.symbol,
                    direction=signal.direction,
                    lots=sizing.lots,
                    sl_pips=signal.sl_pips,
                    tp_pips=ev.tp_pips,
                    entry_price=signal.entry_price,
                    risk_percent=sizing.actual_risk_percent.quantize(PERCENT_PLACES, ROUND_UP),
                    account_balance=ev.balance,
                    account_currency=self._portfolio.currency,
                    reverse=signal.reverse,
                )
                position = Position(client_order_id, signal.signal_id, signal.symbol, signal.direction,
                                    PositionState.PENDING, sizing.lots, Decimal(0), signal.sl_pips,
                                    sizing.risk_per_lot, signal.entry_price, ev.now, ev.now)
            self._commit(DecisionRecord(seq, signal.signal_id, ev.now, decision), position)
            return decision
        except Exception as exc:  # fail closed: the risk stage never raises to its caller
            return self._internal_failure(signal, exc)

    def validate(self, signal: Signal) -> Validation:
        """What on_signal would decide now, without reserving or recording anything."""
        balance, currency = self._portfolio.balance, self._portfolio.currency
        known = self._decisions.get(signal.signal_id)
        if known is not None:
            decision = known.decision
            if isinstance(decision, OrderIntent):
                return Validation(signal.signal_id, True, (), "already approved", (), None, decision.tp_pips,
                                  decision.account_balance, currency, True, decision)
            return Validation(signal.signal_id, False, decision.reasons, decision.details, (), None, None,
                              balance, currency, True, decision)
        try:
            ev = self._evaluate(signal)
        except Exception as exc:
            return Validation(signal.signal_id, False, (RiskRejectReason.SAFETY_FAIL,),
                              _details([f"internal error: {type(exc).__name__}: {exc}"]), (), None, None,
                              balance, currency)
        return Validation(signal.signal_id, not ev.reasons, tuple(ev.reasons), _details(ev.details) if ev.reasons
                          else "approved", tuple(ev.warnings), ev.sizing, ev.tp_pips, ev.balance, currency)

    def position_size(self, symbol: str, sl_pips: Decimal, *, risk_percent: Decimal | None = None,
                      multiplier: Decimal | None = None, balance: Decimal | None = None) -> PositionSizeResult:
        """Lot size for a stop distance at the configured (or given) risk; refusals are in `reasons`."""
        cfg = self._config
        risk = cfg.risk_percent if risk_percent is None else risk_percent
        mult = cfg.risk_multiplier if multiplier is None else multiplier
        bal = self._portfolio.balance if balance is None else balance
        currency = self._portfolio.currency

        def result(sizing: Sizing | None, reasons: tuple[RiskRejectReason, ...], details: str) -> PositionSizeResult:
            return PositionSizeResult(symbol, sl_pips, risk, mult, bal, currency, sizing, reasons, details)

        try:
            sizing = self._size(symbol, sl_pips, risk, mult, bal)
        except (MissingQuoteError, CheckUnavailable) as exc:
            return result(None, (RiskRejectReason.SAFETY_FAIL,), str(exc))
        except Exception as exc:
            return result(None, (RiskRejectReason.SAFETY_FAIL,), f"internal error: {type(exc).__name__}: {exc}")
        if sizing.cap_below_min_lot:
            return result(sizing, (RiskRejectReason.PER_TRADE_RISK_EXCEEDED,), cap_below_min_lot_detail(sizing))
        if sizing.exceeds_target:
            return result(sizing, (RiskRejectReason.PER_TRADE_RISK_EXCEEDED,),
                          f"minimum lot {sizing.lots} risks {sizing.actual_risk_percent} % > "
                          f"{sizing.effective_risk_percent} %")
        return result(sizing, (), "ok")

    def on_execution_report(self, report: ExecutionReport) -> Position | None:
        """Fills open the reserved position; a terminal report without fills releases it.

        Returns the position after the report, or None when it was released or is not ours (orders
        this engine did not approve are ignored: their stop, hence their risk, is unknown). CLOSED is
        left to TradeClosed, which carries the realized P&L."""
        position = self._portfolio.positions.get(report.client_order_id)
        if position is None:
            return None
        status = report.status
        now = self._clock.now()
        if status in (ExecutionStatus.PENDING, ExecutionStatus.SUBMITTED, ExecutionStatus.CLOSED):
            return position
        if status in (ExecutionStatus.PARTIAL, ExecutionStatus.FILLED):
            filled = report.filled_lots
            lots = filled if status is ExecutionStatus.FILLED else max(position.lots, filled)
            updated = replace(position, state=PositionState.OPEN, lots=lots, filled_lots=filled,
                              entry_price=report.avg_price, updated_at=now)
        else:  # REJECTED, CANCELLED, TIMEOUT, EXPIRED: the order stops working
            filled = max(report.filled_lots, position.filled_lots)
            if filled == 0:
                del self._portfolio.positions[position.client_order_id]
                self._record(PositionRemoved(position.client_order_id))
                return None
            updated = replace(position, state=PositionState.OPEN, lots=filled, filled_lots=filled, updated_at=now)
        if replace(updated, updated_at=position.updated_at) == position:
            return position  # redelivered report: nothing changed
        self._portfolio.positions[position.client_order_id] = updated
        self._record(PositionUpserted(updated))
        return updated

    def on_trade_closed(self, trade: TradeClosed) -> RealizedTrade | None:
        """Book the realized P&L (net of costs) and remove or reduce the position. Idempotent on trade_id.

        P&L in another currency is converted at the latest mid; without a rate the engine halts
        (every later signal is SAFETY_FAIL) rather than keep a balance it knows to be wrong."""
        if trade.trade_id in self._trade_ids:
            return None
        pnl = trade.pnl
        if trade.account_currency != self._portfolio.currency:
            converted = self._book.convert(pnl, trade.account_currency, self._portfolio.currency)
            if converted is None:
                self._halted = (f"trade {trade.trade_id} P&L is in {trade.account_currency}, no rate to "
                                f"{self._portfolio.currency}")
                return None
            pnl = converted.quantize(MONEY_PLACES, ROUND_HALF_UP)
        realized = RealizedTrade(trade.trade_id, trade.client_order_id, trade.symbol, pnl, trade.close_time)
        self._portfolio.book(realized)
        self._remember_trade(trade.trade_id)
        self._record(TradeRealized(realized))
        position = self._portfolio.positions.get(trade.client_order_id)
        if position is not None:
            remaining = position.lots - trade.lots
            if remaining <= 0:
                del self._portfolio.positions[position.client_order_id]
                self._record(PositionRemoved(position.client_order_id))
            else:
                reduced = replace(position, lots=remaining, filled_lots=min(position.filled_lots, remaining),
                                  updated_at=self._clock.now())
                self._portfolio.positions[position.client_order_id] = reduced
                self._record(PositionUpserted(reduced))
        return realized

    # -- internals -----------------------------------------------------------------------------

    def _size(self, symbol: str, sl_pips: Decimal, risk: Decimal, multiplier: Decimal, balance: Decimal,
              max_lots: Decimal | None = None) -> Sizing:
        if balance <= 0:
            raise CheckUnavailable(f"account balance {balance} {self._portfolio.currency} is not positive")
        instrument = self._instruments[symbol]
        pip_value = pip_value_per_lot(instrument, self._portfolio.currency, self._book)
        cap = min(instrument.max_lot, self._config.max_lot, *(() if max_lots is None else (max_lots,)))
        return size_position(balance, risk, multiplier, sl_pips, pip_value, min_lot=instrument.min_lot,
                             lot_step=instrument.lot_step, max_lot=cap)

    def _evaluate(self, signal: Signal) -> Evaluation:
        cfg = self._config
        balance = self._portfolio.balance
        multiplier = cfg.multiplier_for(signal.strategy)
        link = signal.reentry  # a re-entry: the matrix's multiplier on top, never above the parent's lots
        if link is not None:
            multiplier *= link.size_multiplier
        tp = signal.tp_pips
        warnings: list[str] = []
        if tp is None:
            tp = (signal.sl_pips * cfg.default_tp_sl_ratio).quantize(_TENTH, ROUND_CEILING)
            warnings.append(f"tp_pips defaulted to {tp} (sl x {cfg.default_tp_sl_ratio})")
        ev = Evaluation(signal, self._clock.now(), cfg, self._portfolio, self._book, self._instruments, balance,
                        multiplier, tp, self._correlations, warnings=warnings)
        if self._halted is not None:
            ev.reject(RiskRejectReason.SAFETY_FAIL, f"engine halted: {self._halted}")
            return ev
        blocked = None if self.blackout is None else self.blackout.blackout(signal.symbol, ev.now)
        if blocked is not None:  # an entry now is what the calendar forbids: no sizing, no other rule
            ev.reject(RiskRejectReason.CALENDAR_BLACKOUT, blocked)
            return ev
        try:
            ev.sizing = self._size(signal.symbol, signal.sl_pips, cfg.risk_percent, multiplier, balance,
                                   None if link is None else link.max_lots)
            if ev.sizing.min_lot_applied:
                warnings.append(f"minimum lot {ev.sizing.lots} applied")
            if ev.sizing.max_lot_applied:
                warnings.append(f"maximum lot {ev.sizing.lots} applied"
                                + ("" if link is None else f" (re-entry {link.generation}: at most the parent's "
                                                           f"{link.max_lots})"))
        except (MissingQuoteError, CheckUnavailable) as exc:
            ev.sizing_error = str(exc)
        except Exception as exc:
            ev.sizing_error = f"internal error: {type(exc).__name__}: {exc}"
        for rule in self._rules:
            try:
                rule(ev)
            except CheckUnavailable as exc:
                ev.reject(RiskRejectReason.SAFETY_FAIL, str(exc))
            except Exception as exc:
                ev.reject(RiskRejectReason.SAFETY_FAIL,
                          f"internal error in {rule_name(rule)}: {type(exc).__name__}: {exc}")
        if not ev.reasons and ev.sizing is None:  # approval needs a size, whatever the rules said
            ev.reject(RiskRejectReason.SAFETY_FAIL, f"position size unavailable: {ev.sizing_error}")
        return ev

    @staticmethod
    def _rejected(signal: Signal, reasons: Sequence[RiskRejectReason], details: Sequence[str]) -> RiskRejected:
        return RiskRejected(signal_id=signal.signal_id, symbol=signal.symbol, direction=signal.direction,
                            reasons=tuple(reasons), details=_details(details))

    def _internal_failure(self, signal: Signal, exc: Exception) -> RiskRejected:
        decision = self._rejected(signal, (RiskRejectReason.SAFETY_FAIL,),
                                  (f"internal error: {type(exc).__name__}: {exc}",))
        try:  # remember it, so a redelivery gets the same answer
            if signal.signal_id not in self._decisions:
                self._commit(DecisionRecord(self._seq + 1, signal.signal_id, self._clock.now(), decision), None)
        except Exception:
            pass  # nothing more can be done; the refusal still goes out
        return decision

    def _commit(self, record: DecisionRecord, position: Position | None) -> None:
        self._seq = record.seq
        self._decisions[record.signal_id] = record
        if len(self._decisions) > self._config.decision_memory:
            self._decisions.popitem(last=False)
        self._record(DecisionRecorded(record))
        if position is not None:
            self._portfolio.positions[position.client_order_id] = position
            self._record(PositionUpserted(position))

    def _remember_trade(self, trade_id: str) -> None:
        self._trade_ids[trade_id] = None
        if len(self._trade_ids) > self._config.trade_memory:
            self._trade_ids.popitem(last=False)


def snapshot_since(now: datetime, config: RiskConfig) -> datetime:
    """Start of the realized history a restart needs (the current UTC day and the lookback)."""
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day_start - timedelta(days=config.restart_lookback_days)
