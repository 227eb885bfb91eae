"""eafix-trading installed, upgraded, rolled back and uninstalled with the real Helm 4 against a real
API server (kwok nodes in three zones), in namespaces that enforce the restricted Pod Security profile."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from control_plane import REPO
from kube import (
    api_client,
    available,
    config_checksums,
    deployments,
    job_completed_event,
    pod_zones,
    release_secrets,
    replica_sets,
    restricted_namespace,
    settled,
    still_there,
    wait_for,
)
from trading import CHART, DEV, NO_CRDS, PROD, REPLICAS, SERVICES


def install(helm, namespace: str, *args: str, chart: Path = CHART):
    done = helm("install", "eafix", str(chart), "-n", namespace, "--wait", "--wait-for-jobs", "--timeout", "240s",
                *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _pdbs_and_hpas(cluster, namespace: str) -> tuple[dict, dict]:
    """PDBs by the service they select (once the disruption controller has evaluated each); HPAs by target."""
    policy = client.PolicyV1Api(api_client(cluster))
    wait_for("the disruption controller to evaluate every PDB", lambda: all(
        p.status.observed_generation == p.metadata.generation
        for p in policy.list_namespaced_pod_disruption_budget(namespace).items))
    pdbs = {p.spec.selector.match_labels["app.kubernetes.io/name"]: p
            for p in policy.list_namespaced_pod_disruption_budget(namespace).items}
    hpas = {h.spec.scale_target_ref.name: h for h in
            client.AutoscalingV2Api(api_client(cluster)).list_namespaced_horizontal_pod_autoscaler(namespace).items}
    return pdbs, hpas


@pytest.mark.parametrize("values", [DEV, PROD], ids=["dev", "prod"])
def test_install_makes_every_deployment_available_and_helm_test_passes(cluster, helm, eafix_status, values):
    env = values.parent.name
    namespace = restricted_namespace(cluster, f"eafix-{env}")
    install(helm, namespace, "-f", str(values), *NO_CRDS)
    # the pre-install hook Job is deleted once it succeeded (hook-succeeded); the job controller's event stays
    wait_for("the migrations hook Job's Completed event", lambda: job_completed_event(cluster, namespace,
                                                                                      "eafix-migrations"))
    found = deployments(cluster, namespace)
    assert {n: d.spec.replicas for n, d in found.items()} == REPLICAS[env]
    assert all(available(d) for d in found.values()), \
        {n: d.status.conditions for n, d in found.items() if not available(d)}
    pdbs, hpas = _pdbs_and_hpas(cluster, namespace)
    assert {n: (p.status.expected_pods, p.status.current_healthy) for n, p in pdbs.items()} == \
        {n: (r, r) for n, r in REPLICAS[env].items()}
    if env == "prod":  # signal-generator's HPA, 2-10; the controller has taken the Deployment over
        assert {n: (h.spec.min_replicas, h.spec.max_replicas) for n, h in hpas.items()} == {"signal-generator": (2, 10)}
        wait_for("the HPA controller to read its target", lambda: _pdbs_and_hpas(cluster, namespace)[1][
            "signal-generator"].status.current_replicas == 2)
    else:
        assert hpas == {}
    tested = helm("test", "eafix", "-n", namespace, "--timeout", "120s")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    if env == "prod":
        for name, d in found.items():
            if (d.spec.replicas or 0) >= 3:  # prod spreads each service's pods over the zones
                zones = pod_zones(cluster, namespace, f"app.kubernetes.io/name={name}")
                assert len(set(zones)) == 3, (name, zones)
    # `eafix status` on the healthy release: exit 0, and what it reports agrees with the API objects
    report = eafix_status(namespace, "--json")
    assert report.returncode == 0, report.stdout + report.stderr
    services = {s["name"]: s for s in json.loads(report.stdout)["services"]}
    checksums = config_checksums(cluster, namespace)
    assert {n: (s["desired"], s["ready"], s["updated"], s["state"], s["config_checksum"])
            for n, s in services.items()} == {n: (r, r, r, "ok", checksums[n]) for n, r in REPLICAS[env].items()}
    # maxUnavailable 1 (the chart's default): r healthy of the r - 1 needed, one disruption allowed
    assert {n: s["pdb"] for n, s in services.items()} == {
        n: f"maxUnavailable 1, {r}/{r - 1} healthy, 1 disruption(s) allowed" for n, r in REPLICAS[env].items()}
    assert [n for n, s in services.items() if s["hpa"]] == (["signal-generator"] if env == "prod" else [])
    table = eafix_status(namespace)
    assert table.returncode == 0 and len([line for line in table.stdout.splitlines()
                                          if line.split()[0] in SERVICES and line.endswith("  ok")]) == 10, table.stdout


def previous_chart(into: Path) -> tuple[str, Path]:
    """charts/ and values/ as they were at the parent of the last commit that changed charts/."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True).stdout
    parent = git("rev-parse", "--short", git("log", "-1", "--format=%H", "--", "charts").strip() + "^").strip()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", parent, "charts", "values"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return parent, into


def test_upgrade_from_the_previous_chart_then_one_service_rollback_and_uninstall(cluster, helm, tmp_path):
    namespace = restricted_namespace(cluster, "eafix-lifecycle")
    commit, old = previous_chart(tmp_path)
    print(f"\nupgrading from the chart at {commit}")
    install(helm, namespace, "-f", str(old / "values" / "dev" / "eafix-trading.yaml"), *NO_CRDS,
            chart=old / "charts" / "eafix-trading")
    # revision 2: this chart over the previous one; an immutable field (a selector) changed would fail here
    up = helm("upgrade", "eafix", str(CHART), "-n", namespace, "-f", str(DEV), *NO_CRDS, "--wait", "--timeout", "240s")
    assert up.returncode == 0, f"upgrade from the chart at {commit}: {up.stdout}{up.stderr}"
    settled(cluster, namespace)
    assert all(available(d) for d in deployments(cluster, namespace).values())
    before, sums = replica_sets(cluster, namespace), config_checksums(cluster, namespace)
    # revision 3: one service's setting changed rolls that service only
    up = helm("upgrade", "eafix", str(CHART), "-n", namespace, "-f", str(DEV), *NO_CRDS,
              "--set", "risk-manager.logLevel=WARNING", "--wait", "--timeout", "240s")
    assert up.returncode == 0, up.stdout + up.stderr
    settled(cluster, namespace)
    after = replica_sets(cluster, namespace)
    assert {name for name in before if before[name] != after.get(name)} == {"risk-manager"}
    changed = config_checksums(cluster, namespace)
    assert {name for name in sums if sums[name] != changed[name]} == {"risk-manager"}
    back = helm("rollback", "eafix", "2", "-n", namespace, "--wait", "--timeout", "240s")
    assert back.returncode == 0, back.stdout + back.stderr
    settled(cluster, namespace)
    assert replica_sets(cluster, namespace) == before
    assert config_checksums(cluster, namespace) == sums
    manifest = helm("get", "manifest", "eafix", "-n", namespace)
    objects = [o for o in yaml.safe_load_all(manifest.stdout) if o]
    assert len(objects) > 50 and release_secrets(cluster, namespace, "eafix")
    gone = helm("uninstall", "eafix", "-n", namespace, "--wait", "--timeout", "120s")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    # nothing of the release is left: no release record, none of its objects (it has no PVC to keep)
    assert release_secrets(cluster, namespace, "eafix") == []
    assert not [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    assert still_there(cluster, namespace, objects) == []
    core = client.CoreV1Api(api_client(cluster))
    wait_for("the release's pods to go", lambda: not core.list_namespaced_pod(
        namespace, label_selector="app.kubernetes.io/instance=eafix").items)
