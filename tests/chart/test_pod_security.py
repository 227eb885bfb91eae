"""Pod Security Standard `restricted` on every pod template of every profile, the Namespace
object's PSS labels, and no RBAC objects."""

from __future__ import annotations

import copy

import pytest

from conftest import PROFILE_IDS, pod_templates, render_profile
from eafix.platform.policy import pod_security


@pytest.mark.parametrize("profile_id", PROFILE_IDS)
def test_every_pod_passes_the_restricted_profile(profile_id):
    r = render_profile(profile_id)
    assert len(pod_templates(r)) >= 6
    found = pod_security.check(r.objects)
    assert not found, "\n".join(f"{f.kind}/{f.name}: {f.check}: {f.message}" for f in found)


def test_the_checks_cover_the_standard():
    assert set(pod_security.BASELINE) == {
        "hostNamespaces",
        "privileged",
        "hostProcess",
        "capabilities",
        "hostPathVolumes",
        "hostPorts",
        "appArmor",
        "seLinux",
        "procMount",
        "seccomp",
        "sysctls",
    }
    assert set(pod_security.RESTRICTED) == {
        "volumeTypes",
        "allowPrivilegeEscalation",
        "runAsNonRoot",
        "runAsUser",
        "seccompProfile",
        "capabilitiesRestricted",
    }


def _pod():
    d = copy.deepcopy(render_profile("eafix-trading:defaults").one("Deployment", "reporter"))
    return d, d["spec"]["template"]["spec"], d["spec"]["template"]["spec"]["containers"][0]


def _sc(c):
    return c["securityContext"]


CASES = {
    "baseline:hostNamespaces": lambda d, s, c: s.__setitem__("hostNetwork", True),
    "baseline:privileged": lambda d, s, c: _sc(c).__setitem__("privileged", True),
    "baseline:hostProcess": lambda d, s, c: _sc(c).__setitem__("windowsOptions", {"hostProcess": True}),
    "baseline:capabilities": lambda d, s, c: _sc(c)["capabilities"].__setitem__("add", ["SYS_ADMIN"]),
    "baseline:hostPathVolumes": lambda d, s, c: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
    "baseline:hostPorts": lambda d, s, c: c["ports"][0].__setitem__("hostPort", 80),
    "baseline:appArmor": lambda d, s, c: _sc(c).__setitem__("appArmorProfile", {"type": "Unconfined"}),
    "baseline:seLinux": lambda d, s, c: _sc(c).__setitem__("seLinuxOptions", {"type": "spc_t"}),
    "baseline:procMount": lambda d, s, c: _sc(c).__setitem__("procMount", "Unmasked"),
    "baseline:seccomp": lambda d, s, c: _sc(c).__setitem__("seccompProfile", {"type": "Unconfined"}),
    "baseline:sysctls": lambda d, s, c: s["securityContext"].__setitem__(
        "sysctls", [{"name": "kernel.msgmax", "value": "1"}]
    ),
    "restricted:volumeTypes": lambda d, s, c: s["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}}),
    "restricted:allowPrivilegeEscalation": lambda d, s, c: _sc(c).pop("allowPrivilegeEscalation"),
    "restricted:runAsNonRoot": lambda d, s, c: (_sc(c).pop("runAsNonRoot"), s["securityContext"].pop("runAsNonRoot")),
    "restricted:runAsUser": lambda d, s, c: _sc(c).__setitem__("runAsUser", 0),
    "restricted:seccompProfile": lambda d, s, c: (
        _sc(c).pop("seccompProfile"),
        s["securityContext"].pop("seccompProfile"),
    ),
    "restricted:capabilitiesRestricted": lambda d, s, c: _sc(c).__setitem__("capabilities", {"drop": ["NET_RAW"]}),
}


def test_every_check_has_a_negative_case():
    assert set(CASES) == set(pod_security.CHECKS)


@pytest.mark.parametrize("check", sorted(CASES))
def test_each_check_fires(check):
    d, s, c = _pod()
    assert pod_security.check([d], [check]) == []
    CASES[check](d, s, c)
    assert [f.check for f in pod_security.check([d], [check])] == [check]


def test_init_containers_are_checked_and_the_pod_context_stands_in():
    d, s, c = _pod()
    s["initContainers"] = [{"name": "init", "image": "x", "securityContext": {"allowPrivilegeEscalation": True}}]
    checks = {f.check for f in pod_security.check([d])}
    assert {"restricted:allowPrivilegeEscalation", "restricted:capabilitiesRestricted"} <= checks
    assert "restricted:runAsNonRoot" not in checks  # the pod sets runAsNonRoot for every container


def test_no_namespace_object_by_default(defaults):
    assert defaults.select(kind="Namespace") == []


def test_namespace_object_carries_the_pod_security_labels():
    ns = render_profile("eafix-trading:ci-security").one("Namespace", "eafix-trading")
    labels = ns["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.29"
    assert labels["istio-injection"] == "enabled"
    assert ns["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert "namespace" not in ns["metadata"]


@pytest.mark.parametrize("profile_id", PROFILE_IDS)
def test_no_rbac_and_no_token(profile_id):
    r = render_profile(profile_id)
    assert not {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"} & set(r.kinds())
    for obj, spec in pod_templates(r):
        assert spec["automountServiceAccountToken"] is False, obj["metadata"]["name"]
    assert all(sa["automountServiceAccountToken"] is False for sa in r.select(kind="ServiceAccount"))
