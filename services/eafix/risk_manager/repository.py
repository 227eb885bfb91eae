"""Persistence of the risk-manager portfolio: a Protocol and two implementations with one semantics.

- `InMemoryPortfolioRepository`: unit tests and backtests.
- `PostgresPortfolioRepository`: schema `risk` (services/eafix/migrations/risk/*.sql), psycopg 3 async
  through an `AsyncConnectionPool`; every parameter is bound.

The engine stays pure: it queues `PortfolioChange`s (`RiskEngine(track_changes=True)`), the adapter
hands them to `apply()` in one transaction after each message (then publishes, then acks). On start,
`restore_engine()` creates the account if needed and rebuilds the engine from `load()`:
balance = opening balance + all realized P&L; open/reserved positions; realized P&L per UTC day and
the trade ids of the lookback window; the most recent decisions (idempotency on signal_id).

Semantics shared by both implementations (tests/service/test_risk_repository.py runs the same
tests on both):
- `ensure_account` creates the account once; an existing account is returned unchanged.
- `apply` is all-or-nothing. A decision for a signal_id already stored and a trade_id already
  booked are skipped (redelivery); a decision reusing another signal's seq raises ConflictError;
  changes for an unknown account raise UnknownAccountError. Positions are upserted / deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

from eafix.contracts import Direction, OrderIntent, RiskRejected
from eafix.instruments import DEFAULT_INSTRUMENTS, Instruments
from eafix.risk_manager.config import RiskConfig
from eafix.risk_manager.engine import RiskEngine, snapshot_since
from eafix.risk_manager.portfolio import (
    AccountRecord,
    DecisionRecord,
    DecisionRecorded,
    PortfolioChange,
    PortfolioSnapshot,
    Position,
    PositionRemoved,
    PositionState,
    PositionUpserted,
    RealizedTrade,
    TradeRealized,
)
from eafix.risk_manager.rules import Rule
from eafix.runtime.clock import Clock

__all__ = [
    "ConflictError",
    "InMemoryPortfolioRepository",
    "PortfolioRepository",
    "PostgresPortfolioRepository",
    "RepositoryError",
    "UnknownAccountError",
    "persist_changes",
    "restore_engine",
]


class RepositoryError(Exception):
    pass


class UnknownAccountError(RepositoryError):
    pass


class ConflictError(RepositoryError):
    pass


class PortfolioRepository(Protocol):
    async def ensure_account(self, account: AccountRecord) -> AccountRecord:
        """Create the account unless it exists; return the stored record."""
        ...

    async def load(self, account_id: str, *, since: datetime, decision_limit: int) -> PortfolioSnapshot | None:
        """The state to rebuild an engine from; None for an unknown account."""
        ...

    async def apply(self, account_id: str, changes: Sequence[PortfolioChange]) -> None:
        """Persist the changes in order, atomically."""
        ...


async def restore_engine(repo: PortfolioRepository, config: RiskConfig, clock: Clock, *,
                         instruments: Instruments = DEFAULT_INSTRUMENTS, rules: Sequence[Rule] | None = None,
                         track_changes: bool = True) -> RiskEngine:
    """Build a RiskEngine from the stored portfolio (creating the account on first start)."""
    now = clock.now()
    await repo.ensure_account(AccountRecord(config.account_id, config.account_currency, config.opening_balance, now))
    snapshot = await repo.load(config.account_id, since=snapshot_since(now, config),
                               decision_limit=config.decision_memory)
    if snapshot is None:  # pragma: no cover - ensure_account just created it
        raise UnknownAccountError(config.account_id)
    return RiskEngine(config, clock, snapshot, instruments=instruments, rules=rules, track_changes=track_changes)


async def persist_changes(engine: RiskEngine, repo: PortfolioRepository) -> int:
    """Hand the engine's queued changes to the repository; returns how many were written."""
    changes = engine.drain_changes()
    if changes:
        await repo.apply(engine.account_id, changes)
    return len(changes)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# --- in memory -----------------------------------------------------------------------------------


class _Account:
    __slots__ = ("record", "positions", "decisions", "seqs", "trades")

    def __init__(self, record: AccountRecord) -> None:
        self.record = record
        self.positions: dict[str, Position] = {}
        self.decisions: dict[str, DecisionRecord] = {}
        self.seqs: dict[int, str] = {}
        self.trades: dict[str, RealizedTrade] = {}


class InMemoryPortfolioRepository:
    def __init__(self) -> None:
        self._accounts: dict[str, _Account] = {}

    async def ensure_account(self, account: AccountRecord) -> AccountRecord:
        stored = self._accounts.setdefault(account.account_id, _Account(account))
        return stored.record

    async def load(self, account_id: str, *, since: datetime, decision_limit: int) -> PortfolioSnapshot | None:
        acc = self._accounts.get(account_id)
        if acc is None:
            return None
        recent = sorted((t for t in acc.trades.values() if t.close_time >= since),
                        key=lambda t: (t.close_time, t.trade_id))
        by_day: dict[date, Decimal] = {}
        for trade in recent:
            day = _utc(trade.close_time).date()
            by_day[day] = by_day.get(day, Decimal(0)) + trade.pnl
        decisions = sorted(acc.decisions.values(), key=lambda r: r.seq)
        return PortfolioSnapshot(
            account=acc.record,
            positions=tuple(sorted(acc.positions.values(), key=lambda p: (p.opened_at, p.client_order_id))),
            realized_total=sum((t.pnl for t in acc.trades.values()), Decimal(0)),
            realized_by_day=by_day,
            recent_trade_ids=tuple(t.trade_id for t in recent),
            decisions=tuple(decisions[-decision_limit:]) if decision_limit > 0 else (),
            last_seq=max(acc.seqs, default=0),
        )

    async def apply(self, account_id: str, changes: Sequence[PortfolioChange]) -> None:
        acc = self._accounts.get(account_id)
        if acc is None:
            raise UnknownAccountError(f"unknown account {account_id!r}")
        # check first, so that a refused batch leaves nothing behind (a transaction's all-or-nothing)
        seqs = dict(acc.seqs)
        signals = set(acc.decisions)
        for change in changes:
            if isinstance(change, DecisionRecorded):
                record = change.record
                if record.signal_id in signals:
                    continue
                if record.seq in seqs:
                    raise ConflictError(f"decision seq {record.seq} already used by signal {seqs[record.seq]!r}")
                seqs[record.seq] = record.signal_id
                signals.add(record.signal_id)
        for change in changes:
            if isinstance(change, DecisionRecorded):
                record = change.record
                if record.signal_id not in acc.decisions:
                    acc.decisions[record.signal_id] = record
                    acc.seqs[record.seq] = record.signal_id
            elif isinstance(change, PositionUpserted):
                acc.positions[change.position.client_order_id] = change.position
            elif isinstance(change, PositionRemoved):
                acc.positions.pop(change.client_order_id, None)
            elif isinstance(change, TradeRealized):
                acc.trades.setdefault(change.trade.trade_id, change.trade)
            else:  # pragma: no cover - the union is closed
                raise TypeError(f"unknown change {change!r}")


# --- PostgreSQL ----------------------------------------------------------------------------------

_INSERT_ACCOUNT = """
INSERT INTO risk.accounts (account_id, account_currency, opening_balance, created_at)
VALUES (%s, %s, %s, %s)
ON CONFLICT (account_id) DO NOTHING
"""
_SELECT_ACCOUNT = """
SELECT account_id, account_currency, opening_balance, created_at FROM risk.accounts WHERE account_id = %s
"""
# serializes writers of one account (a second replica by mistake waits instead of interleaving)
_LOCK_ACCOUNT = "SELECT 1 FROM risk.accounts WHERE account_id = %s FOR UPDATE"
_SELECT_POSITIONS = """
SELECT client_order_id, signal_id, symbol, direction, state, lots, filled_lots, sl_pips, risk_per_lot,
       entry_price, opened_at, updated_at
FROM risk.positions WHERE account_id = %s ORDER BY opened_at, client_order_id
"""
_SELECT_REALIZED_TOTAL = "SELECT coalesce(sum(pnl), 0) FROM risk.realized_trades WHERE account_id = %s"
_SELECT_RECENT_TRADES = """
SELECT trade_id, (close_time AT TIME ZONE 'UTC')::date AS day, pnl
FROM risk.realized_trades WHERE account_id = %s AND close_time >= %s ORDER BY close_time, trade_id
"""
_SELECT_DECISIONS = """
SELECT seq, signal_id, decided_at, outcome, payload FROM (
    SELECT seq, signal_id, decided_at, outcome, payload FROM risk.decisions
    WHERE account_id = %s ORDER BY seq DESC LIMIT %s
) recent ORDER BY seq
"""
_SELECT_LAST_SEQ = "SELECT coalesce(max(seq), 0) FROM risk.decisions WHERE account_id = %s"
_INSERT_DECISION = """
INSERT INTO risk.decisions (account_id, seq, signal_id, decided_at, outcome, client_order_id, reasons, payload)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (account_id, signal_id) DO NOTHING
"""
_UPSERT_POSITION = """
INSERT INTO risk.positions (account_id, client_order_id, signal_id, symbol, direction, state, lots, filled_lots,
                            sl_pips, risk_per_lot, entry_price, opened_at, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (account_id, client_order_id) DO UPDATE SET
    signal_id = EXCLUDED.signal_id, symbol = EXCLUDED.symbol, direction = EXCLUDED.direction,
    state = EXCLUDED.state, lots = EXCLUDED.lots, filled_lots = EXCLUDED.filled_lots, sl_pips = EXCLUDED.sl_pips,
    risk_per_lot = EXCLUDED.risk_per_lot, entry_price = EXCLUDED.entry_price, opened_at = EXCLUDED.opened_at,
    updated_at = EXCLUDED.updated_at
"""
_DELETE_POSITION = "DELETE FROM risk.positions WHERE account_id = %s AND client_order_id = %s"
_INSERT_TRADE = """
INSERT INTO risk.realized_trades (account_id, trade_id, client_order_id, symbol, pnl, close_time)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (account_id, trade_id) DO NOTHING
"""


class PostgresPortfolioRepository:
    """Schema `risk` in PostgreSQL. `pool` is an open psycopg_pool.AsyncConnectionPool."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def ensure_account(self, account: AccountRecord) -> AccountRecord:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(_INSERT_ACCOUNT, (account.account_id, account.account_currency,
                                                 account.opening_balance, account.created_at))
            cur = await conn.execute(_SELECT_ACCOUNT, (account.account_id,))
            row = await cur.fetchone()
        return AccountRecord(row[0], row[1], row[2], _utc(row[3]))

    async def load(self, account_id: str, *, since: datetime, decision_limit: int) -> PortfolioSnapshot | None:
        async with self._pool.connection() as conn, conn.transaction():
            # one REPEATABLE READ snapshot, so positions, ledger and decisions agree with each other
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            row = await (await conn.execute(_SELECT_ACCOUNT, (account_id,))).fetchone()
            if row is None:
                return None
            account = AccountRecord(row[0], row[1], row[2], _utc(row[3]))
            positions = tuple(
                Position(r[0], r[1], r[2], Direction(r[3]), PositionState(r[4]), r[5], r[6], r[7], r[8], r[9],
                         _utc(r[10]), _utc(r[11]))
                for r in await (await conn.execute(_SELECT_POSITIONS, (account_id,))).fetchall()
            )
            total = (await (await conn.execute(_SELECT_REALIZED_TOTAL, (account_id,))).fetchone())[0]
            trade_rows = await (await conn.execute(_SELECT_RECENT_TRADES, (account_id, since))).fetchall()
            decision_rows = (await (await conn.execute(_SELECT_DECISIONS, (account_id, decision_limit))).fetchall()
                             if decision_limit > 0 else [])
            last_seq = (await (await conn.execute(_SELECT_LAST_SEQ, (account_id,))).fetchone())[0]
        by_day: dict[date, Decimal] = {}
        for _, day, pnl in trade_rows:
            by_day[day] = by_day.get(day, Decimal(0)) + pnl
        decisions = tuple(
            DecisionRecord(seq, signal_id, _utc(decided_at),
                           OrderIntent.model_validate(payload) if outcome == "APPROVED"
                           else RiskRejected.model_validate(payload))
            for seq, signal_id, decided_at, outcome, payload in decision_rows
        )
        return PortfolioSnapshot(account, positions, Decimal(total), by_day, tuple(r[0] for r in trade_rows),
                                 decisions, int(last_seq))

    async def apply(self, account_id: str, changes: Sequence[PortfolioChange]) -> None:
        from psycopg import errors
        from psycopg.types.json import Jsonb

        try:
            async with self._pool.connection() as conn, conn.transaction():
                known = await (await conn.execute(_LOCK_ACCOUNT, (account_id,))).fetchone()
                if known is None:
                    raise UnknownAccountError(f"unknown account {account_id!r}")
                for change in changes:
                    if isinstance(change, DecisionRecorded):
                        record, decision = change.record, change.record.decision
                        if isinstance(decision, OrderIntent):
                            outcome, order_id, reasons = "APPROVED", decision.client_order_id, None
                        else:
                            outcome, order_id, reasons = "REJECTED", None, [r.value for r in decision.reasons]
                        await conn.execute(_INSERT_DECISION, (
                            account_id, record.seq, record.signal_id, record.decided_at, outcome, order_id, reasons,
                            Jsonb(decision.model_dump(mode="json")),
                        ))
                    elif isinstance(change, PositionUpserted):
                        p = change.position
                        await conn.execute(_UPSERT_POSITION, (
                            account_id, p.client_order_id, p.signal_id, p.symbol, p.direction.value, p.state.value,
                            p.lots, p.filled_lots, p.sl_pips, p.risk_per_lot, p.entry_price, p.opened_at, p.updated_at,
                        ))
                    elif isinstance(change, PositionRemoved):
                        await conn.execute(_DELETE_POSITION, (account_id, change.client_order_id))
                    elif isinstance(change, TradeRealized):
                        t = change.trade
                        await conn.execute(_INSERT_TRADE, (account_id, t.trade_id, t.client_order_id, t.symbol,
                                                           t.pnl, t.close_time))
                    else:  # pragma: no cover - the union is closed
                        raise TypeError(f"unknown change {change!r}")
        except errors.ForeignKeyViolation as exc:
            raise UnknownAccountError(f"unknown account {account_id!r}") from exc
        except errors.UniqueViolation as exc:
            raise ConflictError(str(exc).strip()) from exc
