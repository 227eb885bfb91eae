"""The flow matrix a render declares (its ``*-flow-matrix`` ConfigMap) and the cluster model to check
the rendered NetworkPolicies and AuthorizationPolicies against it.

``release_endpoints`` turns every pod template of the render into an ``Endpoint`` named as the
matrix names it (the service, ``helm-test``, ``migrations``). ``actor_endpoints`` places each actor
where its selectors say it lives (a pod carrying its podSelector's labels in a namespace carrying
its namespaceSelector's labels, or an address inside its first ipBlock), and ``ADVERSARIES`` adds
pods and addresses no flow names: a stranger in the release namespace, a pod of another release
that copies a service's name, a pod in another namespace wearing Prometheus' labels, the internet.
``check`` reports every difference between what the policies allow and the declared matrix.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import istio_authz, network
from ._k8s import Finding, Obj, pod_template
from .network import Endpoint, Flow

TOOL = "flow-matrix"
COMPONENT_ACTOR = {"readyz-test": "helm-test"}  # app.kubernetes.io/component -> matrix name
METHODS = ("GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
UNUSED_PORT = 7777


@dataclass(frozen=True)
class Row:
    flow: str
    src: str
    dst: str
    port: int
    protocol: str
    http: bool
    methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()

    @property
    def l4(self) -> Flow:
        return Flow(self.src, self.dst, self.port, self.protocol)


@dataclass(frozen=True)
class Declared:
    rows: tuple[Row, ...]
    actors: Mapping[str, Mapping[str, Any]]
    trust_domain: str


def _matrix_configmap(objects: Iterable[Obj]) -> Obj | None:
    for o in objects:
        labels = (o.get("metadata") or {}).get("labels") or {}
        if o.get("kind") == "ConfigMap" and labels.get("app.kubernetes.io/component") == "flow-matrix":
            return o
    return None


def declared(objects: Iterable[Obj]) -> Declared | None:
    """The matrix of a render, or None when the render has none (another chart)."""
    cm = _matrix_configmap(objects)
    if cm is None:
        return None
    data = cm.get("data") or {}
    rows = tuple(
        Row(
            r["flow"],
            r["from"],
            r["to"],
            int(r["port"]),
            r.get("protocol", "TCP"),
            bool(r.get("http")),
            tuple(r.get("methods") or ()),
            tuple(r.get("paths") or ()),
            tuple(r.get("headers") or ()),
        )
        for r in json.loads(data["flows.json"])
    )
    meta = json.loads(data.get("actors.json") or "{}")
    return Declared(rows, meta.get("actors") or {}, meta.get("trustDomain") or "cluster.local")


def _fake_ip(index: int) -> str:
    return str(ipaddress.ip_address("10.244.0.10") + index)


def release_endpoints(objects: Iterable[Obj], namespace: str) -> list[Endpoint]:
    out: list[Endpoint] = []
    for o in objects:
        t = pod_template(o)
        if t is None:
            continue
        labels = t["metadata"].get("labels") or {}
        component = labels.get("app.kubernetes.io/component") or labels.get("app.kubernetes.io/name", "")
        named = {
            p["name"]: (int(p["containerPort"]), p.get("protocol", "TCP"))
            for c in t["spec"].get("containers") or []
            for p in c.get("ports") or []
            if p.get("name")
        }
        out.append(
            Endpoint(COMPONENT_ACTOR.get(component, component), namespace, dict(labels), _fake_ip(len(out)), named)
        )
    return out


def service_accounts(objects: Iterable[Obj]) -> dict[str, str]:
    """Matrix name -> service account of its pods ("default" when none is named)."""
    out = {}
    for ep_obj in objects:
        t = pod_template(ep_obj)
        if t is None:
            continue
        labels = t["metadata"].get("labels") or {}
        component = labels.get("app.kubernetes.io/component") or labels.get("app.kubernetes.io/name", "")
        out[COMPONENT_ACTOR.get(component, component)] = t["spec"].get("serviceAccountName") or "default"
    return out


def actor_endpoints(
    actors: Mapping[str, Mapping[str, Any]], release_namespace: str, namespaces: dict[str, dict[str, str]]
) -> list[Endpoint]:
    """One endpoint per actor, placed where its selectors say; ``namespaces`` gains their labels."""
    out = []
    for i, (name, a) in enumerate(sorted(actors.items())):
        blocks = a.get("ipBlocks") or []
        if blocks:
            first = blocks[0] if isinstance(blocks[0], str) else blocks[0]["cidr"]
            net = ipaddress.ip_network(first, strict=False)
            out.append(Endpoint(name, None, {}, str(net.network_address + min(5, net.num_addresses - 1))))
            continue
        ns_labels = dict(((a.get("namespaceSelector") or {}).get("matchLabels")) or {})
        if a.get("namespaceSelector") is None:
            ns = release_namespace
        else:
            ns = ns_labels.get("kubernetes.io/metadata.name") or f"ns-{name}"
            ns_labels["kubernetes.io/metadata.name"] = ns
            namespaces.setdefault(ns, {}).update(ns_labels)
        labels = dict(((a.get("podSelector") or {}).get("matchLabels")) or {"actor": name})
        out.append(Endpoint(name, ns, labels, str(ipaddress.ip_address("10.96.0.10") + i)))
    return out


def adversaries(release_namespace: str, release: str, namespaces: dict[str, dict[str, str]]) -> list[Endpoint]:
    namespaces.setdefault("sandbox", {"kubernetes.io/metadata.name": "sandbox"})
    return [
        Endpoint("stranger", release_namespace, {"app": "stranger"}, "10.244.9.1"),
        Endpoint(
            "other-release",
            release_namespace,
            {"app.kubernetes.io/name": "risk-manager", "app.kubernetes.io/instance": f"not-{release}"},
            "10.244.9.2",
        ),
        Endpoint(
            "impostor",
            "sandbox",
            {"app.kubernetes.io/name": "prometheus", "k8s-app": "kube-dns", "app.kubernetes.io/instance": release},
            "10.244.9.3",
        ),
        Endpoint("internet", None, {}, "198.51.100.9"),
    ]


def candidate_ports(
    rows: Iterable[Row], endpoints: Iterable[Endpoint], policies: Iterable[Obj]
) -> set[tuple[int, str]]:
    ports = {(r.port, r.protocol) for r in rows} | {(UNUSED_PORT, "TCP"), (UNUSED_PORT, "UDP")}
    ports |= {pp for e in endpoints for pp in e.named_ports.values()}
    for p in policies:
        for direction in ("ingress", "egress"):
            for rule in (p.get("spec") or {}).get(direction) or []:
                for port in rule.get("ports") or []:
                    if isinstance(port.get("port"), int):
                        ports.add((port["port"], port.get("protocol", "TCP")))
    return {(n, proto) for n, _ in ports for proto in ("TCP", "UDP")}


@dataclass
class Model:
    endpoints: list[Endpoint]
    namespaces: dict[str, dict[str, str]]
    principals: dict[str, str | None]  # endpoint name -> mTLS principal (None: not in the mesh)


def model(objects: Sequence[Obj], decl: Declared, namespace: str, release: str) -> Model:
    namespaces: dict[str, dict[str, str]] = {namespace: {"kubernetes.io/metadata.name": namespace}}
    eps = release_endpoints(objects, namespace)
    eps += actor_endpoints(decl.actors, namespace, namespaces)
    eps += adversaries(namespace, release, namespaces)
    principals: dict[str, str | None] = {
        name: f"{decl.trust_domain}/ns/{namespace}/sa/{sa}" for name, sa in service_accounts(objects).items()
    }
    principals |= {name: a.get("principal") for name, a in decl.actors.items()}
    principals |= {
        "stranger": f"{decl.trust_domain}/ns/{namespace}/sa/default",
        "impostor": f"{decl.trust_domain}/ns/sandbox/sa/prometheus",
        "internet": None,
    }
    return Model(eps, namespaces, principals)


def network_problems(objects: Sequence[Obj], rows: Iterable[Row], m: Model) -> list[str]:
    rows = list(rows)
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy"]
    ports = candidate_ports(rows, m.endpoints, policies)
    flows = network.evaluate(policies, m.endpoints, m.namespaces, ports)
    return network.check_matrix(flows, [r.l4 for r in rows])


GENERIC_PATHS = ("/", "/metrics", "/readyz", "/api/v1/admin")


def http_paths(rows: Iterable[Row]) -> list[str]:
    """Paths worth asking about: each declared path, its neighbours, and unrelated ones."""
    paths = set(GENERIC_PATHS)
    for r in rows:
        for p in r.paths:
            base = p.rstrip("*").rstrip("/")
            paths |= {base or "/", f"{base}/x", f"{base}x"} if p.endswith("*") else {p, f"{p}x"}
    return sorted(paths)


def expected_allowed(rows: Iterable[Row], req: istio_authz.Request, principals: Mapping[str, str | None]) -> bool:
    for r in rows:
        if not r.http or r.dst != req.workload or r.port != req.port:
            continue
        if principals.get(r.src) is None or principals[r.src] != req.source:
            continue
        if r.methods and req.method not in r.methods:
            continue
        if r.paths and not any(istio_authz.string_match(p, req.path) for p in r.paths):
            continue
        if not set(r.headers) <= req.headers:
            continue
        return True
    return False


def authz_requests(
    objects: Sequence[Obj], rows: Sequence[Row], m: Model, only: Iterable[str] | None = None
) -> tuple[list[istio_authz.Workload], list[istio_authz.Request]]:
    """Requests from every principal (and plaintext) to every HTTP workload (or those in ``only``):
    every method on the generic paths and on the paths its rows name (with their neighbours), with
    and without the headers its rows require, on its port and on an unused one."""
    workloads = []
    keep = None if only is None else set(only)
    for e in m.endpoints:
        if e.namespace is None or "http" not in e.named_ports or e.name in ("stranger", "other-release"):
            continue
        if keep is not None and e.name not in keep:
            continue
        workloads.append(istio_authz.Workload(e.name, e.namespace, e.labels, e.named_ports["http"][0]))
    sources = sorted({p for p in m.principals.values() if p}) + [None]
    reqs: list[istio_authz.Request] = []
    for w in workloads:
        mine = [r for r in rows if r.dst == w.name]
        headers = {h for r in mine for h in r.headers}
        header_sets = [frozenset(), frozenset(headers)] if headers else [frozenset()]
        reqs += istio_authz.requests(sources, [w], METHODS, http_paths(mine), header_sets, [UNUSED_PORT])
    return workloads, reqs


def authz_problems(
    objects: Sequence[Obj], rows: Sequence[Row], m: Model, only: Iterable[str] | None = None
) -> list[str]:
    """Differences between what the AuthorizationPolicies allow and the HTTP rows (for the workloads
    in ``only``, default all)."""
    policies = [o for o in objects if o.get("kind") == "AuthorizationPolicy"]
    workloads, reqs = authz_requests(objects, rows, m, only)
    got = istio_authz.allowed_requests(policies, workloads, reqs)
    want = {r for r in reqs if expected_allowed(rows, r, m.principals)}
    return [f"allowed but not in the matrix: {r}" for r in sorted(got - want, key=str)] + [
        f"in the matrix but denied: {r}" for r in sorted(want - got, key=str)
    ]


def check(objects: Sequence[Obj], namespace: str, release: str, *, limit: int = 20) -> list[Finding]:
    """Findings when the rendered policies do not allow exactly the declared matrix."""
    decl = declared(objects)
    if decl is None:
        return []
    m = model(objects, decl, namespace, release)
    found = []
    if any(o.get("kind") == "NetworkPolicy" for o in objects):
        probs = network_problems(objects, decl.rows, m)
        found += [Finding(TOOL, "networkpolicy", "NetworkPolicy", "*", p) for p in probs[:limit]]
    if any(o.get("kind") == "AuthorizationPolicy" for o in objects):
        probs = authz_problems(objects, decl.rows, m)
        found += [Finding(TOOL, "authorizationpolicy", "AuthorizationPolicy", "*", p) for p in probs[:limit]]
    return found
