"""eafix-trading installed, upgraded, rolled back and uninstalled with the real Helm 4 against a real
API server (kwok nodes in three zones), in namespaces that enforce the restricted Pod Security profile."""

from __future__ import annotations

import pytest

from control_plane import REPO
from kube import available, deployments, pod_zones, replica_sets, restricted_namespace, settled

CHART = REPO / "charts" / "eafix-trading"
DEV = REPO / "values" / "dev" / "eafix-trading.yaml"
PROD = REPO / "values" / "prod" / "eafix-trading.yaml"
# custom resources whose CRDs this cluster does not have (Prometheus Operator, Istio, cert-manager): off
# for the install; the chart tests check those objects against their operators' schemas
NO_CRDS = ["--set", "global.serviceMonitor.enabled=false", "--set", "prometheusRule.enabled=false",
           "--set", "global.istio.enabled=false", "--set", "certificate.enabled=false"]


def install(helm, namespace: str, *args: str):
    done = helm("install", "eafix", str(CHART), "-n", namespace, "--wait", "--wait-for-jobs", "--timeout", "240s",
                *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.parametrize("values", [DEV, PROD], ids=["dev", "prod"])
def test_install_makes_every_deployment_available_and_helm_test_passes(cluster, helm, values):
    namespace = restricted_namespace(cluster, f"eafix-{values.parent.name}")
    install(helm, namespace, "-f", str(values), *NO_CRDS)
    found = deployments(cluster, namespace)
    assert len(found) == 10 and all(available(d) for d in found.values()), \
        {n: d.status.conditions for n, d in found.items() if not available(d)}
    tested = helm("test", "eafix", "-n", namespace, "--timeout", "120s")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    if values is PROD:
        for name, d in found.items():
            if (d.spec.replicas or 0) >= 3:  # prod spreads each service's pods over the zones
                zones = pod_zones(cluster, namespace, f"app.kubernetes.io/name={name}")
                assert len(set(zones)) == 3, (name, zones)


def test_upgrade_rolls_one_service_rollback_restores_uninstall_cleans_up(cluster, helm):
    namespace = restricted_namespace(cluster, "eafix-lifecycle")
    install(helm, namespace, "-f", str(DEV), *NO_CRDS)
    settled(cluster, namespace)
    before = replica_sets(cluster, namespace)
    up = helm("upgrade", "eafix", str(CHART), "-n", namespace, "-f", str(DEV), *NO_CRDS,
              "--set", "risk-manager.logLevel=WARNING", "--wait", "--timeout", "240s")
    assert up.returncode == 0, up.stdout + up.stderr
    settled(cluster, namespace)
    after = replica_sets(cluster, namespace)
    assert {name for name in before if before[name] != after.get(name)} == {"risk-manager"}
    back = helm("rollback", "eafix", "1", "-n", namespace, "--wait", "--timeout", "240s")
    assert back.returncode == 0, back.stdout + back.stderr
    settled(cluster, namespace)
    assert replica_sets(cluster, namespace) == before
    gone = helm("uninstall", "eafix", "-n", namespace, "--wait", "--timeout", "120s")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert deployments(cluster, namespace) == {}
