"""Reading the bus's state from Redis for the system status (an adapter): every `eafix.*` stream,
its consumer groups' lag and pending counts (XINFO GROUPS), dead-letter sizes, the newest tick per
symbol (the last TICK_SCAN entries of each price-tick stream) and the newest risk-off message."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from eafix.contracts import PriceTick, SystemRiskOff
from eafix.gui_gateway.status import RiskOffReading, StreamReading, merge_dead_letters
from eafix.runtime.bus.redis_streams import FIELD, group_lag

TICK_SCAN = 1000  # entries read back per price-tick stream; a symbol quieter than that is not shown


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _envelope(fields: dict[Any, Any]) -> dict[str, Any] | None:
    raw = fields.get(FIELD.encode(), fields.get(FIELD))
    try:
        envelope = json.loads(raw or b"")
    except ValueError:
        return None
    return envelope if isinstance(envelope, dict) and isinstance(envelope.get("data"), dict) else None


async def read_streams(redis: Any) -> dict[str, StreamReading]:
    names = sorted({_text(n) async for n in redis.scan_iter(match="eafix.*", _type="stream")})
    readings, dlq_sizes = {}, {}
    for name in names:
        if name.endswith(".dlq"):
            dlq_sizes[name] = int(await redis.xlen(name))
            continue
        groups = await redis.xinfo_groups(name)
        lags = [await group_lag(redis, name, g) for g in groups]  # Redis' nil lag after a restart is not 0
        readings[name] = StreamReading(max(lags, default=0), sum(int(g.get("pending") or 0) for g in groups))
    return merge_dead_letters(readings, dlq_sizes)


async def read_last_ticks(redis: Any, streams: list[str]) -> dict[str, datetime]:
    last: dict[str, datetime] = {}
    for stream in streams:
        if stream != PriceTick.TOPIC and not stream.startswith(PriceTick.TOPIC + ".p"):
            continue
        for _, fields in await redis.xrevrange(stream, "+", "-", count=TICK_SCAN):
            envelope = _envelope(fields)
            if envelope is None:
                continue
            symbol, ts = envelope["data"].get("symbol"), envelope["data"].get("ts")
            try:
                at = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
            except ValueError:
                continue
            if isinstance(symbol, str) and at.tzinfo is not None and (symbol not in last or at > last[symbol]):
                last[symbol] = at
    return last


async def read_risk_off(redis: Any) -> RiskOffReading | None:
    entries = await redis.xrevrange(SystemRiskOff.TOPIC, "+", "-", count=1)
    envelope = _envelope(entries[0][1]) if entries else None
    if envelope is None:
        return None
    data = envelope["data"]
    try:
        since = datetime.fromisoformat(str(envelope.get("ts_event")).replace("Z", "+00:00"))
    except ValueError:
        since = None
    return RiskOffReading(data.get("active") is True, data.get("reason"), data.get("source"), since)
