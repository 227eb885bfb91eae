"""The event bus: one interface (`Bus`), on Redis Streams for services and in memory for backtests.

    bus = RedisStreamsBus.from_url(redis_url(settings), consumer=pod_name, metrics=BusMetrics(registry))
    bus.subscribe("eafix.price.tick", "indicator-engine", on_tick)
    await bus.publish("eafix.indicators.computed", envelope, key=symbol)
    task = asyncio.create_task(bus.run()); ...; await bus.stop()

The composition root picks InMemoryBus or RedisStreamsBus; domain adapters only see `Bus`.
"""

from eafix.runtime.bus.base import (
    DURABLE_TOPICS,
    Backoff,
    Bus,
    BusConfig,
    DeadLetter,
    Envelope,
    Handler,
    NotReplicated,
    Outgoing,
    dlq_topic,
    partition_of,
)
from eafix.runtime.bus.memory import InMemoryBus
from eafix.runtime.bus.metrics import BusMetrics
from eafix.runtime.bus.redis_streams import RedisStreamsBus, stream_names

__all__ = [
    "DURABLE_TOPICS",
    "Backoff",
    "Bus",
    "BusConfig",
    "BusMetrics",
    "DeadLetter",
    "Envelope",
    "Handler",
    "InMemoryBus",
    "NotReplicated",
    "Outgoing",
    "RedisStreamsBus",
    "dlq_topic",
    "partition_of",
    "stream_names",
]
