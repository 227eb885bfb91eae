"""The live feed's source (an adapter): the channels' topics read from Redis with XREAD, without a
consumer group (like the runtime's TopicFollower: the gateway observes the bus, it takes nothing
from the pipeline's groups), from the newest entry on; each envelope goes to the hub as

    {"type": "event", "channel", "event_type", "event_id", "ts_event", "data"}

Reading stops while no client is connected (the read position then restarts at "now": a feed is
live, not a history). A status snapshot is pushed to the `status` channel every `status_seconds`
and right after a risk-off change."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from eafix.gui_gateway.live_feed import CHANNEL_TOPICS, FeedHub, channels_of
from eafix.runtime.bus.base import Backoff
from eafix.runtime.bus.redis_streams import CONNECTION_ERRORS, FIELD

log = logging.getLogger(__name__)
StatusReader = Callable[[], Awaitable[dict[str, Any]]]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def feed_message(topic: str, fields: Any) -> dict[str, Any] | None:
    """The hub message of one stream entry, or None for an entry that is not an envelope."""
    raw = fields.get(FIELD.encode(), fields.get(FIELD))
    try:
        envelope = json.loads(raw or b"")
    except (TypeError, ValueError, RecursionError):  # RecursionError: nested past the parser's depth
        return None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("data"), dict):
        return None
    return {"type": "event", "event_type": envelope.get("event_type"), "event_id": envelope.get("event_id"),
            "ts_event": envelope.get("ts_event"), "topic": topic, "data": envelope["data"]}


class BusFeed:
    def __init__(self, redis: Any, hub: FeedHub, streams_of: Callable[[str], list[str]], status: StatusReader,
                 *, block_ms: int = 1000, status_seconds: float = 5.0) -> None:
        self.redis, self.hub, self.status = redis, hub, status
        self.block_ms, self.status_seconds = block_ms, status_seconds
        self.topic_of = {s: t for topics in CHANNEL_TOPICS.values() for t in topics for s in streams_of(t)}
        self._stopping = asyncio.Event()
        self.reading = False  # True while positioned on the streams (a client connected)

    def dispatch(self, stream: str, fields: Any) -> bool:
        """Hands one entry to its channels; True when it was a risk-off change (status follows)."""
        topic = self.topic_of.get(stream, stream)
        message = feed_message(topic, fields)
        if message is None:
            return False
        for channel in channels_of(topic):
            self.hub.publish(channel, {**message, "channel": channel})
        return topic == "eafix.system.risk_off"

    async def push_status(self) -> None:
        if self.hub.wanted("status"):
            snapshot = await self.status()
            self.hub.publish("status", {"type": "status", "channel": "status", "data": snapshot})

    async def run(self) -> None:
        backoff = Backoff(0.1, 5.0)
        last_ids: dict[str, str] | None = None
        while not self._stopping.is_set():
            if not self.hub.clients:
                last_ids, self.reading = None, False  # nobody listens: start again from "now" when someone does
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), 0.1)
                continue
            try:
                if last_ids is None:
                    last_ids = await self._newest_ids()
                    self.reading = True
                reply = await self.redis.xread(dict(last_ids), count=500, block=self.block_ms)
            except CONNECTION_ERRORS as exc:
                log.warning("live feed: redis unavailable; backing off", extra={"error": str(exc)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff.next())
                continue
            backoff.reset()
            risk_off_changed = False
            for stream, entries in reply or ():
                stream = _text(stream)
                for entry_id, fields in entries:
                    last_ids[stream] = _text(entry_id)
                    risk_off_changed |= self.dispatch(stream, fields)
            if risk_off_changed:
                await self._status_quietly()

    async def _newest_ids(self) -> dict[str, str]:
        """Each stream's newest entry id (XREAD with "$" on every call would miss what arrives between calls)."""
        ids = {}
        for stream in self.topic_of:
            newest = await self.redis.xrevrange(stream, "+", "-", count=1)
            ids[stream] = _text(newest[0][0]) if newest else "0-0"
        return ids

    async def _status_quietly(self) -> None:
        try:
            await self.push_status()
        except Exception:  # the status reads peers and Redis; a failure must not end the feed
            log.warning("live feed: status snapshot failed", exc_info=True)

    async def run_status(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.status_seconds)
                return
            await self._status_quietly()

    async def stop(self) -> None:
        self._stopping.set()
