"""signal-generator's strategies: the document's model lives in eafix.contracts.strategies (indicator-engine
reads the same document for the indicators it declares); the shipped default is this package's data."""

from __future__ import annotations

from importlib import resources

from eafix.contracts.strategies import (
    STRATEGY_TYPES,
    BollingerBreakoutConfig,
    Defaults,
    MaCrossoverConfig,
    ResolvedStrategy,
    RsiMeanReversionConfig,
    SignalGeneratorConfig,
    SignedIndicator,
    StopConfig,
    StrategyConfigError,
    load_strategies_file,
    load_strategies_text,
    parse_strategies,
    references,
)

__all__ = [
    "DEFAULT_STRATEGIES_FILE",
    "STRATEGY_TYPES",
    "BollingerBreakoutConfig",
    "SignedIndicator",
    "Defaults",
    "MaCrossoverConfig",
    "ResolvedStrategy",
    "RsiMeanReversionConfig",
    "SignalGeneratorConfig",
    "StopConfig",
    "StrategyConfigError",
    "load_default_strategies",
    "load_strategies_file",
    "load_strategies_text",
    "parse_strategies",
    "references",
]

DEFAULT_STRATEGIES_FILE = "strategies.default.yaml"


def load_default_strategies() -> SignalGeneratorConfig:
    """The strategies shipped with the package (`strategies.default.yaml`)."""
    resource = resources.files(__package__).joinpath(DEFAULT_STRATEGIES_FILE)
    source = f"eafix.signal_generator/{DEFAULT_STRATEGIES_FILE}"
    return load_strategies_text(resource.read_text(encoding="utf-8"), source)
