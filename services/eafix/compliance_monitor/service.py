"""compliance-monitor as a process: the Alertmanager webhook, the regulation policy, actions through
gui-gateway's emergency controls, the audit trail and the compliance metrics.

Settings (besides the runtime's):
    SERVICE_ALERTMANAGER_WEBHOOK_SECRET  shared secret of the webhook (the chart mounts key
                                         ALERTMANAGER_WEBHOOK_SECRET of the service Secret); unset:
                                         the webhook answers 503
    SERVICE_GATEWAY_API_KEY              this service's gui-gateway API key `<id>.<secret>`
    SERVICE_GUI_GATEWAY_URL              gui-gateway's base URL (peer); unset: actions fail, audited
    SERVICE_POSTGRES_URL                 the audit trail in schema `compliance` (unset: in memory)
    SERVICE_POLICY_FILE                  a policy YAML (schemas/compliance/policy.v1.schema.json)
                                         replacing the shipped one; a bad file stops the start
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry
from pydantic import SecretStr, field_validator

from eafix.compliance_monitor.app import build_router
from eafix.compliance_monitor.audit import AuditLog, InMemoryAuditLog, PostgresAuditLog
from eafix.compliance_monitor.metrics import PrometheusObserver
from eafix.compliance_monitor.monitor import ComplianceMonitor
from eafix.compliance_monitor.policy import DEFAULT_POLICY, Policy, PolicyError, load_policy
from eafix.compliance_monitor.trading_control import Control, ControlResult, GatewayTradingControl, TradingControl
from eafix.runtime.clock import WallClock
from eafix.runtime.service import ServiceParts, pipeline_database
from eafix.runtime.settings import Settings


class ComplianceSettings(Settings):
    alertmanager_webhook_secret: SecretStr | None = None
    gateway_api_key: SecretStr | None = None
    policy_file: Path = DEFAULT_POLICY

    @field_validator("policy_file")
    @classmethod
    def _readable_policy(cls, value: Path) -> Path:
        try:
            load_policy(value)
        except OSError as exc:
            raise ValueError(f"cannot read {value}: {exc.strerror}") from None
        except PolicyError as exc:
            raise ValueError(str(exc)) from None
        return value


SETTINGS = ComplianceSettings
PRUNE_SECONDS = 3600.0  # the pruning job: hourly, deleting the audit rows past the retention in force


class _NoGateway:
    """Without SERVICE_GUI_GATEWAY_URL or an API key every action fails (and is audited as failed)."""

    async def apply(self, control: Control, reason: str) -> ControlResult:
        return ControlResult(control, "failed", ["SERVICE_GUI_GATEWAY_URL or SERVICE_GATEWAY_API_KEY not set"])


def build(settings: ComplianceSettings) -> ServiceParts:
    parts = ServiceParts()
    registry = CollectorRegistry()
    parts.collectors.append(registry)
    url, key = settings.peers.get("gui-gateway"), settings.gateway_api_key
    control: TradingControl = _NoGateway()
    if url and key is not None:
        gateway = GatewayTradingControl(str(url), key.get_secret_value())
        control = gateway
        parts.add_step(stop=gateway.aclose)
    db = pipeline_database(settings, parts)
    audit: AuditLog = InMemoryAuditLog()
    if db is not None:
        pg_audit = PostgresAuditLog(db.pool)
        audit = pg_audit

        async def prune() -> None:
            await pg_audit.prune()

        parts.every("audit-pruning", PRUNE_SECONDS, prune)
    observer = PrometheusObserver(registry)
    monitor = ComplianceMonitor(Policy(load_policy(settings.policy_file)), control, audit,
                                WallClock().now, observer)
    secret = settings.alertmanager_webhook_secret
    parts.routers.append(build_router(monitor, lambda: secret.get_secret_value() if secret else None,
                                      observer.rejected))
    parts.state.update(monitor=monitor)
    return parts


__all__ = ["SETTINGS", "ComplianceSettings", "build"]
