"""`eafix up` as an operator runs it: the ten services on throwaway servers with a replayed feed; an
order reaches gui-gateway's API (with the admin key it generated), and Ctrl-C (SIGINT) brings
everything down and removes what it created."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from service.pipeline_env import FIRES_EVERY_BAR

LIMIT = 240.0  # seconds: a guard against hanging, never a timing assertion


def test_up_serves_orders_through_the_gateway_and_cleans_up(tmp_path):
    strategy = tmp_path / "every-bar.yaml"
    strategy.write_text(FIRES_EVERY_BAR)
    data = tmp_path / "EURUSD_H1.csv"
    proc = subprocess.Popen([sys.executable, "-m", "eafix", "up", "--free-ports", "--speed", "40", "--bars", "2000",
                             "--data", str(data), "--strategy", str(strategy)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + LIMIT
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("EAFIX is up") or time.monotonic() > deadline:
                break
        up = re.search(r"gui-gateway (http://\S+)/ .* admin key is in (\S+)\); logs in (\S+)/logs", lines[-1])
        assert up, "".join(lines)
        gateway, key_file, workdir = up.group(1), Path(up.group(2)), Path(up.group(3))
        key = key_file.read_text().strip()
        assert key_file.stat().st_mode & 0o077 == 0  # the admin key is readable by its owner only
        assert httpx.get(f"{gateway}/api/v1/orders", timeout=10).status_code == 401
        orders: list = []
        while not orders and time.monotonic() < deadline:
            response = httpx.get(f"{gateway}/api/v1/orders", headers={"X-API-Key": key}, timeout=10)
            assert response.status_code == 200, response.text
            orders = response.json()["orders"] if isinstance(response.json(), dict) else response.json()
            time.sleep(0.5)
        assert orders, "no order reached the gateway's API"
        assert {o["symbol"] for o in orders} == {"EURUSD"}
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=LIMIT)
    assert proc.returncode == 0, "".join(lines) + out
    assert "EAFIX is down" in out
    assert not workdir.exists()
    assert data.exists()  # the sample it wrote for the replay stays where it was asked for
