"""gui-gateway's proxies to a real peer (compliance-monitor, served over HTTP): the caller's identity
reaches the peer (its audit names the gateway's principal), roles are checked at the gateway first,
an approval is audited at the gateway with the peer's answer, and an unreachable peer is a 502."""

from __future__ import annotations

import httpx
import pytest

from eafix import services
from eafix.gui_gateway.principals import Role
from eafix.runtime.app import create_app
from eafix.runtime.service import build_parts, settings_class
from service.asgi import client_for, served
from service.compliance_payloads import LIMIT, alert, notification
from service.gateway_env import gateway_app, key_pair
from service.servers import free_port

pytestmark = pytest.mark.anyio
SECRET = "webhook-secret"


def compliance_app():
    spec = services.BY_NAME["compliance-monitor"]
    settings = settings_class(spec)(name=spec.name, alertmanager_webhook_secret=SECRET)
    return create_app(spec, settings, build_parts(spec, settings))


async def test_compliance_approvals_through_the_gateway(monkeypatch):
    keys = {role: key_pair(name, role) for name, role in
            (("desk", Role.VIEWER), ("bot", Role.TRADER), ("ops", Role.ADMIN))}
    with served(compliance_app()) as compliance_url:
        pending = httpx.post(f"{compliance_url}/webhook/alertmanager", json=notification(alert(LIMIT, "fp-1")),
                             headers={"Authorization": f"Bearer {SECRET}"})
        assert pending.json()["alerts"][0]["outcome"] == "pending approval 1"
        gateway = gateway_app(monkeypatch, SERVICE_API_KEYS="\n".join(line for _, line in keys.values()),
                              SERVICE_COMPLIANCE_MONITOR_URL=compliance_url)
        as_ = {role: {"X-API-Key": key} for role, (key, _) in keys.items()}
        async with client_for(gateway) as client:
            listed = await client.get("/api/v1/compliance/approvals", headers=as_[Role.VIEWER])
            assert [p["action"] for p in listed.json()["pending"]] == ["position_reduction"]
            trader = await client.post("/api/v1/compliance/approvals/1", headers=as_[Role.TRADER])
            approved = await client.post("/api/v1/compliance/approvals/1", headers=as_[Role.ADMIN])
            again = await client.post("/api/v1/compliance/approvals/1", headers=as_[Role.ADMIN])
            trail = await client.get("/api/v1/compliance/audit", headers=as_[Role.ADMIN])
            viewer_trail = await client.get("/api/v1/compliance/audit", headers=as_[Role.VIEWER])
    assert trader.status_code == 403  # refused at the gateway: the peer never saw it
    assert approved.status_code == 200 and approved.json()["outcome"] == "unsupported"
    assert again.status_code == 409  # the peer's answer, passed through
    approvals = [e for e in trail.json()["entries"] if e["kind"] == "approval"]
    assert [e["actor"] for e in approvals] == ["apikey:ops"]  # the gateway's principal reached the peer
    assert viewer_trail.status_code == 403
    audit = gateway.state.parts.state["audit"].records
    records = [(r.actor, r.action, r.result, r.detail.get("status")) for r in audit]
    assert records == [("apikey:bot", "auth-failure", "refused", None),
                       ("apikey:ops", "compliance-approval", "ok", 200),
                       ("apikey:ops", "compliance-approval", "refused", 409),
                       ("apikey:desk", "auth-failure", "refused", None)]


async def test_an_unreachable_peer_is_a_502_naming_it(monkeypatch):
    key, line = key_pair("desk", Role.VIEWER)
    gateway = gateway_app(monkeypatch, SERVICE_API_KEYS=line,
                          SERVICE_EXECUTION_ENGINE_URL=f"http://127.0.0.1:{free_port()}")
    async with client_for(gateway) as client:
        orders = await client.get("/api/v1/orders", headers={"X-API-Key": key})
        reports = await client.get("/api/v1/reports/summary", headers={"X-API-Key": key})
    assert orders.status_code == 502 and orders.json()["detail"].startswith("execution-engine: ConnectError")
    assert reports.status_code == 502 and "SERVICE_REPORTER_URL" in reports.json()["detail"]


async def test_a_path_parameter_stays_one_segment_of_the_peer_path(monkeypatch):
    key, line = key_pair("ops", Role.ADMIN)
    with served(compliance_app()) as compliance_url:
        httpx.post(f"{compliance_url}/webhook/alertmanager", json=notification(alert(LIMIT, "fp-2")),
                   headers={"Authorization": f"Bearer {SECRET}"})
        gateway = gateway_app(monkeypatch, SERVICE_API_KEYS=line, SERVICE_COMPLIANCE_MONITOR_URL=compliance_url,
                              SERVICE_INDICATOR_ENGINE_URL=f"http://127.0.0.1:{free_port()}")
        async with client_for(gateway) as client:
            # decoded, "1?x" would be approval 1 (and a query) if pasted into the peer's path as it is
            climbed = await client.post("/api/v1/compliance/approvals/1%3Fx", headers={"X-API-Key": key})
            pending = await client.get("/api/v1/compliance/approvals", headers={"X-API-Key": key})
            # control characters cannot make the peer URL invalid (that was a 500): the peer is called
            odd = await client.get("/api/v1/indicators/%06%05%F3%98%BB%B9", headers={"X-API-Key": key})
    assert climbed.status_code == 422  # the peer's answer: "1?x" is no approval id
    assert [p["id"] for p in pending.json()["pending"]] == [1]  # approval 1 untouched
    assert odd.status_code == 502 and odd.json()["detail"].startswith("indicator-engine: ConnectError")
