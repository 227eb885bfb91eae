"""Parameterized indicators: the names strategies write (`sma(10)`, `bbands(20, 2.5).upper`) and the
keys IndicatorVector 1.1 carries them under.

A reference is `<function>(<parameters>)` with an optional `.<output>` for a function with several
outputs, or one of the fixed names of IndicatorValues (`ema_20`, `macd_hist`, `bb_upper`, ...),
which are aliases of their parameterized form (`ema_20` = `ema(20)`, `bb_upper` =
`bbands(20,2).upper`). `parse_reference` validates a reference and returns its canonical form:
spaces removed, integer parameters as integers, a float parameter in its shortest text (`2.0` -> `2`),
so `bbands(20, 2.0).upper` and `bb_upper` name the same value. Errors say what is wrong
(`sma period must be >= 2`). Parameter rules are TA-Lib's.

Shared by signal-generator (which reads values by reference) and indicator-engine (which computes
the union of the references of the enabled strategies); neither imports the other.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "ALIASES",
    "FIXED_SPECS",
    "FUNCTIONS",
    "IndicatorRef",
    "IndicatorSpec",
    "Parameter",
    "parse_reference",
]


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    minimum: float
    integer: bool = True
    exclusive: bool = False  # minimum itself not allowed (a float that must be > minimum)


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    parameters: tuple[Parameter, ...]
    outputs: tuple[str, ...] = ()  # empty: one unnamed output
    inputs: str = "close"  # "close" or "hlc" (high, low, close)


def _p(name: str, minimum: float = 2) -> Parameter:
    return Parameter(name, minimum)


FUNCTIONS: dict[str, Function] = {f.name: f for f in (
    Function("sma", (_p("period"),)),
    Function("ema", (_p("period"),)),
    Function("wma", (_p("period"),)),
    Function("dema", (_p("period"),)),
    Function("tema", (_p("period"),)),
    Function("rsi", (_p("period"),)),
    Function("mom", (_p("period", 1),)),
    Function("roc", (_p("period", 1),)),
    Function("atr", (_p("period"),), inputs="hlc"),
    Function("willr", (_p("period"),), inputs="hlc"),
    Function("cci", (_p("period"),), inputs="hlc"),
    Function("kama", (_p("period"),)),
    Function("adx", (_p("period"),), inputs="hlc"),
    Function("bbands", (_p("period"), Parameter("k", 0.0, integer=False, exclusive=True)),
             ("upper", "middle", "lower")),
    Function("macd", (_p("fast"), _p("slow"), _p("signal", 1)), ("macd", "signal", "hist")),
    Function("stoch", (_p("fastk", 1), _p("slowk", 1), _p("slowd", 1)), ("k", "d"), inputs="hlc"),
)}

_CALL = re.compile(r"^([a-z]+)\(([^()]*)\)(?:\.([a-z]+))?$")
_NUMBER = re.compile(r"^[0-9]{1,6}(?:\.[0-9]{1,8})?$")  # IndicatorKey's bounds


@dataclass(frozen=True, slots=True)
class IndicatorSpec:
    """One computation: a function with its parameters (all outputs)."""

    function: str
    parameters: tuple[float | int, ...]

    @property
    def key(self) -> str:
        return f"{self.function}({','.join(_text(p) for p in self.parameters)})"

    @property
    def outputs(self) -> tuple[str, ...]:
        return FUNCTIONS[self.function].outputs

    def output_keys(self) -> tuple[str, ...]:
        """The IndicatorVector keys of this computation's values."""
        outputs = self.outputs
        return tuple(f"{self.key}.{o}" for o in outputs) if outputs else (self.key,)


@dataclass(frozen=True, slots=True)
class IndicatorRef:
    """One value: a computation and which of its outputs (None for a single-output function)."""

    spec: IndicatorSpec
    output: str | None

    @property
    def key(self) -> str:
        return self.spec.key if self.output is None else f"{self.spec.key}.{self.output}"

    @property
    def name(self) -> str:
        """A Name-shaped label (Signal.source_indicators keys): the fixed field, or the key with
        punctuation as `_` (`bbands(20,2.5).upper` -> `bbands_20_2_5_upper`)."""
        return self.alias or re.sub(r"[^a-z0-9]+", "_", self.key).strip("_")

    @property
    def alias(self) -> str | None:
        """The fixed IndicatorValues field holding this value, if it is one of the fixed set."""
        return _FIELD_OF.get(self.key)


def _text(value: float | int) -> str:
    return str(value) if isinstance(value, int) else format(Decimal(repr(value)), "f")


def _number(text: str, parameter: Parameter, function: str) -> float | int:
    what = f"{function} {parameter.name}"
    if not _NUMBER.match(text):
        raise ValueError(f"{what} must be a plain number (at most 6 digits, 8 decimals), got {text!r}")
    value = float(text)
    if parameter.integer:
        if not value.is_integer():
            raise ValueError(f"{what} must be an integer, got {text}")
        if value > 100_000:
            raise ValueError(f"{what} must be <= 100000")
        result: float | int = int(value)
    else:
        if not math.isfinite(value) or value > 1000:
            raise ValueError(f"{what} must be <= 1000")
        result = int(value) if value.is_integer() else value
    if value < parameter.minimum or (parameter.exclusive and value == parameter.minimum):
        bound = ">" if parameter.exclusive else ">="
        minimum = int(parameter.minimum) if parameter.integer else parameter.minimum
        raise ValueError(f"{what} must be {bound} {minimum}")
    return result


def _spec(function: str, args: str) -> IndicatorSpec:
    definition = FUNCTIONS.get(function)
    if definition is None:
        raise ValueError(f"unknown indicator {function!r} (one of {', '.join(sorted(FUNCTIONS))})")
    texts = [a.strip() for a in args.split(",")] if args.strip() else []
    wanted = definition.parameters
    if len(texts) != len(wanted):
        names = ", ".join(p.name for p in wanted)
        raise ValueError(f"{function} takes {len(wanted)} parameter(s) ({names}), got {len(texts)}")
    values = tuple(_number(t, p, function) for t, p in zip(texts, wanted, strict=True))
    if function == "macd" and values[0] >= values[1]:
        raise ValueError(f"macd fast ({values[0]}) must be shorter than slow ({values[1]})")
    return IndicatorSpec(function, values)


def parse_reference(text: object) -> IndicatorRef:
    """Validate `text` (a fixed name or `function(params)[.output]`); ValueError says what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"an indicator reference is a string like 'sma(10)', got {type(text).__name__}")
    alias = ALIASES.get(text)
    if alias is not None:
        return alias
    match = _CALL.match(text.replace(" ", ""))
    if match is None:
        raise ValueError(f"{text!r} is neither a fixed indicator ({', '.join(ALIASES)}) nor "
                         f"function(parameters), e.g. sma(10) or bbands(20,2.5).upper")
    function, args, output = match.groups()
    spec = _spec(function, args)
    outputs = spec.outputs
    if outputs and output is None:
        raise ValueError(f"{function} has several outputs: name one ({', '.join(f'.{o}' for o in outputs)})")
    if output is not None and output not in outputs:
        have = ", ".join(f".{o}" for o in outputs) if outputs else "no named outputs"
        raise ValueError(f"{function} has {have}, not .{output}")
    return IndicatorRef(spec, output)


def _fixed(field: str, function: str, parameters: tuple[float | int, ...], output: str | None = None) -> tuple[
        str, IndicatorRef]:
    return field, IndicatorRef(IndicatorSpec(function, parameters), output)


# IndicatorValues field -> its parameterized form (the fixed set indicator-engine always computes)
ALIASES: dict[str, IndicatorRef] = dict((
    _fixed("ema_20", "ema", (20,)),
    _fixed("ema_50", "ema", (50,)),
    _fixed("sma_20", "sma", (20,)),
    _fixed("sma_50", "sma", (50,)),
    _fixed("rsi_14", "rsi", (14,)),
    _fixed("macd", "macd", (12, 26, 9), "macd"),
    _fixed("macd_signal", "macd", (12, 26, 9), "signal"),
    _fixed("macd_hist", "macd", (12, 26, 9), "hist"),
    _fixed("bb_upper", "bbands", (20, 2), "upper"),
    _fixed("bb_middle", "bbands", (20, 2), "middle"),
    _fixed("bb_lower", "bbands", (20, 2), "lower"),
    _fixed("atr_14", "atr", (14,)),
))
_FIELD_OF: dict[str, str] = {ref.key: field for field, ref in ALIASES.items()}
FIXED_SPECS: frozenset[IndicatorSpec] = frozenset(ref.spec for ref in ALIASES.values())
