"""The event bus: one interface (`Bus`), on Redis Streams for services and in memory for backtests.

    bus = RedisStreamsBus.from_url(redis_url(settings), consumer=pod_name, metrics=BusMetrics(registry))
    bus.subscribe("eafix.price.tick", "indicator-engine", on_tick)
    await bus.publish("eafix.indicators.computed", envelope, key=symbol)
    task = asyncio.create_task(bus.run()); ...; await bus.stop()

The composition root picks InMemoryBus or RedisStreamsBus; domain adapters only see `Bus`.
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from eafix.runtime.bus.redis_streams import RedisStreamsBus, stream_names


def __getattr__(name: str) -> Any:
    """RedisStreamsBus and stream_names on first use: importing redis costs a backtest ~0.3 s of start-up."""
    if name in ("RedisStreamsBus", "stream_names"):
        from eafix.runtime.bus import redis_streams

        return getattr(redis_streams, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
