"""PostgreSQL failover on loopback with real processes: a primary and a synchronous streaming replica.
The services' store (runtime/store/database.py) connects with the multi-host URL and
`target_session_attrs=read-write`: after a SIGKILL of the primary and the replica's promotion, the
pool reconnects to the new primary and every commit that had returned is there.

Synchronous replication is what makes "committed" survive the loss of the primary; its cost is
measured (commits per second, one connection, with and without it) and printed, not asserted."""

from __future__ import annotations

import asyncio
import time

import psycopg

from eafix.runtime.settings import Settings
from eafix.runtime.store.database import Database
from service.pg_replication import replicated_postgres

TABLE = "CREATE TABLE ledger (seq integer PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())"


def _settings(pg) -> Settings:
    return Settings(name="risk-manager", postgres_url=pg.url, postgres_user=pg.user, postgres_password=pg.password)


async def _commits(db: Database, start: int, count: int) -> list[int]:
    done = []
    for seq in range(start, start + count):
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO ledger (seq) VALUES (%s)", (seq,))
        done.append(seq)
    return done


def test_a_promoted_synchronous_replica_has_every_commit_and_the_pool_follows_it():
    with replicated_postgres(synchronous=True) as pg:
        with pg.admin(pg.ports[0]) as admin:
            admin.execute(TABLE)
            admin.execute(f"GRANT ALL ON ledger TO {pg.user}")

        async def scenario() -> tuple[list[int], float]:
            db = Database.from_settings(_settings(pg), min_size=1, max_size=2, timeout=5)
            await db.open()
            try:
                committed = await _commits(db, 0, 200)
                pg.kill_primary()
                killed = time.monotonic()
                pg.promote()
                seq, recovered = 200, None
                while recovered is None:  # the store's callers retry (the bus redelivers); so does this loop
                    try:
                        committed += await _commits(db, seq, 1)
                        recovered = time.monotonic() - killed
                    except psycopg.OperationalError:
                        await asyncio.sleep(0.1)
                committed += await _commits(db, seq + 1, 99)
                return committed, recovered
            finally:
                await db.close()

        committed, recovered = asyncio.run(asyncio.wait_for(scenario(), 120))
        with pg.admin(pg.ports[1]) as new_primary:
            stored = [r[0] for r in new_primary.execute("SELECT seq FROM ledger ORDER BY seq")]
            assert new_primary.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        assert stored == committed == list(range(300)), "every returned commit survived the failover"
        print(f"\npostgres failover: first commit on the promoted replica {recovered:.1f} s after SIGKILL")


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
            with pg.admin(pg.ports[1]) as replica:
                assert replica.execute("SELECT count(*) FROM ledger").fetchone() is not None
    assert all(rate > 0 for rate in rates.values())
    print(f"\ncommits/s, one connection: async replication {rates[False]:.0f}, synchronous {rates[True]:.0f}")
