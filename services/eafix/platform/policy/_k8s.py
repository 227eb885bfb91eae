"""Small helpers over Kubernetes object dicts shared by the policy rule sets."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Obj = Mapping[str, Any]

# Kinds whose object carries a pod spec ("deployment-like" in kube-linter, "controllers" in Polaris).
WORKLOAD_KINDS = frozenset(
    {
        "Pod",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ReplicationController",
        "Job",
        "CronJob",
    }
)
# Kinds with a `spec.replicas` that defaults to 1 when left out.
REPLICATED_KINDS = frozenset({"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"})


@dataclass(frozen=True, order=True)
class Finding:
    """One rule violation: which tool's rule, on which object, and why."""

    tool: str
    check: str
    kind: str
    name: str
    message: str


def kind(o: Obj) -> str:
    return str(o.get("kind", ""))


def name(o: Obj) -> str:
    return str((o.get("metadata") or {}).get("name", ""))


def namespace(o: Obj) -> str | None:
    return (o.get("metadata") or {}).get("namespace")


def annotations_of(o: Obj) -> Mapping[str, Any]:
    return (o.get("metadata") or {}).get("annotations") or {}


def labels(o: Obj) -> Mapping[str, Any]:
    return (o.get("metadata") or {}).get("labels") or {}


def api_group(o: Obj) -> str:
    """The API group of an object ("" for the core group)."""
    api_version = str(o.get("apiVersion", ""))
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def pod_template(o: Obj) -> Mapping[str, Any] | None:
    """``{"metadata": ..., "spec": ...}`` of the pods an object runs, or None for other kinds."""
    k = kind(o)
    if k not in WORKLOAD_KINDS:
        return None
    if k == "Pod":
        return {"metadata": o.get("metadata") or {}, "spec": o.get("spec") or {}}
    spec = o.get("spec") or {}
    if k == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = spec.get("template") or {}
    return {"metadata": template.get("metadata") or {}, "spec": template.get("spec") or {}}


def pod_spec(o: Obj) -> Mapping[str, Any] | None:
    template = pod_template(o)
    return None if template is None else template["spec"]


def pod_labels(o: Obj) -> Mapping[str, Any]:
    template = pod_template(o)
    return {} if template is None else (template["metadata"].get("labels") or {})


def workloads(objects: Iterable[Obj]) -> Iterator[tuple[Obj, Mapping[str, Any]]]:
    """(object, pod spec) of every object that runs pods."""
    for o in objects:
        spec = pod_spec(o)
        if spec is not None:
            yield o, spec


def containers(spec: Mapping[str, Any], *, init: bool = True) -> list[Mapping[str, Any]]:
    """Containers of a pod spec; init and ephemeral containers too unless ``init`` is False."""
    out = list(spec.get("containers") or [])
    if init:
        out += list(spec.get("initContainers") or []) + list(spec.get("ephemeralContainers") or [])
    return out


def init_container_names(spec: Mapping[str, Any]) -> set[str]:
    return {c.get("name") for c in spec.get("initContainers") or []}


def replicas(o: Obj) -> int | None:
    """Desired replicas of a replicated workload (1 when the field is left out), else None."""
    if kind(o) not in REPLICATED_KINDS:
        return None
    value = (o.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def selector(o: Obj) -> Mapping[str, Any] | None:
    """The label selector of a workload (``spec.selector``), or None."""
    spec = o.get("spec") or {}
    if kind(o) == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    value = spec.get("selector")
    return value if isinstance(value, Mapping) else None


def selector_matches(sel: Mapping[str, Any] | None, target: Mapping[str, Any]) -> bool:
    """Kubernetes LabelSelector semantics (matchLabels AND matchExpressions). An empty selector
    matches everything; None matches nothing."""
    if sel is None:
        return False
    for key, value in (sel.get("matchLabels") or {}).items():
        if target.get(key) != value:
            return False
    for expr in sel.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), list(expr.get("values") or [])
        present = key in target
        if (
            (op == "In" and not (present and target[key] in values))
            or (op == "NotIn" and present and target[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
        if op not in {"In", "NotIn", "Exists", "DoesNotExist"}:
            return False
    return True


def map_selector_matches(sel: Mapping[str, Any] | None, target: Mapping[str, Any]) -> bool:
    """A plain ``{key: value}`` selector (Service.spec.selector): every pair must be present."""
    return bool(sel) and all(target.get(k) == v for k, v in (sel or {}).items())


def same_namespace(a: Obj, b: Obj) -> bool:
    return namespace(a) == namespace(b)


def int_or_percent(value: Any) -> tuple[int, bool] | None:
    """``3`` -> (3, False); ``"50%"`` -> (50, True); ``"3"`` -> (3, False); anything else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value, False
    text = str(value).strip()
    try:
        return (int(text[:-1]), True) if text.endswith("%") else (int(text), False)
    except ValueError:
        return None
