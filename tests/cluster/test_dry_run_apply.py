"""Server-side dry-run apply of every built-in object of every eafix-trading profile into a namespace
that enforces the restricted Pod Security profile: the API server (its validation and admission,
PodSecurity included) accepts all of them. Custom resources are left out, named, when the cluster
has no CRD for them."""

from __future__ import annotations

import pytest
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from conftest_profiles import PROFILES, rendered
from kube import dynamic_client, restricted_namespace


@pytest.fixture(scope="module")
def namespace(cluster) -> str:
    return restricted_namespace(cluster, "eafix-dry-run")


def _pod_specs(obj: dict) -> list[dict]:
    spec = obj.get("spec") or {}
    if obj["kind"] == "Pod":
        return [spec]
    if obj["kind"] == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    template = spec.get("template") if isinstance(spec, dict) else None
    return [template["spec"]] if isinstance(template, dict) and "spec" in template else []


def _priority_classes(client, objects: list[dict]) -> None:
    """The PriorityClasses the pods name are a cluster prerequisite (not the chart's): stand them up."""
    resource = client.resources.get(api_version="scheduling.k8s.io/v1", kind="PriorityClass")
    for name in {s.get("priorityClassName") for o in objects for s in _pod_specs(o)} - {None}:
        resource.server_side_apply(body={"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                         "metadata": {"name": name}, "value": 1000000},
                                   name=name, field_manager="eafix-test", force_conflicts=True)


@pytest.mark.parametrize("profile", PROFILES, ids=[p.id for p in PROFILES])
def test_every_builtin_object_is_admitted(cluster, namespace, profile):
    client = dynamic_client(cluster)
    refused, without_crd, applied = [], set(), 0
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
    assert not refused, "\n".join(refused)
    assert applied > 0
    if without_crd:
        print(f"\n{profile.id}: no CRD here for {sorted(without_crd)} (checked by tests/chart against their schemas)")
