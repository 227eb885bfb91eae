"""Helpers the test_service_<name>.py modules share: a service's app built from SERVICE_* variables
(`ServiceEnv`) on its own Redis database, `publish` and `read` on its topics, `eventually`, `started`."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from eafix import services
from eafix.contracts import make_envelope, parse_envelope
from eafix.contracts.events import Event
from eafix.runtime.app import create_app
from eafix.runtime.clock import WallClock
from eafix.runtime.service import build_parts, settings_class
from eafix.runtime.settings import load_settings
from service.asgi import client_for
from service.servers import PostgresServer, RedisServer

GUARD = 60.0  # seconds: waits guard against hangs, they never assert speed
SERVICE_TEST_REDIS_DB = 7  # the service tests use real topic names: their own database, flushed per test
# short reads; leases long enough that a loaded machine does not make them lapse (a takeover after a
# graceful stop is immediate: the leases are released)
FAST_BUS = json.dumps({"block_ms": 50, "lease_ms": 3000})


async def eventually(check: Callable[[], Any], what: str, timeout: float = GUARD) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.02)


class ServiceEnv:
    """Builds a service's app from the environment, as `eafix serve` does (SERVICE_* variables)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer, tmp_path: Path,
                 postgres: PostgresServer | None = None) -> None:
        self.monkeypatch, self.tmp_path, self.postgres = monkeypatch, tmp_path, postgres
        base = redis_server.url.rsplit("/", 1)[0]
        self.redis_url, self.redis_password = f"{base}/{SERVICE_TEST_REDIS_DB}", redis_server.password

    def redis(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(self.redis_url, password=self.redis_password, decode_responses=True)

    def configure(self, name: str, consumer: str = "pod-0", **settings: str) -> None:
        for key in list(os.environ):
            if key.startswith("SERVICE_"):
                self.monkeypatch.delenv(key)
        env = {"SERVICE_REDIS_URL": self.redis_url, "SERVICE_CONSUMER_NAME": consumer, "SERVICE_BUS": FAST_BUS,
               "SERVICE_SECRETS_DIR": str(self.tmp_path / "no-secrets")}
        if self.redis_password:
            env["SERVICE_REDIS_PASSWORD"] = self.redis_password
        if self.postgres is not None and services.get(name).uses_postgres:
            env.update({"SERVICE_POSTGRES_URL": self.postgres.url, "SERVICE_POSTGRES_USER": self.postgres.user,
                        "SERVICE_POSTGRES_PASSWORD": self.postgres.password})
        env.update({f"SERVICE_{key.upper()}": value for key, value in settings.items()})
        for key, value in env.items():
            self.monkeypatch.setenv(key, value)

    def app(self, name: str, consumer: str = "pod-0", **settings: str) -> FastAPI:
        self.configure(name, consumer, **settings)
        spec = services.get(name)
        loaded = load_settings(spec, settings_class(spec))
        return create_app(spec, loaded, build_parts(spec, loaded))


async def fresh_env(monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer, tmp_path: Path,
                    postgres: PostgresServer | None = None) -> ServiceEnv:
    """A ServiceEnv on an empty Redis database (each module's `env` fixture calls this)."""
    env = ServiceEnv(monkeypatch, redis_server, tmp_path, postgres)
    async with redis_client(env) as client:
        await client.flushdb()
    return env


@asynccontextmanager
async def redis_client(env: ServiceEnv) -> AsyncIterator[aioredis.Redis]:
    client = env.redis()
    try:
        yield client
    finally:
        await client.aclose()


async def publish(env: ServiceEnv, *events: Event, producer: str = "test") -> list[dict]:
    """Publish events as their producers would (envelope JSON in the `envelope` field)."""
    docs = []
    async with redis_client(env) as client:
        for event in events:
            doc = make_envelope(event, producer, WallClock().now()).model_dump(mode="json")
            await client.xadd(event.TOPIC, {"envelope": json.dumps(doc)})
            docs.append(doc)
    return docs


async def read(env: ServiceEnv, topic: str) -> list:
    """The envelopes (validated models) on `topic`, oldest first."""
    async with redis_client(env) as client:
        return [parse_envelope(fields["envelope"]) for _, fields in await client.xrange(topic)]


@asynccontextmanager
async def started(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running (start steps done, bus consuming), and an HTTP client."""
    async with client_for(app) as client:
        yield client
