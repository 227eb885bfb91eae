"""Throwaway Redis and PostgreSQL servers from the installed Debian binaries (`redis-server`,
`/usr/lib/postgresql/*/bin`): `eafix up` runs the platform on them, and the integration tests too.

Both listen on 127.0.0.1 on a free port and require a password, so clients take the same
authenticated paths as in production. Each lives in a temporary directory removed when it stops.

PostgreSQL's initdb refuses to run as root, so as root the cluster is created and run as the
`postgres` user (`runuser`) in a directory that user owns, with a private socket directory.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
from psycopg import sql

STARTUP_LIMIT = 30.0  # seconds: a guard against hanging


@dataclass(frozen=True)
class RedisServer:
    url: str  # no credentials: the password travels as a secret file
    password: str | None


@dataclass(frozen=True)
class PostgresServer:
    url: str  # postgresql://host:port/db, no credentials
    user: str
    password: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(ready, proc: subprocess.Popen | None, log: Path, what: str) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT
    while True:
        try:
            ready()
            return
        except Exception as exc:
            if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"{what} did not start: {exc}\n{tail}") from exc
        time.sleep(0.05)


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    workdir = Path(tempfile.mkdtemp(prefix="eafix-redis-"))
    port, password = free_port(), secrets.token_urlsafe(16)
    log = workdir / "redis.log"
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--logfile", str(log), "--requirepass", password],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    try:
        def ping() -> None:
            with redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=1) as r:
                r.ping()

        _wait(ping, proc, log, "redis-server")
        yield RedisServer(f"redis://127.0.0.1:{port}/0", password)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def postgres_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("no PostgreSQL binaries: neither /usr/lib/postgresql/*/bin nor initdb on PATH")
    return Path(initdb).parent


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    bindir = postgres_bindir()
    workdir = Path(tempfile.mkdtemp(prefix="eafix-pg-"))
    data, sockdir, log = workdir / "data", workdir / "sock", workdir / "postgres.log"
    sockdir.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb/postgres refuse root
        as_user = ["runuser", "-u", "postgres", "--"]
        for path in (workdir, sockdir):
            shutil.chown(path, "postgres", "postgres")
    port = free_port()

    def run(*cmd: str | Path) -> None:
        done = subprocess.run([*as_user, *map(str, cmd)], capture_output=True, text=True)
        if done.returncode != 0:
            tool = Path(str(cmd[0])).name
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr}{done.stdout}")

    started = False
    try:
        # Local socket: trust (the test's admin connection); TCP: SCRAM passwords (what we test).
        run(bindir / "initdb", "-D", data, "-U", "postgres", "--auth-local=trust",
            "--auth-host=scram-sha-256", "--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C")
        options = (f"-p {port} -k {sockdir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off -c synchronous_commit=off")
        run(bindir / "pg_ctl", "-D", data, "-l", log, "-w", "-t", str(int(STARTUP_LIMIT)), "-o", options,
            "start")
        started = True
        user, password, database = "eafix", secrets.token_urlsafe(16), "eafix_trading"
        with psycopg.connect(host=str(sockdir), port=port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            # CREATEDB: the tests copy a migrated template database per test (conftest.fresh_db_url)
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                sql.Identifier(user), sql.Literal(password)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(database), sql.Identifier(user)))
        yield PostgresServer(f"postgresql://127.0.0.1:{port}/{database}?sslmode=disable", user, password)
    finally:
        if started:
            stop = [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
            subprocess.run([*as_user, *stop], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)
