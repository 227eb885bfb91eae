"""`eafix up` as a subprocess for the tests: the every-bar strategy (or the one given), free ports, a replayed sample;
the context yields what its "EAFIX is up" line names and sends Ctrl-C (SIGINT) at the end."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from service.pipeline_env import FIRES_EVERY_BAR

LIMIT = 240.0  # seconds: a guard against hanging, never a timing assertion
UP_LINE = re.compile(r"gui-gateway (http://\S+)/ .* admin key is in (\S+)\); logs in (\S+)/logs")
SERVICE_LINE = re.compile(r"^  (\S+) +(http://\S+)/$")


@dataclass
class Up:
    gateway: str
    key_file: Path
    workdir: Path
    data: Path
    output: list[str] = field(default_factory=list)
    services: dict[str, str] = field(default_factory=dict)  # name -> base URL, as `eafix up` prints them
    returncode: int | None = None  # once stopped

    @property
    def key(self) -> str:
        return self.key_file.read_text().strip()


@contextmanager
def platform_up(tmp_path: Path, *, speed: int, bars: int, strategy_yaml: str = FIRES_EVERY_BAR) -> Iterator[Up]:
    strategy = tmp_path / "strategies.yaml"
    strategy.write_text(strategy_yaml)
    data = tmp_path / "EURUSD_H1.csv"
    proc = subprocess.Popen([sys.executable, "-m", "eafix", "up", "--free-ports", "--speed", str(speed), "--bars",
                             str(bars), "--data", str(data), "--strategy", str(strategy)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    up: Up | None = None
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + LIMIT
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("EAFIX is up") or time.monotonic() > deadline:
                break
        found = UP_LINE.search(lines[-1] if lines else "")
        assert found, "".join(lines)
        urls = dict(m.groups() for m in map(SERVICE_LINE.match, lines) if m)
        up = Up(found.group(1), Path(found.group(2)), Path(found.group(3)), data, lines, urls)
        yield up
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=LIMIT)
        lines.append(rest)
        if up is not None:
            up.returncode = proc.returncode
