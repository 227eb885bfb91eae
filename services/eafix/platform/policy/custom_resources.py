"""Minimal structural checks of the custom resources the charts render.

kubernetes-validate knows only the built-in kinds. Until the operators' published schemas are
wired in (DESIGN §6), each custom kind is checked here for the apiVersion its operator serves and
the fields its documentation marks required or the chart depends on. Unknown custom kinds are a
finding too, so a new kind cannot slip past unchecked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._k8s import Finding, Obj, kind, name
from .k8s_validate import is_builtin

TOOL = "custom-resources"

Check = Callable[[Mapping[str, Any]], list[str]]


def _req(obj: Mapping[str, Any], *paths: str) -> list[str]:
    out = []
    for p in paths:
        cur: Any = obj
        for part in p.split("."):
            cur = cur.get(part) if isinstance(cur, Mapping) else None
        if cur in (None, "", [], {}):
            out.append(f"missing {p}")
    return out


def _peer_auth(o: Mapping[str, Any]) -> list[str]:
    spec = o.get("spec") or {}
    out = (
        []
        if (spec.get("mtls") or {}).get("mode") in ("STRICT", "PERMISSIVE", "DISABLE", "UNSET")
        else ["spec.mtls.mode must be STRICT, PERMISSIVE, DISABLE or UNSET"]
    )
    for port, v in (spec.get("portLevelMtls") or {}).items():
        if not str(port).isdigit() or (v or {}).get("mode") not in ("STRICT", "PERMISSIVE", "DISABLE", "UNSET"):
            out.append(f"spec.portLevelMtls.{port}: a port number with a mode")
    if spec.get("portLevelMtls") and not (spec.get("selector") or {}).get("matchLabels"):
        out.append("portLevelMtls needs a workload selector")
    return out


def _authz(o: Mapping[str, Any]) -> list[str]:
    spec = o.get("spec") or {}
    out = [] if spec.get("action", "ALLOW") in ("ALLOW", "DENY", "AUDIT", "CUSTOM") else ["spec.action is invalid"]
    for i, r in enumerate(spec.get("rules") or []):
        for src in r.get("from") or []:
            if not src.get("source"):
                out.append(f"rules.{i}.from: every entry needs a source")
        for to in r.get("to") or []:
            op = to.get("operation") or {}
            if not op:
                out.append(f"rules.{i}.to: every entry needs an operation")
            if any(not (isinstance(p, str) and p.isdigit()) for p in op.get("ports") or []):
                out.append(f"rules.{i}.to.operation.ports must be port numbers as strings")
        for c in r.get("when") or []:
            if not c.get("key") or not (c.get("values") or c.get("notValues")):
                out.append(f"rules.{i}.when: key and values required")
    return out


def _dr(o: Mapping[str, Any]) -> list[str]:
    return _req(o, "spec.host")


def _gateway(o: Mapping[str, Any]) -> list[str]:
    out = _req(o, "spec.selector", "spec.servers")
    for i, s in enumerate((o.get("spec") or {}).get("servers") or []):
        out += [f"servers.{i}: {m}" for m in _req(s, "port.number", "port.name", "port.protocol", "hosts")]
        if (s.get("port") or {}).get("protocol") == "HTTPS" and not (s.get("tls") or {}).get("credentialName"):
            out.append(f"servers.{i}: HTTPS needs tls.credentialName")
    return out


def _vs(o: Mapping[str, Any]) -> list[str]:
    out = _req(o, "spec.hosts", "spec.http")
    for i, h in enumerate((o.get("spec") or {}).get("http") or []):
        for j, r in enumerate(h.get("route") or [{}]):
            out += [f"http.{i}.route.{j}: {m}" for m in _req(r, "destination.host")]
    return out


def _certificate(o: Mapping[str, Any]) -> list[str]:
    out = _req(o, "spec.secretName", "spec.issuerRef.name", "spec.dnsNames")
    if (o.get("metadata") or {}).get("namespace") in (None, ""):
        out.append("metadata.namespace must be set (the Secret lands there)")
    return out


def _external_secret(o: Mapping[str, Any]) -> list[str]:
    out = _req(o, "spec.secretStoreRef.name", "spec.secretStoreRef.kind", "spec.target.name", "spec.data")
    for i, d in enumerate((o.get("spec") or {}).get("data") or []):
        out += [f"data.{i}: {m}" for m in _req(d, "secretKey", "remoteRef.key")]
    return out


def _sealed_secret(o: Mapping[str, Any]) -> list[str]:
    out = _req(o, "spec.encryptedData", "spec.template.metadata.name")
    out += [
        f"encryptedData.{k} is empty" for k, v in ((o.get("spec") or {}).get("encryptedData") or {}).items() if not v
    ]
    return out


def _service_monitor(o: Mapping[str, Any]) -> list[str]:
    return _req(o, "spec.selector", "spec.endpoints")


def _prometheus_rule(o: Mapping[str, Any]) -> list[str]:
    return _req(o, "spec.groups")


def _application(o: Mapping[str, Any]) -> list[str]:
    spec = o.get("spec") or {}
    out = _req(o, "spec.project", "spec.destination")
    if not (spec.get("source") or spec.get("sources")):
        out.append("missing spec.source or spec.sources")
    return out


def _app_project(o: Mapping[str, Any]) -> list[str]:
    return _req(o, "spec.destinations", "spec.sourceRepos")


def _alertmanager_config(o: Mapping[str, Any]) -> list[str]:
    return _req(o, "spec.route", "spec.receivers")


# (apiVersion, kind) -> check
KINDS: dict[tuple[str, str], Check] = {
    ("security.istio.io/v1", "PeerAuthentication"): _peer_auth,
    ("security.istio.io/v1", "AuthorizationPolicy"): _authz,
    ("networking.istio.io/v1", "DestinationRule"): _dr,
    ("networking.istio.io/v1", "Gateway"): _gateway,
    ("networking.istio.io/v1", "VirtualService"): _vs,
    ("cert-manager.io/v1", "Certificate"): _certificate,
    ("external-secrets.io/v1", "ExternalSecret"): _external_secret,
    ("external-secrets.io/v1beta1", "ExternalSecret"): _external_secret,
    ("bitnami.com/v1alpha1", "SealedSecret"): _sealed_secret,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _service_monitor,
    ("monitoring.coreos.com/v1", "PrometheusRule"): _prometheus_rule,
    ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"): _alertmanager_config,
    ("argoproj.io/v1alpha1", "Application"): _application,
    ("argoproj.io/v1alpha1", "AppProject"): _app_project,
}


def check(objects: Iterable[Obj]) -> list[Finding]:
    found = []
    for o in objects:
        if is_builtin(o):
            continue
        key = (str(o.get("apiVersion", "")), kind(o))
        fn = KINDS.get(key)
        if fn is None:
            found.append(Finding(TOOL, "known-kind", kind(o), name(o), f"no structural check for {key[0]} {key[1]}"))
            continue
        problems = _req(o, "metadata.name") + fn(o)
        found += [Finding(TOOL, "structure", kind(o), name(o), p) for p in problems]
    return sorted(found)
