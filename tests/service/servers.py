"""Throwaway Redis and PostgreSQL servers for the integration tests: the platform's own
(`eafix.local.servers`, which `eafix up` runs on too). EAFIX_TEST_REDIS_URL / EAFIX_TEST_POSTGRES_URL
name existing servers instead (their credentials are split off the URL; Postgres must enforce
passwords)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

from eafix.local.servers import (
    STARTUP_LIMIT,
    PostgresServer,
    RedisServer,
    free_port,
    postgres_bindir,
    postgres_server,
    redis_server,
)

__all__ = ["STARTUP_LIMIT", "PostgresServer", "RedisServer", "external_postgres", "external_redis", "free_port",
           "postgres_bindir", "postgres_server", "redis_server"]


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def external_redis(url: str) -> RedisServer:
    parts = urlsplit(url)
    return RedisServer(_without_userinfo(url), unquote(parts.password) if parts.password else None)


def external_postgres(url: str) -> PostgresServer:
    parts = urlsplit(url)
    if not parts.username or not parts.password:
        raise RuntimeError("EAFIX_TEST_POSTGRES_URL must carry user and password (password auth is tested)")
    return PostgresServer(_without_userinfo(url), unquote(parts.username), unquote(parts.password))
