"""Pipeline services as `eafix serve` processes for the tests (the end-to-end and the fault suites): start,
kill and restart them as a pod would be, wait with a guard, tell when the bus has settled and read
its streams."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import redis

from service.servers import free_port

WAIT = 60.0  # seconds: a guard against hangs, never a performance assertion
STARTUP = 240.0  # seconds: a hang guard for several interpreters importing on a busy 2-core machine


@dataclass
class Service:
    name: str
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen | None = None
    runs: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self.runs:  # a restart: its old port is an ephemeral one, and another test's client may hold it now
            self.port = free_port()
            self.env = {**self.env, "SERVICE_PORT": str(self.port)}
        self.runs += 1
        out = self.log.with_suffix(f".{self.runs}.log").open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "eafix", "serve", self.name], env=self.env,
                                     stdout=out, stderr=subprocess.STDOUT)
        out.close()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.log.parent.glob(
            f"{self.log.stem}.*.log")))


@dataclass
class Pipeline:
    redis_url: str
    redis_password: str | None
    pg_url: str
    pg_user: str
    pg_password: str
    workdir: Path
    services: dict[str, Service] = field(default_factory=dict)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, password=self.redis_password, decode_responses=True)

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.pg_url, user=self.pg_user, password=self.pg_password) as conn:
            return conn.execute(query, params).fetchall()

    def stop(self) -> None:
        """SIGTERM to every service (each waited for in turn), then SIGKILL to any still running."""
        for svc in self.services.values():
            svc.kill(signal.SIGTERM)
        for svc in self.services.values():
            svc.kill()

    def diagnostics(self) -> str:
        return "\n".join(f"--- {name} ---\n{svc.logs()}" for name, svc in self.services.items())


def wait_for(check: Callable[[], object], what: str, pipeline: Pipeline, timeout: float = WAIT) -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        for svc in pipeline.services.values():
            if svc.proc is not None and svc.proc.poll() is not None:
                raise AssertionError(f"{svc.name} exited ({svc.proc.returncode}) while waiting for {what}\n"
                                     f"{pipeline.diagnostics()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}\n{pipeline.diagnostics()}")
        time.sleep(0.1)


def ready(svc: Service) -> bool:
    try:
        return httpx.get(f"{svc.url}/readyz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def behind(r: redis.Redis, stream: str, group: dict) -> bool:
    """The group (its XINFO GROUPS row) has entries of `stream` unread or unacknowledged. Redis reports
    the lag as nil, not 0, while it cannot count it (after a restart loaded the stream from the AOF):
    then an entry after the group's last-delivered-id is looked for."""
    if group["pending"] or group["lag"]:
        return True
    return group["lag"] is None and bool(r.xrange(stream, "(" + group["last-delivered-id"], "+", count=1))


def settled(pipeline: Pipeline) -> bool:
    """Every consumer group has read and acknowledged every entry of every stream."""
    r = pipeline.redis()
    try:
        for stream in r.scan_iter(match="eafix.*", _type="stream"):
            for group in r.xinfo_groups(stream):
                if behind(r, stream, group):
                    return False
    finally:
        r.close()
    return True


def _pass(r: redis.Redis, ignored: str | None) -> dict[str, int] | None:
    """Each stream's length, or None if a group (but `ignored`) has something unread or unacknowledged."""
    lengths = {}
    for stream in r.scan_iter(match="eafix.*", _type="stream"):
        lengths[stream] = r.xlen(stream)
        if any(behind(r, stream, g) for g in r.xinfo_groups(stream) if g["name"] != ignored):
            return None
    return lengths


def at_rest(pipeline: Pipeline, but: str | None = None) -> bool:
    """Settled (every consumer group, or all but group `but`), proven by two passes that saw the same
    streams: one pass checks the streams one after another, so a message published to a stream already
    checked would pass unseen; the second pass sees it (a longer stream, or a group behind)."""
    r = pipeline.redis()
    try:
        first = _pass(r, but)
        return first is not None and _pass(r, but) == first
    finally:
        r.close()


TIMED = ("eafix.calendar.",)  # published on calendar-ingestor's refresh timer, whatever else happens


def stream_lengths(pipeline: Pipeline) -> dict[str, int]:
    r = pipeline.redis()
    try:
        return {stream: r.xlen(stream) for stream in r.scan_iter(match="eafix.*", _type="stream")
                if not stream.startswith(TIMED)}
    finally:
        r.close()


def quiet(pipeline: Pipeline) -> bool:
    """Settled, and nothing published for longer than the timers' period (the flush may close a last bar;
    the calendar's gates are left out: they are republished every refresh)."""
    before = stream_lengths(pipeline)
    if not settled(pipeline):
        return False
    time.sleep(1.5)
    return settled(pipeline) and stream_lengths(pipeline) == before


def envelopes(pipeline: Pipeline, topic: str) -> list[dict]:
    r = pipeline.redis()
    try:
        return [json.loads(fields["envelope"]) for _, fields in r.xrange(topic)]
    finally:
        r.close()
