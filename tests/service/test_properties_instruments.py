"""Property tests of the instrument catalogue and price helpers every service shares
(`eafix.instruments`: `Instruments[symbol]`, `Instruments.with_overrides` — the chart's
`global.instruments` / SERVICE_INSTRUMENTS —, `Instrument.pips` / `distance` / `round_price`,
`QuoteBook.rate` / `convert`), the indicator references of the strategies document
(`eafix.contracts.indicator_specs.parse_reference`) and execution-engine's price helpers
(`eafix.execution_engine.domain.pips_between`, `protective_levels`, `average_price`).

Covered: any symbol and any override table give an instrument/table or InstrumentError naming the
symbol, never another exception (a min_lot/lot_step pair too far apart in scale was a raw
decimal.InvalidOperation); pips and distances convert back exactly; a rounded price is on the tick
grid within half a tick; a rate and its inverse multiply to exactly 1 and a conversion there and back
is exact; any reference text parses or raises ValueError, and every spec's key parses back to it;
pips between two prices and the protective levels agree with the pip size exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

from hypothesis import example, given
from hypothesis import strategies as st

from eafix.contracts.indicator_specs import FUNCTIONS, IndicatorRef, IndicatorSpec, parse_reference
from eafix.contracts.primitives import Direction
from eafix.execution_engine.domain import average_price, pips_between, protective_levels
from eafix.instruments import DEFAULT_INSTRUMENTS, InstrumentError, Instruments, QuoteBook, Quoted
from service.property_strategies import fuzz_text, mutated, near_numbers

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
symbols = st.sampled_from(sorted(DEFAULT_INSTRUMENTS)) | st.from_regex(r"[A-Z]{6}", fullmatch=True)
field_values = (st.none() | st.booleans() | st.integers() | st.floats() | near_numbers | fuzz_text
                | st.decimals(allow_nan=True) | st.lists(st.integers(), max_size=2))
overrides = st.dictionaries(
    symbols | fuzz_text | st.integers(),
    st.dictionaries(st.sampled_from(["base", "quote", "pip_size", "contract_size", "min_lot", "lot_step", "max_lot",
                                     "price_precision", "other"]), field_values, max_size=4) | field_values,
    max_size=3)


@given(symbols | fuzz_text)
def test_any_symbol_is_an_instrument_or_instrument_error(symbol) -> None:
    try:
        instrument = DEFAULT_INSTRUMENTS[symbol]
    except InstrumentError as exc:
        assert repr(symbol) in str(exc)
        return
    assert instrument.symbol == symbol and instrument.base + instrument.quote == symbol


@given(overrides)
@example({"EURUSD": {"min_lot": "1e30", "lot_step": "1e-10"}})  # was decimal.InvalidOperation
@example({"EURUSD": {"pip_size": "1e-999999", "price_precision": 8}})
def test_any_override_table_or_instrument_error(table) -> None:
    try:
        result = DEFAULT_INSTRUMENTS.with_overrides(table)
    except InstrumentError as exc:
        assert str(exc)
        return
    assert isinstance(result, Instruments)
    for symbol in table:
        instrument = result[symbol]
        assert Fraction(instrument.min_lot) % Fraction(instrument.lot_step) == 0
        assert instrument.min_lot <= instrument.max_lot


@given(st.sampled_from(sorted(DEFAULT_INSTRUMENTS)), st.decimals(Decimal("-100000"), Decimal("100000"), places=1))
def test_pips_and_distances_convert_back_exactly(symbol, pips) -> None:
    instrument = DEFAULT_INSTRUMENTS[symbol]
    assert instrument.pips(instrument.distance(pips)) == pips
    assert Fraction(instrument.distance(pips)) == Fraction(pips) * Fraction(instrument.pip_size)


@given(st.sampled_from(sorted(DEFAULT_INSTRUMENTS)), st.decimals(Decimal("0.00001"), Decimal("100000"), places=12))
def test_a_rounded_price_is_on_the_grid_within_half_a_tick(symbol, price) -> None:
    instrument = DEFAULT_INSTRUMENTS[symbol]
    rounded = instrument.round_price(price)
    tick = Fraction(1, 10**instrument.price_precision)
    assert Fraction(rounded) % tick == 0
    assert abs(Fraction(rounded) - Fraction(price)) <= tick / 2


@given(st.sampled_from(["EURUSD", "USDJPY", "GBPUSD", "EURGBP"]),
       st.decimals(Decimal("0.5"), Decimal("200"), places=5), st.decimals(Decimal("0"), Decimal("0.05"), places=5),
       st.decimals(Decimal("-1000000"), Decimal("1000000"), places=2))
def test_a_rate_and_its_inverse_multiply_to_one(symbol, bid, spread, amount) -> None:
    book = QuoteBook()
    book.update(Quoted(symbol, T0, bid, bid + spread))
    base, quote = symbol[:3], symbol[3:]
    there, back = book.rate(base, quote), book.rate(quote, base)
    assert there is not None and back is not None
    assert Fraction(there[0]) / Fraction(there[1]) * Fraction(back[0]) / Fraction(back[1]) == 1
    assert Fraction(there[0]) / Fraction(there[1]) == (Fraction(bid) + Fraction(bid + spread)) / 2
    converted = book.convert(amount, base, quote)
    assert converted is not None and Fraction(converted) == Fraction(amount) * Fraction(there[0]) / Fraction(there[1])


@st.composite
def specs(draw: st.DrawFn) -> IndicatorRef:
    function = FUNCTIONS[draw(st.sampled_from(sorted(FUNCTIONS)))]
    values: list[float | int] = []
    for parameter in function.parameters:
        if parameter.integer:
            values.append(draw(st.integers(int(parameter.minimum), 100_000)))
        else:
            values.append(float(draw(st.decimals(Decimal("0.00000001"), Decimal("1000"), places=8))))
    if function.name == "macd" and values[0] >= values[1]:
        values[0], values[1] = min(values[:2]), max(values[:2]) + 1
    output = draw(st.sampled_from(function.outputs)) if function.outputs else None
    return IndicatorRef(IndicatorSpec(function.name, tuple(values)), output)


@given(specs())
def test_indicator_keys_parse_back_to_their_spec(ref) -> None:
    assert parse_reference(ref.key) == ref


@given(fuzz_text | mutated(specs().map(lambda r: r.key)) | st.integers() | st.none())
def test_any_reference_parses_or_raises_value_error(text) -> None:
    try:
        ref = parse_reference(text)
    except ValueError as exc:
        assert str(exc)
        return
    assert ref.spec.function in FUNCTIONS


prices = st.decimals(Decimal("0.001"), Decimal("100000"), places=3)


@given(st.sampled_from(sorted(DEFAULT_INSTRUMENTS)), st.sampled_from(list(Direction)), prices, prices)
def test_pips_between_prices(symbol, direction, open_price, close_price) -> None:
    instrument = DEFAULT_INSTRUMENTS[symbol]
    sign = 1 if direction == Direction.LONG else -1
    expected = sign * (Fraction(close_price) - Fraction(open_price)) / Fraction(instrument.pip_size)
    assert Fraction(pips_between(instrument, direction, open_price, close_price)) == expected


@given(st.sampled_from(sorted(DEFAULT_INSTRUMENTS)), st.sampled_from(list(Direction)),
       st.decimals(Decimal("10"), Decimal("1000"), places=2), st.decimals(Decimal("0.1"), Decimal("500"), places=1),
       st.decimals(Decimal("0.1"), Decimal("500"), places=1))
def test_protective_levels_lie_at_the_stop_and_target_distance(symbol, direction, open_price, sl, tp) -> None:
    instrument = DEFAULT_INSTRUMENTS[symbol]
    stop, target = protective_levels(instrument, direction, open_price, sl, tp)
    tick = Fraction(1, 10**instrument.price_precision)
    sign = 1 if direction == Direction.LONG else -1
    want_stop = Fraction(open_price) - sign * Fraction(sl) * Fraction(instrument.pip_size)
    want_target = Fraction(open_price) + sign * Fraction(tp) * Fraction(instrument.pip_size)
    assert abs(Fraction(stop) - want_stop) <= tick / 2 and abs(Fraction(target) - want_target) <= tick / 2


@given(st.lists(st.tuples(st.decimals(Decimal("0.01"), Decimal("100"), places=2), prices), min_size=1, max_size=5))
def test_average_price_is_the_volume_weighted_mean(fills) -> None:
    notional = sum(lots * price for lots, price in fills)
    lots = sum(lots for lots, _ in fills)
    average = average_price(notional, lots)
    exact = Fraction(notional) / Fraction(lots)
    assert abs(Fraction(average) - exact) <= Fraction(1, 2 * 10**8)
    assert min(p for _, p in fills) <= average <= max(p for _, p in fills)
