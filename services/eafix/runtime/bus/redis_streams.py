"""The bus on Redis Streams (redis-py asyncio with hiredis).

Layout
  * one stream per topic (`eafix.price.tick`); a topic configured with P > 1 partitions has the
    streams `<topic>.p0` ... `<topic>.p{P-1}` and a message goes to crc32(key) % P;
  * one entry per message, the envelope as one JSON field `envelope` (stdlib json: envelopes are
    small and a faster codec is not a dependency of the project); XADD trims each stream with
    `MAXLEN ~` (the topic's retention divided by its partitions);
  * one consumer group per consuming service, consumer name = pod name; groups are created at
    id 0 with MKSTREAM, so a backlog published before the first consumer started is not skipped;
  * dead letters in the stream `<topic>.dlq`.

Consuming, per subscription (one asyncio task, messages handled one at a time):
  * handler returns -> XACK (acks of one read batch go in one command, after their handlers);
  * handler raises -> the entry stays pending and is redelivered at once, before any later entry
    of its stream, after a jittered backoff; each redelivery is an XCLAIM, so Redis' delivery
    counter counts it. The delivery that reaches `max_deliveries` moves the entry to the DLQ
    with the error, original id, topic, group and delivery count, and acks it (one MULTI).
    An entry found with more deliveries than that (its consumers crashed while handling it)
    is dead-lettered without calling the handler again. Retrying in place keeps the order and
    holds the stream back for at most the retry backoffs (under 1 s with the defaults);
  * handler raises one of `unavailable` (a backend it needs is down: Redis, or PostgreSQL as the
    services configure it) -> not the message's fault, so not counted: the handler is called again
    after a jittered backoff (at most retry_cap) for as long as the outage lasts, the entry stays
    pending (an XCLAIM that keeps its delivery count) and the stream waits;
  * start-up and any error first work off the consumer's own pending entries (what reading id 0
    does, via XPENDING for the delivery counts + XCLAIM) before reading new ones (`>`);
  * every `min_idle_ms / 2` XAUTOCLAIM takes over entries that stayed unacknowledged longer than
    `min_idle_ms` (consumer died); they are then handled like the own pending entries. So
    min_idle_ms must exceed the longest a handler may run, or a slow message is taken over
    while it is still being handled (default 60 s);
  * NOGROUP (group or stream lost: FLUSHALL, restart without persistence, XGROUP DESTROY) ->
    the group is re-created at id 0: entries still in the stream are delivered again, none is
    skipped (handlers are idempotent);
  * connection errors -> jittered exponential backoff, then the loop resumes (an ordered
    consumer only once a heartbeat has confirmed which partition leases it still holds);
  * stop(): no new reads; the handler in flight finishes and is acked; the rest of the read
    batch stays pending: the next lease holder takes it at once (ordered), a restart under the
    same pod name handles it first, otherwise XAUTOCLAIM after min_idle_ms does.

Per-key (per-symbol) order, `ordered=True` (default): competing consumers of one stream would
handle two messages of a symbol at the same time on two pods. So each stream of an ordered
subscription is read by exactly one consumer of the group, which holds a lease on it
(`eafix:bus:lease:<group>:<stream>`, renewed every lease_ms / 3). Consumers announce themselves
in `eafix:bus:members:<group>:<topic>` and each holds at most ceil(P / members) streams: a new
replica gets partitions from the others as they release extras between read batches (never with
a message in flight). Whoever takes a stream over first claims all its pending entries. So with
P partitions, up to P replicas share the work; with P = 1 one replica consumes and the others
stand by. `ordered=False`: all replicas read all streams (no order across replicas).
A consumer that stalls longer than its lease (not just a slow handler: the lease is renewed by
a separate task) can overlap with the next owner; delivery stays at least once either way.

Stages that join several topics per key (bars with their indicator vectors, orders with the
ticks that fill them, a portfolio fed by signals, fills and closes) need partition n of all their
topics on the same replica. `colocate=True` gives the ordered subscriptions of a group one lease
per partition index (`eafix:bus:lease:<group>:partition:<n>/<P>`) instead of one per stream, so
whichever replica holds it reads partition n of every such topic of the group (with P = 1: all
of them, or none). A voluntary rebalance (P > 1) hands partition n over only once every topic's
consumer of the group in this replica has stopped reading it (each between its read batches); then
the lease goes, so the next owner never reads one topic of a partition while this replica still
reads another (signal-generator would see the bars on one replica and their vectors on the other).
A lease taken over by a sibling's heartbeat is adopted by the others (`partition adopted`). At
shutdown the leases go only after every consumer has finished its in-flight message.

`spread=False` keeps every partition of the group's topics on one lease, the one a single partition
has (`...:partition:0/1` co-located, `...:<topic>` otherwise): one replica reads all of them and the
others stand by. For account-wide state (a portfolio, an OMS) that must see every symbol, whatever
the partition count. Each replica's share shows in `eafix_bus_owned_partitions`.

`check_partitions()` refuses (PartitionLayoutError) a start where a subscribed topic has streams of
another partition count that the group has not drained: their entries would never be read
(docs/operations.md, changing the partition count).

`on_acquired(topic, group, stream)` (optional, sync or async) runs in the consumer's loop each
time it acquires a stream's lease (start-up, another replica's lease expired or was released,
after a lost lease), before any entry of that stream is handled: a stateful stage reloads its
state from storage there, because while it stood by another replica changed it. If it raises,
the consumer backs off and calls it again before reading.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from eafix.runtime.bus.base import (
    Backoff,
    Bus,
    BusConfig,
    DeadLetter,
    Envelope,
    Handler,
    NotReplicated,
    Outgoing,
    dlq_topic,
    error_text,
    invoke,
    normalize,
    partition_of,
)
from eafix.runtime.bus.metrics import BusMetrics

log = logging.getLogger(__name__)

FIELD = "envelope"
_FIELD_BYTES = FIELD.encode()
CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)
# What a handler raises when a backend it needs is down (see the module docstring: not counted as a
# delivery). Not OSError at large: a missing file is the message's problem, not an outage.
UNAVAILABLE: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)
# A publish also retries READONLY: a demoted primary answers it until the client reaches the new one
# (the Sentinel client turns it into a ConnectionError itself; a plain URL behind a moved name does not).
PUBLISH_RETRIED = (*CONNECTION_ERRORS, ReadOnlyError)

# redis-py drops XAUTOCLAIM's cursor when JUSTID is given; JUSTID matters (it does not count as a
# delivery: the entry is counted when it is actually handed to the handler), so call it raw.
_AUTOCLAIM = "return redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5], 'JUSTID')"
# Take the lease if free, or keep it if we hold it already (restart under the same pod name).
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
# Membership and lease renewal in one round trip; Redis' clock, so pod clock skew does not matter.
# KEYS[2 .. ARGV[3]+1] are the leases we hold, the rest other leases of the subscription's streams.
# Returns {live members, held lease keys we lost, other lease keys we hold (through another topic of
# a co-located group: adopted, so a partition never sits leased by us and read by none of our topics)}.
_HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local held = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ttl * 2)
local lost, mine = {}, {}
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[i], ttl)
    if i > held + 1 then mine[#mine + 1] = KEYS[i] end
  elseif i <= held + 1 then lost[#lost + 1] = KEYS[i] end
end
return {redis.call('ZCARD', KEYS[1]), lost, mine}
"""


class PartitionLayoutError(RuntimeError):
    """The streams in Redis do not match the configured partition count and still hold work."""


def _decoded(fields: dict) -> Envelope | None:
    """The entry's envelope; None if it is not a JSON object (dead-lettered when it was consumed)."""
    try:
        envelope = json.loads(fields.get(_FIELD_BYTES, fields.get(FIELD)) or b"")
    except (ValueError, RecursionError):  # RecursionError: nested past the JSON parser's depth
        return None
    return envelope if isinstance(envelope, dict) else None


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _group_lost(exc: ResponseError) -> bool:
    # NOGROUP: no such group/stream; UNBLOCKED: the stream was deleted while we blocked on it.
    return str(exc).startswith(("NOGROUP", "UNBLOCKED"))


LAG_COUNT_LIMIT = 10_000  # entries counted when Redis cannot tell a group's lag (see group_lag)


async def group_lag(redis: Any, stream: str, info: dict, limit: int = LAG_COUNT_LIMIT) -> int:
    """How many entries of `stream` the group (`info`: its XINFO GROUPS row) has not been given yet.

    Redis answers nil instead of a number while it does not know how many entries the group has
    read, which is the case after it loaded the stream from its AOF or RDB file (a restart) until the
    group has caught up, or after an entry in the middle was deleted. Nil is not 0: the entries after
    the group's last-delivered-id are counted then (at most `limit`, a lower bound past it)."""
    lag = info.get("lag")
    if lag is not None:
        return int(lag)
    start, counted = "(" + _str(info["last-delivered-id"]), 0
    while counted < limit:
        page = await redis.xrange(stream, start, "+", count=min(1000, limit - counted))
        counted += len(page)
        if len(page) < 1000:
            break
        start = "(" + _str(page[-1][0])
    return counted


def stream_names(topic: str, partitions: int) -> list[str]:
    return [topic] if partitions == 1 else [f"{topic}.p{n}" for n in range(partitions)]


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class RedisStreamsBus(Bus):
    """See the module docstring. from_url() builds a suitable client, which the bus then owns and
    closes. A client passed in must use RESP2, have a socket timeout above `block_ms` (or none)
    and should not retry commands itself: a retried XREADGROUP whose first reply was lost leaves
    entries pending that the loop must see (it handles its own pending entries first after an
    error). Publishing retries connection errors `publish_retries` times; a retried XADD may
    duplicate a message, which idempotent handlers absorb.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        consumer: str | None = None,
        config: BusConfig | None = None,
        metrics: BusMetrics | None = None,
        batch: int = 100,
        block_ms: int = 1000,
        min_idle_ms: int = 60_000,
        lease_ms: int = 15_000,
        retry_base: float = 0.05,
        retry_cap: float = 1.0,
        reconnect_base: float = 0.1,
        reconnect_cap: float = 10.0,
        metrics_interval: float = 5.0,
        publish_chunk: int = 1000,
        publish_retries: int = 3,
        owns_client: bool = False,
        colocate: bool = False,
        spread: bool = True,
        on_acquired: Callable[[str, str, str], Awaitable[None] | None] | None = None,
        unavailable: tuple[type[BaseException], ...] = UNAVAILABLE,
    ) -> None:
        # Any: redis-py's stubs of the stream commands disagree with what RESP2 returns (and accept);
        # this adapter checks the shapes it reads itself
        self.redis: Any = redis
        self.consumer = consumer or socket.gethostname()  # the pod name in Kubernetes
        self.config = config or BusConfig()
        self.metrics = metrics or BusMetrics()
        self.batch, self.block_ms, self.min_idle_ms, self.lease_ms = batch, block_ms, min_idle_ms, lease_ms
        self.retry_base, self.retry_cap = retry_base, retry_cap
        self.reconnect_base, self.reconnect_cap = reconnect_base, reconnect_cap
        self.metrics_interval, self.publish_chunk = metrics_interval, publish_chunk
        self.publish_retries = publish_retries
        self.unavailable = unavailable
        self.colocate, self.spread = colocate, spread
        self.on_acquired = on_acquired
        self.reclaim_interval = min(30.0, max(0.05, min_idle_ms / 2000))
        self._owns_client = owns_client
        self._autoclaim = redis.register_script(_AUTOCLAIM)
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)
        self._heartbeat = redis.register_script(_HEARTBEAT)
        self._consumers: dict[tuple[str, str], _Consumer] = {}
        # (group, partition count) -> partition indices being handed over (see _Consumer._release_extras)
        self._releasing: dict[tuple[str, int], set[int]] = {}
        self._tasks: list[asyncio.Task] = []
        self._stop: asyncio.Event | None = None
        self._done: asyncio.Event | None = None
        self._run_task: asyncio.Task | None = None

    @staticmethod
    def client_options(consumer: str, block_ms: int = 1000) -> dict[str, Any]:
        """redis-py options for the bus's own client (see the class docstring)."""
        return {
            "socket_connect_timeout": 5,
            "socket_timeout": block_ms / 1000 + 10,  # a dead peer without RST must not hang a read forever
            "socket_keepalive": True,
            "health_check_interval": 30,
            "client_name": f"eafix-bus:{consumer}",  # who is who in CLIENT LIST
            "retry": Retry(NoBackoff(), 0),  # see the class docstring: the bus retries itself
        }

    @classmethod
    def from_url(cls, url: str, *, password: str | None = None, **kwargs: Any) -> RedisStreamsBus:
        options = cls.client_options(kwargs.get("consumer") or socket.gethostname(), kwargs.get("block_ms", 1000))
        if password is not None:
            options["password"] = password
        return cls(aioredis.Redis.from_url(url, **options), owns_client=True, **kwargs)

    # -- publishing ---------------------------------------------------------------------------

    def _stream_for(self, topic: str, envelope: Envelope, key: str | None) -> tuple[str, int]:
        partitions = self.config.partitions_for(topic)
        maxlen = max(1, self.config.maxlen_for(topic) // partitions)
        if partitions == 1:
            return topic, maxlen
        key = key if key is not None else str(envelope.get("event_id", ""))
        return f"{topic}.p{partition_of(key, partitions)}", maxlen

    async def _retrying(self, send: Callable[[], Awaitable[Any]]) -> Any:
        backoff = Backoff(0.05, 1.0)
        for attempt in range(self.publish_retries + 1):
            try:
                return await send()
            except PUBLISH_RETRIED:
                if attempt == self.publish_retries:
                    raise
                await asyncio.sleep(backoff.next())

    def _replicated(self, topics: Iterable[str]) -> bool:
        return self.config.replicas > 0 and any(t in self.config.durable for t in topics)

    def _check_replicas(self, acknowledged: Any, topics: Iterable[str]) -> None:
        if int(acknowledged) < self.config.replicas:
            raise NotReplicated(f"{int(acknowledged)} of {self.config.replicas} Redis replicas acknowledged the "
                                f"publish to {', '.join(sorted(set(topics)))} within {self.config.wait_ms} ms")

    async def publish(self, topic: str, envelope: Envelope, key: str | None = None) -> str:
        return (await self.publish_many([(topic, envelope, key)]))[0]

    async def publish_many(self, messages: Iterable[Outgoing]) -> list[str]:
        # Encode everything first: an envelope that is not JSON fails the call before anything is sent.
        prepared = []
        for message in messages:
            topic, envelope, key = normalize(message)
            prepared.append((topic, *self._stream_for(topic, envelope, key), _dumps(envelope)))
        ids: list[str] = []
        for start in range(0, len(prepared), self.publish_chunk):
            chunk = prepared[start:start + self.publish_chunk]

            wait = self._replicated(topic for topic, *_ in chunk)

            def send(chunk: list = chunk, wait: bool = wait) -> Awaitable[list]:
                pipe = self.redis.pipeline(transaction=False)  # one round trip per chunk, order kept
                for _topic, stream, maxlen, payload in chunk:
                    pipe.xadd(stream, {FIELD: payload}, maxlen=maxlen, approximate=True)
                if wait:  # after the writes, in the same round trip: replicas hold all of them
                    pipe.execute_command("WAIT", self.config.replicas, self.config.wait_ms)
                return pipe.execute()

            results = await self._retrying(send)
            if wait:
                self._check_replicas(results.pop(), (topic for topic, *_ in chunk))
            ids.extend(_str(msg_id) for msg_id in results)
            counts: dict[str, int] = {}
            for topic, *_ in chunk:
                counts[topic] = counts.get(topic, 0) + 1
            for topic, n in counts.items():
                self.metrics.published.labels(topic).inc(n)
        return ids

    # -- consuming ----------------------------------------------------------------------------

    def subscribe(self, topic: str, group: str, handler: Handler, *, ordered: bool = True) -> None:
        if (topic, group) in self._consumers:
            raise ValueError(f"{group} already subscribes to {topic}")
        consumer = _Consumer(self, topic, group, handler, ordered)
        self._consumers[topic, group] = consumer
        if self._stop is not None and not self._stop.is_set():  # subscribed while running
            self._tasks.append(asyncio.create_task(consumer.run(), name=f"bus:{topic}:{group}"))

    @property
    def stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    async def sleep(self, seconds: float, wake: asyncio.Event | None = None) -> bool:
        """Sleep unless stop() is called (False) or `wake` is set (True) meanwhile."""
        events = [e for e in (self._stop, wake) if e is not None]
        if not events:
            await asyncio.sleep(seconds)
            return True
        waits = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        return self._stop is None or not self._stop.is_set()

    async def run(self) -> None:
        if self._done is not None and not self._done.is_set():
            raise RuntimeError("the bus is already running")
        self._stop, self._done = asyncio.Event(), asyncio.Event()
        self._run_task = asyncio.current_task()
        self._tasks = [asyncio.create_task(c.run(), name=f"bus:{c.topic}:{c.group}")
                       for c in self._consumers.values()]
        try:
            await self._stop.wait()
            await asyncio.gather(*self._tasks, return_exceptions=True)  # each finishes its in-flight message
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            # only now, with every consumer done: a co-located lease covers several topics' streams
            for consumer in self._consumers.values():
                if consumer.ordered:
                    await consumer._leave()
            self._done.set()

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop consuming (see Bus.stop); after `timeout` seconds the consumers are cancelled.
        Closes the Redis client if the bus created it."""
        if self._stop is not None and self._done is not None:
            self._stop.set()
            current = asyncio.current_task()
            if current is not self._run_task and current not in self._tasks:
                try:
                    await asyncio.wait_for(asyncio.shield(self._done.wait()), timeout)
                except TimeoutError:
                    log.error("bus consumers did not stop within %ss; cancelling them", timeout)
                    for task in self._tasks:
                        task.cancel()
                    await self._done.wait()
        if self._owns_client:
            await self.redis.aclose()

    async def refresh_metrics(self) -> None:
        """Sample pending/lag of every subscription now (the consumers also do it periodically)."""
        for consumer in self._consumers.values():
            await consumer.sample()

    async def check_partitions(self) -> None:
        """Refuse to consume while the group has work left in the streams of another partition count:
        nobody would ever read it (the same stream names may even hold other symbols under the new
        count). Each group records the count it consumes with (`eafix:bus:partitions:<group>:<topic>`);
        a different recorded count whose streams the group has not drained (entries not yet delivered
        to it, or delivered and not acknowledged) raises PartitionLayoutError naming them; a drained
        one is replaced by the configured count. Without a record (first start, or a version that kept
        none) the streams named for no configured layout are checked instead."""
        problems, counts = [], set()
        for (topic, group), consumer in sorted(self._consumers.items()):
            configured = len(consumer.streams)
            counts.add(configured)
            record = f"eafix:bus:partitions:{group}:{topic}"
            recorded = await self.redis.get(record)
            if recorded is not None:
                previous = int(_str(recorded))
                others = stream_names(topic, previous) if previous != configured else []
            else:
                previous, others = 0, sorted(await self._foreign_streams(topic, set(consumer.streams)))
            left = [(stream, n) for stream in others if (n := await self._undrained(stream, group))]
            if left:
                layout = f"{previous} partition(s)" if previous else "another layout"
                problems += [f"{stream} ({layout}): {n} entries group {group} has not handled" for stream, n in left]
            elif previous != configured:
                await self.redis.set(record, configured)
        if problems:
            raise PartitionLayoutError(
                f"streams of another partition count are not drained ({'; '.join(problems)}); this consumer "
                f"is configured for {'/'.join(map(str, sorted(counts)))} partition(s) (SERVICE_BUS_PARTITIONS): "
                "go back to the old count until they are drained (docs/operations.md, changing the partition count)")

    async def _foreign_streams(self, topic: str, expected: set[str]) -> set[str]:
        pattern = re.compile(re.escape(topic) + r"(\.p\d+)?")
        found = {_str(name) async for name in self.redis.scan_iter(match=f"{topic}*", _type="stream")}
        return {s for s in found if pattern.fullmatch(s) and s not in expected}

    async def _undrained(self, stream: str, group: str) -> int:
        try:
            groups = await self.redis.xinfo_groups(stream)
        except ResponseError:  # no such stream
            return 0
        for info in groups:
            if _str(info["name"]) == group:
                return int(info["pending"]) + await group_lag(self.redis, stream, info)
        return 0  # the group never read it: not this group's backlog

    def owned_streams(self, topic: str, group: str) -> set[str]:
        """Streams this consumer currently reads for (topic, group)."""
        return set(self._consumers[topic, group].owned)

    async def history(self, topic: str, limit: int) -> list[Envelope]:
        streams = stream_names(topic, self.config.partitions_for(topic))
        quota = -(-limit // len(streams))  # an equal share per partition: every symbol gets its newest
        found: list[Envelope] = []
        for stream in streams:
            found += await self._newest(stream, min(quota, limit - len(found)), "+", set())
        return found

    async def handled(self, topic: str, group: str, limit: int, *, partition: int | None = None) -> list[Envelope]:
        streams = stream_names(topic, self.config.partitions_for(topic))
        if partition is not None:
            streams = [streams[partition]]
        quota = -(-limit // len(streams))
        found: list[Envelope] = []
        for stream in streams:
            position = await self._delivered(stream, group)
            if position is None:
                continue
            # entries delivered but not acknowledged come again: they are not "handled"
            pending = {_str(row["message_id"]) for row in await self.redis.xpending_range(
                stream, group, "-", position, count=limit + 10_000)}
            found += await self._newest(stream, min(quota, limit - len(found)), position, pending)
        return found

    async def _newest(self, stream: str, count: int, newest: str, skip: set[str]) -> list[Envelope]:
        """Up to `count` decodable envelopes of `stream` at or before id `newest`, newest first, but `skip`."""
        found: list[Envelope] = []
        while len(found) < count:
            page = await self.redis.xrevrange(stream, newest, "-", count=1000)
            for entry_id, fields in page:
                if len(found) < count and _str(entry_id) not in skip:
                    envelope = _decoded(fields)
                    if envelope is not None:
                        found.append(envelope)
            if len(page) < 1000:
                break
            newest = "(" + _str(page[-1][0])  # exclusive: older than the last entry read
        return found

    async def _delivered(self, stream: str, group: str) -> str | None:
        """The id of the last entry `group` was given on `stream`; None without that group."""
        try:
            groups = await self.redis.xinfo_groups(stream)
        except ResponseError:  # no such stream
            return None
        for g in groups:
            if _str(g["name"]) == group:
                return _str(g["last-delivered-id"])
        return None

    async def dead_letters(self, topic: str, count: int = 100) -> list[DeadLetter]:
        letters = []
        for entry_id, raw_fields in await self.redis.xrange(dlq_topic(topic), count=count):
            fields = {_str(k): v for k, v in raw_fields.items()}
            try:
                envelope = json.loads(fields.get(FIELD) or b"")
            except (ValueError, RecursionError):
                envelope = None
            if not isinstance(envelope, dict):  # what made it undecodable in the first place
                envelope = None
            letters.append(DeadLetter(
                topic=_str(fields["topic"]), group=_str(fields["group"]), original_id=_str(fields["original_id"]),
                error=_str(fields["error"]), deliveries=int(fields["deliveries"]), envelope=envelope,
                stream=_str(fields["stream"]), consumer=_str(fields["consumer"]), id=_str(entry_id)))
        return letters


class _Consumer:
    """One subscription's read loop, and a side task for metrics and (ordered) lease heartbeats:
    those must go on while a handler is slow or stuck, which is when the lag gauge matters."""

    def __init__(self, bus: RedisStreamsBus, topic: str, group: str, handler: Handler, ordered: bool) -> None:
        self.bus, self.redis, self.name = bus, bus.redis, bus.consumer
        self.topic, self.group, self.handler, self.ordered = topic, group, handler, ordered
        self.streams = stream_names(topic, bus.config.partitions_for(topic))
        self.owned: set[str] = set()      # streams we read
        self.takeover: set[str] = set()   # just leased: claim everything pending on them first
        self.pending: set[str] = set()    # work off our own pending entries before reading new ones
        self.share = len(self.streams)
        self.ready = False
        # Ordered: after an outage, read only once a heartbeat has confirmed which leases we still
        # hold (they may have expired and moved to another replica meanwhile).
        self.leases_confirmed = False
        self.leased: asyncio.Event  # set by a heartbeat that confirmed or acquired a lease: stop standing by
        self.next_reclaim = 0.0
        self.closing = False  # ends the side task even if a cancellation gets lost in redis-py's error handling
        self.members_key = f"eafix:bus:members:{group}:{topic}"
        m, labels = bus.metrics, (topic, group)
        self.handled, self.failed = m.handled.labels(*labels), m.failed.labels(*labels)
        self.dead_lettered, self.reclaimed = m.dead_lettered.labels(*labels), m.reclaimed.labels(*labels)
        self.recreated, self.connection_errors = m.group_recreated.labels(*labels), m.connection_errors.labels(*labels)
        self.pending_gauge, self.lag_gauge = m.pending.labels(*labels), m.lag.labels(*labels)
        self.owned_gauge = m.owned_partitions.labels(*labels)
        if not bus.spread:  # one lease for them all: hold every stream or none
            self.share = len(self.streams)

    def _lease_key(self, stream: str) -> str:
        if not self.bus.spread:  # the key of one partition, whatever the count
            return (f"eafix:bus:lease:{self.group}:partition:0/1" if self.bus.colocate
                    else f"eafix:bus:lease:{self.group}:{self.topic}")
        if self.bus.colocate:  # one lease for partition n of every ordered topic of the group
            return f"eafix:bus:lease:{self.group}:partition:{self.streams.index(stream)}/{len(self.streams)}"
        return f"eafix:bus:lease:{self.group}:{stream}"

    def _own(self, stream: str, how: str) -> None:
        self.owned.add(stream)
        self.takeover.add(stream)
        log.info(how, extra=self._context(stream=stream))

    def _context(self, **extra: Any) -> dict[str, Any]:
        return {"topic": self.topic, "group": self.group, "consumer": self.name, **extra}

    async def run(self) -> None:
        self.leased = asyncio.Event()  # made in this run's loop (a bus may be run again in another)
        side = asyncio.create_task(self._side_loop())
        backoff = Backoff(self.bus.reconnect_base, self.bus.reconnect_cap)
        try:
            while not self.bus.stopping:
                try:
                    await self._step()
                    backoff.reset()
                    continue
                except ResponseError as exc:
                    if _group_lost(exc):
                        self.recreated.inc()
                        self.ready = False
                        log.warning("consumer group lost; re-creating it at id 0", extra=self._context(error=str(exc)))
                    else:
                        log.exception("bus consumer error; backing off", extra=self._context())
                except CONNECTION_ERRORS as exc:
                    self.connection_errors.inc()
                    log.warning("redis unavailable; backing off", extra=self._context(error=error_text(exc)))
                except Exception:
                    log.exception("bus consumer error; backing off", extra=self._context())
                # Whatever was read and not acked is ours and pending: handle it before newer entries.
                self.pending |= self.owned
                self.leases_confirmed = False
                await self.bus.sleep(backoff.next())
        finally:
            self.closing = True
            side.cancel()
            await asyncio.gather(side, return_exceptions=True)

    async def _step(self) -> None:
        bus = self.bus
        if not self.ready:
            await self._ensure_groups()
            if not self.ordered:
                self.owned = set(self.streams)
                self.owned_gauge.set(len(self.owned))
                self.pending |= self.owned
            self.ready = True
        if self.ordered:
            await self._release_extras()
        if not self.owned or (self.ordered and not self.leases_confirmed):  # standing by
            # until the heartbeat leases us a partition: at start-up, after an outage, on a takeover
            # (a fixed sleep here held a fresh replica's first read back by up to block_ms)
            self.leased.clear()
            await bus.sleep(min(bus.block_ms, bus.lease_ms / 3) / 1000, self.leased)
            return
        for stream in sorted(self.takeover & self.owned):
            if bus.on_acquired is not None:  # before anything of the stream is handled (see module docstring)
                result = bus.on_acquired(self.topic, self.group, stream)
                if result is not None:
                    await result
            # The lease makes us the only reader, so nothing pending there is in flight anywhere.
            self.reclaimed.inc(await self._claim(stream, 0))
            self.takeover.discard(stream)
            self.pending.add(stream)
        self.takeover &= self.owned
        now = time.monotonic()
        if now >= self.next_reclaim:
            self.next_reclaim = now + bus.reclaim_interval
            for stream in sorted(self.owned):
                claimed = await self._claim(stream, bus.min_idle_ms)
                if claimed:
                    self.reclaimed.inc(claimed)
                    self.pending.add(stream)
                    log.warning("reclaimed idle pending entries", extra=self._context(stream=stream, count=claimed))
        self.pending &= self.owned
        if self.pending:
            await self._work_pending(sorted(self.pending))
        else:
            await self._read_new()

    async def _ensure_groups(self) -> None:
        for stream in self.streams:
            try:
                # Id 0, not "$": a new (or re-created) group starts with the backlog, skipping nothing.
                await self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _claim(self, stream: str, min_idle_ms: int) -> int:
        """Move entries pending longer than min_idle_ms (any consumer) to us; returns how many."""
        start, total = "0-0", 0
        while True:
            cursor, ids, deleted = await self.bus._autoclaim(
                keys=[stream], args=[self.group, self.name, min_idle_ms, start, max(self.bus.batch, 100)])
            total += len(ids)
            if deleted:
                log.warning("pending entries were trimmed before anyone handled them",
                            extra=self._context(stream=stream, count=len(deleted)))
            start = _str(cursor)
            if start == "0-0":
                return total

    async def _work_pending(self, streams: list[str]) -> None:
        for stream in streams:
            if self.bus.stopping:
                return
            rows = await self.redis.xpending_range(stream, self.group, "-", "+", self.bus.batch,
                                                   consumername=self.name)
            if not rows:
                self.pending.discard(stream)
                continue
            counts = {_str(row["message_id"]): row["times_delivered"] for row in rows}
            # XCLAIM to ourselves returns the entries and counts this delivery.
            claimed = await self.redis.xclaim(stream, self.group, self.name, 0, list(counts))
            entries = [(_str(i), f, counts[_str(i)] + 1) for i, f in claimed if f is not None]
            gone = set(counts) - {msg_id for msg_id, _, _ in entries}
            if gone:  # trimmed away while pending (Redis < 7 keeps them in the PEL)
                await self.redis.xack(stream, self.group, *gone)
                log.warning("pending entries were trimmed before they were handled",
                            extra=self._context(stream=stream, count=len(gone)))
            await self._process(stream, entries)

    async def _read_new(self) -> None:
        # Not a stream the heartbeat leased a moment ago: its previous owner's entries come first.
        streams = sorted(self.owned - self.takeover)
        if not streams:
            return
        reply = await self.redis.xreadgroup(self.group, self.name, {s: ">" for s in streams},
                                            count=self.bus.batch, block=self.bus.block_ms)
        for stream, entries in reply or ():  # RESP2: [[stream, [(id, fields), ...]], ...]
            await self._process(_str(stream), [(_str(i), f, 1) for i, f in entries])

    async def _process(self, stream: str, entries: list[tuple[str, dict, int]]) -> None:
        done = []
        for msg_id, fields, deliveries in entries:
            if self.bus.stopping:
                break  # the rest stays pending: ours on restart, or the next lease holder's
            if await self._handle(stream, msg_id, fields, deliveries):
                done.append(msg_id)
        if done:
            await self.redis.xack(stream, self.group, *done)

    async def _handle(self, stream: str, msg_id: str, fields: dict, deliveries: int) -> bool:
        """Deliver one entry, retrying in place; True when it is handled and must be acked."""
        raw = fields.get(_FIELD_BYTES, fields.get(FIELD))
        try:
            envelope = json.loads(raw if raw is not None else b"")
            if not isinstance(envelope, dict):
                raise ValueError("the envelope is not a JSON object")
        except (TypeError, ValueError, RecursionError) as exc:  # retrying cannot fix it (nor nesting too deep)
            await self._dead_letter(stream, msg_id, raw, None, f"undecodable entry: {error_text(exc)}", deliveries)
            return False
        limit = self.bus.config.max_deliveries
        down = Backoff(self.bus.retry_base, self.bus.retry_cap)  # delays while a backend is down
        while True:
            if deliveries > limit:
                await self._dead_letter(stream, msg_id, raw, envelope, f"not acknowledged after {deliveries - 1} "
                                        "deliveries (the consumers died while handling it?)", deliveries - 1)
                return False
            try:
                await invoke(self.handler, envelope)
            except self.bus.unavailable as exc:
                self.failed.inc()
                if not await self._wait_for_backend(stream, msg_id, envelope, deliveries, exc, down):
                    return False
            except Exception as exc:
                self.failed.inc()
                log.warning("handler failed", exc_info=True, extra=self._context(
                    stream=stream, message_id=msg_id, event_id=envelope.get("event_id"), deliveries=deliveries))
                if deliveries >= limit:
                    await self._dead_letter(stream, msg_id, raw, envelope, error_text(exc), deliveries)
                    return False
                delay = Backoff(self.bus.retry_base, self.bus.retry_cap, attempt=deliveries - 1).next()
                if not await self.bus.sleep(delay):
                    return False  # stopping: it stays pending
                if not await self.redis.xclaim(stream, self.group, self.name, 0, [msg_id]):
                    return False  # trimmed meanwhile
                deliveries += 1
            else:
                self.handled.inc()
                return True

    async def _wait_for_backend(self, stream: str, msg_id: str, envelope: Envelope, deliveries: int,
                                exc: BaseException, down: Backoff) -> bool:
        """After the handler found a backend down: back off, keep the entry (its delivery count as it
        was); False when the bus stops meanwhile or the entry was trimmed (not to be handled now)."""
        if down.attempt == 0:  # once per outage of this message, not on every retry
            log.warning("handler failed: a backend is unavailable; retrying without counting a delivery",
                        extra=self._context(stream=stream, message_id=msg_id, event_id=envelope.get("event_id"),
                                            deliveries=deliveries, error=error_text(exc)))
        if not await self.bus.sleep(down.next()):
            return False  # stopping: it stays pending
        # idle time back to 0 (it is being handled: nobody reclaims it), the delivery count unchanged
        return bool(await self.redis.xclaim(stream, self.group, self.name, 0, [msg_id], retrycount=deliveries,
                                            justid=True))

    async def _dead_letter(self, stream: str, msg_id: str, raw: Any, envelope: Envelope | None, error: str,
                           deliveries: int) -> None:
        dlq = dlq_topic(self.topic)
        fields = {FIELD: raw if raw is not None else b"", "error": error, "original_id": msg_id,
                  "topic": self.topic, "stream": stream, "group": self.group, "consumer": self.name,
                  "deliveries": deliveries}
        pipe = self.redis.pipeline(transaction=True)  # the dead letter and the ack, or neither
        pipe.xadd(dlq, fields, maxlen=self.bus.config.maxlen_for(dlq), approximate=True)
        pipe.xack(stream, self.group, msg_id)
        await pipe.execute()
        self.dead_lettered.inc()
        log.error("message dead-lettered", extra=self._context(
            stream=stream, message_id=msg_id, deliveries=deliveries, error=error,
            event_id=envelope.get("event_id") if envelope else None))

    async def sample(self) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for stream in self.streams:
            pipe.xinfo_groups(stream)
        pending, lag = 0, 0
        for stream, groups in zip(self.streams, await pipe.execute(raise_on_error=False), strict=True):
            if isinstance(groups, Exception):  # stream not created yet
                continue
            for info in groups:
                if _str(info["name"]) == self.group:
                    pending += info["pending"]
                    lag += await group_lag(self.redis, stream, info)
        self.pending_gauge.set(pending)
        self.lag_gauge.set(lag)

    # -- partition leases (ordered subscriptions) --------------------------------------------

    async def _side_loop(self) -> None:
        beat_every, sample_every = self.bus.lease_ms / 3000, self.bus.metrics_interval
        next_beat = next_sample = time.monotonic()
        while not self.closing:
            now = time.monotonic()
            if self.ordered and now >= next_beat:
                next_beat = now + beat_every
                try:
                    await self._beat()
                except Exception as exc:  # leases lapse if this lasts
                    if isinstance(exc, CONNECTION_ERRORS):
                        self.connection_errors.inc()
                    log.warning("bus heartbeat failed", extra=self._context(error=error_text(exc)))
            if now >= next_sample:
                next_sample = now + sample_every
                try:
                    await self.sample()
                except Exception as exc:
                    log.debug("bus metrics sampling failed", extra=self._context(error=error_text(exc)))
            wake = min(next_beat, next_sample) if self.ordered else next_sample
            if not self.closing:
                await asyncio.sleep(max(0.0, wake - time.monotonic()))

    async def _beat(self) -> None:
        streams_of: dict[str, list[str]] = {}  # lease key -> its streams (several when spread=False)
        for stream in self.streams:
            streams_of.setdefault(self._lease_key(stream), []).append(stream)
        held = [k for k, streams in streams_of.items() if self.owned.intersection(streams)]
        others = [k for k in streams_of if k not in held]
        members, lost, mine = await self.bus._heartbeat(keys=[self.members_key, *held, *others],
                                                        args=[self.name, self.bus.lease_ms, len(held)])
        for key in lost:
            for stream in streams_of[_str(key)]:
                if stream in self.owned:  # not released meanwhile
                    self.owned.discard(stream)
                    log.warning("partition lease lost", extra=self._context(stream=stream))
        lost_keys, releasing = {_str(k) for k in lost}, self._releasing()
        for key in [*(_str(k) for k in mine), *(k for k in held if k not in lost_keys)]:
            for stream in streams_of[key]:  # leased by us through another topic, or a sibling stream of a lease
                if stream not in self.owned and self.streams.index(stream) not in releasing:
                    self._own(stream, "partition adopted (its lease is ours)")
        if self.bus.spread:
            self.share = -(-len(self.streams) // max(1, members))
        self.leases_confirmed = True
        self.owned_gauge.set(len(self.owned))
        if self.bus.stopping:
            return
        first = partition_of(self.name, len(self.streams))  # replicas start their search at different places
        for i in range(len(self.streams)):
            if len(self.owned) >= self.share:
                break
            n = (first + i) % len(self.streams)
            stream = self.streams[n]
            if stream not in self.owned and n not in releasing and await self.bus._acquire(
                    keys=[self._lease_key(stream)], args=[self.name, self.bus.lease_ms]):
                self._own(stream, "partition acquired")
        self.owned_gauge.set(len(self.owned))
        if self.owned:
            self.leased.set()

    def _releasing(self) -> set[int]:
        return self.bus._releasing.setdefault((self.group, len(self.streams)), set())

    def _siblings(self) -> list[_Consumer]:
        """The consumers of this replica that share this one's partition leases (itself included)."""
        if not (self.bus.colocate and self.bus.spread):
            return [self]
        return [c for c in self.bus._consumers.values()
                if c.ordered and c.group == self.group and len(c.streams) == len(self.streams)]

    async def _release_extras(self) -> None:
        # Between read batches only, so no message of a released stream is in flight here. A lease that
        # sibling topics share is released only once every sibling has stopped reading that partition
        # (each between its own batches): the next owner never reads the bars of a partition while this
        # replica still reads its vectors.
        releasing = self._releasing()
        keep = sorted((self.streams.index(s) for s in self.owned if self.streams.index(s) not in releasing),
                      reverse=True)
        while len(keep) > self.share:
            releasing.add(keep.pop(0))
        for n in sorted(releasing):
            stream = self.streams[n]
            if stream in self.owned:
                self.owned.discard(stream)
                self.takeover.discard(stream)
                self.owned_gauge.set(len(self.owned))
                log.info("partition released for rebalancing", extra=self._context(stream=stream))
            if not any(c.streams[n] in c.owned for c in self._siblings()):
                releasing.discard(n)
                await self.bus._release(keys=[self._lease_key(stream)], args=[self.name])

    async def _leave(self) -> None:
        try:
            for stream in sorted(self.owned):
                await self.bus._release(keys=[self._lease_key(stream)], args=[self.name])
            await self.redis.zrem(self.members_key, self.name)
        except Exception as exc:  # the leases expire on their own
            log.warning("could not release partition leases", extra=self._context(error=error_text(exc)))
        self.owned.clear()
        self.owned_gauge.set(0)
