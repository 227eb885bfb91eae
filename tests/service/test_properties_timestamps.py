"""Property tests of the one timestamp parser every edge uses (`eafix.timestamps.parse_timestamp`) and
the wire form it reads back (`eafix.contracts.primitives.format_timestamp`).

Covered: any value (text, bytes, numbers, containers, datetimes), with every option, gives an aware
UTC datetime or ValueError naming the value, never another exception; RFC 3339 with any offset, the
wire form, MT4's `YYYY.MM.DD HH:MM:SS` and epoch seconds round-trip to the same instant (to the
microsecond); a time whose UTC instant lies outside the representable years is a ValueError.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eafix.contracts.primitives import format_timestamp
from eafix.timestamps import parse_timestamp
from service.property_strategies import fuzz_text, mutated

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
def mt4(value: datetime) -> str:
    """MT4's TimeToString form, YYYY.MM.DD HH:MM:SS (written out: strftime's %Y drops leading zeros)."""
    return f"{value.year:04d}.{value.month:02d}.{value.day:02d} {value.hour:02d}:{value.minute:02d}:{value.second:02d}"


options = st.fixed_dictionaries({"naive_utc": st.booleans(), "epoch_text": st.booleans()})
offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
aware = st.datetimes(timezones=offsets)
anything = st.one_of(
    fuzz_text, st.binary(max_size=40), st.none(), st.booleans(), st.integers(), st.floats(),
    st.decimals(), st.lists(st.integers(), max_size=3), st.datetimes(), aware,
    mutated(aware.map(lambda d: d.isoformat())), mutated(st.datetimes().map(lambda d: mt4(d))),
)


def _utc_or_none(value: datetime) -> datetime | None:
    """The UTC instant of an aware datetime, worked out in whole minutes (None when it falls outside
    years 1-9999)."""
    offset = value.utcoffset()
    assert offset is not None
    naive = value.replace(tzinfo=None)
    try:
        return (naive - offset).replace(tzinfo=UTC)
    except OverflowError:
        return None


@given(anything, options)
def test_anything_parses_to_utc_or_raises_value_error(value, opts) -> None:
    try:
        parsed = parse_timestamp(value, **opts)
    except ValueError as exc:
        assert str(exc)
        return
    assert parsed.utcoffset() == timedelta(0)


@given(aware)
def test_rfc3339_with_any_offset_round_trips(value) -> None:
    expected = _utc_or_none(value)
    if expected is None:  # e.g. 0001-01-01T00:00:00+01:00 is in year 0 at UTC
        with pytest.raises(ValueError, match="out of range"):
            parse_timestamp(value.isoformat())
        return
    assert parse_timestamp(value.isoformat()) == expected
    assert parse_timestamp(format_timestamp(expected)) == expected


@given(st.datetimes())
def test_mt4_and_naive_forms_are_utc_when_allowed(value) -> None:
    utc = value.replace(tzinfo=UTC)
    assert parse_timestamp(mt4(value), naive_utc=True) == utc.replace(microsecond=0)
    assert parse_timestamp(value.isoformat(), naive_utc=True) == utc
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_timestamp(value.isoformat())


@given(st.integers(0, 253_402_300_799 * 10**6))  # up to 9999-12-31T23:59:59.999999Z
def test_epoch_seconds_round_trip_to_the_microsecond(micros) -> None:
    seconds = Decimal(micros).scaleb(-6)
    expected = EPOCH + timedelta(microseconds=micros)
    assert parse_timestamp(seconds) == expected
    if micros < 10**16:  # epoch text has at most 10 integer digits
        assert parse_timestamp(format(seconds, "f"), epoch_text=True) == expected
