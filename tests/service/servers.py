"""Throwaway Redis and PostgreSQL servers for the integration tests: the platform's own
(`eafix.local.servers`, which `eafix up` runs on too). EAFIX_TEST_REDIS_URL / EAFIX_TEST_POSTGRES_URL
name existing servers instead (their credentials are split off the URL; Postgres must enforce
passwords)."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import redis

from eafix.local.servers import (
    STARTUP_LIMIT,
    PostgresServer,
    RedisServer,
    free_port,
    postgres_bindir,
    postgres_server,
    redis_server,
)

__all__ = ["STARTUP_LIMIT", "AofRedis", "PostgresServer", "RedisServer", "external_postgres", "external_redis",
           "free_port", "postgres_bindir", "postgres_server", "redis_server"]


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
