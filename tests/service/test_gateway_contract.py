"""The real gui-gateway satisfies the contract compliance-monitor's client speaks (trading_control.py):
each control with `{"reason"}` and `X-API-Key` answers `{"action", "result", "details", "audit_id"}`; a
wrong key is a final 401, which the client reports as a failed action."""

from __future__ import annotations

import pytest

from eafix.compliance_monitor.trading_control import Control, GatewayTradingControl
from eafix.gui_gateway.principals import Role
from service.asgi import served
from service.gateway_env import gateway_app, key_pair

pytestmark = pytest.mark.anyio


async def test_compliance_monitors_client_against_the_real_gateway(monkeypatch):
    key, line = key_pair("compliance", Role.ADMIN)
    app = gateway_app(monkeypatch, SERVICE_API_KEYS=line)
    with served(app) as url:
        client = GatewayTradingControl(url, key, attempts=1)
        results = [await client.apply(control, f"test {control.value}") for control in Control]
        await client.aclose()
        wrong = GatewayTradingControl(url, key + "x", attempts=1)
        refused = await wrong.apply(Control.PAUSE, "x")
        await wrong.aclose()
    # no execution-engine URL: close-all cannot list positions; stop-all latches but cannot close
    assert [(r.control, r.result) for r in results] == [
        (Control.PAUSE, "ok"), (Control.RESUME, "ok"), (Control.STOP_ALL, "partial"), (Control.CLOSE_ALL, "failed")]
    records = app.state.parts.state["audit"].records
    assert [r.id for r in records] == [int(r.audit_id) for r in results] + [5]
    assert [(r.action, r.reason) for r in records[:4]] == [(c.value, f"test {c.value}") for c in Control]
    assert refused.result == "failed" and refused.details[0].startswith("HTTP 401")
    assert (records[4].action, records[4].detail["why"]) == ("auth-failure", "bad_api_key")


def test_eafix_status_reads_the_gateway_with_an_api_key(monkeypatch):
    from eafix.platform.status import _gateway

    key, line = key_pair("status", Role.VIEWER)
    app = gateway_app(monkeypatch, SERVICE_API_KEYS=line)
    with served(app) as url:
        report = _gateway(url, None, 30.0, key)
        anonymous = _gateway(url, None, 30.0)
    assert report == {"ticks": {}, "streams": {}, "risk_off": {"active": False, "reason": None, "source": None,
                                                             "since": None}, "problems": []}
    assert "401" in anonymous["unreachable"] and anonymous["problems"][0].startswith("gui-gateway unreachable")
