"""The one place a service's Redis client is built: straight from `SERVICE_REDIS_URL`, or through
Redis Sentinel when `SERVICE_REDIS_SENTINELS` names sentinels.

With Sentinel the client asks the sentinels for the current primary of `SERVICE_REDIS_SENTINEL_MASTER`
whenever it opens a connection, so after a failover the next connection (the bus retries failed
calls itself; the readiness probe retries once) reaches the promoted replica. A connection to a
former primary that came back as a replica fails with READONLY on the first write and is replaced.
The URL's host is not used then; its scheme (`rediss` for TLS) and database still are, and the
password (URL or `SERVICE_REDIS_PASSWORD`) is the data nodes'. Sentinels are asked with the same
password (Bitnami's chart sets one `auth.password` for both).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

from eafix.runtime.settings import Settings, redis_url


def sentinel_hosts(value: str) -> list[tuple[str, int]]:
    hosts = []
    for item in value.split(","):
        host, _, port = item.strip().rpartition(":")
        hosts.append((host.strip("[]"), int(port)))
    return hosts


def redis_client(settings: Settings, **options: Any) -> aioredis.Redis:
    """A client for the service's Redis; `options` are redis-py connection options (timeouts, retry,
    client_name). Raises RuntimeError without a configured Redis."""
    url = redis_url(settings)
    if url is None:
        raise RuntimeError(f"{settings.name} has no Redis configured")
    if not settings.redis_sentinels:
        return aioredis.Redis.from_url(url, **options)
    parts = urlsplit(url)
    db = int(parts.path.lstrip("/") or 0)
    password = unquote(parts.password) if parts.password else None
    auth: dict[str, Any] = {"password": password} if password else {}
    if parts.scheme == "rediss":
        options = {**options, "ssl": True}
    sentinel_options = {k: v for k, v in options.items() if k in ("socket_connect_timeout", "socket_timeout", "ssl")}
    sentinel = Sentinel(sentinel_hosts(settings.redis_sentinels), sentinel_kwargs={**sentinel_options, **auth},
                        **options)
    return sentinel.master_for(settings.redis_sentinel_master, db=db, **auth)


__all__ = ["redis_client", "sentinel_hosts"]
