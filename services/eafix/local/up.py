"""`eafix up`: the whole platform on this machine, to look at and click through (never to trade).

It starts a throwaway Redis and PostgreSQL (`eafix.local.servers`), applies the migrations, creates
gui-gateway's first admin API key (written to a file of its own, mode 0600, whose path is printed)
and compliance-monitor's key, starts the ten services as `eafix serve` processes (the catalogue's
ports, or free ones with --free-ports) and replays a bar sample as a live tick feed: every bar
becomes four quotes (open, the extreme reached first, the other one, close) posted to data-ingestor
at --speed bars per second. The bars' times are moved so that the replay ends now, and the age
limits of prices and quotes are widened to the replay's span (the one thing that differs from a
live deployment). Ctrl-C, or the end of --duration, stops the feed, the services and the servers
and removes the temporary directory; service logs are there while it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from eafix import services
from eafix.local.servers import PostgresServer, RedisServer, free_port, postgres_server, redis_server

READY_LIMIT = 180.0  # seconds for every service to answer /readyz: a hang guard (ten interpreters import at once)
DEFAULT_DATA = Path("out/sample/EURUSD_H1.csv")
ADMIN_KEY_FILE = "admin-api-key"


class UpError(RuntimeError):
    """Why the platform could not be brought up; one line for the operator."""


@dataclass
class Process:
    name: str
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "eafix", "serve", self.name], env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def ports(free: bool) -> dict[str, int]:
    chosen = {spec.name: free_port() if free else spec.port for spec in services.SERVICES}
    if not free:
        for name, port in chosen.items():
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    raise UpError(f"port {port} ({name}) is in use: stop what holds it or use --free-ports") from None
    return chosen


def keys(secrets_dir: Path, workdir: Path) -> tuple[Path, str]:
    """gui-gateway's first admin, compliance-monitor's key and its webhook secret; returns the admin key's
    file and compliance-monitor's key (its setting)."""
    from eafix.gui_gateway.api_keys import Role, new_key

    admin_key, admin_line = new_key("admin", [Role.ADMIN])
    compliance_key, compliance_line = new_key("compliance", [Role.TRADER, Role.ADMIN])
    gateway = secrets_dir / "gui-gateway"
    gateway.mkdir(parents=True)
    key_id, _roles, hashed = admin_line.split(" ")  # the bootstrap file names no roles: it is the admin
    (gateway / "SERVICE_BOOTSTRAP_ADMIN").write_text(f"{key_id} {hashed}\n")
    (gateway / "SERVICE_API_KEYS").write_text(compliance_line + "\n")
    compliance = secrets_dir / "compliance-monitor"  # the webhook's shared secret: Alertmanager would send it
    compliance.mkdir(parents=True)
    (compliance / "SERVICE_ALERTMANAGER_WEBHOOK_SECRET").write_text(secrets.token_urlsafe(24) + "\n")
    key_file = workdir / ADMIN_KEY_FILE
    key_file.touch(mode=0o600)
    key_file.write_text(admin_key + "\n")
    return key_file, compliance_key


def service_env(name: str, port: int, chosen: dict[str, int], rds: RedisServer, pg: PostgresServer,
                secrets_dir: Path, span_seconds: float, extra: dict[str, str]) -> dict[str, str]:
    spec = services.get(name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_") and k != "EAFIX_SERVICE"}
    env.update({"SERVICE_PORT": str(port), "SERVICE_CONSUMER_NAME": f"{name}-0", "SERVICE_LOG_LEVEL": "WARNING",
                "SERVICE_SECRETS_DIR": str(secrets_dir / name)})
    if spec.uses_redis:
        env.update({"SERVICE_REDIS_URL": rds.url, "SERVICE_REDIS_PASSWORD": rds.password or ""})
    if spec.uses_postgres:
        env.update({"SERVICE_POSTGRES_URL": pg.url, "SERVICE_POSTGRES_USER": pg.user,
                    "SERVICE_POSTGRES_PASSWORD": pg.password})
    for peer in spec.peers:
        env[f"SERVICE_{peer.upper().replace('-', '_')}_URL"] = f"http://127.0.0.1:{chosen[peer]}"
    age = int(span_seconds) + 3600
    if name == "data-ingestor":
        env["SERVICE_INGEST"] = json.dumps({"max_price_age_seconds": age})
    elif name == "risk-manager":
        env["SERVICE_RISK"] = json.dumps({"max_quote_age_seconds": age})
    elif name == "calendar-ingestor":
        env["SERVICE_REQUIRE_CALENDAR"] = "false"  # gates CLEAR until a calendar is imported
    env.update({k.removeprefix(f"{name}:"): v for k, v in extra.items() if k.startswith(f"{name}:")})
    return env


def quotes(bars: list[Any], speed_start: datetime, spread: Decimal) -> Iterator[list[dict[str, str]]]:
    """Per bar, four quotes stamped inside the bar's (moved) period."""
    period = bars[1].ts_open - bars[0].ts_open if len(bars) > 1 else timedelta(hours=1)
    for i, bar in enumerate(bars):
        start = speed_start + i * period
        up_first = bar.close >= bar.open
        path = (bar.open, bar.low if up_first else bar.high, bar.high if up_first else bar.low, bar.close)
        yield [{"symbol": bar.symbol, "ts": (start + period * k / 4).isoformat().replace("+00:00", "Z"),
                "bid": format(price, "f"), "ask": format(price + spread, "f")} for k, price in enumerate(path)]


def wait_ready(procs: list[Process]) -> None:
    deadline = time.monotonic() + READY_LIMIT
    pending = list(procs)
    while pending:
        for p in list(pending):
            if p.proc is not None and p.proc.poll() is not None:
                tail = p.log.read_text(errors="replace")[-1500:]
                raise UpError(f"{p.name} exited ({p.proc.returncode}) while starting:\n{tail}")
            try:
                if httpx.get(f"{p.url}/readyz", timeout=2).status_code == 200:
                    pending.remove(p)
            except httpx.TransportError:
                pass
        if pending and time.monotonic() > deadline:
            raise UpError(f"not ready after {READY_LIMIT:.0f} s: {', '.join(p.name for p in pending)}")
        time.sleep(0.2)


def _load_bars(path: Path, limit: int | None) -> list[Any]:
    from eafix.backtest.data import load, write_sample
    from eafix.contracts import Bar

    if not path.exists():
        write_sample(path)
    bars = [e for e in load(path).events if isinstance(e, Bar)]
    if not bars:
        raise UpError(f"{path} holds no bars")
    return bars[:limit] if limit else bars


def up(args: argparse.Namespace) -> int:
    bars = _load_bars(args.data, args.bars)
    period = bars[1].ts_open - bars[0].ts_open if len(bars) > 1 else timedelta(hours=1)
    span = period * len(bars)
    chosen = ports(args.free_ports)
    workdir = Path(tempfile.mkdtemp(prefix="eafix-up-"))
    procs: list[Process] = []
    try:
        with ExitStack() as stack:
            rds = stack.enter_context(redis_server())
            pg = stack.enter_context(postgres_server())
            secrets_dir = workdir / "secrets"
            key_file, compliance_key = keys(secrets_dir, workdir)
            extra = {"compliance-monitor:SERVICE_GATEWAY_API_KEY": compliance_key}
            if args.strategy:
                extra["signal-generator:SERVICE_STRATEGIES_FILE"] = str(args.strategy.resolve())
            envs = {spec.name: service_env(spec.name, chosen[spec.name], chosen, rds, pg, secrets_dir,
                                           span.total_seconds(), extra) for spec in services.SERVICES}
            for name in envs:
                (secrets_dir / name).mkdir(parents=True, exist_ok=True)
            migrate = subprocess.run([sys.executable, "-m", "eafix", "migrate"], env=envs["reporter"],
                                     capture_output=True, text=True, timeout=120)
            if migrate.returncode != 0:
                raise UpError(f"eafix migrate failed: {migrate.stderr.strip()}")
            (workdir / "logs").mkdir()
            procs = [Process(name, chosen[name], env, workdir / "logs" / f"{name}.log") for name, env in envs.items()]
            for p in procs:
                p.start()
            wait_ready(procs)
            gateway = next(p for p in procs if p.name == "gui-gateway")
            for p in procs:  # the services' own APIs, for curl (the UI needs only the gateway)
                print(f"  {p.name:<20} {p.url}/", flush=True)
            print(f"EAFIX is up: gui-gateway {gateway.url}/ (API key header X-API-Key, the admin key is in "
                  f"{key_file}); logs in {workdir / 'logs'}; Ctrl-C stops everything", flush=True)
            feed(next(p for p in procs if p.name == "data-ingestor"), bars, args.speed,
                 datetime.now(UTC) - span, args.duration)
            if args.duration is None:
                while True:
                    time.sleep(3600)
    except KeyboardInterrupt:
        pass
    except UpError as exc:
        print(f"eafix up: {exc}", file=sys.stderr)
        return 2
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print("EAFIX is down: processes stopped, servers and temporary files removed", flush=True)
    return 0


def feed(ingestor: Process, bars: list[Any], speed: float, start: datetime, duration: float | None) -> None:
    """Post the replay at `speed` bars per second until the bars or `duration` run out."""
    ends = None if duration is None else time.monotonic() + duration
    with httpx.Client(timeout=30) as client:
        for batch in quotes(bars, start, Decimal("0.00010")):
            if ends is not None and time.monotonic() > ends:
                return
            response = client.post(f"{ingestor.url}/api/v1/ticks", json=batch)
            if response.status_code != 200:
                raise UpError(f"data-ingestor refused the replay ({response.status_code}): {response.text[:300]}")
            time.sleep(1 / speed)
    if ends is not None:
        time.sleep(max(0.0, ends - time.monotonic()))


def add_parser(sub: Any) -> None:
    p = sub.add_parser("up", help="run the whole platform on this machine with a replayed feed (Ctrl-C stops it)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"bars to replay (default {DEFAULT_DATA}, "
                                                                   "written by `eafix sample-data` when missing)")
    p.add_argument("--speed", type=float, default=5.0, help="bars per second (default 5)")
    p.add_argument("--bars", type=int, help="replay only the first N bars")
    p.add_argument("--strategy", type=Path, help="strategies YAML for signal-generator (default: the shipped ones)")
    p.add_argument("--free-ports", action="store_true", help="free ports instead of the catalogue's (8080...)")
    p.add_argument("--duration", type=float, help="stop after this many seconds instead of at Ctrl-C")
    p.set_defaults(func=up)


__all__ = ["add_parser", "up"]
