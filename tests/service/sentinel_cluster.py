"""A throwaway Redis replication group on loopback for failover tests: one primary, two replicas and
three sentinels (redis-server in sentinel mode), all password-protected, in a temporary directory."""

from __future__ import annotations

import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

from service.servers import free_port

MASTER = "eafix"


@dataclass
class SentinelCluster:
    password: str
    data_ports: list[int]
    sentinel_ports: list[int]
    procs: dict[int, subprocess.Popen] = field(default_factory=dict)

    @property
    def sentinels(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)

    def primary_port(self) -> int:
        with redis.Redis(port=self.sentinel_ports[0], password=self.password, socket_timeout=2) as s:
            host, port = s.sentinel_get_master_addr_by_name(MASTER)
        return int(port)

    def kill(self, port: int) -> None:
        """SIGKILL: no shutdown save, no goodbye to the replicas, as when a node dies."""
        proc = self.procs[port]
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def _start(binary: str, args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([binary, *args, "--logfile", str(log)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)


def _until(check, what: str, log_dir: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(log_dir.glob("*.log")))
            raise RuntimeError(f"gave up waiting for {what}\n{logs}")
        time.sleep(0.05)


@contextmanager
def sentinel_cluster(down_after_ms: int = 1000) -> Iterator[SentinelCluster]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    workdir = Path(tempfile.mkdtemp(prefix="eafix-sentinel-"))
    password = secrets.token_urlsafe(16)
    data_ports = [free_port() for _ in range(3)]
    sentinel_ports = [free_port() for _ in range(3)]
    cluster = SentinelCluster(password, data_ports, sentinel_ports)
    try:
        for i, port in enumerate(data_ports):
            d = workdir / f"node{i}"
            d.mkdir()
            args = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(d), "--save", "", "--appendonly", "no",
                    "--requirepass", password, "--masterauth", password]
            if i:
                args += ["--replicaof", "127.0.0.1", str(data_ports[0])]
            cluster.procs[port] = _start(binary, args, workdir / f"node{i}.log")

        def replicas_online() -> bool:
            with redis.Redis(port=data_ports[0], password=password, socket_timeout=1) as r:
                info = r.info("replication")
                return info.get("connected_slaves") == 2 and all(
                    info[f"slave{n}"]["state"] == "online" for n in range(2))

        _until(replicas_online, "two replicas in sync", workdir)
        for i, port in enumerate(sentinel_ports):
            conf = workdir / f"sentinel{i}.conf"  # sentinels rewrite their config: one writable file each
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {data_ports[0]} 2\n"
                f"sentinel auth-pass {MASTER} {password}\n"
                f"sentinel down-after-milliseconds {MASTER} {down_after_ms}\n"
                f"sentinel failover-timeout {MASTER} 10000\nsentinel parallel-syncs {MASTER} 1\n"
                f"requirepass {password}\n")
            cluster.procs[port] = _start(binary, [str(conf), "--sentinel"], workdir / f"sentinel{i}.log")

        def sentinels_agree() -> bool:
            for port in sentinel_ports:
                with redis.Redis(port=port, password=password, socket_timeout=1) as s:
                    state = s.sentinel_master(MASTER)
                    if int(state["num-other-sentinels"]) != 2 or int(state["num-slaves"]) != 2:
                        return False
            return True

        _until(sentinels_agree, "three sentinels that see each other and both replicas", workdir)
        yield cluster
    finally:
        for proc in cluster.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in cluster.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
