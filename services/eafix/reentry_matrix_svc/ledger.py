"""The chain ledger: which re-entries a closed trade may still have, whatever the matrix says.

Rules, checked in this order (the first that fails is the refusal):
    CHAIN_COMPLETE  an R2 closed: a chain is O -> R1 -> R2 at most
    DUPLICATE       the same hybrid id was approved less than `duplicate_seconds` (300 s) ago
    COOLDOWN        a re-entry on this symbol was approved less than `cooldown` (15 min) ago
    HOURLY_LIMIT    `per_hour` (5) re-entries on this symbol in the last 60 minutes
    DAILY_LIMIT     `per_day` (5) re-entries on this symbol in this UTC day
Sizes only shrink along a chain: a re-entry may trade at most the lots of the trade it follows, so
lot(R2) <= lot(R1) <= lot(O) (risk-manager applies the cap, `max_lots` on the re-entry signal).
Pure: the engine records approvals here and a repository persists them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class Refusal(StrEnum):
    CHAIN_COMPLETE = "CHAIN_COMPLETE"
    DUPLICATE = "DUPLICATE"
    COOLDOWN = "COOLDOWN"
    HOURLY_LIMIT = "HOURLY_LIMIT"
    DAILY_LIMIT = "DAILY_LIMIT"


@dataclass(frozen=True)
class LedgerConfig:
    cooldown: timedelta = timedelta(minutes=15)
    per_hour: int = 5
    per_day: int = 5
    duplicate_seconds: float = 300.0


@dataclass(frozen=True)
class Approval:
    """An approved re-entry, as the ledger keeps (and a repository stores) it."""

    symbol: str
    hybrid_id: str
    approved_at: datetime


@dataclass
class Ledger:
    config: LedgerConfig = field(default_factory=LedgerConfig)
    _by_symbol: dict[str, deque[Approval]] = field(default_factory=dict)

    def restore(self, approvals: list[Approval]) -> None:
        """Load the approvals of the last day (after a restart), oldest first."""
        for approval in sorted(approvals, key=lambda a: a.approved_at):
            self._by_symbol.setdefault(approval.symbol, deque()).append(approval)

    def _recent(self, symbol: str, now: datetime) -> deque[Approval]:
        kept = self._by_symbol.setdefault(symbol, deque())
        horizon = now - timedelta(days=1)
        while kept and kept[0].approved_at <= horizon:  # nothing older than a day decides anything
            kept.popleft()
        return kept

    def refusal(self, symbol: str, hybrid_id: str, chain_complete: bool, now: datetime) -> Refusal | None:
        if chain_complete:
            return Refusal.CHAIN_COMPLETE
        recent = self._recent(symbol, now)
        if any(a.hybrid_id == hybrid_id and (now - a.approved_at).total_seconds() < self.config.duplicate_seconds
               for a in recent):
            return Refusal.DUPLICATE
        if recent and now - recent[-1].approved_at < self.config.cooldown:
            return Refusal.COOLDOWN
        if sum(1 for a in recent if now - a.approved_at < timedelta(hours=1)) >= self.config.per_hour:
            return Refusal.HOURLY_LIMIT
        if sum(1 for a in recent if a.approved_at.date() == now.date()) >= self.config.per_day:
            return Refusal.DAILY_LIMIT
        return None

    def approve(self, symbol: str, hybrid_id: str, now: datetime) -> Approval:
        approval = Approval(symbol, hybrid_id, now)
        self._recent(symbol, now).append(approval)
        return approval
