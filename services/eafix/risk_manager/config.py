"""risk-manager's policy table (§11 row 16): RiskConfig and its parts. Validation errors name the key."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from eafix.contracts.primitives import Currency, Id, Name, Symbol

MAX_RISK_CAP_PERCENT = Decimal("3.5")  # spec constant: effective risk never exceeds 3.5 %

PositiveDecimal = Annotated[Decimal, Field(gt=0)]
Multiplier = Annotated[Decimal, Field(ge=Decimal("0.1"), le=Decimal("3.0"))]


class CorrelatedPair(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    symbols: tuple[Symbol, Symbol]
    coefficient: Annotated[float, Field(ge=-1.0, le=1.0)]

    @field_validator("symbols")
    @classmethod
    def _distinct(cls, value: tuple[str, str]) -> tuple[str, str]:
        if value[0] == value[1]:
            raise ValueError("a correlated pair needs two different symbols")
        return value


# Illustrative defaults (long-run daily-return correlations of the majors); override per deployment.
DEFAULT_CORRELATED_PAIRS: tuple[CorrelatedPair, ...] = (
    CorrelatedPair(symbols=("EURUSD", "GBPUSD"), coefficient=0.8),
    CorrelatedPair(symbols=("EURUSD", "USDCHF"), coefficient=-0.9),
    CorrelatedPair(symbols=("AUDUSD", "NZDUSD"), coefficient=0.9),
)


class RiskConfig(BaseModel):
    """Risk policy. Validation errors name the offending key (pydantic `loc`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    account_id: Id = "default"
    account_currency: Currency = "USD"
    opening_balance: PositiveDecimal = Decimal("10000")
    risk_percent: Annotated[Decimal, Field(gt=0, le=MAX_RISK_CAP_PERCENT)] = Decimal("2.0")
    risk_multiplier: Multiplier = Decimal("1.0")
    strategy_risk_multipliers: dict[Name, Multiplier] = Field(default_factory=dict)
    # a policy cap on top of each instrument's own lot limits (eafix.instruments)
    max_lot: Annotated[Decimal, Field(gt=0, le=Decimal("9999.99"))] = Decimal("100")
    daily_drawdown_limit_percent: Annotated[Decimal, Field(gt=0, le=100)] = Decimal("5.0")
    max_open_positions: Annotated[int, Field(ge=1)] = 5
    max_positions_per_symbol: Annotated[int, Field(ge=1)] = 1
    currency_exposure_cap_percent: Annotated[Decimal, Field(gt=0, le=100)] = Decimal("5.0")
    correlation_limit: Annotated[float, Field(gt=0.0, le=1.0)] = 0.7
    correlated_pairs: tuple[CorrelatedPair, ...] = DEFAULT_CORRELATED_PAIRS
    max_spread_pips: PositiveDecimal = Decimal("5.0")
    max_spread_pips_by_symbol: dict[Symbol, PositiveDecimal] = Field(default_factory=dict)
    max_quote_age_seconds: Annotated[float, Field(gt=0)] = 300.0
    min_tp_sl_ratio: PositiveDecimal = Decimal("1.2")
    default_tp_sl_ratio: PositiveDecimal = Decimal("2.0")
    decision_memory: Annotated[int, Field(ge=1)] = 100_000  # signal ids remembered for idempotency
    trade_memory: Annotated[int, Field(ge=1)] = 100_000  # trade ids remembered for idempotency
    restart_lookback_days: Annotated[int, Field(ge=1)] = 7  # realized history loaded on restart

    @model_validator(mode="after")
    def _consistent(self) -> RiskConfig:
        if self.default_tp_sl_ratio < self.min_tp_sl_ratio:
            raise ValueError(f"default_tp_sl_ratio ({self.default_tp_sl_ratio}) must be >= min_tp_sl_ratio "
                             f"({self.min_tp_sl_ratio})")
        seen: set[frozenset[str]] = set()
        for pair in self.correlated_pairs:
            key = frozenset(pair.symbols)
            if key in seen:
                raise ValueError(f"correlated_pairs lists {'/'.join(sorted(key))} twice")
            seen.add(key)
        return self

    def multiplier_for(self, strategy: str) -> Decimal:
        return self.strategy_risk_multipliers.get(strategy, self.risk_multiplier)

    def spread_limit(self, symbol: str) -> Decimal:
        return self.max_spread_pips_by_symbol.get(symbol, self.max_spread_pips)

