"""A seeded, reproducible economic calendar for the sample bars, in the ForexFactory export format
(`Title,Country,Date,Time,Impact,Forecast,Previous,URL`, times in America/New_York): on every weekday
of the bars' range a few releases drawn from a fixed list of real release slots, so a replay with
it meets HIGH and MEDIUM events of both currencies of the sample pair."""

from __future__ import annotations

import csv
import random
from datetime import date, datetime, timedelta
from pathlib import Path

# (title, currency, impact, New York wall time): the usual release slots
RELEASES: tuple[tuple[str, str, str, str], ...] = (
    ("Non-Farm Employment Change", "USD", "High", "8:30am"),
    ("CPI m/m", "USD", "High", "8:30am"),
    ("Retail Sales m/m", "USD", "High", "8:30am"),
    ("ISM Manufacturing PMI", "USD", "High", "10:00am"),
    ("Unemployment Claims", "USD", "Medium", "8:30am"),
    ("Federal Funds Rate", "USD", "High", "2:00pm"),
    ("German Flash Manufacturing PMI", "EUR", "Medium", "3:30am"),
    ("Main Refinancing Rate", "EUR", "High", "8:15am"),
    ("CPI Flash Estimate y/y", "EUR", "High", "5:00am"),
    ("German ZEW Economic Sentiment", "EUR", "Medium", "5:00am"),
    ("GDP m/m", "GBP", "Medium", "2:00am"),
    ("BOJ Policy Rate", "JPY", "High", "10:00pm"),
    ("Employment Change", "AUD", "High", "7:30pm"),
    ("CPI m/m", "CHF", "Medium", "2:30am"),
)
HEADER = ["Title", "Country", "Date", "Time", "Impact", "Forecast", "Previous", "URL"]


def sample_calendar_rows(start: date, end: date, *, seed: int = 7) -> list[list[str]]:
    rng = random.Random(seed)
    rows: list[list[str]] = []
    day = start
    while day <= end:
        if day.weekday() < 5:
            for title, currency, impact, at in sorted(rng.sample(RELEASES, rng.randint(0, 2)), key=_wall_time):
                forecast = f"{rng.uniform(-0.5, 0.9):.1f}%"
                rows.append([title, currency, day.strftime("%m-%d-%Y"), at, impact, forecast,
                             f"{rng.uniform(-0.5, 0.9):.1f}%", "https://www.forexfactory.com/calendar"])
        day += timedelta(days=1)
    return rows


def _wall_time(release: tuple[str, str, str, str]) -> datetime:
    return datetime.strptime(release[3].upper(), "%I:%M%p")


def write_sample_calendar(path: Path, start: date, end: date, *, seed: int = 7) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(sample_calendar_rows(start, end, seed=seed))
    return path


__all__ = ["RELEASES", "sample_calendar_rows", "write_sample_calendar"]
