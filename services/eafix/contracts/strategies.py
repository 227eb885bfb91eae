"""Strategies as configuration: the YAML document, its validation, and errors that name the bad key.

A contract between two services: signal-generator evaluates the strategies, indicator-engine
computes the indicators they declare (`SignalGeneratorConfig.indicators()`); the chart hands both
the same document. Indicator references (`fast: sma(10)`) are eafix.contracts.indicator_specs'.

    version: 1
    defaults:                       # optional; every key optional
      min_confidence: 0.6           # below -> SignalSuppressed LOW_CONFIDENCE
      duplicate_window_seconds: 300 # same symbol/strategy/direction within it -> DUPLICATE_WITHIN_WINDOW
      stop: {atr_multiple: 1.5, min_pips: 10, max_pips: 200, fallback_pips: 20}
      take_profit_ratio: 2.0        # tp_pips = sl_pips x ratio; null -> tp_pips null (risk-manager default)
    strategies:
      <name>:                       # [a-z][a-z0-9_]*, becomes Signal.strategy
        type: ma_crossover | rsi_mean_reversion | bollinger_breakout
        (ma_crossover: fast/slow; rsi_mean_reversion: rsi; bollinger_breakout: bands are indicator
        references, e.g. sma(10), rsi(7), bbands(20, 2.5); default: the fixed set's ema_20/ema_50,
        rsi_14, bbands(20,2))
        enabled: true
        symbols: [EURUSD, ...]      # default: every symbol
        timeframes: [H1, ...]       # default: every timeframe
        min_confidence / stop / take_profit_ratio: per-strategy overrides of `defaults`
        confirm: macd_hist          # optional: the sign of macd / macd_hist must agree, else NEUTRAL_BIAS
        stop_and_reverse: false     # true: a signal closes the symbol's open opposite positions (REVERSE)
                                    # when its order is placed, besides SL/TP
        ...type parameters (see the *Config classes)

`load_strategies_text`, `load_strategies_file` and `load_default_strategies` return a validated
`SignalGeneratorConfig` or raise `StrategyConfigError`, whose message lists every problem as
`<dotted.path>: <what is wrong>` (e.g. `strategies.rsi_fade.overbought: must be greater than
oversold (30.0)`, `strategies.sma_cross.fast: sma period must be >= 2 (got 'sma(1)')`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from eafix.contracts.indicator_specs import IndicatorRef, IndicatorSpec, parse_reference
from eafix.contracts.primitives import PATTERNS, Symbol, Timeframe
from eafix.runtime.yaml_text import safe_load

__all__ = [
    "STRATEGY_TYPES",
    "SignedIndicator",
    "BollingerBreakoutConfig",
    "Defaults",
    "MaCrossoverConfig",
    "ResolvedStrategy",
    "RsiMeanReversionConfig",
    "SignalGeneratorConfig",
    "StopConfig",
    "StrategyConfigError",
    "load_strategies_file",
    "load_strategies_text",
    "parse_strategies",
    "references",
]

SUPPORTED_VERSIONS = (1,)



def _reference(*functions: str) -> Callable[[object], str]:
    """A validated indicator reference, kept as written when it is a fixed name (`ema_20`), else in
    canonical form (`sma( 10 )` -> `sma(10)`), of one of `functions`."""

    def check(value: object) -> str:
        ref = parse_reference(value)
        if ref.spec.function not in functions:
            raise ValueError(f"must be a {' / '.join(functions)} indicator")
        return value if ref.alias == value else ref.key  # type: ignore[return-value]

    return check


def _bands(value: object) -> str:
    """`bbands(period, k)`: the computation whose upper/middle/lower a strategy reads."""
    if not isinstance(value, str) or not value.strip().endswith(")"):
        raise ValueError("must be bbands(period, k) without an output")
    ref = parse_reference(f"{value}.upper")
    if ref.spec.function != "bbands":
        raise ValueError("must be a bbands(period, k) indicator")
    return ref.spec.key


MovingAverage = Annotated[str, BeforeValidator(_reference("sma", "ema", "wma", "dema", "tema"))]
RsiReference = Annotated[str, BeforeValidator(_reference("rsi"))]
BandsReference = Annotated[str, BeforeValidator(_bands)]
SignedIndicator = Literal["macd", "macd_hist"]
Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
PositiveFloat = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
PipDistance = Annotated[Decimal, Field(gt=0, le=Decimal("999999.9"), decimal_places=1)]
_NAME = re.compile(PATTERNS["Name"])


class StrategyConfigError(ValueError):
    """The strategies configuration is invalid; `errors` holds one `path: problem` line each."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = tuple(errors)
        super().__init__(f"invalid strategy configuration in {source}:\n" + "\n".join(f"  {e}" for e in errors))


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StopConfig(_Strict):
    """Stop distance: atr_14 x atr_multiple in pips, clamped to [min_pips, max_pips]; fallback_pips
    while ATR is warming up."""

    atr_multiple: PositiveFloat = 1.5
    min_pips: PipDistance = Decimal("10")
    max_pips: PipDistance = Decimal("200")
    fallback_pips: PipDistance = Decimal("20")

    @field_validator("max_pips")
    @classmethod
    def _max_above_min(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        low = info.data.get("min_pips")
        if low is not None and value < low:
            raise ValueError(f"must be >= min_pips ({low})")
        return value

    @field_validator("fallback_pips")
    @classmethod
    def _fallback_inside(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        low, high = info.data.get("min_pips"), info.data.get("max_pips")
        if low is not None and high is not None and not low <= value <= high:
            raise ValueError(f"must lie within min_pips..max_pips ({low}..{high})")
        return value


class Defaults(_Strict):
    min_confidence: Unit = 0.6
    duplicate_window_seconds: NonNegative = 300.0
    stop: StopConfig = StopConfig()
    take_profit_ratio: PositiveFloat | None = 2.0


class _StrategyBase(_Strict):
    enabled: bool = True
    symbols: Annotated[list[Symbol], Field(min_length=1)] | None = None
    timeframes: Annotated[list[Timeframe], Field(min_length=1)] | None = None
    min_confidence: Unit | None = None
    stop: StopConfig | None = None
    take_profit_ratio: PositiveFloat | None = None  # unset: defaults'; explicit null: no TP (risk default)
    confirm: SignedIndicator | None = None
    base_confidence: Unit = 0.6
    # exit on the opposite signal: its order closes this strategy's symbol's open opposite positions
    stop_and_reverse: bool = False


class MaCrossoverConfig(_StrategyBase):
    """LONG when `fast` crosses above `slow`, SHORT when below (compared with the last non-zero
    difference). confidence = base_confidence + separation_weight x |fast - slow| / atr_14."""

    type: Literal["ma_crossover"]
    fast: MovingAverage = "ema_20"
    slow: MovingAverage = "ema_50"
    separation_weight: NonNegative = 1.0

    @field_validator("slow")
    @classmethod
    def _different(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("fast") == value:
            raise ValueError(f"must differ from fast ({value})")
        return value


class RsiMeanReversionConfig(_StrategyBase):
    """LONG when rsi_14 <= oversold, SHORT when >= overbought (with on_cross: only on the bar that
    enters the zone). depth = distance into the zone / zone width;
    confidence = base_confidence + (1 - base_confidence) x min(1, depth x depth_gain)."""

    type: Literal["rsi_mean_reversion"]
    rsi: RsiReference = "rsi_14"
    oversold: Annotated[float, Field(gt=0.0, lt=100.0, allow_inf_nan=False)] = 30.0
    overbought: Annotated[float, Field(gt=0.0, lt=100.0, allow_inf_nan=False)] = 70.0
    on_cross: bool = True
    depth_gain: NonNegative = 2.0

    @field_validator("overbought")
    @classmethod
    def _above_oversold(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("oversold")
        if low is not None and value <= low:
            raise ValueError(f"must be greater than oversold ({low})")
        return value


class BollingerBreakoutConfig(_StrategyBase):
    """LONG when the bar closes above bb_upper, SHORT below bb_lower (with on_cross: only when the
    previous close was not beyond the same band). excess = distance beyond the band / band width;
    confidence = base_confidence + excess_weight x excess."""

    type: Literal["bollinger_breakout"]
    bands: BandsReference = "bbands(20,2)"
    on_cross: bool = True
    excess_weight: NonNegative = 1.0


StrategyConfig = MaCrossoverConfig | RsiMeanReversionConfig | BollingerBreakoutConfig

STRATEGY_TYPES: dict[str, type[_StrategyBase]] = {
    "ma_crossover": MaCrossoverConfig,
    "rsi_mean_reversion": RsiMeanReversionConfig,
    "bollinger_breakout": BollingerBreakoutConfig,
}


@dataclass(frozen=True, slots=True)
class ResolvedStrategy:
    """One strategy with the defaults applied."""

    name: str
    params: StrategyConfig
    min_confidence: float
    duplicate_window_seconds: float
    stop: StopConfig
    take_profit_ratio: float | None

    @property
    def type(self) -> str:
        return self.params.type


@dataclass(frozen=True, slots=True)
class SignalGeneratorConfig:
    version: int
    defaults: Defaults
    strategies: tuple[ResolvedStrategy, ...]  # in file order, disabled ones included

    @property
    def enabled(self) -> tuple[ResolvedStrategy, ...]:
        return tuple(s for s in self.strategies if s.params.enabled)

    def indicators(self) -> frozenset[IndicatorSpec]:
        """The computations the enabled strategies read (fixed ones included): what indicator-engine
        must compute for them."""
        return frozenset(ref.spec for s in self.enabled for ref in references(s.params))


def references(params: StrategyConfig) -> tuple[IndicatorRef, ...]:
    """The indicator values a strategy reads: its own, `confirm`, and atr_14 (stop and confidence)."""
    if isinstance(params, MaCrossoverConfig):
        texts = [params.fast, params.slow]
    elif isinstance(params, RsiMeanReversionConfig):
        texts = [params.rsi]
    else:
        texts = [f"{params.bands}.{output}" for output in ("upper", "middle", "lower")]
    refs = [parse_reference(t) for t in texts]
    if params.confirm is not None:
        refs.append(parse_reference(params.confirm))
    return (*refs, parse_reference("atr_14"))


class _Top(_Strict):
    version: Literal[1]
    defaults: Defaults = Defaults()

    @model_validator(mode="before")
    @classmethod
    def _defaults_null(cls, data: Any) -> Any:
        if isinstance(data, dict) and "defaults" in data and data["defaults"] is None:
            data = {**data, "defaults": {}}
        return data


def _path(prefix: tuple[str | int, ...], loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in (*prefix, *loc):
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "<document>"


def _messages(exc: ValidationError, prefix: tuple[str | int, ...]) -> list[str]:
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif "input" in err and err["type"] not in ("model_type", "dict_type"):
            msg += f" (got {err['input']!r})"
        out.append(f"{_path(prefix, loc)}: {msg}")
    return out


def parse_strategies(data: Any, source: str = "<strategies>") -> SignalGeneratorConfig:
    """Validate a decoded document (dict) into a SignalGeneratorConfig; StrategyConfigError lists problems."""
    if not isinstance(data, dict):
        raise StrategyConfigError(source, [f"<document>: expected a mapping with version/defaults/strategies, "
                                           f"got {type(data).__name__}"])
    errors: list[str] = []
    top_doc = {k: v for k, v in data.items() if k != "strategies"}
    top: _Top | None = None
    try:
        top = _Top.model_validate(top_doc)
    except ValidationError as exc:
        errors.extend(_messages(exc, ()))

    raw = data.get("strategies")
    parsed: list[tuple[str, StrategyConfig]] = []
    if raw is None:
        errors.append("strategies: required key is missing (a mapping of strategy name -> settings)")
    elif not isinstance(raw, dict):
        errors.append(f"strategies: expected a mapping of strategy name -> settings, got {type(raw).__name__}")
    elif not raw:
        errors.append("strategies: at least one strategy is required")
    else:
        for name, body in raw.items():
            where = ("strategies", str(name))
            if not isinstance(name, str) or not _NAME.search(name):
                errors.append(f"{_path(where, ())}: strategy name must match {PATTERNS['Name']}")
                continue
            if not isinstance(body, dict):
                errors.append(f"{_path(where, ())}: expected a mapping of settings, got {type(body).__name__}")
                continue
            kind = body.get("type")
            model = STRATEGY_TYPES.get(kind) if isinstance(kind, str) else None
            if model is None:
                known = ", ".join(STRATEGY_TYPES)
                problem = "required key is missing" if "type" not in body else f"unknown strategy type {kind!r}"
                errors.append(f"{_path(where, ('type',))}: {problem} (one of {known})")
                continue
            try:
                parsed.append((name, model.model_validate(body)))  # type: ignore[arg-type]
            except ValidationError as exc:
                errors.extend(_messages(exc, where))
    if errors or top is None:
        raise StrategyConfigError(source, errors)

    defaults = top.defaults
    resolved = tuple(
        ResolvedStrategy(
            name=name,
            params=params,
            min_confidence=params.min_confidence if params.min_confidence is not None else defaults.min_confidence,
            duplicate_window_seconds=defaults.duplicate_window_seconds,
            stop=params.stop if params.stop is not None else defaults.stop,
            take_profit_ratio=(params.take_profit_ratio if "take_profit_ratio" in params.model_fields_set
                               else defaults.take_profit_ratio),
        )
        for name, params in parsed
    )
    return SignalGeneratorConfig(version=top.version, defaults=defaults, strategies=resolved)


def load_strategies_text(text: str, source: str = "<strategies>") -> SignalGeneratorConfig:
    try:
        data = safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "<document>"
        problem = getattr(exc, "problem", None) or str(exc)
        raise StrategyConfigError(source, [f"{where}: YAML syntax error: {problem}"]) from None
    return parse_strategies(data, source)


def load_strategies_file(path: str | Path) -> SignalGeneratorConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StrategyConfigError(str(path), [f"<file>: cannot read: {exc.strerror or exc}"]) from None
    return load_strategies_text(text, str(path))
