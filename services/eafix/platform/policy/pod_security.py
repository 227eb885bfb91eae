"""Pod Security Standards, profile ``restricted`` (which includes ``baseline``), on pod templates.

Each check of the Kubernetes "Pod Security Standards" page is one function over a pod spec; a
violation is a ``Finding`` with tool ``pod-security`` and the check's name. Checks look at every
container, init container and ephemeral container, and at the pod-level security context where the
standard lets it stand in for the containers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._k8s import Finding, Obj, containers, kind, name, pod_template

TOOL = "pod-security"

# baseline
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
# restricted
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}

Spec = Mapping[str, Any]
Check = Callable[[Spec, Mapping[str, Any]], list[str]]


def _sc(c: Mapping[str, Any]) -> Mapping[str, Any]:
    return c.get("securityContext") or {}


def _cname(c: Mapping[str, Any]) -> str:
    return str(c.get("name", "?"))


def host_namespaces(spec: Spec, meta: Mapping[str, Any]) -> list[str]:
    return [f"{f} is true" for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f)]


def privileged(spec: Spec, meta: Mapping[str, Any]) -> list[str]:
    return [f"container {_cname(c)} is privileged" for c in containers(spec) if _sc(c).get("privileged")]


def host_process(spec: Spec, meta: Mapping[str, Any]) -> list[str]:
    out = []
    if ((spec.get("securityContext") or {}).get("windowsOptions") or {}).get("hostProcess"):
        out.append("pod windowsOptions.hostProcess is true")
    out += [
        f"container {_cname(c)} sets windowsOptions.hostProcess"
        for c in containers(spec)
        if (_sc(c).get("windowsOptions") or {}).get("hostProcess")
    ]
    return out


def capabilities_baseline(spec: Spec, meta: Mapping[str, Any]) -> list[str]:
    return [
        f"container {_cname(c)} adds {cap}"
        for c in containers(spec)
        for cap in (_sc(c).get("capabilities") or {}).get("add") or []
        if cap not in BASELINE_CAPABILITIES
    ]


def host_path(spec: Spec, meta: Mapping[str, Any]) -> list[str]:
    return [f"volume {v.get('name')} is a hostPath" for v in spec.get("volumes") or [] if "hostPath" in v]


def host_ports(spec: Spec, meta: Mapping[str, Any]) -> list[str]:
    return [
        f"container {_cname(c)} uses hostPort {p['hostPort']}"
        for c in containers(spec)
        for p in c.get("ports") or []
        if p.get("hostPort")
    ]


def apparmor(spec: Spec, meta: Mapping[str, Any]) -> list[str]:
    out = []
    profiles = [("pod", (spec.get("securityContext") or {}).get("appArmorProfile"))]
    profiles += [(f"container {_cname(c)}", _sc(c).get("appArmorProfile")) for c in containers(spec)]
    out += [f"{who} AppArmor profile is Unconfined" for who, p in profiles if p and p.get("type") == "Unconfined"]
    for key, value in (meta.get("annotations") or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and value == "unconfined":
            out.append(f"annotation {key} is unconfined")
    return out


def selinux(spec: Spec, meta: Mapping[str, Any]) -> list[str]:
    opts = [("pod", (spec.get("securityContext") or {}).get("seLinuxOptions") or {})]
    opts += [(f"container {_cname(c)}", _sc(c).get("seLinuxOptions") or {}) for c in containers(spec)]
    out = []
    for who, o in opts:
        if o.get("type", "") not in SELINUX_TYPES:
            out.append(f"{who} SELinux type {o['type']} is not allowed")
        out += [f"{who} sets SELinux {f}" for f in ("user", "role") if o.get(f)]
    return out


def proc_mount(spec: Spec, meta: Mapping[str, Any]) -> list[str]:
    return [
        f"container {_cname(c)} procMount {_sc(c)['procMount']}"
        for c in containers(spec)
        if _sc(c).get("procMount", "Default") != "Default"
    ]


def seccomp_baseline(spec: Spec, meta: Mapping[str, Any]) -> list[str]:
    profiles = [("pod", (spec.get("securityContext") or {}).get("seccompProfile"))]
    profiles += [(f"container {_cname(c)}", _sc(c).get("seccompProfile")) for c in containers(spec)]
    return [f"{who} seccomp profile is Unconfined" for who, p in profiles if p and p.get("type") == "Unconfined"]


def sysctls(spec: Spec, meta: Mapping[str, Any]) -> list[str]:
    return [
        f"sysctl {s.get('name')} is not in the safe set"
        for s in (spec.get("securityContext") or {}).get("sysctls") or []
        if s.get("name") not in SAFE_SYSCTLS
    ]


def volume_types(spec: Spec, meta: Mapping[str, Any]) -> list[str]:
    out = []
    for v in spec.get("volumes") or []:
        types = set(v) - {"name"}
        if not types <= RESTRICTED_VOLUMES:
            out.append(f"volume {v.get('name')} has type {sorted(types - RESTRICTED_VOLUMES)}")
    return out


def privilege_escalation(spec: Spec, meta: Mapping[str, Any]) -> list[str]:
    return [
        f"container {_cname(c)} does not set allowPrivilegeEscalation: false"
        for c in containers(spec)
        if _sc(c).get("allowPrivilegeEscalation") is not False
    ]


def run_as_non_root(spec: Spec, meta: Mapping[str, Any]) -> list[str]:
    pod = (spec.get("securityContext") or {}).get("runAsNonRoot")
    out = []
    for c in containers(spec):
        value = _sc(c).get("runAsNonRoot", pod)
        if value is not True:
            out.append(f"container {_cname(c)} is not runAsNonRoot (neither it nor the pod sets true)")
    if pod is False:
        out.append("pod sets runAsNonRoot: false")
    return out


def run_as_user(spec: Spec, meta: Mapping[str, Any]) -> list[str]:
    out = []
    if (spec.get("securityContext") or {}).get("runAsUser") == 0:
        out.append("pod runAsUser is 0")
    out += [f"container {_cname(c)} runAsUser is 0" for c in containers(spec) if _sc(c).get("runAsUser") == 0]
    return out


def seccomp_restricted(spec: Spec, meta: Mapping[str, Any]) -> list[str]:
    pod = (spec.get("securityContext") or {}).get("seccompProfile")
    out = []
    for c in containers(spec):
        p = _sc(c).get("seccompProfile", pod)
        if not p or p.get("type") not in ("RuntimeDefault", "Localhost"):
            out.append(f"container {_cname(c)} has no RuntimeDefault/Localhost seccomp profile (nor the pod)")
    return out


def capabilities_restricted(spec: Spec, meta: Mapping[str, Any]) -> list[str]:
    out = []
    for c in containers(spec):
        caps = _sc(c).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"container {_cname(c)} does not drop ALL capabilities")
        out += [f"container {_cname(c)} adds {cap}" for cap in caps.get("add") or [] if cap != "NET_BIND_SERVICE"]
    return out


BASELINE: dict[str, Check] = {
    "hostNamespaces": host_namespaces,
    "privileged": privileged,
    "hostProcess": host_process,
    "capabilities": capabilities_baseline,
    "hostPathVolumes": host_path,
    "hostPorts": host_ports,
    "appArmor": apparmor,
    "seLinux": selinux,
    "procMount": proc_mount,
    "seccomp": seccomp_baseline,
    "sysctls": sysctls,
}
RESTRICTED: dict[str, Check] = {
    "volumeTypes": volume_types,
    "allowPrivilegeEscalation": privilege_escalation,
    "runAsNonRoot": run_as_non_root,
    "runAsUser": run_as_user,
    "seccompProfile": seccomp_restricted,
    "capabilitiesRestricted": capabilities_restricted,
}
CHECKS: dict[str, Check] = {
    **{f"baseline:{k}": v for k, v in BASELINE.items()},
    **{f"restricted:{k}": v for k, v in RESTRICTED.items()},
}


def check(objects: Iterable[Obj], checks: Iterable[str] | None = None) -> list[Finding]:
    """Findings of the restricted profile on every pod template of ``objects``."""
    wanted = list(checks) if checks is not None else list(CHECKS)
    found = []
    for o in objects:
        template = pod_template(o)
        if template is None:
            continue
        for check_name in wanted:
            for problem in CHECKS[check_name](template["spec"], template["metadata"]):
                found.append(Finding(TOOL, check_name, kind(o), name(o), problem))
    return sorted(set(found))
