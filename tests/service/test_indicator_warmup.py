"""indicator-engine's warm-up: the bars it published are read back from the bar stream (real Redis)
into a polars frame and seed the incremental indicators, so a replica that starts consuming
continues the series where they stopped; the result equals streaming the same bars."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from eafix.contracts import make_envelope
from eafix.indicator_engine.domain import IndicatorEngine
from eafix.indicator_engine.service import warm_up
from eafix.runtime.clock import WallClock
from service.factories import bar
from service.harness import ServiceEnv, eventually, fresh_env, publish, started

pytestmark = pytest.mark.anyio
START = (datetime.now(UTC) - timedelta(days=1)).replace(second=0, microsecond=0)


def history(n: int, *, timeframe: str = "M1", seed: int = 3) -> list:
    """n consecutive closed bars of a random walk."""
    rng, price, bars = random.Random(seed), Decimal("1.10000"), []
    step = {"M1": timedelta(minutes=1), "M5": timedelta(minutes=5)}[timeframe]
    for i in range(n):
        close = price + Decimal(rng.randint(-30, 30)) / 100_000
        high, low = max(price, close) + Decimal("0.00005"), min(price, close) - Decimal("0.00005")
        bars.append(bar(str(price), str(high), str(low), str(close), timeframe=timeframe, opened=START + i * step))
        price = close
    return bars


def documents(bars: list) -> list[dict]:
    return [make_envelope(b, "indicator-engine", WallClock().now()).model_dump(mode="json") for b in bars]


def test_warm_up_from_envelopes_equals_streaming_the_bars():
    bars = history(60)
    streamed = IndicatorEngine(timeframes=["M1"])
    expected = [streamed.on_bar(b) for b in bars][-1]
    assert expected is not None and expected.values.rsi_14 is not None  # warm after 60 bars
    docs = documents(bars) + documents(history(5, timeframe="M5"))  # M5 is not configured: ignored
    random.Random(1).shuffle(docs)  # the stream is read newest first, partition by partition
    warmed = IndicatorEngine(timeframes=["M1"])
    assert warm_up(warmed, docs) == 1
    assert warmed.latest("EURUSD") == {expected.timeframe: expected}
    # the series goes on from there exactly as the streamed one does
    following = history(61)[-1]
    assert warmed.on_bar(following) == streamed.on_bar(following)
    assert warm_up(IndicatorEngine(timeframes=["M1"]), []) == 0


@pytest.fixture
async def env(monkeypatch, redis_server, tmp_path) -> ServiceEnv:
    return await fresh_env(monkeypatch, redis_server, tmp_path)


async def test_a_started_service_continues_the_series_of_the_bar_stream(env):
    bars = history(40)
    await publish(env, *bars, producer="indicator-engine")
    expected = IndicatorEngine(timeframes=["M1"])
    vector = [expected.on_bar(b) for b in bars][-1]
    async with started(env.app("indicator-engine", TIMEFRAMES='["M1"]')) as client:
        async def warmed() -> dict | None:  # the warm-up runs when the bus acquires the tick stream
            response = await client.get("/api/v1/indicators/EURUSD", params={"timeframe": "M1"})
            return response.json() if response.status_code == 200 else None

        body = await eventually(warmed, "a warmed-up vector")
    latest = body["timeframes"]["M1"]
    assert latest["ts"] == vector.ts.isoformat().replace("+00:00", "Z")
    assert latest["window_version"] == vector.window_version
    assert latest["values"]["rsi_14"] == pytest.approx(vector.values.rsi_14, abs=1e-12)


async def test_no_warm_up_when_it_is_switched_off(env):
    await publish(env, *history(40), producer="indicator-engine")
    app = env.app("indicator-engine", TIMEFRAMES='["M1"]', WARMUP_HISTORY="0")
    async with started(app) as client:
        await eventually(lambda: app.state.parts.state["replica"].active(), "the tick stream acquired")
        assert (await client.get("/api/v1/indicators/EURUSD", params={"timeframe": "M1"})).status_code == 404
