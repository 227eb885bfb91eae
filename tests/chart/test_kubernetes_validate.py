"""kubernetes-validate --strict on every built-in object of every profile, Kubernetes 1.29 ... 1.37."""

from __future__ import annotations

import copy

import pytest

from conftest import PROFILE_IDS, render_profile
from eafix.platform.policy import k8s_validate
from eafix.platform.policy.k8s_validate import INVALID, NOT_BUILTIN, VALID

VERSIONS = [f"1.{minor}" for minor in range(29, 38)]
# The custom resources (validated by eafix.platform.custom_resources: tests/chart/test_custom_resources.py).
CUSTOM_RESOURCES = {
    ("PeerAuthentication", "security.istio.io/v1"), ("AuthorizationPolicy", "security.istio.io/v1"),
    ("DestinationRule", "networking.istio.io/v1"), ("Gateway", "networking.istio.io/v1"),
    ("VirtualService", "networking.istio.io/v1"), ("Certificate", "cert-manager.io/v1"),
    ("ExternalSecret", "external-secrets.io/v1"), ("SealedSecret", "bitnami.com/v1alpha1"),
}

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "registry.example/web:1.0"}]}}},
}


def test_the_bundle_covers_the_versions():
    assert set(VERSIONS) <= set(k8s_validate.supported_versions())


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("profile_id", PROFILE_IDS)
def test_built_in_objects_are_valid(profile_id, version):
    results = k8s_validate.validate_objects(render_profile(profile_id).objects, version, strict=True)
    invalid = [f"{r.kind}/{r.name}: {r.message}" for r in results if r.status == INVALID]
    assert not invalid, f"Kubernetes {version}:\n" + "\n".join(invalid)
    assert sum(r.status == VALID for r in results) >= 20  # Deployments, Services, ... really validated


@pytest.mark.parametrize("profile_id", PROFILE_IDS)
def test_only_custom_resources_are_skipped(profile_id):
    results = k8s_validate.validate_objects(render_profile(profile_id).objects, VERSIONS[-1])
    skipped = {(r.kind, r.api_version) for r in results if r.status == NOT_BUILTIN}
    assert skipped <= {("ServiceMonitor", "monitoring.coreos.com/v1"), ("PrometheusRule", "monitoring.coreos.com/v1"),
                       *CUSTOM_RESOURCES}


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_field_is_rejected(version):
    good = copy.deepcopy(DEPLOYMENT)
    bad = copy.deepcopy(DEPLOYMENT)
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    ok, rejected = k8s_validate.validate_objects([good, bad], version, strict=True)
    assert ok.status == VALID
    assert rejected.status == INVALID
    assert "imagePullPolicyy" in rejected.message and "spec.template.spec.containers.0" in rejected.message


def test_strict_is_what_rejects_unknown_fields():
    bad = copy.deepcopy(DEPLOYMENT)
    bad["spec"]["surprise"] = True
    assert k8s_validate.validate_objects([bad], "1.37", strict=False)[0].status == VALID
    assert k8s_validate.validate_objects([bad], "1.37", strict=True)[0].status == INVALID


def test_wrong_types_and_removed_apis_are_invalid():
    wrong_type = copy.deepcopy(DEPLOYMENT)
    wrong_type["spec"]["replicas"] = "two"
    removed = {"apiVersion": "autoscaling/v2beta2", "kind": "HorizontalPodAutoscaler",
               "metadata": {"name": "web"}, "spec": {"maxReplicas": 3, "scaleTargetRef": {"kind": "Deployment",
                                                                                       "name": "web"}}}
    custom = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "web"}}
    results = k8s_validate.validate_objects([wrong_type, removed, custom], "1.29")
    assert [r.status for r in results] == [INVALID, INVALID, NOT_BUILTIN]
    assert "spec.replicas" in results[0].message
    assert "not served" in results[1].message
    findings = k8s_validate.check([wrong_type, custom], VERSIONS)
    assert {(f.check, f.kind, f.name) for f in findings} == {
        (f"schema-{v}-strict", "Deployment", "web") for v in VERSIONS}
