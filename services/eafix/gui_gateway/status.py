"""The system status an operator reads (`GET /api/v1/system/status`), assembled from readings. Pure.

Shape (eafix.platform.status.gateway_report reads `ticks`, `streams` and `risk_off`):

    {"services": {name: {"ready", "version", "checks" | "error"}},
     "ticks":    {symbol: {"age_seconds", "last"}},
     "streams":  {stream: {"lag", "pending", "dlq"}},
     "risk_off": {"active", "reason", "source", "since"},
     "problems": [...]}                    # what needs attention, as eafix status prints it"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eafix.runtime.clock import seconds_since

STALE_TICK_SECONDS = 30.0


@dataclass(frozen=True)
class StreamReading:
    lag: int = 0  # entries not yet delivered to the slowest consumer group
    pending: int = 0  # delivered, not yet acknowledged (all groups)
    dlq: int = 0  # dead letters of this stream's topic


@dataclass(frozen=True)
class RiskOffReading:
    active: bool
    reason: str | None
    source: str | None
    since: datetime | None


@dataclass
class Readings:
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_ticks: dict[str, datetime] = field(default_factory=dict)
    streams: dict[str, StreamReading] = field(default_factory=dict)
    risk_off: RiskOffReading | None = None
    bus_error: str | None = None  # Redis unreachable: ticks/streams/risk-off unknown


def system_status(readings: Readings, now: datetime, stale_after: float = STALE_TICK_SECONDS) -> dict[str, Any]:
    ticks = {s: {"age_seconds": round(seconds_since(now, at), 3), "last": at.isoformat()}
             for s, at in sorted(readings.last_ticks.items())}
    streams = {s: {"lag": r.lag, "pending": r.pending, "dlq": r.dlq} for s, r in sorted(readings.streams.items())}
    risk = readings.risk_off
    risk_off = {"active": bool(risk and risk.active), "reason": risk.reason if risk else None,
                "source": risk.source if risk else None,
                "since": risk.since.isoformat() if risk and risk.since else None}
    problems = [f"{name}: not ready ({info.get('error') or 'readyz failed'})"
                for name, info in sorted(readings.services.items()) if not info.get("ready")]
    ages = {s: seconds_since(now, at) for s, at in readings.last_ticks.items()}
    problems += [f"{s}: last tick {age:.0f} s ago" for s, age in sorted(ages.items()) if age > stale_after]
    problems += [f"{s}: {v['dlq']} dead letter(s)" for s, v in streams.items() if v["dlq"]]
    if readings.bus_error:
        problems.append(f"bus: {readings.bus_error}")
    if risk_off["active"]:
        problems.append(f"risk-off: {risk_off['reason'] or 'active'}")
    return {"services": dict(sorted(readings.services.items())), "ticks": ticks, "streams": streams,
            "risk_off": risk_off, "problems": problems}


def merge_dead_letters(streams: Mapping[str, StreamReading], dlq_sizes: Mapping[str, int]) -> dict[str, StreamReading]:
    """Attach `<topic>.dlq` sizes to their topic's stream (a topic without a live stream still shows)."""
    merged = dict(streams)
    for dlq, size in dlq_sizes.items():
        topic = dlq.removesuffix(".dlq")
        base = merged.get(topic, StreamReading())
        merged[topic] = StreamReading(base.lag, base.pending, size)
    return merged
