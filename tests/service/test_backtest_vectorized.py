"""The batch path's whole-series indicators (backtest/vectorized.py, TA-Lib) against indicator-engine's
incremental values, bar by bar through the engine itself: equal to 1e-9 with NaN exactly where the
engine says None, for every computation the strategies can read and several parameter sets, on random
walks, on quote-grid series with flat stretches (test_indicator_parameterized's) and on the sample
data; bit-identical for the functions the batch path never replaces (BIT_IDENTICAL), and
bit-identical after `make_exact` for the others. Then the triggers on a series small enough to
follow by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from eafix.backtest.data import load, write_sample
from eafix.backtest.vectorized import BIT_IDENTICAL, candidates, series_of
from eafix.contracts import Bar
from eafix.contracts.indicator_specs import parse_reference
from eafix.indicator_engine.domain import IndicatorEngine
from eafix.instruments import DEFAULT_INSTRUMENTS
from eafix.signal_generator.config import load_strategies_text
from eafix.signal_generator.strategies import build_strategies
from service.test_indicator_parameterized import SERIES

REFERENCES = ["sma(10)", "sma(20)", "ema(34)", "wma(12)", "dema(15)", "tema(9)", "rsi(7)", "rsi(21)",
              "bbands(20,2.5).upper", "bbands(20,2.5).lower", "bbands(10,1.5).middle", "macd(5,35,5).hist",
              "ema_20", "ema_50", "sma_50", "rsi_14", "atr_14", "macd", "macd_hist", "bb_upper", "bb_lower"]
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def bars_of(high: np.ndarray, low: np.ndarray, close: np.ndarray, decimals: int) -> list[Bar]:
    out = []
    for i, (h, lo, c) in enumerate(zip(high, low, close, strict=True)):
        h, lo, c = (Decimal(f"{v:.{decimals}f}") for v in (h, lo, c))
        out.append(Bar(symbol="EURUSD", timeframe="H1", ts_open=T0 + timedelta(hours=i),
                       ts_close=T0 + timedelta(hours=i + 1), open=c, high=max(h, c), low=min(lo, c), close=c,
                       volume=0))
    return out


def engine_values(bars: list[Bar]) -> dict[str, np.ndarray]:
    """Every reference's value on every bar, as the indicator engine streams them."""
    refs = [parse_reference(r) for r in REFERENCES]
    engine = IndicatorEngine(timeframes=("H1",), indicators={r.spec for r in refs})
    columns: dict[str, list[float]] = {r: [] for r in REFERENCES}
    for bar in bars:
        vector = engine.on_bar(bar)
        assert vector is not None
        for text, ref in zip(REFERENCES, refs, strict=True):
            value = getattr(vector.values, ref.alias) if ref.alias else vector.parameterized[ref.key]
            columns[text].append(np.nan if value is None else value)
    return {k: np.array(v) for k, v in columns.items()}


def sample(tmp_path) -> list[Bar]:
    return load(write_sample(tmp_path / "s.csv", seed=5, bars=3000)).events  # type: ignore[return-value]


DATA = {**{name: (lambda make=make: bars_of(*make(), 8)) for name, make in SERIES.items() if "EURUSD" in name},
        "sample-data": None}


@pytest.mark.parametrize("name", list(DATA))
def test_series_values_equal_the_engines_streamed_values(name, tmp_path):
    bars = sample(tmp_path) if DATA[name] is None else DATA[name]()
    expected = engine_values(bars)
    series = series_of(bars)["EURUSD"]
    for reference in REFERENCES:
        got, want = series.values(reference), expected[reference]
        assert np.array_equal(np.isnan(got), np.isnan(want)), f"{reference}: NaN where the engine has None differ"
        live = ~np.isnan(want)
        assert live.sum() > len(bars) - 100, reference
        assert np.max(np.abs(got[live] - want[live])) <= 1e-9, reference
        if parse_reference(reference).spec.function in BIT_IDENTICAL:
            assert np.array_equal(got[live], want[live]), f"{reference} is not bit-identical"
    series.make_exact(*REFERENCES)
    for reference in REFERENCES:
        got, want = series.values(reference), expected[reference]
        assert np.array_equal(got, want, equal_nan=True), f"{reference} after make_exact"


def test_triggers_on_a_series_followed_by_hand():
    # closes 1.0 x4, then up, then down: sma(2) - sma(3) is 0 until bar 4, > 0 from bar 4 (first
    # non-zero sign: no cross), turns negative at bar 8 (SHORT) and positive again at bar 11 (LONG)
    closes = [1.0, 1.0, 1.0, 1.0, 1.1, 1.2, 1.3, 1.3, 1.2, 1.1, 1.1, 1.3]
    bars = bars_of(np.array(closes), np.array(closes), np.array(closes), 5)
    # sma(2) - sma(3) by hand: bar 7: 1.3 - 1.2667 > 0; bar 8: 1.25 - 1.2667 < 0; bar 9: 1.15 - 1.2 < 0;
    # bar 10: 1.1 - 1.1333 < 0; bar 11: 1.2 - 1.1667 > 0
    config = load_strategies_text("""
version: 1
defaults: {min_confidence: 0, duplicate_window_seconds: 0}
strategies:
  cross: {type: ma_crossover, fast: sma(2), slow: sma(3)}
  dip: {type: rsi_mean_reversion, rsi: rsi(2), oversold: 20, overbought: 95, on_cross: true}
""")
    found, _ = candidates(build_strategies(config), bars, "H1", DEFAULT_INSTRUMENTS)
    crosses = {row: f.candidate.direction.value for row, fs in found.items() for f in fs if f.strategy.name == "cross"}
    assert crosses == {8: "SHORT", 11: "LONG"}
    # rsi(2), Wilder: 0 on bars 2-3 (no change: in the zone from its first value, so no entry); 100 on
    # bar 4 (+0.1 after nothing) -> SHORT; bar 8 (-0.1): gains 0.021875, losses 0.05 -> 30.4; bar 9
    # (-0.1): 0.0109375 / 0.075 -> 12.7, entering oversold -> LONG; bar 10 (no change): still 12.7
    dips = {row: f.candidate.direction.value for row, fs in found.items() for f in fs if f.strategy.name == "dip"}
    assert dips == {4: "SHORT", 9: "LONG"}
