"""data-ingestor normalization rules at their boundaries (TickNormalizer, pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from eafix.data_ingestor.domain import IngestConfig, Reason, TickNormalizer
from eafix.runtime.clock import TestClock

NOW = datetime(2025, 1, 6, 12, 0, 30, tzinfo=UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def raw(symbol: str = "EURUSD", bid: object = "1.10000", ask: object = "1.10010", ts: object = None,
        **extra: object) -> dict:
    return {"symbol": symbol, "ts": iso(NOW - timedelta(seconds=1)) if ts is None else ts, "bid": bid, "ask": ask,
            **extra}


@pytest.fixture
def clock() -> TestClock:
    return TestClock(NOW)


@pytest.fixture
def norm(clock: TestClock) -> TickNormalizer:
    return TickNormalizer(clock)


def one(norm: TickNormalizer, tick: dict, **kw) -> tuple[str, object]:
    """('accepted', PriceTick) | ('duplicate', None) | (reason, detail) for a single tick (committed)."""
    result = norm.ingest([tick], **kw)
    if result.accepted:
        return "accepted", result.accepted[0]
    if result.duplicates:
        return "duplicate", None
    return result.rejected[0].reason.value, result.rejected[0].detail


# --- spread bounds (pip sizes: test_instruments) --------------------------------------------------------------------


@pytest.mark.parametrize(("symbol", "bid", "ask", "outcome"), [
    ("EURUSD", "1.10000", "1.10001", "accepted"),  # 0.1 pip: exactly the minimum
    ("EURUSD", "1.10000", "1.100009", "spread_below_min"),  # 0.09 pip
    ("EURUSD", "1.10000", "1.11000", "accepted"),  # 100 pips: exactly the maximum
    ("EURUSD", "1.10000", "1.110001", "spread_above_max"),  # 100.01 pips
    ("USDJPY", "150.000", "150.001", "accepted"),  # JPY pip 0.01: 0.1 pip
    ("USDJPY", "150.000", "150.0009", "spread_below_min"),
    ("USDJPY", "150.000", "151.000", "accepted"),  # 100 JPY pips (would be 10,000 pips at 0.0001)
    ("USDJPY", "150.000", "151.001", "spread_above_max"),
    ("XAUUSD", "2641.35", "2641.62", "accepted"),  # 27 pips at 0.01
    ("XAUUSD", "2641.00", "2642.00", "accepted"),  # 100 pips
    ("XAUUSD", "2641.00", "2642.01", "spread_above_max"),
    ("XAGUSD", "30.100", "30.200", "accepted"),  # 100 pips at 0.001
    ("XAGUSD", "30.100", "30.2001", "spread_above_max"),
])
def test_spread_bounds_are_inclusive_and_use_the_pip_size(norm, symbol, bid, ask, outcome):
    status, detail = one(norm, raw(symbol, bid, ask))
    assert status == outcome, detail


def test_configurable_spread_bounds(clock):
    norm = TickNormalizer(clock, IngestConfig(min_spread_pips=Decimal("0"), max_spread_pips=Decimal("5")))
    assert one(norm, raw(bid="1.10000", ask="1.10000"))[0] == "accepted"  # ask == bid allowed at min 0
    assert one(norm, raw(bid="1.10000", ask="1.10050", ts=iso(NOW)))[0] == "accepted"  # 5 pips
    assert one(norm, raw(bid="1.10000", ask="1.100501", ts=iso(NOW)))[0] == "spread_above_max"


# --- symbols ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("symbol", "outcome"), [
    ("EURUSD", "EURUSD"), ("eurusd", "EURUSD"), (" gbpJpy ", "GBPJPY"), ("XAUUSD", "XAUUSD"), ("xagusd", "XAGUSD"),
    ("EURUS", None), ("EURUSDX", None), ("EUR/USD", None), ("EURUS1", None), ("", None), (123456, None), (None, None),
])
def test_symbols_are_upper_cased_six_letters(norm, symbol, outcome):
    bid, ask = ("150.000", "150.010") if str(outcome).endswith("JPY") else ("1.10000", "1.10010")
    if outcome and outcome.startswith("XA"):
        bid, ask = "30.100", "30.110"
    status, tick = one(norm, raw(symbol, bid, ask))
    if outcome is None:
        assert status == Reason.SYMBOL_INVALID
    else:
        assert status == "accepted" and tick.symbol == outcome


# --- prices, volume --------------------------------------------------------------------------------


@pytest.mark.parametrize(("bid", "ask", "reason"), [
    ("0", "1.10010", "bid_invalid"),
    ("-1.1", "1.10010", "bid_invalid"),
    ("abc", "1.10010", "bid_invalid"),
    (None, "1.10010", "bid_invalid"),
    ("NaN", "1.10010", "bid_invalid"),
    ("1.100000001", "1.10010", "bid_invalid"),  # 9 decimals: more than the contract's 8
    (True, "1.10010", "bid_invalid"),
    ("1.10000", "Infinity", "ask_invalid"),
    ("1.10000", "1.09990", "ask_below_bid"),
    ("1.10000", "1.10000", "spread_below_min"),  # ask == bid passes ask >= bid, not the 0.1 pip minimum
])
def test_bad_prices(norm, bid, ask, reason):
    assert one(norm, raw(bid=bid, ask=ask))[0] == reason


def test_json_numbers_and_decimal_text_are_kept_exactly(norm):
    status, tick = one(norm, raw(bid=1.09435, ask=1.09438))
    assert status == "accepted"
    assert (str(tick.bid), str(tick.ask)) == ("1.09435", "1.09438")
    status, tick = one(norm, raw(bid=" 1.094400 ", ask="1.094430", ts=iso(NOW)))
    assert status == "accepted" and tick.model_dump(mode="json")["bid"] == "1.094400"


@pytest.mark.parametrize(("volume", "expected"), [(None, None), (0, 0), (25, 25), (-1, None), ("12", 12), ("", None),
                                                  (3.0, 3)])
def test_volume(norm, volume, expected):
    status, tick = one(norm, raw(volume=volume))
    assert status == "accepted" and tick.volume == expected


@pytest.mark.parametrize("volume", [-2, 1.5, "x", True])
def test_bad_volume(norm, volume):
    assert one(norm, raw(volume=volume))[0] == "volume_invalid"


# --- time ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("age", "outcome"), [
    (timedelta(seconds=30), "accepted"),
    (timedelta(seconds=30, milliseconds=1), "stale"),
    (timedelta(seconds=29, microseconds=999999), "accepted"),
    (timedelta(seconds=-5), "accepted"),  # 5 s ahead of our clock: tolerated
    (timedelta(seconds=-5, milliseconds=-1), "in_future"),
])
def test_age_against_the_injected_clock(clock, age, outcome):
    norm = TickNormalizer(clock)
    status, detail = one(norm, raw(ts=iso(NOW - age)))
    assert status == outcome, detail
    if outcome == "stale":
        assert detail == "tick is 30.001 s old (max 30 s)"


def test_age_follows_the_clock_not_the_wall(clock):
    norm = TickNormalizer(clock)
    tick = raw(ts="2025-01-06T12:00:00Z")
    assert norm.evaluate([tick]).accepted
    clock.advance(0.001)  # 30.001 s after the tick
    assert norm.evaluate([tick]).rejected[0].reason is Reason.STALE


def test_max_age_is_configurable(clock):
    norm = TickNormalizer(clock, IngestConfig(max_price_age_seconds=5))
    assert one(norm, raw(ts=iso(NOW - timedelta(seconds=6))))[0] == "stale"




def test_missing_or_naive_ts_is_rejected_with_a_reason(norm):
    assert one(norm, {"symbol": "EURUSD", "bid": "1.1", "ask": "1.1001"})[0] == "ts_invalid"
    status, detail = one(norm, raw(ts="2025-01-06T12:00:20"))
    assert status == "ts_invalid" and "UTC offset" in detail
    assert one(norm, raw(ts="2025-01-06T12:00:20"), naive_utc=True)[0] == "accepted"


def test_timestamp_alias(norm):
    tick = raw()
    tick["timestamp"] = tick.pop("ts")
    assert one(norm, tick)[0] == "accepted"


# --- duplicates and order --------------------------------------------------------------------------


def test_duplicates_are_dropped_within_and_across_batches(norm):
    a = raw(ts="2025-01-06T12:00:10Z", bid="1.10000", ask="1.10010")
    same_prices_other_text = raw(ts="2025-01-06T12:00:10.000Z", bid="1.1", ask="1.1001")
    b = raw(ts="2025-01-06T12:00:10Z", bid="1.10001", ask="1.10011")  # same time, other prices: a new quote
    result = norm.ingest([a, same_prices_other_text, b, a])
    assert result.accepted_indices == [0, 2]
    assert result.duplicates == [1, 3]
    assert result.rejected == []
    again = norm.ingest([a, b])
    assert again.accepted == [] and again.duplicates == [0, 1] and again.rejected == []


def test_out_of_order_is_rejected_per_symbol(norm):
    result = norm.ingest([
        raw(ts="2025-01-06T12:00:10Z"),
        raw(ts="2025-01-06T12:00:09Z", bid="1.10002", ask="1.10012"),  # older than the previous EURUSD
        raw("USDJPY", "150.000", "150.010", ts="2025-01-06T12:00:05Z"),  # other symbol: its own order
    ])
    assert result.accepted_indices == [0, 2]
    assert [(r.index, r.reason) for r in result.rejected] == [(1, Reason.OUT_OF_ORDER)]
    assert "2025-01-06T12:00:10Z" in result.rejected[0].detail
    later = norm.ingest([raw(ts="2025-01-06T12:00:09.5Z", bid="1.10003", ask="1.10013")])
    assert later.rejected[0].reason is Reason.OUT_OF_ORDER  # committed state remembers the last tick
    # a replayed (duplicate) old tick is reported as a duplicate, not as out of order
    replay = norm.ingest([raw(ts="2025-01-06T12:00:10Z")])
    assert replay.duplicates == [0] and replay.rejected == []


def test_evaluate_changes_nothing_until_commit(norm):
    batch = [raw(ts="2025-01-06T12:00:10Z")]
    first = norm.evaluate(batch)
    assert len(first.accepted) == 1
    assert norm.evaluate(batch).accepted  # not committed: not a duplicate yet
    assert norm.latest() == {}
    norm.commit(first)
    norm.commit(first)  # idempotent
    assert norm.evaluate(batch).duplicates == [0]
    assert norm.latest()["EURUSD"] == first.accepted[0]


def test_rejections_report_index_reason_and_detail(norm):
    result = norm.ingest([raw(), "not a tick", raw(symbol="EURUSDX"), raw(bid="1.1", ask="1.2")])
    assert result.accepted_indices == [0]
    assert [r.as_dict()["index"] for r in result.rejected] == [1, 2, 3]
    assert [r.as_dict()["reason"] for r in result.rejected] == ["not_an_object", "symbol_invalid", "spread_above_max"]
    assert "1000 pips is above the maximum 100" in result.rejected[2].detail


def test_dedupe_memory_is_bounded(clock):
    norm = TickNormalizer(clock, IngestConfig(dedupe_capacity=3))
    for i in range(6):
        norm.ingest([raw(ts=iso(NOW - timedelta(seconds=10 - i)))])
    assert len(norm._symbols["EURUSD"].keys) == 3
    clock.advance(60)  # every key is now beyond the age horizon
    norm.ingest([raw(ts=iso(clock.now()))])
    assert len(norm._symbols["EURUSD"].keys) == 1


def test_latest_is_the_last_accepted_tick_per_symbol(norm):
    norm.ingest([raw(ts="2025-01-06T12:00:10Z", bid="1.10000", ask="1.10010"),
                 raw(ts="2025-01-06T12:00:11Z", bid="1.10020", ask="1.10030"),
                 raw("USDJPY", "150.000", "150.010", ts="2025-01-06T12:00:12Z")])
    latest = norm.latest()
    assert list(latest) == ["EURUSD", "USDJPY"]
    assert str(latest["EURUSD"].bid) == "1.10020"
    assert norm.last_tick_time("EURUSD") == datetime(2025, 1, 6, 12, 0, 11, tzinfo=UTC)


def test_bad_config_is_refused():
    with pytest.raises(ValueError):
        IngestConfig(min_spread_pips=Decimal("5"), max_spread_pips=Decimal("1"))
    with pytest.raises(ValueError):
        IngestConfig(max_price_age_seconds=0)
