"""Throwaway Redis and PostgreSQL servers for the integration tests: the platform's own
(`eafix.local.servers`, which `eafix up` runs on too). EAFIX_TEST_REDIS_URL / EAFIX_TEST_POSTGRES_URL
name existing servers instead (their credentials are split off the URL; Postgres must enforce
passwords)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg
import redis
from psycopg import sql

from eafix.local.servers import (
    STARTUP_LIMIT,
    PostgresServer,
    RedisServer,
    free_port,
    postgres_bindir,
    postgres_server,
    redis_server,
)

__all__ = ["STARTUP_LIMIT", "AofRedis", "PostgresServer", "RedisServer", "RestartablePostgres", "external_postgres",
           "external_redis", "free_port", "postgres_bindir", "postgres_server", "redis_server"]


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


# eafix-infra's `redis.commonConfiguration` (charts/eafix-infra/values.yaml): AOF fsync every second,
# RDB snapshots, never evict
INFRA_REDIS_CONFIG = ("--appendonly", "yes", "--appendfsync", "everysec", "--auto-aof-rewrite-percentage", "100",
                      "--auto-aof-rewrite-min-size", "64mb", "--save", "900 1 300 10 60 10000",
                      "--maxmemory-policy", "noeviction")


@dataclass
class AofRedis:
    """redis-server with eafix-infra's persistence settings, stopped and started again on its port and
    directory as its pod would be (the fault suite's Redis restart)."""

    workdir: Path
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--requirepass", self.password, *INFRA_REDIS_CONFIG, "--logfile", str(self.workdir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_LIMIT
        while True:
            try:
                with redis.Redis(port=self.port, password=self.password, socket_timeout=1) as r:
                    r.ping()  # answers LOADING until the AOF is read back
                return
            except redis.RedisError:
                assert time.monotonic() < deadline and self.proc.poll() is None, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM: Redis fsyncs the AOF and exits, as when its pod is stopped."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=STARTUP_LIMIT)


@dataclass
class RestartablePostgres:
    """A throwaway PostgreSQL cluster (as `postgres_server`) that can be shut down and started again on
    its port and data directory, as an outage of the database server: `stop()` is pg_ctl's fast
    shutdown (sessions are terminated, as when the pod is stopped), `start()` brings it back."""

    # its own temporary directory: PostgreSQL runs as `postgres` when the tests run as root, and
    # pytest's directories are private to their owner
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="eafix-pg-")))
    port: int = field(default_factory=free_port)
    user: str = "eafix"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    database: str = "eafix_trading"
    as_user: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"postgresql://127.0.0.1:{self.port}/{self.database}?sslmode=disable"

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    def _run(self, tool: str, *args: str | Path) -> None:
        done = subprocess.run([*self.as_user, str(postgres_bindir() / tool), *map(str, args)], capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr}{done.stdout}")

    def create(self) -> None:
        sockdir = self.workdir / "sock"
        sockdir.mkdir()
        if os.geteuid() == 0:  # initdb/postgres refuse root
            self.as_user = ["runuser", "-u", "postgres", "--"]
            for path in (self.workdir, sockdir):
                shutil.chown(path, "postgres", "postgres")
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
                  "--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C")
        self.start()
        with psycopg.connect(host=str(sockdir), port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(self.user), sql.Literal(self.password)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(self.database), sql.Identifier(self.user)))

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.workdir / 'sock'} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off -c synchronous_commit=off")
        self._run("pg_ctl", "-D", self.data, "-l", self.workdir / "postgres.log", "-w", "-t", str(int(STARTUP_LIMIT)),
                  "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def remove(self) -> None:
        """Stop it if it runs and delete its directory."""
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)
