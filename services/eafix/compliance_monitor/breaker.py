"""Circuit breaker: `violations` distinct violations within `window_seconds` trip it (a trading halt,
no approval); it stays open for `cooldown_seconds` and does not trip again meanwhile.

The window is half-open, (now - window, now]: a violation exactly `window_seconds` old no longer
counts. Time comes from the caller (the clock is injected one level up)."""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from eafix.compliance_monitor.policy import BreakerConfig


class CircuitBreaker:
    def __init__(self, config: BreakerConfig) -> None:
        self.config = config
        self._times: deque[datetime] = deque()
        self.opened_at: datetime | None = None

    def is_open(self, now: datetime) -> bool:
        if self.opened_at is None:
            return False
        if now - self.opened_at >= timedelta(seconds=self.config.cooldown_seconds):
            self.opened_at = None
            return False
        return True

    def record(self, now: datetime) -> bool:
        """Count one violation at `now`; True when this one trips the breaker."""
        window = timedelta(seconds=self.config.window_seconds)
        self._times.append(now)
        while self._times and now - self._times[0] >= window:
            self._times.popleft()
        if self.is_open(now) or len(self._times) < self.config.violations:
            return False
        self.opened_at = now
        self._times.clear()
        return True
