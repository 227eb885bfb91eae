"""compliance-monitor's webhook and API through the real app: authentication (bearer, signature, refusals
counted), payload validation, decisions, actions through a real gateway-contract server, audit, approvals."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import psycopg
import pytest

from eafix import services
from eafix.compliance_monitor.webhook_auth import sign
from eafix.runtime.app import create_app
from eafix.runtime.service import build_parts, settings_class
from service.asgi import client_for, served
from service.compliance_payloads import HALT, LIMIT, WARN, alert, notification
from service.gateway_contract import GatewayState, gateway_app

pytestmark = pytest.mark.anyio
SECRET = "hook-secret-0123456789"
API_KEY = "cm.s3cret-key"
SPEC = services.BY_NAME["compliance-monitor"]
ADMIN = {"X-Eafix-Principal": "alice", "X-Eafix-Roles": "admin"}
VIEWER = {"X-Eafix-Principal": "bob", "X-Eafix-Roles": "viewer"}


@pytest.fixture
def gateway() -> Iterator[tuple[GatewayState, str]]:
    state = GatewayState(API_KEY)
    with served(gateway_app(state)) as url:
        yield state, url


@pytest.fixture
async def client(gateway, secrets_dir, monkeypatch) -> AsyncIterator[httpx.AsyncClient]:
    secrets_dir(SERVICE_ALERTMANAGER_WEBHOOK_SECRET=SECRET, SERVICE_GATEWAY_API_KEY=API_KEY)
    monkeypatch.setenv("SERVICE_GUI_GATEWAY_URL", gateway[1])
    settings = settings_class(SPEC)(name=SPEC.name)  # no Redis or PostgreSQL: in-memory audit
    async with client_for(create_app(SPEC, settings, build_parts(SPEC, settings))) as c:
        yield c


def bearer(token: str = SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def post(client, body, headers=None):
    return await client.post("/webhook/alertmanager", content=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json", **(bearer() if headers is None else headers)})


def metric(text: str, line_prefix: str) -> float:
    found = [ln for ln in text.splitlines() if ln.startswith(line_prefix)]
    return float(found[0].rsplit(" ", 1)[1]) if found else 0.0


async def test_a_halt_class_alert_pauses_trading_through_the_gateway(client, gateway):
    r = await post(client, notification(alert(HALT, "fp-halt")))
    assert r.status_code == 200
    [summary] = r.json()["alerts"]
    assert summary["action"] == "trading_halt" and summary["outcome"] == "acted: ok"
    assert gateway[0].calls == [{"action": "pause", "reason":
                                 "compliance-monitor: CFTCPreTradeRiskControlsViolation "
                                 "(CFTC/pre-trade-risk-controls/critical)"}]
    audit = (await client.get("/api/v1/compliance/audit", headers=VIEWER)).json()["entries"]
    assert [e["kind"] for e in audit] == ["alert", "decision", "action"]
    assert audit[2]["detail"]["result"] == "ok" and audit[2]["detail"]["audit_id"] == "A-1"
    text = (await client.get("/metrics")).text
    assert metric(text, 'eafix_compliance_alerts_received_total{regulation="CFTC",status="firing"}') == 1
    assert metric(text, 'eafix_compliance_remediations_total{action="trading_halt",status="completed"}') == 1


@pytest.mark.parametrize(("headers", "reason"), [
    ({}, "missing_credentials"),
    ({"Authorization": "Bearer wrong"}, "bad_token"),
    ({"Authorization": f"Basic {SECRET}"}, "bad_token"),
    ({"Authorization": f"Bearer {SECRET}x"}, "bad_token"),
    ({"X-Alertmanager-Signature": "sha256=00"}, "bad_signature"),
])
async def test_bad_or_missing_credentials_are_refused_and_counted(client, gateway, headers, reason):
    r = await post(client, notification(alert(HALT, "fp")), headers)
    assert r.status_code == 401 and reason in r.json()["detail"]
    text = (await client.get("/metrics")).text
    assert metric(text, f'eafix_compliance_webhook_rejected_total{{reason="{reason}"}}') == 1
    assert gateway[0].calls == []


async def test_a_body_signed_with_the_secret_is_accepted(client, gateway):
    body = json.dumps(notification(alert(WARN, "fp-w"))).encode()
    r = await client.post("/webhook/alertmanager", content=body,
                          headers={"X-Alertmanager-Signature": sign(SECRET, body)})
    assert r.status_code == 200 and r.json()["alerts"][0]["outcome"] == "recorded"
    tampered = body.replace(b"fp-w", b"fp-x")
    r = await client.post("/webhook/alertmanager", content=tampered,
                          headers={"X-Alertmanager-Signature": sign(SECRET, body)})
    assert r.status_code == 401


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda b: b.pop("version"), "version"),
    (lambda b: b.update(version="3"), "version"),
    (lambda b: b["alerts"][0].pop("fingerprint"), "alerts.0.fingerprint"),
    (lambda b: b["alerts"][0].update(status="pending"), "alerts.0.status"),
    (lambda b: b["alerts"][0].update(startsAt="yesterday"), "alerts.0.startsAt"),
])
async def test_a_malformed_notification_is_422_naming_the_field(client, mutate, field):
    body = notification(alert(HALT, "fp"))
    mutate(body)
    r = await post(client, body)
    assert r.status_code == 422 and r.json()["detail"].startswith(f"{field}:")


async def test_a_body_that_is_not_json_is_422(client):
    r = await client.post("/webhook/alertmanager", content=b"{nope", headers=bearer())
    assert r.status_code == 422 and "not JSON" in r.json()["detail"]


async def test_a_repeated_firing_alert_is_one_violation_until_it_resolves(client, gateway):
    await post(client, notification(alert(HALT, "fp-1")))
    r = await post(client, notification(alert(HALT, "fp-1")))
    assert r.json()["alerts"][0]["outcome"] == "repeat" and len(gateway[0].calls) == 1
    await post(client, notification(alert(HALT, "fp-1", "resolved"), status="resolved"))
    r = await post(client, notification(alert(HALT, "fp-1")))
    assert r.json()["alerts"][0]["outcome"] == "acted: ok" and len(gateway[0].calls) == 2


async def test_non_compliance_alerts_are_audited_but_not_acted_on(client, gateway):
    r = await post(client, notification(alert({"alertname": "ServiceDown", "severity": "critical"}, "fp-o")))
    assert r.json()["alerts"][0] == {"fingerprint": "fp-o", "alertname": "ServiceDown", "compliance": False,
                                     "outcome": "ignored"}
    assert gateway[0].calls == []


async def test_five_violations_trip_the_circuit_breaker_into_one_halt(client, gateway):
    for i in range(4):
        r = await post(client, notification(alert(WARN, f"fp-{i}")))
        assert "circuit_breaker" not in r.json()["alerts"][0]
    r = await post(client, notification(alert(WARN, "fp-4")))
    assert r.json()["alerts"][0]["circuit_breaker"] == "acted: ok"
    assert [c["action"] for c in gateway[0].calls] == ["pause"]
    assert "circuit-breaker" in gateway[0].calls[0]["reason"]
    text = (await client.get("/metrics")).text
    assert metric(text, 'eafix_circuit_breaker_open{breaker="compliance"}') == 1


async def test_human_approval_is_listed_and_only_an_admin_approves(client, gateway):
    r = await post(client, notification(alert(LIMIT, "fp-l")))
    assert r.json()["alerts"][0]["outcome"] == "pending approval 1"
    assert (await client.get("/api/v1/compliance/approvals")).status_code == 401
    [pending] = (await client.get("/api/v1/compliance/approvals", headers=VIEWER)).json()["pending"]
    assert pending["action"] == "position_reduction" and pending["parameters"] == {"target_utilization": "0.75"}
    assert (await client.post("/api/v1/compliance/approvals/1", headers=VIEWER)).status_code == 403
    r = await client.post("/api/v1/compliance/approvals/1", headers=ADMIN)
    assert r.status_code == 200 and r.json()["outcome"] == "unsupported"  # no size control at the gateway yet
    assert (await client.post("/api/v1/compliance/approvals/1", headers=ADMIN)).status_code == 409
    assert (await client.post("/api/v1/compliance/approvals/9", headers=ADMIN)).status_code == 404
    entries = (await client.get("/api/v1/compliance/audit", headers=VIEWER)).json()["entries"]
    approval = [e for e in entries if e["kind"] == "approval"]
    assert approval[0]["actor"] == "alice" and gateway[0].calls == []


async def test_the_audit_is_paginated(client):
    for i in range(3):
        await post(client, notification(alert(WARN, f"fp-{i}")))  # alert + decision each: 6 entries
    page = (await client.get("/api/v1/compliance/audit?limit=4", headers=VIEWER)).json()
    assert [e["id"] for e in page["entries"]] == [1, 2, 3, 4] and page["next_after"] == 4
    page = (await client.get("/api/v1/compliance/audit?limit=4&after=4", headers=VIEWER)).json()
    assert [e["id"] for e in page["entries"]] == [5, 6] and page["next_after"] is None


async def test_with_postgres_the_audit_goes_to_schema_compliance(gateway, secrets_dir, monkeypatch, fresh_db_url):
    secrets_dir(SERVICE_ALERTMANAGER_WEBHOOK_SECRET=SECRET, SERVICE_GATEWAY_API_KEY=API_KEY)
    monkeypatch.setenv("SERVICE_GUI_GATEWAY_URL", gateway[1])
    settings = settings_class(SPEC)(name=SPEC.name, postgres_url=fresh_db_url)
    async with client_for(create_app(SPEC, settings, build_parts(SPEC, settings))) as c:
        assert (await post(c, notification(alert(HALT, "fp-pg")))).status_code == 200
    with psycopg.connect(fresh_db_url) as conn:
        rows = conn.execute("SELECT kind, subject, detail->>'result' FROM compliance.audit ORDER BY id").fetchall()
    assert rows == [("alert", "fp-pg", None), ("decision", "fp-pg", None), ("action", "fp-pg", "ok")]
