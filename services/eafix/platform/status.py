"""`eafix status`: what a live release is doing, read from the Kubernetes API (and gui-gateway).

Per service (a Deployment labelled `app.kubernetes.io/instance=<release>`): desired / ready /
updated / available replicas, container restarts, the pods' readiness (the Ready condition, i.e.
the last readiness probe result, and a waiting reason such as CrashLoopBackOff), the image and the
config checksum of the pod template, and its PodDisruptionBudget and HorizontalPodAutoscaler. With
`--gateway URL` it adds what gui-gateway's `GET /api/v1/system/status` reports: last tick age per
symbol, consumer lag, pending and dead-letter count per stream, and the risk-off latch.

`summarize()` and `gateway_report()` are pure (dicts in, findings out) so they are tested on
constructed objects; `collect()` reads the objects with the `kubernetes` client.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

Obj = Mapping[str, Any]
INSTANCE = "app.kubernetes.io/instance"
NAME = "app.kubernetes.io/name"
CHECKSUM = "checksum/config"
STALE_TICK_SECONDS = 30.0


@dataclass
class PodState:
    name: str
    ready: bool
    restarts: int
    waiting: str | None  # e.g. CrashLoopBackOff, ImagePullBackOff
    ready_since: str | None  # when the Ready condition last changed (the last probe outcome)


@dataclass
class ServiceState:
    name: str
    desired: int
    ready: int
    updated: int
    available: int
    restarts: int
    image: str
    config_checksum: str | None
    pods: list[PodState] = field(default_factory=list)
    pdb: str | None = None
    hpa: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        return "ok" if not self.problems else "; ".join(self.problems)


def _meta(o: Obj) -> Obj:
    return o.get("metadata") or {}


def _matches(selector: Obj, labels: Obj) -> bool:
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _pod_state(pod: Obj) -> PodState:
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    ready: Obj = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    waiting = next((s["state"]["waiting"].get("reason") for s in statuses
                    if (s.get("state") or {}).get("waiting")), None)
    return PodState(_meta(pod).get("name", "?"), ready.get("status") == "True",
                    sum(int(s.get("restartCount") or 0) for s in statuses), waiting,
                    ready.get("lastTransitionTime"))


def _pdb_text(pdb: Obj) -> str:
    spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
    budget = f"maxUnavailable {spec['maxUnavailable']}" if "maxUnavailable" in spec else \
        f"minAvailable {spec.get('minAvailable')}"
    return (f"{budget}, {status.get('currentHealthy', 0)}/{status.get('desiredHealthy', 0)} healthy, "
            f"{status.get('disruptionsAllowed', 0)} disruption(s) allowed")


def _hpa_text(hpa: Obj) -> str:
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    cpu = next((m["resource"]["current"].get("averageUtilization") for m in status.get("currentMetrics") or []
                if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu"), None)
    return (f"{spec.get('minReplicas', 1)}-{spec.get('maxReplicas')} replicas, now "
            f"{status.get('currentReplicas', 0)} -> {status.get('desiredReplicas', 0)}"
            + (f", cpu {cpu}%" if cpu is not None else ""))


def _problems(desired: int, status: Obj, generation: int, pods: list[PodState]) -> list[str]:
    problems = []
    updated = status.get("updatedReplicas", 0)
    # all replicas updated is not done yet while pods of the old ReplicaSets still run (maxUnavailable 0
    # keeps an old pod until its replacement is ready)
    old = status.get("replicas", 0) - updated
    if status.get("observedGeneration", generation) < generation or updated < desired or old > 0:
        problems.append(f"rolling out ({updated}/{desired} updated" + (f", {old} old pod(s) left)" if old > 0 else ")"))
    for pod in pods:
        if pod.waiting:
            problems.append(f"{pod.name}: {pod.waiting}")
        elif not pod.ready:
            problems.append(f"{pod.name}: not ready")
    if status.get("readyReplicas", 0) < desired and not any(not p.ready for p in pods):
        problems.append(f"{status.get('readyReplicas', 0)}/{desired} ready")
    return problems


def summarize(deployments: Iterable[Obj], pods: Iterable[Obj], pdbs: Iterable[Obj] = (),
              hpas: Iterable[Obj] = ()) -> list[ServiceState]:
    """One ServiceState per Deployment, sorted by service name."""
    pods, pdbs, hpas = list(pods), list(pdbs), list(hpas)
    out = []
    for deployment in deployments:
        meta, spec, status = _meta(deployment), deployment.get("spec") or {}, deployment.get("status") or {}
        name = (meta.get("labels") or {}).get(NAME) or meta.get("name", "?")
        template = spec.get("template") or {}
        containers = (template.get("spec") or {}).get("containers") or [{}]
        own = [_pod_state(p) for p in pods if _matches(spec.get("selector") or {}, _meta(p).get("labels") or {})]
        desired = int(spec.get("replicas", 1))
        pdb = next((p for p in pdbs if _matches((p.get("spec") or {}).get("selector") or {},
                                                _meta(template).get("labels") or {})), None)
        hpa = next((h for h in hpas if ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("name")
                    == meta.get("name")), None)
        out.append(ServiceState(
            name=name, desired=desired, ready=int(status.get("readyReplicas", 0)),
            updated=int(status.get("updatedReplicas", 0)), available=int(status.get("availableReplicas", 0)),
            restarts=sum(p.restarts for p in own), image=containers[0].get("image", "?"),
            config_checksum=(_meta(template).get("annotations") or {}).get(CHECKSUM),
            pods=sorted(own, key=lambda p: p.name), pdb=_pdb_text(pdb) if pdb else None,
            hpa=_hpa_text(hpa) if hpa else None,
            problems=_problems(desired, status, int(meta.get("generation", 0)), own)))
    return sorted(out, key=lambda s: s.name)


def gateway_report(body: Obj, stale_after: float = STALE_TICK_SECONDS) -> dict[str, Any]:
    """The trading side of gui-gateway's system status, with the problems an operator must see:
    ticks older than `stale_after` seconds, dead letters, the risk-off latch."""
    ticks = {s: float(v.get("age_seconds", 0.0)) for s, v in (body.get("ticks") or {}).items()}
    streams = {s: {k: int(v.get(k, 0)) for k in ("lag", "pending", "dlq")}
               for s, v in (body.get("streams") or {}).items()}
    risk_off = body.get("risk_off") or {}
    problems = [f"{s}: last tick {age:.0f} s ago" for s, age in sorted(ticks.items()) if age > stale_after]
    problems += [f"{s}: {v['dlq']} dead letter(s)" for s, v in sorted(streams.items()) if v["dlq"]]
    if risk_off.get("active"):
        problems.append(f"risk-off: {risk_off.get('reason') or 'active'}")
    return {"ticks": ticks, "streams": streams, "risk_off": risk_off, "problems": problems}


# --- reading a live release --------------------------------------------------------------------------


def collect(release: str, namespace: str) -> dict[str, list[Obj]]:
    """The release's Deployments, Pods, PDBs and HPAs as plain dicts (KUBECONFIG or in-cluster)."""
    from kubernetes import client, config

    try:
        config.load_kube_config()
    except config.ConfigException:
        config.load_incluster_config()
    api = client.ApiClient()
    selector = f"{INSTANCE}={release}"
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    policy, autoscaling = client.PolicyV1Api(api), client.AutoscalingV2Api(api)

    def items(call) -> list[Obj]:
        return json.loads(call(namespace, label_selector=selector, _preload_content=False).data)["items"]

    return {"deployments": items(apps.list_namespaced_deployment), "pods": items(core.list_namespaced_pod),
            "pdbs": items(policy.list_namespaced_pod_disruption_budget),
            "hpas": items(autoscaling.list_namespaced_horizontal_pod_autoscaler)}


def _gateway(url: str, token: str | None, stale_after: float, api_key: str | None = None) -> dict[str, Any]:
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if api_key:
        headers["X-API-Key"] = api_key
    try:
        response = httpx.get(f"{url.rstrip('/')}/api/v1/system/status", headers=headers, timeout=5.0)
        response.raise_for_status()
        return gateway_report(response.json(), stale_after)
    except (httpx.HTTPError, ValueError) as exc:
        return {"unreachable": f"{type(exc).__name__}: {exc}", "problems": [f"gui-gateway unreachable ({exc})"]}


def render_table(services: list[ServiceState], gateway: Mapping[str, Any] | None) -> str:
    rows = [("SERVICE", "READY", "UPDATED", "AVAIL", "RESTARTS", "IMAGE", "CONFIG", "STATE")]
    rows += [(s.name, f"{s.ready}/{s.desired}", str(s.updated), str(s.available), str(s.restarts), s.image,
              (s.config_checksum or "-")[:12], s.state) for s in services]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in rows]
    lines += [f"{s.name}: PDB {s.pdb}" for s in services if s.pdb]
    lines += [f"{s.name}: HPA {s.hpa}" for s in services if s.hpa]
    if gateway is not None:
        if "unreachable" in gateway:
            lines.append(f"gui-gateway: unreachable ({gateway['unreachable']})")
        else:
            lines += [f"tick {symbol}: {age:.1f} s ago" for symbol, age in sorted(gateway["ticks"].items())]
            lines += [f"stream {s}: lag {v['lag']}, pending {v['pending']}, dlq {v['dlq']}"
                      for s, v in sorted(gateway["streams"].items())]
            lines.append(f"risk-off: {'ACTIVE' if gateway['risk_off'].get('active') else 'off'}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    services = summarize(**collect(args.release, args.namespace))
    api_key = os.environ.get("EAFIX_GATEWAY_API_KEY")
    gateway = _gateway(args.gateway, args.token, args.stale_after, api_key) if args.gateway else None
    if args.json:
        print(json.dumps({"release": args.release, "namespace": args.namespace,
                          "services": [{**asdict(s), "state": s.state} for s in services], "gateway": gateway},
                         indent=2))
    else:
        print(render_table(services, gateway))
    if not services:
        print(f"eafix status: no Deployment of release {args.release!r} in namespace {args.namespace!r}",
              file=sys.stderr)
        return 1
    healthy = all(not s.problems for s in services) and not (gateway or {}).get("problems")
    return 0 if healthy else 1


def add_parser(sub: Any) -> None:
    status = sub.add_parser("status", help="what a live release is doing (Kubernetes API, gui-gateway)",
                            description="Per service replicas, restarts, readiness, image, config checksum, "
                                        "PDB and HPA; with --gateway the ticks, streams and risk-off state. "
                                        "Exit 1 when anything needs attention.")
    status.add_argument("--release", default="eafix", help="Helm release name (default eafix)")
    status.add_argument("--namespace", "-n", default="eafix-trading", help="namespace (default eafix-trading)")
    status.add_argument("--gateway", metavar="URL", help="gui-gateway base URL, e.g. http://localhost:8080")
    status.add_argument("--token", help="bearer token for gui-gateway (or an API key in $EAFIX_GATEWAY_API_KEY)")
    status.add_argument("--stale-after", type=float, default=STALE_TICK_SECONDS, metavar="SECONDS",
                        help=f"a tick older than this is stale (default {STALE_TICK_SECONDS:g})")
    status.add_argument("--json", action="store_true", help="JSON instead of a table")
    status.set_defaults(func=run)
