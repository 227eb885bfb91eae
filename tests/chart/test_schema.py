"""values.schema.json of eafix-trading and eafix-service: generated, strict, and accepting every profile.

Rejections go through `render_with` (the real `helm template` path; a schema failure returns before
any template runs, so these renders are cheap). Acceptance of single edge values is checked against
the service chart's schema alone, and once more all together through a full render.
"""

from __future__ import annotations

import json
import shutil

import bundle_values_schema as bundler
import helm_python
import pytest

from conftest import SERVICES, TRADING
from eafix.platform.profiles import REPO
from eafix.platform.render import RenderError

SERVICE_CHART = TRADING / "charts" / "eafix-service"
SCHEMA_FILES = [TRADING / "values.schema.json", SERVICE_CHART / "values.schema.json",
                TRADING.parent / "eafix-infra" / "values.schema.json",
                TRADING.parent / "eafix-apps" / "values.schema.json"]




@pytest.fixture(scope="module")
def service_chart():
    with helm_python.Chart.load(SERVICE_CHART) as chart:
        yield chart


@pytest.fixture(scope="module")
def umbrella_global() -> dict:
    with helm_python.Chart.load(TRADING) as chart:
        return chart.values["global"]


def rejection(render_with, values: dict) -> str:
    with pytest.raises(RenderError) as err:
        render_with(values)
    message = str(err.value)
    assert "don't meet the specifications of the schema" in message, message
    return message


# --- generation --------------------------------------------------------------------------------------

def test_committed_schemas_are_generated_from_the_sources():
    expected = bundler.outputs()
    assert sorted(expected) == sorted(SCHEMA_FILES)
    for path, text in expected.items():
        assert path.read_text() == text, (
            f"{path.relative_to(REPO)} is stale: run `python ci/bundle_values_schema.py`")


def test_check_mode_names_the_stale_file(tmp_path, capsys):
    shutil.copytree(REPO / "schemas" / "values", tmp_path / "schemas" / "values")
    assert bundler.main(["--check", "--root", str(tmp_path)]) == 1  # nothing generated yet
    assert bundler.main(["--root", str(tmp_path)]) == 0
    assert bundler.main(["--check", "--root", str(tmp_path)]) == 0
    stale = tmp_path / "charts/eafix-trading/charts/eafix-service/values.schema.json"
    stale.write_text(stale.read_text().replace('"maximum": 65535', '"maximum": 65534'))
    capsys.readouterr()
    assert bundler.main(["--check", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(
        "charts/eafix-trading/charts/eafix-service/values.schema.json is stale"), err


def test_bundles_are_self_contained_draft_2020_12():
    from jsonschema import Draft202012Validator

    for path in SCHEMA_FILES:
        schema = json.loads(path.read_text())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(schema)
        refs = set()

        def walk(node, refs=refs):
            if isinstance(node, dict):
                if isinstance(node.get("$ref"), str):
                    refs.add(node["$ref"])
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(schema)
        assert refs and all(r.startswith("#/$defs/") and r.removeprefix("#/$defs/") in schema["$defs"]
                            for r in refs), refs
        assert path.read_text().endswith("}\n")


def test_umbrella_lists_global_tests_and_the_catalogue_services():
    schema = json.loads((TRADING / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    security = {"flows", "actors", "networkPolicy", "istio", "ingress", "certificate", "secretManagement", "namespace"}
    assert set(schema["properties"]) == {"global", "tests", "migrations", "prometheusRule", "dashboards", *security,
                                         "extraObjects", "eafix-common", *SERVICES}
    assert {schema["properties"][s]["$ref"] for s in SERVICES} == {"#/$defs/service"}
    enum = schema["$defs"]["serviceName"]["enum"]
    assert enum == SERVICES


def test_service_chart_root_declares_injected_global_and_enabled():
    schema = json.loads((SERVICE_CHART / "values.schema.json").read_text())
    shape = schema["$defs"][schema["$ref"].removeprefix("#/$defs/")]
    assert shape["additionalProperties"] is False
    assert shape["properties"]["global"]["type"] == "object"
    assert shape["properties"]["enabled"]["type"] == "boolean"


# --- every profile validates -------------------------------------------------------------------------

def test_every_profile_passes_the_schema(profile_render):
    # profile_render is parametrized over defaults, values/<env>, ci/*-values.yaml (shared renders)
    assert profile_render.select(kind="Deployment")


# --- typos at every depth ----------------------------------------------------------------------------

@pytest.mark.parametrize(("values", "where", "key"), [
    ({"data-ingestor": {"replicaCont": 2}}, "/data-ingestor", "replicaCont"),
    ({"global": {"imge": {"tag": "1.0.0"}}}, "/global", "imge"),
    ({"risk-manager": {"resources": {"limit": {"cpu": "1"}}}}, "/risk-manager/resources", "limit"),
    ({"global": {"redis": {"hostname": "redis"}}}, "/global/redis", "hostname"),
    ({"gui-gateway": {"autoscaling": {"maxReplica": 4}}}, "/gui-gateway/autoscaling", "maxReplica"),
    ({"tests": {"image": {"tga": "1.0.0"}}}, "/tests/image", "tga"),
    ({"gui-gatway": {"enabled": False}}, "", "gui-gatway"),
    ({"global": {"image": {"pullPolicyy": "Always"}}}, "/global/image", "pullPolicyy"),
    ({"reporter": {"probes": {"readiness": {"path": "/readyz", "periodSecond": 5}}}},
     "/reporter/probes/readiness", "periodSecond"),
    ({"reporter": {"serviceMonitor": {"intervall": "30s"}}}, "/reporter/serviceMonitor", "intervall"),
    ({"execution-engine": {"containerSecurityContext": {"fsGroup": 10001}}},
     "/execution-engine/containerSecurityContext", "fsGroup"),
    ({"global": {"podSecurityContext": {"seccompProfile": {"type": "RuntimeDefault", "profile": "x"}}}},
     "/global/podSecurityContext/seccompProfile", "profile"),
    ({"signal-generator": {"pdb": {"maxUnavaliable": 1}}}, "/signal-generator/pdb", "maxUnavaliable"),
    ({"gui-gateway": {"secretFiles": {"JWT_SECRET_KEY": {"key": "JWT_SECRET_KEY", "secret": "x"}}}},
     "/gui-gateway/secretFiles/JWT_SECRET_KEY", "secret"),
])
def test_typos_are_rejected_with_their_path(render_with, values, where, key):
    message = rejection(render_with, values)
    assert f"eafix-trading:\n- at '{where}': additional properties '{key}' not allowed" in message


def test_a_service_typo_is_also_reported_by_the_service_chart(render_with):
    message = rejection(render_with, {"data-ingestor": {"replicaCont": 2}})
    assert "data-ingestor:\n- at '': additional properties 'replicaCont' not allowed" in message


# --- wrong types, ranges, enums, patterns ------------------------------------------------------------

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(("values", "where", "reason"), [
    ({"data-ingestor": {"replicaCount": "two"}}, "/data-ingestor/replicaCount", "got string, want integer"),
    ({"data-ingestor": {"replicaCount": 1.5}}, "/data-ingestor/replicaCount", "got number, want integer"),
    ({"data-ingestor": {"replicaCount": -1}}, "/data-ingestor/replicaCount", "minimum: got -1, want 0"),
    ({"risk-manager": {"port": 0}}, "/risk-manager/port", "minimum: got 0, want 1"),
    ({"risk-manager": {"port": 70000}}, "/risk-manager/port", "maximum: got 70,000, want 65,535"),
    ({"global": {"redis": {"port": 0}}}, "/global/redis/port", "minimum: got 0, want 1"),
    ({"reporter": {"image": {"pullPolicy": "Sometimes"}}}, "/reporter/image/pullPolicy",
     "value must be one of 'Always', 'IfNotPresent', 'Never', ''"),
    ({"global": {"image": {"pullPolicy": ""}}}, "/global/image/pullPolicy",
     "value must be one of 'Always', 'IfNotPresent', 'Never'"),
    ({"risk-manager": {"resources": {"limits": {"cpu": "2 cores"}}}},
     "/risk-manager/resources/limits/cpu", "'2 cores' does not match pattern"),
    ({"risk-manager": {"resources": {"requests": {"cpu": "500Mi"}}}},
     "/risk-manager/resources/requests/cpu", "'500Mi' does not match pattern"),
    ({"risk-manager": {"resources": {"limits": {"memory": "512MB"}}}},
     "/risk-manager/resources/limits/memory", "'512MB' does not match pattern"),
    ({"risk-manager": {"resources": {"limits": {"memory": "512m"}}}},
     "/risk-manager/resources/limits/memory", "'512m' does not match pattern"),
    ({"tests": {"resources": {"requests": {"memory": "64 Mi"}}}},
     "/tests/resources/requests/memory", "'64 Mi' does not match pattern"),
    ({"global": {"image": {"digest": DIGEST.removeprefix("sha256:")}}},
     "/global/image/digest", "does not match pattern"),
    ({"execution-engine": {"image": {"digest": DIGEST + "0"}}},
     "/execution-engine/image/digest", "does not match pattern"),
    ({"execution-engine": {"image": {"digest": DIGEST.upper()}}},
     "/execution-engine/image/digest", "does not match pattern"),
    ({"global": {"image": {"tag": 1.1}}}, "/global/image/tag", "got number, want string"),
    ({"global": {"image": {"registry": "https://ghcr.io"}}}, "/global/image/registry",
     "does not match pattern"),
    ({"signal-generator": {"peers": ["order-router"]}}, "/signal-generator/peers/0", "value must be one of"),
    ({"signal-generator": {"peers": ["risk-manager", "risk-manager"]}}, "/signal-generator/peers",
     "items at 0 and 1 are equal"),
    ({"reporter": {"logLevel": "verbose"}}, "/reporter/logLevel", "value must be one of 'DEBUG', 'INFO'"),
    ({"reporter": {"backends": {"redis": "yes"}}}, "/reporter/backends/redis", "got string, want boolean"),
    ({"gui-gateway": {"autoscaling": {"minReplicas": 0}}}, "/gui-gateway/autoscaling/minReplicas",
     "minimum: got 0, want 1"),
    ({"gui-gateway": {"autoscaling": {"targetCPUUtilizationPercentage": 150}}},
     "/gui-gateway/autoscaling/targetCPUUtilizationPercentage", "maximum: got 150, want 100"),
    ({"gui-gateway": {"autoscaling": {"targetMemoryUtilizationPercentage": 0}}},
     "/gui-gateway/autoscaling/targetMemoryUtilizationPercentage", "minimum: got 0, want 1"),
    ({"reporter": {"pdb": {"maxUnavailable": "150%"}}}, "/reporter/pdb/maxUnavailable",
     "'150%' does not match pattern"),
    ({"reporter": {"pdb": {"minAvailable": -1}}}, "/reporter/pdb/minAvailable", "minimum: got -1, want 0"),
    ({"reporter": {"pdb": {"unhealthyPodEvictionPolicy": "Always"}}},
     "/reporter/pdb/unhealthyPodEvictionPolicy", "value must be one of"),
    ({"reporter": {"serviceMonitor": {"enabled": "yes"}}}, "/reporter/serviceMonitor/enabled",
     "got string, want null or boolean"),
    ({"reporter": {"serviceMonitor": {"interval": "30 seconds"}}}, "/reporter/serviceMonitor/interval",
     "does not match pattern"),
    ({"global": {"serviceMonitor": {"interval": ""}}}, "/global/serviceMonitor/interval",
     "does not match pattern"),
    ({"global": {"postgres": {"sslmode": "on"}}}, "/global/postgres/sslmode", "value must be one of"),
    ({"global": {"podAntiAffinityPreset": ""}}, "/global/podAntiAffinityPreset", "value must be one of"),
    ({"reporter": {"podAntiAffinityPreset": "medium"}}, "/reporter/podAntiAffinityPreset",
     "value must be one of 'soft', 'hard', ''"),
    ({"global": {"commonLabels": {"tier": 1}}}, "/global/commonLabels/tier", "got number, want string"),
    ({"reporter": {"podAnnotations": {"sidecar.istio.io/inject": False}}},
     "/reporter/podAnnotations/sidecar.istio.io~1inject", "got boolean, want string"),
    ({"global": {"containerSecurityContext": {"capabilities": {"drop": "ALL"}}}},
     "/global/containerSecurityContext/capabilities/drop", "got string, want array"),
    ({"global": {"podSecurityContext": {"runAsUser": "10001"}}}, "/global/podSecurityContext/runAsUser",
     "got string, want integer"),
    ({"reporter": {"secretFiles": {"API_TOKEN": {"secretName": "reporter-secrets"}}}},
     "/reporter/secretFiles/API_TOKEN", "missing property 'key'"),
    ({"global": {"imagePullSecrets": [{"secret": "registry-creds"}]}}, "/global/imagePullSecrets/0",
     "missing property 'name'"),
    ({"data-ingestor": {"extraVolumeMounts": {"cache": {"readOnly": True}}}},
     "/data-ingestor/extraVolumeMounts/cache", "missing property 'mountPath'"),
    ({"global": {"redis": {"host": "redis://redis-master"}}}, "/global/redis/host", "does not match pattern"),
    ({"global": {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname"}]}},
     "/global/topologySpreadConstraints/0", "missing property 'whenUnsatisfiable'"),
])
def test_invalid_values_are_rejected(render_with, values, where, reason):
    message = rejection(render_with, values)
    at_where = [line for line in message.splitlines() if line.lstrip(" -").startswith(f"at '{where}'")]
    assert any(reason in line for line in at_where), message


def test_removing_a_required_key_names_it(render_with):
    # The umbrella's own values hold only part of a service; the service chart sees the merged section.
    message = rejection(render_with, {"data-ingestor": {"image": None}})
    assert "data-ingestor:\n- at '': missing property 'image'" in message


# --- valid edge cases --------------------------------------------------------------------------------

@pytest.mark.parametrize("override", [
    {"resources": {"requests": {"cpu": "1"}}},
    {"resources": {"requests": {"cpu": "1.5"}}},
    {"resources": {"requests": {"cpu": "250m"}}},
    {"resources": {"requests": {"cpu": 2}}},
    {"resources": {"requests": {"cpu": 0.5}}},
    {"resources": {"limits": {"memory": "1Gi"}}},
    {"resources": {"limits": {"memory": "1.5Gi"}}},
    {"resources": {"limits": {"memory": "512M"}}},
    {"resources": {"limits": {"memory": "512Mi"}}},
    {"resources": {"limits": {"memory": "128k"}}},
    {"resources": {"limits": {"memory": "1e3"}}},
    {"resources": {"limits": {"memory": 1073741824}}},
    {"pdb": {"maxUnavailable": "25%"}},
    {"pdb": {"minAvailable": "50%"}},
    {"pdb": {"minAvailable": 1}},
    {"pdb": {"minAvailable": None}},
    {"autoscaling": {"targetMemoryUtilizationPercentage": None}},
    {"autoscaling": {"targetMemoryUtilizationPercentage": 100}},
    {"serviceMonitor": {"enabled": None, "interval": "1m30s", "scrapeTimeout": "10s"}},
    {"serviceMonitor": {"enabled": True, "interval": ""}},
    {"image": {"pullPolicy": "", "tag": "1.2.3-rc.1", "digest": ""}},
    {"image": {"registry": "registry.example.internal:5000", "repository": "team/eafix/reporter"}},
    {"imagePullSecrets": ["ops-creds", {"name": "registry-creds"}]},
    {"podAntiAffinityPreset": ""},
    {"peers": ["risk-manager", "execution-engine"]},
    {"config": {"maxPositions": 5, "symbols": ["EURUSD"], "limits": {"daily": 2}}},
    {"extraEnv": {"TZ": "UTC", "RETRIES": 3, "DEBUG_SQL": False,
                  "POD_IP": {"valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}}},
    {"secretFiles": {"API_TOKEN": {"secretName": "reporter-secrets", "key": "token"}, "OLD": None}},
    {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}},
    {"podSecurityContext": {"supplementalGroups": [2000], "fsGroupChangePolicy": "OnRootMismatch",
                            "seLinuxOptions": {"level": "s0:c123,c456"},
                            "appArmorProfile": {"type": "RuntimeDefault"}}},
])
def test_valid_edge_cases_pass_the_service_schema(service_chart, umbrella_global, override):
    service_chart.validate_schema({"global": umbrella_global, "enabled": True, **override})


def test_valid_edge_cases_render_through_the_umbrella(render_with):
    r = render_with({
        "global": {"image": {"digest": DIGEST, "pullPolicy": "Always"}, "imagePullSecrets": ["ops-creds"]},
        "tests": {"resources": {"requests": {"cpu": "0.1", "memory": "1e8"}}},
        "data-ingestor": {"resources": {"requests": {"cpu": "1", "memory": "1e3"},
                                        "limits": {"cpu": "1.5", "memory": "1Gi"}}},
        "risk-manager": {"resources": {"requests": {"cpu": "250m", "memory": "512M"}},
                         "pdb": {"maxUnavailable": "25%"}},
        "reporter": {"pdb": {"minAvailable": "50%"}, "replicaCount": 2, "serviceMonitor": {"enabled": True}},
        "gui-gateway": {"autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": 80}},
    })
    ingestor = r.one("Deployment", "data-ingestor")["spec"]["template"]["spec"]["containers"][0]
    assert ingestor["resources"]["limits"] == {"cpu": "1.5", "memory": "1Gi"}
    assert r.one("PodDisruptionBudget", "risk-manager")["spec"]["maxUnavailable"] == "25%"


def test_a_disabled_service_section_needs_only_what_it_sets(render_with):
    r = render_with({"reporter": {"enabled": False, "autoscaling": {"enabled": True}}})
    assert not r.select(kind="Deployment", name="reporter")


# --- the service chart's schema on its own -----------------------------------------------------------

def test_service_chart_accepts_its_defaults_with_the_injected_keys(service_chart, umbrella_global):
    service_chart.validate_schema({**service_chart.values, "global": umbrella_global, "enabled": True})


@pytest.mark.parametrize(("values", "expected"), [
    ({"replicaCont": 2}, "at '': additional properties 'replicaCont' not allowed"),
    ({"probes": {"liveness": {"timeoutSecond": 1}}},
     "at '/probes/liveness': additional properties 'timeoutSecond'"),
    ({"enabled": "yes"}, "at '/enabled': got string, want boolean"),
    ({"global": "ghcr.io"}, "at '/global': got string, want object"),
    ({"image": None}, "at '': missing property 'image'"),
    ({"probes": {"startup": {"path": None}}}, "at '/probes/startup': missing property 'path'"),
])
def test_service_chart_rejects_on_its_own(service_chart, umbrella_global, values, expected):
    with pytest.raises(helm_python.HelmValuesError) as err:
        service_chart.validate_schema({"global": umbrella_global, **values})
    assert expected in str(err.value)
