"""A throwaway PostgreSQL primary with a streaming replica on loopback (pg_basebackup), for failover
tests. `synchronous=True` makes the replica synchronous (`synchronous_standby_names`), so a commit
returns only once the replica has it; `kill_primary()` is a SIGKILL of the postmaster, `promote()`
turns the replica into the new primary."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from service.servers import free_port, postgres_bindir

STARTUP_LIMIT = 60


@dataclass
class ReplicatedPostgres:
    bindir: Path
    as_user: list[str]
    primary_data: Path
    replica_data: Path
    ports: tuple[int, int]
    sockdir: Path
    user: str
    password: str
    database: str

    @property
    def url(self) -> str:
        """Both hosts; libpq picks the one that accepts writes."""
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.ports)
        return f"postgresql://{hosts}/{self.database}?sslmode=disable&target_session_attrs=read-write"

    def run(self, *cmd: str | Path) -> None:
        done = subprocess.run([*self.as_user, *map(str, cmd)], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(str(cmd[0])).name} failed ({done.returncode}): {done.stderr}{done.stdout}")

    def kill_primary(self) -> None:
        pid = int((self.primary_data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)

    def promote(self) -> None:
        self.run(self.bindir / "pg_ctl", "-D", self.replica_data, "-w", "-t", str(STARTUP_LIMIT), "promote")

    def admin(self, port: int) -> psycopg.Connection:
        return psycopg.connect(host=str(self.sockdir), port=port, user="postgres", dbname=self.database,
                               autocommit=True)


@contextmanager
def replicated_postgres(*, synchronous: bool) -> Iterator[ReplicatedPostgres]:
    bindir = postgres_bindir()
    workdir = Path(tempfile.mkdtemp(prefix="eafix-pg-ha-"))
    sockdir = workdir / "sock"
    sockdir.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb/postgres refuse root
        as_user = ["runuser", "-u", "postgres", "--"]
        for path in (workdir, sockdir):
            shutil.chown(path, "postgres", "postgres")
    ports = (free_port(), free_port())
    pg = ReplicatedPostgres(bindir, as_user, workdir / "primary", workdir / "replica", ports, sockdir, "eafix",
                            secrets.token_urlsafe(16), "eafix_trading")
    started: list[Path] = []

    def start(data: Path, port: int, name: str, extra: str = "") -> None:
        options = f"-p {port} -k {sockdir} -c listen_addresses=127.0.0.1 {extra}"
        pg.run(bindir / "pg_ctl", "-D", data, "-l", workdir / f"{name}.log", "-w", "-t", str(STARTUP_LIMIT),
               "-o", options, "start")
        started.append(data)

    try:
        pg.run(bindir / "initdb", "-D", pg.primary_data, "-U", "postgres", "--auth-local=trust",
               "--auth-host=scram-sha-256", "--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C")
        with (pg.primary_data / "pg_hba.conf").open("a") as hba:
            hba.write("local replication postgres trust\n")
        start(pg.primary_data, ports[0], "primary", "-c wal_level=replica -c max_wal_senders=4")
        with psycopg.connect(host=str(sockdir), port=ports[0], user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(pg.user),
                                                                            sql.Literal(pg.password)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(pg.database),
                                                                       sql.Identifier(pg.user)))
        # -R writes standby.signal and primary_conninfo (application_name names it for the sync list)
        pg.run(bindir / "pg_basebackup", "-D", pg.replica_data, "-h", sockdir, "-p", str(ports[0]), "-U", "postgres",
               "-R", "-X", "stream", "-c", "fast", "-d", f"application_name=replica1 host={sockdir} port={ports[0]}")
        start(pg.replica_data, ports[1], "replica", "-c hot_standby=on")
        with psycopg.connect(host=str(sockdir), port=ports[0], user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            if synchronous:  # only now: before the replica streams, every commit would wait for it
                conn.execute("ALTER SYSTEM SET synchronous_standby_names = 'replica1'")
                conn.execute("SELECT pg_reload_conf()")
            for _ in range(600):
                row = conn.execute("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'replica1' "
                                   "AND state = 'streaming'").fetchone()
                if row and (row[0] == "sync" or not synchronous):
                    break
                conn.execute("SELECT pg_sleep(0.05)")
            else:
                raise RuntimeError("the replica never streamed")
        yield pg
    finally:
        for data in started:
            subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)
