"""The services' pool after a PostgreSQL outage (a real server, shut down and started again): the first
connection asked for once the server is back is given, instead of a pool timeout while psycopg_pool's
reconnect attempt sleeps through a backoff that grew during the outage (issue 13's fault suite
measured 26 s of standstill after a 30 s outage)."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from eafix.runtime.store import Database
from service.servers import RestartablePostgres

DOWN = 20.0  # seconds: psycopg_pool's attempts (0, 1, 3, 7, 15, 31 s) would leave 11 s without one


@pytest.fixture
def pg():
    server = RestartablePostgres()
    try:
        server.create()
        yield server
    finally:
        server.remove()


def test_the_first_connection_asked_for_after_an_outage_is_given(pg: RestartablePostgres) -> None:
    async def scenario() -> list[str]:
        # timeout: how long one getconn waits; reconnect_timeout 0: no retrying around it (one try)
        db = Database(pg.url, credentials={"user": pg.user, "password": pg.password}, timeout=5.0,
                      reconnect_timeout=0)
        await db.open()
        outcomes = []
        try:
            pg.stop()
            down_until = time.monotonic() + DOWN
            while time.monotonic() < down_until:  # the services keep asking while it is down
                try:
                    async with db.connection() as conn:
                        await conn.execute("SELECT 1")
                    outcomes.append("connected while down?")
                except psycopg.OperationalError:
                    outcomes.append("refused")
            pg.start()
            try:
                async with db.connection() as conn:
                    await conn.execute("SELECT 1")
                outcomes.append("connected")
            except psycopg.OperationalError as exc:
                outcomes.append(f"{type(exc).__name__}: {exc}")
        finally:
            await db.close()
        return outcomes

    outcomes = asyncio.run(scenario())
    assert set(outcomes[:-1]) == {"refused"} and outcomes[-1] == "connected", outcomes


def test_the_check_round_trip_is_skipped_only_for_a_connection_back_alive_under_a_second_ago(
        pg: RestartablePostgres, monkeypatch) -> None:
    from psycopg_pool import AsyncConnectionPool

    from eafix.runtime.store import database

    checks: list[object] = []
    real_check = AsyncConnectionPool.check_connection

    async def counted(conn) -> None:
        checks.append(conn)
        await real_check(conn)

    monkeypatch.setattr(AsyncConnectionPool, "check_connection", staticmethod(counted))

    async def select_one(db: Database) -> None:
        async with db.connection() as conn:
            await conn.execute("SELECT 1")

    async def scenario() -> list[str]:
        db = Database(pg.url, credentials={"user": pg.user, "password": pg.password}, max_size=1)
        await db.open()
        outcomes = []
        try:
            await select_one(db)  # never returned before: checked
            for _ in range(20):  # back alive a moment ago each time: not checked
                await select_one(db)
            outcomes.append(f"checks {len(checks)}")
            # A restart while the connection idles past the window: the check finds it dead and the
            # pool gives a new one, so the block runs.
            pg.stop()
            pg.start()
            await asyncio.sleep(database.CHECK_AFTER_IDLE_SECONDS + 0.2)
            await select_one(db)
            outcomes.append("after an idle restart: ran")
            # Inside the window (made longer here than a restart takes) the block itself meets the dead
            # connection: an OperationalError its caller redoes (the bus keeps the message), then it runs.
            monkeypatch.setattr(database, "CHECK_AFTER_IDLE_SECONDS", 3600.0)
            pg.stop()
            pg.start()
            try:
                await select_one(db)
                outcomes.append("ran on the dead connection?")
            except psycopg.OperationalError:
                outcomes.append("failed once")
            await select_one(db)
            outcomes.append("then ran")
        finally:
            await db.close()
        return outcomes

    assert asyncio.run(scenario()) == ["checks 1", "after an idle restart: ran", "failed once", "then ran"]
