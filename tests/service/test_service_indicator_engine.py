"""indicator-engine built from its environment on a real Redis: ticks from the bus become closed bars and
IndicatorVectors on the bus; the one-second flush closes a bar that no later tick closes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from service.factories import tick
from service.harness import ServiceEnv, eventually, fresh_env, publish, read, redis_client, started

pytestmark = pytest.mark.anyio


@pytest.fixture
async def env(monkeypatch, redis_server, tmp_path) -> ServiceEnv:
    return await fresh_env(monkeypatch, redis_server, tmp_path)


async def test_ticks_become_bars_and_vectors_and_the_timer_closes_a_quiet_bar(env):
    app = env.app("indicator-engine", TIMEFRAMES='["M1"]', CURRENCIES='["EUR", "USD", "JPY"]')
    minute = (datetime.now(UTC) - timedelta(minutes=10)).replace(second=0, microsecond=0)
    prices = [(5, "1.10000"), (20, "1.10050"), (40, "1.09980"), (55, "1.10010"), (65, "1.10020")]
    ticks = [tick("EURUSD", bid, at=minute + timedelta(seconds=s)) for s, bid in prices]  # the last opens the next bar
    async with started(app) as client:
        sent = await publish(env, *ticks, producer="data-ingestor")
        # the second bar has no later tick: only the flush timer can close it (its minute is long over)
        await eventually(lambda: read_len(env, "eafix.price.bars", 2), "two bars")
        await eventually(lambda: read_len(env, "eafix.indicators.computed", 2), "two vectors")
        latest = (await client.get("/api/v1/indicators/EURUSD", params={"timeframe": "M1"})).json()
        assert (await client.get("/readyz")).status_code == 200
        metrics = (await client.get("/metrics")).text  # the bus's metrics are in the app's registry
    handled = 'eafix_bus_handled_total{group="indicator-engine",topic="eafix.price.tick"} 5.0'
    assert handled in metrics
    async with redis_client(env) as r:  # stopped cleanly: everything acked, the lease released
        assert [g["pending"] for g in await r.xinfo_groups("eafix.price.tick")] == [0]
        assert [k async for k in r.scan_iter(match="eafix:bus:lease:indicator-engine:*")] == []

    closed, flushed = await read(env, "eafix.price.bars")
    assert (closed.data.ts_open, closed.data.ts_close) == (minute, minute + timedelta(minutes=1))
    assert (closed.data.open, closed.data.high, closed.data.low, closed.data.close, closed.data.volume) == (
        Decimal("1.10000"), Decimal("1.10050"), Decimal("1.09980"), Decimal("1.10010"), 4)
    # caused by the tick that closed it, and correlated to that tick (a tick starts its chain)
    assert str(closed.causation_id) == sent[4]["event_id"] == str(closed.correlation_id)
    assert flushed.data.ts_close == minute + timedelta(minutes=2) and flushed.data.volume == 1
    assert flushed.causation_id is None  # the timer's doing
    vectors = await read(env, "eafix.indicators.computed")
    assert [v.data.ts for v in vectors] == [closed.data.ts_close, flushed.data.ts_close]
    assert all(v.data.values.rsi_14 is None for v in vectors)  # two bars: still warming up
    assert latest["timeframes"]["M1"]["ts"] == flushed.data.ts_close.isoformat().replace("+00:00", "Z")


async def read_len(env, topic: str, n: int) -> bool:
    return len(await read(env, topic)) >= n



async def test_the_strategies_document_adds_its_indicators_to_the_vectors(env):
    # the same document (and setting) signal-generator gets; sma(2) is warm at the second bar
    document = ('{"version": 1, "strategies": {"fast_cross": {"type": "ma_crossover", "fast": "sma(2)", '
                '"slow": "ema(3)"}, "off": {"type": "rsi_mean_reversion", "rsi": "rsi(5)", "enabled": false}}}')
    app = env.app("indicator-engine", TIMEFRAMES='["M1"]', CURRENCIES='["EUR", "USD"]', STRATEGY_CONFIG=document)
    minute = (datetime.now(UTC) - timedelta(minutes=10)).replace(second=0, microsecond=0)
    prices = [(5, "1.10000"), (55, "1.10010"), (65, "1.10020"), (125, "1.10030")]
    ticks = [tick("EURUSD", bid, at=minute + timedelta(seconds=s)) for s, bid in prices]
    async with started(app):
        await publish(env, *ticks, producer="data-ingestor")
        await eventually(lambda: read_len(env, "eafix.indicators.computed", 2), "two vectors")
    first, second = [e.data for e in await read(env, "eafix.indicators.computed")][:2]
    # closes 1.10010 and 1.10020; the disabled strategy's rsi(5) is not computed
    assert first.parameterized == {"sma(2)": None, "ema(3)": None}
    assert set(second.parameterized) == {"sma(2)", "ema(3)"}
    assert second.parameterized["sma(2)"] == pytest.approx(1.10015, abs=1e-12)


def test_bad_strategies_stop_indicator_engine_naming_the_setting(capsys, monkeypatch):
    from eafix import cli

    monkeypatch.setenv("SERVICE_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("SERVICE_STRATEGY_CONFIG",
                       '{"version": 1, "strategies": {"x": {"type": "ma_crossover", "fast": "sma(1)"}}}')
    assert cli.main(["serve", "indicator-engine"]) == 2
    err = capsys.readouterr().err
    assert err == ("eafix serve indicator-engine: SERVICE_STRATEGY_CONFIG: invalid strategies in "
                   "SERVICE_STRATEGY_CONFIG: strategies.x.fast: sma period must be >= 2 (got 'sma(1)')\n")
