"""data-ingestor built from its environment (as `eafix serve data-ingestor`) on a real Redis: HTTP and
MT4 CSV bridge both publish PriceTick envelopes on `eafix.price.tick`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from eafix import cli
from eafix.data_ingestor.mt4_bridge import render_bridge_csv, write_atomic
from service.harness import ServiceEnv, eventually, fresh_env, read, started

pytestmark = pytest.mark.anyio
TOPIC = "eafix.price.tick"


@pytest.fixture
async def env(monkeypatch, redis_server, tmp_path) -> ServiceEnv:
    return await fresh_env(monkeypatch, redis_server, tmp_path)


def stamp(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


async def test_posted_ticks_are_published_as_root_envelopes(env):
    app = env.app("data-ingestor", INGEST='{"max_price_age_seconds": 3600, "max_spread_pips": "3"}')
    now = datetime.now(UTC).replace(microsecond=0)
    ticks = [
        {"symbol": "eurusd", "ts": stamp(now - timedelta(minutes=30)), "bid": "1.08410", "ask": "1.08422"},
        {"symbol": "EURUSD", "ts": stamp(now - timedelta(minutes=29)), "bid": "1.08400", "ask": "1.08440"},
        {"symbol": "EURUSD", "ts": stamp(now - timedelta(hours=2)), "bid": "1.08400", "ask": "1.08410"},
    ]
    async with started(app) as client:
        assert (await client.get("/readyz")).json()["checks"] == {"redis": {"status": "up"}}
        response = await client.post("/api/v1/ticks", json=ticks)
        latest = (await client.get("/api/v1/prices/latest")).json()
    assert response.status_code == 422  # the third is older than an hour; the 4-pip spread is over 3
    assert [r["reason"] for r in response.json()["rejected"]] == ["spread_above_max", "stale"]
    envelopes = await read(env, TOPIC)
    assert [(e.data.symbol, e.data.bid, e.data.ask) for e in envelopes] == [("EURUSD", Decimal("1.08410"),
                                                                             Decimal("1.08422"))]
    (published,) = envelopes
    assert published.producer == "data-ingestor" and published.event_type == "PriceTick"
    assert published.correlation_id == published.event_id and published.causation_id is None  # starts its chain
    assert published.ts_event == now - timedelta(minutes=30)
    assert latest["prices"][0]["bid"] == "1.08410"


async def test_the_csv_bridge_runs_only_when_a_watch_dir_is_set(env, tmp_path):
    watch = tmp_path / "mt4"
    app = env.app("data-ingestor", CSV_WATCH_DIR=str(watch), CSV_POLL_SECONDS="0.05")
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [{"ts": (now - timedelta(seconds=2)).strftime("%Y.%m.%d %H:%M:%S"), "symbol": "GBPUSD",
             "bid": "1.25010", "ask": "1.25022"}]
    async with started(app):
        write_atomic(watch, "prices_1.csv", render_bridge_csv(1, rows))
        await eventually(lambda: (watch / "processed" / "prices_1.csv").exists(), "the file to be processed")
    (published,) = await read(env, TOPIC)
    assert (published.data.symbol, published.data.bid, published.data.ts) == (
        "GBPUSD", Decimal("1.25010"), now - timedelta(seconds=2))

    plain = env.app("data-ingestor")
    async with started(plain):
        pass
    assert "bridge" not in plain.state.parts.state and "bridge" in app.state.parts.state


@pytest.mark.parametrize(("value", "problem"), [
    ('{"max_price_age_seconds": 0}', "SERVICE_INGEST: max_price_age_seconds must be > 0 and max_future_seconds >= 0"),
    ('{"max_age": 60}', "SERVICE_INGEST: max_age: unknown key"),
    ('{"max_batch": "many"}', "SERVICE_INGEST: max_batch: Input should be a valid integer, unable to parse "
                              "string as an integer (got 'many')"),
    ("{max_batch: 1}", "SERVICE_INGEST: not valid JSON"),
])
def test_bad_ingest_config_stops_serve_with_one_line(capsys, monkeypatch, value, problem):
    monkeypatch.setenv("SERVICE_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("SERVICE_INGEST", value)
    assert cli.main(["serve", "data-ingestor"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"eafix serve data-ingestor: {problem}")
