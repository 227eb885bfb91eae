"""The Clock port: domain code never calls datetime.now(); it is handed a clock.

`WallClock` serves the service processes, `TestClock` the backtest and the tests (time moves only
when told to, so a replay is identical run after run).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class TestClock:
    __test__ = False  # not a pytest test class

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("TestClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("TestClock.set needs a timezone-aware time")
        self._now = when.astimezone(UTC)

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now


def seconds_since(now: datetime, then: datetime) -> float:
    """Age of `then` at `now` in seconds, never negative (clocks of two processes may disagree)."""
    return max((now - then).total_seconds(), 0.0)
