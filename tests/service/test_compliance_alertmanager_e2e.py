"""End to end with the real Alertmanager (.tools/bin, built from tools/ by `make tools-go`): the routing of
docs/alertmanager-routing.yaml, the webhook credential read from a file as the chart mounts it; a firing
alert posted to Alertmanager's API reaches compliance-monitor with the bearer credential, which decides
a trading halt and pauses trading through the real gui-gateway (its API key checked, the control audited)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from eafix import services
from eafix.gui_gateway.principals import Role
from eafix.runtime.app import create_app
from eafix.runtime.service import build_parts, settings_class
from service.asgi import served
from service.compliance_payloads import HALT
from service.gateway_env import gateway_app, key_pair
from service.servers import STARTUP_LIMIT, free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".tools/bin"
ROUTING = ROOT / "docs/alertmanager-routing.yaml"
SECRET = "am-webhook-secret-42"
API_KEY, API_KEY_LINE = key_pair("compliance", Role.ADMIN)  # compliance-monitor's key at gui-gateway
SPEC = services.BY_NAME["compliance-monitor"]
DELIVERY_LIMIT = 60.0  # seconds: group_wait is 5 s; a guard against hanging, not a timing assertion


def alertmanager_config(tmp: Path, webhook_url: str) -> Path:
    """docs/alertmanager-routing.yaml with the in-cluster URL and secret path replaced by local ones."""
    config = yaml.safe_load(ROUTING.read_text())
    (secret := tmp / "ALERTMANAGER_WEBHOOK_SECRET").write_text(SECRET + "\n")  # as a mounted Secret key
    [receiver] = [r for r in config["receivers"] if r["name"] == "compliance-monitor"]
    [hook] = receiver["webhook_configs"]
    assert hook["http_config"]["authorization"]["type"] == "Bearer"
    hook["url"] = webhook_url
    hook["http_config"]["authorization"]["credentials_file"] = str(secret)
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def gateway(monkeypatch) -> Iterator[tuple[list, str]]:
    """The real gui-gateway (in-memory bus and audit) and its audit records."""
    app = gateway_app(monkeypatch, SERVICE_API_KEYS=API_KEY_LINE)
    with served(app) as url:
        yield app.state.parts.state["audit"].records, url


def controls(records: list) -> list[tuple[str, str, str, str | None]]:
    return [(r.actor, r.action, r.result, r.reason) for r in records if r.action != "auth-failure"]


@pytest.fixture
def monitor(gateway, secrets_dir, monkeypatch) -> Iterator[str]:
    secrets_dir(SERVICE_ALERTMANAGER_WEBHOOK_SECRET=SECRET, SERVICE_GATEWAY_API_KEY=API_KEY)
    monkeypatch.setenv("SERVICE_GUI_GATEWAY_URL", gateway[1])
    settings = settings_class(SPEC)(name=SPEC.name)
    with served(create_app(SPEC, settings, build_parts(SPEC, settings))) as url:
        yield url


@pytest.fixture
def alertmanager(tmp_path, monitor) -> Iterator[str]:
    config = alertmanager_config(tmp_path, f"{monitor}/webhook/alertmanager")
    check = subprocess.run([BIN / "amtool", "check-config", config], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout and "4 receivers" in check.stdout
    port = free_port()
    proc = subprocess.Popen([BIN / "alertmanager", f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                            stdout=subprocess.DEVNULL, stderr=(tmp_path / "alertmanager.log").open("w"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_LIMIT
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "alertmanager.log").read_text()[-2000:])
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_firing_alert_in_alertmanager_halts_trading_through_the_gateway(alertmanager, monitor, gateway):
    r = httpx.post(f"{alertmanager}/api/v2/alerts", json=[{"labels": HALT, "annotations": {"summary": "e2e"}}])
    assert r.status_code == 200
    deadline = time.monotonic() + DELIVERY_LIMIT
    while not controls(gateway[0]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert controls(gateway[0]) == [("apikey:compliance", "pause", "ok", "compliance-monitor: "
                                     "CFTCPreTradeRiskControlsViolation (CFTC/pre-trade-risk-controls/critical)")]
    audit = httpx.get(f"{monitor}/api/v1/compliance/audit",
                      headers={"X-Eafix-Principal": "t", "X-Eafix-Roles": "viewer"}).json()["entries"]
    assert [e["kind"] for e in audit[:3]] == ["alert", "decision", "action"]
    assert audit[0]["detail"]["labels"]["alertname"] == "CFTCPreTradeRiskControlsViolation"
    assert audit[1]["detail"]["action"] == "trading_halt" and audit[2]["detail"]["result"] == "ok"
    metrics = httpx.get(f"{monitor}/metrics").text
    assert "eafix_compliance_webhook_rejected_total{" not in metrics  # Alertmanager's bearer was accepted


def test_alertmanager_with_a_wrong_credential_is_refused_and_counted(tmp_path, monitor, gateway):
    config = alertmanager_config(tmp_path, f"{monitor}/webhook/alertmanager")
    (tmp_path / "ALERTMANAGER_WEBHOOK_SECRET").write_text("not-the-secret\n")
    port = free_port()
    proc = subprocess.Popen([BIN / "alertmanager", f"--config.file={config}", f"--storage.path={tmp_path / 'd'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + STARTUP_LIMIT
        while True:
            try:
                if httpx.post(f"http://127.0.0.1:{port}/api/v2/alerts", timeout=1,
                              json=[{"labels": HALT}]).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        line = 'eafix_compliance_webhook_rejected_total{reason="bad_token"}'
        deadline = time.monotonic() + DELIVERY_LIMIT
        while line not in (text := httpx.get(f"{monitor}/metrics").text) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert line in text
        assert controls(gateway[0]) == []
    finally:
        proc.terminate()
        proc.wait(10)
