"""Calendar CSV in, rows out, or a report of every row that cannot be taken (domain notes §6.1-6.2).

The ForexFactory weekly export (`Title,Country,Date,Time,Impact,Forecast,Previous,URL`; dates
`01-10-2025`, times `8:30am` in America/New_York) and files like it: column names are matched
case-insensitively through aliases, and the time is either one date-time column or a date and a
time column. Naive times are local to the source zone (an IANA zone, so DST is the zone's own); a
time with an offset or `Z` is taken as written.

Every data row ends up in exactly one of three lists, named by its line number (the header is line
1): `rows` (taken), `skipped` (valid but not a market event this calendar tracks: holidays, rows for
all currencies, no scheduled time, a repeat of an earlier row) and `rejected` (wrong: no title, a bad
currency, date or impact, a local time that does not exist). A file with any rejected row imports
nothing (`Intake.ok` is false) — no partial import.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eafix.calendar_ingestor.entries import Impact
from eafix.runtime.csv_records import MalformedCsv
from eafix.runtime.csv_records import records as csv_records

DEFAULT_SOURCE_TIMEZONE = "America/New_York"  # ForexFactory's zone (MVP spec; contradiction #17)
MAX_ROWS = 20_000
# quality (domain notes §6.1): 20 per core field (title, currency, date, time, impact), 5 per extra
# (forecast, previous, URL), 5 for a title over 20 characters, 10 HIGH / 5 MEDIUM; scaled to 0-100
MAX_SCORE = 100 + 15 + 5 + 10

ALIASES: dict[str, tuple[str, ...]] = {
    "title": ("title", "event", "name"),
    "currency": ("currency", "country"),
    "impact": ("impact", "importance", "volatility"),
    "datetime": ("datetime", "timestamp", "start_ts", "event_time_utc", "event_time"),
    "date": ("date", "day", "raw_date"),
    "time": ("time", "hour", "raw_time"),
    "forecast": ("forecast",),
    "previous": ("previous",),
    "url": ("url", "link"),
}
IMPACTS: dict[str, Impact] = {
    **dict.fromkeys(("h", "high", "3", "red"), Impact.HIGH),
    **dict.fromkeys(("m", "med", "medium", "2", "orange"), Impact.MEDIUM),
    **dict.fromkeys(("l", "low", "1", "yellow"), Impact.LOW),
}
NOT_MARKET_EVENTS = frozenset({"holiday", "non-economic", "gray", "grey"})
UNTIMED = frozenset({"all day", "tentative", "day 1", "day 2", "day 3"})
DATE_FORMATS = ("%m-%d-%Y", "%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y")
TIME_FORMATS = ("%I:%M%p", "%I%p", "%H:%M", "%H:%M:%S")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class IntakeError(ValueError):
    """The file as a whole cannot be read (not a CSV, no title or time column, too many rows)."""


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    title: str
    currency: str
    impact: Impact
    event_time: datetime  # UTC
    quality: int
    forecast: str | None
    previous: str | None
    url: str | None


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    reason: str


@dataclass(frozen=True)
class Intake:
    rows: tuple[Row, ...]
    skipped: tuple[RowProblem, ...]
    rejected: tuple[RowProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.rejected


class _RowError(Exception):
    def __init__(self, reason: str, *, skip: bool = False) -> None:
        super().__init__(reason)
        self.skip = skip


def source_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise IntakeError(f"unknown time zone {name!r} (an IANA name such as America/New_York)") from None


def read_calendar_csv(text: str, source_timezone: str = DEFAULT_SOURCE_TIMEZONE) -> Intake:
    zone = source_zone(source_timezone)
    records = _records(text.lstrip("\ufeff"))
    _, header = next(records, (1, None))
    if header is None:
        raise IntakeError("the file is empty (no header line)")
    columns = _columns(header)
    rows: list[Row] = []
    skipped: list[RowProblem] = []
    rejected: list[RowProblem] = []
    seen: dict[tuple[datetime, str, str], int] = {}
    for count, (number, values) in enumerate(records, start=1):
        if count > MAX_ROWS:
            raise IntakeError(f"more than {MAX_ROWS} rows")
        if not any(v.strip() for v in values):
            continue  # a blank line is not a row
        try:
            row = _row(number, _cells(values, columns), zone)
        except _RowError as exc:
            (skipped if exc.skip else rejected).append(RowProblem(number, str(exc)))
            continue
        key = (row.event_time, row.currency, " ".join(row.title.casefold().split()))
        if key in seen:
            skipped.append(RowProblem(number, f"duplicate of line {seen[key]}"))
            continue
        seen[key] = number
        rows.append(row)
    return Intake(tuple(rows), tuple(skipped), tuple(rejected))


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(line, cells) of each CSV record, `line` where it starts; malformed CSV is an IntakeError."""
    try:
        yield from csv_records(csv.reader(io.StringIO(text, newline="")))
    except MalformedCsv as exc:
        raise IntakeError(str(exc)) from None


def _columns(header: list[str]) -> dict[str, int]:
    names = [h.strip().lower() for h in header]
    columns: dict[str, int] = {}
    for field, aliases in ALIASES.items():
        for alias in aliases:
            if alias in names:
                columns[field] = names.index(alias)
                break
    missing = [f for f in ("title", "currency") if f not in columns]
    if "datetime" not in columns and "date" not in columns:
        missing.append("date (or datetime)")
    if missing:
        raise IntakeError(f"header line 1 has no column for {', '.join(missing)} (got: {', '.join(header)})")
    return columns


def _cells(values: list[str], columns: dict[str, int]) -> dict[str, str]:
    return {field: values[i].strip() if i < len(values) else "" for field, i in columns.items()}


def _row(line: int, cells: dict[str, str], zone: ZoneInfo) -> Row:
    title = cells["title"]
    if not title:
        raise _RowError("missing title")
    currency = cells["currency"].upper()
    if currency == "ALL":
        raise _RowError("applies to all currencies (no single currency to block)", skip=True)
    if not _CURRENCY.match(currency):
        raise _RowError(f"currency {cells['currency']!r} is not a 3-letter code" if currency else "missing currency")
    raw_impact = cells.get("impact", "")
    impact = _impact(raw_impact)
    event_time = _when(cells, zone)
    raw_score = (20 * sum(bool(cells.get(f)) for f in ("title", "currency", "impact"))
                 + 40  # date and time: a row without them never gets here
                 + 5 * sum(bool(cells.get(f)) for f in ("forecast", "previous", "url"))
                 + (5 if len(title) > 20 else 0)
                 + ({Impact.HIGH: 10, Impact.MEDIUM: 5}.get(impact, 0) if raw_impact else 0))
    quality = round(100 * raw_score / MAX_SCORE)
    return Row(line, title, currency, impact, event_time, quality,
               cells.get("forecast") or None, cells.get("previous") or None, cells.get("url") or None)


def _impact(raw: str) -> Impact:
    key = raw.strip().lower()
    if not key:
        return Impact.MEDIUM  # the normaliser's default for an empty impact (domain notes §6.2)
    if key in NOT_MARKET_EVENTS:
        raise _RowError(f"impact {raw!r} is not a market event", skip=True)
    if key not in IMPACTS:
        raise _RowError(f"unknown impact {raw!r} (expected High/Medium/Low, H/M/L, 3/2/1 or red/orange/yellow)")
    return IMPACTS[key]


def _when(cells: dict[str, str], zone: ZoneInfo) -> datetime:
    if "datetime" in cells and cells["datetime"]:
        raw = cells["datetime"]
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise _RowError(f"date-time {raw!r} is not ISO 8601") from None
        if not parsed.tzinfo:
            return _localize(parsed, zone)
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+01:00 is in year 0 at UTC
            raise _RowError(f"date-time {raw!r} is out of range at UTC (years 1-9999)") from None
    raw_date, raw_time = cells.get("date", ""), cells.get("time", "")
    if not raw_date:
        raise _RowError("missing date")
    if not raw_time or raw_time.lower() in UNTIMED:
        raise _RowError(f"no scheduled time ({raw_time or 'empty'})", skip=True)
    return _localize(datetime.combine(_date(raw_date), _time(raw_time)), zone)


def _date(raw: str) -> date:
    return _first_format(raw, raw, DATE_FORMATS, "date", "MM-DD-YYYY, YYYY-MM-DD, MM/DD/YYYY or DD.MM.YYYY").date()


def _time(raw: str) -> time:
    return _first_format(raw.replace(" ", "").upper(), raw, TIME_FORMATS, "time", "8:30am or 08:30").time()


def _first_format(text: str, raw: str, formats: tuple[str, ...], noun: str, hint: str) -> datetime:
    for fmt in formats:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise _RowError(f"{noun} {raw!r} is not a {noun} ({hint})")


def _localize(naive: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time in `zone`. In the repeated hour after DST ends the first
    occurrence (fold 0) is meant; a time inside the gap when DST starts does not exist."""
    local = naive.replace(tzinfo=zone)
    try:
        as_utc = local.astimezone(UTC)
        back = as_utc.astimezone(zone).replace(tzinfo=None)
    except OverflowError:  # 12-31-9999 11pm in New York is in year 10000 at UTC
        raise _RowError(f"{naive:%Y-%m-%d %H:%M} in {zone.key} is out of range at UTC (years 1-9999)") from None
    if back != naive:
        raise _RowError(f"{naive:%Y-%m-%d %H:%M} does not exist in {zone.key} (clocks skip it when DST starts)")
    return as_utc


__all__ = ["DEFAULT_SOURCE_TIMEZONE", "Intake", "IntakeError", "Row", "RowProblem", "read_calendar_csv",
           "source_zone"]
