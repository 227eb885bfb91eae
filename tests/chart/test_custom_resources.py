"""Custom resources of every profile of every chart against their operators' published schemas.

Layer 1 (operator-schema) is ci/crd-validate/validate.mjs with the pinned @kubernetes-models/*
packages; layer 2 (operator-rule) is what those schemas leave out (eafix.platform.custom_resources).
Without Node or `make crd-validate` these tests fail, they never skip.
"""

from __future__ import annotations

import copy
import subprocess

import pytest

from conftest import ALL_PROFILES, render_profile
from eafix.platform import custom_resources as cr

PROD = "eafix-trading:env-prod"
APPS_PROD = "eafix-apps:env-prod"
# The custom kinds the charts' templates can render (apiVersion from the templates and values schemas).
RENDERED_KINDS = {
    ("security.istio.io/v1", "PeerAuthentication"), ("security.istio.io/v1", "AuthorizationPolicy"),
    ("networking.istio.io/v1", "DestinationRule"), ("networking.istio.io/v1", "Gateway"),
    ("networking.istio.io/v1", "VirtualService"), ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"), ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"),
    ("external-secrets.io/v1", "ExternalSecret"), ("bitnami.com/v1alpha1", "SealedSecret"),
    ("cert-manager.io/v1", "Certificate"), ("argoproj.io/v1alpha1", "Application"),
    ("argoproj.io/v1alpha1", "AppProject"),
}
# Selectable in the values (secretManagement.externalSecrets.apiVersion, secrets.externalSecret.apiVersion).
SELECTABLE_KINDS = {("external-secrets.io/v1beta1", "ExternalSecret")}


def test_the_validator_is_installed():
    assert cr.validator_problem() is None, cr.validator_problem()


def test_the_validator_has_a_model_for_every_kind_the_charts_can_render():
    kinds = set(cr.validator_kinds())
    assert kinds >= RENDERED_KINDS | SELECTABLE_KINDS
    assert set(cr.RULES) <= {(api.split("/")[0], k) for api, k in kinds}  # no rule for a kind without a model


# A profile that renders each kind, so the per-profile test validates every kind for real (from the values files).
RENDERED_BY = {
    "eafix-trading:env-prod": {"PeerAuthentication", "AuthorizationPolicy", "DestinationRule", "Gateway",
                               "VirtualService", "ServiceMonitor", "PrometheusRule", "Certificate"},
    "eafix-trading:env-staging": {"ExternalSecret"},
    "eafix-trading:ci-security": {"SealedSecret"},
    "eafix-infra:env-prod": {"AlertmanagerConfig", "ExternalSecret"},
    "eafix-apps:env-prod": {"Application", "AppProject"},
}


def test_the_profiles_render_every_custom_kind():
    assert set().union(*RENDERED_BY.values()) == {k for _, k in RENDERED_KINDS}
    for profile_id, kinds in RENDERED_BY.items():
        assert kinds <= {o["kind"] for o in cr.custom(render_profile(profile_id).objects)}, profile_id


@pytest.mark.parametrize("profile_id", [p.id for p in ALL_PROFILES])
def test_every_custom_resource_passes_its_operators_schema(profile_id):
    crs = cr.custom(render_profile(profile_id).objects)
    assert {(o["apiVersion"], o["kind"]) for o in crs} <= RENDERED_KINDS  # a new kind: add it above and test it
    results = cr.validate_models(crs)
    assert [(r.index, r.kind, r.name) for r in results] == [
        (i, o["kind"], o["metadata"]["name"]) for i, o in enumerate(crs)]
    invalid = [f"{r.kind}/{r.name}: {r.error}" for r in results if not r.ok]
    assert not invalid, "\n".join(invalid)
    found = cr.check(crs)  # both layers; the models' verdict comes from the cache
    assert not found, "\n".join(f"{f.check} {f.kind}/{f.name}: {f.message}" for f in found)


def test_a_render_is_validated_in_one_node_process_and_once(monkeypatch):
    crs = copy.deepcopy(cr.custom(render_profile(PROD).objects))
    for o in crs:  # a batch not validated before in this process
        o["metadata"].setdefault("labels", {})["test"] = "one-process"
    calls = []
    real = subprocess.run

    def counting(*args, **kw):
        calls.append(args[0])
        return real(*args, **kw)

    monkeypatch.setattr(cr.subprocess, "run", counting)
    assert len(crs) > 50
    assert cr.check(crs) == []
    assert len(calls) == 1
    assert cr.check(crs) == [] and cr.check(crs[::3]) == []  # objects validated before: no process
    assert len(calls) == 1


# --- layer 1 catches what the operators' schemas reject ------------------------------------------------

def _first(profile_id: str, kind: str, where=lambda o: True) -> dict:
    return copy.deepcopy(next(o for o in render_profile(profile_id).objects if o["kind"] == kind and where(o)))


def _widget() -> dict:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "n"}, "spec": {}}


def _set(path: str, value):
    def breakage(o):
        *parents, last = path.split(".")
        for p in parents:
            o = o[int(p)] if isinstance(o, list) else o[p]
        if value is DELETE:
            o.pop(last)
        else:
            o[last] = value
    return breakage


DELETE = object()
SCHEMA_CASES = {
    "virtual-service-wrong-type": (
        lambda: _first(PROD, "VirtualService"), _set("spec.http.0.timeout", 30),
        "spec.http.0.timeout: must be string"),
    "authorization-policy-unknown-action": (
        lambda: _first(PROD, "AuthorizationPolicy"), _set("spec.action", "PERMIT"),
        'spec.action: must be one of ["ALLOW","DENY","AUDIT","CUSTOM"]'),
    "prometheus-rule-without-expr": (
        lambda: _first(PROD, "PrometheusRule"), _set("spec.groups.0.rules.0.expr", DELETE),
        "spec.groups.0.rules.0: must have required property 'expr'"),
    "application-without-destination": (
        lambda: _first(APPS_PROD, "Application"), _set("spec.destination", DELETE),
        "spec: must have required property 'destination'"),
    "external-secret-unknown-store-kind": (
        lambda: _first("eafix-trading:env-staging", "ExternalSecret"), _set("spec.secretStoreRef.kind", "Vault"),
        'spec.secretStoreRef.kind: must be one of ["SecretStore","ClusterSecretStore"]'),
    "service-monitor-without-selector": (
        lambda: _first(PROD, "ServiceMonitor"), _set("spec.selector", DELETE),
        "spec: must have required property 'selector'"),
    "service-monitor-bad-interval": (
        lambda: _first(PROD, "ServiceMonitor"), _set("spec.endpoints.0.interval", "5 seconds"),
        "spec.endpoints.0.interval: must match pattern"),
}


def _served_elsewhere() -> dict:
    vs = _first(PROD, "VirtualService")
    vs["apiVersion"] = "networking.istio.io/v2"  # a version no model (and no operator) serves
    return vs


UNKNOWN_CASES = {"example.com/v1 Widget": _widget, "networking.istio.io/v2 VirtualService": _served_elsewhere}


def _schema_batch() -> tuple[list[dict], dict]:
    """Each case's unbroken and broken object, then the unknown kinds; where each case's verdicts are."""
    objects, where = [], {}
    for case, (make, breakage, _) in SCHEMA_CASES.items():
        before = make()
        after = copy.deepcopy(before)
        breakage(after)
        where[case] = (len(objects), len(objects) + 1)
        objects += [before, after]
    for case, make in UNKNOWN_CASES.items():
        where[case] = len(objects)
        objects.append(make())
    return objects, where


@pytest.fixture(scope="module")
def schema_batch():
    """One Node process for every case below: (objects, {case: index or (before, after)}, results)."""
    objects, where = _schema_batch()
    return objects, where, cr.validate_models(objects)


@pytest.mark.parametrize("case", SCHEMA_CASES)
def test_the_operator_schema_reports_the_error(schema_batch, case):
    _, where, results = schema_batch
    before, after = (results[i] for i in where[case])
    message = SCHEMA_CASES[case][2]
    assert before.ok, before.error
    assert not after.ok
    assert after.error.startswith(message) and ";" not in after.error, after.error  # exactly that error


@pytest.mark.parametrize("case", UNKNOWN_CASES)
def test_an_unknown_custom_kind_is_reported(schema_batch, case):
    _, where, results = schema_batch
    r = results[where[case]]
    assert not r.ok
    assert r.error.startswith(f"no @kubernetes-models model for {case}: add one to ci/crd-validate/validate.mjs")


def test_check_reports_them_as_findings(schema_batch):
    objects, where, _ = schema_batch
    app = objects[where["application-without-destination"][1]]
    found = cr.check(objects)  # the batch's verdicts come from the cache
    assert cr.Finding("custom-resources", "operator-schema", "Application", app["metadata"]["name"],
                      "spec: must have required property 'destination'") in found
    assert [(f.check, f.kind, f.name) for f in found if f.check == "unknown-kind"] == [
        ("unknown-kind", "VirtualService", objects[where["networking.istio.io/v2 VirtualService"]]["metadata"]["name"]),
        ("unknown-kind", "Widget", "w")]
    assert {f.check for f in found} == {"operator-schema", "unknown-kind"}
    assert len([f for f in found if f.check == "operator-schema"]) == len(SCHEMA_CASES)


def test_the_script_rejects_input_that_is_not_an_array():
    proc = subprocess.run([cr.node_executable(), str(cr.VALIDATOR)], input="{}", capture_output=True, text=True,
                          check=False, timeout=60)
    assert proc.returncode == 2 and "JSON array" in proc.stderr


# --- layer 2: what the operators reject beyond their schemas (the models accept each of these) ------------

def _cr(api: str, kind: str, spec: dict, **meta) -> dict:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": "x", "namespace": "n", **meta}, "spec": spec}


PROM = "monitoring.coreos.com/v1"
ISTIO_SEC = "security.istio.io/v1"
ISTIO_NET = "networking.istio.io/v1"
ESO = "external-secrets.io/v1"
ARGO = "argoproj.io/v1alpha1"
STORE = {"name": "vault", "kind": "ClusterSecretStore"}
DEST = {"server": "https://kubernetes.default.svc", "namespace": "n"}
SOURCE = {"repoURL": "https://git.example/x.git", "path": "charts/x"}
RULE_CASES = {
    "bad-name": (_cr(PROM, "ServiceMonitor", {"selector": {}, "endpoints": [{"port": "http"}]}, name="Bad_Name"),
                 "metadata.name 'Bad_Name' is not a DNS-1123 subdomain"),
    "no-namespace": ({"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "metadata": {"name": "s"},
                      "spec": {"encryptedData": {"K": "AgB="}}}, "metadata.namespace must be set"),
    "record-and-alert": (_cr(PROM, "PrometheusRule", {"groups": [{"name": "g", "rules": [
        {"record": "a:b", "alert": "A", "expr": "up"}]}]}), "exactly one of record and alert"),
    "repeated-group": (
        _cr(PROM, "PrometheusRule", {"groups": [{"name": "g", "rules": []}, {"name": "g", "rules": []}]}),
        "group names repeated: ['g']"),
    "recording-rule-with-for": (_cr(PROM, "PrometheusRule", {"groups": [{"name": "g", "rules": [
        {"record": "a:b", "expr": "up", "for": "5m"}]}]}), "a recording rule cannot have ['for']"),
    "empty-expr": (_cr(PROM, "PrometheusRule", {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": " "}]}]}),
                   "spec.groups.0.rules.0.expr must not be empty"),
    "endpoint-without-port": (_cr(PROM, "ServiceMonitor", {"selector": {}, "endpoints": [{"path": "/metrics"}]}),
                              "spec.endpoints.0 must name port or targetPort"),
    "undefined-receiver": (_cr("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig", {
        "route": {"receiver": "nobody"}, "receivers": [{"name": "somebody"}]}),
        "'nobody' is not one of spec.receivers"),
    "webhook-without-url": (_cr("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig", {
        "route": {"receiver": "a"}, "receivers": [{"name": "a", "webhookConfigs": [{"sendResolved": True}]}]}),
        "webhookConfigs.0 needs url or urlSecret"),
    "external-secret-without-data": (_cr(ESO, "ExternalSecret", {"secretStoreRef": STORE}),
                                     "spec needs data or dataFrom"),
    "repeated-secret-key": (_cr(ESO, "ExternalSecret", {"secretStoreRef": STORE, "data": [
        {"secretKey": "K", "remoteRef": {"key": "a"}}, {"secretKey": "K", "remoteRef": {"key": "b"}}]}),
        "secretKey repeated: ['K']"),
    "refresh-in-days": (_cr(ESO, "ExternalSecret", {"secretStoreRef": STORE, "refreshInterval": "1d", "data": [
        {"secretKey": "K", "remoteRef": {"key": "a"}}]}), "spec.refreshInterval: '1d' is not a Go duration"),
    "merge-and-delete": (_cr(ESO, "ExternalSecret", {"secretStoreRef": STORE, "data": [
        {"secretKey": "K", "remoteRef": {"key": "a"}}],
        "target": {"creationPolicy": "Merge", "deletionPolicy": "Delete"}}),
        "deletionPolicy Delete is not allowed with creationPolicy Merge"),
    "nothing-sealed": (_cr("bitnami.com/v1alpha1", "SealedSecret", {"encryptedData": {}}),
                       "spec.encryptedData must hold at least one key"),
    "empty-sealed-value": (_cr("bitnami.com/v1alpha1", "SealedSecret", {"encryptedData": {"K": ""}}),
                           "spec.encryptedData.K is empty"),
    "certificate-without-subject": (_cr("cert-manager.io/v1", "Certificate", {
        "secretName": "tls", "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}}),
        "spec needs one of commonName"),
    "certificate-duration-in-days": (_cr("cert-manager.io/v1", "Certificate", {
        "secretName": "tls", "issuerRef": {"name": "i"}, "dnsNames": ["a.example"], "duration": "90d"}),
        "spec.duration: '90d' is not a Go duration"),
    "application-without-source": (_cr(ARGO, "Application", {"project": "p", "destination": DEST}),
                                   "exactly one of source and sources"),
    "destination-server-and-name": (_cr(ARGO, "Application", {"project": "p", "source": SOURCE,
                                                                "destination": {**DEST, "name": "in-cluster"}}),
                                    "spec.destination needs exactly one of server and name"),
    "backoff-in-days": (_cr(ARGO, "Application", {
        "project": "p", "source": SOURCE, "destination": DEST,
        "syncPolicy": {"retry": {"limit": 2, "backoff": {"duration": "1d"}}}}),
        "backoff.duration: '1d' is not a Go duration"),
    "project-without-repos": (_cr(ARGO, "AppProject", {"destinations": [DEST]}), "spec.sourceRepos must be set"),
    "custom-without-provider": (_cr(ISTIO_SEC, "AuthorizationPolicy", {"action": "CUSTOM", "rules": [{}]}),
                                "spec.provider must be set exactly when spec.action is CUSTOM"),
    "named-port": (_cr(ISTIO_SEC, "AuthorizationPolicy", {"rules": [{"to": [{"operation": {"ports": ["http"]}}]}]}),
                   "operation.ports: ['http'] are not port numbers"),
    "from-without-source": (_cr(ISTIO_SEC, "AuthorizationPolicy", {"rules": [{"from": [{}]}]}),
                            "spec.rules.0.from.0.source must be set"),
    "condition-without-values": (
        _cr(ISTIO_SEC, "AuthorizationPolicy", {"rules": [{"when": [{"key": "request.auth.claims[iss]"}]}]}),
        "key and values or notValues must be set"),
    "port-level-mtls-without-selector": (_cr(ISTIO_SEC, "PeerAuthentication", {
        "mtls": {"mode": "STRICT"}, "portLevelMtls": {"8080": {"mode": "PERMISSIVE"}}}),
        "spec.portLevelMtls needs spec.selector.matchLabels"),
    "https-without-tls": (_cr(ISTIO_NET, "Gateway", {"selector": {"istio": "ingressgateway"}, "servers": [
        {"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["*"]}]}),
        "HTTPS needs tls settings"),
    "virtual-service-without-hosts": (
        _cr(ISTIO_NET, "VirtualService", {"http": [{"route": [{"destination": {"host": "a"}}]}]}),
        "spec.hosts must be set"),
    "virtual-service-without-routes": (_cr(ISTIO_NET, "VirtualService", {"hosts": ["a"]}),
                                       "spec needs http, tls or tcp routes"),
}


@pytest.fixture(scope="module")
def rule_case_verdicts():
    results = cr.validate_models([obj for obj, _ in RULE_CASES.values()])
    return dict(zip(RULE_CASES, results, strict=True))


@pytest.mark.parametrize("case", RULE_CASES)
def test_an_operator_rule_catches_what_the_models_accept(rule_case_verdicts, case):
    obj, message = RULE_CASES[case]
    verdict = rule_case_verdicts[case]
    assert verdict.ok, f"the models catch this already (no rule needed): {verdict.error}"
    found = cr.operator_rules([obj])
    assert any(message in f.message for f in found), [f.message for f in found]
    assert {f.check for f in found} == {"operator-rule"}


def test_operator_rules_go_by_api_group_not_kind_alone():
    gateway_api = _cr("gateway.networking.k8s.io/v1", "Gateway", {"gatewayClassName": "istio", "listeners": []})
    istio = _cr(ISTIO_NET, "Gateway", {"servers": []})
    assert cr.operator_rules([gateway_api]) == []
    assert [f.message for f in cr.operator_rules([istio])] == ["spec.selector must be set", "spec.servers must be set"]


# --- no Node, no packages: a failure that says what to run ----------------------------------------------

def test_a_missing_install_fails_and_says_what_to_run(monkeypatch, tmp_path):
    monkeypatch.setattr(cr, "STAMP", tmp_path / "missing")
    assert "make crd-validate" in cr.validator_problem() and "make test" in cr.validator_problem()
    with pytest.raises(cr.CRDValidatorError, match=r"make crd-validate.*make test"):
        cr.check(render_profile(PROD).objects)  # even a render validated before (cached) in this process
    with pytest.raises(cr.CRDValidatorError, match="make crd-validate"):
        cr.check([])  # and a render without custom resources


def test_a_stale_install_fails(monkeypatch, tmp_path):
    stale = tmp_path / "stamp"
    stale.write_text("{}")
    monkeypatch.setattr(cr, "STAMP", stale)
    assert "not those of its package-lock.json" in cr.validator_problem()


def test_missing_node_fails_and_says_what_to_install(monkeypatch):
    monkeypatch.delenv("EAFIX_NODE", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(cr.CRDValidatorError, match="Node.js >= 20 is not on PATH.*make crd-validate"):
        cr.validate_models([_widget()])
