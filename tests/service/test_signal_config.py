"""Strategy configuration: the shipped default, inheritance of defaults, and errors naming the bad key."""

from __future__ import annotations

import textwrap
import typing
from decimal import Decimal

import pytest

from eafix.contracts import IndicatorValues
from eafix.signal_generator import config as cfg
from eafix.signal_generator.config import (
    StrategyConfigError,
    load_default_strategies,
    load_strategies_file,
    load_strategies_text,
    parse_strategies,
)


def load(text: str):
    return load_strategies_text(textwrap.dedent(text), "test.yaml")


def errors_of(text: str) -> tuple[str, ...]:
    with pytest.raises(StrategyConfigError) as info:
        load(text)
    assert str(info.value).startswith("invalid strategy configuration in test.yaml:")
    return info.value.errors


def test_default_file_ships_the_three_strategy_types():
    conf = load_default_strategies()
    assert {s.type for s in conf.enabled} == {"ma_crossover", "rsi_mean_reversion", "bollinger_breakout"}
    assert conf.defaults.min_confidence == 0.6 and conf.defaults.duplicate_window_seconds == 300
    rsi = next(s for s in conf.strategies if s.type == "rsi_mean_reversion")
    assert (rsi.params.oversold, rsi.params.overbought) == (30, 70)


def test_defaults_are_inherited_and_overridable():
    conf = load("""
        version: 1
        defaults: {min_confidence: 0.65, take_profit_ratio: 1.5, stop: {atr_multiple: 1.0, fallback_pips: 15}}
        strategies:
          a: {type: ma_crossover}
          b: {type: ma_crossover, fast: sma_20, slow: sma_50, min_confidence: 0.8, take_profit_ratio: null,
              stop: {atr_multiple: 3, min_pips: 5, max_pips: 50, fallback_pips: 30}}
          c: {type: bollinger_breakout, enabled: false}
    """)
    a, b, c = conf.strategies
    assert (a.min_confidence, a.take_profit_ratio, a.stop.atr_multiple, a.stop.fallback_pips) == (
        0.65, 1.5, 1.0, Decimal(15))
    assert (b.min_confidence, b.take_profit_ratio, b.stop.max_pips) == (0.8, None, Decimal(50))
    assert (b.params.fast, b.params.slow) == ("sma_20", "sma_50")
    assert [s.name for s in conf.enabled] == ["a", "b"] and not c.params.enabled


def test_file_loading_and_unreadable_file(tmp_path):
    path = tmp_path / "strategies.yaml"
    path.write_text("version: 1\nstrategies:\n  x: {type: rsi_mean_reversion, symbols: [EURUSD], timeframes: [H1]}\n")
    conf = load_strategies_file(path)
    assert conf.strategies[0].params.symbols == ["EURUSD"]
    with pytest.raises(StrategyConfigError, match="cannot read"):
        load_strategies_file(tmp_path / "missing.yaml")


@pytest.mark.parametrize(("text", "expected"), [
    ("version: 1\nstrategies:\n  x: {type: rsi_mean_reversion, oversold: 40, overbought: 35}\n",
     "strategies.x.overbought: must be greater than oversold (40.0)"),
    ("version: 1\nstrategies:\n  x: {type: rsi_mean_reversion, oversold: -1}\n",
     "strategies.x.oversold: Input should be greater than 0"),
    ("version: 1\nstrategies:\n  x: {type: ma_crossover, fast: ema_50, slow: ema_50}\n",
     "strategies.x.slow: must differ from fast (ema_50)"),
    ("version: 1\nstrategies:\n  x: {type: ma_crossover, fast: rsi_14}\n",
     "strategies.x.fast: must be a sma / ema / wma / dema / tema indicator (got 'rsi_14')"),
    ("version: 1\nstrategies:\n  x: {type: bollinger_breakout, excess_wieght: 2}\n",
     "strategies.x.excess_wieght: unknown key"),
    ("version: 1\nstrategies:\n  x: {type: bollinger_breakout, symbols: [EURUSD, eurjpy]}\n",
     "strategies.x.symbols[1]: Symbol"),
    ("version: 1\nstrategies:\n  x: {type: bollinger_breakout, timeframes: [H2]}\n",
     "strategies.x.timeframes[0]:"),
    ("version: 1\nstrategies:\n  x: {type: bollinger_breakout, confirm: ema_20}\n",
     "strategies.x.confirm: Input should be 'macd' or 'macd_hist'"),
    ("version: 1\nstrategies:\n  x: {type: bollinger_breakout, stop: {min_pips: 30, max_pips: 20}}\n",
     "strategies.x.stop.max_pips: must be >= min_pips (30)"),
    ("version: 1\nstrategies:\n  x: {type: bollinger_breakout, stop: {fallback_pips: 500}}\n",
     "strategies.x.stop.fallback_pips: must lie within min_pips..max_pips (10..200)"),
    ("version: 1\nstrategies:\n  x: {type: bollinger_breakout, stop: {min_pips: 10.25}}\n",
     "strategies.x.stop.min_pips: Decimal input should have no more than 1 decimal place"),
    ("version: 1\nstrategies:\n  x: {type: bollinger_breakout, base_confidence: 1.2}\n",
     "strategies.x.base_confidence: Input should be less than or equal to 1"),
    ("version: 1\nstrategies:\n  x: {type: trend_surfer}\n",
     "strategies.x.type: unknown strategy type 'trend_surfer' (one of ma_crossover, rsi_mean_reversion, "
     "bollinger_breakout)"),
    ("version: 1\nstrategies:\n  x: {oversold: 20}\n", "strategies.x.type: required key is missing"),
    ("version: 1\nstrategies:\n  Bad-Name: {type: ma_crossover}\n", "strategies.Bad-Name: strategy name must match"),
    ("version: 1\nstrategies:\n  x: [ma_crossover]\n", "strategies.x: expected a mapping of settings, got list"),
    ("version: 1\nstrategies: {}\n", "strategies: at least one strategy is required"),
    ("version: 1\n", "strategies: required key is missing"),
    ("version: 2\nstrategies:\n  x: {type: ma_crossover}\n", "version: Input should be 1"),
    ("strategies:\n  x: {type: ma_crossover}\n", "version: required key is missing"),
    ("version: 1\nextras: 1\nstrategies:\n  x: {type: ma_crossover}\n", "extras: unknown key"),
    ("version: 1\ndefaults: {min_confidence: 2}\nstrategies:\n  x: {type: ma_crossover}\n",
     "defaults.min_confidence: Input should be less than or equal to 1"),
    ("version: 1\ndefaults: {duplicate_window_seconds: -1}\nstrategies:\n  x: {type: ma_crossover}\n",
     "defaults.duplicate_window_seconds: Input should be greater than or equal to 0"),
    # pip sizes live in the instrument table, not in the strategies
    ("version: 1\ndefaults: {pip_sizes: {XAUUSD: 0.1}}\nstrategies:\n  x: {type: ma_crossover}\n",
     "defaults.pip_sizes: unknown key"),
])
def test_invalid_configuration_names_the_bad_key(text, expected):
    with pytest.raises(StrategyConfigError) as info:
        load_strategies_text(text, "test.yaml")
    assert any(e.startswith(expected) for e in info.value.errors), info.value.errors
    assert expected.split(":")[0] in str(info.value)


def test_all_problems_are_reported_at_once():
    errs = errors_of("""
        version: 1
        defaults: {min_confidence: 1.5}
        strategies:
          a: {type: ma_crossover, fast: ema_20, slow: ema_20}
          b: {type: rsi_mean_reversion, overbought: 20}
    """)
    paths = [e.split(":")[0] for e in errs]
    assert paths == ["defaults.min_confidence", "strategies.a.slow", "strategies.b.overbought"]


def test_yaml_syntax_error_gives_the_position():
    errs = errors_of("version: 1\nstrategies:\n  x: {type: ma_crossover\n")
    assert len(errs) == 1 and errs[0].startswith("line 4, column 1: YAML syntax error")


def test_document_must_be_a_mapping():
    with pytest.raises(StrategyConfigError, match="expected a mapping"):
        parse_strategies(["version", 1], "list.yaml")


def test_indicator_names_match_the_indicator_vector_contract():
    fields = set(IndicatorValues.model_fields)
    assert set(typing.get_args(cfg.SignedIndicator)) <= fields


@pytest.mark.parametrize(("body", "expected"), [
    ("{type: ma_crossover, fast: sma(1), slow: sma(20)}", "strategies.x.fast: sma period must be >= 2"),
    ("{type: ma_crossover, fast: sma(10), slow: ema(2.5)}", "strategies.x.slow: ema period must be an integer"),
    ("{type: ma_crossover, fast: 'sma(10, 3)'}", "strategies.x.fast: sma takes 1 parameter(s) (period), got 2"),
    ("{type: ma_crossover, fast: hma(10)}", "strategies.x.fast: unknown indicator 'hma'"),
    ("{type: ma_crossover, fast: sma(10), slow: sma( 10 )}", "strategies.x.slow: must differ from fast (sma(10))"),
    ("{type: rsi_mean_reversion, rsi: ema(7)}", "strategies.x.rsi: must be a rsi indicator (got 'ema(7)')"),
    ("{type: bollinger_breakout, bands: 'bbands(20, 0)'}", "strategies.x.bands: bbands k must be > 0"),
    ("{type: bollinger_breakout, bands: bbands(20)}", "strategies.x.bands: bbands takes 2 parameter(s) (period, k)"),
    ("{type: bollinger_breakout, bands: 'bbands(20,2).upper'}", "strategies.x.bands: must be bbands(period, k) "
                                                              "without an output"),
    ("{type: ma_crossover, confirm: 'macd(5,35,5).hist'}", "strategies.x.confirm: Input should be 'macd' or"),
])
def test_indicator_references_are_validated_naming_the_path(body, expected):
    with pytest.raises(StrategyConfigError) as info:
        load_strategies_text(f"version: 1\nstrategies:\n  x: {body}\n")
    assert any(e.startswith(expected) for e in info.value.errors), info.value.errors


def test_the_indicator_union_of_the_enabled_strategies():
    config = load_strategies_text(
        "version: 1\nstrategies:\n"
        "  a: {type: ma_crossover, fast: sma(10), slow: 'ema( 34 )'}\n"
        "  b: {type: rsi_mean_reversion, rsi: rsi(7)}\n"
        "  c: {type: bollinger_breakout, bands: 'bbands(20, 2.50)'}\n"
        "  d: {type: ma_crossover, fast: wma(5), slow: tema(9), enabled: false}\n"
        "  e: {type: ma_crossover, fast: sma(20), slow: ema_50, confirm: macd_hist}\n")
    assert config.strategies[0].params.slow == "ema(34)"  # canonical
    assert config.strategies[4].params.fast == "sma(20)"
    keys = {spec.key for spec in config.indicators()}
    # d is disabled; sma(20), ema_50, macd_hist and atr_14 are in the fixed set, listed all the same
    assert keys == {"sma(10)", "ema(34)", "rsi(7)", "bbands(20,2.5)", "sma(20)", "ema(50)", "macd(12,26,9)",
                    "atr(14)"}
    assert {spec.key for spec in load_default_strategies().indicators()} == {
        "ema(20)", "ema(50)", "macd(12,26,9)", "rsi(14)", "bbands(20,2)", "atr(14)"}


