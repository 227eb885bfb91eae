"""`Database`: the services' PostgreSQL access, an async connection pool built from Settings.

    db = Database.from_settings(settings)
    async with db:                                   # opens the pool (waits for min_size connections)
        async with db.transaction() as conn:         # BEGIN ... COMMIT, ROLLBACK on an exception
            await conn.execute("INSERT INTO risk.limits (symbol, max_lots) VALUES (%s, %s)",
                               ("EURUSD", Decimal("2.50")))

Parameters are always bound (`%s` placeholders), never formatted into the SQL text. `numeric`
columns come back as `decimal.Decimal` and `Decimal` parameters are sent as `numeric` (psycopg's
default adapters, which this module never replaces), so money and prices never pass through float.
Credentials come from `postgres_credentials()` (the secret files), never from the URL text that
gets logged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import TracebackType

import psycopg
from psycopg_pool import AsyncConnectionPool

from eafix.runtime.settings import Settings, env_name, postgres_conninfo, postgres_credentials, redact


class StoreError(Exception):
    """The store cannot be used as configured. str() is one line."""


class Database:
    """An `AsyncConnectionPool` with a transaction helper; open it before use, close it at shutdown."""

    def __init__(self, conninfo: str, *, credentials: Mapping[str, str] | None = None, min_size: int = 1,
                 max_size: int = 4, timeout: float = 10.0, application_name: str | None = None) -> None:
        kwargs: dict[str, str | int] = dict(credentials or {})
        if application_name:
            kwargs["application_name"] = application_name
        self.conninfo = conninfo
        self.pool = AsyncConnectionPool(
            conninfo,
            kwargs=kwargs,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,  # waiting for a free connection
            open=False,
            check=AsyncConnectionPool.check_connection,  # no dead connection after a server restart
            name=application_name,
        )

    @classmethod
    def from_settings(cls, settings: Settings, **pool_options) -> Database:
        """A pool on `SERVICE_POSTGRES_URL` with the user/password read from the secret files."""
        conninfo = postgres_conninfo(settings)
        if not conninfo:
            raise StoreError(f"{env_name('postgres_url')}: missing; {settings.name} needs PostgreSQL")
        pool_options.setdefault("application_name", settings.name)
        return cls(conninfo, credentials=postgres_credentials(settings), **pool_options)

    async def open(self, *, wait: bool = True, timeout: float = 30.0) -> None:
        """Open the pool; with `wait`, fail (StoreError) unless min_size connections succeed in time."""
        try:
            await self.pool.open(wait=wait, timeout=timeout)
        except psycopg.Error as exc:  # PoolTimeout is a psycopg.OperationalError
            await self.pool.close()
            detail = " ".join(str(exc).split())
            raise StoreError(f"PostgreSQL at {redact(self.conninfo)}: {detail}") from exc

    async def close(self) -> None:
        await self.pool.close()

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled connection (not autocommit): committed when the block ends, rolled back on an error."""
        async with self.pool.connection() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """One explicit transaction on a pooled connection: COMMIT at the end, ROLLBACK on an exception."""
        async with self.pool.connection() as conn, conn.transaction():
            yield conn

    async def ping(self) -> None:
        """Round trip to the server (raises psycopg errors)."""
        async with self.pool.connection() as conn:
            await conn.execute("SELECT 1")
