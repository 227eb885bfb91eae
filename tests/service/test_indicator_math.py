"""Streaming indicators (eafix.indicator_engine.indicators) against TA-Lib's batch functions.

TA-Lib is the independent reference: every output of the incremental classes, fed one value at a
time, must equal `talib.<FUNC>` on the whole series to 1e-9, with None exactly where TA-Lib has
NaN (the warm-up), on random walks at forex, JPY and gold price levels, and long after each
indicator's bounded window started evicting values.
"""

from __future__ import annotations

import numpy as np
import pytest
import talib

from eafix.indicator_engine.indicators import ATR, EMA, MACD, RSI, SMA, Bollinger

TOL = 1e-9
LEVELS = {  # start price, typical bar move
    "EURUSD": (1.1, 2e-4),
    "USDJPY": (150.0, 0.03),
    "XAUUSD": (2600.0, 1.5),
}


def random_walk(seed: int, n: int, start: float, step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """high, low, close of a random walk with consistent bars (low <= close <= high)."""
    rng = np.random.default_rng(seed)
    close = start + np.cumsum(rng.normal(0.0, step, n))
    opens = np.concatenate(([start], close[:-1]))
    high = np.maximum(opens, close) + np.abs(rng.normal(0.0, step / 2, n))
    low = np.minimum(opens, close) - np.abs(rng.normal(0.0, step / 2, n))
    return high, low, close


def as_array(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def assert_matches(ours: list[float | None], reference: np.ndarray, name: str) -> None:
    got = as_array(ours)
    assert got.shape == reference.shape
    warm = np.isnan(reference)
    assert np.array_equal(np.isnan(got), warm), f"{name}: None/NaN positions differ from TA-Lib"
    assert (~warm).sum() > 0, f"{name}: TA-Lib produced no values"
    diff = np.abs(got[~warm] - reference[~warm])
    assert diff.max() <= TOL, f"{name}: max |ours - talib| = {diff.max():.3g} at index {np.argmax(diff)}"


def cases() -> list[tuple[str, int]]:
    return [(symbol, seed) for symbol in LEVELS for seed in (1, 2)]


@pytest.fixture(params=cases(), ids=lambda c: f"{c[0]}-seed{c[1]}")
def series(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    symbol, seed = request.param
    start, step = LEVELS[symbol]
    return random_walk(seed, 600, start, step)


@pytest.mark.parametrize("period", [20, 50])
def test_sma_equals_talib(series, period):
    _, _, close = series
    sma = SMA(period)
    assert_matches([sma.update(float(x)) for x in close], talib.SMA(close, period), f"SMA({period})")
    assert len(sma._window) == period - 1  # bounded: only the values still needed are kept


@pytest.mark.parametrize("period", [20, 50])
def test_ema_equals_talib(series, period):
    _, _, close = series
    ema = EMA(period)
    assert_matches([ema.update(float(x)) for x in close], talib.EMA(close, period), f"EMA({period})")


def test_rsi_equals_talib(series):
    _, _, close = series
    rsi = RSI(14)
    out = [rsi.update(float(x)) for x in close]
    assert_matches(out, talib.RSI(close, 14), "RSI(14)")
    assert all(0.0 <= v <= 100.0 for v in out if v is not None)


def test_atr_equals_talib(series):
    high, low, close = series
    atr = ATR(14)
    out = [atr.update(float(h), float(lo), float(c)) for h, lo, c in zip(high, low, close, strict=True)]
    assert_matches(out, talib.ATR(high, low, close, 14), "ATR(14)")


def test_macd_equals_talib(series):
    _, _, close = series
    macd = MACD(12, 26, 9)
    out = [macd.update(float(x)) for x in close]
    line, signal, hist = talib.MACD(close, 12, 26, 9)
    for i, (name, reference) in enumerate((("macd", line), ("signal", signal), ("hist", hist))):
        assert_matches([None if v is None else v[i] for v in out], reference, f"MACD {name}")


def test_bollinger_equals_talib(series):
    _, _, close = series
    bb = Bollinger(20, 2.0)
    out = [bb.update(float(x)) for x in close]
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0, 0)
    for i, (name, reference) in enumerate((("upper", upper), ("middle", middle), ("lower", lower))):
        assert_matches([None if v is None else v[i] for v in out], reference, f"BBANDS {name}")
    assert len(bb._window) == 19


def test_values_stay_equal_long_after_the_windows_evict():
    # 5,000 bars: every bounded window has been refilled ~100 times; compare the last 1,000 only
    high, low, close = random_walk(7, 5000, 1.25, 3e-4)
    sma, ema, rsi, atr, macd, bb = SMA(50), EMA(50), RSI(14), ATR(14), MACD(), Bollinger()
    rows = []
    for h, lo, c in zip(high, low, close, strict=True):
        m = macd.update(float(c)) or (None, None, None)
        b = bb.update(float(c)) or (None, None, None)
        rows.append((sma.update(float(c)), ema.update(float(c)), rsi.update(float(c)),
                     atr.update(float(h), float(lo), float(c)), m[0], m[1], b[0], b[2]))
    references = (talib.SMA(close, 50), talib.EMA(close, 50), talib.RSI(close, 14), talib.ATR(high, low, close, 14),
                  *talib.MACD(close, 12, 26, 9)[:2], talib.BBANDS(close, 20, 2.0, 2.0, 0)[0],
                  talib.BBANDS(close, 20, 2.0, 2.0, 0)[2])
    tail = slice(4000, None)
    for i, reference in enumerate(references):
        assert_matches([r[i] for r in rows][tail], reference[tail], f"column {i}")
    assert len(sma._window) == 49 and len(bb._window) == 19


def test_first_values_appear_at_talib_lookbacks():
    # where TA-Lib's lookback says the first value is: EMA/SMA n-1, RSI/ATR n, MACD slow+signal-2, BB n-1
    _, _, close = random_walk(3, 100, 1.1, 1e-4)
    first = {}
    indicators = {"ema20": EMA(20), "sma50": SMA(50), "rsi14": RSI(14), "macd": MACD(12, 26, 9), "bb20": Bollinger(20)}
    for index, x in enumerate(close):
        for name, ind in indicators.items():
            if ind.update(float(x)) is not None:
                first.setdefault(name, index)
    assert first == {"ema20": 19, "sma50": 49, "rsi14": 14, "macd": 33, "bb20": 19}


def test_macd_fast_line_is_seeded_like_talib_not_like_a_plain_ema():
    # TA-Lib seeds MACD's fast EMA at the slow EMA's seed bar (SMA of x[14..25]); a plain
    # EMA(12) - EMA(26) differs. The streaming MACD must follow TA-Lib, not the plain formula.
    _, _, close = random_walk(11, 300, 1.1, 5e-4)
    fast, slow = EMA(12), EMA(26)
    naive = []
    for x in close:
        f, s = fast.update(float(x)), slow.update(float(x))
        naive.append(None if f is None or s is None else f - s)
    line = talib.MACD(close, 12, 26, 9)[0]
    naive_arr = as_array(naive)
    assert np.nanmax(np.abs(naive_arr[33:] - line[33:])) > 1e-7  # the naive form would fail the check
    macd = MACD(12, 26, 9)
    assert_matches([None if v is None else v[0] for v in (macd.update(float(x)) for x in close)], line, "MACD line")


def test_flat_series_matches_talib_edge_values():
    close = np.full(80, 1.2345)
    rsi, bb, atr = RSI(14), Bollinger(20), ATR(14)
    rsi_out = [rsi.update(float(x)) for x in close]
    bb_out = [bb.update(float(x)) for x in close]
    atr_out = [atr.update(float(x), float(x), float(x)) for x in close]
    assert_matches(rsi_out, talib.RSI(close, 14), "RSI flat")  # TA-Lib: 0 when there is no move at all
    assert rsi_out[-1] == 0.0
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0, 0)
    assert_matches([None if v is None else v[0] for v in bb_out], upper, "BB upper flat")
    assert bb_out[-1][0] == bb_out[-1][2] == pytest.approx(1.2345, abs=1e-12)
    assert_matches(atr_out, talib.ATR(close, close, close, 14), "ATR flat")


def test_monotonic_rise_gives_rsi_100():
    close = 1.1 + np.arange(60) * 1e-4
    rsi = RSI(14)
    out = [rsi.update(float(x)) for x in close]
    assert_matches(out, talib.RSI(close, 14), "RSI rising")
    assert out[-1] == 100.0


def test_tiny_variance_is_not_zeroed():
    # a stdev of ~1e-8 around 1.1 (well below a pip): TA-Lib 0.8 keeps it; so must we
    rng = np.random.default_rng(5)
    close = 1.1 + np.cumsum(rng.normal(0.0, 1e-8, 300))
    bb = Bollinger(20)
    out = [bb.update(float(x)) for x in close]
    upper = talib.BBANDS(close, 20, 2.0, 2.0, 0)[0]
    assert_matches([None if v is None else v[0] for v in out], upper, "BB upper tiny")
    assert out[-1][0] > out[-1][1]


@pytest.mark.parametrize("make", [lambda: SMA(0), lambda: EMA(-1), lambda: RSI(1), lambda: ATR(1),
                                  lambda: MACD(26, 12, 9), lambda: Bollinger(1), lambda: SMA(2.5)])
def test_bad_periods_are_refused(make):
    with pytest.raises(ValueError):
        make()
