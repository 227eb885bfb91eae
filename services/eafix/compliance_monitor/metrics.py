"""The compliance metrics (runtime.metric_names) fed by the monitor's observer hooks."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from eafix.compliance_monitor.monitor import Observer
from eafix.runtime import metric_names as mn


class PrometheusObserver(Observer):
    def __init__(self, registry: CollectorRegistry) -> None:
        m = mn.create(registry, mn.COMPLIANCE_ALERTS, mn.COMPLIANCE_VIOLATIONS, mn.COMPLIANCE_REMEDIATIONS,
                      mn.WEBHOOK_REJECTED, mn.CIRCUIT_BREAKER_OPEN)
        self._alerts, self._violations = m[mn.COMPLIANCE_ALERTS], m[mn.COMPLIANCE_VIOLATIONS]
        self._remediations, self._rejected = m[mn.COMPLIANCE_REMEDIATIONS], m[mn.WEBHOOK_REJECTED]
        self._breaker = m[mn.CIRCUIT_BREAKER_OPEN]
        self._breaker.labels("compliance").set(0)

    def alert(self, regulation: str, status: str) -> None:
        self._alerts.labels(regulation, status).inc()

    def violation(self, regulation: str, rule: str, severity: str) -> None:
        self._violations.labels(regulation, rule, severity).inc()

    def remediation(self, action: str, status: str) -> None:
        self._remediations.labels(action, status).inc()

    def breaker(self, is_open: bool) -> None:
        self._breaker.labels("compliance").set(1 if is_open else 0)

    def rejected(self, reason: str) -> None:
        self._rejected.labels(reason).inc()
