"""Property tests of the bus message parsers: the envelope every stage decodes
(`eafix.contracts.envelope.parse_envelope`, `eafix.contracts.messaging.decode`) and gui-gateway's live
feed reader (`eafix.gui_gateway.feed_reader.feed_message`).

Covered: any text or bytes, any JSON document and a valid envelope with one character mutated give an
Envelope or pydantic's ValidationError (what the stage turns into a dead letter), never another
exception; a price tick or bar wrapped, written as the wire JSON and parsed gives the same envelope
with the exact Decimal prices and microsecond times; any stream entry fields give a feed message or
None.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from eafix.contracts import Bar, PriceTick
from eafix.contracts.envelope import make_envelope, parse_envelope
from eafix.contracts.messaging import decode, document
from eafix.gui_gateway.feed_reader import feed_message
from service.property_strategies import fuzz_bytes, fuzz_text, mutated

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
prices = st.decimals(Decimal("0.00000001"), Decimal("999999999999"), places=8)
times = st.integers(0, 10**13).map(lambda us: T0 + timedelta(microseconds=us))
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | fuzz_text,
                           lambda inner: st.lists(inner, max_size=2) | st.dictionaries(fuzz_text, inner, max_size=2),
                           max_leaves=6)


@st.composite
def ticks(draw: st.DrawFn) -> PriceTick:
    bid = draw(prices)
    ask = draw(prices.filter(lambda p: p >= bid)) if bid < Decimal("999999999999") else bid
    return PriceTick(symbol=draw(st.from_regex(r"[A-Z]{6}", fullmatch=True)), ts=draw(times), bid=bid, ask=ask,
                     volume=draw(st.none() | st.integers(0, 10**12)))


@st.composite
def bars(draw: st.DrawFn) -> Bar:
    values = sorted(draw(st.lists(prices, min_size=4, max_size=4)))
    low, a, b, high = values
    ts_open = draw(times)
    return Bar(symbol="EURUSD", timeframe="H1", ts_open=ts_open, ts_close=ts_open + timedelta(hours=1), open=a,
               high=high, low=low, close=b, volume=draw(st.integers(0, 10**9)))


def wire(event) -> str:
    envelope = make_envelope(event, "data-ingestor", T0, event_id=UUID(int=7))
    return json.dumps(document(envelope))


@given(fuzz_text | fuzz_bytes | mutated(ticks().map(wire)) | mutated(bars().map(wire)))
@example(b"[" * 100_000)
def test_any_message_text_is_an_envelope_or_validation_error(raw) -> None:
    try:
        parse_envelope(raw)
    except ValidationError as exc:
        assert exc.errors()


@given(json_values | st.builds(lambda doc, key, value: {**doc, key: value}, ticks().map(wire).map(json.loads),
                               st.sampled_from(["event_type", "schema_version", "data", "ts_event", "event_id",
                                                "correlation_id", "causation_id", "producer"]), json_values))
def test_any_decoded_message_is_an_envelope_or_validation_error(message) -> None:
    try:
        decode(message) if isinstance(message, dict) else parse_envelope(message)
    except ValidationError as exc:
        assert exc.errors()


@given(ticks() | bars())
def test_events_round_trip_through_the_wire_form(event) -> None:
    envelope = make_envelope(event, "data-ingestor", T0, event_id=UUID(int=7))
    parsed = parse_envelope(wire(event))
    assert parsed == envelope
    assert parsed.data == event
    fields = ("bid", "ask", "ts") if isinstance(event, PriceTick) else ("open", "high", "low", "close", "ts_close")
    assert all(getattr(parsed.data, f) == getattr(event, f) for f in fields)


@given(st.dictionaries(st.sampled_from([b"envelope", "envelope", b"other"]), fuzz_bytes | fuzz_text
                       | ticks().map(wire) | ticks().map(wire).map(str.encode) | st.integers(), max_size=3))
@example({b"envelope": b"[" * 100_000})  # nested past the JSON parser's depth: was a RecursionError
def test_any_stream_entry_gives_a_feed_message_or_none(fields) -> None:
    message = feed_message("eafix.price.tick", fields)
    assert message is None or (message["topic"] == "eafix.price.tick" and isinstance(message["data"], dict))
