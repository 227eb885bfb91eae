"""`Database` on the throwaway PostgreSQL: settings and secret files, transactions, numeric <-> Decimal."""

from __future__ import annotations

import secrets
from decimal import Decimal
from urllib.parse import urlsplit

import psycopg
import pytest

from eafix.runtime.settings import Settings
from eafix.runtime.store import Database, StoreError

pytestmark = pytest.mark.anyio


@pytest.fixture
def db_settings(monkeypatch, secrets_dir, postgres_server) -> Settings:
    """risk-manager settings as the chart provides them: URL in the env, credentials as files."""
    monkeypatch.setenv("SERVICE_POSTGRES_URL", postgres_server.url)
    secrets_dir(SERVICE_POSTGRES_USER=postgres_server.user, SERVICE_POSTGRES_PASSWORD=postgres_server.password)
    return Settings(name="risk-manager")


@pytest.fixture
async def db(db_settings):
    async with Database.from_settings(db_settings) as database:
        yield database


@pytest.fixture
async def table(db):
    """A numeric(20,10) table of its own (the server's database is shared by the session's tests)."""
    name = f"amounts_{secrets.token_hex(4)}"
    async with db.transaction() as conn:
        await conn.execute(f"CREATE TABLE {name} (id serial PRIMARY KEY, amount numeric(20,10) NOT NULL)")
    yield name
    async with db.transaction() as conn:
        await conn.execute(f"DROP TABLE {name}")


async def test_credentials_come_from_the_secret_files(db, postgres_server):
    parts = urlsplit(postgres_server.url)
    assert parts.username is None and parts.password is None  # nothing but the files can authenticate
    async with db.connection() as conn:
        cur = await conn.execute("SELECT current_user, current_setting('application_name')")
        assert await cur.fetchone() == (postgres_server.user, "risk-manager")


async def test_a_wrong_password_fails_to_open_without_showing_it(monkeypatch, secrets_dir, postgres_server):
    monkeypatch.setenv("SERVICE_POSTGRES_URL", postgres_server.url)
    secrets_dir(SERVICE_POSTGRES_USER=postgres_server.user, SERVICE_POSTGRES_PASSWORD="not-the-password-42")
    db = Database.from_settings(Settings(name="risk-manager"))
    with pytest.raises(StoreError) as err:
        await db.open(timeout=2)
    assert postgres_server.url.split("?")[0] in str(err.value)
    assert "not-the-password-42" not in str(err.value) and "\n" not in str(err.value)


def test_no_postgres_url_is_a_clear_error():
    with pytest.raises(StoreError, match="SERVICE_POSTGRES_URL: missing; reporter needs PostgreSQL"):
        Database.from_settings(Settings(name="reporter"))


@pytest.mark.parametrize("text", [
    "1234567890.0123456789",  # all 20 digits: the extremes of numeric(20,10)
    "9999999999.9999999999",
    "-9999999999.9999999999",
    "0.0000000001",
    "-0.0000000001",
    "1.1000000000",
    "0E-10",
])
async def test_numeric_round_trips_as_decimal(db, table, text):
    value = Decimal(text)
    async with db.transaction() as conn:
        cur = await conn.execute(f"INSERT INTO {table} (amount) VALUES (%s) RETURNING id", (value,))
        (row_id,) = await cur.fetchone()
    async with db.connection() as conn:
        cur = await conn.execute(f"SELECT amount, amount::text FROM {table} WHERE id = %s", (row_id,))
        back, as_text = await cur.fetchone()
    assert type(back) is Decimal
    assert back == value
    assert format(back, "f") == as_text  # the server's own rendering, digit for digit (scale 10 kept)


async def test_numeric_is_rounded_by_the_column_not_by_float(db, table):
    async with db.transaction() as conn:
        cur = await conn.execute(f"INSERT INTO {table} (amount) VALUES (%s), (%s), (%s) RETURNING amount", (
            Decimal("0.1"), Decimal("1.00000000005"), Decimal("2.00000000004999")))
        got = [r[0] for r in await cur.fetchall()]
    # numeric(20,10) keeps 10 decimals, rounding half away from zero: worked out by hand
    assert [str(v) for v in got] == ["0.1000000000", "1.0000000001", "2.0000000000"]


async def test_decimal_arithmetic_stays_exact_on_the_server(db):
    async with db.connection() as conn:
        cur = await conn.execute("SELECT %s + %s, pg_typeof(%s)::text", (Decimal("0.1"), Decimal("0.2"), Decimal("1")))
        total, type_name = await cur.fetchone()
    assert total == Decimal("0.3") and type(total) is Decimal  # a float sum would be 0.30000000000000004
    assert type_name == "numeric"


async def test_out_of_range_numeric_is_an_error_not_a_silent_change(db, table):
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        async with db.transaction() as conn:
            await conn.execute(f"INSERT INTO {table} (amount) VALUES (%s)", (Decimal("10000000000"),))


async def test_transaction_commits_at_the_end_of_the_block(db, table):
    async with db.transaction() as conn:
        await conn.execute(f"INSERT INTO {table} (amount) VALUES (%s)", (Decimal("1.5"),))
        await conn.execute(f"INSERT INTO {table} (amount) VALUES (%s)", (Decimal("2.5"),))
    async with db.connection() as conn:
        cur = await conn.execute(f"SELECT sum(amount), count(*) FROM {table}")
        assert await cur.fetchone() == (Decimal("4.0000000000"), 2)


async def test_transaction_rolls_back_everything_on_an_exception(db, table):
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with db.transaction() as conn:
            await conn.execute(f"INSERT INTO {table} (amount) VALUES (%s)", (Decimal("1.5"),))
            raise Boom
    with pytest.raises(psycopg.errors.CheckViolation):
        async with db.transaction() as conn:
            await conn.execute(f"INSERT INTO {table} (amount) VALUES (%s)", (Decimal("7"),))
            await conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT positive CHECK (amount < 0)")
    async with db.connection() as conn:
        cur = await conn.execute(f"SELECT count(*) FROM {table}")
        assert await cur.fetchone() == (0,)
        cur = await conn.execute("SELECT count(*) FROM pg_constraint WHERE conname = 'positive'")
        assert await cur.fetchone() == (0,)


async def test_a_connection_block_is_isolated_from_the_pool_after_an_error(db, table):
    with pytest.raises(psycopg.errors.UndefinedTable):
        async with db.connection() as conn:
            await conn.execute("SELECT * FROM no_such_table_here")
    await db.ping()  # the pool hands out a usable connection afterwards
    async with db.connection() as conn:
        cur = await conn.execute("SELECT 1")
        assert await cur.fetchone() == (1,)


async def test_a_block_waits_for_a_writable_server_with_backoff_then_gives_up(caplog):
    """Nothing listens on the port: the block's connection is retried (each retry logged, the URL
    without credentials) until `reconnect_timeout`, then the pool's error reaches the caller."""
    from eafix.local.servers import free_port

    url = f"postgresql://127.0.0.1:{free_port()}/eafix_trading?sslmode=disable&connect_timeout=1"
    db = Database(url, credentials={"user": "eafix", "password": "never-logged-7"}, timeout=0.2,
                  reconnect_timeout=3)
    await db.open(wait=False)
    try:
        with caplog.at_level("WARNING", logger="eafix.runtime.store.database"), \
                pytest.raises(psycopg.OperationalError):
            async with db.transaction():
                pytest.fail("no server, so the block must not run")
    finally:
        await db.close()
    waits = [r for r in caplog.records if "waiting for a server that accepts writes" in r.getMessage()]
    assert len(waits) >= 2, "retried more than once before giving up"
    assert all(r.store == url and "never-logged-7" not in str(r.__dict__) for r in waits)
