"""/readyz and /healthz against real Redis and PostgreSQL servers, credentials from secret files."""

from __future__ import annotations

from importlib.metadata import version

import pytest
import redis

from eafix import services
from eafix.runtime.app import create_app
from eafix.runtime.settings import load_settings
from service.asgi import client_for
from service.servers import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def configure(monkeypatch, secrets_dir, redis_server, postgres_server):
    """Environment as the chart sets it: URLs in SERVICE_*_URL, credentials as mounted files."""

    def _configure(service="risk-manager", *, redis_url=None, redis_password=None, postgres_url=None,
                   postgres_password=None):
        monkeypatch.setenv("SERVICE_REDIS_URL", redis_url or redis_server.url)
        files = {}
        password = redis_password or redis_server.password
        if password:
            files["SERVICE_REDIS_PASSWORD"] = password
        if services.get(service).uses_postgres:
            monkeypatch.setenv("SERVICE_POSTGRES_URL", postgres_url or postgres_server.url)
            files["SERVICE_POSTGRES_USER"] = postgres_server.user
            files["SERVICE_POSTGRES_PASSWORD"] = postgres_password or postgres_server.password
        secrets_dir(**files)
        spec = services.get(service)
        return create_app(spec, load_settings(spec))

    return _configure


async def readyz(app) -> tuple[int, dict]:
    async with client_for(app) as client:
        response = await client.get("/readyz")
    return response.status_code, response.json()


async def test_ready_when_redis_and_postgres_answer(configure):
    status, body = await readyz(configure())
    assert status == 200
    assert body == {"status": "ready", "checks": {"redis": {"status": "up"}, "postgres": {"status": "up"}},
                    "version": version("eafix")}


async def test_only_configured_backends_are_checked(configure):
    status, body = await readyz(configure("data-ingestor"))
    assert status == 200
    assert set(body["checks"]) == {"redis"}


async def test_redis_on_a_closed_port(configure):
    status, body = await readyz(configure(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["status"] == "down"
    assert "ConnectionError" in body["checks"]["redis"]["error"]
    assert body["checks"]["postgres"] == {"status": "up"}


async def test_redis_with_a_wrong_password(configure):
    status, body = await readyz(configure("data-ingestor", redis_password="not-the-password"))
    assert status == 503
    assert body["checks"]["redis"]["status"] == "down"
    assert "password" in body["checks"]["redis"]["error"].lower()
    assert "not-the-password" not in str(body)


async def test_postgres_with_a_wrong_password(configure, postgres_server):
    status, body = await readyz(configure(postgres_password="not-the-password"))
    assert status == 503
    assert body["checks"]["redis"] == {"status": "up"}
    assert body["checks"]["postgres"]["status"] == "down"
    error = body["checks"]["postgres"]["error"]
    assert "password authentication failed" in error
    assert f'"{postgres_server.user}"' in error
    assert "not-the-password" not in str(body)


async def test_healthz_stays_ok_while_dependencies_are_down(configure):
    app = configure(redis_url=f"redis://127.0.0.1:{free_port()}/0",
                    postgres_url=f"postgresql://127.0.0.1:{free_port()}/eafix_trading?sslmode=disable")
    async with client_for(app) as client:
        ready = await client.get("/readyz")
        health = await client.get("/healthz")
    assert ready.status_code == 503
    assert {name for name, check in ready.json()["checks"].items() if check["status"] == "down"} == {
        "redis", "postgres"}
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}


async def test_a_dropped_redis_connection_does_not_stick(configure, redis_server):
    """Probes reuse one Redis client; after the server drops its connection (failover, idle
    timeout) the next probe must reconnect rather than report the dead socket."""
    app = configure("data-ingestor")
    async with client_for(app) as client:
        before = await client.get("/readyz")
        with redis.Redis.from_url(redis_server.url, password=redis_server.password) as admin:
            ids = [c["id"] for c in admin.client_list() if c["name"] == "data-ingestor-readyz"]
            assert len(ids) == 1
            admin.client_kill_filter(_id=ids[0])
            assert not [c for c in admin.client_list() if c["name"] == "data-ingestor-readyz"]
        after = await client.get("/readyz")
    assert (before.status_code, after.status_code) == (200, 200)
