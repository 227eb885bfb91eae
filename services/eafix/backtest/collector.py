"""Keeps the events of given topics from the in-memory bus (backtest results, tests)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from eafix.contracts.events import Event
from eafix.contracts.messaging import decode
from eafix.runtime.bus.base import Subscriber


@dataclass
class Collector:
    topics: Iterable[str]
    group: str = "collector"
    events: dict[str, list[Event]] = field(default_factory=dict)

    def subscribe(self, bus: Subscriber) -> None:
        for topic in self.topics:
            self.events.setdefault(topic, [])
            bus.subscribe(topic, self.group, self._keep(topic))

    def _keep(self, topic: str):
        async def keep(message: dict[str, Any]) -> None:
            self.events[topic].append(decode(message).data)
        return keep
