"""data-ingestor HTTP routes over ASGI: batch limits, partial acceptance, publish semantics."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI

from eafix.contracts.events import PriceTick
from eafix.data_ingestor.app import TickPipeline, build_router
from eafix.data_ingestor.domain import TickNormalizer
from eafix.runtime.clock import TestClock
from service.asgi import client_for

pytestmark = pytest.mark.anyio

NOW = datetime(2025, 1, 6, 12, 0, 30, tzinfo=UTC)


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def raw_tick(seconds_ago: float = 1.0, symbol: str = "EURUSD", bid: str = "1.10000", ask: str = "1.10010",
         volume: int | None = None) -> dict:
    return {"symbol": symbol, "ts": iso(NOW - timedelta(seconds=seconds_ago)), "bid": bid, "ask": ask,
            "volume": volume}


class Recorder:
    def __init__(self) -> None:
        self.calls: list[list[PriceTick]] = []
        self.fail: Exception | None = None

    async def __call__(self, ticks: list[PriceTick]) -> None:
        if self.fail is not None:
            raise self.fail
        self.calls.append(list(ticks))

    @property
    def ticks(self) -> list[PriceTick]:
        return [t for call in self.calls for t in call]


@pytest.fixture
def clock() -> TestClock:
    return TestClock(NOW)


@pytest.fixture
def publish() -> Recorder:
    return Recorder()


@pytest.fixture
def normalizer(clock) -> TickNormalizer:
    return TickNormalizer(clock)


@pytest.fixture
def app(normalizer, publish) -> FastAPI:
    app = FastAPI()
    app.include_router(build_router(normalizer, publish))
    return app


async def test_single_tick_is_published(app, publish):
    async with client_for(app) as client:
        response = await client.post("/api/v1/ticks", json=raw_tick(symbol="eurusd", volume=7))
    assert response.status_code == 200
    assert response.json() == {"received": 1, "accepted": 1, "duplicates": [], "rejected": [],
                               "detail": "ok: 1 accepted tick published"}
    assert [t.model_dump(mode="json") for t in publish.ticks] == [
        {"symbol": "EURUSD", "ts": "2025-01-06T12:00:29Z", "bid": "1.10000", "ask": "1.10010", "volume": 7}]


async def test_batch_over_the_limit_is_refused_whole(app, publish):
    batch = [raw_tick(seconds_ago=20 - i * 0.001) for i in range(10_001)]
    async with client_for(app) as client:
        response = await client.post("/api/v1/ticks", json=batch)
        wrapped = await client.post("/api/v1/ticks", json={"ticks": batch})
    for r in (response, wrapped):
        assert r.status_code == 413
        assert r.json()["detail"] == ("batch of 10001 ticks exceeds the limit of 10000 ticks per request; "
                                      "split it into smaller batches")
    assert publish.calls == []


async def test_batch_of_exactly_the_limit_is_accepted(app, publish):
    batch = [raw_tick(seconds_ago=25 - i * 0.002) for i in range(10_000)]
    async with client_for(app) as client:
        response = await client.post("/api/v1/ticks", json={"ticks": batch})
    assert response.status_code == 200, response.json()["rejected"][:3]
    assert response.json()["accepted"] == 10_000
    assert len(publish.calls) == 1 and len(publish.calls[0]) == 10_000  # one publish_many per batch


async def test_partial_batch_lists_rejections_and_publishes_the_good_ticks(app, publish):
    batch = [
        raw_tick(3.0, bid="1.10000", ask="1.10010"),
        raw_tick(30.001, bid="1.10001", ask="1.10011"),  # stale
        raw_tick(2.0, symbol="USDJPY", bid="150.000", ask="150.020"),
        raw_tick(1.5, bid="1.10000", ask="1.12000"),  # 200 pips
        {"symbol": "EURUSD", "bid": "1.1"},  # no ts, no ask
        raw_tick(1.0, bid="1.10002", ask="1.10012"),
        raw_tick(3.0, bid="1.10000", ask="1.10010"),  # duplicate of index 0
    ]
    async with client_for(app) as client:
        response = await client.post("/api/v1/ticks", json=batch)
    assert response.status_code == 422
    body = response.json()
    assert body["received"] == 7 and body["accepted"] == 3 and body["duplicates"] == [6]
    assert [(r["index"], r["reason"]) for r in body["rejected"]] == [
        (1, "stale"), (3, "spread_above_max"), (4, "ts_invalid")]
    assert body["rejected"][0]["detail"] == "tick is 30.001 s old (max 30 s)"
    assert body["detail"] == "3 of 7 ticks rejected; 3 accepted ticks published, 1 duplicate dropped"
    assert [(t.symbol, str(t.bid)) for t in publish.ticks] == [
        ("EURUSD", "1.10000"), ("USDJPY", "150.000"), ("EURUSD", "1.10002")]


async def test_a_retried_batch_is_idempotent(app, publish):
    batch = [raw_tick(2.0), raw_tick(1.0, bid="1.10001", ask="1.10011")]
    async with client_for(app) as client:
        first = await client.post("/api/v1/ticks", json=batch)
        second = await client.post("/api/v1/ticks", json=batch)
    assert first.status_code == second.status_code == 200
    assert second.json()["accepted"] == 0 and second.json()["duplicates"] == [0, 1]
    assert len(publish.calls) == 1  # nothing new: publish_many is not called again


async def test_publish_failure_records_nothing(app, publish):
    publish.fail = ConnectionError("redis down")
    async with client_for(app) as client:
        failed = await client.post("/api/v1/ticks", json=[raw_tick(2.0)])
        publish.fail = None
        retried = await client.post("/api/v1/ticks", json=[raw_tick(2.0)])
    assert failed.status_code == 503
    assert failed.headers["retry-after"] == "1"
    assert "nothing was ingested" in failed.json()["detail"] and "redis down" in failed.json()["detail"]
    assert retried.status_code == 200 and retried.json()["accepted"] == 1  # not taken for a duplicate
    assert len(publish.ticks) == 1


@pytest.mark.parametrize(("body", "status", "detail"), [
    (b"{not json", 400, "body is not valid JSON"),
    (b'"EURUSD"', 400, "body must be a tick object"),
    (b'{"ticks": 5}', 400, "`ticks` must be an array"),
])
async def test_malformed_bodies(app, publish, body, status, detail):
    async with client_for(app) as client:
        response = await client.post("/api/v1/ticks", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert response.json()["detail"].startswith(detail)
    assert publish.calls == []


async def test_oversized_body_is_refused(normalizer, publish):
    app = FastAPI()
    app.include_router(build_router(normalizer, publish, max_body_bytes=1000))
    async with client_for(app) as client:
        response = await client.post("/api/v1/ticks", content=json.dumps([raw_tick()] * 20))
    assert response.status_code == 413 and "exceeds the limit of 1000 bytes" in response.json()["detail"]


async def test_latest_prices(app, clock):
    async with client_for(app) as client:
        await client.post("/api/v1/ticks", json=[
            raw_tick(5.0, bid="1.10000", ask="1.10010"), raw_tick(2.0, bid="1.10020", ask="1.10027"),
            raw_tick(4.0, symbol="USDJPY", bid="157.312", ask="157.318", volume=3)])
        clock.advance(10)
        everything = await client.get("/api/v1/prices/latest")
        some = await client.get("/api/v1/prices/latest", params=[("symbol", "usdjpy"), ("symbol", "GBPUSD")])
    assert everything.status_code == 200
    assert everything.json() == {
        "as_of": "2025-01-06T12:00:40Z",
        "prices": [
            {"symbol": "EURUSD", "ts": "2025-01-06T12:00:28Z", "bid": "1.10020", "ask": "1.10027", "volume": None,
             "spread_pips": "0.7", "age_seconds": 12.0},
            {"symbol": "USDJPY", "ts": "2025-01-06T12:00:26Z", "bid": "157.312", "ask": "157.318", "volume": 3,
             "spread_pips": "0.6", "age_seconds": 14.0},
        ],
        "missing": [],
    }
    assert [p["symbol"] for p in some.json()["prices"]] == ["USDJPY"]
    assert some.json()["missing"] == ["GBPUSD"]


async def test_shared_pipeline_and_openapi(normalizer, publish):
    pipeline = TickPipeline(normalizer, publish)
    app = FastAPI()
    app.include_router(build_router(normalizer, publish, pipeline=pipeline))
    result = await pipeline.submit([raw_tick(3.0)])  # e.g. from the CSV bridge
    async with client_for(app) as client:
        response = await client.post("/api/v1/ticks", json=[raw_tick(3.0)])
    assert len(result.accepted) == 1
    assert response.json()["duplicates"] == [0]  # same state behind both entry points
    paths = app.openapi()["paths"]
    assert {"/api/v1/ticks", "/api/v1/prices/latest"} <= set(paths)
    assert "oneOf" in paths["/api/v1/ticks"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    with pytest.raises(ValueError):
        build_router(TickNormalizer(TestClock(NOW)), publish, pipeline=pipeline)
