"""Istio objects: mTLS, AuthorizationPolicies that grant exactly the matrix, DestinationRules,
Gateway and VirtualServices (on in the prod overlay, off by default).

The expected authorizations are written from the issue and the original design (§8), not read
from the chart: gui-gateway may call every service; signal-generator -> risk-manager only
POST /api/v1/validate and /api/v1/position-size; risk-manager -> execution-engine only POST
/api/v1/execute and /api/v1/cancel with an x-request-id; compliance-monitor -> gui-gateway;
Alertmanager -> compliance-monitor POST /webhook/alertmanager; Prometheus GET /metrics everywhere;
the helm-test pod GET /readyz everywhere; the ingress gateway -> gui-gateway only, with
GET/POST/PUT/DELETE/OPTIONS (the one authenticated door: the services' own APIs are internal).
"""

from __future__ import annotations

import copy

import pytest

from conftest import PORTS, SERVICES, render_profile
from eafix.platform import custom_resources
from eafix.platform.policy import flow_matrix, istio_authz
from eafix.platform.render import RenderError

PROD = "eafix-trading:env-prod"
NS = "eafix-trading"
TD = "cluster.local"
PROMETHEUS = "cluster.local/ns/monitoring/sa/kube-prometheus-stack-prometheus"
ALERTMANAGER = "cluster.local/ns/monitoring/sa/kube-prometheus-stack-alertmanager"
GATEWAY = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
HELM_TEST = f"{TD}/ns/{NS}/sa/eafix-readyz-test"
ROUTES = {  # the one ingress route: prefix, retries (attempts, per try), timeout
    "gui-gateway": ("/", (3, "10s"), "30s"),
}


def sa(svc: str) -> str:
    return f"{TD}/ns/{NS}/sa/{svc}"


def intended(req: istio_authz.Request) -> bool:
    to, src, m, p = req.workload, req.source, req.method, req.path
    if req.port != PORTS[to]:
        return False
    if src == sa("gui-gateway") and to != "gui-gateway":
        return True
    if src == sa("signal-generator") and to == "risk-manager":
        return m == "POST" and p in ("/api/v1/validate", "/api/v1/position-size")
    if src == sa("risk-manager") and to == "execution-engine":
        return m == "POST" and p in ("/api/v1/execute", "/api/v1/cancel") and "x-request-id" in req.headers
    if src == sa("compliance-monitor") and to == "gui-gateway":
        return True
    if src == ALERTMANAGER and to == "compliance-monitor":
        return m == "POST" and p == "/webhook/alertmanager"
    if src == PROMETHEUS:
        return m == "GET" and p == "/metrics"
    if src == HELM_TEST:
        return m == "GET" and p == "/readyz"
    if src == GATEWAY and to in ROUTES:
        prefix = ROUTES[to][0]
        if prefix == "/":
            return m in ("GET", "POST", "PUT", "DELETE", "OPTIONS")
        return p == prefix or p.startswith(prefix + "/")
    return False


@pytest.fixture(scope="module")
def prod():
    return render_profile(PROD)


def _authz_world(objects):
    decl = flow_matrix.declared(objects)
    m = flow_matrix.model(objects, decl, NS, "eafix")
    workloads, reqs = flow_matrix.authz_requests(objects, decl.rows, m)
    return decl, m, workloads, reqs


def test_istio_is_off_by_default_and_on_in_prod(defaults, prod):
    istio_kinds = {"PeerAuthentication", "AuthorizationPolicy", "DestinationRule", "Gateway", "VirtualService"}
    assert not istio_kinds & set(defaults.kinds())
    assert istio_kinds <= set(prod.kinds())
    assert "sidecar.istio.io/rewriteAppHTTPProbers" not in str(defaults.one("Deployment", "reporter"))


def test_strict_mtls_for_the_release(prod):
    (pa,) = prod.select(kind="PeerAuthentication")
    assert pa["spec"] == {
        "selector": {"matchLabels": {"app.kubernetes.io/instance": "eafix"}},
        "mtls": {"mode": "STRICT"},
    }


def test_deny_all_baseline(prod):
    base = prod.one("AuthorizationPolicy", "eafix-allow-nothing")["spec"]
    assert base == {"selector": {"matchLabels": {"app.kubernetes.io/instance": "eafix"}}, "action": "ALLOW"}
    others = [
        p
        for p in prod.select(kind="AuthorizationPolicy")
        if p is not None and p["metadata"]["name"] != "eafix-allow-nothing"
    ]
    assert all(p["spec"]["action"] == "ALLOW" and len(p["spec"]["rules"]) == 1 for p in others)
    assert all(len(p["spec"]["rules"][0]["from"][0]["source"]["principals"]) == 1 for p in others)


def test_authorization_policies_grant_exactly_the_intended_requests(prod):
    decl, m, workloads, reqs = _authz_world(prod.objects)
    assert m.principals["risk-manager"] == sa("risk-manager") and m.principals["helm-test"] == HELM_TEST
    got = istio_authz.allowed_requests(prod.select(kind="AuthorizationPolicy"), workloads, reqs)
    want = {r for r in reqs if intended(r)}
    assert len(reqs) > 10000 and len(want) > 500
    extra = sorted(map(str, got - want))
    missing = sorted(map(str, want - got))
    assert (extra[:10], missing[:10]) == ([], [])


@pytest.mark.parametrize("profile_id", [PROD, "eafix-trading:ci-security"])
def test_authorization_policies_grant_exactly_the_declared_matrix(profile_id):
    objects = render_profile(profile_id).objects
    decl, m, _, _ = _authz_world(objects)
    assert flow_matrix.authz_problems(objects, decl.rows, m) == []


def test_probes_bypass_authorization_through_the_sidecar(prod):
    for svc in SERVICES:
        ann = prod.one("Deployment", svc)["spec"]["template"]["metadata"]["annotations"]
        assert ann["sidecar.istio.io/rewriteAppHTTPProbers"] == "true"
    hook = prod.one("Pod", "eafix-readyz-test")
    assert hook["metadata"]["annotations"]["sidecar.istio.io/nativeSidecar"] == "true"
    assert hook["spec"]["serviceAccountName"] == "eafix-readyz-test"


MUTATIONS = {
    "drop-paths": lambda rule: rule["to"][0]["operation"].pop("paths", None),
    "drop-methods": lambda rule: rule["to"][0]["operation"].pop("methods", None),
    "drop-ports": lambda rule: rule["to"][0]["operation"].pop("ports"),
    "any-principal": lambda rule: rule["from"][0]["source"].__setitem__("principals", ["*"]),
    "drop-when": lambda rule: rule.pop("when", None),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_widening_an_authorization_policy_is_caught(prod, mutation):
    objects = prod.objects
    decl, m, _, _ = _authz_world(objects)
    caught = changed = 0
    for i, o in enumerate(objects):
        if o["kind"] != "AuthorizationPolicy" or "rules" not in o["spec"]:
            continue
        policy = copy.deepcopy(o)
        before = copy.deepcopy(policy["spec"]["rules"][0])
        MUTATIONS[mutation](policy["spec"]["rules"][0])
        if policy["spec"]["rules"][0] == before:
            continue
        changed += 1
        target = policy["metadata"]["labels"]["app.kubernetes.io/component"]  # the workload it selects
        caught += bool(flow_matrix.authz_problems([*objects[:i], policy, *objects[i + 1 :]], decl.rows, m, [target]))
    assert changed and caught == changed


def test_destination_rules(prod):
    for svc in SERVICES:
        dr = prod.one("DestinationRule", svc)["spec"]
        assert dr["host"] == f"{svc}.{NS}.svc.cluster.local"
        tp = dr["trafficPolicy"]
        assert tp["tls"] == {"mode": "ISTIO_MUTUAL"}
        assert tp["loadBalancer"] == {"simple": "LEAST_REQUEST"}
        assert tp["connectionPool"]["tcp"]["maxConnections"] > 0
        assert tp["outlierDetection"]["baseEjectionTime"]
    exe = prod.one("DestinationRule", "execution-engine")["spec"]["trafficPolicy"]
    assert exe["connectionPool"]["http"]["maxRequestsPerConnection"] == 1
    assert exe["outlierDetection"]["consecutive5xxErrors"] == 2
    risk = prod.one("DestinationRule", "risk-manager")["spec"]["trafficPolicy"]
    assert risk["connectionPool"]["tcp"]["connectTimeout"] == "3s"
    assert (
        prod.one("DestinationRule", "reporter")["spec"]["trafficPolicy"]["outlierDetection"]["consecutive5xxErrors"]
        == 5
    )


def test_gateway_terminates_tls_and_redirects_http(prod):
    gw = prod.one("Gateway", "eafix-gateway")["spec"]
    assert gw["selector"] == {"istio": "ingressgateway"}
    https, http = gw["servers"]
    assert https["port"] == {"number": 443, "name": "https", "protocol": "HTTPS"}
    assert https["tls"] == {"mode": "SIMPLE", "credentialName": "trading-eafix-tls", "minProtocolVersion": "TLSV1_2"}
    assert https["hosts"] == http["hosts"] == ["trading.eafix.com"]
    assert http["port"]["number"] == 80 and http["tls"] == {"httpsRedirect": True}


def test_virtual_service_routes_only_to_gui_gateway(prod):
    vs = prod.one("VirtualService", "eafix-ingress")["spec"]
    assert vs["gateways"] == [f"{NS}/eafix-gateway"] and vs["hosts"] == ["trading.eafix.com"]
    [route] = vs["http"]
    assert route["name"] == "gui-gateway" and "match" not in route
    assert route["route"] == [
        {"destination": {"host": f"gui-gateway.{NS}.svc.cluster.local", "port": {"number": PORTS["gui-gateway"]}}}
    ]
    assert route["timeout"] == "30s"
    # a control the gateway received must never be sent twice: only connection failures are retried
    assert route["retries"] == {"attempts": 3, "perTryTimeout": "10s", "retryOn": "connect-failure,refused-stream"}


@pytest.mark.parametrize("service", ["execution-engine", "compliance-monitor"])
def test_a_route_to_another_service_is_refused(render_with, service):
    with pytest.raises(RenderError, match=f"invalid propertyName '{service}'(.|\n)*must be 'gui-gateway'"):
        render_with({"global": {"istio": {"enabled": True}},
                     "istio": {"gateway": {"host": "t.example"}, "routes": {service: {"prefix": "/api/v1/x"}}}})


def test_internal_hops_have_their_timeouts_and_retries(prod):
    risk = prod.one("VirtualService", "risk-manager")["spec"]
    assert risk["gateways"] == ["mesh"] and risk["hosts"] == [f"risk-manager.{NS}.svc.cluster.local"]
    assert (
        risk["http"][0]["timeout"],
        risk["http"][0]["retries"]["attempts"],
        risk["http"][0]["retries"]["perTryTimeout"],
    ) == ("5s", 2, "3s")
    exe = prod.one("VirtualService", "execution-engine")["spec"]["http"][0]
    assert (exe["timeout"], exe["retries"]["attempts"], exe["retries"]["perTryTimeout"]) == ("3s", 1, "1s")
    assert "5xx" not in exe["retries"]["retryOn"]  # an order is never re-sent after the engine saw it


def test_backends_outside_the_mesh_get_port_level_exceptions():
    r = render_profile("eafix-trading:ci-security")
    pa = r.one("PeerAuthentication", "eafix-redis-plaintext")["spec"]
    assert pa["selector"]["matchLabels"]["app.kubernetes.io/name"] == "redis"
    assert pa["portLevelMtls"] == {6379: {"mode": "DISABLE"}} and pa["mtls"] == {"mode": "PERMISSIVE"}
    assert r.select(kind="PeerAuthentication", name="eafix-postgres-plaintext") == []  # external: nothing to select
    dr = r.one("DestinationRule", "eafix-redis")["spec"]
    assert dr == {"host": f"redis-master.{NS}.svc.cluster.local", "trafficPolicy": {"tls": {"mode": "DISABLE"}}}
    assert r.one("DestinationRule", "eafix-postgres")["spec"]["host"] == "eafix-db.example.internal"
    assert render_profile(PROD).select(kind="PeerAuthentication", name="eafix-redis-plaintext") == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"global": {"istio": {"enabled": True}}}, "istio.gateway.host: required"),
        (
            {
                "global": {"istio": {"enabled": True}},
                "istio": {"gateway": {"enabled": False}},
                "actors": {"prometheus": {"principal": None}},
            },
            "actors.prometheus.principal: required",
        ),
    ],
)
def test_istio_values_are_validated(render_with, values, message):
    with pytest.raises(RenderError, match=message):
        render_with(values)


BREAKAGES = {  # kind: (breakage, message)
    "AuthorizationPolicy": (lambda o: o["spec"]["rules"][0]["to"][0]["operation"].__setitem__("ports", [8080]),
                            "operation.ports.0: must be string"),
    "PeerAuthentication": (lambda o: o["spec"]["mtls"].__setitem__("mode", "ON"), "spec.mtls.mode: must be one of"),
    "Gateway": (lambda o: o["spec"]["servers"][0]["tls"].pop("credentialName"), "tls needs credentialName"),
    "VirtualService": (lambda o: o["spec"]["http"][0]["route"][0].pop("destination"),
                       "route.0: must have required property 'destination'"),
    "DestinationRule": (lambda o: o["spec"].pop("host"), "spec: must have required property 'host'"),
    "Certificate": (lambda o: o["spec"].pop("issuerRef"), "spec: must have required property 'issuerRef'"),
}


@pytest.fixture(scope="module")
def broken(prod):
    """One object of each kind, then each broken by its BREAKAGES entry; findings per kind of the broken ones."""
    originals = [copy.deepcopy(next(o for o in prod.objects if o["kind"] == kind and (
        kind != "AuthorizationPolicy" or "to" in ((o["spec"].get("rules") or [{}])[0])))) for kind in BREAKAGES]
    objs = copy.deepcopy(originals)
    for o in objs:
        BREAKAGES[o["kind"]][0](o)
    found: dict[str, list[str]] = {}
    for f in custom_resources.check(objs):  # one batch
        found.setdefault(f.kind, []).append(f.message)
    return originals, found


def test_the_unbroken_objects_pass(broken):
    originals, _ = broken
    assert custom_resources.check(originals) == []


@pytest.mark.parametrize("kind", BREAKAGES)
def test_custom_resource_checks_fire(broken, kind):
    _, found = broken
    assert any(BREAKAGES[kind][1] in m for m in found.get(kind, [])), found.get(kind)


# --- the evaluator itself ----------------------------------------------------------------------------


def _ap(rules=None, action="ALLOW", selector=None):
    spec = {"action": action}
    if rules is not None:
        spec["rules"] = rules
    if selector:
        spec["selector"] = {"matchLabels": selector}
    return {"kind": "AuthorizationPolicy", "metadata": {"name": "p", "namespace": "ns"}, "spec": spec}


REQ = istio_authz.Request("td/ns/a/sa/x", "w", 80, "GET", "/api/v1/data/ticks", frozenset())


def test_evaluator_semantics():
    labels = {"app": "w"}
    assert istio_authz.allowed([], "ns", labels, REQ)  # no policy: allow
    assert not istio_authz.allowed([_ap()], "ns", labels, REQ)  # allow-nothing
    assert istio_authz.allowed([_ap([{}])], "ns", labels, REQ)  # an empty rule matches everything
    prefix = [{"to": [{"operation": {"paths": ["/api/v1/data/*"], "ports": ["80"]}}]}]
    assert istio_authz.allowed([_ap(prefix)], "ns", labels, REQ)
    exact = [{"to": [{"operation": {"paths": ["/api/v1/data"]}}]}]
    assert not istio_authz.allowed([_ap(exact)], "ns", labels, REQ)
    deny = _ap([{"from": [{"source": {"namespaces": ["a"]}}]}], action="DENY")
    assert not istio_authz.allowed([_ap([{}]), deny], "ns", labels, REQ)  # DENY wins
    other = _ap(selector={"app": "other"})
    assert istio_authz.allowed([other], "ns", labels, REQ)  # a policy for another workload does not apply
    header = [{"when": [{"key": "request.headers[x-request-id]", "values": ["*"]}]}]
    assert not istio_authz.allowed([_ap(header)], "ns", labels, REQ)
    assert istio_authz.allowed(
        [_ap(header)], "ns", labels, istio_authz.Request(REQ.source, "w", 80, "GET", "/", frozenset({"x-request-id"}))
    )
    plaintext = istio_authz.Request(None, "w", 80, "GET", "/", frozenset())
    assert not istio_authz.allowed([_ap([{"from": [{"source": {"principals": ["*"]}}]}])], "ns", labels, plaintext)
    with pytest.raises(istio_authz.Unsupported):
        istio_authz.allowed([_ap([{"from": [{"source": {"remoteIpBlocks": ["1.2.3.4"]}}]}])], "ns", labels, REQ)
