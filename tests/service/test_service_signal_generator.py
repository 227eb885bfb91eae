"""signal-generator built from its environment on a real Redis: bars + vectors -> signals; the risk-off
latch is restored at start from the last `eafix.system.risk_off` message and followed by every replica;
an operator reset releases every replica."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from eafix import cli
from eafix.contracts import Bar, IndicatorVector, SystemRiskOff
from eafix.contracts.events import IndicatorValues
from service.harness import ServiceEnv, eventually, fresh_env, publish, read, started

pytestmark = pytest.mark.anyio

STRATEGIES = """\
version: 1
defaults: {min_confidence: 0.5, duplicate_window_seconds: 0}
strategies:
  rsi_fade:
    type: rsi_mean_reversion
    oversold: 30
    overbought: 70
    on_cross: false
    timeframes: [M5]
"""


@pytest.fixture
async def env(monkeypatch, redis_server, tmp_path) -> ServiceEnv:
    return await fresh_env(monkeypatch, redis_server, tmp_path)


def bar_and_vector(close_ts: datetime, close: str, rsi: float) -> tuple[Bar, IndicatorVector]:
    price = Decimal(close)
    bar = Bar(symbol="EURUSD", timeframe="M5", ts_open=close_ts - timedelta(minutes=5), ts_close=close_ts,
              open=price, high=price, low=price, close=price, volume=12)
    values = IndicatorValues(ema_20=None, ema_50=None, sma_20=None, sma_50=None, rsi_14=rsi, macd=None,
                             macd_signal=None, macd_hist=None, bb_upper=None, bb_middle=None, bb_lower=None,
                             atr_14=None)
    vector = IndicatorVector(symbol="EURUSD", timeframe="M5", ts=close_ts, window_version="ta1.20260105T000500",
                             values=values, currency_strength={})
    return bar, vector


async def latch(client) -> dict:
    return (await client.get("/api/v1/risk-off")).json()


async def test_bars_and_vectors_become_signals_caused_by_the_second_to_arrive(env, tmp_path):
    strategies = tmp_path / "strategies.yaml"
    strategies.write_text(STRATEGIES)
    app = env.app("signal-generator", STRATEGIES_FILE=str(strategies))
    close_ts = (datetime.now(UTC) - timedelta(hours=1)).replace(minute=5, second=0, microsecond=0)
    bar, vector = bar_and_vector(close_ts, "1.08500", rsi=21.5)
    async with started(app) as client:
        assert (await client.get("/readyz")).status_code == 200
        (bar_env,) = await publish(env, bar, producer="indicator-engine")
        (vector_env,) = await publish(env, vector, producer="indicator-engine")
        (signal,) = await eventually(lambda: read(env, "eafix.signals.generated"), "a signal")
        recent = (await client.get("/api/v1/signals/recent")).json()
    s = signal.data
    assert (s.symbol, s.direction.value, s.strategy, s.entry_price, s.ts) == ("EURUSD", "LONG", "rsi_fade",
                                                                              Decimal("1.08500"), close_ts)
    # whichever of the pair arrives second triggers the evaluation: both are in the chain
    assert str(signal.causation_id) in (bar_env["event_id"], vector_env["event_id"])
    assert signal.producer == "signal-generator"
    assert recent["count"] == 1 and recent["items"][0]["data"]["signal_id"] == s.signal_id


async def test_the_latch_is_restored_at_start_and_followed_while_running(env):
    await publish(env, SystemRiskOff(active=True, reason="drawdown breach", source="compliance-monitor"),
                  SystemRiskOff(active=True, reason="VaR limit", source="reporter"))
    app = env.app("signal-generator")
    async with started(app) as client:
        state = await latch(client)
        assert (state["active"], state["reason"], state["source"]) == (True, "VaR limit", "reporter")
        await publish(env, SystemRiskOff(active=False, reason="resolved", source="gui-gateway"))
        await eventually(lambda: latch_is(client, False), "the release to be applied")
    fresh = env.app("signal-generator")
    async with started(fresh) as client:
        assert (await latch(client))["active"] is False  # the newest message says released


async def latch_is(client, active: bool) -> bool:
    return (await latch(client))["active"] is active


async def test_an_operator_reset_on_one_replica_releases_every_replica(env):
    a = env.app("signal-generator", consumer="pod-a")
    b = env.app("signal-generator", consumer="pod-b")
    async with started(a) as client_a, started(b) as client_b:
        await publish(env, SystemRiskOff(active=True, reason="kill switch", source="gui-gateway"))
        await eventually(lambda: latch_is(client_a, True), "replica a to latch")
        await eventually(lambda: latch_is(client_b, True), "replica b to latch")  # each replica gets it
        response = await client_a.post("/api/v1/risk-off/reset", json={"operator": "alice", "reason": "checked"})
        assert response.json()["released"] is True
        await eventually(lambda: latch_is(client_b, False), "replica b to release")
    messages = [e.data for e in await read(env, SystemRiskOff.TOPIC)]
    release = messages[-1]
    assert (release.active, release.source, release.reason) == (False, "operator", "operator reset by alice: checked")


def test_bad_strategies_file_stops_serve_with_one_line(capsys, monkeypatch, tmp_path):
    bad = tmp_path / "strategies.yaml"
    bad.write_text("version: 1\nstrategies:\n  fade:\n    type: rsi_mean_reversion\n    oversold: 80\n"
                   "    overbought: 20\n    window: 3\n")
    monkeypatch.setenv("SERVICE_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("SERVICE_STRATEGIES_FILE", str(bad))
    assert cli.main(["serve", "signal-generator"]) == 2
    err = capsys.readouterr().err
    assert err == (f"eafix serve signal-generator: SERVICE_STRATEGIES_FILE: invalid strategies in {bad}: "
                   "strategies.fade.overbought: must be greater than oversold (80.0) (got 20); "
                   "strategies.fade.window: unknown key\n")


def test_strategies_from_the_chart_value_win_over_the_file(monkeypatch, tmp_path):
    import json

    import yaml

    from eafix import services
    from eafix.runtime.service import settings_class
    from eafix.runtime.settings import load_settings
    from eafix.signal_generator.service import load_strategies

    document = yaml.safe_load(STRATEGIES)  # what values `signal-generator.config.strategy_config` holds
    monkeypatch.setenv("SERVICE_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("SERVICE_STRATEGY_CONFIG", json.dumps(document))  # the chart renders maps as JSON
    monkeypatch.setenv("SERVICE_STRATEGIES_FILE", str(tmp_path / "not-read.yaml"))
    spec = services.BY_NAME["signal-generator"]
    config = load_strategies(load_settings(spec, settings_class(spec)))
    assert [s.name for s in config.strategies] == ["rsi_fade"]


def test_bad_strategies_value_stops_serve_with_one_line(capsys, monkeypatch):
    monkeypatch.setenv("SERVICE_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("SERVICE_STRATEGY_CONFIG", '{"version": 1, "strategies": {"x": {"type": "nope"}}}')
    assert cli.main(["serve", "signal-generator"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eafix serve signal-generator: SERVICE_STRATEGY_CONFIG: invalid strategies in "
                          "SERVICE_STRATEGY_CONFIG: ")
    assert err.count("\n") == 1


async def test_a_bar_inside_a_published_blackout_window_is_suppressed(env, tmp_path):
    from eafix.contracts import CalendarSignal

    strategies = tmp_path / "strategies.yaml"
    strategies.write_text(STRATEGIES)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    event = now + timedelta(minutes=40)
    window = {"cal8": f"CAL8-{event:%Y%m%d-%H%M}-USD-001", "title": "CPI m/m", "currency": "USD", "impact": "HIGH",
              "scheduled_at": event, "start": event - timedelta(minutes=60), "end": event + timedelta(minutes=30)}
    gate = CalendarSignal.model_validate({
        "symbol": "EURUSD", "generated_at": now, "valid_until": now + timedelta(minutes=5), "state": "PRE_EVENT_BLOCK",
        "allow_new_trades": False, "reason": "before CPI", "event": None, "minutes_to_event": 40.0, "proximity": "SH",
        "proximity_event": window["cal8"], "priority_weight": 9, "windows": [window]})
    await publish(env, gate, producer="calendar-ingestor")  # before the start: restored from the stream
    inside = bar_and_vector(now - timedelta(minutes=15), "1.08500", rsi=21.5)  # 45 min before: in the window
    outside = bar_and_vector(now - timedelta(minutes=25), "1.08500", rsi=21.0)  # 65 min before: clear
    async with started(env.app("signal-generator", STRATEGIES_FILE=str(strategies))):
        # one bar at a time: bars and vectors are two streams, and a newer vector replaces one waiting
        await publish(env, *outside, producer="indicator-engine")
        signals = await eventually(lambda: read(env, "eafix.signals.generated"), "the signal")
        await publish(env, *inside, producer="indicator-engine")
        suppressed = await eventually(lambda: _suppressed(env), "the suppression")
    assert [(s.reason, s.ts) for s in suppressed] == [("CALENDAR_BLACKOUT", inside[0].ts_close)]
    assert "before HIGH USD CPI m/m" in suppressed[0].detail
    assert [s.data.ts for s in signals] == [outside[0].ts_close]


async def _suppressed(env: ServiceEnv) -> list:
    return [e.data for e in await read(env, "eafix.signals.suppressed")]
