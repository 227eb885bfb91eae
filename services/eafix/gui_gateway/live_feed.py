"""The live feed's fan-out (pure asyncio, no I/O): which bus topics feed which channel, and the hub
that hands each message to the clients subscribed to its channel.

Back-pressure: every client has a bounded queue. `FeedHub.publish` never waits: a client whose
queue is full is dropped on the spot (its `dropped` reason is set and it leaves the hub), so one
slow browser can neither block the reader nor make the gateway's memory grow."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

# channel -> the topics read for it; `status` also receives the gateway's periodic status snapshot
CHANNEL_TOPICS: dict[str, tuple[str, ...]] = {
    "ticks": ("eafix.price.tick",),
    "signals": ("eafix.signals.generated", "eafix.signals.suppressed"),
    "orders": ("eafix.orders.validated", "eafix.risk.rejected", "eafix.execution.reports"),
    "positions": ("eafix.execution.reports", "eafix.trades.closed"),
    "alerts": ("eafix.system.risk_off", "eafix.risk.rejected", "eafix.calendar.signals"),
    "status": ("eafix.system.risk_off",),
}
CHANNELS = tuple(CHANNEL_TOPICS)


def channels_of(topic: str) -> tuple[str, ...]:
    return tuple(c for c, topics in CHANNEL_TOPICS.items() if topic in topics)


def feed_topics() -> list[str]:
    return sorted({t for topics in CHANNEL_TOPICS.values() for t in topics})


class ChannelError(ValueError):
    pass


def check_channels(names: Any) -> set[str]:
    """The channels a subscribe/unsubscribe message names, or ChannelError saying what is wrong."""
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ChannelError(f"`channels` must be a non-empty list of channel names ({', '.join(CHANNELS)})")
    unknown = sorted(set(names) - set(CHANNELS))
    if unknown:
        raise ChannelError(f"unknown channel(s) {', '.join(unknown)} (known: {', '.join(CHANNELS)})")
    return set(names)


@dataclass(eq=False)
class FeedClient:
    name: str
    queue_size: int
    channels: set[str] = field(default_factory=set)
    dropped: str | None = None
    queue: asyncio.Queue[dict[str, Any]] = field(init=False)
    gone: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.queue_size)


class FeedHub:
    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self.clients: set[FeedClient] = set()
        self.dropped_total = 0

    def join(self, name: str) -> FeedClient:
        client = FeedClient(name, self.queue_size)
        self.clients.add(client)
        return client

    def leave(self, client: FeedClient) -> None:
        self.clients.discard(client)

    def wanted(self, channel: str) -> bool:
        return any(channel in c.channels for c in self.clients)

    def publish(self, channel: str, message: dict[str, Any]) -> int:
        """Queue `message` for every subscriber of `channel`; returns how many got it."""
        delivered = 0
        for client in [c for c in self.clients if channel in c.channels]:
            try:
                client.queue.put_nowait(message)
                delivered += 1
            except asyncio.QueueFull:
                self.drop(client, f"too slow: {client.queue_size} messages waiting")
        return delivered

    def drop(self, client: FeedClient, reason: str) -> None:
        if client in self.clients:
            self.clients.discard(client)
            self.dropped_total += 1
        client.dropped = reason
        client.gone.set()
