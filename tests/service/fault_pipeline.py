"""Start the fault suite's five services on given servers with per-service settings on top of the
suite's (`test_faults.service_env`): the fixture of test_faults.py does the same on one plain Redis and
PostgreSQL; the broker, partition and failover faults need their own servers or settings."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from service.pipeline_env import PIPELINE
from service.pipeline_procs import STARTUP, WAIT, Pipeline, Service, ready, wait_for
from service.servers import free_port
from service.test_faults import FIGURES, service_env

Overrides = Callable[[str, int], dict[str, str]]  # (service, port) -> settings laid over the suite's


@contextmanager
def running(p: Pipeline, overrides: Overrides = lambda name, port: {}) -> Iterator[Pipeline]:
    """Migrate, start the five services, wait until each is ready; stop them at the end."""
    port = free_port()
    migrate = subprocess.run([sys.executable, "-m", "eafix", "migrate"], capture_output=True, text=True,
                             timeout=WAIT, env={**service_env(p, "reporter", port), **overrides("reporter", port)})
    assert migrate.returncode == 0, migrate.stderr
    try:
        for name in PIPELINE:
            port = free_port()
            env = {**service_env(p, name, port), **overrides(name, port)}
            p.services[name] = Service(name, port, env, p.workdir / name)
            p.services[name].start()
        for svc in p.services.values():
            wait_for(lambda svc=svc: ready(svc), f"{svc.name} to be ready", p, timeout=STARTUP)
        yield p
    finally:
        p.stop()


def add_figures(fault: str, **facts: object) -> None:
    """Add `facts` to out/faults/<fault>.json (the recovery time `test_faults.recovered` wrote)."""
    path = FIGURES / f"{fault}.json"
    figures = json.loads(path.read_text()) if path.exists() else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**figures, **facts}, indent=1) + "\n")

