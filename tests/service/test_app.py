"""The app factory: health endpoints, OpenAPI metadata, metrics labelled by route template."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from fastapi import HTTPException
from prometheus_client.parser import text_string_to_metric_families

from eafix import __version__, services
from eafix.runtime.app import create_app
from eafix.runtime.metrics import UNMATCHED
from eafix.runtime.settings import Settings
from service.asgi import client_for

pytestmark = pytest.mark.anyio


def samples(text: str, name: str) -> list:
    return [s for family in text_string_to_metric_families(text) for s in family.samples if s.name == name]


@pytest.fixture
def app():
    spec = services.get("risk-manager")
    app = create_app(spec, Settings(name=spec.name))  # no backends configured

    @app.get("/api/v1/orders/{order_id}")
    async def order(order_id: str) -> dict[str, str]:
        if order_id == "missing":
            raise HTTPException(404)
        return {"order_id": order_id}

    return app


def test_openapi_metadata(app):
    schema = app.openapi()
    assert schema["info"]["title"] == "risk-manager"
    assert schema["info"]["version"] == __version__
    assert {"/healthz", "/readyz", "/metrics"} <= set(schema["paths"])


async def test_health_endpoints_without_backends(app):
    async with client_for(app) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {}, "version": version("eafix")}


async def test_request_metrics_use_the_route_template(app):
    async with client_for(app) as client:
        for order_id in ("A1", "B2", "missing"):
            await client.get(f"/api/v1/orders/{order_id}")
        await client.get("/no/such/path")
        text = (await client.get("/metrics")).text
    requests = samples(text, "eafix_http_requests_total")
    counts = {(s.labels["route"], s.labels["status"]): s.value for s in requests}
    assert counts[("/api/v1/orders/{order_id}", "200")] == 2
    assert counts[("/api/v1/orders/{order_id}", "404")] == 1
    assert counts[(UNMATCHED, "404")] == 1
    assert not any("A1" in route or "/no/such" in route for route, _ in counts)
    assert all(s.labels["service"] == "risk-manager" and s.labels["method"] == "GET" for s in requests)
    histogram = samples(text, "eafix_http_request_duration_seconds_count")
    durations = {s.labels["route"]: s.value for s in histogram}
    assert durations["/api/v1/orders/{order_id}"] == 3


async def test_build_info(app):
    async with client_for(app) as client:
        text = (await client.get("/metrics")).text
    (info,) = samples(text, "eafix_build_info")
    assert info.labels == {"service": "risk-manager", "version": __version__}
    assert info.value == 1


async def test_metrics_content_type(app):
    async with client_for(app) as client:
        response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")


async def test_each_app_has_its_own_registry():
    spec = services.get("reporter")
    first, second = (create_app(spec, Settings(name=spec.name)) for _ in range(2))
    async with client_for(first) as a, client_for(second) as b:
        await a.get("/healthz")
        await a.get("/healthz")
        text = (await b.get("/metrics")).text
    healthz = [s for s in samples(text, "eafix_http_requests_total") if s.labels["route"] == "/healthz"]
    assert healthz == []


async def test_correlation_id_is_echoed_or_created(app):
    async with client_for(app) as client:
        given = await client.get("/healthz", headers={"X-Correlation-ID": "trade-7"})
        created = await client.get("/healthz")
    assert given.headers["x-correlation-id"] == "trade-7"
    assert len(created.headers["x-correlation-id"]) == 32
