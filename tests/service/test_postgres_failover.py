"""PostgreSQL failover on loopback with real processes: a primary and a synchronous streaming replica.
The services' store (runtime/store/database.py) connects with the multi-host URL and
`target_session_attrs=read-write`: after a SIGKILL of the primary and the replica's promotion, the
pool reconnects to the new primary and every commit that had returned is there.

Synchronous replication is what makes "committed" survive the loss of the primary; its cost is
measured (commits per second, one connection, with and without it) and printed, not asserted."""

from __future__ import annotations

import asyncio
import logging
import time

import psycopg
import pytest

from eafix.runtime.settings import Settings
from eafix.runtime.store.database import Database
from service.pg_replication import replicated_postgres

pytestmark = pytest.mark.slow  # minutes of real processes: scheduled first (tests/conftest.py)

TABLE = "CREATE TABLE ledger (seq integer PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())"


def _settings(pg) -> Settings:
    return Settings(name="risk-manager", postgres_url=pg.url, postgres_user=pg.user, postgres_password=pg.password)


async def _commits(db: Database, start: int, count: int, *, idempotent: bool = False) -> list[int]:
    done = []
    # idempotent, as the services' handlers are (idempotency keys): a block done again after an error
    # whose COMMIT had in fact landed (the connection lost before its answer) finds its row and stops
    insert = "INSERT INTO ledger (seq) VALUES (%s)" + (" ON CONFLICT (seq) DO NOTHING" if idempotent else "")
    for seq in range(start, start + count):
        async with db.transaction() as conn:
            await conn.execute(insert, (seq,))
        done.append(seq)
    return done


class _Waits(logging.Handler):
    """Sets an event when the store logs that it waits for a writable server."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = asyncio.Event()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "waiting for a server that accepts writes" in record.getMessage():
            self.count += 1
            self.seen.set()


def test_a_promoted_synchronous_replica_has_every_commit_and_the_store_waits_for_it():
    """The store's blocks wait (with backoff) while no server accepts writes: the commit started right
    after the SIGKILL is still waiting when the replica is promoted (the promotion happens only once
    the store has said it waits, as an operator's promotion comes after the failure) and then lands
    on the new primary. Only a block already on a connection to the dead server fails, and its
    caller does it again."""
    with replicated_postgres(synchronous=True) as pg:
        with pg.admin(pg.ports[0]) as admin:
            admin.execute(TABLE)
            admin.execute(f"GRANT ALL ON ledger TO {pg.user}")

        async def scenario() -> tuple[list[int], float, float, int, int]:
            waits = _Waits()
            store_log = logging.getLogger("eafix.runtime.store.database")
            store_log.addHandler(waits)
            level = store_log.level
            store_log.setLevel(logging.WARNING)  # whatever an earlier test left on the root logger
            # timeout 1 s per pool wait: the store's own backoff, not the pool's wait, bridges the gap
            db = Database.from_settings(_settings(pg), min_size=1, max_size=2, timeout=1, reconnect_timeout=120)
            await db.open()
            try:
                committed = await _commits(db, 0, 200)
                pg.kill_primary()
                killed = time.monotonic()

                async def redo() -> list[int]:
                    # as the bus redelivers a failed handler: a block that was on a connection to the
                    # dead server fails (it never reached COMMIT) and is done again
                    while True:
                        try:
                            return await _commits(db, 200, 1, idempotent=True)
                        except psycopg.OperationalError:
                            failed.append(1)
                            await asyncio.sleep(0.05)

                failed: list[int] = []
                pending = asyncio.create_task(redo())
                await asyncio.wait_for(waits.seen.wait(), 60)
                assert not pending.done(), "nothing accepted the commit while no primary existed"
                await asyncio.to_thread(pg.promote)
                promoted = time.monotonic()
                committed += await pending
                done = time.monotonic()
                committed += await _commits(db, 201, 99)
                return committed, done - killed, done - promoted, waits.count, len(failed)
            finally:
                await db.close()
                store_log.removeHandler(waits)
                store_log.setLevel(level)

        committed, since_kill, since_promotion, waited, redone = asyncio.run(asyncio.wait_for(scenario(), 180))
        with pg.admin(pg.ports[1]) as new_primary:
            stored = [r[0] for r in new_primary.execute("SELECT seq FROM ledger ORDER BY seq")]
            assert new_primary.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        assert stored == committed == list(range(300)), "every returned commit survived the failover"
        print(f"\npostgres failover: the commit waiting since the SIGKILL landed {since_kill:.1f} s after it, "
              f"{since_promotion:.1f} s after the promotion (pg_ctl promote -w); the store waited {waited} times, "
              f"the caller redid {redone} blocks that were on the dead server's connection")


def test_a_connection_to_a_server_that_became_read_only_is_replaced():
    """A pooled connection whose server no longer accepts writes (a demoted primary behaves so) fails
    the block with ReadOnlySqlTransaction once and is discarded; the next block gets a new connection,
    which libpq's target_session_attrs=read-write sends to the writable server."""
    with replicated_postgres(synchronous=False) as pg:
        with pg.admin(pg.ports[0]) as admin:
            admin.execute(TABLE)
            admin.execute(f"GRANT ALL ON ledger TO {pg.user}")

        async def scenario() -> tuple[int, int]:
            db = Database.from_settings(_settings(pg), min_size=1, max_size=1)
            await db.open()
            try:
                async with db.connection() as conn:
                    before = (await (await conn.execute("SELECT pg_backend_pid()")).fetchone())[0]
                    # from now on this session refuses writes, as one on a demoted primary would
                    await conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                    await _commits(db, 0, 1)
                await _commits(db, 1, 1)
                async with db.connection() as conn:
                    after = (await (await conn.execute("SELECT pg_backend_pid()")).fetchone())[0]
                return before, after
            finally:
                await db.close()

        before, after = asyncio.run(asyncio.wait_for(scenario(), 60))
        assert before != after, "the read-only connection was replaced"
        with pg.admin(pg.ports[0]) as primary:
            assert [r[0] for r in primary.execute("SELECT seq FROM ledger")] == [1]


def test_the_cost_of_synchronous_replication_is_measured():
    rates = {}
    for synchronous in (False, True):
        with replicated_postgres(synchronous=synchronous) as pg:
            with pg.admin(pg.ports[0]) as admin:
                admin.execute(TABLE)
                admin.execute(f"GRANT ALL ON ledger TO {pg.user}")

            async def measure() -> float:
                async with Database.from_settings(_settings(pg)) as db:
                    started = time.perf_counter()
                    await _commits(db, 0, 300)
                    return 300 / (time.perf_counter() - started)

            rates[synchronous] = asyncio.run(measure())
            with pg.admin(pg.ports[1]) as replica:  # the replica replays every commit (sync: already flushed)
                for _ in range(600):
                    if replica.execute("SELECT count(*) FROM ledger").fetchone() == (300,):
                        break
                    time.sleep(0.05)
                assert replica.execute("SELECT count(*) FROM ledger").fetchone() == (300,)
            with pg.admin(pg.ports[0]) as primary:
                mode = primary.execute("SELECT sync_state FROM pg_stat_replication").fetchone()
                assert mode == ("sync" if synchronous else "async",)
    print(f"\ncommits/s, one connection: async replication {rates[False]:.0f}, synchronous {rates[True]:.0f}")
