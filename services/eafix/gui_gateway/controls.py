"""The emergency controls, over two ports. Pure orchestration: what each control does and how its
outcome is judged.

    pause      latch risk-off: SystemRiskOff(active=true) on `eafix.system.risk_off`; every
               signal-generator replica then suppresses every new signal, so no new order starts
    resume     release it: SystemRiskOff(active=false)
    close-all  close every open position at market through execution-engine (reason MANUAL)
    stop-all   pause, then close-all: nothing new opens and nothing stays open

Outcome: `ok` when every step succeeded, `failed` when none did, `partial` otherwise; `details`
say what happened step by step (per position for the closes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Control(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    STOP_ALL = "stop-all"
    CLOSE_ALL = "close-all"


class PeerError(Exception):
    """A peer could not do what was asked (unreachable, refused); str() says which and why."""


class RiskOffPort(Protocol):
    async def publish(self, active: bool, reason: str, source: str) -> None: ...


class PositionsPort(Protocol):
    async def open_positions(self) -> list[str]: ...

    async def close(self, position_id: str) -> str:
        """`closed` or `close-requested` (the broker answers later); PeerError otherwise."""
        ...


@dataclass(frozen=True)
class Outcome:
    action: Control
    result: str  # ok | partial | failed
    details: list[str] = field(default_factory=list)


def _judge(successes: int, failures: int) -> str:
    if failures == 0:
        return "ok"
    return "failed" if successes == 0 else "partial"


class EmergencyControls:
    def __init__(self, risk_off: RiskOffPort, positions: PositionsPort) -> None:
        self._risk_off, self._positions = risk_off, positions

    async def apply(self, action: Control, reason: str, source: str) -> Outcome:
        if action is Control.PAUSE:
            return await self._latch(action, True, reason, source)
        if action is Control.RESUME:
            return await self._latch(action, False, reason, source)
        if action is Control.CLOSE_ALL:
            return await self._close_all(action)
        paused = await self._latch(action, True, reason, source)
        closed = await self._close_all(action)
        ok = sum(o.result == "ok" for o in (paused, closed))
        failed = sum(o.result == "failed" for o in (paused, closed))
        result = "ok" if ok == 2 else "failed" if failed == 2 else "partial"
        return Outcome(action, result, paused.details + closed.details)

    async def _latch(self, action: Control, active: bool, reason: str, source: str) -> Outcome:
        what = "risk-off latched (signal-generator suppresses new signals)" if active else "risk-off released"
        try:
            await self._risk_off.publish(active, reason, source)
        except Exception as exc:  # the bus is down: the control failed, and says why
            return Outcome(action, "failed", [f"risk-off not published: {type(exc).__name__}: {exc}"])
        return Outcome(action, "ok", [what])

    async def _close_all(self, action: Control) -> Outcome:
        try:
            ids = await self._positions.open_positions()
        except PeerError as exc:
            return Outcome(action, "failed", [f"open positions not listed: {exc}"])
        if not ids:
            return Outcome(action, "ok", ["no open position"])
        details, done, failed = [], 0, 0
        for position_id in ids:
            try:
                details.append(f"{position_id}: {await self._positions.close(position_id)}")
                done += 1
            except PeerError as exc:
                details.append(f"{position_id}: not closed: {exc}")
                failed += 1
        return Outcome(action, _judge(done, failed), details)
