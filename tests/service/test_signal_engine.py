"""SignalEngine: the three strategy types, the gates (risk-off latch, blackout hook, neutral bias,
confidence, 300 s duplicate window) and the pairing of indicator vectors with bar closes."""

from __future__ import annotations

import hashlib
import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from eafix.contracts import (
    Bar,
    Direction,
    IndicatorValues,
    IndicatorVector,
    Signal,
    SignalSuppressed,
    SuppressionReason,
    SystemRiskOff,
)
from eafix.contracts.schemas import schema_errors
from eafix.instruments import DEFAULT_INSTRUMENTS
from eafix.runtime.clock import TestClock
from eafix.signal_generator.config import load_strategies_text
from eafix.signal_generator.domain import SignalEngine
from eafix.signal_generator.strategies import stop_pips, take_profit_pips

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
BAR = timedelta(minutes=5)
S = SuppressionReason


def config(strategies: str, defaults: str = ""):
    text = "version: 1\n" + (f"defaults: {defaults}\n" if defaults else "") + "strategies:\n" + textwrap.indent(
        textwrap.dedent(strategies).strip(), "  ") + "\n"
    return load_strategies_text(text, "test.yaml")


def vector(ts, symbol="EURUSD", timeframe="M5", **values) -> IndicatorVector:
    full = dict.fromkeys(IndicatorValues.model_fields)
    full.update(values)
    return IndicatorVector(symbol=symbol, timeframe=timeframe, ts=ts, window_version="w1", values=full,
                           currency_strength={})


def bar(ts, close, symbol="EURUSD", timeframe="M5") -> Bar:
    return Bar(symbol=symbol, timeframe=timeframe, ts_open=ts - BAR, ts_close=ts, open=close, high=close, low=close,
               close=close, volume=1)


class Driver:
    """Feeds bar + vector for consecutive bars; the clock follows the bar close unless told otherwise."""

    def __init__(self, strategies: str, defaults: str = "", **kwargs) -> None:
        self.clock = TestClock(T0)
        self.engine = SignalEngine(config(strategies, defaults), self.clock, **kwargs)
        self.ts = T0 - BAR

    def step(self, close="1.10000", *, symbol="EURUSD", clock_at=None, **values):
        self.ts += BAR
        self.clock.set(clock_at or self.ts)
        assert self.engine.on_bar(bar(self.ts, close, symbol)) == []
        return self.engine.on_indicators(vector(self.ts, symbol, **values))


def only(outputs):
    assert len(outputs) == 1, outputs
    return outputs[0]


def tag(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:8]


# --- strategies ----------------------------------------------------------------------------------


def test_ma_crossover_emits_long_then_short_with_all_fields():
    d = Driver("x: {type: ma_crossover, fast: ema_20, slow: ema_50, separation_weight: 1.0}")
    assert d.step(ema_20=1.0990, ema_50=1.1000) == []  # first reading: no previous side
    sig = only(d.step("1.10100", ema_20=1.1010, ema_50=1.1000, atr_14=0.004))
    assert isinstance(sig, Signal) and sig.direction is Direction.LONG
    assert sig.confidence == pytest.approx(0.6 + 0.001 / 0.004)  # base + |diff| / atr
    assert sig.source_indicators == {"ema_20": 1.1010, "ema_50": 1.1000, "atr_14": 0.004}
    assert sig.entry_price == Decimal("1.10100") and sig.ts == T0 + BAR
    assert (sig.sl_pips, sig.tp_pips) == (Decimal("60.0"), Decimal("120.0"))  # 0.004 x 1.5 / 0.0001; x 2
    assert sig.signal_id == f"SIG-20250106T120500Z-EURUSDM5-L-{tag('x')}"
    assert (sig.strategy, sig.timeframe.value, sig.symbol) == ("x", "M5", "EURUSD")
    assert schema_errors("Signal", sig.model_dump(mode="json")) == []
    assert d.step(ema_20=1.1020, ema_50=1.1000) == []  # still above: no new cross
    assert d.step(ema_20=1.1000, ema_50=1.1000) == []  # touching is not crossing
    short = only(d.step(ema_20=1.0990, ema_50=1.1000))
    assert short.direction is Direction.SHORT and short.confidence == pytest.approx(0.6)  # no ATR: base
    assert short.sl_pips == Decimal("20")  # fallback while ATR is unknown


def test_rsi_mean_reversion_thresholds():
    d = Driver("x: {type: rsi_mean_reversion, oversold: 30, overbought: 70, depth_gain: 2}")
    assert d.step(rsi_14=35.0) == []
    sig = only(d.step(rsi_14=25.0))
    # depth 5/30 x gain 2 = 1/3 -> 0.6 + 0.4/3
    assert sig.direction is Direction.LONG and sig.confidence == pytest.approx(0.6 + 0.4 / 3)
    assert sig.source_indicators == {"rsi_14": 25.0}
    assert d.step(rsi_14=24.0) == []  # still in the zone: on_cross fires once
    assert d.step(rsi_14=50.0) == []
    short = only(d.step(rsi_14=80.0))
    # depth 10/30 x 2 = 2/3 -> 0.6 + 0.4 x 2/3
    assert short.direction is Direction.SHORT and short.confidence == pytest.approx(0.6 + 0.8 / 3)


def test_rsi_exactly_at_the_threshold_triggers_with_base_confidence_which_passes_the_minimum():
    d = Driver("x: {type: rsi_mean_reversion, base_confidence: 0.6}", "{min_confidence: 0.6}")
    d.step(rsi_14=31.0)
    sig = only(d.step(rsi_14=30.0))
    assert isinstance(sig, Signal) and sig.confidence == 0.6


def test_rsi_level_mode_fires_on_every_bar_in_the_zone():
    d = Driver("x: {type: rsi_mean_reversion, on_cross: false}", "{duplicate_window_seconds: 0}")
    assert isinstance(only(d.step(rsi_14=20.0)), Signal)
    assert isinstance(only(d.step(rsi_14=21.0)), Signal)


def test_bollinger_breakout():
    d = Driver("x: {type: bollinger_breakout, base_confidence: 0.5, excess_weight: 1.0}")
    bands = {"bb_upper": 1.5, "bb_middle": 1.0, "bb_lower": 0.5}
    assert d.step("1.2", **bands) == []
    sig = only(d.step("1.75", **bands))
    assert sig.direction is Direction.LONG and sig.confidence == 0.75  # 0.5 + (1.75 - 1.5) / 1.0
    assert sig.source_indicators == {**bands, "close": 1.75}
    assert d.step("1.8", **bands) == []  # still beyond the same band
    short = only(d.step("0.25", **bands))
    assert short.direction is Direction.SHORT and short.confidence == 0.75


# --- gates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("minimum", "passes"), [("0.75", True), ("0.7500001", False)])
def test_low_confidence_boundary(minimum, passes):
    d = Driver(f"x: {{type: bollinger_breakout, base_confidence: 0.5, min_confidence: {minimum}}}")
    bands = {"bb_upper": 1.5, "bb_middle": 1.0, "bb_lower": 0.5}
    d.step("1.2", **bands)
    out = only(d.step("1.75", **bands))  # confidence exactly 0.75
    if passes:
        assert isinstance(out, Signal)
    else:
        assert isinstance(out, SignalSuppressed) and out.reason is S.LOW_CONFIDENCE
        assert out.direction is Direction.LONG and out.confidence == 0.75


@pytest.mark.parametrize("macd_hist", [-0.0002, 0.0])
def test_neutral_bias_is_suppressed_never_long(macd_hist):
    d = Driver("x: {type: ma_crossover, confirm: macd_hist}")
    d.step(ema_20=1.0990, ema_50=1.1000, macd_hist=0.0001)
    out = only(d.step(ema_20=1.1010, ema_50=1.1000, macd_hist=macd_hist))  # cross up, histogram disagrees
    assert isinstance(out, SignalSuppressed) and out.reason is S.NEUTRAL_BIAS
    assert out.direction is None and "does not confirm LONG" in out.detail
    assert not any(isinstance(o, Signal) for o in d.engine.recent())


def test_confirmation_that_agrees_lets_the_signal_through():
    d = Driver("x: {type: ma_crossover, confirm: macd_hist}")
    d.step(ema_20=1.0990, ema_50=1.1000, macd_hist=-0.0001)
    sig = only(d.step(ema_20=1.1010, ema_50=1.1000, macd_hist=0.0003))
    assert isinstance(sig, Signal) and sig.source_indicators["macd_hist"] == 0.0003


def test_risk_off_latches_until_an_explicit_reset():
    d = Driver("x: {type: rsi_mean_reversion, on_cross: false}", "{duplicate_window_seconds: 0}")
    d.engine.on_risk_off(SystemRiskOff(active=True, reason="healthy services below 70 %", source="compliance-monitor"))
    since = d.engine.risk_off.since
    for _ in range(3):
        out = only(d.step(rsi_14=20.0))
        assert isinstance(out, SignalSuppressed) and out.reason is S.RISK_OFF
        assert out.direction is Direction.LONG and "compliance-monitor" in out.detail
    d.engine.on_risk_off(SystemRiskOff(active=True, reason="again", source="gui-gateway"))
    assert d.engine.risk_off.since == since and d.engine.risk_off.source == "compliance-monitor"
    d.clock.advance(86400)  # time alone never releases it
    assert only(d.step(rsi_14=20.0, clock_at=d.ts + timedelta(days=1))).reason is S.RISK_OFF
    released = d.engine.reset_risk_off()
    assert released.reason == "healthy services below 70 %" and d.engine.risk_off is None
    assert isinstance(only(d.step(rsi_14=20.0)), Signal)
    assert d.engine.reset_risk_off() is None


def test_risk_off_release_event_is_an_explicit_reset():
    d = Driver("x: {type: rsi_mean_reversion, on_cross: false}")
    d.engine.on_risk_off(SystemRiskOff(active=True, reason="drawdown", source="compliance-monitor"))
    assert only(d.step(rsi_14=20.0)).reason is S.RISK_OFF
    d.engine.on_risk_off(SystemRiskOff(active=False, reason="operator reset", source="operator:alice"))
    assert isinstance(only(d.step(rsi_14=20.0)), Signal)


@pytest.mark.parametrize(("seconds", "duplicate"), [(300, True), (301, False)])
def test_duplicate_window_boundary(seconds, duplicate):
    d = Driver("x: {type: rsi_mean_reversion, on_cross: false}")
    assert isinstance(only(d.step(rsi_14=20.0, clock_at=T0)), Signal)
    out = only(d.step(rsi_14=20.0, clock_at=T0 + timedelta(seconds=seconds)))
    if duplicate:
        assert isinstance(out, SignalSuppressed) and out.reason is S.DUPLICATE_WITHIN_WINDOW
        assert out.direction is Direction.LONG
    else:
        assert isinstance(out, Signal)


def test_duplicate_window_runs_from_the_last_emitted_signal_only():
    d = Driver("x: {type: rsi_mean_reversion, on_cross: false}")
    only(d.step(rsi_14=20.0, clock_at=T0))
    assert only(d.step(rsi_14=20.0, clock_at=T0 + timedelta(seconds=200))).reason is S.DUPLICATE_WITHIN_WINDOW
    assert isinstance(only(d.step(rsi_14=20.0, clock_at=T0 + timedelta(seconds=301))), Signal)


def test_duplicate_key_is_symbol_strategy_direction():
    d = Driver("""
        a: {type: rsi_mean_reversion, on_cross: false}
        b: {type: rsi_mean_reversion, on_cross: false}
    """)
    first = d.step(rsi_14=20.0, clock_at=T0)
    assert [type(o) for o in first] == [Signal, Signal]  # two strategies: two keys
    assert first[0].signal_id != first[1].signal_id
    later = d.step(rsi_14=80.0, clock_at=T0 + timedelta(seconds=10))  # other direction
    assert [type(o) for o in later] == [Signal, Signal]
    other_symbol = d.step(rsi_14=20.0, symbol="GBPUSD", clock_at=T0 + timedelta(seconds=20))
    assert [type(o) for o in other_symbol] == [Signal, Signal]


def test_calendar_blackout_hook():
    class Gate:
        def blackout(self, symbol, ts):
            return "USD NFP 13:30Z: HIGH blackout 60/30 min" if symbol.endswith("USD") else None

    d = Driver("x: {type: rsi_mean_reversion, on_cross: false}", blackout=Gate())
    out = only(d.step(rsi_14=20.0))
    assert out.reason is S.CALENDAR_BLACKOUT and "NFP" in out.detail
    assert isinstance(only(d.step(rsi_14=20.0, symbol="EURJPY")), Signal)


def test_symbol_and_timeframe_filters():
    d = Driver("x: {type: rsi_mean_reversion, on_cross: false, symbols: [GBPUSD], timeframes: [M5]}")
    assert d.step(rsi_14=20.0, symbol="EURUSD") == []
    assert isinstance(only(d.step(rsi_14=20.0, symbol="GBPUSD")), Signal)
    engine = d.engine
    ts = d.ts + BAR
    engine.on_bar(bar(ts, "1.25", "GBPUSD", "H1"))
    assert engine.on_indicators(vector(ts, "GBPUSD", "H1", rsi_14=20.0)) == []


def test_disabled_strategy_does_nothing():
    d = Driver("x: {type: rsi_mean_reversion, on_cross: false, enabled: false}")
    assert d.step(rsi_14=20.0) == []


# --- pairing of vectors and bars -----------------------------------------------------------------


def test_vector_waits_for_its_bar_and_redelivery_is_ignored():
    engine = SignalEngine(config("x: {type: ma_crossover}"), TestClock(T0))
    engine.on_bar(bar(T0, "1.1"))
    assert engine.on_indicators(vector(T0, ema_20=1.0990, ema_50=1.1000)) == []
    t1 = T0 + BAR
    cross = vector(t1, ema_20=1.1010, ema_50=1.1000)
    assert engine.on_indicators(cross) == []  # bar not seen yet
    out = engine.on_bar(bar(t1, "1.10100"))
    assert only(out).direction is Direction.LONG and out[0].entry_price == Decimal("1.10100")
    assert engine.on_indicators(cross) == []  # redelivered: strategy state does not move twice
    assert engine.stats["stale_vectors"] == 1


def test_vectors_waiting_for_their_bars_are_all_evaluated_in_time_order():
    # a backlog after an outage: the vectors of three bars before any of those bars
    engine = SignalEngine(config("x: {type: rsi_mean_reversion, on_cross: false}"), TestClock(T0))
    for i in (0, 2, 1):  # one out of order too
        assert engine.on_indicators(vector(T0 + i * BAR, rsi_14=20.0)) == []
    assert [o.ts for o in engine.on_bar(bar(T0, "1.1"))] == [T0]  # the others wait for their bars
    assert [o.ts for o in engine.on_bar(bar(T0 + BAR, "1.1"))] == [T0 + BAR]
    assert [o.ts for o in engine.on_bar(bar(T0 + 2 * BAR, "1.1"))] == [T0 + 2 * BAR]
    assert engine.on_indicators(vector(T0 + BAR, rsi_14=20.0)) == []  # redelivered: stale now
    assert engine.stats["stale_vectors"] == 1 and engine.stats["vectors_dropped_waiting"] == 0


def test_a_vector_whose_bar_never_comes_does_not_hold_the_later_ones_back():
    engine = SignalEngine(config("x: {type: rsi_mean_reversion, on_cross: false}"), TestClock(T0))
    engine.on_bar(bar(T0, "1.1"))
    engine.on_indicators(vector(T0, rsi_14=20.0))  # evaluated
    engine.on_indicators(vector(T0 + BAR, rsi_14=20.0))  # its bar is lost
    engine.on_indicators(vector(T0 + 2 * BAR, rsi_14=80.0))
    assert [(o.ts, o.direction) for o in engine.on_bar(bar(T0 + 2 * BAR, "1.1"))] == [(T0 + 2 * BAR, Direction.SHORT)]
    assert engine.stats["vectors_dropped_waiting"] == 1


def test_replay_gives_identical_outputs():
    def run():
        d = Driver("""
            m: {type: ma_crossover}
            r: {type: rsi_mean_reversion}
        """)
        out = []
        for i, (fast, rsi) in enumerate([(1.0990, 35.0), (1.1010, 25.0), (1.0980, 75.0), (1.1020, 50.0)]):
            out += d.step(f"1.10{i}", ema_20=fast, ema_50=1.1, rsi_14=rsi, atr_14=0.001)
        return out

    first = run()
    assert first == run() and len(first) == 5


def test_recent_is_bounded_and_newest_first():
    d = Driver("x: {type: rsi_mean_reversion, on_cross: false}", "{duplicate_window_seconds: 0}", recent_limit=3)
    for _ in range(5):
        d.step(rsi_14=20.0)
    recent = d.engine.recent()
    assert len(recent) == 3 and [o.ts for o in recent] == [d.ts, d.ts - BAR, d.ts - 2 * BAR]
    assert d.engine.recent(1, symbol="EURUSD")[0].ts == d.ts and d.engine.recent(symbol="GBPUSD") == []


# --- stop and target -----------------------------------------------------------------------------


def test_stop_pips_from_atr_with_jpy_clamps_and_fallback():
    strategy = config("x: {type: ma_crossover}").strategies[0]  # atr x 1.5, [10, 200], fallback 20
    eurusd, usdjpy = DEFAULT_INSTRUMENTS["EURUSD"], DEFAULT_INSTRUMENTS["USDJPY"]
    assert stop_pips(strategy, usdjpy, 0.30) == Decimal("45.0")  # 0.45 / 0.01
    assert stop_pips(strategy, eurusd, 0.00123) == Decimal("18.5")  # 0.001845 / 0.0001 = 18.45 -> 18.5
    assert stop_pips(strategy, eurusd, 0.0001) == Decimal("10")  # 1.5 pips -> min 10
    assert stop_pips(strategy, eurusd, 0.05) == Decimal("200")  # 750 pips -> max 200
    assert stop_pips(strategy, eurusd, None) == Decimal("20")


def test_stop_pips_follow_the_instrument_table():
    strategy = config("x: {type: ma_crossover}").strategies[0]
    table = DEFAULT_INSTRUMENTS.with_overrides({"XAUUSD": {"pip_size": "0.1"}})
    assert stop_pips(strategy, DEFAULT_INSTRUMENTS["XAUUSD"], 0.8) == Decimal("120.0")  # 1.2 / 0.01
    assert stop_pips(strategy, table["XAUUSD"], 4.0) == Decimal("60.0")  # 6.0 / 0.1


def test_take_profit_ratio_rounds_up_and_null_leaves_it_to_risk_manager():
    conf = config("""
        a: {type: ma_crossover, take_profit_ratio: 1.25}
        b: {type: ma_crossover, take_profit_ratio: null}
    """)
    a, b = conf.strategies
    assert take_profit_pips(a, Decimal("15.5")) == Decimal("19.4")  # 19.375 -> 19.4
    assert take_profit_pips(b, Decimal("15.5")) is None
    d = Driver("x: {type: rsi_mean_reversion, take_profit_ratio: null}")
    d.step(rsi_14=40.0)
    assert only(d.step(rsi_14=20.0)).tp_pips is None
