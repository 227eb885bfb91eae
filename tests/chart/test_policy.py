"""Policy gate on the rendered charts: kube-linter and Polaris rules (re-implemented in
`eafix.platform.policy`) on every profile, checkov on the prod profile, the exemption
annotations against docs/policy-exceptions.md, and negative controls proving that every rule
implementation fires on a broken object."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from conftest import PROFILE_IDS, render_profile
from eafix.platform.policy import checkov, exemptions, format_table, k8s_validate, kube_linter, polaris
from eafix.platform.profiles import REPO

PROD = "eafix-trading:env-prod"
EXCEPTIONS_DOC = REPO / "docs" / "policy-exceptions.md"


# --- the charts: zero findings -------------------------------------------------------------------

def test_kube_linter_finds_nothing(profile_render):
    findings = kube_linter.lint(profile_render.objects)
    assert not findings, "kube-linter findings:\n" + format_table(findings)


def test_polaris_finds_nothing(profile_render):
    findings = polaris.audit(profile_render.objects)
    assert not findings, "Polaris findings:\n" + format_table(findings)


# FairwindsOps/polaris pkg/config/default.yaml (the newer name of the PDB/HPA check is an alias)
POLARIS_DEFAULTS = {
    "deploymentMissingReplicas", "priorityClassNotSet", "tagNotSpecified", "pullPolicyNotAlways",
    "readinessProbeMissing", "livenessProbeMissing", "metadataAndInstanceMismatched", "pdbDisruptionsIsZero",
    "missingPodDisruptionBudget", "topologySpreadConstraint", "hpaMaxAvailability", "hpaMinAvailability",
    "pdbMinAvailableGreaterThanHPAMinReplicas",
    "cpuRequestsMissing", "cpuLimitsMissing", "memoryRequestsMissing", "memoryLimitsMissing",
    "automountServiceAccountToken", "hostIPCSet", "hostPathSet", "hostProcess", "hostPIDSet", "linuxHardening",
    "missingNetworkPolicy", "notReadOnlyRootFilesystem", "privilegeEscalationAllowed", "procMount",
    "runAsRootAllowed", "runAsPrivileged", "dangerousCapabilities", "insecureCapabilities", "hostNetworkSet",
    "hostPortSet", "tlsSettingsMissing", "sensitiveContainerEnvVar", "sensitiveConfigmapContent",
    "clusterrolePodExecAttach", "rolePodExecAttach", "clusterrolebindingPodExecAttach",
    "rolebindingClusterRolePodExecAttach", "rolebindingRolePodExecAttach", "clusterrolebindingClusterAdmin",
    "rolebindingClusterAdminClusterRole", "rolebindingClusterAdminRole",
}


def test_the_rule_sets_are_complete():
    # kube-linter's 31 default checks and Polaris' default.yaml, nothing silently dropped
    assert len(kube_linter.DEFAULT_CHECKS) == 31
    assert set(kube_linter.OPT_IN_CHECKS) == {
        "no-liveness-probe", "no-readiness-probe", "default-service-account",
        "dangling-horizontalpodautoscaler", "dangling-servicemonitor"}
    assert set(polaris.CHECKS) == POLARIS_DEFAULTS
    assert {c.category for c in polaris.CHECKS.values()} == {"Reliability", "Efficiency", "Security"}


# --- checkov (its own virtualenv; one run over prod plus a broken canary) -------------------------

CANARY = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "canary", "namespace": "policy-canary"},
    "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "canary"}},
        "template": {"metadata": {"labels": {"app": "canary"}}, "spec": {
            "containers": [{"name": "c", "image": "nginx:latest",
                            "securityContext": {"privileged": True, "allowPrivilegeEscalation": True}}]}},
    },
}


@pytest.fixture(scope="module")
def checkov_run() -> checkov.CheckovReport | Exception:
    """checkov over the prod render with one broken Deployment appended (a different namespace)."""
    try:
        return checkov.run_checkov([*render_profile(PROD).objects, CANARY])
    except checkov.CheckovNotInstalled as exc:  # reported as a failure by each test, never a skip
        return exc


def _report(run: checkov.CheckovReport | Exception) -> checkov.CheckovReport:
    if isinstance(run, Exception):
        pytest.fail(str(run))
    return run


def test_checkov_prod_has_no_failed_checks(checkov_run):
    report = _report(checkov_run)
    prod = [f for f in report.failed if f.name != "canary"]
    assert not prod, "checkov failed checks on values/prod:\n" + format_table(prod)
    assert report.passed > 500 and report.resource_count > 50  # it really looked at the objects


def test_checkov_reports_failures(checkov_run):
    failed = {f.check for f in _report(checkov_run).failed if (f.kind, f.name) == ("Deployment", "canary")}
    # privileged, privilege escalation, latest tag, no probes, no read-only root fs
    assert {"CKV_K8S_16", "CKV_K8S_20", "CKV_K8S_14", "CKV_K8S_8", "CKV_K8S_9", "CKV_K8S_22"} <= failed


def test_checkov_honours_exactly_the_skip_annotations(checkov_run):
    skipped = {(s.check, s.kind, s.name, s.reason) for s in _report(checkov_run).skipped}
    annotated = {(e.check, e.kind, e.name, e.reason) for e in exemptions(render_profile(PROD).objects)
                 if e.tool == "checkov"}
    assert skipped == annotated and skipped


def test_missing_checkov_fails_with_make_tools(tmp_path, monkeypatch):
    monkeypatch.setenv(checkov.ENV_VAR, str(tmp_path / "nowhere" / "checkov"))
    with pytest.raises(checkov.CheckovNotInstalled, match="make tools"):
        checkov.find_checkov(tmp_path)
    binary = tmp_path / ".tools" / "checkov" / "bin" / "checkov"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert checkov.find_checkov(tmp_path) == binary  # the tool venv when the variable is stale
    monkeypatch.setenv(checkov.ENV_VAR, str(binary))
    assert checkov.find_checkov(tmp_path / "elsewhere") == binary  # the variable first


def test_checkov_report_parsing():
    doc = {"check_type": "kubernetes", "results": {
        "failed_checks": [{"check_id": "CKV_K8S_22", "check_name": "Use read-only filesystem",
                           "resource": "Deployment.shop.web.v2"}],
        "skipped_checks": [{"check_id": "CKV_K8S_15", "resource": "Pod.shop.t",
                            "check_result": {"result": "SKIPPED", "suppress_comment": "pinned"}}]},
        "summary": {"passed": 3, "failed": 1, "skipped": 1, "resource_count": 2, "checkov_version": "3.3.30"}}
    report = checkov.parse_report(checkov._load_json("log line\n" + json.dumps(doc)))
    assert report.failed == [checkov.Finding("checkov", "CKV_K8S_22", "Deployment", "web.v2",
                                             "Use read-only filesystem")]
    assert report.skipped == [checkov.Skip("CKV_K8S_15", "Pod", "t", "pinned")]
    assert (report.passed, report.resource_count, report.version) == (3, 2, "3.3.30")


def test_checkov_results_map_back_to_the_source_document():
    # graph checks name a Pod checkov derives from a Deployment's template; the lines are the Deployment's
    stream = "kind: ConfigMap\nmetadata: {name: cfg}\n---\nkind: Deployment\nmetadata:\n  name: web\n---\n"
    locate = checkov.document_locator(stream)
    assert locate({"resource": "Pod.shop.web.app-web", "file_line_range": [4, 7]}) == ("Deployment", "web")
    assert locate({"resource": "ConfigMap.shop.cfg", "file_line_range": [1, 3]}) == ("ConfigMap", "cfg")


# --- exemptions are documented -------------------------------------------------------------------

def _doc_rows() -> dict[tuple[str, str], dict[str, str]]:
    text = EXCEPTIONS_DOC.read_text()
    section = text.split("## Current exceptions", 1)[1]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] in ("Check", "") or set(cells[0]) <= {"-"}:
            continue
        check, tool, objects, when, why = cells
        rows[(tool, check.strip("`"))] = {"objects": objects, "when": when, "why": why}
    return rows


def test_every_exemption_is_documented_with_its_reason():
    rows = _doc_rows()
    seen: dict[tuple[str, str], set[str]] = {}
    for profile_id in PROFILE_IDS:
        for e in exemptions(render_profile(profile_id).objects):
            seen.setdefault((e.tool, e.check), set()).add(e.kind)
            if e.tool in ("checkov", "kube-linter"):
                assert e.reason, f"{profile_id}: {e.kind} {e.name} skips {e.check} without a reason"
    undocumented = sorted(set(seen) - set(rows))
    stale = sorted(set(rows) - set(seen))
    assert not undocumented, f"add these to {EXCEPTIONS_DOC.name}: {undocumented}"
    assert not stale, f"no profile renders these any more; remove them from {EXCEPTIONS_DOC.name}: {stale}"
    for key, kinds in seen.items():
        row = rows[key]
        assert row["why"] and row["when"], key
        for k in kinds:
            assert k in row["objects"], f"{key}: the Objects cell must name the {k}s that carry it"


# --- negative controls: every rule can fail ------------------------------------------------------

NS = "shop"
LABELS = {"app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "web"}
POD = "deploy.spec.template.spec"
C0 = POD + ".containers.0"
DIGEST = "sha256:" + "a" * 64


def _meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NS, "labels": dict(LABELS), **extra}


def golden() -> dict[str, dict[str, Any]]:
    """A small release that passes every implemented rule; each case below breaks one thing."""
    container = {
        "name": "web", "image": f"registry.example/shop/web:1.2.3@{DIGEST}", "imagePullPolicy": "Always",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": "LOG_LEVEL", "value": "INFO"},
                {"name": "API_SECRET", "valueFrom": {"secretKeyRef": {"name": "web", "key": "api"}}}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
        "startupProbe": {"tcpSocket": {"port": 8080}},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": True,
            "runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    pod_spec = {
        "serviceAccountName": "web", "automountServiceAccountToken": False, "priorityClassName": "business",
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                               "labelSelector": {"matchLabels": dict(LABELS)}}}]}},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                       "whenUnsatisfiable": "ScheduleAnyway",
                                       "labelSelector": {"matchLabels": dict(LABELS)}}],
        "containers": [container], "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    rules_read = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    return {
        "deploy": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta("web"), "spec": {
            "replicas": 2, "selector": {"matchLabels": dict(LABELS)},
            "template": {"metadata": {"labels": dict(LABELS)}, "spec": pod_spec}}},
        "sa": {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("web"),
               "automountServiceAccountToken": False},
        "svc": {"apiVersion": "v1", "kind": "Service", "metadata": _meta("web"), "spec": {
            "selector": dict(LABELS), "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
        "pdb": {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta("web"), "spec": {
            "maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow",
            "selector": {"matchLabels": dict(LABELS)}}},
        "hpa": {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": _meta("web"),
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                         "minReplicas": 2, "maxReplicas": 4}},
        "netpol": {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta("web"),
                   "spec": {"podSelector": {"matchLabels": dict(LABELS)}, "policyTypes": ["Ingress", "Egress"],
                            "ingress": [{"from": [{"podSelector": {}}]}],
                            "egress": [{"to": [{"namespaceSelector": {}}]}]}},
        "cm": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("web-config"),
               "data": {"LOG_LEVEL": "INFO"}},
        "sm": {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": _meta("web"),
               "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
                        "namespaceSelector": {"matchNames": [NS]}, "endpoints": [{"port": "http"}]}},
        "role": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _meta("reader"),
                 "rules": rules_read},
        "rb": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": _meta("reader"),
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
               "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": NS}]},
    }


Mutation = Callable[[dict[str, dict[str, Any]]], None]


def _split(p: str | list[str]) -> list[str]:
    return p if isinstance(p, list) else p.split(".")


def _parent(objs: dict[str, Any], p: str | list[str]) -> tuple[Any, str | int]:
    *head, last = _split(p)
    cur: Any = objs
    for part in head:
        cur = cur[int(part)] if isinstance(cur, list) else cur.setdefault(part, {})
    return cur, (int(last) if isinstance(cur, list) else last)


def put(p: str | list[str], value: Any) -> Mutation:
    def m(objs):
        parent, key = _parent(objs, p)
        parent[key] = copy.deepcopy(value)
    return m


def drop(p: str | list[str]) -> Mutation:
    def m(objs):
        parent, key = _parent(objs, p)
        del parent[key]
    return m


def append(p: str, item: Any) -> Mutation:
    def m(objs):
        parent, key = _parent(objs, p)
        parent.setdefault(key, []).append(copy.deepcopy(item))
    return m


def chain(*mutations: Mutation) -> Mutation:
    def m(objs):
        for mutation in mutations:
            mutation(objs)
    return m


def workload(kind: str, name: str, **spec: Any) -> dict[str, Any]:
    """A Job or CronJob running the golden pod template."""
    template = copy.deepcopy(golden()["deploy"]["spec"]["template"])
    job_spec = {"template": template, **spec}
    body = job_spec if kind == "Job" else {"schedule": "0 * * * *", "jobTemplate": {"spec": job_spec}}
    return {"apiVersion": "batch/v1", "kind": kind, "metadata": _meta(name), "spec": body}


def rbac(kind: str, name: str, rules: list | None = None, ref: tuple[str, str] | None = None) -> dict[str, Any]:
    meta = _meta(name) if kind in ("Role", "RoleBinding") else {"name": name}
    obj = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta}
    if rules is not None:
        obj["rules"] = rules
    if ref:
        obj["roleRef"] = {"apiGroup": "rbac.authorization.k8s.io", "kind": ref[0], "name": ref[1]}
        obj["subjects"] = [{"kind": "ServiceAccount", "name": "web", "namespace": NS}]
    return obj


EXEC = [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}]
EVERYTHING = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
HOST = {"name": "host", "hostPath": {"path": "/etc"}}
MOUNT_HOST = {"name": "host", "mountPath": "/host"}
DEPLOY = ("Deployment", "web")

# (tool, check, (kind, name) the finding is about, mutation of the golden objects)
CASES: list[tuple[str, str, tuple[str, str], Mutation]] = [
    # kube-linter: the 31 default checks
    ("kube-linter", "dangling-service", ("Service", "web"), put("svc.spec.selector", {"app": "nothing"})),
    ("kube-linter", "deprecated-service-account-field", DEPLOY, put(POD + ".serviceAccount", "web")),
    ("kube-linter", "docker-sock", DEPLOY, chain(
        append(POD + ".volumes", {"name": "host", "hostPath": {"path": "/var/run/docker.sock"}}),
        append(C0 + ".volumeMounts", MOUNT_HOST))),
    ("kube-linter", "drop-net-raw-capability", DEPLOY, put(C0 + ".securityContext.capabilities.drop", ["CHOWN"])),
    ("kube-linter", "drop-net-raw-capability", DEPLOY, put(C0 + ".securityContext.capabilities.add", ["NET_RAW"])),
    ("kube-linter", "duplicate-env-var", DEPLOY, append(C0 + ".env", {"name": "LOG_LEVEL", "value": "DEBUG"})),
    ("kube-linter", "env-var-secret", DEPLOY, append(C0 + ".env", {"name": "SECRET_TOKEN", "value": "hunter2"})),
    ("kube-linter", "host-ipc", DEPLOY, put(POD + ".hostIPC", True)),
    ("kube-linter", "host-network", DEPLOY, put(POD + ".hostNetwork", True)),
    ("kube-linter", "host-pid", DEPLOY, put(POD + ".hostPID", True)),
    ("kube-linter", "invalid-target-ports", ("Service", "web"), put("svc.spec.ports.0.targetPort", "HTTP_port")),
    ("kube-linter", "invalid-target-ports", DEPLOY, put(C0 + ".ports.0.name", "much-too-long-name")),
    ("kube-linter", "job-ttl-seconds-after-finished", ("Job", "migrate"),
     lambda objs: objs.update(job=workload("Job", "migrate"))),
    ("kube-linter", "job-ttl-seconds-after-finished", ("CronJob", "purge"),
     lambda objs: objs.update(job=workload("CronJob", "purge", ttlSecondsAfterFinished=60))),
    ("kube-linter", "latest-tag", DEPLOY, put(C0 + ".image", "registry.example/shop/web:latest")),
    ("kube-linter", "latest-tag", DEPLOY, put(C0 + ".image", "registry.example:5000/shop/web")),
    ("kube-linter", "liveness-port", DEPLOY, put(C0 + ".livenessProbe.httpGet.port", "metrics")),
    ("kube-linter", "readiness-port", DEPLOY, put(C0 + ".readinessProbe.httpGet.port", 9090)),
    ("kube-linter", "startup-port", DEPLOY, put(C0 + ".startupProbe.tcpSocket.port", 9999)),
    ("kube-linter", "mismatching-selector", DEPLOY, put("deploy.spec.selector.matchLabels", {"app": "other"})),
    ("kube-linter", "no-anti-affinity", DEPLOY, drop(POD + ".affinity")),
    ("kube-linter", "no-anti-affinity", DEPLOY, put(
        POD + ".affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution.0.podAffinityTerm"
        ".topologyKey", "topology.kubernetes.io/zone")),
    ("kube-linter", "no-extensions-v1beta", DEPLOY, put("deploy.apiVersion", "extensions/v1beta1")),
    ("kube-linter", "no-read-only-root-fs", DEPLOY, put(C0 + ".securityContext.readOnlyRootFilesystem", False)),
    ("kube-linter", "non-existent-service-account", DEPLOY, put(POD + ".serviceAccountName", "ghost")),
    ("kube-linter", "pdb-max-unavailable", ("PodDisruptionBudget", "web"), put("pdb.spec.maxUnavailable", 0)),
    ("kube-linter", "pdb-min-available", ("PodDisruptionBudget", "web"),
     chain(drop("pdb.spec.maxUnavailable"), put("pdb.spec.minAvailable", 2))),
    ("kube-linter", "pdb-min-available", ("PodDisruptionBudget", "web"),
     chain(drop("pdb.spec.maxUnavailable"), put("pdb.spec.minAvailable", "100%"))),
    ("kube-linter", "pdb-unhealthy-pod-eviction-policy", ("PodDisruptionBudget", "web"),
     drop("pdb.spec.unhealthyPodEvictionPolicy")),
    ("kube-linter", "privilege-escalation-container", DEPLOY,
     put(C0 + ".securityContext.allowPrivilegeEscalation", True)),
    ("kube-linter", "privileged-container", DEPLOY, put(C0 + ".securityContext.privileged", True)),
    ("kube-linter", "run-as-non-root", DEPLOY, put(C0 + ".securityContext.runAsUser", 0)),
    ("kube-linter", "run-as-non-root", DEPLOY, chain(
        put(C0 + ".securityContext.runAsNonRoot", False), put(POD + ".securityContext.runAsNonRoot", False),
        drop(C0 + ".securityContext.runAsUser"), drop(POD + ".securityContext.runAsUser"))),
    ("kube-linter", "sensitive-host-mounts", DEPLOY,
     chain(append(POD + ".volumes", HOST), append(C0 + ".volumeMounts", MOUNT_HOST))),
    ("kube-linter", "ssh-port", DEPLOY, append(C0 + ".ports", {"name": "ssh", "containerPort": 22})),
    ("kube-linter", "unsafe-sysctls", DEPLOY,
     put(POD + ".securityContext.sysctls", [{"name": "net.ipv4.ip_forward", "value": "1"}])),
    ("kube-linter", "unset-cpu-requirements", DEPLOY, drop(C0 + ".resources.requests.cpu")),
    ("kube-linter", "unset-memory-requirements", DEPLOY, drop(C0 + ".resources.limits.memory")),
    # kube-linter: opt-in checks
    ("kube-linter", "no-liveness-probe", DEPLOY, drop(C0 + ".livenessProbe")),
    ("kube-linter", "no-readiness-probe", DEPLOY, drop(C0 + ".readinessProbe")),
    ("kube-linter", "default-service-account", DEPLOY, drop(POD + ".serviceAccountName")),
    ("kube-linter", "dangling-horizontalpodautoscaler", ("HorizontalPodAutoscaler", "web"),
     put("hpa.spec.scaleTargetRef.name", "ghost")),
    ("kube-linter", "dangling-servicemonitor", ("ServiceMonitor", "web"),
     put("sm.spec.selector.matchLabels", {"app": "ghost"})),
    # Polaris: reliability
    ("polaris", "deploymentMissingReplicas", DEPLOY, put("deploy.spec.replicas", 1)),
    ("polaris", "deploymentMissingReplicas", DEPLOY, drop("deploy.spec.replicas")),
    ("polaris", "priorityClassNotSet", DEPLOY, drop(POD + ".priorityClassName")),
    ("polaris", "tagNotSpecified", DEPLOY, put(C0 + ".image", "registry.example/shop/web")),
    ("polaris", "tagNotSpecified", DEPLOY, put(C0 + ".image", "registry.example/shop/web:latest")),
    ("polaris", "pullPolicyNotAlways", DEPLOY, put(C0 + ".imagePullPolicy", "IfNotPresent")),
    ("polaris", "readinessProbeMissing", DEPLOY, drop(C0 + ".readinessProbe")),
    ("polaris", "livenessProbeMissing", DEPLOY, drop(C0 + ".livenessProbe")),
    ("polaris", "metadataAndInstanceMismatched", DEPLOY,
     put(["deploy", "metadata", "labels", "app.kubernetes.io/instance"], "eafix")),
    ("polaris", "pdbDisruptionsIsZero", ("PodDisruptionBudget", "web"), put("pdb.spec.maxUnavailable", "0%")),
    ("polaris", "pdbDisruptionsIsZero", ("PodDisruptionBudget", "web"),
     chain(drop("pdb.spec.maxUnavailable"), put("pdb.spec.minAvailable", "100%"))),
    ("polaris", "missingPodDisruptionBudget", DEPLOY, lambda objs: objs.pop("pdb")),
    ("polaris", "missingPodDisruptionBudget", DEPLOY, put("pdb.spec.selector.matchLabels.tier", "db")),
    ("polaris", "topologySpreadConstraint", DEPLOY, drop(POD + ".topologySpreadConstraints")),
    ("polaris", "hpaMaxAvailability", ("HorizontalPodAutoscaler", "web"), put("hpa.spec.maxReplicas", 2)),
    ("polaris", "hpaMinAvailability", ("HorizontalPodAutoscaler", "web"), put("hpa.spec.minReplicas", 1)),
    ("polaris", "pdbMinAvailableGreaterThanHPAMinReplicas", DEPLOY,
     chain(drop("pdb.spec.maxUnavailable"), put("pdb.spec.minAvailable", 2))),
    # Polaris: efficiency
    ("polaris", "cpuRequestsMissing", DEPLOY, drop(C0 + ".resources.requests.cpu")),
    ("polaris", "cpuLimitsMissing", DEPLOY, drop(C0 + ".resources.limits.cpu")),
    ("polaris", "memoryRequestsMissing", DEPLOY, drop(C0 + ".resources.requests.memory")),
    ("polaris", "memoryLimitsMissing", DEPLOY, drop(C0 + ".resources.limits.memory")),
    # Polaris: security
    ("polaris", "automountServiceAccountToken", DEPLOY, put(POD + ".automountServiceAccountToken", True)),
    ("polaris", "automountServiceAccountToken", DEPLOY,
     chain(drop(POD + ".automountServiceAccountToken"), drop("sa.automountServiceAccountToken"))),
    ("polaris", "hostIPCSet", DEPLOY, put(POD + ".hostIPC", True)),
    ("polaris", "hostPIDSet", DEPLOY, put(POD + ".hostPID", True)),
    ("polaris", "hostNetworkSet", DEPLOY, put(POD + ".hostNetwork", True)),
    ("polaris", "hostPathSet", DEPLOY, append(POD + ".volumes", HOST)),
    ("polaris", "hostPortSet", DEPLOY, put(C0 + ".ports.0.hostPort", 8080)),
    ("polaris", "hostProcess", DEPLOY, put(C0 + ".securityContext.windowsOptions", {"hostProcess": True})),
    ("polaris", "linuxHardening", DEPLOY, chain(
        drop(POD + ".securityContext.seccompProfile"), drop(C0 + ".securityContext.seccompProfile"),
        drop(C0 + ".securityContext.capabilities"))),
    ("polaris", "missingNetworkPolicy", DEPLOY, lambda objs: objs.pop("netpol")),
    ("polaris", "missingNetworkPolicy", DEPLOY, drop("netpol.spec.egress")),
    ("polaris", "notReadOnlyRootFilesystem", DEPLOY, put(C0 + ".securityContext.readOnlyRootFilesystem", False)),
    ("polaris", "privilegeEscalationAllowed", DEPLOY, drop(C0 + ".securityContext.allowPrivilegeEscalation")),
    ("polaris", "procMount", DEPLOY, put(C0 + ".securityContext.procMount", "Unmasked")),
    ("polaris", "runAsRootAllowed", DEPLOY, chain(
        put(C0 + ".securityContext.runAsNonRoot", False), put(POD + ".securityContext.runAsNonRoot", False),
        drop(C0 + ".securityContext.runAsUser"), drop(POD + ".securityContext.runAsUser"))),
    ("polaris", "runAsPrivileged", DEPLOY, put(C0 + ".securityContext.privileged", True)),
    ("polaris", "dangerousCapabilities", DEPLOY, put(C0 + ".securityContext.capabilities.add", ["SYS_ADMIN"])),
    ("polaris", "insecureCapabilities", DEPLOY, put(C0 + ".securityContext.capabilities.drop", ["NET_RAW"])),
    ("polaris", "tlsSettingsMissing", ("Ingress", "web"), lambda objs: objs.update(ing={
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": _meta("web"),
        "spec": {"rules": [{"host": "shop.example"}]}})),
    ("polaris", "sensitiveContainerEnvVar", DEPLOY, append(C0 + ".env", {"name": "DB_PASSWORD", "value": "x"})),
    ("polaris", "sensitiveConfigmapContent", ("ConfigMap", "web-config"), put("cm.data.API_TOKEN", "abc")),
    ("polaris", "clusterrolePodExecAttach", ("ClusterRole", "debugger"),
     lambda objs: objs.update(cr=rbac("ClusterRole", "debugger", EXEC))),
    ("polaris", "rolePodExecAttach", ("Role", "debugger"), lambda objs: objs.update(r=rbac("Role", "debugger", EXEC))),
    ("polaris", "clusterrolebindingPodExecAttach", ("ClusterRoleBinding", "debug"), lambda objs: objs.update(
        cr=rbac("ClusterRole", "debugger", EXEC),
        crb=rbac("ClusterRoleBinding", "debug", ref=("ClusterRole", "debugger")))),
    ("polaris", "rolebindingClusterRolePodExecAttach", ("RoleBinding", "debug"), lambda objs: objs.update(
        cr=rbac("ClusterRole", "debugger", EXEC), rb2=rbac("RoleBinding", "debug", ref=("ClusterRole", "debugger")))),
    ("polaris", "rolebindingRolePodExecAttach", ("RoleBinding", "debug"), lambda objs: objs.update(
        r=rbac("Role", "debugger", EXEC), rb2=rbac("RoleBinding", "debug", ref=("Role", "debugger")))),
    ("polaris", "clusterrolebindingClusterAdmin", ("ClusterRoleBinding", "ops"), lambda objs: objs.update(
        crb=rbac("ClusterRoleBinding", "ops", ref=("ClusterRole", "cluster-admin")))),
    ("polaris", "rolebindingClusterAdminClusterRole", ("RoleBinding", "ops"), lambda objs: objs.update(
        rb2=rbac("RoleBinding", "ops", ref=("ClusterRole", "cluster-admin")))),
    ("polaris", "rolebindingClusterAdminRole", ("RoleBinding", "ops"), lambda objs: objs.update(
        r=rbac("Role", "all", EVERYTHING), rb2=rbac("RoleBinding", "ops", ref=("Role", "all")))),
]

RUNNERS = {"kube-linter": kube_linter.lint, "polaris": polaris.audit}


def _case_id(case: tuple[str, str, tuple[str, str], Mutation]) -> str:
    return f"{case[0]}:{case[1]}"


def _broken(mutation: Mutation) -> list[dict[str, Any]]:
    objs = golden()
    mutation(objs)
    return list(objs.values())


def test_golden_objects_pass_every_rule():
    objects = list(golden().values())
    found = kube_linter.lint(objects) + polaris.audit(objects)
    found += k8s_validate.check(objects, [f"1.{minor}" for minor in range(29, 38)])
    assert not found, format_table(found)


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_rule_fires_on_a_broken_object(case):
    tool, check, (kind, name), mutation = case
    found = RUNNERS[tool](_broken(mutation), checks=[check])
    assert any((f.check, f.kind, f.name) == (check, kind, name) for f in found), \
        f"{tool} {check} did not flag {kind}/{name}; got:\n{format_table(found)}"


def test_every_rule_has_a_negative_case():
    covered = {(tool, check) for tool, check, _, _ in CASES}
    rules = {("kube-linter", c) for c in kube_linter.CHECKS} | {("polaris", c) for c in polaris.CHECKS}
    assert rules - covered == set()


def test_job_ttl_accepts_the_right_shapes():
    objects = [workload("Job", "migrate", ttlSecondsAfterFinished=600), workload("CronJob", "purge")]
    assert kube_linter.lint(objects, checks=["job-ttl-seconds-after-finished"]) == []


# --- exemption annotations: exactly the tools' own mechanisms ------------------------------------

READ_WRITE = put(C0 + ".securityContext.readOnlyRootFilesystem", False)
NO_RO_EXEMPT = "polaris.fairwinds.com/notReadOnlyRootFilesystem-exempt"
EXEMPTION_CASES = [
    # (tool, check, annotations on the Deployment, finding hidden?)
    ("kube-linter", "no-read-only-root-fs", {"ignore-check.kube-linter.io/no-read-only-root-fs": "scratch"}, True),
    ("kube-linter", "no-read-only-root-fs", {"kube-linter.io/ignore-all": "legacy"}, True),
    ("kube-linter", "no-read-only-root-fs", {"ignore-check.kube-linter.io/latest-tag": "other check"}, False),
    ("kube-linter", "no-read-only-root-fs", {"polaris.fairwinds.com/exempt": "true"}, False),
    ("polaris", "notReadOnlyRootFilesystem", {NO_RO_EXEMPT: "true"}, True),
    ("polaris", "notReadOnlyRootFilesystem", {"polaris.fairwinds.com/exempt": "True"}, True),
    ("polaris", "notReadOnlyRootFilesystem", {NO_RO_EXEMPT: "false"}, False),
    ("polaris", "notReadOnlyRootFilesystem", {"ignore-check.kube-linter.io/notReadOnlyRootFilesystem": "x"}, False),
    ("polaris", "notReadOnlyRootFilesystem", {"checkov.io/skip1": "CKV_K8S_22=scratch"}, False),
]


@pytest.mark.parametrize(("tool", "check", "ann", "hidden"), EXEMPTION_CASES,
                         ids=[f"{t}:{'hidden' if h else 'kept'}:{next(iter(a))}" for t, _, a, h in EXEMPTION_CASES])
def test_exemption_annotations(tool, check, ann, hidden):
    objs = golden()
    READ_WRITE(objs)
    objs["deploy"]["metadata"]["annotations"] = ann
    objs["deploy"]["spec"]["template"]["metadata"]["annotations"] = {}
    found = [f for f in RUNNERS[tool](list(objs.values())) if f.check == check]
    assert (not found) == hidden


def test_pod_template_annotations_do_not_exempt():
    objs = golden()
    READ_WRITE(objs)
    objs["deploy"]["spec"]["template"]["metadata"]["annotations"] = {
        "ignore-check.kube-linter.io/no-read-only-root-fs": "x",
        "polaris.fairwinds.com/notReadOnlyRootFilesystem-exempt": "true"}
    checks = {f.check for f in kube_linter.lint(list(objs.values())) + polaris.audit(list(objs.values()))}
    assert {"no-read-only-root-fs", "notReadOnlyRootFilesystem"} <= checks


def test_exemptions_are_read_from_all_three_annotation_styles():
    obj = golden()["deploy"]
    obj["metadata"]["annotations"] = {
        "checkov.io/skip1": "CKV_K8S_15=tags are immutable", "checkov.io/skip2": "CKV_K8S_43",
        "polaris.fairwinds.com/pullPolicyNotAlways-exempt": "true",
        "polaris.fairwinds.com/priorityClassNotSet-exempt": "false",
        "ignore-check.kube-linter.io/latest-tag": "pinned by digest", "owner": "shop-team"}
    assert [(e.tool, e.check, e.reason) for e in exemptions([obj])] == [
        ("checkov", "CKV_K8S_15", "tags are immutable"), ("checkov", "CKV_K8S_43", ""),
        ("kube-linter", "latest-tag", "pinned by digest"), ("polaris", "pullPolicyNotAlways", "")]


def test_format_table():
    assert format_table([]) == "no findings"
    table = format_table(polaris.audit(_broken(put(C0 + ".imagePullPolicy", "IfNotPresent"))))
    lines = table.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["TOOL", "CHECK", "KIND", "NAME", "MESSAGE"]
    assert re.split(r"\s{2,}", lines[1])[:4] == ["polaris", "pullPolicyNotAlways", "Deployment", "web"]
    assert lines[-1] == "1 finding(s)"


def test_run_all_combines_the_tools():
    from eafix.platform.policy import run_all
    objects = _broken(chain(put(C0 + ".securityContext.readOnlyRootFilesystem", False),
                            put("deploy.spec.bogusField", 1)))
    tools = {f.tool for f in run_all(objects, kubernetes_versions=["1.29"])}
    assert tools == {"kube-linter", "polaris", "kubernetes-validate"}
