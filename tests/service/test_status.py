"""`eafix status` on constructed API objects: a healthy service, a rollout in progress, a pod in
CrashLoopBackOff, a pod that is not ready, PDB/HPA text; and the gateway part (stale ticks, dead
letters, risk-off). The same summary runs against a real API server in tests/cluster."""

from __future__ import annotations

from eafix.platform.status import gateway_report, render_table, summarize

LABELS = {"app.kubernetes.io/name": "risk-manager", "app.kubernetes.io/instance": "eafix"}


def deployment(*, replicas: int = 2, ready: int = 2, updated: int = 2, generation: int = 3, observed: int = 3,
               checksum: str = "abc123") -> dict:
    return {
        "metadata": {"name": "risk-manager", "labels": LABELS, "generation": generation},
        "spec": {"replicas": replicas, "selector": {"matchLabels": LABELS},
                 "template": {"metadata": {"labels": LABELS, "annotations": {"checksum/config": checksum}},
                              "spec": {"containers": [{"image": "ghcr.io/eafix/risk-manager:0.1.0"}]}}},
        "status": {"readyReplicas": ready, "updatedReplicas": updated, "availableReplicas": ready,
                   "observedGeneration": observed},
    }


def pod(name: str, *, ready: bool = True, restarts: int = 0, waiting: str | None = None) -> dict:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {"metadata": {"name": name, "labels": LABELS},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "lastTransitionTime": "2026-12-03T10:00:00Z"}],
                       "containerStatuses": [{"restartCount": restarts, "state": state}]}}


def test_a_healthy_service():
    (state,) = summarize([deployment()], [pod("risk-manager-a"), pod("risk-manager-b", restarts=1)])
    assert (state.name, state.desired, state.ready, state.updated, state.restarts) == ("risk-manager", 2, 2, 2, 1)
    assert (state.image, state.config_checksum, state.state) == ("ghcr.io/eafix/risk-manager:0.1.0", "abc123", "ok")
    assert [p.ready_since for p in state.pods] == ["2026-12-03T10:00:00Z"] * 2


def test_crash_loop_and_not_ready_pods_are_problems():
    pods = [pod("risk-manager-a", ready=False, restarts=7, waiting="CrashLoopBackOff"),
            pod("risk-manager-b", ready=False)]
    (state,) = summarize([deployment(ready=0)], pods)
    assert state.problems == ["risk-manager-a: CrashLoopBackOff", "risk-manager-b: not ready"]
    assert state.restarts == 7


def test_a_rollout_in_progress():
    (state,) = summarize([deployment(updated=1, generation=4, observed=4)], [pod("a"), pod("b")])
    assert state.problems == ["rolling out (1/2 updated)"]
    (state,) = summarize([deployment(generation=5, observed=4)], [pod("a"), pod("b")])  # not even observed yet
    assert state.problems == ["rolling out (2/2 updated)"]


def test_a_rollout_waiting_for_its_new_pod_to_become_ready():
    """Every replica updated but the old pod still running: the new one is not ready (maxUnavailable 0)."""
    stuck = deployment(replicas=1, ready=1, updated=1)
    stuck["status"]["replicas"] = 2
    (state,) = summarize([stuck], [pod("old"), pod("new", ready=False)])
    assert state.problems == ["rolling out (1/1 updated, 1 old pod(s) left)", "new: not ready"]


def test_pods_of_other_services_are_not_counted():
    other = pod("execution-engine-a", waiting="CrashLoopBackOff")
    other["metadata"]["labels"] = {**LABELS, "app.kubernetes.io/name": "execution-engine"}
    (state,) = summarize([deployment()], [pod("a"), pod("b"), other])
    assert state.state == "ok" and [p.name for p in state.pods] == ["a", "b"]


def test_pdb_and_hpa_are_reported():
    pdb = {"spec": {"maxUnavailable": 1, "selector": {"matchLabels": LABELS}},
           "status": {"currentHealthy": 2, "desiredHealthy": 1, "disruptionsAllowed": 1}}
    hpa = {"spec": {"scaleTargetRef": {"name": "risk-manager"}, "minReplicas": 2, "maxReplicas": 10},
           "status": {"currentReplicas": 2, "desiredReplicas": 3,
                      "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu",
                                                                           "current": {"averageUtilization": 85}}}]}}
    (state,) = summarize([deployment()], [pod("a"), pod("b")], [pdb], [hpa])
    assert state.pdb == "maxUnavailable 1, 2/1 healthy, 1 disruption(s) allowed"
    assert state.hpa == "2-10 replicas, now 2 -> 3, cpu 85%"
    table = render_table([state], None)
    assert "risk-manager: PDB maxUnavailable 1" in table and "risk-manager: HPA 2-10 replicas" in table


def test_stale_ticks_dead_letters_and_risk_off_from_the_gateway():
    body = {"ticks": {"EURUSD": {"age_seconds": 2.5}, "USDJPY": {"age_seconds": 95}},
            "streams": {"eafix.price.tick": {"lag": 3, "pending": 1, "dlq": 0},
                        "eafix.orders.validated": {"lag": 0, "pending": 0, "dlq": 2}},
            "risk_off": {"active": True, "reason": "daily drawdown"}}
    report = gateway_report(body, stale_after=30)
    assert report["problems"] == ["USDJPY: last tick 95 s ago", "eafix.orders.validated: 2 dead letter(s)",
                                  "risk-off: daily drawdown"]
    table = render_table([], report)
    assert "tick USDJPY: 95.0 s ago" in table and "risk-off: ACTIVE" in table
    assert gateway_report({"ticks": {"EURUSD": {"age_seconds": 2.5}}})["problems"] == []
