"""kube-linter's default checks (and a few opt-in ones), re-implemented over object dicts.

Each check follows the rule as kube-linter documents it (stackrox/kube-linter
``docs/generated/checks.md``, the parameters of its built-in checks). Where this reading is
deliberately different, it is the stricter or the documented one:

- ``drop-net-raw-capability`` also flags containers with no ``capabilities`` block at all
  (kube-linter skips them, yet such a container keeps NET_RAW);
- ``privilege-escalation-container`` also flags privileged mode and an added SYS_ADMIN, as its
  remediation text says;
- ``pdb-min-available`` compares the PDB with every workload whose pods its selector selects
  (kube-linter: workloads whose selector is textually identical);
- ``pdb-max-unavailable`` flags 0 and "0%" only.

An object opts out of one check with the annotation ``ignore-check.kube-linter.io/<check>:
"<reason>"`` and out of all of them with ``kube-linter.io/ignore-all``, exactly as kube-linter
honours them; nothing else (pod-template annotations, other tools' annotations) does.

Why not the real program: the Go module proxy these machines reach refuses
golang.stackrox.io/kube-linter ("module-host allowlist") and github.com/stackrox/kube-linter (403),
so it cannot be built from a pinned module like the other tools (docs/decisions.md, 2026-12-04).
Each check below stands for the kube-linter check of the same name.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import quantity
from ._k8s import (
    Finding,
    Obj,
    annotations_of,
    api_group,
    containers,
    int_or_percent,
    kind,
    labels,
    map_selector_matches,
    name,
    namespace,
    pod_labels,
    replicas,
    same_namespace,
    selector,
    selector_matches,
    workloads,
)

TOOL = "kube-linter"
IGNORE_PREFIX = "ignore-check.kube-linter.io/"
IGNORE_ALL = "kube-linter.io/ignore-all"

Hit = tuple[Obj, str]  # (object the finding is about, message)
CheckFn = Callable[[Sequence[Obj]], Iterator[Hit]]


@dataclass(frozen=True)
class Check:
    name: str
    default: bool  # enabled by default in kube-linter
    fn: CheckFn
    description: str


CHECKS: dict[str, Check] = {}


def _check(check_name: str, description: str, *, default: bool = True):
    def register(fn: CheckFn) -> CheckFn:
        CHECKS[check_name] = Check(check_name, default, fn, description)
        return fn

    return register


def _per_container(
    objects: Sequence[Obj],
    test: Callable[[Mapping[str, Any], Mapping[str, Any]], str | None],
    *,
    init: bool = True,
) -> Iterator[Hit]:
    """Run ``test(container, pod_spec)`` on every container of every workload."""
    for o, spec in workloads(objects):
        for c in containers(spec, init=init):
            message = test(c, spec)
            if message:
                yield o, f"container {c.get('name')!r}: {message}"


def _sc(c: Mapping[str, Any]) -> Mapping[str, Any]:
    return c.get("securityContext") or {}


def _caps(c: Mapping[str, Any], field: str) -> list[str]:
    return [
        str(x).upper().removeprefix("CAP_") for x in ((_sc(c).get("capabilities") or {}).get(field) or [])
    ]


# --- pod-level host namespaces, sysctls, service accounts ----------------------------------------


def _pod_flag(field: str) -> CheckFn:
    def fn(objects: Sequence[Obj]) -> Iterator[Hit]:
        for o, spec in workloads(objects):
            if spec.get(field) is True:
                yield o, f"pod sets {field}: true"

    return fn


_check("host-ipc", "Pods must not share the host's IPC namespace")(_pod_flag("hostIPC"))
_check("host-network", "Pods must not share the host's network namespace")(_pod_flag("hostNetwork"))
_check("host-pid", "Pods must not share the host's process namespace")(_pod_flag("hostPID"))

UNSAFE_SYSCTL_PREFIXES = ("kernel.msg", "kernel.sem", "kernel.shm", "fs.mqueue.", "net.")


@_check("unsafe-sysctls", "No sysctls from the unsafe prefixes (kernel.msg/sem/shm, fs.mqueue., net.)")
def _unsafe_sysctls(objects: Sequence[Obj]) -> Iterator[Hit]:
    for o, spec in workloads(objects):
        for s in (spec.get("securityContext") or {}).get("sysctls") or []:
            if str(s.get("name", "")).startswith(UNSAFE_SYSCTL_PREFIXES):
                yield o, f"unsafe sysctl {s.get('name')!r}"


def _service_account(spec: Mapping[str, Any]) -> str:
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "")


@_check("deprecated-service-account-field", "Use serviceAccountName, not the deprecated serviceAccount")
def _deprecated_sa(objects: Sequence[Obj]) -> Iterator[Hit]:
    for o, spec in workloads(objects):
        if spec.get("serviceAccount"):
            yield o, f"serviceAccount {spec['serviceAccount']!r} is deprecated; use serviceAccountName"


@_check("non-existent-service-account", "The referenced ServiceAccount is among the objects")
def _missing_sa(objects: Sequence[Obj]) -> Iterator[Hit]:
    accounts = {(namespace(o), name(o)) for o in objects if kind(o) == "ServiceAccount"}
    for o, spec in workloads(objects):
        sa = _service_account(spec)
        if sa and sa != "default" and (namespace(o), sa) not in accounts:
            yield o, f"serviceAccount {sa!r} not found"


@_check("default-service-account", "Pods use a dedicated ServiceAccount, not the default one", default=False)
def _default_sa(objects: Sequence[Obj]) -> Iterator[Hit]:
    for o, spec in workloads(objects):
        if _service_account(spec) in ("", "default"):
            yield o, "pod uses the default service account"


# --- containers: security context ----------------------------------------------------------------


@_check("privileged-container", "Containers do not run privileged")
def _privileged(objects: Sequence[Obj]) -> Iterator[Hit]:
    return _per_container(
        objects, lambda c, _: "runs privileged" if _sc(c).get("privileged") is True else None
    )


@_check(
    "privilege-escalation-container",
    "No allowPrivilegeEscalation: true, no privileged mode, no added SYS_ADMIN",
)
def _privilege_escalation(objects: Sequence[Obj]) -> Iterator[Hit]:
    def test(c: Mapping[str, Any], _: Mapping[str, Any]) -> str | None:
        sc = _sc(c)
        if sc.get("allowPrivilegeEscalation") is True:
            return "allowPrivilegeEscalation is true"
        if sc.get("privileged") is True:
            return "privileged mode allows privilege escalation"
        if "SYS_ADMIN" in _caps(c, "add"):
            return "adds SYS_ADMIN"
        return None

    return _per_container(objects, test)


@_check("no-read-only-root-fs", "Containers set readOnlyRootFilesystem: true")
def _read_only_root_fs(objects: Sequence[Obj]) -> Iterator[Hit]:
    return _per_container(
        objects,
        lambda c, _: (
            None
            if _sc(c).get("readOnlyRootFilesystem") is True
            else "does not have a read-only root file system"
        ),
    )


@_check("drop-net-raw-capability", "Containers drop NET_RAW (dropping ALL covers it) and never add it")
def _net_raw(objects: Sequence[Obj]) -> Iterator[Hit]:
    # Stricter than kube-linter, which only looks at containers that have a capabilities block:
    # a container that drops nothing keeps NET_RAW, so it is flagged too.
    def test(c: Mapping[str, Any], _: Mapping[str, Any]) -> str | None:
        added = set(_caps(c, "add"))
        if added & {"NET_RAW", "ALL"}:
            return f"adds {sorted(added & {'NET_RAW', 'ALL'})}"
        if not set(_caps(c, "drop")) & {"NET_RAW", "ALL"}:
            return "does not drop NET_RAW (or ALL)"
        return None

    return _per_container(objects, test)


@_check("run-as-non-root", "runAsNonRoot: true with a non-zero user, and a non-zero group")
def _run_as_non_root(objects: Sequence[Obj]) -> Iterator[Hit]:
    def effective(c: Mapping[str, Any], spec: Mapping[str, Any], field: str) -> Any:
        value = _sc(c).get(field)
        return value if value is not None else (spec.get("securityContext") or {}).get(field)

    for o, spec in workloads(objects):
        for c in containers(spec):
            user, group = effective(c, spec, "runAsUser"), effective(c, spec, "runAsGroup")
            if isinstance(user, int) and user > 0 and isinstance(group, int) and group > 0:
                continue
            who = f"container {c.get('name')!r}"
            if group is None:
                yield o, f"{who} does not set runAsGroup"
            elif group == 0:
                yield o, f"{who} has runAsGroup 0"
            if effective(c, spec, "runAsNonRoot") is True:
                if user == 0:
                    yield o, f"{who} sets runAsNonRoot but runAsUser 0"
            else:
                yield o, f"{who} is not set to runAsNonRoot"


# --- containers: image, env, ports, probes, resources, mounts ------------------------------------

LATEST_TAG_BLOCKLIST = (re.compile(r".*:(latest)$"), re.compile(r"^[^:]*$"), re.compile(r"(.*/[^:]+)$"))


@_check("latest-tag", "Images carry a tag other than latest (a digest also pins them)")
def _latest_tag(objects: Sequence[Obj]) -> Iterator[Hit]:
    def test(c: Mapping[str, Any], _: Mapping[str, Any]) -> str | None:
        image = str(c.get("image", ""))
        hit = next((p.pattern for p in LATEST_TAG_BLOCKLIST if p.search(image)), None)
        return f"image {image!r} matches the block list ({hit})" if hit else None

    return _per_container(objects, test)


@_check("env-var-secret", "No env var whose name contains 'secret' with a literal value")
def _env_var_secret(objects: Sequence[Obj]) -> Iterator[Hit]:
    def test(c: Mapping[str, Any], _: Mapping[str, Any]) -> str | None:
        bad = [
            e.get("name")
            for e in c.get("env") or []
            if re.search(r"(?i)secret", str(e.get("name", ""))) and str(e.get("value") or "")
        ]
        return f"env {bad} hold a literal secret; use a secretKeyRef or a file" if bad else None

    return _per_container(objects, test)


@_check("duplicate-env-var", "No env var name twice in one container")
def _duplicate_env(objects: Sequence[Obj]) -> Iterator[Hit]:
    def test(c: Mapping[str, Any], _: Mapping[str, Any]) -> str | None:
        counts = Counter(e.get("name") for e in c.get("env") or [])
        dups = sorted(str(n) for n, count in counts.items() if count > 1)
        return f"duplicate env {dups}" if dups else None

    return _per_container(objects, test)


@_check("ssh-port", "No container exposes port 22/TCP")
def _ssh_port(objects: Sequence[Obj]) -> Iterator[Hit]:
    return _per_container(
        objects,
        lambda c, _: (
            "exposes port 22/TCP"
            if any(
                p.get("containerPort") == 22 and p.get("protocol", "TCP") == "TCP"
                for p in c.get("ports") or []
            )
            else None
        ),
    )


def _probe_port(probe_field: str) -> CheckFn:
    def fn(objects: Sequence[Obj]) -> Iterator[Hit]:
        def test(c: Mapping[str, Any], _: Mapping[str, Any]) -> str | None:
            probe = c.get(probe_field) or {}
            handler = probe.get("httpGet") or probe.get("tcpSocket") or probe.get("grpc")
            if not handler or handler.get("port") is None:
                return None  # exec probes and absent probes have no port
            port = handler["port"]
            declared = c.get("ports") or []
            if isinstance(port, str) and not port.isdigit():
                ok = any(p.get("name") == port for p in declared)
            else:
                ok = any(p.get("containerPort") == int(port) for p in declared)
            return None if ok else f"{probe_field} uses port {port!r}, which the container does not declare"

        return _per_container(objects, test, init=False)

    return fn


_check("liveness-port", "Liveness probes target a declared container port")(_probe_port("livenessProbe"))
_check("readiness-port", "Readiness probes target a declared container port")(_probe_port("readinessProbe"))
_check("startup-port", "Startup probes target a declared container port")(_probe_port("startupProbe"))


def _probe_present(probe_field: str) -> CheckFn:
    def fn(objects: Sequence[Obj]) -> Iterator[Hit]:
        return _per_container(
            objects, lambda c, _: None if c.get(probe_field) else f"has no {probe_field}", init=False
        )

    return fn


_check("no-liveness-probe", "Containers define a liveness probe", default=False)(
    _probe_present("livenessProbe")
)
_check("no-readiness-probe", "Containers define a readiness probe", default=False)(
    _probe_present("readinessProbe")
)


@_check("unset-cpu-requirements", "Containers set a CPU request")
def _cpu(objects: Sequence[Obj]) -> Iterator[Hit]:
    def test(c: Mapping[str, Any], _: Mapping[str, Any]) -> str | None:
        value = quantity.parse(((c.get("resources") or {}).get("requests") or {}).get("cpu"))
        return None if value and value > 0 else "has no CPU request"

    return _per_container(objects, test)


@_check("unset-memory-requirements", "Containers set a memory limit")
def _memory(objects: Sequence[Obj]) -> Iterator[Hit]:
    def test(c: Mapping[str, Any], _: Mapping[str, Any]) -> str | None:
        value = quantity.parse(((c.get("resources") or {}).get("limits") or {}).get("memory"))
        return None if value and value > 0 else "has no memory limit"

    return _per_container(objects, test)


def _host_mounts(patterns: Sequence[str]) -> CheckFn:
    compiled = [re.compile(p) for p in patterns]

    def fn(objects: Sequence[Obj]) -> Iterator[Hit]:
        def test(c: Mapping[str, Any], spec: Mapping[str, Any]) -> str | None:
            host_paths = {
                v.get("name"): (v.get("hostPath") or {}).get("path")
                for v in spec.get("volumes") or []
                if v.get("hostPath")
            }
            bad = [
                host_paths[m.get("name")]
                for m in c.get("volumeMounts") or []
                if host_paths.get(m.get("name"))
                and any(p.search(str(host_paths[m.get("name")])) for p in compiled)
            ]
            return f"mounts host path(s) {bad}" if bad else None

        return _per_container(objects, test)

    return fn


_check("docker-sock", "No docker.sock host mount")(_host_mounts([r"docker.sock$"]))
_check("sensitive-host-mounts", "No host mount of /, /boot, /dev, /etc, /lib, /proc, /sys, /usr")(
    _host_mounts([r"^/$", r"^/boot$", r"^/dev$", r"^/etc$", r"^/lib$", r"^/proc$", r"^/sys$", r"^/usr$"])
)


# --- ports ---------------------------------------------------------------------------------------


def _port_name_problem(port_name: str) -> str | None:
    """Why ``port_name`` is not an IANA service name (RFC 6335 5.1), as Kubernetes validates it."""
    if len(port_name) > 15:
        return "must be no more than 15 characters"
    if not re.fullmatch(r"[a-z0-9-]+", port_name):
        return "must contain only lower-case letters, digits and '-'"
    if not re.search(r"[a-z]", port_name):
        return "must contain at least one letter"
    if port_name.startswith("-") or port_name.endswith("-") or "--" in port_name:
        return "must not begin or end with '-' or contain '--'"
    return None


@_check("invalid-target-ports", "Container port names and Service targetPorts are valid names/numbers")
def _target_ports(objects: Sequence[Obj]) -> Iterator[Hit]:
    for o, spec in workloads(objects):
        for c in containers(spec):
            for p in c.get("ports") or []:
                if p.get("name") and (why := _port_name_problem(str(p["name"]))):
                    yield o, f"port name {p['name']!r} in container {c.get('name')!r} {why}"
    for svc in objects:
        if kind(svc) != "Service":
            continue
        for p in (svc.get("spec") or {}).get("ports") or []:
            target = p.get("targetPort")
            if target is None or target == 0:
                continue
            if isinstance(target, int):
                if not 1 <= target <= 65535:
                    yield svc, f"targetPort {target} must be between 1 and 65535"
            elif why := _port_name_problem(str(target)):
                yield svc, f"targetPort {target!r} {why}"


# --- relations between objects -------------------------------------------------------------------


@_check("dangling-service", "Every Service selector matches the pods of some workload")
def _dangling_service(objects: Sequence[Obj]) -> Iterator[Hit]:
    pods = [o for o, _ in workloads(objects)]
    for svc in objects:
        if kind(svc) != "Service" or (svc.get("spec") or {}).get("type") == "ExternalName":
            continue
        sel = (svc.get("spec") or {}).get("selector") or {}
        if not sel:
            yield svc, "service has no selector"
        elif not any(same_namespace(svc, w) and map_selector_matches(sel, pod_labels(w)) for w in pods):
            yield svc, f"no pods match the service selector {dict(sel)}"


@_check("mismatching-selector", "A workload's selector matches its own pod template labels")
def _mismatching_selector(objects: Sequence[Obj]) -> Iterator[Hit]:
    for o, _ in workloads(objects):
        if kind(o) in ("Pod", "CronJob", "Job"):
            continue  # Jobs get a generated selector
        sel = selector(o)
        template_labels = pod_labels(o)
        if kind(o) == "ReplicationController":
            ok = sel is None or map_selector_matches(sel, template_labels)
        elif sel is None:
            yield o, "object has no selector"
            continue
        else:
            ok = selector_matches(sel, template_labels)
        if not ok:
            yield (
                o,
                f"selector {dict(sel or {})} does not match the pod template labels {dict(template_labels)}",
            )


@_check(
    "no-anti-affinity",
    "With replicas >= 2, podAntiAffinity on kubernetes.io/hostname whose selector matches the pods",
)
def _no_anti_affinity(objects: Sequence[Obj]) -> Iterator[Hit]:
    for o, spec in workloads(objects):
        count = replicas(o)
        if count is None or count < 2 or (o.get("spec") or {}).get("replicas") is None:
            continue  # skipped when replicas is left to an HPA
        anti = (spec.get("affinity") or {}).get("podAntiAffinity") or {}
        terms = [
            t.get("podAffinityTerm") or {}
            for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []
        ]
        terms += list(anti.get("requiredDuringSchedulingIgnoredDuringExecution") or [])
        if not terms:
            yield o, f"object has {count} replicas but does not specify inter-pod anti-affinity"
            continue
        template_labels = pod_labels(o)

        def good(
            term: Mapping[str, Any], o: Obj = o, template_labels: Mapping[str, Any] = template_labels
        ) -> bool:
            namespaces = term.get("namespaces") or []
            return (
                term.get("topologyKey") == "kubernetes.io/hostname"
                and (not namespaces or namespace(o) in namespaces)
                and selector_matches(term.get("labelSelector"), template_labels)
            )

        if not any(good(t) for t in terms):
            yield o, "no anti-affinity term uses kubernetes.io/hostname with a selector matching the pods"


@_check("no-extensions-v1beta", "No objects from the deprecated extensions/v1beta* APIs")
def _extensions(objects: Sequence[Obj]) -> Iterator[Hit]:
    for o in objects:
        version = str(o.get("apiVersion", "")).split("/")[-1]
        if api_group(o) == "extensions" and re.search(r"v1beta.+", version):
            yield o, f"uses deprecated API {o.get('apiVersion')}"


@_check(
    "job-ttl-seconds-after-finished", "Standalone Jobs set ttlSecondsAfterFinished; Jobs of a CronJob do not"
)
def _job_ttl(objects: Sequence[Obj]) -> Iterator[Hit]:
    for o in objects:
        if kind(o) == "Job" and (o.get("spec") or {}).get("ttlSecondsAfterFinished") is None:
            yield o, "standalone Job does not set ttlSecondsAfterFinished"
        elif kind(o) == "CronJob":
            job_spec = ((o.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}
            if job_spec.get("ttlSecondsAfterFinished") is not None:
                yield o, "CronJob's Job sets ttlSecondsAfterFinished (conflicts with the history limits)"


def _pdbs(objects: Sequence[Obj]) -> Iterator[Obj]:
    return (o for o in objects if kind(o) == "PodDisruptionBudget")


@_check("pdb-max-unavailable", "A PDB's maxUnavailable is not 0 (that blocks every eviction)")
def _pdb_max_unavailable(objects: Sequence[Obj]) -> Iterator[Hit]:
    for pdb in _pdbs(objects):
        value = (pdb.get("spec") or {}).get("maxUnavailable")
        parsed = None if value is None else int_or_percent(value)
        if parsed is not None and parsed[0] == 0:
            yield pdb, f"maxUnavailable is {value!r}"


@_check("pdb-min-available", "A PDB's minAvailable leaves room for a disruption given the replicas")
def _pdb_min_available(objects: Sequence[Obj]) -> Iterator[Hit]:
    for pdb in _pdbs(objects):
        value = (pdb.get("spec") or {}).get("minAvailable")
        if value is None:
            continue
        parsed = int_or_percent(value)
        if parsed is None:
            yield pdb, f"invalid minAvailable {value!r}"
            continue
        amount, percent = parsed
        if percent and amount >= 100:
            yield pdb, "minAvailable is 100% of the replicas"
            continue
        sel = (pdb.get("spec") or {}).get("selector")
        for o, _ in workloads(objects):
            count = replicas(o)
            if count is None or not same_namespace(o, pdb) or not selector_matches(sel, pod_labels(o)):
                continue
            needed = (count * amount) // 100 if percent else amount
            if count <= needed:
                yield pdb, f"{kind(o)} {name(o)} has {count} replica(s), not more than minAvailable {value!r}"


@_check("pdb-unhealthy-pod-eviction-policy", "A PDB sets unhealthyPodEvictionPolicy explicitly")
def _pdb_eviction_policy(objects: Sequence[Obj]) -> Iterator[Hit]:
    for pdb in _pdbs(objects):
        if not (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy"):
            yield pdb, "unhealthyPodEvictionPolicy is not set (AlwaysAllow is recommended)"


@_check(
    "dangling-horizontalpodautoscaler", "An HPA's scaleTargetRef names an object that exists", default=False
)
def _dangling_hpa(objects: Sequence[Obj]) -> Iterator[Hit]:
    for hpa in objects:
        if kind(hpa) != "HorizontalPodAutoscaler":
            continue
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        found = any(
            kind(o) == ref.get("kind")
            and name(o) == ref.get("name")
            and same_namespace(o, hpa)
            and (not ref.get("apiVersion") or o.get("apiVersion") == ref.get("apiVersion"))
            for o, _ in workloads(objects)
        )
        if not found:
            yield hpa, f"no object matches scaleTargetRef {dict(ref)}"


@_check("dangling-servicemonitor", "A ServiceMonitor's selectors match some Service", default=False)
def _dangling_servicemonitor(objects: Sequence[Obj]) -> Iterator[Hit]:
    services = [o for o in objects if kind(o) == "Service"]
    for sm in objects:
        if kind(sm) != "ServiceMonitor":
            continue
        spec = sm.get("spec") or {}
        ns_sel = spec.get("namespaceSelector") or {}
        label_sel = spec.get("selector") or {}
        has_labels = bool(label_sel.get("matchLabels") or label_sel.get("matchExpressions"))
        has_ns = bool(ns_sel.get("any") or ns_sel.get("matchNames"))
        if not has_labels and not has_ns:
            yield sm, "service monitor has no selector"
            continue

        def in_namespaces(svc: Obj, ns_sel: Mapping[str, Any] = ns_sel, sm: Obj = sm) -> bool:
            if ns_sel.get("any"):
                return True
            names = ns_sel.get("matchNames") or []
            return namespace(svc) in names if names else same_namespace(svc, sm)

        if not any(
            in_namespaces(s) and (not has_labels or selector_matches(label_sel, labels(s))) for s in services
        ):
            yield sm, "no Service matches the service monitor's selectors"


# --- running the checks --------------------------------------------------------------------------

DEFAULT_CHECKS = tuple(sorted(n for n, c in CHECKS.items() if c.default))
OPT_IN_CHECKS = tuple(sorted(n for n, c in CHECKS.items() if not c.default))


def ignored(o: Obj, check_name: str) -> bool:
    """Whether the object opts out of ``check_name`` through kube-linter's annotations."""
    ann = annotations_of(o)
    return IGNORE_ALL in ann or f"{IGNORE_PREFIX}{check_name}" in ann


def lint(objects: Iterable[Obj], checks: Iterable[str] | None = None) -> list[Finding]:
    """Findings of ``checks`` (default: every implemented check) on the objects, honouring the
    ignore annotations; sorted."""
    objs = list(objects)
    selected = list(CHECKS) if checks is None else list(checks)
    findings = {
        Finding(TOOL, check_name, kind(o), name(o), message)
        for check_name in selected
        for o, message in CHECKS[check_name].fn(objs)
        if not ignored(o, check_name)
    }
    return sorted(findings)
