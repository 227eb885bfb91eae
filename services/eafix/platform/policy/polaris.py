"""Polaris' default checks (FairwindsOps/polaris ``pkg/config/default.yaml``), re-implemented.

Every check that default.yaml switches on is here with its severity and category; the rule of
each follows the check's description in ``pkg/config/checks/*.yaml``. Where Polaris' own schema
is looser than the rule it describes, the stricter reading is taken:

- ``missingPodDisruptionBudget`` / ``pdbMinAvailableGreaterThanHPAMinReplicas``: the PDB must
  select the pods (Polaris accepts a PDB sharing any one label pair with them);
- ``missingNetworkPolicy``: the policy's ``podSelector.matchLabels`` must select the pods;
- ``hpaMinAvailability``: an HPA without ``minReplicas`` runs one pod and is flagged;
- ``tlsSettingsMissing``: an empty ``spec.tls`` list counts as missing.

``pdbMinAvailableGreaterThanHPAMinReplicas`` fails when minAvailable is greater than *or equal
to* minReplicas (newer Polaris releases call it ``...GreaterThanOrEqualToHPAMinReplicas``; an
exemption under either name is honoured).

A controller (or any other object) is exempted the way Polaris reads annotations: the object's
``polaris.fairwinds.com/exempt: "true"`` skips every check, and
``polaris.fairwinds.com/<check>-exempt: "true"`` skips one.

Why not the real program: the Go module proxy these machines reach answers 403 for every version
of github.com/fairwindsops/polaris, so it cannot be built from a pinned module like the other tools
(docs/decisions.md, 2026-12-04). Each check below stands for the Polaris check of the same name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import quantity
from ._k8s import (
    Finding,
    Obj,
    annotations_of,
    containers,
    int_or_percent,
    kind,
    labels,
    name,
    namespace,
    pod_labels,
    pod_template,
    same_namespace,
    selector_matches,
    workloads,
)

TOOL = "polaris"
EXEMPT_ALL = "polaris.fairwinds.com/exempt"
EXEMPT_PATTERN = "polaris.fairwinds.com/{}-exempt"

Hit = tuple[Obj, str]
CheckFn = Callable[[Sequence[Obj]], Iterator[Hit]]


@dataclass(frozen=True)
class Check:
    name: str
    severity: str  # "warning" | "danger"
    category: str  # "Reliability" | "Efficiency" | "Security"
    fn: CheckFn
    description: str


CHECKS: dict[str, Check] = {}
# Older or newer Polaris releases name a check differently; an exemption under either name counts.
ALIASES = {"pdbMinAvailableGreaterThanHPAMinReplicas": ("pdbMinAvailableGreaterThanOrEqualToHPAMinReplicas",)}


def _check(check_name: str, severity: str, category: str, description: str):
    def register(fn: CheckFn) -> CheckFn:
        CHECKS[check_name] = Check(check_name, severity, category, fn, description)
        return fn

    return register


def _sc(c: Mapping[str, Any]) -> Mapping[str, Any]:
    return c.get("securityContext") or {}


def _pod_sc(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    return spec.get("securityContext") or {}


def _per_container(
    objects: Sequence[Obj],
    test: Callable[[Mapping[str, Any], Mapping[str, Any], Obj], str | None],
    *,
    init: bool = True,
    skip_kinds: frozenset[str] = frozenset(),
) -> Iterator[Hit]:
    for o, spec in workloads(objects):
        if kind(o) in skip_kinds:
            continue
        for c in containers(spec, init=init):
            message = test(c, spec, o)
            if message:
                yield o, f"container {c.get('name')!r}: {message}"


def _per_pod(
    objects: Sequence[Obj],
    test: Callable[[Mapping[str, Any], Obj], str | None],
    *,
    skip_kinds: frozenset[str] = frozenset(),
) -> Iterator[Hit]:
    for o, spec in workloads(objects):
        if kind(o) not in skip_kinds and (message := test(spec, o)):
            yield o, message


JOBS = frozenset({"Job", "CronJob"})

# --- reliability ---------------------------------------------------------------------------------


@_check("deploymentMissingReplicas", "warning", "Reliability", "A Deployment sets spec.replicas >= 2")
def _missing_replicas(objects: Sequence[Obj]) -> Iterator[Hit]:
    for o in objects:
        if kind(o) == "Deployment":
            count = (o.get("spec") or {}).get("replicas")
            if not isinstance(count, int) or count < 2:
                yield o, f"replicas is {count!r}; only one replica is scheduled"


@_check("priorityClassNotSet", "warning", "Reliability", "The pod sets priorityClassName")
def _priority_class(objects: Sequence[Obj]) -> Iterator[Hit]:
    return _per_pod(
        objects, lambda spec, _: None if spec.get("priorityClassName") else "priority class should be set"
    )


@_check("tagNotSpecified", "danger", "Reliability", "Images name a tag (repo:tag) that is not latest")
def _tag(objects: Sequence[Obj]) -> Iterator[Hit]:
    def test(c: Mapping[str, Any], *_: Any) -> str | None:
        image = str(c.get("image") or "")
        if not re.search(r"^.+:.+$", image) or re.search(r"^.+:latest$", image):
            return f"image {image!r} should specify a tag other than latest"
        return None

    return _per_container(objects, test)


@_check("pullPolicyNotAlways", "warning", "Reliability", "imagePullPolicy is Always")
def _pull_policy(objects: Sequence[Obj]) -> Iterator[Hit]:
    return _per_container(
        objects,
        lambda c, *_: (
            None
            if c.get("imagePullPolicy") == "Always"
            else f"imagePullPolicy is {c.get('imagePullPolicy')!r}, should be 'Always'"
        ),
    )


def _probe(field: str) -> CheckFn:
    def fn(objects: Sequence[Obj]) -> Iterator[Hit]:
        return _per_container(
            objects,
            lambda c, *_: None if c.get(field) else f"{field} should be configured",
            init=False,
            skip_kinds=JOBS,
        )

    return fn


_check("readinessProbeMissing", "warning", "Reliability", "Containers (not Jobs) define a readiness probe")(
    _probe("readinessProbe")
)
_check("livenessProbeMissing", "warning", "Reliability", "Containers (not Jobs) define a liveness probe")(
    _probe("livenessProbe")
)


@_check(
    "metadataAndInstanceMismatched",
    "warning",
    "Reliability",
    "The controller's app.kubernetes.io/instance label equals its metadata.name",
)
def _instance(objects: Sequence[Obj]) -> Iterator[Hit]:
    for o, _ in workloads(objects):
        instance = labels(o).get("app.kubernetes.io/instance")
        if instance != name(o):
            yield o, f"label app.kubernetes.io/instance is {instance!r}, metadata.name is {name(o)!r}"


def _pdbs(objects: Sequence[Obj]) -> list[Obj]:
    return [o for o in objects if kind(o) == "PodDisruptionBudget"]


def _hpas(objects: Sequence[Obj]) -> list[Obj]:
    return [o for o in objects if kind(o) == "HorizontalPodAutoscaler"]


@_check(
    "pdbDisruptionsIsZero",
    "warning",
    "Reliability",
    "A PDB allows voluntary evictions (minAvailable not 100%, maxUnavailable not 0)",
)
def _pdb_zero(objects: Sequence[Obj]) -> Iterator[Hit]:
    for pdb in _pdbs(objects):
        spec = pdb.get("spec") or {}
        if spec.get("minAvailable") == "100%":
            yield pdb, "minAvailable is 100%: voluntary evictions are not possible"
        if spec.get("maxUnavailable") in (0, "0%"):
            yield pdb, f"maxUnavailable is {spec['maxUnavailable']!r}: voluntary evictions are not possible"


def _pdb_for(o: Obj, objects: Sequence[Obj]) -> Obj | None:
    """The first PDB (same namespace) whose selector selects the workload's pods."""
    pod = pod_labels(o)
    return next(
        (
            p
            for p in _pdbs(objects)
            if same_namespace(p, o) and pod and selector_matches((p.get("spec") or {}).get("selector"), pod)
        ),
        None,
    )


@_check(
    "missingPodDisruptionBudget",
    "warning",
    "Reliability",
    "A Deployment's pods are selected by some PodDisruptionBudget",
)
def _missing_pdb(objects: Sequence[Obj]) -> Iterator[Hit]:
    # Polaris accepts a PDB sharing any one label pair with the pods; here the PDB must really
    # select them (Kubernetes selector semantics), which is what the check means.
    for o in objects:
        if kind(o) == "Deployment" and _pdb_for(o, objects) is None:
            yield o, "no PodDisruptionBudget selects the pods"


@_check(
    "topologySpreadConstraint",
    "warning",
    "Reliability",
    "The pod (not Jobs) sets at least one topology spread constraint",
)
def _tsc(objects: Sequence[Obj]) -> Iterator[Hit]:
    return _per_pod(
        objects,
        lambda spec, _: None if spec.get("topologySpreadConstraints") else "no topologySpreadConstraints",
        skip_kinds=JOBS,
    )


@_check("hpaMaxAvailability", "warning", "Reliability", "An HPA's maxReplicas is above its minReplicas")
def _hpa_max(objects: Sequence[Obj]) -> Iterator[Hit]:
    for hpa in _hpas(objects):
        spec = hpa.get("spec") or {}
        low, high = spec.get("minReplicas"), spec.get("maxReplicas")
        if not isinstance(high, int) or high < 1:
            yield hpa, f"maxReplicas is {high!r}"
        elif low is not None and (not isinstance(low, int) or low < 1 or high <= low):
            yield hpa, f"maxReplicas {high} should be greater than minReplicas {low}"


@_check("hpaMinAvailability", "warning", "Reliability", "An HPA's minReplicas is 2 or more")
def _hpa_min(objects: Sequence[Obj]) -> Iterator[Hit]:
    # An HPA without minReplicas runs 1 pod; Polaris' schema lets that pass, the rule does not.
    for hpa in _hpas(objects):
        low = (hpa.get("spec") or {}).get("minReplicas", 1)
        if not isinstance(low, int) or low < 2:
            yield hpa, f"minReplicas is {low!r}, should be 2 or more"


@_check(
    "pdbMinAvailableGreaterThanHPAMinReplicas",
    "warning",
    "Reliability",
    "The PDB of an autoscaled Deployment keeps minAvailable below the HPA's minReplicas",
)
def _pdb_vs_hpa(objects: Sequence[Obj]) -> Iterator[Hit]:
    for o in objects:
        if kind(o) != "Deployment":
            continue
        pdb = _pdb_for(o, objects)
        hpa = next(
            (
                h
                for h in _hpas(objects)
                if same_namespace(h, o)
                and ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("kind") == "Deployment"
                and ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == name(o)
            ),
            None,
        )
        if pdb is None or hpa is None:
            continue
        min_available = (pdb.get("spec") or {}).get("minAvailable")
        min_replicas = (hpa.get("spec") or {}).get("minReplicas")
        parsed = int_or_percent(min_available)
        if parsed is None or min_replicas is None:
            continue
        amount, percent = parsed
        needed = -(-amount * min_replicas // 100) if percent else amount  # percentages round up
        if needed >= min_replicas:
            yield (
                o,
                (
                    f"PDB {name(pdb)} minAvailable {min_available!r} ({needed}) is not below "
                    f"HPA {name(hpa)} minReplicas {min_replicas}"
                ),
            )


# --- efficiency ----------------------------------------------------------------------------------


def _resource(section: str, resource: str) -> CheckFn:
    def fn(objects: Sequence[Obj]) -> Iterator[Hit]:
        def test(c: Mapping[str, Any], *_: Any) -> str | None:
            value = ((c.get("resources") or {}).get(section) or {}).get(resource)
            return (
                None
                if value not in (None, "") and quantity.parse(value) is not None
                else f"{resource} {section} should be set"
            )

        return _per_container(objects, test, init=False)

    return fn


_check("cpuRequestsMissing", "warning", "Efficiency", "Containers set a CPU request")(
    _resource("requests", "cpu")
)
_check("cpuLimitsMissing", "warning", "Efficiency", "Containers set a CPU limit")(_resource("limits", "cpu"))
_check("memoryRequestsMissing", "warning", "Efficiency", "Containers set a memory request")(
    _resource("requests", "memory")
)
_check("memoryLimitsMissing", "warning", "Efficiency", "Containers set a memory limit")(
    _resource("limits", "memory")
)


# --- security: pod -------------------------------------------------------------------------------


@_check(
    "automountServiceAccountToken",
    "warning",
    "Security",
    "The pod does not mount a service-account token (pod or its ServiceAccount sets false)",
)
def _automount(objects: Sequence[Obj]) -> Iterator[Hit]:
    accounts = {(namespace(o), name(o)): o for o in objects if kind(o) == "ServiceAccount"}
    for o, spec in workloads(objects):
        pod_value = spec.get("automountServiceAccountToken")
        if pod_value is True:
            yield o, "automountServiceAccountToken is true"
        elif pod_value is not False:
            sa = accounts.get((namespace(o), spec.get("serviceAccountName") or ""))
            if sa is None or sa.get("automountServiceAccountToken") is not False:
                yield o, "the service-account token will be mounted (set automountServiceAccountToken: false)"


def _pod_flag(field: str) -> CheckFn:
    def fn(objects: Sequence[Obj]) -> Iterator[Hit]:
        return _per_pod(objects, lambda spec, _: f"{field} is true" if spec.get(field) is True else None)

    return fn


_check("hostIPCSet", "danger", "Security", "hostIPC is not set")(_pod_flag("hostIPC"))
_check("hostPIDSet", "danger", "Security", "hostPID is not set")(_pod_flag("hostPID"))
_check("hostNetworkSet", "danger", "Security", "hostNetwork is not set")(_pod_flag("hostNetwork"))


@_check("hostPathSet", "warning", "Security", "No hostPath volumes")
def _host_path(objects: Sequence[Obj]) -> Iterator[Hit]:
    return _per_pod(
        objects,
        lambda spec, _: (
            f"hostPath volumes {[v.get('name') for v in spec.get('volumes') or [] if v.get('hostPath')]}"
            if any(v.get("hostPath") for v in spec.get("volumes") or [])
            else None
        ),
    )


@_check("hostProcess", "warning", "Security", "No Windows hostProcess containers")
def _host_process(objects: Sequence[Obj]) -> Iterator[Hit]:
    def test(spec: Mapping[str, Any], _: Obj) -> str | None:
        scs = [_pod_sc(spec)] + [_sc(c) for c in spec.get("containers") or []]
        bad = any((sc.get("windowsOptions") or {}).get("hostProcess") not in (None, False) for sc in scs)
        return "privileged access to the host (windowsOptions.hostProcess)" if bad else None

    return _per_pod(objects, test)


@_check("procMount", "warning", "Security", "Containers keep the Default /proc mount")
def _proc_mount(objects: Sequence[Obj]) -> Iterator[Hit]:
    def test(spec: Mapping[str, Any], _: Obj) -> str | None:
        bad = [
            c.get("name")
            for c in spec.get("containers") or []
            if _sc(c).get("procMount") not in (None, "Default")
        ]
        return f"containers {bad} change procMount from Default" if bad else None

    return _per_pod(objects, test)


@_check(
    "missingNetworkPolicy",
    "warning",
    "Security",
    "A NetworkPolicy selects the pod (matchLabels) and has both ingress and egress rules",
)
def _network_policy(objects: Sequence[Obj]) -> Iterator[Hit]:
    policies = [o for o in objects if kind(o) == "NetworkPolicy"]

    def covers(policy: Obj, o: Obj) -> bool:
        spec = policy.get("spec") or {}
        types = {str(t).lower() for t in spec.get("policyTypes") or ["ingress", "egress"]}
        pod_selector = spec.get("podSelector") or {}
        return (
            same_namespace(policy, o)
            and bool(pod_selector.get("matchLabels"))
            and selector_matches(pod_selector, pod_labels(o))
            and bool(spec.get("ingress"))
            and bool(spec.get("egress"))
            and {"ingress", "egress"} <= types
        )

    for o, _ in workloads(objects):
        if not pod_labels(o) or not any(covers(p, o) for p in policies):
            yield o, "no NetworkPolicy with ingress and egress rules selects the pod"


# --- security: containers ------------------------------------------------------------------------


def _pod_or_container(field: str, good: Any) -> Callable[[Mapping[str, Any], Mapping[str, Any]], bool]:
    """Polaris' "set on the pod and not overridden, or set on the container" pattern."""

    def ok(c: Mapping[str, Any], spec: Mapping[str, Any]) -> bool:
        own = _sc(c).get(field)
        return own == good or (own is None and _pod_sc(spec).get(field) == good)

    return ok


@_check("notReadOnlyRootFilesystem", "warning", "Security", "Containers set readOnlyRootFilesystem: true")
def _read_only(objects: Sequence[Obj]) -> Iterator[Hit]:
    ok = _pod_or_container("readOnlyRootFilesystem", True)
    return _per_container(
        objects, lambda c, spec, _: None if ok(c, spec) else "filesystem should be read only"
    )


@_check("privilegeEscalationAllowed", "danger", "Security", "Containers set allowPrivilegeEscalation: false")
def _escalation(objects: Sequence[Obj]) -> Iterator[Hit]:
    ok = _pod_or_container("allowPrivilegeEscalation", False)
    return _per_container(
        objects, lambda c, spec, _: None if ok(c, spec) else "privilege escalation should not be allowed"
    )


@_check(
    "runAsRootAllowed",
    "danger",
    "Security",
    "runAsNonRoot: true or runAsUser >= 1 on the pod (not undone by the container) or the container",
)
def _run_as_root(objects: Sequence[Obj]) -> Iterator[Hit]:
    def good(sc: Mapping[str, Any]) -> bool:
        user = sc.get("runAsUser")
        return (isinstance(user, int) and user >= 1) or sc.get("runAsNonRoot") is True

    def not_bad(sc: Mapping[str, Any]) -> bool:
        user = sc.get("runAsUser")
        return (user is None or (isinstance(user, int) and user >= 1)) and sc.get("runAsNonRoot") in (
            None,
            True,
        )

    def test(c: Mapping[str, Any], spec: Mapping[str, Any], _: Obj) -> str | None:
        if (good(_pod_sc(spec)) and not_bad(_sc(c))) or good(_sc(c)):
            return None
        return "should not be allowed to run as root"

    return _per_container(objects, test)


@_check("runAsPrivileged", "danger", "Security", "Containers do not run privileged")
def _privileged(objects: Sequence[Obj]) -> Iterator[Hit]:
    return _per_container(
        objects,
        lambda c, spec, _: (
            "should not run privileged"
            if (_sc(c).get("privileged") is True or _pod_sc(spec).get("privileged") is True)
            else None
        ),
    )


def _caps(c: Mapping[str, Any], field: str) -> set[str]:
    return {str(x).upper() for x in ((_sc(c).get("capabilities") or {}).get(field) or [])}


@_check("dangerousCapabilities", "danger", "Security", "Containers add none of ALL, SYS_ADMIN, NET_ADMIN")
def _dangerous_caps(objects: Sequence[Obj]) -> Iterator[Hit]:
    return _per_container(
        objects,
        lambda c, *_: (
            f"adds dangerous capabilities {sorted(_caps(c, 'add') & {'ALL', 'SYS_ADMIN', 'NET_ADMIN'})}"
            if _caps(c, "add") & {"ALL", "SYS_ADMIN", "NET_ADMIN"}
            else None
        ),
    )


INSECURE_CAPABILITIES = frozenset(
    {
        "NET_ADMIN",
        "CHOWN",
        "DAC_OVERRIDE",
        "FSETID",
        "FOWNER",
        "MKNOD",
        "NET_RAW",
        "SETGID",
        "SETUID",
        "SETFCAP",
        "SETPCAP",
        "NET_BIND_SERVICE",
        "SYS_CHROOT",
        "KILL",
        "AUDIT_WRITE",
    }
)


@_check("insecureCapabilities", "warning", "Security", "Containers drop ALL (or every insecure capability)")
def _insecure_caps(objects: Sequence[Obj]) -> Iterator[Hit]:
    def test(c: Mapping[str, Any], *_: Any) -> str | None:
        dropped = _caps(c, "drop")
        if "ALL" in dropped or dropped >= INSECURE_CAPABILITIES:
            return None
        return f"does not drop ALL; still holds {sorted(INSECURE_CAPABILITIES - dropped)}"

    return _per_container(objects, test)


@_check(
    "linuxHardening",
    "warning",
    "Security",
    "A seccomp profile (not Unconfined), SELinux options, AppArmor, or dropped capabilities",
)
def _hardening(objects: Sequence[Obj]) -> Iterator[Hit]:
    def test(c: Mapping[str, Any], spec: Mapping[str, Any], o: Obj) -> str | None:
        template = pod_template(o) or {}
        pod_annotations = (template.get("metadata") or {}).get("annotations") or {}
        if f"container.apparmor.security.beta.kubernetes.io/{c.get('name')}" in pod_annotations:
            return None
        own, pod = _sc(c), _pod_sc(spec)
        pod_seccomp = (pod.get("seccompProfile") or {}).get("type")
        own_seccomp = (own.get("seccompProfile") or {}).get("type")
        # a container's own profile wins over the pod's
        seccomp = own_seccomp != "Unconfined" if own_seccomp else bool(pod_seccomp) and pod_seccomp != "Unconfined"
        selinux = bool(pod.get("seLinuxOptions")) or bool(own.get("seLinuxOptions"))
        apparmor = any(
            (sc.get("appArmorProfile") or {}).get("type") in ("RuntimeDefault", "Localhost")
            for sc in (own, pod)
        )
        caps = bool(_caps(c, "drop")) and "ALL" not in _caps(c, "add")
        return (
            None
            if seccomp or selinux or apparmor or caps
            else "use one of AppArmor, seccomp, SELinux or dropped capabilities"
        )

    return _per_container(objects, test)


@_check("hostPortSet", "warning", "Security", "Containers set no hostPort")
def _host_port(objects: Sequence[Obj]) -> Iterator[Hit]:
    return _per_container(
        objects,
        lambda c, *_: (
            "host port should not be configured"
            if any(p.get("hostPort") not in (None, 0) for p in c.get("ports") or [])
            else None
        ),
    )


SENSITIVE_NAMES = [
    re.compile(p)
    for p in (
        r"(?i)^AWS_SECRET_ACCESS_KEY$",
        r"(?i)^GOOGLE_APPLICATION_CREDENTIALS$",
        r"(?i)^AZURE_.+KEY$",
        r"(?i)^OCI_CLI_KEY_CONTENT$",
        r"(?i)password",
        r"(?i)token",
        r"(?i)bearer",
        r"(?i)secret",
    )
]
PRIVATE_KEY = re.compile(r"(?i)\s*-BEGIN\s+.*PRIVATE KEY-\s*")


def _sensitive(key: str) -> bool:
    return any(p.search(key) for p in SENSITIVE_NAMES)


@_check(
    "sensitiveContainerEnvVar",
    "danger",
    "Security",
    "No literal env value under a sensitive name (password, token, bearer, secret, cloud keys)",
)
def _sensitive_env(objects: Sequence[Obj]) -> Iterator[Hit]:
    def test(c: Mapping[str, Any], *_: Any) -> str | None:
        bad = [
            e.get("name")
            for e in c.get("env") or []
            if "value" in e
            and (_sensitive(str(e.get("name", ""))) or PRIVATE_KEY.search(str(e.get("value") or "")))
        ]
        return f"sets potentially sensitive env {bad} as literal values" if bad else None

    return _per_container(objects, test)


@_check(
    "sensitiveConfigmapContent",
    "danger",
    "Security",
    "No ConfigMap key with a sensitive name and no private key in a value",
)
def _sensitive_configmap(objects: Sequence[Obj]) -> Iterator[Hit]:
    for cm in objects:
        if kind(cm) != "ConfigMap":
            continue
        data = cm.get("data") or {}
        keys = sorted(k for k in data if _sensitive(str(k)))
        values = sorted(k for k, v in data.items() if PRIVATE_KEY.search(str(v)))
        if keys:
            yield cm, f"keys {keys} look sensitive"
        if values:
            yield cm, f"values of {values} hold a private key"


@_check("tlsSettingsMissing", "warning", "Security", "An Ingress configures spec.tls")
def _tls(objects: Sequence[Obj]) -> Iterator[Hit]:
    for o in objects:
        if kind(o) == "Ingress" and not (o.get("spec") or {}).get("tls"):
            yield o, "Ingress does not have TLS configured"


# --- security: RBAC ------------------------------------------------------------------------------

DEFAULT_RBAC_NAMES = ("gce:podsecuritypolicy:calico-sa",)


def _default_rbac(object_name: str) -> bool:
    return object_name.startswith("system:") or object_name in DEFAULT_RBAC_NAMES


def _grants_exec(role: Obj) -> bool:
    return any(
        {"", "*"} & set(r.get("apiGroups") or [])
        and {"*", "pods/exec", "pods/attach"} & set(r.get("resources") or [])
        and {"*", "get", "create"} & set(r.get("verbs") or [])
        for r in role.get("rules") or []
    )


ADMIN_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}


def _grants_everything(role: Obj) -> bool:
    return any(
        "*" in (r.get("apiGroups") or [])
        and "*" in (r.get("resources") or [])
        and ("*" in (r.get("verbs") or []) or set(r.get("verbs") or []) >= ADMIN_VERBS)
        for r in role.get("rules") or []
    )


def _roles(objects: Sequence[Obj], role_kind: str) -> dict[tuple[str | None, str], Obj]:
    return {
        (None if role_kind == "ClusterRole" else namespace(o), name(o)): o
        for o in objects
        if kind(o) == role_kind
    }


def _bound_role_problem(
    binding: Obj, objects: Sequence[Obj], role_kind: str, bad: Callable[[Obj], bool], what: str
) -> str | None:
    """Why the role a binding references is unacceptable: missing from the objects, or ``bad``."""
    ref = binding.get("roleRef") or {}
    if ref.get("kind") != role_kind:
        return None
    key = (None if role_kind == "ClusterRole" else namespace(binding), str(ref.get("name")))
    role = _roles(objects, role_kind).get(key)
    if role is None:
        return f"references {role_kind} {ref.get('name')!r}, which is not among the objects"
    return f"references {role_kind} {ref.get('name')!r}, which {what}" if bad(role) else None


def _rbac_role_check(role_kind: str, skip: tuple[str, ...] = ()) -> CheckFn:
    def fn(objects: Sequence[Obj]) -> Iterator[Hit]:
        for o in objects:
            if (
                kind(o) == role_kind
                and not _default_rbac(name(o))
                and name(o) not in skip
                and _grants_exec(o)
            ):
                yield o, f"the {role_kind} allows pods/exec or pods/attach"

    return fn


def _rbac_binding_check(
    binding_kind: str,
    role_kind: str,
    bad: Callable[[Obj], bool],
    what: str,
    *,
    skip_roles: tuple[str, ...] = (),
    skip_bindings: tuple[str, ...] = (),
    always_bad_roles: tuple[str, ...] = (),
) -> CheckFn:
    def fn(objects: Sequence[Obj]) -> Iterator[Hit]:
        for b in objects:
            if kind(b) != binding_kind or _default_rbac(name(b)) or name(b) in skip_bindings:
                continue
            ref = b.get("roleRef") or {}
            if ref.get("kind") != role_kind or ref.get("name") in skip_roles:
                continue
            if ref.get("name") in always_bad_roles:
                yield b, f"references the {ref.get('name')} {role_kind}"
            elif problem := _bound_role_problem(b, objects, role_kind, bad, what):
                yield b, problem

    return fn


_check(
    "clusterrolePodExecAttach", "danger", "Security", "A ClusterRole does not allow pods/exec or pods/attach"
)(_rbac_role_check("ClusterRole", skip=("admin", "cluster-admin", "edit")))
_check("rolePodExecAttach", "danger", "Security", "A Role does not allow pods/exec or pods/attach")(
    _rbac_role_check("Role")
)
_check(
    "clusterrolebindingPodExecAttach",
    "danger",
    "Security",
    "A ClusterRoleBinding does not grant a ClusterRole allowing pods/exec or pods/attach",
)(
    _rbac_binding_check(
        "ClusterRoleBinding",
        "ClusterRole",
        _grants_exec,
        "allows pods/exec or pods/attach",
        skip_roles=("view",),
        skip_bindings=("cluster-admin",),
    )
)
_check(
    "rolebindingClusterRolePodExecAttach",
    "danger",
    "Security",
    "A RoleBinding does not grant a ClusterRole allowing pods/exec or pods/attach",
)(_rbac_binding_check("RoleBinding", "ClusterRole", _grants_exec, "allows pods/exec or pods/attach"))
_check(
    "rolebindingRolePodExecAttach",
    "danger",
    "Security",
    "A RoleBinding does not grant a Role allowing pods/exec or pods/attach",
)(_rbac_binding_check("RoleBinding", "Role", _grants_exec, "allows pods/exec or pods/attach"))
_check(
    "clusterrolebindingClusterAdmin",
    "danger",
    "Security",
    "A ClusterRoleBinding does not grant cluster-admin or a wildcard ClusterRole",
)(
    _rbac_binding_check(
        "ClusterRoleBinding",
        "ClusterRole",
        _grants_everything,
        "grants every verb on everything",
        skip_roles=("view",),
        skip_bindings=("cluster-admin",),
        always_bad_roles=("cluster-admin",),
    )
)
_check(
    "rolebindingClusterAdminClusterRole",
    "danger",
    "Security",
    "A RoleBinding does not grant cluster-admin or a wildcard ClusterRole",
)(
    _rbac_binding_check(
        "RoleBinding",
        "ClusterRole",
        _grants_everything,
        "grants every verb on everything",
        skip_roles=("view",),
        always_bad_roles=("cluster-admin",),
    )
)
_check("rolebindingClusterAdminRole", "danger", "Security", "A RoleBinding does not grant a wildcard Role")(
    _rbac_binding_check("RoleBinding", "Role", _grants_everything, "grants every verb on everything")
)


# --- running the checks --------------------------------------------------------------------------


def exempt(o: Obj, check_name: str) -> bool:
    """Whether the object carries a Polaris exemption annotation for ``check_name``."""
    ann = annotations_of(o)
    keys = [EXEMPT_ALL] + [EXEMPT_PATTERN.format(n) for n in (check_name, *ALIASES.get(check_name, ()))]
    return any(str(ann.get(k, "")).lower() == "true" for k in keys)


def audit(objects: Iterable[Obj], checks: Iterable[str] | None = None) -> list[Finding]:
    """Findings of ``checks`` (default: all of Polaris' default checks), honouring exemptions; sorted."""
    objs = list(objects)
    selected = list(CHECKS) if checks is None else list(checks)
    findings = {
        Finding(TOOL, check_name, kind(o), name(o), f"[{CHECKS[check_name].severity}] {message}")
        for check_name in selected
        for o, message in CHECKS[check_name].fn(objs)
        if not exempt(o, check_name)
    }
    return sorted(findings)
