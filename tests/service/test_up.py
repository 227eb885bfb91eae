"""`eafix up` as an operator runs it: the ten services on throwaway servers with a replayed feed; an
order reaches gui-gateway's API (with the admin key it generated), and Ctrl-C (SIGINT) brings
everything down and removes what it created."""

from __future__ import annotations

import time

import httpx

from service.up_process import LIMIT, platform_up


def test_up_serves_orders_through_the_gateway_and_cleans_up(tmp_path):
    with platform_up(tmp_path, speed=40, bars=2000) as up:
        assert up.key_file.stat().st_mode & 0o077 == 0  # the admin key is readable by its owner only
        assert httpx.get(f"{up.gateway}/api/v1/orders", timeout=10).status_code == 401
        orders: list = []
        deadline = time.monotonic() + LIMIT
        while not orders and time.monotonic() < deadline:
            response = httpx.get(f"{up.gateway}/api/v1/orders", headers={"X-API-Key": up.key}, timeout=10)
            assert response.status_code == 200, response.text
            orders = response.json()["orders"] if isinstance(response.json(), dict) else response.json()
            time.sleep(0.5)
        assert orders, "no order reached the gateway's API"
        assert {o["symbol"] for o in orders} == {"EURUSD"}
    output = "".join(up.output)
    assert up.returncode == 0, output
    assert "EAFIX is down" in output
    assert not up.workdir.exists()
    assert up.data.exists()  # the sample it wrote for the replay stays where it was asked for
