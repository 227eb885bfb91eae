"""Evaluate Istio AuthorizationPolicies (security.istio.io) for HTTP requests to a workload.

Semantics (Istio's authorization-policy reference): the policies of the workload's namespace whose
``selector.matchLabels`` match its labels (no selector: every workload of the namespace) apply;
DENY policies are checked first and any matching rule denies; then, if any ALLOW policy applies,
the request must match at least one ALLOW rule (an ALLOW policy without rules matches nothing, the
"allow-nothing" baseline); with no ALLOW policy the request is allowed. In a rule, ``from`` sources
are ORed, ``to`` operations are ORed, ``when`` conditions are ANDed; inside one source or operation
every field set must match, and a field matches when any of its values does. Strings match exactly,
by prefix (``abc*``), by suffix (``*abc``), or ``*`` (present and non-empty).

Supported: source ``principals``/``notPrincipals``/``namespaces``/``notNamespaces``; operation
``methods``/``notMethods``/``paths``/``notPaths``/``ports``/``notPorts``; ``when`` on
``request.headers[<name>]``. Anything else raises ``Unsupported`` rather than guessing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._k8s import Obj


class Unsupported(ValueError):
    """A policy uses a field this evaluator does not model."""


@dataclass(frozen=True, order=True)
class Request:
    source: str | None  # mTLS principal; None for plaintext
    workload: str  # name of the destination in the model
    port: int
    method: str
    path: str
    headers: frozenset[str] = field(default_factory=frozenset)

    def __str__(self) -> str:
        hdr = f" +{','.join(sorted(self.headers))}" if self.headers else ""
        return f"{self.source or '<plaintext>'} -> {self.workload}:{self.port} {self.method} {self.path}{hdr}"


def string_match(pattern: str, value: str | None) -> bool:
    if value is None or value == "":
        return False
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def _any(patterns: Sequence[str] | None, value: str | None) -> bool:
    return any(string_match(str(p), value) for p in patterns or [])


def _namespace_of(principal: str | None) -> str | None:
    if not principal or "/ns/" not in principal:
        return None
    return principal.split("/ns/", 1)[1].split("/", 1)[0]


_SOURCE_FIELDS = {"principals", "notPrincipals", "namespaces", "notNamespaces"}
_OP_FIELDS = {"methods", "notMethods", "paths", "notPaths", "ports", "notPorts"}


def _source(src: Mapping[str, Any], req: Request) -> bool:
    unknown = set(src) - _SOURCE_FIELDS
    if unknown:
        raise Unsupported(f"source fields {sorted(unknown)}")
    if "principals" in src and not _any(src["principals"], req.source):
        return False
    if "notPrincipals" in src and _any(src["notPrincipals"], req.source):
        return False
    ns = _namespace_of(req.source)
    if "namespaces" in src and not _any(src["namespaces"], ns):
        return False
    return not ("notNamespaces" in src and _any(src["notNamespaces"], ns))


def _operation(op: Mapping[str, Any], req: Request) -> bool:
    unknown = set(op) - _OP_FIELDS
    if unknown:
        raise Unsupported(f"operation fields {sorted(unknown)}")
    port = str(req.port)
    if "ports" in op and port not in {str(p) for p in op["ports"]}:
        return False
    if "notPorts" in op and port in {str(p) for p in op["notPorts"]}:
        return False
    if "methods" in op and not _any(op["methods"], req.method):
        return False
    if "notMethods" in op and _any(op["notMethods"], req.method):
        return False
    if "paths" in op and not _any(op["paths"], req.path):
        return False
    return not ("notPaths" in op and _any(op["notPaths"], req.path))


def _condition(cond: Mapping[str, Any], req: Request) -> bool:
    key = str(cond.get("key", ""))
    if not (key.startswith("request.headers[") and key.endswith("]")):
        raise Unsupported(f"condition key {key!r}")
    header = key[len("request.headers[") : -1].lower()
    # the model knows which headers a request carries, not their values: any present value matches "*"
    value = "present" if header in req.headers else None
    ok = True
    if "values" in cond:
        ok = any(str(v) == "*" and value is not None for v in cond["values"])
    if "notValues" in cond:
        ok = ok and not any(str(v) == "*" and value is not None for v in cond["notValues"])
    return ok


def rule_matches(rule: Mapping[str, Any], req: Request) -> bool:
    froms = rule.get("from")
    if froms is not None and not any(_source(f.get("source") or {}, req) for f in froms):
        return False
    tos = rule.get("to")
    if tos is not None and not any(_operation(t.get("operation") or {}, req) for t in tos):
        return False
    return all(_condition(c, req) for c in rule.get("when") or [])


def applies(policy: Obj, namespace: str, labels: Mapping[str, str]) -> bool:
    meta = policy.get("metadata") or {}
    if meta.get("namespace") != namespace:
        return False
    selector = (policy.get("spec") or {}).get("selector")
    if not selector:
        return True
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def allowed(policies: Iterable[Obj], namespace: str, labels: Mapping[str, str], req: Request) -> bool:
    """The decision for ``req`` to the workload with ``labels`` in ``namespace``."""
    return decide(
        [p for p in policies if p.get("kind") == "AuthorizationPolicy" and applies(p, namespace, labels)], req
    )


def decide(pols: Sequence[Obj], req: Request) -> bool:
    """The decision given exactly the policies that apply to the request's workload."""
    for p in pols:
        spec = p.get("spec") or {}
        if spec.get("action") == "DENY" and any(rule_matches(r, req) for r in spec.get("rules") or []):
            return False
    allows = [p for p in pols if (p.get("spec") or {}).get("action", "ALLOW") == "ALLOW"]
    if not allows:
        return True
    return any(rule_matches(r, req) for p in allows for r in (p.get("spec") or {}).get("rules") or [])


@dataclass(frozen=True)
class Workload:
    name: str
    namespace: str
    labels: Mapping[str, str]
    port: int


def requests(
    sources: Iterable[str | None],
    workloads: Iterable[Workload],
    methods: Iterable[str],
    paths: Iterable[str],
    header_sets: Iterable[frozenset[str]],
    extra_ports: Iterable[int] = (),
) -> list[Request]:
    """The cross product of the request attributes, on each workload's port and ``extra_ports``."""
    out = []
    hs = list(header_sets)
    ms, ps, ex = list(methods), list(paths), list(extra_ports)
    for w in workloads:
        for s in sources:
            for port in [w.port, *ex]:
                for m in ms:
                    for p in ps:
                        for h in hs:
                            out.append(Request(s, w.name, port, m, p, h))
    return out


def allowed_requests(policies: Sequence[Obj], workloads: Sequence[Workload], reqs: Iterable[Request]) -> set[Request]:
    by_name = {w.name: w for w in workloads}
    pols = [p for p in policies if p.get("kind") == "AuthorizationPolicy"]
    per_workload = {w.name: [p for p in pols if applies(p, w.namespace, w.labels)] for w in workloads}
    return {r for r in reqs if r.workload in by_name and decide(per_workload[r.workload], r)}
