"""`eafix charts manifests`: the charts of one environment as plain manifests for `kubectl apply`.

Writes the layout of the deployment docs, one file per chart in each folder (infrastructure and
trading objects never share a file), so teams without Helm run:

    kubectl apply -f deploy/kubernetes/namespaces/
    kubectl apply -f deploy/kubernetes/storage/
    kubectl apply -f deploy/kubernetes/secrets/
    kubectl apply -f deploy/kubernetes/configmaps/
    kubectl apply -f deploy/kubernetes/deployments/      # *-hooks.yaml first: the migration Job
    kubectl apply -f deploy/kubernetes/services/
    kubectl apply -f deploy/kubernetes/ingress/
    kubectl apply -f deploy/kubernetes/monitoring/       # needs the prometheus-operator CRDs
    kubectl apply -R -f deploy/kubernetes/istio/         # needs Istio

Every rendered object lands in exactly one folder (`folder_of`); a kind without a folder is an
error, so a new template cannot silently go missing. Helm hooks (the migration Job) go to
`<folder>/<chart>-hooks.yaml` and `helm test` pods to `tests/`. The Bitnami Redis/PostgreSQL
objects of eafix-infra appear only when its dependencies are present (`helm dependency build`,
or `--fetch-dependencies`); otherwise README.md in the output says they are missing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from eafix.platform.profiles import CHARTS, env_overlay
from eafix.platform.render import DEFAULT_NAMESPACE, Rendered, missing_dependencies, render

# chart -> Helm release name (the names Argo CD and docs/operations.md use)
RELEASES = {"eafix-infra": "eafix-infra", "eafix-trading": "eafix"}
# Charts in apply order; each gets its own file per folder.
MANIFEST_CHARTS = ("eafix-infra", "eafix-trading")
# Values set for the kubectl path: the Namespace object exists only here (Helm and Argo CD create it).
KUBECTL_VALUES: Mapping[str, Mapping[str, Any]] = {
    "eafix-infra": {"namespace": {"create": True}},
    "eafix-trading": {"namespace": {"create": True}},  # its labels (Istio injection) merge into the same Namespace
}

FOLDERS = (
    "namespaces", "storage", "secrets", "configmaps", "deployments", "services", "ingress", "monitoring",
    "istio/gateways", "istio/virtual-services", "istio/destination-rules", "istio/peer-authentication",
    "istio/authorization-policies", "tests",
)

_BY_KIND = {
    # namespace-level setup: the namespace and its isolation come before any pod
    "Namespace": "namespaces", "NetworkPolicy": "namespaces", "ResourceQuota": "namespaces",
    "LimitRange": "namespaces",
    "StorageClass": "storage", "PersistentVolumeClaim": "storage", "PersistentVolume": "storage",
    "Secret": "secrets", "ExternalSecret": "secrets", "SealedSecret": "secrets",
    "ConfigMap": "configmaps",
    "Deployment": "deployments", "StatefulSet": "deployments", "DaemonSet": "deployments", "Job": "deployments",
    "CronJob": "deployments", "HorizontalPodAutoscaler": "deployments", "PodDisruptionBudget": "deployments",
    "ServiceAccount": "deployments", "Role": "deployments", "RoleBinding": "deployments",
    "Service": "services",
    "Ingress": "ingress", "Certificate": "ingress",
    "ServiceMonitor": "monitoring", "PodMonitor": "monitoring", "PrometheusRule": "monitoring",
    "AlertmanagerConfig": "monitoring",
    "Gateway": "istio/gateways", "VirtualService": "istio/virtual-services",
    "DestinationRule": "istio/destination-rules", "PeerAuthentication": "istio/peer-authentication",
    "AuthorizationPolicy": "istio/authorization-policies",
}
_MONITORING_LABELS = ("grafana_dashboard", "grafana_datasource")


class ManifestError(Exception):
    """An object has no folder, or two charts render the same object."""


def _hook(obj: Mapping[str, Any]) -> str:
    return str(((obj.get("metadata") or {}).get("annotations") or {}).get("helm.sh/hook", ""))


def folder_of(obj: Mapping[str, Any]) -> str:
    """The folder of the deployment docs' layout an object belongs to."""
    kind = obj.get("kind", "")
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if "test" in _hook(obj).split(","):
        return "tests"
    if kind == "ConfigMap" and (any(k in labels for k in _MONITORING_LABELS)
                                or labels.get("app.kubernetes.io/component") == "monitoring"):
        return "monitoring"
    try:
        return _BY_KIND[kind]
    except KeyError:
        raise ManifestError(f"{kind} {obj.get('metadata', {}).get('name')}: no folder for this kind; "
                            "add it to eafix.platform.manifests._BY_KIND") from None


def file_of(chart: str, obj: Mapping[str, Any]) -> str:
    """Path of the object's file relative to the output directory."""
    hook = _hook(obj)
    suffix = "-hooks" if hook and "test" not in hook.split(",") else ""
    return f"{folder_of(obj)}/{chart}{suffix}.yaml"


@dataclass
class Layout:
    """The files to write: relative path -> objects, plus notes for README.md."""

    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def objects(self) -> Iterable[tuple[str, dict[str, Any]]]:
        for path, objs in self.files.items():
            for o in objs:
                yield path, o


def _identity(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return obj.get("kind", ""), meta.get("namespace", ""), meta.get("name", "")


def layout(rendered: Mapping[str, Rendered]) -> Layout:
    """Sort every object of every chart into its file. Two charts rendering the same Namespace
    merge its labels; any other duplicate is an error."""
    out = Layout()
    seen: dict[tuple[str, str, str], tuple[str, dict[str, Any]]] = {}
    for chart, r in rendered.items():
        for obj in r.objects:
            key = _identity(obj)
            if key in seen:
                other_chart, other = seen[key]
                if key[0] == "Namespace":
                    labels = other.setdefault("metadata", {}).setdefault("labels", {})
                    for k, v in ((obj.get("metadata") or {}).get("labels") or {}).items():
                        labels.setdefault(k, v)
                    continue
                raise ManifestError(f"{key[0]} {key[2]} is rendered by both {other_chart} and {chart}")
            seen[key] = (chart, obj)
            out.files.setdefault(file_of(chart, obj), []).append(obj)
    return out


def render_environment(env: str, charts: Iterable[str] = MANIFEST_CHARTS,
                       namespace: str = DEFAULT_NAMESPACE) -> dict[str, Rendered]:
    return {chart: render(CHARTS / chart, [env_overlay(chart, env)], KUBECTL_VALUES.get(chart, {}),
                          release=RELEASES[chart], namespace=namespace)
            for chart in charts}


def fetch_dependencies(chart_dir: Path) -> bool:
    """`helm dependency update` through the embedded engine when dependencies are missing (needs
    registry access). Returns whether it ran."""
    if not missing_dependencies(chart_dir):
        return False
    import helm_python

    helm_python.dependency_update(str(chart_dir))
    return True


def _readme(env: str, lay: Layout) -> str:
    lines = [
        f"# EAFIX manifests for `{env}`",
        "",
        f"Generated by `eafix charts manifests --env {env}` from charts/ and values/{env}/; do not edit,",
        "regenerate. Apply in this order (kubectl applies the files of a folder alphabetically):",
        "",
        "```sh",
        *(f"kubectl apply -f {f}/" for f in FOLDERS[:8] if any(p.startswith(f + "/") for p in lay.files)),
        "```",
        "",
        "In `deployments/`, `*-hooks.yaml` holds the PostgreSQL migration Job (a Helm pre-install hook):",
        "apply it first and `kubectl wait --for=condition=complete job -l app.kubernetes.io/component=migrations`",
        "before the Deployments. `monitoring/` needs the prometheus-operator CRDs, `istio/` needs Istio",
        "(`kubectl apply -R -f istio/`), `tests/` is the readiness smoke test (delete it afterwards).",
        "",
        "Files:",
        "",
        *(f"- `{p}`: {len(objs)} object(s)" for p, objs in sorted(lay.files.items())),
    ]
    if lay.notes:
        lines += ["", "Notes:", "", *(f"- {n}" for n in lay.notes)]
    return "\n".join(lines) + "\n"


def write(env: str, out_dir: Path, *, fetch: bool = False) -> Layout:
    """Render the environment and write the layout under ``out_dir`` (replacing what is there)."""
    notes = []
    for chart in MANIFEST_CHARTS:
        if fetch:
            fetch_dependencies(CHARTS / chart)
        missing = missing_dependencies(CHARTS / chart)
        if missing:
            notes.append(f"{chart}: the dependencies {', '.join(missing)} are not fetched, so their objects "
                         f"(e.g. the Redis and PostgreSQL StatefulSets) are missing here; run "
                         f"`helm dependency build charts/{chart}` or `eafix charts manifests --fetch-dependencies` "
                         "on a machine with registry access, then regenerate.")
    lay = layout(render_environment(env))
    lay.notes = notes
    if out_dir.exists():
        shutil.rmtree(out_dir)
    for rel, objs in lay.files.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump_all(objs, sort_keys=False, default_flow_style=False))
    (out_dir / "README.md").write_text(_readme(env, lay))
    return lay
