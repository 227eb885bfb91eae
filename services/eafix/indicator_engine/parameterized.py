"""The parameterized indicators of one series: specs (eafix.contracts.indicator_specs) -> incremental
implementations, updated per bar into the `parameterized` map of IndicatorVector 1.1.

The fixed set (the IndicatorValues fields) is computed by `domain._Series` itself; `computations()`
leaves out a spec of the fixed set, so `sma(20)` is never computed twice: a consumer reads it from
`sma_20` (eafix.contracts.indicator_specs.IndicatorRef.alias says where).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from eafix.contracts.indicator_specs import FIXED_SPECS, IndicatorSpec
from eafix.indicator_engine.indicators import ATR, EMA, MACD, RSI, SMA, Bollinger
from eafix.indicator_engine.oscillators import CCI, DEMA, MOM, ROC, STOCH, TEMA, WILLR, WMA
from eafix.indicator_engine.trend import ADX, KAMA

__all__ = ["Computation", "computations"]

Update = Callable[[float, float, float], object]


def _close(cls: Callable[..., object]) -> Callable[[IndicatorSpec], Update]:
    def make(spec: IndicatorSpec) -> Update:
        update = cls(*spec.parameters).update  # type: ignore[attr-defined]
        return lambda high, low, close: update(close)
    return make


def _hlc(cls: Callable[..., object]) -> Callable[[IndicatorSpec], Update]:
    def make(spec: IndicatorSpec) -> Update:
        return cls(*spec.parameters).update  # type: ignore[attr-defined]
    return make


_FACTORIES: dict[str, Callable[[IndicatorSpec], Update]] = {
    "sma": _close(SMA), "ema": _close(EMA), "wma": _close(WMA), "dema": _close(DEMA), "tema": _close(TEMA),
    "rsi": _close(RSI), "mom": _close(MOM), "roc": _close(ROC), "bbands": _close(Bollinger), "macd": _close(MACD),
    "atr": _hlc(ATR), "willr": _hlc(WILLR), "cci": _hlc(CCI), "stoch": _hlc(STOCH),
    "kama": _close(KAMA), "adx": _hlc(ADX),
}


class Computation:
    """One spec's incremental state; `update` writes its outputs (None while warming up) into `out`."""

    __slots__ = ("_update", "keys", "spec")

    def __init__(self, spec: IndicatorSpec) -> None:
        self.spec = spec
        self.keys = spec.output_keys()
        self._update = _FACTORIES[spec.function](spec)

    def update(self, high: float, low: float, close: float, out: dict[str, float | None]) -> None:
        value = self._update(high, low, close)
        keys = self.keys
        if len(keys) == 1:
            out[keys[0]] = value  # type: ignore[assignment]
        elif value is None:
            for key in keys:
                out[key] = None
        else:
            for key, v in zip(keys, value, strict=True):  # type: ignore[call-overload]
                out[key] = v


def computations(specs: Iterable[IndicatorSpec]) -> tuple[IndicatorSpec, ...]:
    """The specs to compute beyond the fixed set, in a stable (sorted by key) order."""
    return tuple(sorted({s for s in specs if s not in FIXED_SPECS}, key=lambda s: s.key))
