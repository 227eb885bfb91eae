"""Property tests of the economic-calendar CSV intake (calendar-ingestor's
`eafix.calendar_ingestor.intake.read_calendar_csv`, its HTTP body reader `app.read_or_report`, and the
backtest's `eafix.backtest.runner.load_calendar`).

Covered: any bytes as an upload, any text with any time-zone name, and a valid file with one character
mutated give an Intake or IntakeError (CalendarFileError for the backtest), never another exception;
every data row ends in exactly one of taken / skipped / rejected, named by the line where it starts
(quoted cells may span lines); rows written with a UTC date-time, or as ForexFactory local date and
time, read back as the same title, currency, impact and instant (the local time converted here
independently, a time in the spring-forward gap rejected); one bad cell rejects or skips its row only.
"""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import example, given
from hypothesis import strategies as st

from eafix.backtest.runner import CalendarFileError, load_calendar
from eafix.calendar_ingestor.app import read_or_report
from eafix.calendar_ingestor.entries import Impact
from eafix.calendar_ingestor.intake import Intake, IntakeError, read_calendar_csv
from service.property_strategies import csv_text, fuzz_bytes, fuzz_text, mutated

NEW_YORK = ZoneInfo("America/New_York")
IMPACT_WORDS = {"High": Impact.HIGH, "Medium": Impact.MEDIUM, "Low": Impact.LOW, "H": Impact.HIGH,
                "3": Impact.HIGH, "red": Impact.HIGH, "orange": Impact.MEDIUM, "yellow": Impact.LOW}
titles = st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Zl", "Zp"]), min_size=1,
                 max_size=30).map(str.strip).filter(bool) | st.sampled_from(["Non-Farm\nPayrolls", "CPI, m/m"])
currencies = st.sampled_from(["USD", "EUR", "GBP", "JPY", "CHF", "AUD", "usd"])
instants = st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)).map(
    lambda d: d.replace(second=0, microsecond=0, tzinfo=UTC))


@st.composite
def utc_rows(draw: st.DrawFn) -> list[dict[str, str]]:
    """Distinct events with a UTC date-time column."""
    count = draw(st.integers(1, 6))
    rows, seen = [], set()
    for _ in range(count):
        row = {"title": draw(titles), "currency": draw(currencies), "impact": draw(st.sampled_from(list(IMPACT_WORDS))),
               "datetime": draw(instants).strftime("%Y-%m-%dT%H:%M:%SZ")}
        key = (row["datetime"], row["currency"].upper(), " ".join(row["title"].casefold().split()))
        if key not in seen:
            seen.add(key)
            rows.append(row)
    return rows



def start_line(rows: list[dict[str, str]], index: int) -> int:
    """The line where data row `index` starts (quoted cells before it may hold line breaks)."""
    return len(re.findall(r"\r\n|\r|\n", csv_text(rows[:index], list(rows[0])))) + 1


def local_to_utc(naive: datetime) -> datetime | None:
    """The first UTC instant whose New York wall clock reads `naive`; None inside the spring gap.
    (New York is UTC-4 or UTC-5: try both, earliest first.)"""
    for hours in (4, 5):
        candidate = (naive + timedelta(hours=hours)).replace(tzinfo=UTC)
        if candidate.astimezone(NEW_YORK).replace(tzinfo=None) == naive:
            return candidate
    return None


def lines_of(intake: Intake) -> list[int]:
    return sorted([r.line for r in intake.rows] + [p.line for p in intake.skipped] + [p.line for p in intake.rejected])


@given(fuzz_bytes | mutated(utc_rows().map(csv_text)).map(str.encode), st.sampled_from(
    ["America/New_York", "UTC", "Europe/London", "Nowhere/City", "", "../etc/passwd", "Etc/GMT+14"]))
@example(b"title,currency,date,time\nx,USD,12-31-9999,11:00pm\n", "America/New_York")  # UTC past year 9999
@example(b"title,currency,datetime\nx,USD,0001-01-01T00:00:00+01:00\n", "UTC")  # UTC before year 1
@example(b"title,currency,datetime\na\rb,USD,2025-01-06T12:00:00Z\n", "UTC")  # a bare CR: was csv.Error
def test_any_upload_reads_or_raises_intake_error(body, zone) -> None:
    try:
        intake = read_or_report(body, zone)
    except IntakeError as exc:
        assert str(exc)
        return
    lines = lines_of(intake)
    assert len(lines) == len(set(lines)), "a line reported twice"
    assert all(line >= 2 for line in lines)


@given(fuzz_text, fuzz_text)
def test_any_text_and_zone_name(text, zone) -> None:
    try:
        read_calendar_csv(text, zone)
    except IntakeError as exc:
        assert str(exc)


@given(utc_rows())
def test_utc_rows_round_trip(rows) -> None:
    intake = read_calendar_csv(csv_text(rows))
    assert intake.ok and not intake.skipped
    got = [(r.line, r.title, r.currency, r.impact, r.event_time) for r in intake.rows]
    want = [(start_line(rows, i), row["title"], row["currency"].upper(), IMPACT_WORDS[row["impact"]],
             datetime.strptime(row["datetime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC))
            for i, row in enumerate(rows)]
    assert got == want


@given(st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)).map(lambda d: d.replace(second=0, microsecond=0)),
       st.booleans())
def test_forexfactory_local_times_are_new_york_wall_clock(naive, twelve_hour) -> None:
    time_text = naive.strftime("%I:%M%p").lower().lstrip("0") if twelve_hour else naive.strftime("%H:%M")
    text = f"Title,Country,Date,Time,Impact\nCPI m/m,USD,{naive:%m-%d-%Y},{time_text},High\n"
    intake = read_calendar_csv(text)
    expected = local_to_utc(naive)
    if expected is None:
        assert [p.line for p in intake.rejected] == [2] and "does not exist" in intake.rejected[0].reason
    else:
        assert [r.event_time for r in intake.rows] == [expected]


@given(utc_rows(), st.data())
def test_one_bad_cell_touches_its_row_only(rows, data) -> None:
    index = data.draw(st.integers(0, len(rows) - 1))
    column = data.draw(st.sampled_from(["currency", "impact", "datetime"]))
    rows[index][column] = data.draw(mutated(st.just(rows[index][column])) | st.sampled_from(
        ["", "ALL", "Holiday", "2025-02-30T10:00:00Z", "XX", "tomorrow", "2025-03-09T02:30:00"]))
    intake = read_calendar_csv(csv_text(rows))
    bad_line = start_line(rows, index)
    problem_lines = [p.line for p in intake.skipped + intake.rejected]
    assert set(problem_lines) <= {bad_line}
    assert lines_of(intake) == [start_line(rows, i) for i in range(len(rows))]


@given(fuzz_bytes | utc_rows().map(csv_text).map(str.encode))
def test_backtest_calendar_file_loads_or_raises_calendar_file_error(body) -> None:
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / "calendar.csv"
        path.write_bytes(body)
        try:
            load_calendar(path)
        except CalendarFileError as exc:
            assert str(path) in str(exc)
