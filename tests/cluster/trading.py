"""eafix-trading as the cluster tests install it: the chart, the overlays, what they document."""

from __future__ import annotations

from control_plane import REPO

CHART = REPO / "charts" / "eafix-trading"
DEV = REPO / "values" / "dev" / "eafix-trading.yaml"
PROD = REPO / "values" / "prod" / "eafix-trading.yaml"
# custom resources whose CRDs this cluster does not have (Prometheus Operator, Istio, cert-manager): off
# for the install; the chart tests check those objects against their operators' schemas
NO_CRDS = ["--set", "global.serviceMonitor.enabled=false", "--set", "prometheusRule.enabled=false",
           "--set", "global.istio.enabled=false", "--set", "certificate.enabled=false"]
SERVICES = ["calendar-ingestor", "compliance-monitor", "data-ingestor", "execution-engine", "gui-gateway",
            "indicator-engine", "reentry-matrix-svc", "reporter", "risk-manager", "signal-generator"]
# the replica counts the overlays document (values/dev: one each; the header of values/prod)
REPLICAS = {"dev": dict.fromkeys(SERVICES, 1),
            "prod": {**dict.fromkeys(SERVICES, 2), "gui-gateway": 3, "calendar-ingestor": 1, "reporter": 1,
                     "compliance-monitor": 1}}
