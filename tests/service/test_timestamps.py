"""The one parser of outside times (eafix.timestamps): feeds, the MT4 bridge and backtest files."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eafix.timestamps import parse_timestamp


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-01-06T12:00:00Z", datetime(2025, 1, 6, 12, 0, tzinfo=UTC)),
    ("2025-01-06T13:00:00.5+01:00", datetime(2025, 1, 6, 12, 0, 0, 500000, tzinfo=UTC)),
    ("2025-01-06T07:00:00-05:00", datetime(2025, 1, 6, 12, 0, tzinfo=UTC)),
    (1736164800, datetime(2025, 1, 6, 12, 0, tzinfo=UTC)),
    (1736164800.25, datetime(2025, 1, 6, 12, 0, 0, 250000, tzinfo=UTC)),
])
def test_timestamps(text, expected):
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize("text", ["2025-01-06T12:00:00", "2025.01.06 12:00:00", "2025-02-30T12:00:00Z",
                                  "2025-01-06T12:00:00.1234567Z", "yesterday", "1736164800000", True, [2025],
                                  1736164800000, -1, float("nan")])
def test_bad_timestamps_by_default(text):
    with pytest.raises(ValueError):
        parse_timestamp(text)


def test_naive_timestamps_are_utc_only_for_the_bridge():
    assert parse_timestamp("2025.01.06 12:00:00", naive_utc=True) == datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
    assert parse_timestamp("2025.01.06 12:00", naive_utc=True) == datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
    assert parse_timestamp("2025-01-06 12:00:00", naive_utc=True) == datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
    assert parse_timestamp("1736164800.5", naive_utc=True) == datetime(2025, 1, 6, 12, 0, 0, 500000, tzinfo=UTC)


def test_epoch_text_takes_numeric_text_but_never_a_time_without_offset():
    assert parse_timestamp("1736164800", epoch_text=True) == datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
    assert parse_timestamp("2025-01-06T12:00:00Z", epoch_text=True) == datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="has no UTC offset"):
        parse_timestamp("2025-01-06 12:00:00", epoch_text=True)
    with pytest.raises(ValueError, match="is not an RFC 3339 time"):
        parse_timestamp("2025.01.06 12:00:00", epoch_text=True)  # MT4's format only from the bridge
    with pytest.raises(ValueError, match="or epoch seconds"):
        parse_timestamp("1736164800.1234567", epoch_text=True)  # finer than a microsecond
