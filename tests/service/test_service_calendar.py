"""calendar-ingestor built from its environment on a real Redis and a migrated PostgreSQL: an upload
becomes CalendarEvents and per-symbol gates, a file with bad rows is refused whole with every row
named, a restart keeps the calendar, the watched directory imports a new file, and without any
calendar every symbol is BLOCKED."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta

import pytest

from service.harness import ServiceEnv, eventually, fresh_env, read, started

pytestmark = pytest.mark.anyio


@pytest.fixture
async def env(monkeypatch, redis_server, migrated_db, tmp_path) -> ServiceEnv:
    return await fresh_env(monkeypatch, redis_server, tmp_path, postgres=migrated_db)


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:00Z")


def calendar(now: datetime) -> tuple[str, datetime, datetime]:
    """A USD HIGH event 34-45 minutes ahead (NFP proximity SH), a EUR MEDIUM one 3 hours ahead and a holiday row. The
    minute is drawn at random: the database is shared with the other tests of the session."""
    nfp = (now + timedelta(minutes=random.randint(35, 45))).replace(second=0, microsecond=0)
    gdp = nfp + timedelta(hours=3)
    text = ("event,currency,datetime,impact,forecast\n"
            f"Non-Farm Employment Change,USD,{iso(nfp)},High,160K\n"
            f"GDP q/q,EUR,{iso(gdp)},Medium,\n"
            f"Bank Holiday,GBP,{iso(gdp)},Holiday,\n")
    return text, nfp, gdp


SETTINGS = {"TRACKED_SYMBOLS": '["EURUSD", "AUDJPY"]', "REFRESH_SECONDS": "1"}


async def test_an_upload_becomes_events_and_gates(env):
    now = datetime.now(UTC)
    text, nfp, gdp = calendar(now)
    async with started(env.app("calendar-ingestor", **SETTINGS)) as client:
        response = await client.post("/api/v1/calendar/import?source=week.csv", content=text,
                                     headers={"content-type": "text/csv"})
        blackouts = (await client.get("/api/v1/calendar/blackouts")).json()["blackouts"]
        events = (await client.get("/api/v1/calendar/events?hours_ahead=4")).json()["events"]
        derived = (await client.get("/api/v1/calendar/events?hours_ahead=4&derived=true")).json()["events"]
        again = (await client.post("/api/v1/calendar/import?source=week-again.csv", content=text)).json()
    report = response.json()
    assert response.status_code == 200 and report["accepted"]
    assert (report["new"], report["rows"], report["skipped"]) == (2, 2, [{"line": 4, "reason":
                                                                      "impact 'Holiday' is not a market event"}])
    assert (again["new"], again["unchanged"]) == (0, 2)
    cal8 = f"CAL8-{nfp:%Y%m%d-%H%M}-USD-001"
    by_symbol = {b["symbol"]: b for b in blackouts}
    assert by_symbol["EURUSD"]["state"] == "PRE_EVENT_BLOCK"  # 34-45 min before a HIGH event: within 60
    assert by_symbol["EURUSD"]["next_event_currency"] == "USD" and not by_symbol["EURUSD"]["allow_new_trades"]
    assert by_symbol["AUDJPY"]["state"] == "CLEAR" and by_symbol["AUDJPY"]["risk_mode"] == "NORMAL"
    mine = [e for e in events if e["cal8"] in (cal8, f"CAL8-{gdp:%Y%m%d-%H%M}-EUR-001")]
    assert [(e["cal5"], e["event_type"], e["state"]) for e in mine] == [
        ("10135", "NFP", "ANTICIPATION_1HR"), ("20125", "GDP", "ANTICIPATION_8HR")]  # checksums 1+1+3, 2+1+2
    # the 1 h anticipation is 15-26 min in the past: still listed (the list starts an hour back)
    assert [e["signal_type"] for e in derived if e["cal8"] == f"{cal8}-A1H"] == ["ANTICIPATION_1HR_USD"]
    published = [e.data for e in await read(env, "eafix.calendar.events") if e.data.cal8 == cal8]
    assert published[0].state == "ANTICIPATION_1HR" and published[0].forecast == "160K"
    signals = await eventually(lambda: _signals(env, "EURUSD"), "a EURUSD gate")
    assert (signals[-1].state, signals[-1].event.currency, signals[-1].proximity) == ("PRE_EVENT_BLOCK", "USD", "SH")


async def _signals(env: ServiceEnv, symbol: str) -> list:
    return [e.data for e in await read(env, "eafix.calendar.signals") if e.data.symbol == symbol]


async def test_a_file_with_bad_rows_is_refused_whole_naming_each_row(env):
    text = ("Title,Country,Date,Time,Impact,Forecast,Previous,URL\n"
            "CPI m/m,USD,01-15-2031,8:30am,High,,,\n"
            "CPI y/y,USD,2031-15-01,8:30am,High,,,\n"
            "PPI,XX,01-15-2031,8:30am,High,,,\n")
    async with started(env.app("calendar-ingestor", **SETTINGS)) as client:
        response = await client.post("/api/v1/calendar/import?source=bad.csv", content=text)
        events = (await client.get("/api/v1/calendar/events?hours_ahead=744")).json()["events"]
        not_csv = await client.post("/api/v1/calendar/import", content=b"\xff\xfe\x00garbage")
        history = (await client.get("/api/v1/calendar/imports")).json()["imports"]
    report = response.json()
    assert response.status_code == 422 and not report["accepted"] and report["rows"] == 0
    assert [r["line"] for r in report["rejected"]] == [3, 4]
    assert "2031-15-01" in report["rejected"][0]["reason"] and "'XX'" in report["rejected"][1]["reason"]
    assert not any(e["title"] == "CPI m/m" and e["scheduled_at"].startswith("2031") for e in events)
    assert not_csv.status_code == 422 and "not UTF-8" in not_csv.json()["rejected"][0]["reason"]
    assert [h["source"] for h in history[:2]] == ["upload", "bad.csv"]


async def test_a_restart_keeps_the_calendar_and_the_watched_directory_imports(env, tmp_path):
    text, nfp, _ = calendar(datetime.now(UTC) + timedelta(days=random.randint(2, 25)))
    watched = tmp_path / "inbox"
    watched.mkdir()
    settings = dict(SETTINGS, WATCH_DIR=str(watched))
    async with started(env.app("calendar-ingestor", **settings)):
        (watched / "ff_calendar_thisweek.csv").write_text(text)
        imported = await eventually(lambda: _imported(env, nfp), "the watched file's events")
    assert imported[0].source == "ff_calendar_thisweek.csv"
    async with started(env.app("calendar-ingestor", **settings)) as client:
        events = (await client.get(f"/api/v1/calendar/events?hours_ahead={24 * 31}")).json()["events"]
        history = (await client.get("/api/v1/calendar/imports?limit=500")).json()["imports"]
    assert f"CAL8-{nfp:%Y%m%d-%H%M}-USD-001" in {e["cal8"] for e in events}
    # the restarted process saw the file's digest: it did not import it a second time
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert sum(h["sha256"] == digest for h in history) == 1


async def _imported(env: ServiceEnv, nfp: datetime) -> list:
    return [e.data for e in await read(env, "eafix.calendar.events")
            if e.data.cal8 == f"CAL8-{nfp:%Y%m%d-%H%M}-USD-001"]


async def test_without_a_calendar_every_symbol_is_blocked(monkeypatch, redis_server, tmp_path, fresh_db_url):
    env = await fresh_env(monkeypatch, redis_server, tmp_path)
    async with started(env.app("calendar-ingestor", POSTGRES_URL=fresh_db_url, **SETTINGS)):  # an empty calendar
        signals = await eventually(lambda: _signals(env, "AUDJPY"), "an AUDJPY gate")
    assert (signals[0].state, signals[0].reason, signals[0].allow_new_trades) == (
        "BLOCKED", "no calendar imported yet", False)
    assert signals[0].valid_until - signals[0].generated_at == timedelta(seconds=2 * 1 + 30)
