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

Failover: `SERVICE_POSTGRES_URL` may name several hosts with `target_session_attrs=read-write`
(libpq connects to the one that accepts writes). While none does (the primary died, the replica is
not promoted yet) `connection()`/`transaction()` wait for a connection with jittered exponential
backoff for up to `reconnect_timeout`: nothing of the block has run then, so waiting is always
safe. A block that fails half-way is not repeated (its outcome may be unknown); its caller redoes it
(the bus redelivers, handlers are idempotent). A pooled connection whose server turned into a
standby (READ ONLY errors) is discarded, so the next block connects to the new primary. A connection
taken from the pool is checked with a round trip first, unless it came back alive under a second ago
(`CHECK_AFTER_IDLE_SECONDS`): a restart within that second shows as the block's own error.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import TracebackType

import psycopg
from psycopg import errors
from psycopg_pool import AsyncConnectionPool

from eafix.runtime.bus.base import Backoff, error_text
from eafix.runtime.settings import Settings, env_name, postgres_conninfo, postgres_credentials, redact

log = logging.getLogger(__name__)

# How long the pool retries one lost connection (psycopg_pool: 1, 2, 4, 8 ... s apart) before it gives
# up; a caller waiting for a connection then starts a new attempt at once. psycopg_pool's 300 s
# default let the gaps grow past the outage: PostgreSQL back after 30 s, the next attempt 30 s later.
POOL_RECONNECT_SECONDS = 5.0
# A connection that came back to the pool alive (idle, after its block) less than this long ago is
# handed out without the pool's check (a round trip per checkout: on a busy service one per handled
# message). A server that died within it fails the block instead, the path every block has anyway
# (its caller redoes it).
CHECK_AFTER_IDLE_SECONDS = 1.0


class StoreError(Exception):
    """The store cannot be used as configured. str() is one line."""


class Database:
    """An `AsyncConnectionPool` with a transaction helper; open it before use, close it at shutdown."""

    def __init__(self, conninfo: str, *, credentials: Mapping[str, str] | None = None, min_size: int = 1,
                 max_size: int = 4, timeout: float = 10.0, application_name: str | None = None,
                 reconnect_timeout: float = 60.0) -> None:
        kwargs: dict[str, str | int] = dict(credentials or {})
        self._returned: weakref.WeakKeyDictionary[psycopg.AsyncConnection, float] = weakref.WeakKeyDictionary()
        self.reconnect_timeout = reconnect_timeout  # seconds a block waits for a server that accepts writes
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
            check=self._check,  # no dead connection after a server restart
            reset=self._came_back,  # called with the connections that return alive
            reconnect_timeout=POOL_RECONNECT_SECONDS,
            name=application_name,
        )

    async def _came_back(self, conn: psycopg.AsyncConnection) -> None:
        self._returned[conn] = time.monotonic()

    async def _check(self, conn: psycopg.AsyncConnection) -> None:
        returned = self._returned.get(conn)
        if returned is None or time.monotonic() - returned >= CHECK_AFTER_IDLE_SECONDS:
            await AsyncConnectionPool.check_connection(conn)

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

    async def _getconn(self) -> psycopg.AsyncConnection:
        """A pooled connection, waiting with backoff while no server accepts one (see the module docstring)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reconnect_timeout
        backoff = Backoff(0.1, 2.0)  # on top of the pool's own wait (`timeout`) per attempt
        while True:
            try:
                return await self.pool.getconn()
            except psycopg.OperationalError as exc:  # PoolTimeout: no connection could be made in time
                delay = backoff.next()
                if self.pool.closed or loop.time() + delay > deadline:
                    raise
                log.warning("PostgreSQL unavailable; waiting for a server that accepts writes",
                            extra={"store": redact(self.conninfo), "error": error_text(exc), "retry_in_s": delay})
                await asyncio.sleep(delay)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled connection (not autocommit): committed when the block ends, rolled back on an error."""
        conn = await self._getconn()
        try:
            async with conn:  # a pooled connection is committed or rolled back here, not closed
                yield conn
        except errors.ReadOnlySqlTransaction:
            await conn.close()  # its server is a standby now: the pool replaces the connection
            raise
        finally:
            await self.pool.putconn(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """One explicit transaction on a pooled connection: COMMIT at the end, ROLLBACK on an exception."""
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def ping(self) -> None:
        """Round trip to the server (raises psycopg errors)."""
        async with self.pool.connection() as conn:
            await conn.execute("SELECT 1")
