"""Readiness checks of the backends a service is configured with (Redis PING, Postgres SELECT 1).

Liveness (/healthz) deliberately checks nothing: a Redis outage must make pods unready (no
traffic), not restart them all in a loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import psycopg
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from eafix.runtime.redis_client import redis_client
from eafix.runtime.settings import Settings, postgres_conninfo, postgres_credentials

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 2.0  # seconds per dependency; the chart's readiness probe times out at 5 s


def _error(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g} s"
    text = " ".join(str(exc).split())  # libpq messages span lines
    return f"{type(exc).__name__}: {text}"[:300]


class Backends:
    """The service's connections to Redis and PostgreSQL, and their readiness checks.

    Only backends with a URL in the settings are checked. The Redis client is created on first
    use and closed by `aclose()` (app shutdown); Postgres is checked with a fresh connection so a
    check never reuses a connection that silently died.
    """

    def __init__(self, settings: Settings, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.settings = settings
        self.timeout = timeout
        self._redis: aioredis.Redis | None = None
        self._last_failing: frozenset[str] = frozenset()

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            self._redis = redis_client(
                self.settings,
                socket_connect_timeout=self.timeout,
                socket_timeout=self.timeout,
                # One immediate retry: a pooled connection the server dropped fails once before the
                # pool reconnects; more retries with backoff would only outlast the probe timeout.
                retry=Retry(NoBackoff(), 1),
                client_name=f"{self.settings.name}-readyz",  # who is who in CLIENT LIST
            )
        return self._redis

    async def _check_redis(self) -> None:
        await self.redis.ping()

    async def _check_postgres(self) -> None:
        conninfo = postgres_conninfo(self.settings)
        if conninfo is None:
            raise RuntimeError(f"{self.settings.name} has no PostgreSQL configured")
        conn = await psycopg.AsyncConnection.connect(
            conninfo,
            **postgres_credentials(self.settings),
            connect_timeout=max(2, round(self.timeout)),  # libpq's minimum is 2 s
            autocommit=True,
            application_name=f"{self.settings.name}-readyz",
        )
        async with conn:
            await conn.execute("SELECT 1")

    def checks(self) -> dict[str, Callable[[], Awaitable[None]]]:
        found: dict[str, Callable[[], Awaitable[None]]] = {}
        if self.settings.redis_url:
            found["redis"] = self._check_redis
        if self.settings.postgres_url:
            found["postgres"] = self._check_postgres
        return found

    async def readiness(self) -> tuple[bool, dict[str, dict[str, str]]]:
        """(all up, {dependency: {"status": "up"} or {"status": "down", "error": ...}})."""
        checks = self.checks()

        async def run(check: Callable[[], Awaitable[None]]) -> dict[str, str]:
            try:
                await asyncio.wait_for(check(), self.timeout)
            except Exception as exc:  # any failure means "not ready"; the message says which
                return {"status": "down", "error": _error(exc, self.timeout)}
            return {"status": "up"}

        results = dict(zip(checks, await asyncio.gather(*(run(c) for c in checks.values())), strict=True))
        failing = frozenset(name for name, r in results.items() if r["status"] != "up")
        if failing != self._last_failing:  # log transitions only: probes run every few seconds
            if failing:
                log.warning("not ready", extra={"failing": {n: results[n]["error"] for n in sorted(failing)}})
            else:
                log.info("ready again", extra={"checked": sorted(results)})
            self._last_failing = failing
        return not failing, results

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
