"""indicator-engine domain: bar building on UTC boundaries, IndicatorVectors equal to TA-Lib batch
output, polars warm-up, currency strength, and the HTTP route."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import polars as pl
import pytest
import talib
from fastapi import FastAPI

from eafix.contracts.events import Bar, IndicatorVector
from eafix.contracts.primitives import Timeframe
from eafix.indicator_engine.app import build_router
from eafix.indicator_engine.domain import BarBuilder, IndicatorEngine, InvalidBarError, bar_start
from eafix.indicator_engine.strength import currency_strength
from eafix.runtime.clock import TestClock
from service.asgi import client_for
from service.factories import T0, tick

FIELDS = ("ema_20", "ema_50", "sma_20", "sma_50", "rsi_14", "macd", "macd_signal", "macd_hist",
          "bb_upper", "bb_middle", "bb_lower", "atr_14")


def at(hh: int, mm: int, ss: float = 0.0) -> datetime:
    return datetime(2025, 1, 6, hh, mm, tzinfo=UTC) + timedelta(seconds=ss)


def summary(bar: Bar) -> tuple:
    return (bar.timeframe.value, bar.ts_open, bar.ts_close, str(bar.open), str(bar.high), str(bar.low),
            str(bar.close), bar.volume)


# --- bar builder -----------------------------------------------------------------------------------


def test_m1_bar_closes_on_the_first_tick_at_the_boundary():
    builder = BarBuilder([Timeframe.M1])
    assert builder.on_tick(tick("EURUSD", "1.10000", at=at(12, 0, 0))) == []  # exactly on the boundary: opens 12:00
    assert builder.on_tick(tick("EURUSD", "1.10050", at=at(12, 0, 20))) == []
    assert builder.on_tick(tick("EURUSD", "1.09950", at=at(12, 0, 40))) == []
    assert builder.on_tick(tick("EURUSD", "1.10020", at=at(12, 0, 59.999999))) == []  # still inside [12:00, 12:01)
    closed = builder.on_tick(tick("EURUSD", "1.10030", at=at(12, 1, 0)))  # at the boundary: closes the bar
    assert [summary(b) for b in closed] == [
        ("M1", at(12, 0), at(12, 1), "1.10000", "1.10050", "1.09950", "1.10020", 4),
    ]
    assert builder.open_bars("EURUSD")[Timeframe.M1][:2] == (at(12, 1), at(12, 2))


def test_default_timeframes_close_on_their_utc_edges():
    builder = BarBuilder()  # M1, M5, M15, H1
    emitted = []
    times = [at(12, 0, 5), at(12, 4, 59), at(12, 5, 0), at(12, 14, 59.5), at(12, 15, 0), at(12, 59, 59), at(13, 0, 0)]
    for i, ts in enumerate(times):
        emitted += [(b.timeframe.value, b.ts_open, b.ts_close, b.volume)
                    for b in builder.on_tick(tick("EURUSD", f"1.1{i:04d}", at=ts))]
    assert emitted == [
        ("M1", at(12, 0), at(12, 1), 1),  # closed by 12:04:59
        ("M1", at(12, 4), at(12, 5), 1),  # closed by 12:05:00, with the first M5
        ("M5", at(12, 0), at(12, 5), 2),  # 12:00:05 and 12:04:59
        ("M1", at(12, 5), at(12, 6), 1),  # closed by 12:14:59.5 (ordered by close time)
        ("M5", at(12, 5), at(12, 10), 1),
        ("M1", at(12, 14), at(12, 15), 1),  # closed by 12:15:00
        ("M5", at(12, 10), at(12, 15), 1),
        ("M15", at(12, 0), at(12, 15), 4),
        ("M1", at(12, 15), at(12, 16), 1),  # closed by 12:59:59
        ("M5", at(12, 15), at(12, 20), 1),
        ("M15", at(12, 15), at(12, 30), 1),
        ("M1", at(12, 59), at(13, 0), 1),  # closed by 13:00:00: all four edges coincide
        ("M5", at(12, 55), at(13, 0), 1),
        ("M15", at(12, 45), at(13, 0), 1),
        ("H1", at(12, 0), at(13, 0), 6),
    ]


def test_a_gap_of_several_periods_creates_no_empty_bars():
    builder = BarBuilder([Timeframe.M1, Timeframe.M5])
    builder.on_tick(tick("EURUSD", "1.10000", at=at(12, 0, 10)))
    closed = builder.on_tick(tick("EURUSD", "1.10100", at=at(12, 17, 30)))  # 17 minutes later
    assert [(b.timeframe.value, b.ts_open, b.ts_close) for b in closed] == [
        ("M1", at(12, 0), at(12, 1)),
        ("M5", at(12, 0), at(12, 5)),
    ]
    assert {tf.value: v[:2] for tf, v in builder.open_bars("EURUSD").items()} == {
        "M1": (at(12, 17), at(12, 18)),
        "M5": (at(12, 15), at(12, 20)),
    }


def test_flush_closes_bars_whose_period_ended_by_clock_time():
    builder = BarBuilder([Timeframe.M1, Timeframe.M5])
    builder.on_tick(tick("EURUSD", "1.10000", at=at(12, 3, 10)))
    builder.on_tick(tick("GBPUSD", "1.10000", at=at(12, 3, 10)))
    assert builder.flush(at(12, 3, 59.999999)) == []
    closed = builder.flush(at(12, 4, 0))
    assert [(b.symbol, b.timeframe.value, b.ts_close) for b in closed] == [
        ("EURUSD", "M1", at(12, 4)), ("GBPUSD", "M1", at(12, 4))]
    assert builder.flush(at(12, 4, 30)) == []  # nothing open on M1 any more: no empty bars
    closed = builder.flush(at(12, 10, 0))
    assert [(b.symbol, b.timeframe.value, b.ts_close) for b in closed] == [
        ("EURUSD", "M5", at(12, 5)), ("GBPUSD", "M5", at(12, 5))]


def test_late_and_out_of_order_ticks_are_dropped():
    builder = BarBuilder([Timeframe.M1, Timeframe.M5])
    builder.on_tick(tick("EURUSD", "1.10000", at=at(12, 0, 30)))
    assert builder.on_tick(tick("EURUSD", "1.20000", at=at(12, 0, 29))) == []  # older than the previous tick
    assert builder.dropped_ticks == 1
    flushed = builder.flush(at(12, 1, 0))
    assert [b.timeframe.value for b in flushed] == ["M1"]
    assert str(flushed[0].high) == "1.10000"  # the dropped tick left no trace
    # a tick inside the flushed M1 period (not older than the last tick) still counts for M5 only
    builder.on_tick(tick("EURUSD", "1.10500", at=at(12, 0, 45)))
    assert Timeframe.M1 not in builder.open_bars("EURUSD")
    m5 = builder.open_bars("EURUSD")[Timeframe.M5]
    assert (str(m5[3]), m5[6]) == ("1.10500", 2)


def test_h4_and_d1_boundaries_are_utc():
    builder = BarBuilder([Timeframe.H4, Timeframe.D1])
    builder.on_tick(tick("EURUSD", "1.10000", at=datetime(2025, 1, 6, 3, 59, 59, tzinfo=UTC)))
    closed = builder.on_tick(tick("EURUSD", "1.10010", at=datetime(2025, 1, 6, 4, 0, tzinfo=UTC)))
    assert [(b.timeframe.value, b.ts_open, b.ts_close) for b in closed] == [
        ("H4", datetime(2025, 1, 6, 0, tzinfo=UTC), datetime(2025, 1, 6, 4, tzinfo=UTC))]
    closed = builder.on_tick(tick("EURUSD", "1.10020", at=datetime(2025, 1, 7, 0, 0, tzinfo=UTC)))
    assert [(b.timeframe.value, b.ts_close) for b in closed] == [
        ("H4", datetime(2025, 1, 6, 8, tzinfo=UTC)), ("D1", datetime(2025, 1, 7, tzinfo=UTC))]
    assert bar_start(datetime(2025, 1, 6, 13, 47, 12, 5, tzinfo=UTC), Timeframe.M15) == at(13, 45)


# --- indicators through the engine -----------------------------------------------------------------


def random_bars(n: int, seed: int = 1, symbol: str = "EURUSD", start: float = 1.1, step: float = 2e-4,
                timeframe: Timeframe = Timeframe.M5, decimals: int = 5) -> list[Bar]:
    rng = np.random.default_rng(seed)
    period = timedelta(minutes={"M1": 1, "M5": 5, "M15": 15, "H1": 60}[timeframe.value])
    bars, prev = [], start
    for i in range(n):
        close = max(prev + rng.normal(0.0, step), step)
        high = max(prev, close) + abs(rng.normal(0.0, step / 2))
        low = max(min(prev, close) - abs(rng.normal(0.0, step / 2)), step / 2)
        q = f"{{:.{decimals}f}}"
        o, h, lo, c = (Decimal(q.format(v)) for v in (prev, high, low, close))
        bars.append(Bar(symbol=symbol, timeframe=timeframe, ts_open=T0 + i * period, ts_close=T0 + (i + 1) * period,
                        open=o, high=max(h, o, c), low=min(lo, o, c), close=c, volume=10))
        prev = close
    return bars


def talib_reference(bars: list[Bar]) -> dict[str, np.ndarray]:
    high = np.array([float(b.high) for b in bars])
    low = np.array([float(b.low) for b in bars])
    close = np.array([float(b.close) for b in bars])
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0, 0)
    return {
        "ema_20": talib.EMA(close, 20), "ema_50": talib.EMA(close, 50),
        "sma_20": talib.SMA(close, 20), "sma_50": talib.SMA(close, 50),
        "rsi_14": talib.RSI(close, 14), "macd": macd, "macd_signal": signal, "macd_hist": hist,
        "bb_upper": upper, "bb_middle": middle, "bb_lower": lower, "atr_14": talib.ATR(high, low, close, 14),
    }


def assert_vectors_match(vectors: list[IndicatorVector], reference: dict[str, np.ndarray]) -> None:
    for name in FIELDS:
        got = np.array([np.nan if getattr(v.values, name) is None else getattr(v.values, name) for v in vectors])
        ref = reference[name]
        assert np.array_equal(np.isnan(got), np.isnan(ref)), f"{name}: warm-up (None) differs from TA-Lib NaN"
        assert np.nanmax(np.abs(got - ref)) <= 1e-9, f"{name}: differs from TA-Lib by {np.nanmax(np.abs(got - ref))}"


@pytest.mark.parametrize(("symbol", "start", "step", "decimals"), [
    ("EURUSD", 1.1, 2e-4, 5), ("USDJPY", 150.0, 0.03, 3), ("XAUUSD", 2600.0, 1.5, 2)])
def test_engine_vectors_equal_talib_batch(symbol, start, step, decimals):
    bars = random_bars(600, seed=3, symbol=symbol, start=start, step=step, decimals=decimals)
    engine = IndicatorEngine()
    vectors = [engine.on_bar(b) for b in bars]
    assert all(v is not None for v in vectors)
    assert [v.ts for v in vectors] == [b.ts_close for b in bars]  # stamped at the bar close
    assert_vectors_match(vectors, talib_reference(bars))
    assert {v.window_version for v in vectors} == {"ta1.20250106T120500"}
    # what the engine emits is a valid contract document (and survives a JSON round trip)
    for v in (vectors[0], vectors[40], vectors[-1]):
        assert IndicatorVector.model_validate_json(v.model_dump_json()) == v
    assert all(getattr(vectors[0].values, f) is None for f in FIELDS)
    assert all(getattr(vectors[-1].values, f) is not None for f in FIELDS)


def test_engine_state_is_bounded_and_values_stay_equal_after_eviction():
    bars = random_bars(3000, seed=9)
    engine = IndicatorEngine()
    vectors = [engine.on_bar(b) for b in bars]
    series = engine._series[("EURUSD", Timeframe.M5)]
    assert len(series.sma50._window) == 49 and len(series.bb._window) == 19  # O(period), not O(history)
    reference = talib_reference(bars)
    assert_vectors_match(vectors[2500:], {k: v[2500:] for k, v in reference.items()})


def test_ticks_to_bars_to_vectors():
    engine = IndicatorEngine(timeframes=[Timeframe.M1])
    rng = np.random.default_rng(4)
    price, bars, vectors = 1.1, [], []
    for second in range(0, 60 * 80, 7):  # a tick every 7 s for 80 minutes
        price += rng.normal(0.0, 5e-5)
        out = engine.on_tick(tick("EURUSD", f"{price:.5f}", at=T0 + timedelta(seconds=second)))
        bars += out.bars
        vectors += out.vectors
    assert len(bars) == len(vectors) == 79  # the 80th minute is still open
    assert [b.ts_close for b in bars] == [T0 + timedelta(minutes=i + 1) for i in range(79)]
    assert [v.ts for v in vectors] == [b.ts_close for b in bars]
    assert_vectors_match(vectors, talib_reference(bars))
    flushed = engine.flush(T0 + timedelta(minutes=80))
    assert [(b.ts_close, v.ts) for b, v in zip(flushed.bars, flushed.vectors, strict=True)] == [
        (T0 + timedelta(minutes=80), T0 + timedelta(minutes=80))]


def test_flush_uses_the_injected_clock():
    clock = TestClock(at(12, 0, 30))
    engine = IndicatorEngine(timeframes=[Timeframe.M1], clock=clock)
    engine.on_tick(tick("EURUSD", "1.10000", at=at(12, 0, 10)))
    assert engine.flush().bars == []
    clock.set(at(12, 1, 0))
    out = engine.flush()
    assert [b.ts_close for b in out.bars] == [at(12, 1)] and len(out.vectors) == 1
    with pytest.raises(ValueError, match="needs `now`"):
        IndicatorEngine().flush()


def test_redelivered_or_older_bars_are_ignored_and_bad_bars_refused():
    bars = random_bars(3)
    engine = IndicatorEngine()
    assert engine.on_bar(bars[0]) is not None
    assert engine.on_bar(bars[1]) is not None
    assert engine.on_bar(bars[1]) is None  # redelivery
    assert engine.on_bar(bars[0]) is None  # older
    assert engine.ignored_bars == 2
    bad = bars[2].model_copy(update={"high": Decimal("1.00000"), "low": Decimal("0.90000")})
    with pytest.raises(InvalidBarError):
        engine.on_bar(bad)
    with pytest.raises(InvalidBarError):
        engine.on_bar(bad.model_copy(update={"symbol": "GBPUSD"}))
    assert engine.latest("GBPUSD") == {} and engine.symbols() == ["EURUSD"]  # a refused bar seeds nothing


def test_polars_warm_up_equals_streaming_every_bar():
    bars = random_bars(600, seed=5)
    streamed = IndicatorEngine()
    expected = [streamed.on_bar(b) for b in bars]
    history = pl.DataFrame({
        "ts_close": [b.ts_close for b in bars[:400]],
        "high": [float(b.high) for b in bars[:400]],
        "low": [float(b.low) for b in bars[:400]],
        "close": [str(b.close) for b in bars[:400]],  # decimal strings are accepted too
    })
    shuffled = pl.concat([history.reverse(), history.slice(10, 1)])  # unsorted, with a duplicate row
    warmed = IndicatorEngine()
    last = warmed.warm_up("EURUSD", "M5", shuffled)
    assert last == expected[399]
    later = [warmed.on_bar(b) for b in bars[400:]]
    assert later == expected[400:]  # identical floats and window_version
    assert warmed.warm_up("EURUSD", Timeframe.M5, history) == expected[-1]  # nothing newer: no change
    naive = history.with_columns(pl.col("ts_close").dt.replace_time_zone(None))  # naive = UTC
    assert IndicatorEngine().warm_up("EURUSD", "M5", naive) == expected[399]
    assert_vectors_match(later, {k: v[400:] for k, v in talib_reference(bars).items()})


def test_warm_up_refuses_bad_frames():
    engine = IndicatorEngine()
    with pytest.raises(ValueError, match="lacks column"):
        engine.warm_up("EURUSD", "M5", pl.DataFrame({"ts_close": [T0], "close": [1.1]}))
    with pytest.raises(InvalidBarError):
        engine.warm_up("EURUSD", "M5", pl.DataFrame({"ts_close": [T0], "high": [1.0], "low": [0.9], "close": [1.1]}))
    with pytest.raises(ValueError, match="six upper-case"):
        engine.warm_up("eurusd", "M5", pl.DataFrame({"ts_close": [T0], "high": [1.2], "low": [1.0], "close": [1.1]}))
    with pytest.raises(ValueError, match="Datetime"):
        engine.warm_up("EURUSD", "M5", pl.DataFrame({"ts_close": ["x"], "high": [1.2], "low": [1.0], "close": [1.1]}))


def test_reset_starts_a_new_window_version():
    bars = random_bars(30)
    engine = IndicatorEngine()
    for b in bars[:20]:
        engine.on_bar(b)
    assert engine.latest("EURUSD")[Timeframe.M5].window_version == "ta1.20250106T120500"
    engine.reset("EURUSD")
    assert engine.latest("EURUSD") == {}
    v = engine.on_bar(bars[20])
    assert v.window_version == "ta1.20250106T134500" and v.values.ema_20 is None


# --- currency strength -----------------------------------------------------------------------------


def test_currency_strength_hand_computed_three_pairs():
    # EURUSD +1.0 %, USDJPY +0.5 %, EURJPY +1.2 %:
    # EUR = (1.0 + 1.2)/2 = 1.1; USD = (-1.0 + 0.5)/2 = -0.25; JPY = (-0.5 - 1.2)/2 = -0.85
    expected = {"EUR": 1.1, "USD": -0.25, "JPY": -0.85}
    got = currency_strength({"EURUSD": 1.0, "USDJPY": 0.5, "EURJPY": 1.2, "XAUUSD": 3.0})
    assert got.keys() == expected.keys()
    assert all(got[c] == pytest.approx(expected[c], abs=1e-12) for c in expected)

    engine = IndicatorEngine(timeframes=[Timeframe.M1])
    closes = {"EURUSD": ("1.10000", "1.11100"), "USDJPY": ("150.000", "150.750"), "EURJPY": ("165.000", "166.980"),
              "XAUUSD": ("2600.00", "2680.00")}
    vectors = {}
    for i in range(2):
        for symbol, pair in closes.items():
            c = Decimal(pair[i])
            bar = Bar(symbol=symbol, timeframe="M1", ts_open=T0 + timedelta(minutes=i),
                      ts_close=T0 + timedelta(minutes=i + 1), open=c, high=c, low=c, close=c, volume=1)
            vectors[(symbol, i)] = engine.on_bar(bar)
    assert vectors[("EURUSD", 0)].currency_strength == {}  # no previous close: no return yet
    first = vectors[("EURUSD", 1)].currency_strength  # only EURUSD has closed its second bar
    assert first == pytest.approx({"EUR": 1.0, "USD": -1.0}, abs=1e-9)
    third = vectors[("EURJPY", 1)].currency_strength
    assert third.keys() == expected.keys()
    assert third == pytest.approx(expected, abs=1e-9)
    assert vectors[("XAUUSD", 1)].currency_strength == pytest.approx(expected, abs=1e-9)  # metals do not count


def test_strength_leaves_out_pairs_older_than_one_bar():
    engine = IndicatorEngine(timeframes=[Timeframe.M1])

    def bar(symbol: str, minute: int, close: str) -> IndicatorVector:
        c = Decimal(close)
        return engine.on_bar(Bar(symbol=symbol, timeframe="M1", ts_open=T0 + timedelta(minutes=minute - 1),
                                 ts_close=T0 + timedelta(minutes=minute), open=c, high=c, low=c, close=c, volume=1))

    bar("GBPUSD", 1, "1.25000")
    bar("GBPUSD", 2, "1.26250")  # +1 % closing at minute 2
    bar("EURUSD", 2, "1.10000")
    assert bar("EURUSD", 3, "1.10000").currency_strength == pytest.approx(
        {"GBP": 1.0, "EUR": 0.0, "USD": -0.5}, abs=1e-9)  # GBPUSD's return is one bar old: still fresh
    assert bar("EURUSD", 4, "1.11100").currency_strength == pytest.approx({"EUR": 1.0, "USD": -1.0}, abs=1e-9)


# --- HTTP ------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_get_indicators_route():
    engine = IndicatorEngine()
    for b in random_bars(60, timeframe=Timeframe.M5):
        engine.on_bar(b)
    for b in random_bars(5, timeframe=Timeframe.H1):
        engine.on_bar(b)
    app = FastAPI()
    app.include_router(build_router(engine))
    async with client_for(app) as client:
        both = await client.get("/api/v1/indicators/eurusd")
        m5 = await client.get("/api/v1/indicators/EURUSD", params={"timeframe": "M5"})
        m1 = await client.get("/api/v1/indicators/EURUSD", params={"timeframe": "M1"})
        unknown = await client.get("/api/v1/indicators/GBPUSD")
        bad = await client.get("/api/v1/indicators/EURUSD", params={"timeframe": "M7"})
    assert both.status_code == 200
    body = both.json()
    assert body["symbol"] == "EURUSD" and list(body["timeframes"]) == ["M5", "H1"]
    vector = IndicatorVector.model_validate(body["timeframes"]["M5"])
    assert vector == engine.latest("EURUSD")[Timeframe.M5]
    assert vector.values.rsi_14 is not None and body["timeframes"]["H1"]["values"]["ema_20"] is None
    assert list(m5.json()["timeframes"]) == ["M5"]
    assert m1.status_code == 404 and "EURUSD M1" in m1.json()["detail"]
    assert unknown.status_code == 404
    assert bad.status_code == 422


def test_strength_configuration_is_checked():
    from eafix.indicator_engine.strength import CurrencyStrength, split_pair

    with pytest.raises(ValueError):
        CurrencyStrength(["usd", "EUR"])
    with pytest.raises(ValueError):
        CurrencyStrength(max_lag_bars=-1)
    assert split_pair("EURUSD", ["EUR", "USD"]) == ("EUR", "USD")
    assert split_pair("XAUUSD", ["EUR", "USD"]) is None
    engine = IndicatorEngine(currencies=["EUR", "USD"], timeframes=[Timeframe.M1])
    for minute, close in ((1, "1.10000"), (2, "1.11100")):
        c = Decimal(close)
        v = engine.on_bar(Bar(symbol="EURUSD", timeframe="M1", ts_open=T0 + timedelta(minutes=minute - 1),
                              ts_close=T0 + timedelta(minutes=minute), open=c, high=c, low=c, close=c, volume=1))
    assert v.currency_strength == pytest.approx({"EUR": 1.0, "USD": -1.0}, abs=1e-9)


@pytest.mark.parametrize("cut", [1, 37, 120, 450])
def test_restored_open_bars_continue_as_if_the_builder_had_never_stopped(cut):
    import random

    rng = random.Random(cut)
    ticks = [tick("EURUSD" if i % 3 else "GBPUSD", f"{1.1 + rng.uniform(-0.01, 0.01):.5f}",
                  at=T0 + timedelta(seconds=17 * i)) for i in range(600)]  # ~2.8 h: M1, M5 and H1 bars
    timeframes = ("M1", "M5", "H1")
    through = BarBuilder(timeframes)
    for t in ticks[:cut]:
        through.on_tick(t)
    expected_after = [b for t in ticks[cut:] for b in through.on_tick(t)]

    restarted = BarBuilder(timeframes)
    used = restarted.restore(ticks[:cut])  # the ticks handled before the restart
    after = [b for t in ticks[cut:] for b in restarted.on_tick(t)]
    assert after == expected_after and after
    # from the start of the newest tick's H1 bar per symbol, not the whole history
    starts = {s: bar_start(max(t.ts for t in ticks[:cut] if t.symbol == s), "H1") for s in ("EURUSD", "GBPUSD")
              if any(t.symbol == s for t in ticks[:cut])}
    assert used == sum(1 for t in ticks[:cut] if t.ts >= starts[t.symbol])
    fresh = BarBuilder(timeframes)  # without the restore the first bars after the cut come out otherwise
    assert [b for t in ticks[cut:] for b in fresh.on_tick(t)] != expected_after
