"""Server-side dry-run apply of every built-in object of every eafix-trading and eafix-infra profile
into a namespace that enforces the restricted Pod Security profile: the API server (its validation
and admission) accepts all of them. PodSecurity only warns on workloads and enforces on Pods, so
every workload's pod template is also dry-run created as a Pod. Custom resources are left out,
named, when the cluster has no CRD for them. eafix-apps renders nothing but Argo CD Applications and
AppProjects: they are applied after installing Argo CD's own CRDs, from the release
tools/argo-cd-crds pins."""

from __future__ import annotations

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from conftest_profiles import APPS_PROFILES, INFRA_PROFILES, PROFILES, rendered
from control_plane import go_module_dir
from kube import api_client, dynamic_client, restricted_namespace, wait_for

DRY_RUN_PROFILES = PROFILES + INFRA_PROFILES


@pytest.fixture(scope="module")
def namespace(cluster) -> str:
    return restricted_namespace(cluster, "eafix-dry-run")


def _pod_templates(obj: dict) -> list[dict]:
    """The pod template(s) of a workload ({metadata, spec}); a bare Pod is itself."""
    spec = obj.get("spec") or {}
    if obj["kind"] == "Pod":
        return [{"metadata": obj["metadata"], "spec": spec}]
    if obj["kind"] == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]]
    template = spec.get("template") if isinstance(spec, dict) else None
    return [template] if isinstance(template, dict) and "spec" in template else []


def _priority_classes(client, objects: list[dict]) -> None:
    """The PriorityClasses the pods name are a cluster prerequisite (not the chart's): stand them up."""
    resource = client.resources.get(api_version="scheduling.k8s.io/v1", kind="PriorityClass")
    for name in {t["spec"].get("priorityClassName") for o in objects for t in _pod_templates(o)} - {None, ""}:
        resource.server_side_apply(body={"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                         "metadata": {"name": name}, "value": 1000000},
                                   name=name, field_manager="eafix-test", force_conflicts=True)


def _template_pods_refused(core: k8s.CoreV1Api, obj: dict, namespace: str) -> list[str]:
    """Dry-run create each of a workload's pod templates as a Pod (what PodSecurity enforces on)."""
    if obj["kind"] == "Pod":
        return []  # applied as itself
    refused = []
    for template in _pod_templates(obj):
        pod = {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"],
               "metadata": {"name": f"{obj['metadata']['name']}-template"[:63],
                            "labels": (template.get("metadata") or {}).get("labels") or {}}}
        try:
            core.create_namespaced_pod(namespace, pod, dry_run="All")
        except k8s.ApiException as exc:
            refused.append(f"{obj['kind']}/{obj['metadata']['name']} pod template: {exc.status} {exc.body}")
    return refused


@pytest.mark.parametrize("profile", DRY_RUN_PROFILES, ids=[p.id for p in DRY_RUN_PROFILES])
def test_every_builtin_object_is_admitted(cluster, namespace, profile):
    client = dynamic_client(cluster)
    core = k8s.CoreV1Api(api_client(cluster))
    refused, without_crd, applied, pods = [], set(), 0, 0
    # ServiceAccounts for real first: a dry-run creates nothing, and a Pod naming an absent account is refused
    objects = sorted(rendered(profile), key=lambda o: o["kind"] != "ServiceAccount")
    _priority_classes(client, objects)
    for obj in objects:
        try:
            resource = client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        except ResourceNotFoundError:
            without_crd.add(f"{obj['apiVersion']}/{obj['kind']}")
            continue
        if obj["kind"] == "Namespace":
            continue  # the test's own namespace stands in for it
        body = {**obj, "metadata": {**obj["metadata"], "namespace": namespace} if resource.namespaced
                else obj["metadata"]}
        try:
            resource.server_side_apply(body=body, name=obj["metadata"]["name"],
                                       namespace=namespace if resource.namespaced else None,
                                       field_manager="eafix-test", force_conflicts=True,
                                       dry_run=None if obj["kind"] == "ServiceAccount" else "All")
            applied += 1
        except Exception as exc:  # the API server's refusal, with its message
            refused.append(f"{obj['kind']}/{obj['metadata']['name']}: {getattr(exc, 'body', exc)}")
        template_refusals = _template_pods_refused(core, obj, namespace)
        refused += template_refusals
        pods += len(_pod_templates(obj)) if obj["kind"] != "Pod" and not template_refusals else 0
    assert not refused, "\n".join(refused)
    assert applied > 0
    if any(_pod_templates(o) for o in objects):
        assert pods > 0  # the workloads' templates really went through Pod admission
    if without_crd:
        print(f"\n{profile.id}: no CRD here for {sorted(without_crd)} (checked by tests/chart against their schemas)")


def test_a_pod_template_breaking_restricted_is_refused(cluster, namespace):
    """The pod-template check bites: a Deployment whose template runs as root is accepted as a
    Deployment (PodSecurity only warns there) but its template is refused as a Pod."""
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "runs-as-root"},
                  "spec": {"selector": {"matchLabels": {"app": "root"}},
                           "template": {"metadata": {"labels": {"app": "root"}},
                                        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    resource = dynamic_client(cluster).resources.get(api_version="apps/v1", kind="Deployment")
    resource.server_side_apply(body={**deployment, "metadata": {"name": "runs-as-root", "namespace": namespace}},
                               name="runs-as-root", namespace=namespace, field_manager="eafix-test",
                               dry_run="All")
    (refusal,) = _template_pods_refused(k8s.CoreV1Api(api_client(cluster)), deployment, namespace)
    assert "403" in refusal and "violates PodSecurity" in refusal and "restricted" in refusal


ARGO_CD_CRDS = ("application-crd.yaml", "appproject-crd.yaml")


@pytest.fixture(scope="module")
def argo_cd(cluster) -> None:
    """Argo CD's Application and AppProject CRDs, as its release ships them, established in the cluster,
    and its namespace (where eafix-apps puts Applications and AppProjects by default)."""
    k8s.CoreV1Api(api_client(cluster)).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name="argocd")))
    crds = go_module_dir("argo-cd-crds", "github.com/argoproj/argo-cd/v3") / "manifests" / "crds"
    client = dynamic_client(cluster)
    resource = client.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    names = []
    for name in ARGO_CD_CRDS:
        crd = yaml.safe_load((crds / name).read_text())
        resource.server_side_apply(body=crd, name=crd["metadata"]["name"], field_manager="eafix-test",
                                   force_conflicts=True)
        names.append(crd["metadata"]["name"])
    wait_for(f"Argo CD CRDs {names} to be Established", lambda: all(
        any(c["type"] == "Established" and c["status"] == "True"
            for c in (resource.get(name=n).to_dict().get("status") or {}).get("conditions") or []) for n in names))
    client.resources.invalidate_cache()


@pytest.mark.parametrize("profile", APPS_PROFILES, ids=[p.id for p in APPS_PROFILES])
def test_argo_cd_applications_are_admitted(cluster, argo_cd, namespace, profile):
    client = dynamic_client(cluster)
    objects = rendered(profile)
    kinds = {(o["apiVersion"], o["kind"]) for o in objects}
    assert kinds <= {("argoproj.io/v1alpha1", "Application"), ("argoproj.io/v1alpha1", "AppProject")}, kinds
    assert ("argoproj.io/v1alpha1", "Application") in kinds, kinds
    for obj in objects:
        resource = client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        applied = resource.server_side_apply(body=obj, name=obj["metadata"]["name"],
                                             namespace=obj["metadata"].get("namespace", namespace),
                                             field_manager="eafix-test", force_conflicts=True, dry_run="All")
        # the CRD's structural schema prunes unknown fields: what we render must survive it whole
        assert applied.to_dict()["spec"] == obj["spec"], f"{obj['kind']}/{obj['metadata']['name']} was pruned"


def test_argo_cd_crds_refuse_an_application_without_a_destination(cluster, argo_cd, namespace):
    """The installed CRDs' schemas bite: an Application missing its required destination is refused."""
    resource = dynamic_client(cluster).resources.get(api_version="argoproj.io/v1alpha1", kind="Application")
    body = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "no-destination", "namespace": namespace},
            "spec": {"project": "default", "source": {"repoURL": "https://example.invalid/x.git", "path": "."}}}
    with pytest.raises(Exception) as refused:
        resource.server_side_apply(body=body, name="no-destination", namespace=namespace,
                                   field_manager="eafix-test", dry_run="All")
    assert "destination" in str(getattr(refused.value, "body", refused.value))
