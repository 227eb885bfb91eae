"""calendar-ingestor's pure domain at its boundaries: intake (aliases, DST, impacts, rejects), identity
(cal8 suffixes, cal5 checksum, CHF), proximity and lifecycle edges, priority weight, derived events,
blackout windows and the consumers' gate. Expected values are worked out by hand in the comments."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eafix.calendar_ingestor.blackout import GateState, WindowConfig, gate, windows
from eafix.calendar_ingestor.book import CalendarBook
from eafix.calendar_ingestor.derived import anticipations, equity_opens
from eafix.calendar_ingestor.entries import EventType, Impact, Kind
from eafix.calendar_ingestor.identity import cal5, cal5_valid, event_type, signal_type
from eafix.calendar_ingestor.intake import IntakeError, read_calendar_csv
from eafix.calendar_ingestor.timing import Lifecycle, Proximity, lifecycle, path, priority_weight, proximity
from eafix.contracts.calendar import CalendarGate, CalendarSignal

FF_HEADER = "Title,Country,Date,Time,Impact,Forecast,Previous,URL\n"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def one(text: str, zone: str = "America/New_York"):
    intake = read_calendar_csv(text, zone)
    assert intake.ok, intake.rejected
    return intake.rows


# --- intake: time zones -------------------------------------------------------------------------

@pytest.mark.parametrize(("date", "clock", "expected"), [
    ("03-07-2025", "8:30am", utc(2025, 3, 7, 13, 30)),   # EST (UTC-5), the Friday before the change
    ("03-09-2025", "8:30am", utc(2025, 3, 9, 12, 30)),   # DST starts 2025-03-09 02:00 -> EDT (UTC-4)
    ("03-10-2025", "8:30am", utc(2025, 3, 10, 12, 30)),  # the example
    ("11-01-2025", "8:30am", utc(2025, 11, 1, 12, 30)),  # still EDT
    ("11-03-2025", "8:30am", utc(2025, 11, 3, 13, 30)),  # DST ended 2025-11-02 02:00 -> EST
    ("11-02-2025", "1:30am", utc(2025, 11, 2, 5, 30)),   # repeated hour: the first 01:30 (EDT)
])
def test_new_york_times_convert_to_utc_across_both_dst_changes(date, clock, expected):
    (row,) = one(FF_HEADER + f"Non-Farm Employment Change,USD,{date},{clock},High,160K,143K,https://x\n")
    assert row.event_time == expected


@pytest.mark.parametrize(("day", "expected_hour"), [
    ("2025-03-28", 9),  # GMT (UTC+0)
    ("2025-03-31", 8),  # BST from 2025-03-30 01:00 UTC
    ("2025-10-24", 8),  # still BST
    ("2025-10-27", 9),  # GMT from 2025-10-26
])
def test_london_times_convert_to_utc_across_both_dst_changes(day, expected_hour):
    (row,) = one(f"event,currency,date,time,importance\nCPI y/y,GBP,{day},09:00,H\n", "Europe/London")
    assert row.event_time == datetime.fromisoformat(day).replace(hour=expected_hour, tzinfo=UTC)


def test_a_time_in_the_spring_gap_is_rejected_with_its_line():
    intake = read_calendar_csv(FF_HEADER + "A,USD,03-09-2025,2:30am,High,,,\n")
    assert not intake.ok
    assert intake.rejected[0].line == 2 and "does not exist in America/New_York" in intake.rejected[0].reason


def test_one_datetime_column_with_offset_or_naive():
    rows = one("name,country,datetime,volatility\n"
               "GDP q/q,JPY,2025-05-16T08:50:00+09:00,3\n"   # offset honoured: 23:50Z the day before
               "Retail Sales,USD,2025-05-15T08:30:00,2\n")    # naive: New York (EDT)
    assert [r.event_time for r in rows] == [utc(2025, 5, 15, 23, 50), utc(2025, 5, 15, 12, 30)]
    assert [r.impact for r in rows] == [Impact.HIGH, Impact.MEDIUM]


@pytest.mark.parametrize(("raw", "impact"), [
    ("High", Impact.HIGH), ("H", Impact.HIGH), ("3", Impact.HIGH), ("red", Impact.HIGH),
    ("Medium", Impact.MEDIUM), ("med", Impact.MEDIUM), ("2", Impact.MEDIUM), ("Orange", Impact.MEDIUM),
    ("Low", Impact.LOW), ("1", Impact.LOW), ("yellow", Impact.LOW), ("", Impact.MEDIUM),
])
def test_impact_aliases(raw, impact):
    (row,) = one(FF_HEADER + f"Event,EUR,01-10-2025,4:00am,{raw},,,\n")
    assert row.impact is impact


def test_every_bad_row_is_reported_and_nothing_is_taken():
    text = (FF_HEADER
            + "Good one,USD,01-10-2025,8:30am,High,,,\n"       # line 2: fine
            + ",USD,01-10-2025,8:30am,High,,,\n"               # line 3: no title
            + "Bad currency,US,01-10-2025,8:30am,High,,,\n"    # line 4
            + "Bad date,USD,2025-31-01,8:30am,High,,,\n"       # line 5
            + "Bad impact,USD,01-10-2025,8:30am,purple,,,\n"   # line 6
            + "Bank Holiday,GBP,01-10-2025,All Day,Holiday,,,\n"  # line 7: skipped, not rejected
            + "Good one,USD,01-10-2025,8:30am,High,,,\n")      # line 8: duplicate of line 2
    intake = read_calendar_csv(text)
    assert not intake.ok
    assert [(p.line, p.reason.split(" ")[0]) for p in intake.rejected] == [
        (3, "missing"), (4, "currency"), (5, "date"), (6, "unknown")]
    assert [(p.line, p.reason) for p in intake.skipped] == [
        (7, "impact 'Holiday' is not a market event"), (8, "duplicate of line 2")]


def test_a_file_without_title_or_date_columns_is_refused_as_a_whole():
    with pytest.raises(IntakeError, match="no column for title, date"):
        read_calendar_csv("currency,impact\nUSD,High\n")
    with pytest.raises(IntakeError, match="unknown time zone"):
        read_calendar_csv(FF_HEADER, "Mars/Olympus")


def test_quality_counts_the_fields_the_row_carries():
    rows = one(FF_HEADER
               + "Non-Farm Employment Change,USD,01-10-2025,8:30am,High,160K,143K,https://x\n"  # 100+15+5+10 = 130
               + "PPI m/m,USD,01-10-2025,8:30am,,,,\n")  # title+ccy+date+time = 80, no impact bonus
    assert [r.quality for r in rows] == [100, round(100 * 80 / 130)]


# --- identity ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("currency", "impact", "code"), [
    ("USD", Impact.MEDIUM, "10124"),  # 1, 01, 2 -> (1+1+2) mod 10 = 4
    ("USD", Impact.HIGH, "10135"),    # 1+1+3 = 5
    ("GBP", Impact.HIGH, "20237"),    # 2+2+3 = 7
    ("JPY", Impact.MEDIUM, "30126"),  # 3+1+2 = 6
    ("NZD", Impact.HIGH, "30339"),    # 3+3+3 = 9
    ("AUD", Impact.HIGH, "30238"),    # 3+2+3 = 8
    ("XYZ", Impact.HIGH, "99931"),    # other region 9, country 99, 3: 9+99+3 = 111 -> 1
    ("CHF", Impact.HIGH, "00000"),
    ("USD", Impact.LOW, "00000"),
])
def test_cal5_codes_and_checksum(currency, impact, code):
    assert cal5(currency, impact) == code
    assert cal5_valid(code)
    assert not cal5_valid(code[:4] + str((int(code[4]) + 1) % 10))


def test_chf_is_uncategorised_but_kept():
    (row,) = one(FF_HEADER + "CPI m/m,CHF,01-10-2025,2:30am,High,,,\n")
    entry = CalendarBook().entry_for(row, "t")
    assert (entry.cal5, entry.signal_type, entry.drives_reentry) == ("00000", "ECO_UNCAT", False)
    assert signal_type("USD", Impact.MEDIUM) == "ECO_MED_USD"


@pytest.mark.parametrize(("title", "kind"), [
    ("Core CPI m/m", EventType.CPI), ("Consumer Price Index", EventType.CPI),
    ("Non-Farm Employment Change", EventType.NFP), ("Unemployment Rate", EventType.NFP),
    ("ISM Manufacturing PMI", EventType.PMI),
    ("Federal Funds Rate", EventType.RATE), ("Prelim GDP q/q", EventType.GDP),
    ("Retail Sales m/m", EventType.DEFAULT),
])
def test_event_type_from_title(title, kind):
    assert event_type(title) is kind


def test_cal8_suffix_tells_apart_events_of_one_minute_and_survives_reimport():
    text = (FF_HEADER + "CPI m/m,USD,01-15-2025,8:30am,High,,,\n" + "Core CPI m/m,USD,01-15-2025,8:30am,High,,,\n"
            + "Empire State,USD,01-15-2025,8:30am,Low,,,\n" + "PPI,EUR,01-15-2025,8:30am,Medium,,,\n")
    book = CalendarBook()
    merged = book.merge(one(text), "week3.csv")
    assert [e.cal8 for e in merged.new] == ["CAL8-20250115-1330-USD-001", "CAL8-20250115-1330-USD-002",
                                           "CAL8-20250115-1330-USD-003", "CAL8-20250115-1330-EUR-001"]
    again = book.merge(one(text.replace("Core CPI m/m,USD,01-15-2025,8:30am,High,,,",
                                        "Core CPI m/m,USD,01-15-2025,8:30am,High,0.3%,,")), "week3b.csv")
    assert (len(again.new), [e.cal8 for e in again.updated], again.unchanged) == (0, ["CAL8-20250115-1330-USD-002"], 3)
    assert book.get("CAL8-20250115-1330-USD-002").forecast == "0.3%"


# --- proximity, lifecycle, weight ------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "minutes", "bucket"), [
    (EventType.CPI, 0, Proximity.IM), (EventType.CPI, 20, Proximity.IM), (EventType.CPI, 20.5, Proximity.SH),
    (EventType.CPI, 90, Proximity.SH), (EventType.CPI, 91, Proximity.LG), (EventType.CPI, 300, Proximity.LG),
    (EventType.CPI, 301, Proximity.EX), (EventType.CPI, -45, Proximity.CD), (EventType.CPI, -45.5, None),
    (EventType.NFP, 30, Proximity.IM), (EventType.NFP, 31, Proximity.SH), (EventType.NFP, 120, Proximity.SH),
    (EventType.NFP, 360, Proximity.LG), (EventType.NFP, 361, Proximity.EX), (EventType.NFP, -60, Proximity.CD),
    (EventType.PMI, 10, Proximity.IM), (EventType.PMI, 11, Proximity.SH), (EventType.PMI, 45, Proximity.SH),
    (EventType.PMI, 180, Proximity.LG), (EventType.PMI, 181, Proximity.EX), (EventType.PMI, -31, None),
    (EventType.RATE, 15, Proximity.IM), (EventType.RATE, 16, Proximity.SH), (EventType.GDP, 240, Proximity.LG),
    (EventType.DEFAULT, 241, Proximity.EX), (EventType.DEFAULT, 100_000, Proximity.EX),
    (EventType.DEFAULT, -30, Proximity.CD),
])
def test_proximity_buckets_at_their_edges(kind, minutes, bucket):
    assert proximity(kind, minutes) is bucket


@pytest.mark.parametrize(("minutes", "state"), [
    (481, Lifecycle.SCHEDULED), (480, Lifecycle.ANTICIPATION_8HR), (61, Lifecycle.ANTICIPATION_8HR),
    (60, Lifecycle.ANTICIPATION_1HR), (16, Lifecycle.ANTICIPATION_1HR), (15, Lifecycle.ACTIVE),
    (-15, Lifecycle.ACTIVE), (-16, Lifecycle.COOLDOWN), (-60, Lifecycle.COOLDOWN), (-61, Lifecycle.EXPIRED),
])
def test_nfp_lifecycle_edges(minutes, state):
    assert lifecycle(EventType.NFP, minutes) is state  # NFP cooldown 60 min


def test_lifecycle_is_walked_one_step_at_a_time():
    assert path(Lifecycle.SCHEDULED, Lifecycle.ACTIVE) == [
        Lifecycle.ANTICIPATION_8HR, Lifecycle.ANTICIPATION_1HR, Lifecycle.ACTIVE]
    assert path(None, Lifecycle.SCHEDULED) == [Lifecycle.SCHEDULED]
    assert path(Lifecycle.COOLDOWN, Lifecycle.ACTIVE) == []
    book = CalendarBook()
    book.merge(one(FF_HEADER + "CPI m/m,USD,01-15-2025,8:30am,High,,,\n"), "t")
    first = book.advance(utc(2025, 1, 15, 13, 20))  # 10 min before: SCHEDULED..ACTIVE in four steps
    assert [(t.previous, t.state) for t in first] == [
        (None, Lifecycle.SCHEDULED), (Lifecycle.SCHEDULED, Lifecycle.ANTICIPATION_8HR),
        (Lifecycle.ANTICIPATION_8HR, Lifecycle.ANTICIPATION_1HR), (Lifecycle.ANTICIPATION_1HR, Lifecycle.ACTIVE)]
    assert book.advance(utc(2025, 1, 15, 13, 25)) == []


@pytest.mark.parametrize(("impact", "currency", "bucket", "weight"), [
    ("High", "USD", Proximity.IM, 12), ("High", "USD", Proximity.CD, 0), ("Medium", "EUR", Proximity.SH, 6),
    ("Medium", "EUR", Proximity.EX, 2), ("High", "CHF", Proximity.IM, 4), ("Low", "USD", Proximity.LG, 2),
])
def test_priority_weight(impact, currency, bucket, weight):
    (row,) = one(FF_HEADER + f"X,{currency},01-15-2025,8:30am,{impact},,,\n")
    assert priority_weight(CalendarBook().entry_for(row, "t"), bucket) == weight


def test_symbol_proximity_prefers_cooldown_and_skips_chf():
    book = CalendarBook()
    book.merge(one(FF_HEADER + "CPI m/m,USD,01-15-2025,8:30am,High,,,\n"
                   + "SNB Rate,CHF,01-15-2025,9:00am,High,,,\n" + "GDP,EUR,01-15-2025,10:00am,Medium,,,\n"), "t")
    # 13:30Z USD CPI, 14:00Z CHF (ignored), 15:00Z EUR GDP (DEFAULT buckets)
    assert book.proximity(("EUR", "USD"), utc(2025, 1, 15, 13, 0))[0] is Proximity.SH  # CPI 30 min ahead
    assert book.proximity(("EUR", "USD"), utc(2025, 1, 15, 14, 0))[0] is Proximity.CD  # CPI 30 min ago (CD 45)
    assert book.proximity(("EUR", "USD"), utc(2025, 1, 15, 14, 15))[0] is Proximity.CD  # 45 min: last CD minute
    assert book.proximity(("EUR", "USD"), utc(2025, 1, 15, 14, 16))[0] is Proximity.SH  # GDP 44 min ahead
    assert book.proximity(("USD", "CHF"), utc(2025, 1, 15, 14, 16)) == (None, None)


# --- derived -------------------------------------------------------------------------------------------

def test_anticipations_only_for_high_events():
    rows = one(FF_HEADER + "CPI m/m,USD,01-15-2025,8:30am,High,,,\n" + "PPI,USD,01-16-2025,8:30am,Medium,,,\n")
    book = CalendarBook()
    high, medium = book.merge(rows, "t").new
    ants = anticipations(high)
    assert [(a.event_time, a.signal_type, a.kind) for a in ants] == [
        (utc(2025, 1, 15, 5, 30), "ANTICIPATION_8HR_USD", Kind.ANTICIPATION),
        (utc(2025, 1, 15, 12, 30), "ANTICIPATION_1HR_USD", Kind.ANTICIPATION)]
    assert ants[1].title == "1H Before CPI m/m Anticipation - USD - HIGH"
    assert anticipations(medium) == []


def test_equity_opens_follow_each_exchange_zone():
    # Friday 2025-03-28 and Monday 2025-03-31 (London switched to BST on the 30th, New York on the 9th)
    opens = {(e.signal_type, e.event_time) for e in equity_opens(utc(2025, 3, 28), utc(2025, 3, 31, 23, 59))}
    assert ("TOKYO_OPEN", utc(2025, 3, 28, 0, 0)) in opens   # 09:00 JST = 00:00Z
    assert ("LONDON_OPEN", utc(2025, 3, 28, 8, 0)) in opens  # 08:00 GMT
    assert ("LONDON_OPEN", utc(2025, 3, 31, 7, 0)) in opens  # 08:00 BST
    assert ("NY_OPEN", utc(2025, 3, 31, 13, 30)) in opens    # 09:30 EDT
    assert not any(t.date().weekday() >= 5 for _, t in opens)  # nothing on the weekend
    assert len(opens) == 2 * 3  # two weekdays x three exchanges (one entry per time, set by type)


# --- blackout windows and the gate ----------------------------------------------------------------------

def _gate_book():
    book = CalendarBook()
    book.merge(one(FF_HEADER + "Non-Farm Employment Change,USD,03-07-2025,8:30am,High,,,\n"    # 13:30Z
                   + "Retail Sales,EUR,03-07-2025,5:00am,Medium,,,\n"                         # 10:00Z
                   + "Housing,USD,03-07-2025,10:00am,Low,,,\n"), "t")                        # 15:00Z, LOW
    return book


@pytest.mark.parametrize(("at", "state"), [
    (utc(2025, 3, 7, 12, 29, 59), GateState.CLEAR),
    (utc(2025, 3, 7, 12, 30), GateState.PRE_EVENT_BLOCK),   # HIGH: 60 min before, inclusive
    (utc(2025, 3, 7, 13, 29, 59), GateState.PRE_EVENT_BLOCK),
    (utc(2025, 3, 7, 13, 30), GateState.POST_EVENT_BLOCK),  # at the event
    (utc(2025, 3, 7, 14, 0), GateState.POST_EVENT_BLOCK),   # 30 min after, inclusive
    (utc(2025, 3, 7, 14, 0, 1), GateState.CLEAR),
    (utc(2025, 3, 7, 9, 30), GateState.PRE_EVENT_BLOCK),    # MEDIUM EUR: 30 before
    (utc(2025, 3, 7, 10, 15), GateState.POST_EVENT_BLOCK),  # and 15 after
    (utc(2025, 3, 7, 10, 15, 1), GateState.CLEAR),
    (utc(2025, 3, 7, 15, 0), GateState.CLEAR),              # LOW never blocks
])
def test_blackout_windows_at_their_edges(at, state):
    book = _gate_book()
    assert gate("EURUSD", book.windows(("EUR", "USD"), WindowConfig()), at).state is state


def test_pre_wins_over_post_and_other_symbols_are_clear():
    book = CalendarBook()
    book.merge(one(FF_HEADER + "A,USD,03-07-2025,8:30am,High,,,\n" + "B,USD,03-07-2025,9:00am,High,,,\n"), "t")
    w = book.windows(("USD",), WindowConfig())
    assert gate("EURUSD", w, utc(2025, 3, 7, 13, 45)).state is GateState.PRE_EVENT_BLOCK  # after A, before B
    assert gate("AUDJPY", book.windows(("AUD", "JPY"), WindowConfig()), utc(2025, 3, 7, 13, 45)).state \
        is GateState.CLEAR
    assert gate("EURUSD", w, utc(2025, 3, 7, 1), untrusted="no calendar imported").state is GateState.BLOCKED


def test_configured_windows():
    config = WindowConfig({Impact.HIGH: (10.0, 5.0)})
    w = windows(_gate_book().entries(), ("EUR", "USD"), config)
    assert [(x.start, x.end) for x in w] == [(utc(2025, 3, 7, 13, 20), utc(2025, 3, 7, 13, 35))]


def _signal(**changes) -> CalendarSignal:
    doc = {"symbol": "EURUSD", "generated_at": "2025-03-07T12:00:00Z", "valid_until": "2025-03-07T12:01:30Z",
           "state": "CLEAR", "allow_new_trades": True, "reason": None, "event": None, "minutes_to_event": None,
           "proximity": "SH", "proximity_event": None, "priority_weight": 0,
           "windows": [{"cal8": "CAL8-20250307-1330-USD-001", "title": "NFP", "currency": "USD", "impact": "HIGH",
                        "scheduled_at": "2025-03-07T13:30:00Z", "start": "2025-03-07T12:30:00Z",
                        "end": "2025-03-07T14:00:00Z"}]}
    return CalendarSignal.model_validate({**doc, **changes})


def test_consumer_gate_windows_staleness_and_required():
    g = CalendarGate()
    assert g.blackout("EURUSD", utc(2025, 3, 7, 12)) is None  # nothing heard, not required
    assert CalendarGate(required=True).blackout("EURUSD", utc(2025, 3, 7, 12)) == "no calendar state for EURUSD"
    g.update(_signal())
    assert g.blackout("EURUSD", utc(2025, 3, 7, 12, 1)) is None
    assert g.blackout("EURUSD", utc(2025, 3, 7, 12, 1, 31)).startswith("calendar state for EURUSD is stale")
    g.update(_signal(generated_at="2025-03-07T12:30:00Z", valid_until="2025-03-07T14:30:00Z"))
    assert g.blackout("EURUSD", utc(2025, 3, 7, 12, 30)).startswith("before HIGH USD NFP")
    assert g.blackout("EURUSD", utc(2025, 3, 7, 13, 30)).startswith("after HIGH USD NFP")
    assert g.proximity("EURUSD", utc(2025, 3, 7, 12, 30)) == "SH"
    g.update(_signal())  # an older state never replaces a newer one
    assert g.latest("EURUSD").generated_at == utc(2025, 3, 7, 12, 30)
    g.update(_signal(generated_at="2025-03-07T12:31:00Z", state="BLOCKED", allow_new_trades=False,
                     reason="no calendar imported"))
    assert g.blackout("EURUSD", utc(2025, 3, 7, 12, 31)) == "calendar blocked: no calendar imported"
    assert g.proximity("EURUSD", utc(2025, 3, 8)) == "NONE"
