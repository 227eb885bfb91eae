"""Parameterized indicators (indicator-engine's parameterized.py / oscillators.py) against TA-Lib.

Every function of eafix.contracts.indicator_specs, for several parameter sets each, fed one bar at a
time through the engine's `Computation`, must equal the TA-Lib batch function on the whole series to
1e-9, with None exactly where TA-Lib has NaN. Two kinds of series of 3,000 bars: random walks at
three price levels, and "real-looking" ones: volatility clusters, quotes rounded to the instrument's
5 (3 for JPY) decimals, so highs and lows repeat, some bars are flat and some windows have no range
(the 0-denominator branches of WILLR, CCI, STOCH and ROC).
"""

from __future__ import annotations

import numpy as np
import pytest
import talib

from eafix.contracts.indicator_specs import parse_reference
from eafix.indicator_engine.domain import IndicatorEngine
from eafix.indicator_engine.parameterized import Computation

TOL = 1e-9
N = 3000


def random_walk(seed: int, start: float, step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = start + np.cumsum(rng.normal(0.0, step, N))
    opens = np.concatenate(([start], close[:-1]))
    high = np.maximum(opens, close) + np.abs(rng.normal(0.0, step / 2, N))
    low = np.minimum(opens, close) - np.abs(rng.normal(0.0, step / 2, N))
    return high, low, close


def quoted(seed: int, start: float, step: float, decimals: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clustered volatility, prices on the quote grid, a quiet stretch with identical bars."""
    rng = np.random.default_rng(seed)
    vol = np.exp(np.convolve(rng.normal(0.0, 0.6, N), np.ones(50) / 50, mode="same") * 4) * step
    close = np.round(start + np.cumsum(rng.standard_t(4, N) * vol), decimals)
    close[1000:1040] = close[999]  # the market stands still: ranges and changes are 0
    opens = np.concatenate(([close[0]], close[:-1]))
    wick = np.round(np.abs(rng.normal(0.0, 1.0, (2, N))) * vol, decimals)
    wick[:, 1000:1040] = 0.0
    high = np.round(np.maximum(opens, close) + wick[0], decimals)
    low = np.round(np.minimum(opens, close) - wick[1], decimals)
    return high, low, close


SERIES = {
    "walk-EURUSD": lambda: random_walk(1, 1.1, 2e-4),
    "walk-USDJPY": lambda: random_walk(2, 150.0, 0.03),
    "walk-XAUUSD": lambda: random_walk(3, 2600.0, 1.5),
    "quoted-EURUSD": lambda: quoted(4, 1.1, 2e-4, 5),
    "quoted-USDJPY": lambda: quoted(5, 150.0, 0.03, 3),
}


def _talib(function: str, params: tuple, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> dict[str, np.ndarray]:
    """TA-Lib's outputs by output name ("" for a single output)."""
    if function == "bbands":
        period, k = params
        upper, middle, lower = talib.BBANDS(close, period, k, k, 0)
        return {"upper": upper, "middle": middle, "lower": lower}
    if function == "macd":
        line, signal, hist = talib.MACD(close, *params)
        return {"macd": line, "signal": signal, "hist": hist}
    if function == "stoch":
        fastk, slowk, slowd = params
        k, d = talib.STOCH(high, low, close, fastk, slowk, 0, slowd, 0)
        return {"k": k, "d": d}
    func = getattr(talib, function.upper())
    if function in ("atr", "willr", "cci", "adx"):
        return {"": func(high, low, close, *params)}
    return {"": func(close, *params)}


CASES = [
    "sma(2)", "sma(10)", "sma(200)",
    "ema(2)", "ema(34)", "ema(200)",
    "wma(2)", "wma(10)", "wma(50)",
    "dema(5)", "dema(21)", "tema(5)", "tema(30)",
    "rsi(2)", "rsi(7)", "rsi(21)",
    "mom(1)", "mom(10)", "roc(1)", "roc(12)",
    "atr(2)", "atr(7)", "atr(30)",
    "willr(2)", "willr(14)", "willr(50)",
    "cci(2)", "cci(14)", "cci(40)",
    "bbands(5,1).upper", "bbands(20,2.5).upper", "bbands(50,1.75).upper",
    "macd(5,35,5).macd", "macd(3,10,16).macd", "macd(12,26,9).macd",
    "stoch(5,3,3).k", "stoch(14,1,1).k", "stoch(21,5,8).k",
    "kama(2)", "kama(10)", "kama(30)",
    "adx(2)", "adx(14)", "adx(30)",
]


@pytest.mark.parametrize("series_name", list(SERIES))
@pytest.mark.parametrize("reference", CASES)
def test_each_function_equals_talib(reference: str, series_name: str) -> None:
    high, low, close = SERIES[series_name]()
    spec = parse_reference(reference).spec
    computation = Computation(spec)
    got: dict[str, list[float | None]] = {key: [] for key in computation.keys}
    for h, lo, c in zip(high.tolist(), low.tolist(), close.tolist(), strict=True):
        out: dict[str, float | None] = {}
        computation.update(h, lo, c, out)
        for key in computation.keys:
            got[key].append(out[key])
    expected = _talib(spec.function, spec.parameters, high, low, close)
    for output, values in expected.items():
        key = f"{spec.key}.{output}" if output else spec.key
        ours = np.array([np.nan if v is None else v for v in got[key]])
        warm = np.isnan(values)
        assert np.array_equal(np.isnan(ours), warm), f"{key}: warm-up differs from TA-Lib"
        assert (~warm).sum() > N // 2
        diff = np.abs(ours[~warm] - values[~warm])
        assert diff.max() <= TOL, f"{key}: max |ours - talib| {diff.max():.3g} at {np.argmax(diff)}"


def test_the_quoted_series_reach_the_flat_branches() -> None:
    # the 0-denominator cases are really exercised: TA-Lib itself returns 0 there
    high, low, close = SERIES["quoted-EURUSD"]()
    assert (talib.WILLR(high, low, close, 14)[1020:1040] == 0).all()
    assert (talib.CCI(high, low, close, 14)[1020:1040] == 0).all()
    assert (talib.MOM(close, 10)[1020:1040] == 0).all()


def test_the_engine_carries_the_union_in_parameterized_and_leaves_the_fixed_set_alone() -> None:
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from eafix.contracts import Bar

    specs = [parse_reference(r).spec for r in ("sma(10)", "sma(20)", "bbands(20,2.5).upper", "stoch(5,3,3).d")]
    engine = IndicatorEngine(timeframes=("H1",), indicators=specs)
    plain = IndicatorEngine(timeframes=("H1",))
    high, low, close = SERIES["quoted-EURUSD"]()
    t0 = datetime(2025, 1, 6, tzinfo=UTC)
    closes = []
    for i in range(60):
        bar = Bar(symbol="EURUSD", timeframe="H1", ts_open=t0 + timedelta(hours=i),
                  ts_close=t0 + timedelta(hours=i + 1),
                  open=Decimal(str(low[i])), high=Decimal(str(high[i])), low=Decimal(str(low[i])),
                  close=Decimal(str(close[i])), volume=1)
        vector, other = engine.on_bar(bar), plain.on_bar(bar)
        assert vector is not None and other is not None
        closes.append(float(bar.close))
        assert vector.values == other.values  # the fixed set does not change
        assert other.parameterized is None and "parameterized" not in other.model_dump(mode="json")
    # sma(20) is the fixed sma_20, not repeated; bbands has three outputs, stoch two
    assert set(vector.parameterized) == {"sma(10)", "bbands(20,2.5).upper", "bbands(20,2.5).middle",
                                         "bbands(20,2.5).lower", "stoch(5,3,3).k", "stoch(5,3,3).d"}
    assert vector.parameterized["sma(10)"] == pytest.approx(sum(closes[-10:]) / 10, abs=1e-12)
    doc = vector.model_dump(mode="json")
    assert type(vector).model_validate(doc) == vector
