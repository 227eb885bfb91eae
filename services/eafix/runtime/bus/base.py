"""The bus port: what domain adapters publish to and subscribe on, whatever carries the messages.

Messages are envelopes: JSON-compatible dicts (`event_id`, `event_type`, `schema_version`,
`correlation_id`, `causation_id`, `ts_event`, `ts_init`, `producer`, `data`). The bus does not
validate them; it reads `event_id` for logs and `correlation_id` for the logging context only.
Envelopes are treated as immutable: the in-memory bus hands the published dict itself to every
handler (no per-event copies), so a handler must not mutate what it receives.

Delivery is at least once. A handler that returns normally has committed its work and the
message is acknowledged; one that raises is retried in place (before any later message of the
same stream), and after `max_deliveries` deliveries the message goes to `<topic>.dlq` with the
error. Handlers must therefore be idempotent on `event_id` (or a business key).
"""

from __future__ import annotations

import random
import zlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from eafix.runtime.logging import correlation_id

Envelope = dict[str, Any]
# Sync or async: domain adapters are often plain functions, service workers commit to Postgres.
Handler = Callable[[Envelope], Awaitable[None] | None]
# publish_many() items: (topic, envelope) or (topic, envelope, partition key)
Outgoing = tuple[str, Envelope] | tuple[str, Envelope, str | None]

DEFAULT_MAX_DELIVERIES = 5


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


def partition_of(key: str, partitions: int) -> int:
    # crc32, not hash(): str hashes are salted per process, and every producer and consumer
    # must agree on where a symbol lives.
    return zlib.crc32(key.encode()) % partitions if partitions > 1 else 0


# The order flow: intents, execution reports, closed trades (the contracts' topics; a test checks).
DURABLE_TOPICS = frozenset({"eafix.orders.validated", "eafix.execution.reports", "eafix.trades.closed"})
# The market data, keyed by symbol and split into `global.bus.partitions` streams: what the per-symbol
# stages (indicator-engine, signal-generator) read. Signals and the order flow stay one stream each:
# every consumer of them is account-wide (docs/decisions.md). The contracts' topics; a test checks.
SYMBOL_TOPICS = frozenset({"eafix.price.tick", "eafix.price.bars", "eafix.indicators.computed"})
MAX_PARTITIONS = 64


def symbol_partitions(count: int) -> dict[str, int]:
    """BusConfig.partitions for `count` partitions of the symbol-keyed topics (1: one stream each)."""
    if not 1 <= count <= MAX_PARTITIONS:
        raise ValueError(f"partitions must be between 1 and {MAX_PARTITIONS}, got {count}")
    return {topic: count for topic in SYMBOL_TOPICS} if count > 1 else {}


class NotReplicated(ConnectionError):
    """Fewer replicas than configured acknowledged a durable publish in time; the entry is on the
    primary, but the publisher must treat it as not stored (and publish again, idempotently)."""


@dataclass(frozen=True)
class BusConfig:
    """Per-topic settings shared by producers and consumers of a topic.

    `maxlen`: approximate retention (entries) per stream, `default_maxlen` for the others.
    `partitions`: streams per topic for parallel ordered consumption (see RedisStreamsBus);
    producers and consumers must use the same number.
    `replicas` > 0: a publish to a `durable` topic returns only once that many Redis replicas hold it
    (WAIT, at most `wait_ms`); fewer in time fails the publish (NotReplicated), so a failover cannot
    silently drop what the publisher was told is stored.
    """

    default_maxlen: int = 100_000
    maxlen: Mapping[str, int] = field(default_factory=dict)
    partitions: Mapping[str, int] = field(default_factory=dict)
    max_deliveries: int = DEFAULT_MAX_DELIVERIES
    dlq_maxlen: int = 10_000
    durable: frozenset[str] = DURABLE_TOPICS
    replicas: int = 0
    wait_ms: int = 100

    def __post_init__(self) -> None:
        if self.max_deliveries < 1:
            raise ValueError("max_deliveries must be >= 1")
        if self.replicas < 0 or self.wait_ms < 1:
            raise ValueError("replicas must be >= 0 and wait_ms >= 1")
        for name, value in {**self.maxlen, **self.partitions}.items():
            if value < 1:
                raise ValueError(f"{name}: maxlen and partitions must be >= 1")

    def maxlen_for(self, topic: str) -> int:
        if topic in self.maxlen:
            return self.maxlen[topic]
        return self.dlq_maxlen if topic.endswith(".dlq") else self.default_maxlen

    def partitions_for(self, topic: str) -> int:
        return self.partitions.get(topic, 1)


@dataclass(frozen=True)
class DeadLetter:
    """A message that exhausted its deliveries (or could not be decoded), as kept in `<topic>.dlq`."""

    topic: str
    group: str
    original_id: str
    error: str
    deliveries: int
    envelope: Envelope | None  # None when the entry could not be decoded
    stream: str = ""  # the partition stream it came from, when the topic is partitioned
    consumer: str = ""
    id: str = ""  # id of the entry in the dead-letter stream


_JITTER = random.Random()


@dataclass
class Backoff:
    """Jittered exponential delays: attempt n waits between d/2 and d, d = min(cap, base * 2**n).

    Half fixed, half random ("equal jitter"): replicas that lost Redis together do not come back
    in lock-step, and no retry comes back immediately. The jitter comes from one process-wide
    generator: a `random.Random()` of its own seeds from os.urandom (~14 µs here), and the bus makes a
    Backoff per message it handles.
    """

    base: float = 0.1
    cap: float = 10.0
    rng: random.Random = field(default_factory=lambda: _JITTER)
    attempt: int = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.base * 2 ** min(self.attempt, 32))
        self.attempt += 1
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.attempt = 0


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


async def invoke(handler: Handler, envelope: Envelope) -> None:
    """Call a sync or async handler with the message's correlation id as logging context."""
    token = correlation_id.set(envelope.get("correlation_id"))
    try:
        result = handler(envelope)
        if result is not None:
            await result
    finally:
        correlation_id.reset(token)


class Subscriber(Protocol):
    """What a stage's `subscribe()` is given: a bus, or a wrapper around one (runtime.service.Subscriptions)."""

    def subscribe(self, topic: str, group: str, handler: Handler, *, ordered: bool = True) -> None: ...


class Bus(ABC):
    """Publish envelopes to topics; deliver them to one handler per (topic, consumer group).

    Each group gets every message of the topic; within a group each message is handled once (at
    least once on failures). `key` (e.g. the symbol) selects the partition of partitioned topics:
    messages with the same key are handled in publish order.
    """

    @abstractmethod
    async def publish(self, topic: str, envelope: Envelope, key: str | None = None) -> str:
        """Append one message; returns its id."""

    @abstractmethod
    async def publish_many(self, messages: Iterable[Outgoing]) -> list[str]:
        """Append messages in order in as few round trips as possible; returns their ids."""

    @abstractmethod
    def subscribe(self, topic: str, group: str, handler: Handler, *, ordered: bool = True) -> None:
        """Register `handler` for `topic` as (a consumer of) `group`.

        `ordered=True`: per-key order is kept across replicas (one consumer per partition).
        `ordered=False`: replicas compete for messages (throughput over order).
        """

    @abstractmethod
    async def run(self) -> None:
        """Consume until stop() is called."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop reading, let the in-flight handler finish, acknowledge it, and return."""

    @abstractmethod
    async def dead_letters(self, topic: str, count: int = 100) -> list[DeadLetter]:
        """The oldest `count` dead letters of `topic` (for operators and tests)."""

    async def history(self, topic: str, limit: int) -> list[Envelope]:
        """Up to `limit` of the newest envelopes still kept on `topic` (every partition, an equal share of
        `limit` each), newest first within a partition; a bus that keeps no history (the in-memory one)
        has none."""
        return []

    async def handled(self, topic: str, group: str, limit: int, *, partition: int | None = None) -> list[Envelope]:
        """Up to `limit` of the newest envelopes of `topic` (of one `partition` only, if given) that
        `group` has handled and acknowledged (not those still pending or unread; an equal share of
        `limit` per partition), newest first within a partition: what a consumer that keeps state in
        memory took in before it restarted or took the partition over. None without history (in-memory
        bus)."""
        return []


def normalize(message: Outgoing) -> tuple[str, Envelope, str | None]:
    if len(message) == 2:
        topic, envelope = message
        return topic, envelope, None
    return message
