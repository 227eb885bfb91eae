"""NetworkPolicies against the flow matrix, with Kubernetes semantics, in every profile.

The expected matrix below is written from the issue's list of intended traffic, not read from the
chart: gui-gateway calls every service; signal-generator -> risk-manager; risk-manager ->
execution-engine; compliance-monitor -> gui-gateway; Alertmanager -> compliance-monitor; Prometheus
scrapes every service; the ingress controller / Istio ingress gateway reaches gui-gateway only (the
one authenticated door); every service -> Redis; the PostgreSQL users -> PostgreSQL; every pod
-> DNS; plus the helm-test pod -> every service and the migrations Job -> PostgreSQL. The cluster
around the release is modelled with the labels the real components carry (kube-prometheus-stack,
ingress-nginx, Istio, CoreDNS, Bitnami redis/postgresql) and with adversaries no rule may admit.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import pytest

from conftest import PORTS, PROFILE_IDS, SERVICES, catalogue, render_profile
from eafix.platform.policy import flow_matrix, network
from eafix.platform.policy.network import Endpoint, Flow

NS = "eafix-trading"
RELEASE = "eafix"
API_CALLS = {("gui-gateway", s) for s in SERVICES if s != "gui-gateway"} | {
    ("signal-generator", "risk-manager"),
    ("risk-manager", "execution-engine"),
    ("compliance-monitor", "gui-gateway"),
}
POSTGRES_USERS = {s.name for s in catalogue.SERVICES if s.uses_postgres}
ISTIO_ROUTED = {"gui-gateway"}  # the one authenticated door; the other services are internal
CORE = {"data-ingestor", "indicator-engine", "signal-generator", "risk-manager", "execution-engine"}


@dataclass(frozen=True)
class Facts:
    """What a profile switches on, as its values files say."""

    services: frozenset[str] = frozenset(SERVICES)
    ingress: bool = False
    istio: bool = False
    postgres_ip: str | None = None  # PostgreSQL outside the cluster
    sentinel: bool = False  # Redis under Sentinel: the services also reach port 26379
    extra: frozenset[Flow] = field(default_factory=frozenset)


BROKER_IP = "203.0.113.10"
FACTS = {
    "eafix-trading:defaults": Facts(),
    "eafix-trading:env-dev": Facts(),
    "eafix-trading:env-staging": Facts(ingress=True),
    "eafix-trading:env-prod": Facts(istio=True, sentinel=True),
    "eafix-trading:ci-hpa": Facts(),
    "eafix-trading:ci-minimal": Facts(services=frozenset(CORE)),
    "eafix-trading:ci-pinned": Facts(),
    "eafix-trading:ci-security": Facts(
        ingress=True, istio=True, postgres_ip="10.40.0.7", extra=frozenset({Flow("execution-engine", "broker", 443)})
    ),
}


def expected(f: Facts) -> set[Flow]:
    svcs = f.services
    pods = set(svcs) | {"helm-test"} | ({"migrations"} if svcs & POSTGRES_USERS else set())
    out = {Flow(a, b, PORTS[b]) for a, b in API_CALLS if a in svcs and b in svcs}
    out |= {Flow("prometheus", s, PORTS[s]) for s in svcs}
    out |= {Flow("helm-test", s, PORTS[s]) for s in svcs}
    if "compliance-monitor" in svcs:
        out.add(Flow("alertmanager", "compliance-monitor", PORTS["compliance-monitor"]))
    if f.ingress and "gui-gateway" in svcs:
        out.add(Flow("ingress-controller", "gui-gateway", PORTS["gui-gateway"]))
    if f.istio:
        out |= {Flow("istio-ingressgateway", s, PORTS[s]) for s in svcs & ISTIO_ROUTED}
        out |= {Flow(p, "istiod", 15012) for p in pods}
        out |= {Flow("prometheus", s, port) for s in svcs for port in (15020, 15090)}
    out |= {Flow(s, "redis", 6379) for s in svcs}
    if f.sentinel:
        out |= {Flow(s, "redis", 26379) for s in svcs}
    out |= {Flow(s, "postgres", 5432) for s in (svcs & POSTGRES_USERS) | (pods & {"migrations"})}
    out |= {Flow(p, "dns", 53, proto) for p in pods for proto in ("UDP", "TCP")}
    return out | set(f.extra)


def world(r, f: Facts) -> tuple[list[Endpoint], dict[str, dict[str, str]]]:
    """The release's pods plus the real components around it, labelled as their charts label them."""
    namespaces = {
        n: {"kubernetes.io/metadata.name": n}
        for n in (NS, "monitoring", "ingress-nginx", "istio-system", "kube-system")
    }
    eps = flow_matrix.release_endpoints(r.objects, NS)
    eps += [
        Endpoint(
            "prometheus",
            "monitoring",
            {"app.kubernetes.io/name": "prometheus", "prometheus": "kube-prometheus-stack-prometheus"},
            "10.96.1.1",
        ),
        Endpoint(
            "alertmanager",
            "monitoring",
            {"app.kubernetes.io/name": "alertmanager", "alertmanager": "kube-prometheus-stack-alertmanager"},
            "10.96.1.2",
        ),
        Endpoint(
            "ingress-controller",
            "ingress-nginx",
            {
                "app.kubernetes.io/name": "ingress-nginx",
                "app.kubernetes.io/component": "controller",
                "app.kubernetes.io/instance": "ingress-nginx",
            },
            "10.96.1.3",
        ),
        Endpoint(
            "istio-ingressgateway",
            "istio-system",
            {"istio": "ingressgateway", "app": "istio-ingressgateway"},
            "10.96.1.4",
        ),
        Endpoint("istiod", "istio-system", {"app": "istiod", "istio": "pilot"}, "10.96.1.5"),
        Endpoint("dns", "kube-system", {"k8s-app": "kube-dns"}, "10.96.1.6"),
        Endpoint(
            "redis",
            NS,
            {
                "app.kubernetes.io/name": "redis",
                "app.kubernetes.io/instance": "eafix-infra",
                "app.kubernetes.io/component": "master",
            },
            "10.244.5.1",
        ),
        Endpoint("broker", None, {}, BROKER_IP),
    ]
    if f.postgres_ip:
        eps.append(Endpoint("postgres", None, {}, f.postgres_ip))
    else:
        eps.append(
            Endpoint(
                "postgres",
                NS,
                {
                    "app.kubernetes.io/name": "postgresql",
                    "app.kubernetes.io/instance": "eafix-infra",
                    "app.kubernetes.io/component": "primary",
                },
                "10.244.5.2",
            )
        )
    eps += flow_matrix.adversaries(NS, RELEASE, namespaces)
    return eps, namespaces


PORTS_TO_TRY = {
    (p, proto)
    for p in [*PORTS.values(), 53, 443, 5432, 6379, 26379, 15012, 15020, 15090, 7777]
    for proto in ("TCP", "UDP")
}


def problems(objects, f: Facts) -> list[str]:
    class R:  # the evaluator needs the objects only
        pass

    r = R()
    r.objects = objects
    eps, namespaces = world(r, f)
    flows = network.evaluate([o for o in objects if o["kind"] == "NetworkPolicy"], eps, namespaces, PORTS_TO_TRY)
    return network.check_matrix(flows, expected(f))


def test_every_profile_has_facts():
    assert set(FACTS) == set(PROFILE_IDS)


@pytest.mark.parametrize("profile_id", PROFILE_IDS)
def test_network_policies_allow_exactly_the_matrix(profile_id):
    found = problems(render_profile(profile_id).objects, FACTS[profile_id])
    assert not found, "\n".join(found)


@pytest.mark.parametrize("profile_id", PROFILE_IDS)
def test_the_chart_declares_exactly_the_intended_matrix(profile_id):
    decl = flow_matrix.declared(render_profile(profile_id).objects)
    declared = {r.l4 for r in decl.rows}
    want = expected(FACTS[profile_id]) - FACTS[profile_id].extra
    extra, missing = network.diff(declared, want)
    assert (extra, missing) == ([], [])


@pytest.mark.parametrize("profile_id", PROFILE_IDS)
def test_policies_match_the_declared_matrix(profile_id):
    r = render_profile(profile_id)
    found = flow_matrix.check(r.objects, NS, RELEASE)  # what ci/policy.py runs (Istio too where on)
    assert not found, "\n".join(f.message for f in found)


def test_default_deny_covers_every_release_pod_and_each_workload_has_one_policy(defaults):
    deny = defaults.one("NetworkPolicy", "eafix-default-deny")["spec"]
    assert deny == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/instance": "eafix"}},
        "policyTypes": ["Ingress", "Egress"],
    }
    names = {p["metadata"]["name"] for p in defaults.select(kind="NetworkPolicy")}
    assert names == {"eafix-default-deny", "eafix-readyz-test", "eafix-migrations", *SERVICES}
    for p in defaults.select(kind="NetworkPolicy"):
        assert p["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_disabled_service_disappears_from_every_rule(render_with):
    r = render_with(
        {
            "risk-manager": {"enabled": False},
            "signal-generator": {"peers": []},
            "gui-gateway": {"peers": [s for s in SERVICES if s not in ("gui-gateway", "risk-manager")]},
            "flows": {"signal-to-risk": None},
        }
    )
    text = "\n".join(str(p) for p in r.select(kind="NetworkPolicy"))
    assert "risk-manager" not in text
    found = problems(r.objects, Facts(services=frozenset(set(SERVICES) - {"risk-manager"})))
    assert not found, "\n".join(found)


def test_external_redis_by_cidr_and_kube_dns_selectors_are_configurable(render_with):
    r = render_with(
        {
            "actors": {
                "redis": {"ipBlocks": [{"cidr": "10.50.0.0/24", "except": ["10.50.0.128/25"]}]},
                "dns": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "dns"}},
                    "podSelector": {"matchLabels": {"app": "coredns", "k8s-app": None}},
                },
            }
        }
    )
    egress = r.one("NetworkPolicy", "reporter")["spec"]["egress"]
    assert {
        "to": [{"ipBlock": {"cidr": "10.50.0.0/24", "except": ["10.50.0.128/25"]}}],
        "ports": [{"port": 6379, "protocol": "TCP"}],
    } in egress
    dns = next(rule for rule in egress if rule["ports"][0]["port"] == 53)
    assert dns["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "dns"}},
            "podSelector": {"matchLabels": {"app": "coredns"}},
        }
    ]


def test_istio_switch_adds_only_the_sidecar_traffic():
    prod = render_profile("eafix-trading:env-prod").one("NetworkPolicy", "risk-manager")["spec"]
    istiod = [rule for rule in prod["egress"] if rule["ports"] == [{"port": 15012, "protocol": "TCP"}]]
    assert istiod and istiod[0]["to"][0]["podSelector"] == {"matchLabels": {"app": "istiod"}}
    telemetry = [rule for rule in prod["ingress"] if {"port": 15090, "protocol": "TCP"} in rule["ports"]]
    assert telemetry[0]["from"][0]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}


def test_istio_sidecar_traffic_can_be_left_out(render_with):
    r = render_with(
        {
            "global": {"istio": {"enabled": True}},
            "istio": {"gateway": {"enabled": False}},
            "networkPolicy": {"allowIstio": False},
        }
    )
    assert "15012" not in str(r.select(kind="NetworkPolicy"))


def test_extra_ingress_and_egress_are_appended(render_with):
    extra_in = {"from": [{"podSelector": {"matchLabels": {"app": "debugger"}}}], "ports": [{"port": 8088}]}
    r = render_with({"reporter": {"networkPolicy": {"extraIngress": [extra_in]}}})
    assert r.one("NetworkPolicy", "reporter")["spec"]["ingress"][-1] == extra_in
    sec = render_profile("eafix-trading:ci-security").one("NetworkPolicy", "eafix-execution-engine")["spec"]
    assert sec["egress"][-1] == {
        "to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}],
        "ports": [{"port": 443, "protocol": "TCP"}],
    }


def test_network_policies_can_be_switched_off_and_the_exemptions_return(render_with):
    r = render_with({"global": {"networkPolicy": {"enabled": False}}})
    assert r.select(kind="NetworkPolicy") == []
    ann = r.one("Deployment", "reporter")["metadata"]["annotations"]
    assert ann["polaris.fairwinds.com/missingNetworkPolicy-exempt"] == "true"
    assert any(v.startswith("CKV2_K8S_6=") for v in ann.values())
    on = render_profile("eafix-trading:defaults").one("Deployment", "reporter")["metadata"]["annotations"]
    assert "polaris.fairwinds.com/missingNetworkPolicy-exempt" not in on
    assert not any(str(v).startswith("CKV2_K8S_6=") for v in on.values())


def test_flows_and_peers_must_agree(render_with):
    from eafix.platform.render import RenderError

    with pytest.raises(RenderError, match="risk-manager.peers lists execution-engine, but no flow"):
        render_with({"flows": {"risk-to-execution": None}})
    with pytest.raises(RenderError, match="flows let reporter call risk-manager, but reporter.peers"):
        render_with({"flows": {"reporter-to-risk": {"from": "reporter", "to": ["risk-manager"]}}})


def test_an_actor_without_selectors_is_refused(render_with):
    from eafix.platform.render import RenderError

    with pytest.raises(RenderError, match="actors.prometheus: set a podSelector"):
        render_with({"actors": {"prometheus": {"namespaceSelector": None, "podSelector": None}}})


# --- the test fails when any single allow rule is widened ------------------------------------------

WIDENINGS = {
    "any-port": lambda rule, peers: rule.pop("ports"),
    "any-namespace": lambda rule, peers: rule.__setitem__(peers, [{"namespaceSelector": {}}]),
    "any-peer": lambda rule, peers: rule.pop(peers),
}


def _rules(objects):
    for i, o in enumerate(objects):
        if o["kind"] != "NetworkPolicy":
            continue
        for direction, peers in (("ingress", "from"), ("egress", "to")):
            for j, _ in enumerate(o["spec"].get(direction) or []):
                yield i, direction, peers, j


@pytest.mark.parametrize("profile_id", ["eafix-trading:defaults", "eafix-trading:env-prod"])
@pytest.mark.parametrize("widening", sorted(WIDENINGS))
def test_widening_any_single_rule_is_caught(profile_id, widening):
    objects = render_profile(profile_id).objects
    facts = FACTS[profile_id]
    assert not problems(objects, facts)
    rules = list(_rules(objects))
    assert len(rules) > 50
    undetected = []
    for i, direction, peers, j in rules:
        policy = copy.deepcopy(objects[i])
        WIDENINGS[widening](policy["spec"][direction][j], peers)
        if not problems([*objects[:i], policy, *objects[i + 1 :]], facts):
            undetected.append(f"{policy['metadata']['name']} {direction}[{j}]")
    assert undetected == []


def test_a_widened_policy_names_the_new_flow():
    objects = copy.deepcopy(render_profile("eafix-trading:defaults").objects)
    pol = next(o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "risk-manager")
    rule = next(r for r in pol["spec"]["ingress"] if "signal-generator" in str(r["from"]))
    rule["from"][0]["podSelector"]["matchLabels"].pop("app.kubernetes.io/name")  # any pod of the release
    found = problems(objects, FACTS["eafix-trading:defaults"])
    assert "ingress: allowed but not in the matrix: data-ingestor -> risk-manager:8084/TCP" in found
    assert (
        "effective: allowed but not in the matrix: reporter -> risk-manager:8084/TCP" not in found
    )  # egress blocks it


def test_a_narrowed_policy_is_caught_too():
    objects = copy.deepcopy(render_profile("eafix-trading:defaults").objects)
    pol = next(o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "reporter")
    pol["spec"]["egress"] = [r for r in pol["spec"]["egress"] if r["ports"][0]["port"] != 5432]
    assert "effective: in the matrix but not allowed: reporter -> postgres:5432/TCP" in problems(
        objects, FACTS["eafix-trading:defaults"]
    )


# --- the evaluator itself ----------------------------------------------------------------------------


def _pol(name, selector, types, ingress=None, egress=None, ns=NS):
    spec = {"podSelector": selector, "policyTypes": types}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}


A = Endpoint("a", NS, {"app": "a"}, "10.0.0.1", {"http": (8080, "TCP")})
B = Endpoint("b", NS, {"app": "b"}, "10.0.0.2", {"http": (9090, "TCP")})
C = Endpoint("c", "other", {"app": "a"}, "10.0.1.3")
X = Endpoint("x", None, {}, "192.0.2.7")
NSS = {NS: {"kubernetes.io/metadata.name": NS, "team": "t"}, "other": {"kubernetes.io/metadata.name": "other"}}
PP = {(8080, "TCP"), (9090, "TCP"), (53, "UDP"), (53, "TCP"), (7777, "TCP")}


def _eval(*pols):
    return network.evaluate(list(pols), [A, B, C, X], NSS, PP).effective


def test_no_policy_restricts_nothing_and_deny_all_allows_nothing():
    open_ = network.evaluate([], [A, B, C, X], NSS, PP)
    assert open_.restricted_egress == open_.restricted_ingress == frozenset()  # nothing is isolated
    deny = _pol("deny", {}, ["Ingress", "Egress"])
    flows = network.evaluate([deny], [A, B, C, X], NSS, PP)
    assert flows.restricted_egress == flows.restricted_ingress == {"a", "b"}
    assert flows.effective == flows.egress == flows.ingress == frozenset()


def test_pod_selector_is_namespace_local_and_namespace_selector_crosses():
    allow_from_a = _pol(
        "b-in",
        {"matchLabels": {"app": "b"}},
        ["Ingress"],
        ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "a"}}}], "ports": [{"port": 9090}]}],
    )
    flows = _eval(allow_from_a)
    assert Flow("a", "b", 9090) in flows and Flow("c", "b", 9090) not in flows
    assert Flow("a", "b", 7777) not in flows
    cross = _pol(
        "b-in",
        {"matchLabels": {"app": "b"}},
        ["Ingress"],
        ingress=[
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "other"}},
                        "podSelector": {"matchLabels": {"app": "a"}},
                    }
                ]
            }
        ],
    )
    flows = _eval(cross)
    assert Flow("c", "b", 7777) in flows and Flow("a", "b", 9090) not in flows


def test_ip_blocks_named_ports_protocols_and_union():
    egress = _pol(
        "a-out",
        {"matchLabels": {"app": "a"}},
        ["Egress"],
        egress=[
            {"to": [{"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.0/30"]}}], "ports": [{"port": 7777}]},
            {"to": [{"podSelector": {"matchLabels": {"app": "b"}}}], "ports": [{"port": "http"}]},
            {"ports": [{"port": 53, "protocol": "UDP"}]},
        ],
    )
    flows = _eval(egress)
    assert Flow("a", "x", 7777) in flows
    assert Flow("a", "b", 9090) in flows and Flow("a", "b", 8080) not in flows  # "http" resolves on b
    assert Flow("a", "c", 53, "UDP") in flows and Flow("a", "c", 53, "TCP") not in flows
    narrower = copy.deepcopy(egress)
    narrower["spec"]["egress"][0]["to"][0]["ipBlock"]["except"] = ["192.0.2.0/29"]
    assert Flow("a", "x", 7777) not in _eval(narrower)
    more = _pol(
        "a-out-2", {"matchLabels": {"app": "a"}}, ["Egress"], egress=[{"ports": [{"port": 53, "protocol": "TCP"}]}]
    )
    assert Flow("a", "c", 53, "TCP") in _eval(egress, more)  # policies add up


def test_policy_types_default_from_the_sections():
    only_ingress = {
        "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": NS},
        "spec": {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": []},
    }
    flows = _eval(only_ingress)
    assert Flow("a", "x", 7777) in flows and Flow("b", "a", 8080) not in flows
    with_egress = copy.deepcopy(only_ingress)
    with_egress["spec"]["egress"] = []
    assert Flow("a", "x", 7777) not in _eval(with_egress)


def test_port_ranges():
    pol = _pol(
        "a-out", {"matchLabels": {"app": "a"}}, ["Egress"], egress=[{"ports": [{"port": 8000, "endPort": 9000}]}]
    )
    flows = _eval(pol)
    assert Flow("a", "b", 8080) in flows and Flow("a", "b", 9090) not in flows
