"""Evaluate NetworkPolicies with Kubernetes semantics over a model of the cluster's endpoints.

The model is a set of ``Endpoint``s (pods with labels in labelled namespaces, or addresses outside
the cluster) and the namespaces' labels. ``evaluate`` answers, for every ordered pair of endpoints
and every candidate port/protocol, whether the policies let the connection through:

- a pod that no policy with the ``Egress`` (``Ingress``) type selects is unrestricted in that
  direction; otherwise the union of the rules of every such policy decides (policies only add);
- ``policyTypes`` defaults to ``Ingress``, plus ``Egress`` when the policy has an ``egress`` section;
- a rule without ``to``/``from`` matches every peer, a rule without ``ports`` every port;
- a peer is an ``ipBlock`` (the endpoint's address in ``cidr`` and in no ``except``), or a
  ``podSelector`` (pods of the policy's namespace), a ``namespaceSelector`` (every pod of the
  matching namespaces) or both (matching pods of matching namespaces);
- a port is a number (with ``endPort`` a range) or a name resolved on the destination pod;
  the protocol defaults to TCP.

Connections need the source's egress *and* the destination's ingress; ``FlowSets`` also keeps each
side alone, so a widened rule shows even where the other side would still block it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ._k8s import Obj, selector_matches

ALL = "*"


class Flow(NamedTuple):
    src: str
    dst: str
    port: int
    protocol: str = "TCP"

    def __str__(self) -> str:
        return f"{self.src} -> {self.dst}:{self.port}/{self.protocol}"


@dataclass(frozen=True)
class Endpoint:
    """A pod (``namespace`` set) or an address outside the cluster (``namespace`` None)."""

    name: str
    namespace: str | None
    labels: Mapping[str, str] = field(default_factory=dict)
    ip: str = ""
    named_ports: Mapping[str, tuple[int, str]] = field(default_factory=dict)  # name -> (port, protocol)


@dataclass(frozen=True)
class FlowSets:
    effective: frozenset[Flow]  # both sides allow it (pairs with a restricted side; others are out of scope)
    egress: frozenset[Flow]  # what the source's egress policies allow (restricted sources only)
    ingress: frozenset[Flow]  # what the destination's ingress policies allow (restricted destinations)
    restricted_egress: frozenset[str]
    restricted_ingress: frozenset[str]


def _types(policy: Obj) -> set[str]:
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes")
    if types:
        return set(types)
    return {"Ingress"} | ({"Egress"} if "egress" in spec else set())


def _ns(policy: Obj) -> str:
    return str((policy.get("metadata") or {}).get("namespace") or "default")


def _selects(policy: Obj, ep: Endpoint) -> bool:
    if ep.namespace is None or ep.namespace != _ns(policy):
        return False
    return selector_matches((policy.get("spec") or {}).get("podSelector") or {}, ep.labels)


def _in_block(ip: str, block: Mapping[str, Any]) -> bool:
    if not ip:
        return False
    addr = ipaddress.ip_address(ip)
    net = ipaddress.ip_network(block["cidr"], strict=False)
    if addr.version != net.version or addr not in net:
        return False
    return not any(
        addr in ipaddress.ip_network(e, strict=False)
        for e in block.get("except") or []
        if ipaddress.ip_network(e, strict=False).version == addr.version
    )


def peer_matches(
    peer: Mapping[str, Any], ep: Endpoint, policy_ns: str, namespaces: Mapping[str, Mapping[str, str]]
) -> bool:
    if "ipBlock" in peer:
        return _in_block(ep.ip, peer["ipBlock"])
    if ep.namespace is None:
        return False
    ns_sel = peer.get("namespaceSelector")
    pod_sel = peer.get("podSelector")
    if ns_sel is None and pod_sel is None:
        return False  # an empty peer is invalid in the API; never match it
    ns_ok = ep.namespace == policy_ns if ns_sel is None else selector_matches(ns_sel, namespaces.get(ep.namespace, {}))
    return ns_ok and (pod_sel is None or selector_matches(pod_sel, ep.labels))


def _ports(
    rule_ports: Sequence[Mapping[str, Any]] | None, dst: Endpoint, candidates: Iterable[tuple[int, str]]
) -> set[tuple[int, str]] | str:
    """The (port, protocol) pairs a rule's ports admit towards ``dst`` (ALL when unrestricted)."""
    if not rule_ports:
        return ALL
    out: set[tuple[int, str]] = set()
    cands = list(candidates)
    for p in rule_ports:
        proto = p.get("protocol") or "TCP"
        port = p.get("port")
        if port is None:
            out |= {(n, pr) for n, pr in cands if pr == proto}
        elif isinstance(port, str) and not port.isdigit():
            resolved = dst.named_ports.get(port)
            if resolved and resolved[1] == proto:
                out.add((resolved[0], proto))
        else:
            low = int(port)
            high = int(p.get("endPort") or low)
            out |= {(n, pr) for n, pr in cands if pr == proto and low <= n <= high}
    return out


def evaluate(
    policies: Iterable[Obj],
    endpoints: Sequence[Endpoint],
    namespaces: Mapping[str, Mapping[str, str]],
    ports: Iterable[tuple[int, str]],
) -> FlowSets:
    """Every (src, dst, port, protocol) the NetworkPolicies allow among ``endpoints``."""
    nps = [p for p in policies if p.get("kind") == "NetworkPolicy"]
    candidates = sorted(set(ports))
    every = {(n, pr) for n, pr in candidates}

    def direction(kind: str, peers_key: str) -> tuple[dict[tuple[str, str], set[tuple[int, str]]], set[str]]:
        """(selected endpoint, peer endpoint) -> allowed ports, and the selected (restricted) endpoints."""
        allowed: dict[tuple[str, str], set[tuple[int, str]]] = {}
        restricted: set[str] = set()
        for pol in nps:
            if kind not in _types(pol):
                continue
            selected = [e for e in endpoints if _selects(pol, e)]
            if not selected:
                continue
            restricted |= {e.name for e in selected}
            for rule in (pol.get("spec") or {}).get(kind.lower()) or []:
                peers = rule.get(peers_key)
                matched = (
                    endpoints
                    if not peers
                    else [e for e in endpoints if any(peer_matches(pr, e, _ns(pol), namespaces) for pr in peers)]
                )
                for me in selected:
                    for other in matched:
                        dst = other if kind == "Egress" else me
                        got = _ports(rule.get("ports"), dst, candidates)
                        allowed.setdefault((me.name, other.name), set()).update(every if isinstance(got, str) else got)
        return allowed, restricted

    eg, eg_restricted = direction("Egress", "to")
    ing, ing_restricted = direction("Ingress", "from")
    egress = frozenset(Flow(s, d, n, pr) for (s, d), ps in eg.items() for n, pr in ps)
    ingress = frozenset(Flow(s, d, n, pr) for (d, s), ps in ing.items() for n, pr in ps)
    effective: set[Flow] = set()
    restricted = eg_restricted | ing_restricted
    for s in endpoints:
        for d in endpoints:
            if s.name == d.name or (s.name not in restricted and d.name not in restricted):
                continue
            out_ok = every if s.name not in eg_restricted else eg.get((s.name, d.name), set())
            in_ok = every if d.name not in ing_restricted else ing.get((d.name, s.name), set())
            effective.update(Flow(s.name, d.name, n, pr) for n, pr in out_ok & in_ok)
    return FlowSets(frozenset(effective), egress, ingress, frozenset(eg_restricted), frozenset(ing_restricted))


def diff(actual: Iterable[Flow], expected: Iterable[Flow]) -> tuple[list[Flow], list[Flow]]:
    """(allowed but not expected, expected but not allowed), sorted."""
    a, e = set(actual), set(expected)
    return sorted(a - e), sorted(e - a)


def check_matrix(flows: FlowSets, expected: Iterable[Flow]) -> list[str]:
    """Problems when the policies do not allow exactly ``expected``: checked on both sides alone and
    together. Flows between a pod and itself are not modelled."""
    exp = {f for f in expected if f.src != f.dst}
    problems: list[str] = []
    restricted = flows.restricted_egress | flows.restricted_ingress
    views = [
        ("effective", {f for f in flows.effective if f.src in restricted or f.dst in restricted}, exp),
        ("egress", {f for f in flows.egress if f.src != f.dst}, {f for f in exp if f.src in flows.restricted_egress}),
        (
            "ingress",
            {f for f in flows.ingress if f.src != f.dst},
            {f for f in exp if f.dst in flows.restricted_ingress},
        ),
    ]
    for view, actual, want in views:
        extra, missing = diff(actual, want)
        problems += [f"{view}: allowed but not in the matrix: {f}" for f in extra]
        problems += [f"{view}: in the matrix but not allowed: {f}" for f in missing]
    return problems
