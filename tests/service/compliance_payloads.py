"""Alertmanager webhook v4 bodies for compliance-monitor's tests, shaped as Alertmanager sends them."""

from __future__ import annotations

from typing import Any

HALT = {"alertname": "CFTCPreTradeRiskControlsViolation", "severity": "critical", "team": "compliance",
        "regulation": "CFTC", "requirement": "pre-trade-risk-controls", "namespace": "eafix-trading"}
WARN = {"alertname": "MiFID2BestExecutionWarning", "severity": "warning", "team": "compliance",
        "regulation": "MiFID2", "requirement": "best-execution", "namespace": "eafix-trading"}
LIMIT = {"alertname": "CFTCPositionLimitViolation", "severity": "critical", "team": "compliance",
         "regulation": "CFTC", "requirement": "position-limits", "namespace": "eafix-trading"}


def alert(labels: dict[str, str], fingerprint: str, status: str = "firing") -> dict[str, Any]:
    return {"status": status, "labels": labels, "annotations": {"summary": "s"},
            "startsAt": "2025-01-06T12:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph", "fingerprint": fingerprint}


def notification(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    return {"version": "4", "groupKey": "{}:{alertname=\"x\"}", "truncatedAlerts": 0, "status": status,
            "receiver": "compliance-monitor", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093", "alerts": list(alerts)}
