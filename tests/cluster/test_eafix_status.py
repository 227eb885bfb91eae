"""`eafix status` against a live release: a service whose pod kwok keeps not ready (our
stages/pod-never-ready.yaml, chosen by a label set through the chart's podLabels), then a rollout
stuck on such a pod. (The healthy release is checked right after install in test_helm_lifecycle.py.)
What the command reports is compared with the API objects read here and with what the chart's
rollout strategy (maxSurge 1, maxUnavailable 0) implies."""

from __future__ import annotations

import json

import yaml
from kubernetes import client

from kube import api_client, available, deployments, restricted_namespace, wait_for
from trading import CHART, DEV, NO_CRDS, SERVICES

NEVER_READY = {"podLabels": {"eafix.test/readiness": "never"}}


def _pods(cluster, namespace: str, service: str) -> list:
    return client.CoreV1Api(api_client(cluster)).list_namespaced_pod(
        namespace, label_selector=f"app.kubernetes.io/name={service}").items


def _running_not_ready(pod) -> bool:
    return pod.status.phase == "Running" and any(c.type == "Ready" and c.status == "False"
                                                 for c in pod.status.conditions or [])


def _report(eafix_status, namespace: str) -> dict:
    done = eafix_status(namespace, "--json")
    assert done.returncode == 1, done.stdout + done.stderr  # something needs attention
    return {s["name"]: s for s in json.loads(done.stdout)["services"]}


def test_a_never_ready_pod_then_a_rollout_stuck_on_one(cluster, helm, eafix_status, tmp_path):
    namespace = restricted_namespace(cluster, "eafix-status")
    values = tmp_path / "reporter-never-ready.yaml"
    values.write_text(yaml.safe_dump({"reporter": NEVER_READY}))
    # no --wait: the reporter Deployment never becomes Available
    done = helm("install", "eafix", str(CHART), "-n", namespace, "-f", str(DEV), "-f", str(values), *NO_CRDS,
                "--timeout", "240s")
    assert done.returncode == 0, done.stdout + done.stderr
    others = [s for s in SERVICES if s != "reporter"]
    def settled() -> bool:
        found, reporter_pods = deployments(cluster, namespace), _pods(cluster, namespace, "reporter")
        return (len(found) == 10 and all(available(d) for n, d in found.items() if n != "reporter")
                and len(reporter_pods) == 1 and _running_not_ready(reporter_pods[0]))

    wait_for("the other nine services Available and reporter's pod running, not ready", settled, timeout=180)
    (pod,) = _pods(cluster, namespace, "reporter")
    services = _report(eafix_status, namespace)
    reporter = services["reporter"]
    assert (reporter["desired"], reporter["ready"], reporter["updated"], reporter["available"]) == (1, 0, 1, 0)
    assert reporter["problems"] == [f"{pod.metadata.name}: not ready"]
    assert [(p["name"], p["ready"]) for p in reporter["pods"]] == [(pod.metadata.name, False)]
    assert {n: s["state"] for n, s in services.items() if n != "reporter"} == dict.fromkeys(others, "ok")
    table = eafix_status(namespace)
    assert table.returncode == 1
    assert any(line.startswith("reporter ") and line.endswith(f"{pod.metadata.name}: not ready")
               for line in table.stdout.splitlines()), table.stdout

    # risk-manager's next pods never become ready: the rollout surges one new pod and keeps the old one
    old = {p.metadata.name for p in _pods(cluster, namespace, "risk-manager")}
    values.write_text(yaml.safe_dump({"reporter": NEVER_READY, "risk-manager": NEVER_READY}))
    done = helm("upgrade", "eafix", str(CHART), "-n", namespace, "-f", str(DEV), "-f", str(values), *NO_CRDS,
                "--timeout", "240s")
    assert done.returncode == 0, done.stdout + done.stderr
    wait_for("risk-manager's new pod running, not ready", lambda: any(
        p.metadata.name not in old and _running_not_ready(p) for p in _pods(cluster, namespace, "risk-manager")),
        timeout=120)
    (new,) = [p.metadata.name for p in _pods(cluster, namespace, "risk-manager") if p.metadata.name not in old]
    services = _report(eafix_status, namespace)
    risk = services["risk-manager"]
    # desired 1; the new ReplicaSet's pod is the one updated replica; the old pod still serves
    assert (risk["desired"], risk["ready"], risk["updated"], risk["available"]) == (1, 1, 1, 1)
    assert risk["problems"] == ["rolling out (1/1 updated, 1 old pod(s) left)", f"{new}: not ready"]
    assert sorted(p["name"] for p in risk["pods"]) == sorted(old | {new})
    assert {n: s["state"] for n, s in services.items() if n not in ("reporter", "risk-manager")} == \
        {n: "ok" for n in others if n != "risk-manager"}
    assert services["reporter"]["problems"] == [f"{pod.metadata.name}: not ready"]  # untouched by the upgrade
