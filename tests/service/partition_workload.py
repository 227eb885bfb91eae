"""A multi-symbol workload for signal-generator on partitioned streams, and its in-process reference:
shared by tests/service/test_partitioned_replicas.py and bench/scaleout.py.

Bars: a seeded random walk of M1 bars per symbol (in the past: the services take history), through
indicator-engine's engine in-process for the IndicatorVectors, published as indicator-engine
publishes them (each bar, then its vector, keyed by symbol). Reference: the same bars and vectors in
the same order through an in-process SignalEngine; a Signal's id is derived from its bar time,
symbol, direction and strategy, so the services' signals compare id for id."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from eafix.contracts import Bar, IndicatorVector, Signal, SignalSuppressed
from eafix.contracts.messaging import Messenger
from eafix.contracts.strategies import load_strategies_text
from eafix.indicator_engine.domain import IndicatorEngine
from eafix.runtime.bus import BusConfig, RedisStreamsBus
from eafix.runtime.bus.base import symbol_partitions
from eafix.runtime.clock import TestClock, WallClock
from eafix.signal_generator.domain import SignalEngine

# eight majors; crc32 puts them in every partition of 2 and of 4 (a test checks)
SYMBOLS = ("EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCHF", "NZDUSD", "USDCAD", "EURGBP")
Item = tuple[Bar, IndicatorVector | None]


def bars_and_vectors(symbols: Iterable[str], count: int, start: datetime, seed: int) -> list[Item]:
    """`count` M1 bars per symbol, in time order (all symbols' bar k before any bar k+1), each with the
    vector indicator-engine computes for it (None while the indicators warm up)."""
    rng = random.Random(seed)
    symbols = list(symbols)
    engine = IndicatorEngine(timeframes=["M1"])
    price = {s: 100.0 if s.endswith("JPY") else 1.2 for s in symbols}
    items: list[Item] = []
    for k in range(count):
        opened = start + timedelta(minutes=k)
        for symbol in symbols:
            pip = 0.01 if symbol.endswith("JPY") else 0.0001
            digits = 3 if symbol.endswith("JPY") else 5
            path = [price[symbol]]
            for _ in range(4):
                path.append(path[-1] + rng.gauss(0, 3) * pip)
            price[symbol] = path[-1]
            q = [Decimal(f"{p:.{digits}f}") for p in path]
            bar = Bar(symbol=symbol, timeframe="M1", ts_open=opened, ts_close=opened + timedelta(minutes=1),
                      open=q[0], high=max(q), low=min(q), close=q[-1], volume=4)
            items.append((bar, engine.on_bar(bar)))
    return items


def reference(items: list[Item], strategies: str) -> tuple[dict[str, Signal], list[SignalSuppressed]]:
    """What one signal-generator makes of the items: its signals by id, and its suppressions."""
    clock = TestClock(items[0][0].ts_close)
    engine = SignalEngine(load_strategies_text(strategies), clock)
    signals: dict[str, Signal] = {}
    suppressed: list[SignalSuppressed] = []
    for bar, vector in items:
        clock.set(bar.ts_close + timedelta(seconds=1))  # time passes between bars, as it does for the service
        outputs = engine.on_bar(bar) + (engine.on_indicators(vector) if vector is not None else [])
        for out in outputs:
            if isinstance(out, Signal):
                assert out.signal_id not in signals, out
                signals[out.signal_id] = out
            else:
                suppressed.append(out)
    return signals, suppressed


async def publish(redis_url: str, password: str | None, items: list[Item], partitions: int, chunk: int = 500,
                  before_chunk: Callable[[], Awaitable[None]] | None = None) -> None:
    """Publish the items as indicator-engine would (bar then vector, keyed by symbol) on `partitions`;
    `before_chunk` may hold each chunk back (a feeder that keeps the backlog small)."""
    bus = RedisStreamsBus.from_url(redis_url, password=password, consumer="feed",
                                   config=BusConfig(partitions=symbol_partitions(partitions)))
    messenger = Messenger(bus, "indicator-engine", WallClock())
    try:
        events = [e for bar, vector in items for e in ((bar, vector) if vector is not None else (bar,))]
        for start in range(0, len(events), chunk):
            if before_chunk is not None:
                await before_chunk()
            await messenger.publish(events[start:start + chunk])
    finally:
        await bus.stop()
