"""Ingress of gui-gateway (clusters without Istio) and the cert-manager Certificates."""

from __future__ import annotations

import pytest

from conftest import render_profile
from eafix.platform.render import RenderError

STAGING = "eafix-trading:env-staging"
HOST = {"enabled": True, "host": "trading.example.com"}


def test_no_ingress_by_default(defaults):
    assert defaults.select(kind="Ingress") == [] and defaults.select(kind="Certificate") == []


def test_staging_ingress_has_tls_rate_limits_and_security_headers():
    r = render_profile(STAGING)
    ing = r.one("Ingress", "gui-gateway")
    spec, ann = ing["spec"], ing["metadata"]["annotations"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"hosts": ["staging.trading.eafix.com"], "secretName": "trading-eafix-tls"}]
    (rule,) = spec["rules"]
    assert rule["host"] == "staging.trading.eafix.com"
    assert rule["http"]["paths"] == [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "gui-gateway", "port": {"number": 8080}}}}
    ]
    assert ann["cert-manager.io/cluster-issuer"] == "letsencrypt-staging"
    assert (ann["nginx.ingress.kubernetes.io/limit-rps"], ann["nginx.ingress.kubernetes.io/limit-connections"]) == (
        "20",
        "20",
    )
    assert ann["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    assert not [k for k in ann if "snippet" in k]
    ns, name = ann["nginx.ingress.kubernetes.io/custom-headers"].split("/")
    headers = r.one("ConfigMap", name)["data"]
    assert ns == "eafix-trading"
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


def test_class_limits_and_headers_are_configurable(render_with):
    r = render_with(
        {
            "ingress": {
                **HOST,
                "className": "internal-nginx",
                "rateLimit": {"rps": 0, "connections": 0},
                "securityHeaders": {"enabled": False},
                "annotations": {"team": "x"},
            }
        }
    )
    ing = r.one("Ingress", "gui-gateway")
    ann = ing["metadata"]["annotations"]
    assert ing["spec"]["ingressClassName"] == "internal-nginx"
    assert not [k for k in ann if "limit-" in k or "custom-headers" in k] and ann["team"] == "x"
    assert r.select(kind="ConfigMap", name="eafix-response-headers") == []


def test_existing_tls_secret_without_cert_manager(render_with):
    r = render_with({"ingress": {**HOST, "tls": {"secretName": "my-cert"}}})
    ing = r.one("Ingress", "gui-gateway")
    assert ing["spec"]["tls"][0]["secretName"] == "my-cert"
    assert "cert-manager.io/cluster-issuer" not in ing["metadata"]["annotations"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ingress": {"enabled": True}}, "ingress.host: required"),
        (
            {
                "ingress": {
                    **HOST,
                    "annotations": {"nginx.ingress.kubernetes.io/configuration-snippet": "more_set_headers x;"},
                }
            },
            "configuration-snippet is refused",
        ),
        (
            {"ingress": {**HOST, "annotations": {"nginx.ingress.kubernetes.io/server-snippet": "x"}}},
            "server-snippet is refused",
        ),
    ],
)
def test_invalid_ingress_values_fail(render_with, values, message):
    with pytest.raises(RenderError, match=message):
        render_with(values)


def test_certificate_objects_per_front_door():
    r = render_profile("eafix-trading:ci-security")
    ing = r.one("Certificate", "eafix-ingress-tls")
    gw = r.one("Certificate", "eafix-gateway-tls")
    assert ing["metadata"]["namespace"] == "eafix-trading" and gw["metadata"]["namespace"] == "istio-system"
    assert ing["spec"]["secretName"] == "trading-eafix-tls" and ing["spec"]["dnsNames"] == [
        "trading-direct.example.internal"
    ]
    assert gw["spec"]["dnsNames"] == ["trading.example.internal"]
    spec = gw["spec"]
    assert spec["issuerRef"] == {"name": "letsencrypt-prod", "kind": "ClusterIssuer", "group": "cert-manager.io"}
    assert spec["privateKey"] == {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}
    assert (spec["duration"], spec["renewBefore"]) == ("2160h", "360h")
    # the Certificate issues the Secret, so the ingress-shim annotation stays off
    assert "cert-manager.io/cluster-issuer" not in r.one("Ingress", "eafix-gui-gateway")["metadata"]["annotations"]


def test_prod_issues_the_gateway_certificate_into_istio_system():
    prod = render_profile("eafix-trading:env-prod")
    (cert,) = prod.select(kind="Certificate")
    assert cert["metadata"]["namespace"] == "istio-system"
    assert cert["spec"]["secretName"] == prod.one("Gateway")["spec"]["servers"][0]["tls"]["credentialName"]
    assert prod.select(kind="Ingress") == []


def test_ingress_disappears_with_gui_gateway(render_with):
    r = render_with(
        {
            "ingress": HOST,
            "gui-gateway": {"enabled": False},
            "compliance-monitor": {"peers": []},
            "flows": {"gateway-to-services": None, "compliance-to-gateway": None},
        }
    )
    assert r.select(kind="Ingress") == []
