"""Custom resources: validated against their operators' published schemas, plus the rules those schemas omit.

kubernetes-validate (``policy.k8s_validate``) covers the built-in kinds. Every other object goes
through two layers, with one entry point::

    findings = check(objects)            # [] when every custom resource conforms
    results = validate_models(objects)   # layer 1's raw per-object results

1. ``operator-schema``: ``ci/crd-validate/validate.mjs`` checks each object against the CRD schema
   its operator publishes, as packaged by the ``@kubernetes-models/*`` npm packages pinned in
   ``ci/crd-validate/package-lock.json`` (types, enums, required fields, patterns). One Node process
   validates a whole batch. A custom apiVersion/kind without a model there is an ``unknown-kind``
   finding, so a new custom resource cannot pass unvalidated.
2. ``operator-rule``: what the schemas do not say but the API server, the operators' validating
   webhooks or their controllers reject or silently ignore (metadata names, Go durations, Istio's
   webhook rules, Prometheus' rule-file rules, cross-field references, empty payloads). Each rule
   here is one the models accept (``tests/chart/test_custom_resources.py`` proves it per rule).

The models are installed by ``make crd-validate`` (``npm ci --prefix ci/crd-validate``; ``make
test`` and ``make policy`` run it). Without Node or the installed packages ``CRDValidatorError``
is raised: the check never passes by skipping.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eafix.platform.policy._k8s import Finding, Obj, api_group, kind, name
from eafix.platform.policy.k8s_validate import is_builtin

TOOL = "custom-resources"
REPO = Path(__file__).resolve().parents[3]
VALIDATOR_DIR = REPO / "ci" / "crd-validate"
VALIDATOR = VALIDATOR_DIR / "validate.mjs"
LOCKFILE = VALIDATOR_DIR / "package-lock.json"
# `make crd-validate` copies the lockfile here after `npm ci`: the installed tree matches the lockfile.
STAMP = VALIDATOR_DIR / "node_modules" / ".eafix-lock.json"
INSTALL_HINT = "run `make crd-validate` (part of `make test`), i.e. `npm ci --prefix ci/crd-validate`"
TIMEOUT_S = 300


class CRDValidatorError(RuntimeError):
    """The operator-schema validator cannot run (Node or its packages missing) or failed."""


@dataclass(frozen=True)
class ModelResult:
    """validate.mjs' verdict on one object."""

    index: int
    api_version: str | None
    kind: str | None
    name: str | None
    ok: bool
    error: str | None


def custom(objects: Iterable[Obj]) -> list[Obj]:
    """The objects that are not built-in Kubernetes kinds."""
    return [o for o in objects if not is_builtin(o)]


# --- layer 1: the operators' schemas (@kubernetes-models, one Node process per batch) --------------------

def node_executable() -> str | None:
    """The executable ``EAFIX_NODE`` names, else ``node`` on PATH; None when there is none."""
    return shutil.which(os.environ.get("EAFIX_NODE") or "node")


def validator_problem() -> str | None:
    """Why the operator-schema validator cannot run here, or None when it can."""
    if node_executable() is None:
        return f"Node.js >= 20 is not on PATH (or EAFIX_NODE): install it, then {INSTALL_HINT}"
    if not STAMP.is_file():
        return f"the @kubernetes-models packages are not installed in {VALIDATOR_DIR}: {INSTALL_HINT}"
    if STAMP.read_bytes() != LOCKFILE.read_bytes():
        return f"the packages installed in {VALIDATOR_DIR} are not those of its package-lock.json: {INSTALL_HINT}"
    return None


def _require_validator() -> str:
    problem = validator_problem()
    node = node_executable()
    if problem or node is None:
        raise CRDValidatorError(problem or "Node.js is not on PATH")
    return node


def _invoke(node: str, docs: list[str]) -> list[dict[str, Any]]:
    """validate.mjs on the JSON documents ``docs``: its rows, in order."""
    try:
        proc = subprocess.run(
            [node, str(VALIDATOR)], input="[" + ",".join(docs) + "]", capture_output=True, text=True,
            timeout=TIMEOUT_S, check=False, cwd=VALIDATOR_DIR,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CRDValidatorError(f"{VALIDATOR.name} did not run: {exc}") from exc
    if proc.returncode not in (0, 1):
        raise CRDValidatorError(f"{VALIDATOR.name} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    try:
        rows = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise CRDValidatorError(f"{VALIDATOR.name} printed no JSON: {proc.stdout[:500]!r}") from exc
    if [r.get("index") for r in rows] != list(range(len(docs))):
        raise CRDValidatorError(f"{VALIDATOR.name} answered {len(rows)} row(s) for {len(docs)} object(s)")
    return rows


# The verdict on each object already validated in this Python process, by its canonical JSON
# (the chart tests ask about the same objects often, in different batches).
_VERDICTS: dict[str, dict[str, Any]] = {}
_MAX_VERDICTS = 20_000


def validate_models(objects: Sequence[Obj]) -> list[ModelResult]:
    """Each object against its operator's published schema (pass ``custom(objects)``: a built-in kind has no
    model there and comes back invalid). One Node process validates the objects not validated before in
    this Python process; none runs when there are none."""
    node = _require_validator()
    docs = [json.dumps(o, sort_keys=True, default=str) for o in objects]
    if len(_VERDICTS) > _MAX_VERDICTS:
        _VERDICTS.clear()
    todo = list(dict.fromkeys(d for d in docs if d not in _VERDICTS))
    if todo:
        _VERDICTS.update(zip(todo, _invoke(node, todo), strict=True))
    rows = [_VERDICTS[d] for d in docs]
    return [ModelResult(i, r["apiVersion"], r["kind"], r["name"], bool(r["ok"]), r["error"])
            for i, r in enumerate(rows)]


def validator_kinds() -> list[tuple[str, str]]:
    """(apiVersion, kind) pairs validate.mjs has a model for (each model is loaded to prove it exists)."""
    proc = subprocess.run([_require_validator(), str(VALIDATOR), "--kinds"], capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False, cwd=VALIDATOR_DIR)
    if proc.returncode != 0:
        raise CRDValidatorError(f"{VALIDATOR.name} --kinds exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return [(k["apiVersion"], k["kind"]) for k in json.loads(proc.stdout)]


# --- layer 2: operator rules the schemas do not carry ---------------------------------------------------

Rule = Callable[[Mapping[str, Any]], list[str]]

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Go's time.ParseDuration, as metav1.Duration fields are decoded by the API server / the controllers.
_GO_DURATION = re.compile(r"^[-+]?(0|(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))*$")
_TLS_NEEDS_CERT = {"SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"}
CLUSTER_SCOPED = {"ClusterSecretStore", "ClusterIssuer"}


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj.get(part) if isinstance(obj, Mapping) else None
    return obj


def _missing(spec: Any, *paths: str) -> list[str]:
    return [f"spec.{p} must be set" for p in paths if _get(spec, p) in (None, "", [], {})]


def _durations(spec: Mapping[str, Any], *paths: str, prefix: str = "spec") -> list[str]:
    out = []
    for p in paths:
        v = _get(spec, p)
        if v is not None and not (isinstance(v, str) and _GO_DURATION.match(v)):
            out.append(f"{prefix}.{p}: {v!r} is not a Go duration (e.g. 1h, 90m, 2160h)")
    return out


def _dupes(values: Iterable[Any]) -> list[Any]:
    seen, dupes = set(), []
    for v in values:
        if v in seen and v not in dupes:
            dupes.append(v)
        seen.add(v)
    return dupes


def _port(p: Any) -> bool:
    s = str(p)
    return s.isdigit() and 0 < int(s) < 65536


def _metadata(o: Mapping[str, Any]) -> list[str]:
    """API server: a DNS-1123 subdomain name. The charts pin every namespaced CR's namespace."""
    found = o.get("metadata")
    meta: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    out = []
    nm = meta.get("name")
    if not nm:
        out.append("metadata.name must be set")
    elif not (isinstance(nm, str) and len(nm) <= 253 and _DNS_SUBDOMAIN.match(nm)):
        out.append(f"metadata.name {nm!r} is not a DNS-1123 subdomain")
    if kind(o) not in CLUSTER_SCOPED and not meta.get("namespace"):
        out.append("metadata.namespace must be set")
    return out


# Istio: istiod's validating webhook (galley validation), beyond the CRD schema.
def _authorization_policy(spec: Mapping[str, Any]) -> list[str]:
    out = []
    action = spec.get("action", "ALLOW")
    if (action == "CUSTOM") != bool(spec.get("provider")):
        out.append("spec.provider must be set exactly when spec.action is CUSTOM")
    for i, rule in enumerate(spec.get("rules") or []):
        for j, src in enumerate(rule.get("from") or []):
            if not src.get("source"):
                out.append(f"spec.rules.{i}.from.{j}.source must be set")
        for j, to in enumerate(rule.get("to") or []):
            op = to.get("operation")
            if not op:
                out.append(f"spec.rules.{i}.to.{j}.operation must be set")
                continue
            for field in ("ports", "notPorts"):
                bad = [p for p in op.get(field) or [] if not _port(p)]
                if bad:
                    out.append(f"spec.rules.{i}.to.{j}.operation.{field}: {bad} are not port numbers (1-65535)")
        for j, cond in enumerate(rule.get("when") or []):
            if not cond.get("key") or not (cond.get("values") or cond.get("notValues")):
                out.append(f"spec.rules.{i}.when.{j}: key and values or notValues must be set")
    return out


def _peer_authentication(spec: Mapping[str, Any]) -> list[str]:
    out = []
    levels = spec.get("portLevelMtls") or {}
    bad = [p for p in levels if not _port(p)]
    if bad:
        out.append(f"spec.portLevelMtls: {bad} are not port numbers (1-65535)")
    if levels and not (spec.get("selector") or {}).get("matchLabels"):
        out.append("spec.portLevelMtls needs spec.selector.matchLabels (a workload selector)")
    return out


def _gateway(spec: Mapping[str, Any]) -> list[str]:
    out = _missing(spec, "servers", "selector")
    for i, server in enumerate(spec.get("servers") or []):
        protocol = str((server.get("port") or {}).get("protocol", "")).upper()
        tls = server.get("tls") or {}
        if protocol in ("HTTPS", "TLS") and not tls:
            out.append(f"spec.servers.{i}: {protocol} needs tls settings")
        elif (protocol == "HTTPS" or tls.get("mode") in _TLS_NEEDS_CERT) and not (
            tls.get("credentialName") or tls.get("credentialNames")
            or (tls.get("serverCertificate") and tls.get("privateKey"))
        ):
            out.append(f"spec.servers.{i}.tls needs credentialName (or serverCertificate and privateKey)")
    return out


def _virtual_service(spec: Mapping[str, Any]) -> list[str]:
    out = _missing(spec, "hosts")
    if not (spec.get("http") or spec.get("tls") or spec.get("tcp")):
        out.append("spec needs http, tls or tcp routes")
    return out


# prometheus-operator's admission webhook checks rule files with Prometheus' rulefmt.
def _prometheus_rule(spec: Mapping[str, Any]) -> list[str]:
    out = _missing(spec, "groups")
    groups = spec.get("groups") or []
    dupes = _dupes(g.get("name") for g in groups)
    if dupes:
        out.append(f"spec.groups: group names repeated: {dupes}")
    for i, g in enumerate(groups):
        for j, r in enumerate(g.get("rules") or []):
            at = f"spec.groups.{i}.rules.{j}"
            if bool(r.get("record")) == bool(r.get("alert")):
                out.append(f"{at}: exactly one of record and alert must be set")
            if "expr" in r and not str(r["expr"]).strip():  # a missing expr is the schema's finding
                out.append(f"{at}.expr must not be empty")
            if r.get("record"):
                extra = [k for k in ("for", "keep_firing_for", "annotations") if k in r]
                if extra:
                    out.append(f"{at}: a recording rule cannot have {extra}")
    return out


def _service_monitor(spec: Mapping[str, Any]) -> list[str]:
    out = _missing(spec, "endpoints")
    for i, ep in enumerate(spec.get("endpoints") or []):
        if not (ep.get("port") or ep.get("targetPort")):
            out.append(f"spec.endpoints.{i} must name port or targetPort")
    return out


def _alertmanager_config(spec: Mapping[str, Any]) -> list[str]:
    """The operator drops an AlertmanagerConfig whose route names an undefined receiver."""
    out = []
    receivers = spec.get("receivers") or []
    names = [r.get("name") for r in receivers]
    route = spec.get("route") or {}
    referenced = [route.get("receiver")] + [r.get("receiver") for r in route.get("routes") or []]
    for ref in referenced:
        if ref and ref not in names:
            out.append(f"spec.route: receiver {ref!r} is not one of spec.receivers")
    if _dupes(names):
        out.append(f"spec.receivers: names repeated: {_dupes(names)}")
    for i, r in enumerate(receivers):
        for j, hook in enumerate(r.get("webhookConfigs") or []):
            if not (hook.get("url") or hook.get("urlSecret")):
                out.append(f"spec.receivers.{i}.webhookConfigs.{j} needs url or urlSecret")
    return out


# External Secrets Operator's webhook, and metav1.Duration decoding.
def _external_secret(spec: Mapping[str, Any]) -> list[str]:
    out = []
    if not (spec.get("data") or spec.get("dataFrom")):
        out.append("spec needs data or dataFrom")
    dupes = _dupes(d.get("secretKey") for d in spec.get("data") or [])
    if dupes:
        out.append(f"spec.data: secretKey repeated: {dupes}")
    target = spec.get("target") or {}
    if target.get("creationPolicy") == "Merge" and target.get("deletionPolicy") == "Delete":
        out.append("spec.target: deletionPolicy Delete is not allowed with creationPolicy Merge")
    return out + _durations(spec, "refreshInterval")


def _sealed_secret(spec: Mapping[str, Any]) -> list[str]:
    """The controller has nothing to unseal in an empty entry."""
    data = spec.get("encryptedData") or {}
    out = [] if data else ["spec.encryptedData must hold at least one key"]
    return out + [f"spec.encryptedData.{k} is empty" for k, v in data.items() if not v]


def _certificate(spec: Mapping[str, Any]) -> list[str]:
    """cert-manager's webhook: a subject or SAN; durations are metav1.Duration."""
    subjects = ("commonName", "dnsNames", "uris", "emailAddresses", "ipAddresses", "otherNames", "literalSubject")
    out = [] if any(spec.get(s) for s in subjects) else [f"spec needs one of {', '.join(subjects)}"]
    return out + _durations(spec, "duration", "renewBefore")


# Argo CD's application controller (InvalidSpecError) and project semantics.
def _application(spec: Mapping[str, Any]) -> list[str]:
    out = []
    if bool(spec.get("source")) == bool(spec.get("sources")):
        out.append("spec needs exactly one of source and sources")
    dest = spec.get("destination") or {}
    if dest and bool(dest.get("server")) == bool(dest.get("name")):
        out.append("spec.destination needs exactly one of server and name")
    return out + _durations(spec, "syncPolicy.retry.backoff.duration", "syncPolicy.retry.backoff.maxDuration")


def _app_project(spec: Mapping[str, Any]) -> list[str]:
    """A project without sourceRepos or destinations permits no Application."""
    return _missing(spec, "sourceRepos", "destinations")


# (API group, kind) -> rule: the same for every version the charts can render (ExternalSecret v1 and v1beta1).
RULES: Mapping[tuple[str, str], Rule] = {
    ("security.istio.io", "AuthorizationPolicy"): _authorization_policy,
    ("security.istio.io", "PeerAuthentication"): _peer_authentication,
    ("networking.istio.io", "Gateway"): _gateway,
    ("networking.istio.io", "VirtualService"): _virtual_service,
    ("monitoring.coreos.com", "PrometheusRule"): _prometheus_rule,
    ("monitoring.coreos.com", "ServiceMonitor"): _service_monitor,
    ("monitoring.coreos.com", "AlertmanagerConfig"): _alertmanager_config,
    ("external-secrets.io", "ExternalSecret"): _external_secret,
    ("bitnami.com", "SealedSecret"): _sealed_secret,
    ("cert-manager.io", "Certificate"): _certificate,
    ("argoproj.io", "Application"): _application,
    ("argoproj.io", "AppProject"): _app_project,
}


def operator_rules(objects: Iterable[Obj]) -> list[Finding]:
    """Layer 2 on the custom objects (no Node needed)."""
    found = []
    for o in custom(objects):
        rule = RULES.get((api_group(o), kind(o)))
        problems = _metadata(o)
        if rule is not None:
            spec = o.get("spec")
            problems += rule(spec) if isinstance(spec, Mapping) else ["spec must be set"]
        found += [Finding(TOOL, "operator-rule", kind(o), name(o), p) for p in problems]
    return sorted(found)


def check(objects: Iterable[Obj]) -> list[Finding]:
    """Both layers on every custom resource among ``objects``; one Node process at most."""
    crs = custom(objects)
    found = []
    for r in validate_models(crs):
        if not r.ok:
            unknown = (r.error or "").startswith("no @kubernetes-models model")
            found.append(Finding(TOOL, "unknown-kind" if unknown else "operator-schema", r.kind or "", r.name or "",
                                 r.error or "invalid"))
    return sorted(found + operator_rules(crs))
