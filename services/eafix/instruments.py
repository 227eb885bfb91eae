"""THE instrument model and currency conversion: every service and the backtest take pip size,
contract size, lot limits and price precision from here, so ingest, signals, sizing, levels and
P&L agree on every symbol. Pure: no I/O.

Instruments
    `Instruments` is the table (symbol -> `Instrument`). The built-in one (`DEFAULT_INSTRUMENTS`)
    lists the majors, the common crosses, the JPY crosses and the metals XAUUSD/XAGUSD; a
    deployment adds symbols or replaces fields with `Instruments.with_overrides` (the chart's
    `global.instruments`, handed to every service as SERVICE_INSTRUMENTS). A six-letter symbol
    not in the table is a currency pair by the FX rule: pip 0.01 and 3 decimals when the quote
    currency is JPY, else pip 0.0001 and 5 decimals; 100,000 units of the base per lot.

Conversion
    `QuoteBook` keeps the latest quote per symbol and converts between currencies at the mids as
    exact fractions (numerator, denominator): the direct pair, its inverse, or one hop through a
    third currency (USD first, then EUR, then any other quoted one, alphabetically), so a rate
    found through a cross and one found through USD agree whenever the quotes do.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "DEFAULT_INSTRUMENTS",
    "Fraction",
    "Instrument",
    "InstrumentError",
    "InstrumentOverride",
    "Instruments",
    "Quote",
    "QuoteBook",
    "Quoted",
]

Fraction = tuple[Decimal, Decimal]  # numerator, denominator (both > 0)
STANDARD_LOT = Decimal(100_000)
_PRECISION = 60  # digits for exact-fraction products (several 8-decimal factors)
_PREFERRED_VIA = ("USD", "EUR")


class InstrumentError(ValueError):
    """An instrument table or a symbol that cannot be used (the message names the symbol/field)."""


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    base: str
    quote: str
    pip_size: Decimal  # price distance of one pip
    contract_size: Decimal  # units of the base per lot (100,000 for FX, 100 oz gold, 5,000 oz silver)
    min_lot: Decimal
    lot_step: Decimal
    max_lot: Decimal
    price_precision: int  # decimals of a quoted price

    @property
    def tick_size(self) -> Decimal:
        return Decimal(1).scaleb(-self.price_precision)

    def pips(self, price_distance: Decimal) -> Decimal:
        """A price distance in pips (exact, unrounded)."""
        return price_distance / self.pip_size

    def distance(self, pips: Decimal) -> Decimal:
        """The price distance of `pips` pips."""
        return pips * self.pip_size

    def round_price(self, price: Decimal) -> Decimal:
        """A computed price (a stop level) on the instrument's price grid, half-up."""
        return price.quantize(self.tick_size, rounding=ROUND_HALF_UP)


PositiveDecimal = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
# lot fields in the contracts' Lots form (OrderIntent.lots: 2 decimals, below 10,000): a finer step would
# size orders no contract can carry
LotSize = Annotated[Decimal, Field(gt=0, lt=10000, decimal_places=2, allow_inf_nan=False),
                    AfterValidator(lambda lots: lots.quantize(Decimal("0.01")))]  # 0.010 -> 0.01, 1E+1 -> 10.00
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class InstrumentOverride(BaseModel):
    """One entry of a configured table: fields of a built-in instrument to replace, or a new one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base: CurrencyCode | None = None
    quote: CurrencyCode | None = None
    pip_size: PositiveDecimal | None = None
    contract_size: PositiveDecimal | None = None
    min_lot: LotSize | None = None
    lot_step: LotSize | None = None
    max_lot: LotSize | None = None
    price_precision: Annotated[int, Field(ge=0, le=8)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_floats(cls, data: Any) -> Any:
        # a JSON/YAML number reaches us as a float: take its shortest text, never its binary value
        if isinstance(data, Mapping):
            return {k: (Decimal(repr(v)) if isinstance(v, float) else v) for k, v in data.items()}
        return data


def _fx_instrument(symbol: str) -> Instrument:
    jpy = symbol[3:] == "JPY"
    return Instrument(symbol, symbol[:3], symbol[3:], Decimal("0.01") if jpy else Decimal("0.0001"), STANDARD_LOT,
                      Decimal("0.01"), Decimal("0.01"), Decimal("100"), 3 if jpy else 5)


def _check(instrument: Instrument) -> Instrument:
    symbol = instrument.symbol
    try:
        off_step = instrument.min_lot % instrument.lot_step != 0
    except InvalidOperation:  # the quotient has more digits than the decimal context holds
        raise InstrumentError(f"{symbol}: min_lot ({instrument.min_lot}) and lot_step ({instrument.lot_step}) are "
                              f"too far apart to be a lot table") from None
    if off_step:
        raise InstrumentError(f"{symbol}: min_lot ({instrument.min_lot}) must be a multiple of lot_step "
                              f"({instrument.lot_step})")
    if instrument.max_lot < instrument.min_lot:
        raise InstrumentError(f"{symbol}: max_lot ({instrument.max_lot}) must be >= min_lot ({instrument.min_lot})")
    if instrument.pip_size < instrument.tick_size:
        raise InstrumentError(f"{symbol}: pip_size ({instrument.pip_size}) is finer than its price precision "
                              f"({instrument.price_precision} decimals)")
    return instrument


class Instruments(Mapping[str, Instrument]):
    """The instrument table. `table[symbol]` answers for any six-letter symbol (the FX rule for one
    not listed); iterating lists the configured symbols only."""

    __slots__ = ("_entries", "_derived")

    def __init__(self, entries: Mapping[str, Instrument] | None = None) -> None:
        self._entries = {s: _check(i) for s, i in (entries or {}).items()}
        self._derived: dict[str, Instrument] = {}

    def __getitem__(self, symbol: str) -> Instrument:
        found = self._entries.get(symbol) or self._derived.get(symbol)
        if found is None:
            if len(symbol) != 6 or not symbol.isalpha() or not symbol.isupper():
                raise InstrumentError(f"unknown instrument {symbol!r} (not a six-letter currency pair)")
            found = self._derived[symbol] = _fx_instrument(symbol)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Instruments) and self._entries == other._entries

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._entries.items())))

    def __repr__(self) -> str:
        return f"Instruments({len(self._entries)} symbols)"

    def pip_size(self, symbol: str) -> Decimal:
        return self[symbol].pip_size

    def with_overrides(self, overrides: Mapping[str, Any]) -> Instruments:
        """A table with `overrides` (symbol -> InstrumentOverride or its dict form) laid over this one.
        Raises InstrumentError naming the symbol and field of the first bad entry."""
        entries = dict(self._entries)
        for symbol, raw in overrides.items():
            if not isinstance(symbol, str) or len(symbol) != 6 or not symbol.isalpha() or not symbol.isupper():
                raise InstrumentError(f"{symbol!r}: an instrument symbol is six upper-case letters")
            try:
                override = raw if isinstance(raw, InstrumentOverride) else InstrumentOverride.model_validate(raw)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise InstrumentError(f"{symbol}{'.' + where if where else ''}: {first['msg']}") from None
            current = entries.get(symbol) or self[symbol]
            entries[symbol] = replace(current, **override.model_dump(exclude_none=True))
        return Instruments(entries)


def _table(*rows: tuple[str, str, int, str, str]) -> Instruments:
    # symbol, pip size, price precision, contract size, max lot; lots 0.01 steps from 0.01
    return Instruments({
        symbol: Instrument(symbol, symbol[:3], symbol[3:], Decimal(pip), Decimal(contract), Decimal("0.01"),
                           Decimal("0.01"), Decimal(max_lot), digits)
        for symbol, pip, digits, contract, max_lot in rows
    })


_FX = [(s, "0.0001", 5, "100000", "100") for s in (
    "EURUSD", "GBPUSD", "AUDUSD", "NZDUSD", "USDCAD", "USDCHF",
    "EURGBP", "EURCHF", "EURAUD", "EURCAD", "EURNZD", "GBPCHF", "GBPAUD", "GBPCAD", "AUDCAD", "AUDNZD", "AUDCHF",
    "NZDCAD", "CADCHF",
)]
_JPY = [(s, "0.01", 3, "100000", "100") for s in (
    "USDJPY", "EURJPY", "GBPJPY", "AUDJPY", "NZDJPY", "CADJPY", "CHFJPY",
)]
_METALS = [
    ("XAUUSD", "0.01", 2, "100", "50"),  # 100 troy oz a lot: one pip (0.01) on a lot is 1 USD
    ("XAGUSD", "0.001", 3, "5000", "50"),  # 5,000 troy oz a lot: one pip (0.001) on a lot is 5 USD
]
DEFAULT_INSTRUMENTS = _table(*_FX, *_JPY, *_METALS)


# --- quotes and conversion --------------------------------------------------------------------------


class Quote(Protocol):
    """What the book keeps of a quote (a PriceTick is one)."""

    @property
    def symbol(self) -> str: ...
    @property
    def ts(self) -> datetime: ...
    @property
    def bid(self) -> Decimal: ...
    @property
    def ask(self) -> Decimal: ...


@dataclass(frozen=True, slots=True)
class Quoted:
    """A quote made of a bid and an ask (e.g. a bar's close, both sides)."""

    symbol: str
    ts: datetime
    bid: Decimal
    ask: Decimal


class QuoteBook:
    """Latest quote per symbol (an older one never replaces a newer one) and conversions between
    currencies at the mids, as exact fractions."""

    __slots__ = ("_quotes", "_pairs")

    def __init__(self, quotes: Mapping[str, Quote] | None = None) -> None:
        self._quotes: dict[str, Quote] = {}
        self._pairs: dict[str, dict[str, str]] = {}  # currency -> {other currency: symbol quoting both}
        for quote in (quotes or {}).values():
            self.update(quote)

    def update(self, quote: Quote) -> None:
        current = self._quotes.get(quote.symbol)
        if current is None:
            base, counter = quote.symbol[:3], quote.symbol[3:]
            self._pairs.setdefault(base, {})[counter] = quote.symbol
            self._pairs.setdefault(counter, {})[base] = quote.symbol
        elif quote.ts < current.ts:
            return
        self._quotes[quote.symbol] = quote

    def get(self, symbol: str) -> Quote | None:
        return self._quotes.get(symbol)

    def quotes(self) -> list[Quote]:
        return list(self._quotes.values())

    def _direct(self, src: str, dst: str) -> Fraction | None:
        quote = self._quotes.get(src + dst)
        if quote is not None:
            return quote.bid + quote.ask, Decimal(2)
        quote = self._quotes.get(dst + src)
        if quote is not None:
            return Decimal(2), quote.bid + quote.ask
        return None

    def _vias(self, src: str, dst: str) -> list[str]:
        linked = set(self._pairs.get(src, {})) & set(self._pairs.get(dst, {}))
        return [c for c in _PREFERRED_VIA if c in linked] + sorted(linked - set(_PREFERRED_VIA))

    def rate(self, src: str, dst: str) -> Fraction | None:
        """Units of `dst` per unit of `src` at the mids: direct pair, inverse pair, or one hop; None
        when no quote links them."""
        if src == dst:
            return Decimal(1), Decimal(1)
        found = self._direct(src, dst)
        if found is not None:
            return found
        for via in self._vias(src, dst):
            first, second = self._direct(src, via), self._direct(via, dst)
            if first is not None and second is not None:
                with localcontext() as ctx:
                    ctx.prec = _PRECISION
                    return first[0] * second[0], first[1] * second[1]
        return None

    def convert(self, amount: Decimal, src: str, dst: str) -> Decimal | None:
        """`amount` of `src` in `dst` (unrounded), or None without a rate."""
        rate = self.rate(src, dst)
        if rate is None:
            return None
        with localcontext() as ctx:
            ctx.prec = _PRECISION
            return amount * rate[0] / rate[1]

    def pip_value_per_lot(self, instrument: Instrument, currency: str) -> Fraction | None:
        """One pip on one lot of `instrument`, in `currency`, as an exact fraction (None without a rate).
        In the quote currency it is pip size x contract size (10 USD for EURUSD, 1,000 JPY for USDJPY)."""
        rate = self.rate(instrument.quote, currency)
        if rate is None:
            return None
        with localcontext() as ctx:
            ctx.prec = _PRECISION
            return instrument.pip_size * instrument.contract_size * rate[0], rate[1]
