"""In-process bus for backtests, replay, the embedded mode and unit tests: no threads, no I/O.

Deterministic: messages are delivered in publish order, one at a time, to each subscribed group
in subscription order. Messages that handlers publish go to the back of the same FIFO queue, so
a replay that publishes the same inputs delivers the same sequence. A failing handler is retried
in place (no sleeping: there is no wall clock in a backtest) and after `max_deliveries` attempts
the message becomes a dead letter of `<topic>.dlq`, as on Redis.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from eafix.runtime.bus.base import (
    Bus,
    BusConfig,
    DeadLetter,
    Envelope,
    Handler,
    Outgoing,
    dlq_topic,
    error_text,
    invoke,
    normalize,
)
from eafix.runtime.bus.metrics import BusMetrics

log = logging.getLogger(__name__)


@dataclass
class _Subscription:
    group: str
    handler: Handler
    counters: tuple[Any, Any, Any] | None  # handled, failed, dead-lettered (labelled once, not per event)


class InMemoryBus(Bus):
    def __init__(self, config: BusConfig | None = None, metrics: BusMetrics | None = None) -> None:
        self.config = config or BusConfig()
        self.metrics = metrics
        self._subscriptions: dict[str, list[_Subscription]] = {}
        self._queue: deque[tuple[str, str, Envelope]] = deque()
        self._dead: dict[str, deque[DeadLetter]] = {}
        self._seq = 0
        self._draining = False
        self._stopping = False
        self._wakeup: asyncio.Event | None = None
        self._done: asyncio.Event | None = None
        self._run_task: asyncio.Task | None = None

    @property
    def queued(self) -> int:
        """Messages published and not yet delivered."""
        return len(self._queue)

    def _next_id(self) -> str:
        self._seq += 1
        return f"{self._seq}-0"

    async def publish(self, topic: str, envelope: Envelope, key: str | None = None) -> str:
        # `key` needs no handling: a single FIFO already keeps every key in publish order.
        msg_id = self._next_id()
        self._queue.append((topic, msg_id, envelope))
        if self.metrics is not None:
            self.metrics.published.labels(topic).inc()
        if self._wakeup is not None:
            self._wakeup.set()
        return msg_id

    async def publish_many(self, messages: Iterable[Outgoing]) -> list[str]:
        return [await self.publish(*normalize(message)) for message in messages]

    def subscribe(self, topic: str, group: str, handler: Handler, *, ordered: bool = True) -> None:
        subscriptions = self._subscriptions.setdefault(topic, [])
        if any(s.group == group for s in subscriptions):
            raise ValueError(f"{group} already subscribes to {topic}")
        counters = None
        if self.metrics is not None:
            m = self.metrics
            counters = (m.handled.labels(topic, group), m.failed.labels(topic, group),
                        m.dead_lettered.labels(topic, group))
        subscriptions.append(_Subscription(group, handler, counters))

    async def drain(self, *, stoppable: bool = False) -> int:
        """Deliver everything queued, including what handlers publish meanwhile, in FIFO order.

        Returns the number of messages taken off the queue. Re-entrant calls (a handler calling
        drain) return 0 at once: the outer call keeps delivering.
        """
        if self._draining:
            return 0
        self._draining = True
        taken = 0
        try:
            while self._queue and not (stoppable and self._stopping):
                topic, msg_id, envelope = self._queue.popleft()
                taken += 1
                for subscription in self._subscriptions.get(topic, ()):
                    await self._deliver(topic, subscription, msg_id, envelope)
        finally:
            self._draining = False
        return taken

    run_until_idle = drain

    async def _deliver(self, topic: str, sub: _Subscription, msg_id: str, envelope: Envelope) -> None:
        max_deliveries = self.config.max_deliveries
        for attempt in range(1, max_deliveries + 1):
            try:
                await invoke(sub.handler, envelope)
            except Exception as exc:
                if sub.counters is not None:
                    sub.counters[1].inc()
                if attempt < max_deliveries:
                    continue
                self._dead_letter(topic, sub, msg_id, envelope, error_text(exc), attempt)
                return
            if sub.counters is not None:
                sub.counters[0].inc()
            return

    def _dead_letter(self, topic: str, sub: _Subscription, msg_id: str, envelope: Envelope, error: str,
                     deliveries: int) -> None:
        letters = self._dead.setdefault(topic, deque(maxlen=self.config.maxlen_for(dlq_topic(topic))))
        letters.append(DeadLetter(topic=topic, group=sub.group, original_id=msg_id, error=error,
                                  deliveries=deliveries, envelope=envelope, stream=topic, consumer="memory",
                                  id=self._next_id()))
        if sub.counters is not None:
            sub.counters[2].inc()
        log.error("message dead-lettered", extra={"topic": topic, "group": sub.group, "error": error,
                                                  "event_id": envelope.get("event_id"), "deliveries": deliveries})

    async def dead_letters(self, topic: str, count: int = 100) -> list[DeadLetter]:
        return list(self._dead.get(topic, ()))[:count]

    async def run(self) -> None:
        """Deliver messages as they are published until stop() (the embedded, all-in-one mode)."""
        self._stopping = False
        self._wakeup, self._done = asyncio.Event(), asyncio.Event()
        self._run_task = asyncio.current_task()
        try:
            while not self._stopping:
                await self.drain(stoppable=True)
                self._wakeup.clear()
                if not self._queue and not self._stopping:
                    await self._wakeup.wait()
        finally:
            self._done.set()
            self._wakeup = None

    async def stop(self) -> None:
        """Stop after the message in flight; what is still queued stays queued (drain() delivers it)."""
        self._stopping = True
        if self._wakeup is not None:
            self._wakeup.set()
        # A handler that stops the bus must not wait for its own delivery to finish.
        if self._done is not None and self._run_task is not asyncio.current_task():
            await self._done.wait()
