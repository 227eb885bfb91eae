"""Behaviour of the eafix-trading umbrella and its generic service chart."""

from __future__ import annotations

import hashlib
import re

import pytest
import yaml

from conftest import PORTS, PROFILE_IDS, SERVICES, TRADING, catalogue, pod_templates, render_profile
from eafix.platform.render import RenderError, path

ENV_PROFILES = ["eafix-trading:defaults", "eafix-trading:env-dev", "eafix-trading:env-staging",
                "eafix-trading:env-prod"]

# The deployment docs' table: requests cpu/memory -> limits cpu/memory.
RESOURCES = {
    "data-ingestor": ("200m", "256Mi", "500m", "512Mi"),
    "indicator-engine": ("300m", "512Mi", "700m", "1Gi"),
    "signal-generator": ("200m", "256Mi", "500m", "512Mi"),
    "risk-manager": ("300m", "512Mi", "700m", "1Gi"),
    "execution-engine": ("200m", "256Mi", "500m", "512Mi"),
    "gui-gateway": ("200m", "256Mi", "500m", "512Mi"),
    "calendar-ingestor": ("100m", "128Mi", "300m", "256Mi"),
    "reentry-matrix-svc": ("150m", "256Mi", "400m", "512Mi"),
    "reporter": ("150m", "256Mi", "400m", "512Mi"),
    "compliance-monitor": ("150m", "256Mi", "400m", "512Mi"),
}
POSTGRES_USERS = {s.name for s in catalogue.SERVICES if s.uses_postgres}


def container(deploy: dict) -> dict:
    (c,) = deploy["spec"]["template"]["spec"]["containers"]
    return c


# --- what every environment renders --------------------------------------------------------------

@pytest.mark.parametrize("profile_id", ENV_PROFILES)
def test_environment_renders_the_full_service_set(profile_id):
    r = render_profile(profile_id)
    kinds = r.kinds()
    for kind in ("Deployment", "Service", "PodDisruptionBudget"):
        assert kinds[kind] == len(SERVICES), kind
    assert kinds["ServiceAccount"] == len(SERVICES) + 1  # one per service plus the helm-test hook's own
    assert {d["metadata"]["name"] for d in r.select(kind="Deployment")} == set(SERVICES)
    # one settings ConfigMap per service plus the peers ConfigMaps of the callers
    assert {c["metadata"]["name"] for c in r.select(kind="ConfigMap")} >= {f"{s}-config" for s in SERVICES}
    (hook,) = r.select(kind="Pod")
    assert hook["metadata"]["annotations"]["helm.sh/hook"] == "test"


@pytest.mark.parametrize("profile_id", PROFILE_IDS)
def test_two_renders_are_byte_identical(profile_id):
    from eafix.platform.profiles import profiles
    from eafix.platform.render import render

    profile = next(p for p in profiles() if p.id == profile_id)
    assert render(profile.chart_dir, profile.values_files).manifests == render_profile(profile_id).manifests


def test_templates_use_nothing_random_or_cluster_dependent():
    forbidden = re.compile(
        r"\b(randAlpha\w*|randNumeric|randAscii|uuidv4|now|lookup|genPrivateKey|genCA)\b|\.Capabilities")
    offenders = []
    for tpl in (t for t in TRADING.rglob("templates/**/*") if t.is_file()):
        for lineno, line in enumerate(tpl.read_text().splitlines(), 1):
            if forbidden.search(line):
                offenders.append(f"{tpl.relative_to(TRADING)}:{lineno}: {line.strip()}")
    assert offenders == []


# --- per service ------------------------------------------------------------------------------------

@pytest.mark.parametrize("svc", SERVICES)
def test_service_deployment_defaults(defaults, svc):
    d = defaults.one("Deployment", svc)
    c = container(d)
    assert c["ports"] == [{"name": "http", "containerPort": PORTS[svc], "protocol": "TCP"}]
    assert c["args"] == ["serve", svc]
    assert c["image"] == f"ghcr.io/eafix/{svc}:0.1.0"
    live, ready = c["livenessProbe"], c["readinessProbe"]
    assert (live["httpGet"], live["initialDelaySeconds"], live["periodSeconds"]) == (
        {"path": "/healthz", "port": "http"}, 30, 10)
    assert (ready["httpGet"], ready["initialDelaySeconds"], ready["periodSeconds"]) == (
        {"path": "/readyz", "port": "http"}, 5, 5)
    req_cpu, req_mem, lim_cpu, lim_mem = RESOURCES[svc]
    assert c["resources"] == {"requests": {"cpu": req_cpu, "memory": req_mem},
                              "limits": {"cpu": lim_cpu, "memory": lim_mem}}
    svc_obj = defaults.one("Service", svc)
    assert svc_obj["spec"]["ports"] == [{"name": "http", "port": PORTS[svc], "targetPort": "http", "protocol": "TCP"}]


@pytest.mark.parametrize("svc", SERVICES)
def test_restricted_security_context_and_no_token(defaults, svc):
    d = defaults.one("Deployment", svc)
    spec = d["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == svc
    assert defaults.one("ServiceAccount", svc)["automountServiceAccountToken"] is False
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] >= 10000
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(d)["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["name"]: m for m in container(d)["volumeMounts"]}
    assert mounts["tmp"]["mountPath"] == "/tmp"


@pytest.mark.parametrize("svc", SERVICES)
def test_backends_are_configured_and_secrets_are_files(defaults, svc):
    cm = defaults.one("ConfigMap", f"{svc}-config")["data"]
    assert cm["SERVICE_REDIS_URL"] == "redis://redis-master:6379/0"
    assert cm["SERVICE_LOG_LEVEL"] == "INFO"
    assert ("SERVICE_POSTGRES_URL" in cm) == (svc in POSTGRES_USERS)
    c = container(defaults.one("Deployment", svc))
    assert "env" not in c or all("secretKeyRef" not in str(e) for e in c["env"])
    assert all("secretRef" not in e for e in c["envFrom"])
    volumes = {v["name"]: v for v in defaults.one("Deployment", svc)["spec"]["template"]["spec"]["volumes"]}
    (source,) = volumes["secrets"]["projected"]["sources"]
    assert source["secret"]["name"] == "trading-secrets"
    files = {i["path"]: i["key"] for i in source["secret"]["items"]}
    assert files["SERVICE_REDIS_PASSWORD"] == "REDIS_PASSWORD"
    if svc in POSTGRES_USERS:
        assert files["SERVICE_POSTGRES_USER"] == "POSTGRES_USER"
        assert files["SERVICE_POSTGRES_PASSWORD"] == "POSTGRES_PASSWORD"
    mount = next(m for m in c["volumeMounts"] if m["name"] == "secrets")
    assert mount == {"name": "secrets", "mountPath": "/var/run/secrets/eafix", "readOnly": True}


def test_service_specific_secrets_are_mounted(defaults):
    def files(svc):
        vols = defaults.one("Deployment", svc)["spec"]["template"]["spec"]["volumes"]
        sources = next(v for v in vols if v["name"] == "secrets")["projected"]["sources"]
        return {i["path"] for s in sources for i in s["secret"]["items"]}

    assert {"SERVICE_MT4_API_KEY", "SERVICE_BROKER_API_SECRET"} <= files("execution-engine")
    assert {"SERVICE_API_KEYS", "SERVICE_BOOTSTRAP_ADMIN"} == files("gui-gateway") - {
        "SERVICE_REDIS_PASSWORD", "SERVICE_POSTGRES_USER", "SERVICE_POSTGRES_PASSWORD"}
    assert {"SERVICE_ALERTMANAGER_WEBHOOK_SECRET", "SERVICE_GATEWAY_API_KEY"} <= files("compliance-monitor")
    assert "SERVICE_MT4_API_KEY" not in files("risk-manager")


def test_secret_names_and_keys_are_configurable(render_with):
    r = render_with({"global": {"redis": {"existingSecret": "bus-auth", "passwordKey": "pw"},
                                "postgres": {"existingSecret": "db-auth", "usernameKey": "u", "passwordKey": "p"}}})
    vols = r.one("Deployment", "risk-manager")["spec"]["template"]["spec"]["volumes"]
    sources = {s["secret"]["name"]: s["secret"]["items"] for s in
               next(v for v in vols if v["name"] == "secrets")["projected"]["sources"]}
    assert sources["bus-auth"] == [{"key": "pw", "path": "SERVICE_REDIS_PASSWORD"}]
    assert {"key": "u", "path": "SERVICE_POSTGRES_USER"} in sources["db-auth"]


def test_peer_urls_reach_callers(defaults):
    assert defaults.one("ConfigMap", "signal-generator-peers")["data"] == {
        "SERVICE_RISK_MANAGER_URL": "http://risk-manager:8084", "SERVICE_CALENDAR_REQUIRED": "true"}
    gateway = defaults.one("ConfigMap", "gui-gateway-peers")["data"]
    # peers ["*"]: every other service, named as the catalogue names it
    assert gateway == {f"SERVICE_{s.upper().replace('-', '_')}_URL": f"http://{s}:{PORTS[s]}"
                       for s in SERVICES if s != "gui-gateway"}
    assert gateway["SERVICE_COMPLIANCE_MONITOR_URL"] == "http://compliance-monitor:9201"
    env_from = container(defaults.one("Deployment", "signal-generator"))["envFrom"]
    assert {"configMapRef": {"name": "signal-generator-peers", "optional": True}} in env_from


def test_every_service_gets_the_urls_of_its_catalogue_peers(defaults):
    for spec in catalogue.SERVICES:
        found = defaults.select(kind="ConfigMap", name=f"{spec.name}-peers")
        urls = {k: v for k, v in (found[0]["data"] if found else {}).items() if k.endswith("_URL")}
        assert urls == {f"SERVICE_{p.upper().replace('-', '_')}_URL": f"http://{p}:{PORTS[p]}" for p in spec.peers}, \
            spec.name


def test_the_calendar_gate_is_required_exactly_while_calendar_ingestor_runs(defaults, render_with):
    def required(r) -> set[str]:
        return {cm["metadata"]["name"].removesuffix("-peers") for cm in r.select(kind="ConfigMap")
                if cm["metadata"]["name"].endswith("-peers") and cm["data"].get("SERVICE_CALENDAR_REQUIRED") == "true"}

    assert required(defaults) == {"signal-generator", "risk-manager"}
    assert required(render_with({"calendar-ingestor": {"enabled": False}})) == set()


def test_config_becomes_service_env_and_rolls_pods(defaults, render_with):
    r = render_with({"data-ingestor": {"config": {"maxPriceAgeSeconds": 45, "symbols": ["EURUSD", "USDJPY"]}}})
    data = r.one("ConfigMap", "data-ingestor-config")["data"]
    assert data["SERVICE_MAX_PRICE_AGE_SECONDS"] == "45"
    assert data["SERVICE_SYMBOLS"] == '["EURUSD","USDJPY"]'

    def checksum(rr):
        return rr.one("Deployment", "data-ingestor")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum(r) != checksum(defaults)
    cm_text = r.manifests["eafix-trading/charts/data-ingestor/templates/configmap.yaml"]
    assert checksum(r) == hashlib.sha256(cm_text.encode()).hexdigest()
    assert checksum(r) == checksum(render_with({"data-ingestor": {"config": {
        "maxPriceAgeSeconds": 45, "symbols": ["EURUSD", "USDJPY"]}}}))


def test_changed_secret_reference_rolls_pods(defaults, render_with):
    r = render_with({"global": {"redis": {"existingSecret": "rotated-v2"}}})
    key = "checksum/secret-refs"
    before = defaults.one("Deployment", "reporter")["spec"]["template"]["metadata"]["annotations"][key]
    after = r.one("Deployment", "reporter")["spec"]["template"]["metadata"]["annotations"][key]
    assert before != after


# --- autoscaling, PDB, scheduling -------------------------------------------------------------------

def test_signal_generator_hpa_and_replicas_left_out(defaults):
    hpa = defaults.one("HorizontalPodAutoscaler", "signal-generator")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 10)
    assert hpa["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "signal-generator"}
    assert "replicas" not in defaults.one("Deployment", "signal-generator")["spec"]
    assert defaults.one("Deployment", "risk-manager")["spec"]["replicas"] == 2


def test_every_hpa_profile_drops_replicas():
    r = render_profile("eafix-trading:ci-hpa")
    assert len(r.select(kind="HorizontalPodAutoscaler")) == len(SERVICES)
    assert all("replicas" not in d["spec"] for d in r.select(kind="Deployment"))
    gw = r.one("HorizontalPodAutoscaler", "gui-gateway")["spec"]["metrics"]
    assert [m["resource"]["name"] for m in gw] == ["memory", "cpu"]


@pytest.mark.parametrize("svc", SERVICES)
def test_pdb_allows_one_disruption_and_evicts_unhealthy(defaults, svc):
    pdb = defaults.one("PodDisruptionBudget", svc)["spec"]
    assert pdb["maxUnavailable"] == 1
    assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert pdb["selector"]["matchLabels"] == {"app.kubernetes.io/name": svc, "app.kubernetes.io/instance": "eafix"}


def test_dev_runs_single_replicas_and_prod_documented_counts():
    dev = render_profile("eafix-trading:env-dev")
    assert {d["spec"]["replicas"] for d in dev.select(kind="Deployment")} == {1}
    assert dev.select(kind="HorizontalPodAutoscaler") == []
    prod = render_profile("eafix-trading:env-prod")
    replicas = {d["metadata"]["name"]: d["spec"].get("replicas") for d in prod.select(kind="Deployment")}
    assert replicas == {"gui-gateway": 3, "data-ingestor": 2, "indicator-engine": 2, "signal-generator": None,
                        "risk-manager": 2, "execution-engine": 2, "calendar-ingestor": 1,
                        "reentry-matrix-svc": 2, "reporter": 1, "compliance-monitor": 1}
    spread = prod.one("Deployment", "risk-manager")["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread[0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert spread[0]["labelSelector"] == {"matchLabels": {"app.kubernetes.io/name": "risk-manager",
                                                          "app.kubernetes.io/instance": "eafix"}}


def test_anti_affinity_preset_and_local_affinity_override(defaults, render_with):
    soft = defaults.one("Deployment", "reporter")["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = soft["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    custom = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["trading"]}]}]}}}
    r = render_with({"global": {"podAntiAffinityPreset": "hard"}, "reporter": {"affinity": custom}})
    assert r.one("Deployment", "reporter")["spec"]["template"]["spec"]["affinity"] == custom
    hard = r.one("Deployment", "risk-manager")["spec"]["template"]["spec"]["affinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" in hard["podAntiAffinity"]


def test_security_context_global_with_local_override(render_with):
    r = render_with({"global": {"podSecurityContext": {"runAsUser": 20000}},
                     "reporter": {"containerSecurityContext": {"runAsUser": 30000}}})
    spec = r.one("Deployment", "reporter")["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsUser"] == 20000
    assert spec["securityContext"]["runAsNonRoot"] is True  # untouched global keys stay
    assert container(r.one("Deployment", "reporter"))["securityContext"]["runAsUser"] == 30000
    assert container(r.one("Deployment", "risk-manager"))["securityContext"]["runAsUser"] == 10001


# --- images, labels, names --------------------------------------------------------------------------

def test_image_precedence_local_over_global_over_default(render_with):
    r = render_with({
        "global": {"image": {"registry": "reg.example", "repository": "team/eafix", "tag": "1.2.3"}},
        "risk-manager": {"image": {"repository": "other/risk", "tag": "9.9.9", "pullPolicy": "Always"}},
        "reporter": {"image": {"digest": "sha256:" + "a" * 64}},
    })
    assert container(r.one("Deployment", "data-ingestor"))["image"] == "reg.example/team/eafix/data-ingestor:1.2.3"
    risk = container(r.one("Deployment", "risk-manager"))
    assert (risk["image"], risk["imagePullPolicy"]) == ("reg.example/other/risk:9.9.9", "Always")
    assert container(r.one("Deployment", "reporter"))["image"] == (
        "reg.example/team/eafix/reporter:1.2.3@sha256:" + "a" * 64)
    assert container(r.one("Deployment", "reporter"))["imagePullPolicy"] == "IfNotPresent"


def test_pull_secrets_reach_every_pod_including_the_test_hook():
    r = render_profile("eafix-trading:ci-pinned")
    for obj, spec in pod_templates(r):
        names = [s["name"] for s in spec["imagePullSecrets"]]
        assert names[:2] == ["registry-creds", "ops-creds"], obj["metadata"]["name"]
        assert len(names) == len(set(names))
    exe = r.one("Deployment", "eafix-execution-engine")["spec"]["template"]["spec"]["imagePullSecrets"]
    assert [s["name"] for s in exe] == ["registry-creds", "ops-creds", "broker-registry"]


def test_local_pull_secrets_replace_the_global_ones_and_an_empty_list_clears_them(render_with):
    r = render_with({"global": {"imagePullSecrets": ["registry-creds"]},
                     "reporter": {"imagePullSecrets": []},
                     "risk-manager": {"imagePullSecrets": [{"name": "risk-creds"}]}})

    def secrets(name):
        return r.one("Deployment", name)["spec"]["template"]["spec"].get("imagePullSecrets")

    assert secrets("reporter") is None
    assert secrets("risk-manager") == [{"name": "risk-creds"}]
    assert secrets("data-ingestor") == [{"name": "registry-creds"}]  # unset (null) inherits
    assert r.one("Pod")["spec"]["imagePullSecrets"] == [{"name": "registry-creds"}]


def test_scheduling_follows_the_same_rule_an_empty_value_clears_the_global(render_with):
    spread = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"}]
    toleration = {"key": "dedicated", "operator": "Exists"}
    r = render_with({"global": {"nodeSelector": {"pool": "trading"}, "tolerations": [toleration],
                                "topologySpreadConstraints": spread, "priorityClassName": "trading-high"},
                     "reporter": {"nodeSelector": {}, "tolerations": [], "topologySpreadConstraints": [],
                                  "affinity": {}},
                     "risk-manager": {"nodeSelector": {"pool": "risk"}, "priorityClassName": "risk-critical"}})

    def spec(name):
        return r.one("Deployment", name)["spec"]["template"]["spec"]

    reporter = spec("reporter")
    assert not {"nodeSelector", "tolerations", "topologySpreadConstraints", "affinity"} & set(reporter)
    assert reporter["priorityClassName"] == "trading-high"
    risk = spec("risk-manager")
    assert (risk["nodeSelector"], risk["priorityClassName"]) == ({"pool": "risk"}, "risk-critical")
    assert risk["tolerations"] == [toleration]
    assert risk["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert "podAntiAffinity" in risk["affinity"]  # affinity unset everywhere: the preset


def test_common_labels_and_annotations_on_every_object():
    r = render_profile("eafix-trading:ci-pinned")
    for o in r.objects:
        assert o["metadata"]["labels"]["team"] == "trading-platform", o["metadata"]["name"]
        assert o["metadata"]["annotations"]["owner"] == "trading-platform@example.internal"


@pytest.mark.parametrize("profile_id", PROFILE_IDS)
def test_selectors_are_name_and_instance_only(profile_id):
    r = render_profile(profile_id)
    for d in r.select(kind="Deployment"):
        selector = d["spec"]["selector"]["matchLabels"]
        assert set(selector) == {"app.kubernetes.io/name", "app.kubernetes.io/instance"}
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert all(labels[k] == v for k, v in selector.items())


def test_prefixed_names_for_two_releases_in_one_namespace():
    r = render_profile("eafix-trading:ci-pinned")
    assert {d["metadata"]["name"] for d in r.select(kind="Deployment")} == {f"eafix-{s}" for s in SERVICES}
    assert r.one("ConfigMap", "eafix-signal-generator-peers")["data"] == {
        "SERVICE_RISK_MANAGER_URL": "http://eafix-risk-manager:8084", "SERVICE_CALENDAR_REQUIRED": "true"}
    hook = r.one("Pod")
    assert "http://eafix-gui-gateway:8080/readyz" in hook["spec"]["containers"][0]["args"]
    spec = r.one("Deployment", "eafix-reporter")["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "eafix-reporter"
    assert container(r.one("Deployment", "eafix-reporter"))["envFrom"][0] == {
        "configMapRef": {"name": "eafix-reporter-config"}}


def test_extra_env_and_volumes_are_maps():
    r = render_profile("eafix-trading:ci-pinned")
    d = r.one("Deployment", "eafix-execution-engine")
    assert {"name": "HTTP_PROXY_DISABLED", "value": "1"} in container(d)["env"]
    assert {"name": "mt4-bridge", "mountPath": "/var/lib/eafix/mt4"} in container(d)["volumeMounts"]
    assert {"name": "mt4-bridge", "emptyDir": {}} in d["spec"]["template"]["spec"]["volumes"]


def test_service_monitor_toggle_labels_and_intervals(defaults):
    assert defaults.select(kind="ServiceMonitor") == []
    prod = render_profile("eafix-trading:env-prod")
    sm = prod.one("ServiceMonitor", "data-ingestor")
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "5s"}]
    assert prod.one("ServiceMonitor", "calendar-ingestor")["spec"]["endpoints"][0]["interval"] == "30s"
    assert prod.one("ServiceMonitor", "gui-gateway")["spec"]["endpoints"][0]["interval"] == "10s"


# --- wiring invariants over every profile ----------------------------------------------------------

@pytest.mark.parametrize("profile_id", PROFILE_IDS)
def test_services_select_one_workload_and_target_declared_ports(profile_id):
    r = render_profile(profile_id)
    workloads = r.select(kind="Deployment")
    for s in r.select(kind="Service"):
        selector = s["spec"]["selector"]
        matching = [d for d in workloads
                    if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in selector.items())]
        assert len(matching) == 1, s["metadata"]["name"]
        declared = {p["name"] for p in container(matching[0])["ports"]}
        declared |= {p["containerPort"] for p in container(matching[0])["ports"]}
        for port in s["spec"]["ports"]:
            assert port["targetPort"] in declared


@pytest.mark.parametrize("profile_id", PROFILE_IDS)
def test_probes_target_declared_ports(profile_id):
    r = render_profile(profile_id)
    for obj, spec in pod_templates(r):
        for c in spec["containers"]:
            declared = {p["name"] for p in c.get("ports", [])} | {p["containerPort"] for p in c.get("ports", [])}
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                if probe in c:
                    assert c[probe]["httpGet"]["port"] in declared, (obj["metadata"]["name"], probe)


@pytest.mark.parametrize("svc", SERVICES)
def test_disabling_a_service_removes_it_everywhere(render_with, svc):
    r = render_with({svc: {"enabled": False}})
    assert len(r.select(kind="Deployment")) == len(SERVICES) - 1
    text = r.text() + (r.notes or "")
    assert re.search(rf"(?<![\w-]){re.escape(svc)}(?![\w-])", text) is None
    hook_args = r.one("Pod")["spec"]["containers"][0]["args"]
    assert len(hook_args) == 1 + len(SERVICES) - 1


def test_minimal_profile_has_only_the_core_pipeline():
    r = render_profile("eafix-trading:ci-minimal")
    assert {d["metadata"]["name"] for d in r.select(kind="Deployment")} == {
        "data-ingestor", "indicator-engine", "signal-generator", "risk-manager", "execution-engine"}
    assert "gui-gateway" not in r.text()


# --- NOTES and validation --------------------------------------------------------------------------

def test_notes_tell_how_to_reach_the_gateway_and_check_health(defaults):
    assert "kubectl -n eafix-trading port-forward svc/gui-gateway 8080:8080" in defaults.notes
    assert "helm test eafix -n eafix-trading" in defaults.notes
    assert "/readyz" in defaults.notes


@pytest.mark.parametrize(("values", "message"), [
    ({"risk-manager": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 3}}},
     "risk-manager.autoscaling: minReplicas (5) is greater than maxReplicas (3)"),
    ({"reporter": {"pdb": {"maxUnavailable": 0}}}, "reporter.pdb: maxUnavailable 0 never allows a disruption"),
    ({"reporter": {"pdb": {"maxUnavailable": "0%"}}}, "reporter.pdb: maxUnavailable 0% never allows"),
    ({"data-ingestor": {"pdb": {"minAvailable": 2}}}, "data-ingestor.pdb: minAvailable 2 with 2 replica(s)"),
    ({"data-ingestor": {"pdb": {"minAvailable": "100%"}}}, "data-ingestor.pdb: minAvailable 100%"),
    ({"signal-generator": {"pdb": {"minAvailable": 2}}}, "signal-generator.pdb: minAvailable 2 with 2 replica(s)"),
    ({"global": {"image": {"tag": "latest"}}}, "image: tag \"latest\" is not a pinned version"),
    ({"global": {"redis": {"existingSecret": ""}}}, "global.redis.existingSecret: required"),
    ({s: {"enabled": False} for s in SERVICES}, "every service is disabled"),
])
def test_contradictory_values_fail_with_a_validation_block(render_with, values, message):
    with pytest.raises(RenderError) as err:
        render_with(values)
    assert "VALUES VALIDATION:" in str(err.value)
    assert message in str(err.value)


def test_validation_collects_every_problem(render_with):
    with pytest.raises(RenderError) as err:
        render_with({"reporter": {"pdb": {"maxUnavailable": 0}},
                     "risk-manager": {"autoscaling": {"enabled": True, "minReplicas": 4, "maxReplicas": 2}}})
    assert "reporter.pdb" in str(err.value) and "risk-manager.autoscaling" in str(err.value)


def test_valid_edge_cases_render(render_with):
    r = render_with({"global": {"image": {"tag": "latest", "digest": "sha256:" + "b" * 64}},
                     "data-ingestor": {"pdb": {"minAvailable": 1}}})
    assert r.one("PodDisruptionBudget", "data-ingestor")["spec"] == {
        "minAvailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow",
        "selector": {"matchLabels": {"app.kubernetes.io/name": "data-ingestor", "app.kubernetes.io/instance": "eafix"}}}


# --- helm test hook ---------------------------------------------------------------------------------

def test_helm_test_hook_calls_readyz_of_every_enabled_service(defaults):
    hook = defaults.one("Pod", "eafix-readyz-test")
    ann = hook["metadata"]["annotations"]
    assert ann["helm.sh/hook"] == "test"
    assert ann["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    assert not any(k.startswith("argocd.argoproj.io/") for k in ann)
    c = hook["spec"]["containers"][0]
    assert c["args"] == ["check-ready"] + [f"http://{s}:{PORTS[s]}/readyz" for s in SERVICES]
    assert hook["spec"]["restartPolicy"] == "Never"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert hook["spec"]["automountServiceAccountToken"] is False


def test_helm_test_hook_can_be_switched_off(render_with):
    assert render_with({"tests": {"enabled": False}}).select(kind="Pod") == []


# --- chart metadata ---------------------------------------------------------------------------------

def test_umbrella_declares_the_service_chart_once_per_catalogue_service():
    import eafix

    chart = yaml.safe_load((TRADING / "Chart.yaml").read_text())
    service_chart = yaml.safe_load((TRADING / "charts/eafix-service/Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["type"] == "application"
    assert chart["appVersion"] == service_chart["appVersion"] == eafix.__version__
    deps = [d for d in chart["dependencies"] if d["name"] == "eafix-service"]
    assert [d["alias"] for d in deps] == SERVICES  # the catalogue's order is the pipeline order
    for dep in deps:
        # the umbrella finds its services by this repository (templates/_helpers.tpl)
        assert dep["repository"] == "file://charts/eafix-service"
        assert dep["condition"] == f"{dep['alias']}.enabled"
        assert dep["version"] == service_chart["version"]


def test_path_helper_reads_nested_lists(defaults):
    d = defaults.one("Deployment", "reporter")
    assert path(d, "spec.template.spec.containers.0.name") == "reporter"
    assert path(d, "spec.nothing.here", None) is None
