"""eafix-infra: dependency declarations, every value handed to a subchart, the Secret contract with
eafix-trading, the chart's own templates (Namespace, StorageClass, Secrets, backups, datasource,
compliance routing) and the policy gate on every profile.

The Bitnami and kube-prometheus-stack subcharts are OCI dependencies that only `helm dependency
build` fetches; offline the chart's own templates render without them (render.offline_copy for
`helm template`/`helm lint`), and what is handed to the subcharts is checked against the keys
those charts document (tests/chart/data/*.keys, from ci/bitnami_value_keys.py).
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import bitnami_value_keys
import pytest
import yaml
from argon2 import PasswordHasher

from conftest import CHARTS, pod_spec, render_profile
from eafix.platform import custom_resources
from eafix.platform.policy import checkov, exemptions, format_table, run_all
from eafix.platform.profiles import ENVIRONMENTS, REPO, env_overlay, profiles
from eafix.platform.render import RenderError, load_values, missing_dependencies, offline_copy, render

INFRA = CHARTS / "eafix-infra"
DATA = Path(__file__).parent / "data"
INFRA_PROFILES = [p.id for p in profiles("eafix-infra")]
VERSIONS = [f"1.{minor}" for minor in range(29, 38)]


def chart_yaml() -> dict[str, Any]:
    return yaml.safe_load((INFRA / "Chart.yaml").read_text())


def infra(values: dict | None = None, files=(), **kw):
    return render(INFRA, files, values or {}, **kw)


def rejection(values: dict, files=()) -> str:
    with pytest.raises(RenderError) as err:
        infra(values, files)
    return str(err.value)


# --- Chart.yaml dependencies -------------------------------------------------------------------------

def _caret_tilde_accepts(constraint: str, version: str) -> bool:
    """Helm's `~x.y.z`: >= x.y.z and < x.(y+1).0."""
    m = re.fullmatch(r"~(\d+)\.(\d+)\.(\d+)", constraint)
    assert m, f"{constraint!r} is not a ~x.y.z range"
    low = tuple(int(x) for x in m.groups())
    v = tuple(int(x) for x in version.split("."))
    return low <= v < (low[0], low[1] + 1, 0)


@pytest.mark.parametrize(("name", "repository", "condition", "documented", "accepts", "refuses"), [
    ("redis", "oci://registry-1.docker.io/bitnamicharts", "redis.enabled", "23.1.1", ["23.1.9"],
     ["23.2.0", "24.0.0", "23.1.0"]),
    ("postgresql", "oci://registry-1.docker.io/bitnamicharts", "postgresql.enabled", "17.1.0", ["17.1.4"],
     ["17.2.0", "18.0.0", "16.9.9"]),
    ("kube-prometheus-stack", "oci://ghcr.io/prometheus-community/charts", "monitoring.enabled", "88.5.3",
     ["88.5.0"], ["88.6.0", "89.0.0"]),
])
def test_dependency_declarations(name, repository, condition, documented, accepts, refuses):
    dep = next(d for d in chart_yaml()["dependencies"] if d["name"] == name)
    assert dep["repository"] == repository
    assert dep["condition"] == condition
    for version in [documented, *accepts]:
        assert _caret_tilde_accepts(dep["version"], version), (dep["version"], version)
    for version in refuses:
        assert not _caret_tilde_accepts(dep["version"], version), (dep["version"], version)


def test_conditions_are_booleans_and_monitoring_is_off_by_default():
    values = yaml.safe_load((INFRA / "values.yaml").read_text())
    assert values["redis"]["enabled"] is True and values["postgresql"]["enabled"] is True
    assert values["monitoring"]["enabled"] is False
    assert {d["name"] for d in chart_yaml()["dependencies"]} == {"redis", "postgresql", "kube-prometheus-stack",
                                                                 "eafix-common"}


def test_dependencies_are_not_vendored_and_rendering_works_without_them(tmp_path):
    assert missing_dependencies(INFRA) == ["redis", "postgresql", "kube-prometheus-stack"]
    copy_dir = offline_copy(INFRA, tmp_path)
    kept = yaml.safe_load((copy_dir / "Chart.yaml").read_text())["dependencies"]
    assert copy_dir != INFRA and [d["name"] for d in kept] == ["eafix-common"]  # the library is present
    assert (copy_dir / "charts" / "eafix-common" / "templates").is_dir()
    assert chart_yaml()["dependencies"], "the original Chart.yaml keeps its declarations"
    assert offline_copy(CHARTS / "eafix-trading", tmp_path) == CHARTS / "eafix-trading"  # file:// deps are present
    assert "helm dependency build charts/eafix-infra" in (INFRA / "README.md").read_text()


# --- every key handed to a subchart is one that chart documents --------------------------------------

def _documented(file: str) -> tuple[set[str], set[str]]:
    """(leaf keys, prefixes that accept free-form children) of a key list."""
    leaves, free = set(), set()
    for line in (DATA / file).read_text().splitlines():
        if line and not line.startswith("#"):
            (free if line.endswith(".*") else leaves).add(line.removesuffix(".*"))
    return leaves, free


SUBCHART_KEYS = {
    "redis": "bitnami-redis-23.1.1.keys",
    "postgresql": "bitnami-postgresql-17.1.0.keys",
    "kube-prometheus-stack": "kube-prometheus-stack-88.5.keys",
}


def _paths(node: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the leaves of a values tree (lists are leaves)."""
    if isinstance(node, dict) and node:
        return [p for k, v in node.items() for p in _paths(v, f"{prefix}{k}.")]
    return [prefix.removesuffix(".")]


def undocumented(subchart: str, section: dict[str, Any]) -> list[str]:
    leaves, free = _documented(SUBCHART_KEYS[subchart])
    bad = []
    for path in _paths(section):
        if path in ("", "enabled"):  # nothing set; the dependency's condition key, which Helm hands on
            continue
        if path in leaves or path in free or any(path.startswith(f + ".") for f in free):
            continue
        bad.append(path)
    return bad


def _value_sources() -> list[tuple[str, dict[str, Any]]]:
    sources = [("values.yaml", yaml.safe_load((INFRA / "values.yaml").read_text()))]
    for env in ENVIRONMENTS:
        sources.append((f"values/{env}", yaml.safe_load(env_overlay("eafix-infra", env).read_text()) or {}))
    for scenario in sorted((INFRA / "ci").glob("*-values.yaml")):
        sources.append((f"ci/{scenario.name}", yaml.safe_load(scenario.read_text()) or {}))
    return sources


@pytest.mark.parametrize("subchart", sorted(SUBCHART_KEYS))
def test_every_key_passed_to_a_subchart_is_documented(subchart):
    checked = 0
    for where, values in _value_sources():
        section = values.get(subchart) or {}
        checked += len(_paths(section)) if section else 0
        assert not undocumented(subchart, section), f"{where}: {subchart} does not document these keys"
    assert checked > 5


def test_globals_are_documented_by_both_bitnami_charts():
    redis_leaves, redis_free = _documented(SUBCHART_KEYS["redis"])
    pg_leaves, pg_free = _documented(SUBCHART_KEYS["postgresql"])
    for where, values in _value_sources():
        for path in _paths({"global": values.get("global") or {}}):
            if path == "global":
                continue
            assert path in redis_leaves | redis_free and path in pg_leaves | pg_free, f"{where}: {path}"


@pytest.mark.parametrize(("subchart", "section", "bad"), [
    ("redis", {"master": {"persistance": {"size": "1Gi"}}}, ["master.persistance.size"]),
    ("redis", {"auth": {"existingSecretKey": "x"}}, ["auth.existingSecretKey"]),
    ("postgresql", {"primary": {"initdb": {"arguments": "--data-checksums"}}}, ["primary.initdb.arguments"]),
    ("postgresql", {"auth": {"secretKeys": {"userPassword": "x"}}}, ["auth.secretKeys.userPassword"]),
    ("kube-prometheus-stack", {"grafana": {"adminPassword": "x"}}, ["grafana.adminPassword"]),
])
def test_the_key_check_catches_undocumented_keys(subchart, section, bad):
    assert undocumented(subchart, section) == bad


def test_the_key_check_accepts_free_form_children():
    assert undocumented("redis", {"master": {"resources": {"limits": {"cpu": "1"}}, "podAnnotations": {"a": "b"}},
                                  "enabled": True}) == []
    assert undocumented("postgresql", {"primary": {"initdb": {"scripts": {"x.sql": "SELECT 1;"}}}}) == []


def test_the_key_generator_extracts_keys_and_params(tmp_path):
    module = bitnami_value_keys
    text = ("## @param image.tag Tag\n## @param extraParam Only documented\nimage:\n  registry: docker.io\n"
            "  tag: 1\nresources: {}\nlist: []\nnested:\n  empty:\n")
    assert module.keys_of(text) == ["extraParam", "image.registry", "image.tag", "list", "nested.empty.*",
                                    "resources.*"]
    keys = tmp_path / "x.keys"
    keys.write_text("# header\n" + "\n".join(module.keys_of(text)) + "\n")
    source = tmp_path / "values.yaml"
    source.write_text(text)
    assert module.main(["--check", str(source), str(keys)]) == 0
    source.write_text(text + "more: 1\n")
    assert module.main(["--check", str(source), str(keys)]) == 1


# --- values handed to the subcharts: the documented configuration -------------------------------------

@pytest.fixture(scope="module")
def defaults_values() -> dict[str, Any]:
    return yaml.safe_load((INFRA / "values.yaml").read_text())


def test_redis_is_configured_as_a_message_bus(defaults_values):
    redis = defaults_values["redis"]
    conf = redis["commonConfiguration"].splitlines()
    assert "appendonly yes" in conf and "appendfsync everysec" in conf
    assert "maxmemory-policy noeviction" in conf
    assert "save 900 1 300 10 60 10000" in conf  # the documented RDB points
    assert not any("allkeys-lru" in line for line in conf)
    assert redis["master"]["persistence"]["size"] == "20Gi"
    assert redis["auth"] == {"enabled": True, "existingSecret": "trading-secrets",
                             "existingSecretPasswordKey": "REDIS_PASSWORD", "usePasswordFiles": True}
    assert redis["fullnameOverride"] == "redis"  # -> Service redis-master, eafix-trading's default host
    assert "noeviction" in (REPO / "docs" / "decisions.md").read_text()


def test_postgresql_has_checksums_and_pg_stat_statements(defaults_values):
    pg = defaults_values["postgresql"]
    assert "--data-checksums" in pg["primary"]["initdb"]["args"]
    assert "pg_stat_statements" in pg["postgresqlSharedPreloadLibraries"].split(",")
    assert "pgaudit" in pg["postgresqlSharedPreloadLibraries"].split(",")  # Bitnami's default kept
    assert "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" in "".join(pg["primary"]["initdb"]["scripts"].values())
    assert "pg_stat_statements.track = all" in pg["primary"]["extendedConfiguration"]
    assert pg["primary"]["persistence"]["size"] == "100Gi"
    assert (pg["fullnameOverride"], pg["auth"]["database"], pg["auth"]["username"]) == (
        "postgresql", "eafix_trading", "eafix")


def test_images_come_from_bitnamilegacy_with_verification_relaxed(defaults_values):
    repos = [defaults_values["redis"]["image"]["repository"],
             defaults_values["redis"]["metrics"]["image"]["repository"],
             defaults_values["postgresql"]["image"]["repository"],
             defaults_values["postgresql"]["metrics"]["image"]["repository"],
             defaults_values["backup"]["images"]["postgres"]["repository"],
             defaults_values["backup"]["images"]["redis"]["repository"]]
    assert all(r.startswith("bitnamilegacy/") for r in repos), repos
    assert defaults_values["global"]["security"]["allowInsecureImages"] is True
    assert "bitnamilegacy" in (REPO / "docs" / "decisions.md").read_text()


def test_global_registry_reaches_the_backup_images():
    r = render_profile("eafix-infra:ci-full")
    images = {c["image"] for cj in r.select(kind="CronJob") for c in
              pod_spec(cj)["containers"] + pod_spec(cj).get("initContainers", [])}
    assert images and all(i.startswith("registry.example.internal/") and "@sha256:" in i for i in images), images


# --- the Secret contract -------------------------------------------------------------------------------

def produced(objects: list[dict]) -> dict[str, set[str]]:
    """Secret name -> keys, for every object that makes a Secret."""
    out: dict[str, set[str]] = {}
    for o in objects:
        if o["kind"] == "Secret":
            out.setdefault(o["metadata"]["name"], set()).update((o.get("data") or {}) | (o.get("stringData") or {}))
        elif o["kind"] == "ExternalSecret":
            name = (o["spec"].get("target") or {}).get("name") or o["metadata"]["name"]
            out.setdefault(name, set()).update(d["secretKey"] for d in o["spec"].get("data") or [])
        elif o["kind"] == "SealedSecret":
            name = ((o["spec"].get("template") or {}).get("metadata") or {}).get("name") or o["metadata"]["name"]
            out.setdefault(name, set()).update(o["spec"]["encryptedData"])
    return out


def consumed(objects: list[dict]) -> set[tuple[str, str]]:
    """(Secret, key) pairs the pods of a render read: secret volumes, projected sources, secretKeyRef."""
    pairs = set()
    for o in objects:
        if o["kind"] not in ("Deployment", "StatefulSet", "Job", "CronJob", "Pod"):
            continue
        spec = pod_spec(o)
        for v in spec.get("volumes") or []:
            sources = [v["secret"] | {"name": v["secret"]["secretName"]}] if "secret" in v else [
                s["secret"] for s in (v.get("projected") or {}).get("sources") or [] if "secret" in s]
            for src in sources:
                for item in src.get("items") or []:
                    pairs.add((src["name"], item["key"]))
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            for e in c.get("env") or []:
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    pairs.add((ref["name"], ref["key"]))
    return pairs


def subchart_reads(values: dict[str, Any]) -> set[tuple[str, str]]:
    """(Secret, key) pairs the Bitnami charts and the AlertmanagerConfig read, from the values."""
    pairs = set()
    if values["redis"]["enabled"]:
        pairs.add((values["redis"]["auth"]["existingSecret"], values["redis"]["auth"]["existingSecretPasswordKey"]))
    if values["postgresql"]["enabled"]:
        auth = values["postgresql"]["auth"]
        pairs.add((auth["existingSecret"], auth["secretKeys"]["userPasswordKey"]))
        if auth["enablePostgresUser"]:
            pairs.add((auth["existingSecret"], auth["secretKeys"]["adminPasswordKey"]))
    if values["alertmanagerConfig"]["enabled"]:
        pairs.add((values["alertmanagerConfig"]["secretName"], values["alertmanagerConfig"]["secretKey"]))
    return pairs


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_secret_contract_matches_what_eafix_trading_reads(env):
    trading = render_profile(f"eafix-trading:env-{env}")
    infra_r = render_profile(f"eafix-infra:env-{env}")
    values = load_values([INFRA / "values.yaml", env_overlay("eafix-infra", env)])
    made_by = {"eafix-infra": produced(infra_r.objects), "eafix-trading": produced(trading.objects)}
    both = set(made_by["eafix-infra"]) & set(made_by["eafix-trading"])
    assert not both, f"{env}: Secrets made by both releases: {both}"
    made = made_by["eafix-infra"] | made_by["eafix-trading"]
    needs = consumed(trading.objects) | consumed(infra_r.objects) | subchart_reads(values)
    assert needs and {s for s, _ in needs} >= {"trading-secrets"}
    missing = sorted((s, k) for s, k in needs if k not in made.get(s, set()))
    assert not missing, f"{env}: read but never made: {missing}"
    # eafix-infra makes exactly the keys someone reads: no stray key, no forgotten one
    for secret, keys in made_by["eafix-infra"].items():
        assert keys == {k for s, k in needs if s == secret}, f"{env}: {secret}"


def test_trading_reads_the_contract_by_its_configured_names():
    r = render_profile("eafix-trading:defaults")
    pairs = consumed(r.objects)
    assert {("trading-secrets", "REDIS_PASSWORD"), ("trading-secrets", "POSTGRES_USER"),
            ("trading-secrets", "POSTGRES_PASSWORD"), ("trading-secrets", "MT4_API_KEY"),
            ("trading-secrets", "BROKER_API_SECRET"), ("trading-secrets", "GATEWAY_API_KEYS"),
            ("trading-secrets", "GATEWAY_BOOTSTRAP_ADMIN"), ("trading-secrets", "ALERTMANAGER_WEBHOOK_SECRET"),
            ("trading-secrets", "COMPLIANCE_GATEWAY_API_KEY")} <= pairs
    contract = yaml.safe_load((INFRA / "values.yaml").read_text())["secrets"]["definitions"]["trading-secrets"]
    assert {k for _, k in pairs if _ == "trading-secrets"} <= set(contract["keys"])


def test_renamed_secret_names_must_stay_in_the_contract():
    message = rejection({"secrets": {"provider": "externalSecret"},
                         "redis": {"auth": {"existingSecret": "redis-creds"}}})
    assert 'redis.auth: Secret "redis-creds" is not in secrets.definitions' in message
    message = rejection({"secrets": {"provider": "externalSecret"},
                         "postgresql": {"auth": {"secretKeys": {"userPasswordKey": "PG_PASS"}}}})
    assert 'key "PG_PASS" is not in secrets.definitions.trading-secrets.keys' in message


@pytest.mark.parametrize("provider", ["externalSecret", "sealedSecret", "plain"])
def test_each_provider_makes_the_contract(provider):
    keys = yaml.safe_load((INFRA / "values.yaml").read_text())["secrets"]["definitions"]["trading-secrets"]["keys"]
    per_key = {"externalSecret": {}, "sealedSecret": {"encrypted": "AgBcipher=="}, "plain": {"value": "v"}}[provider]
    given = {k: dict(per_key) for k in keys}
    if provider == "plain":
        given["POSTGRES_USER"] = {"value": "eafix"}  # must be the user PostgreSQL creates
    r = infra({"secrets": {"provider": provider, "definitions": {"trading-secrets": {"keys": given}}}})
    assert produced(r.objects) == {"trading-secrets": set(keys)}
    assert not custom_resources.check(r.objects)
    if provider == "externalSecret":
        es = r.one("ExternalSecret", "trading-secrets")
        assert es["apiVersion"] == "external-secrets.io/v1"
        assert es["spec"]["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": "vault-backend"}
        assert {d["remoteRef"]["key"] for d in es["spec"]["data"]} == {"eafix/trading-secrets"}
    if provider == "plain":
        secret = r.one("Secret", "trading-secrets")
        assert {base64.b64decode(v).decode() for v in secret["data"].values()} == {"v", "eafix"}
        assert "eafix.io/dev-only" in secret["metadata"]["annotations"]


def test_secret_store_reference_is_configurable():
    r = infra({"secrets": {"provider": "externalSecret", "externalSecret": {
        "secretStoreRef": {"kind": "SecretStore", "name": "team-vault"}, "remoteKeyPrefix": "kv/eafix"},
        "definitions": {"trading-secrets": {"keys": {"REDIS_PASSWORD": {"remoteKey": "kv/shared/redis",
                                                                         "property": "password"}}}}}})
    es = r.one("ExternalSecret", "trading-secrets")
    assert es["spec"]["secretStoreRef"] == {"kind": "SecretStore", "name": "team-vault"}
    refs = {d["secretKey"]: d["remoteRef"] for d in es["spec"]["data"]}
    assert refs["REDIS_PASSWORD"] == {"key": "kv/shared/redis", "property": "password"}
    assert refs["POSTGRES_USER"] == {"key": "kv/eafix/trading-secrets", "property": "POSTGRES_USER"}


# --- no secret material in any default -----------------------------------------------------------------

def test_defaults_hold_no_secret_material():
    values = yaml.safe_load((INFRA / "values.yaml").read_text())
    for name, definition in values["secrets"]["definitions"].items():
        for key, spec in definition["keys"].items():
            assert not spec, f"secrets.definitions.{name}.keys.{key} has a default: {spec}"
    assert values["secrets"]["provider"] == "none"
    r = render_profile("eafix-infra:defaults")
    assert not [o for o in r.objects if o["kind"] in ("Secret", "SealedSecret", "ExternalSecret")]


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_staging_and_prod_overlays_hold_no_secret_values(env):
    text = env_overlay("eafix-infra", env).read_text()
    assert not re.search(r"\b(value|encrypted)\s*:", text)
    r = render_profile(f"eafix-infra:env-{env}")
    assert not [o for o in r.objects if o["kind"] in ("Secret", "SealedSecret")]
    assert r.select(kind="ExternalSecret")


def test_plain_secrets_are_never_generated():
    message = rejection({"secrets": {"provider": "plain"}})
    assert "secrets.definitions.trading-secrets.keys.REDIS_PASSWORD.value: required with secrets.provider plain" \
        in message
    assert message.count(".value: required") == 10
    assert "never generates" in message


def test_sealed_secrets_need_ciphertexts_and_plain_values_only_in_plain_mode():
    assert "keys.MT4_API_KEY.encrypted: required" in rejection({"secrets": {"provider": "sealedSecret"}})
    message = rejection({"secrets": {"provider": "externalSecret", "definitions": {
        "trading-secrets": {"keys": {"REDIS_PASSWORD": {"value": "leaked"}}}}}})
    assert "keys.REDIS_PASSWORD.value: plain values are only used with secrets.provider plain" in message


def test_plain_user_must_be_the_user_postgresql_creates():
    user = {"POSTGRES_USER": {"value": "admin"}}
    message = rejection({"secrets": {"definitions": {"trading-secrets": {"keys": user}}}},
                        [env_overlay("eafix-infra", "dev")])
    assert '"admin" differs from postgresql.auth.username "eafix"' in message


def test_dev_secret_values_are_explicit_and_marked():
    r = render_profile("eafix-infra:env-dev")
    secret = r.one("Secret", "trading-secrets")
    values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert values["POSTGRES_USER"] == "eafix"
    # argon2 hashes of gui-gateway keys, and compliance-monitor's key `<id>.<secret>`
    other = {"POSTGRES_USER", "GATEWAY_API_KEYS", "GATEWAY_BOOTSTRAP_ADMIN", "COMPLIANCE_GATEWAY_API_KEY"}
    assert all(v.startswith("dev-only-") for k, v in values.items() if k not in other)
    # the API keys are `<id>.<secret>` with a dev-only secret, and the hashes are of such keys
    assert values["COMPLIANCE_GATEWAY_API_KEY"] == "compliance.dev-only-compliance-key"
    hasher = PasswordHasher()
    key_id, roles, key_hash = values["GATEWAY_API_KEYS"].split()
    assert (key_id, roles) == ("compliance", "admin") and hasher.verify(key_hash, values["COMPLIANCE_GATEWAY_API_KEY"])
    admin_id, admin_hash = values["GATEWAY_BOOTSTRAP_ADMIN"].split()
    assert admin_id == "dev-admin" and hasher.verify(admin_hash, "dev-admin.dev-only-admin-key")


# --- the chart's own templates -------------------------------------------------------------------------

def test_backups_dump_nightly_and_keep_seven_days():
    r = render_profile("eafix-infra:env-prod")
    pg = r.one("CronJob", "eafix-backup-postgres")
    assert pg["spec"]["schedule"] == "0 2 * * *"
    assert pg["spec"]["concurrencyPolicy"] == "Forbid"
    spec = pod_spec(pg)
    dump = spec["initContainers"][0]  # prod uploads to the object store after the dump
    # the scripts' behaviour is tested by running them (test_backup_scripts.py)
    assert dump["command"] == ["/bin/sh", "/opt/eafix/backup/dump.sh", "postgres"]
    env = {e["name"]: e["value"] for e in dump["env"]}
    assert env == {"PGHOST": "postgresql-primary", "PGPORT": "5432", "PGDATABASE": "eafix_trading",
                   "RETENTION_DAYS": "7"}
    upload = spec["containers"][0]
    assert (upload["name"], upload["command"]) == ("upload", ["/bin/sh", "/opt/eafix/backup/upload.sh"])
    for c in (dump, upload):
        assert {"name": "scripts", "mountPath": "/opt/eafix/backup", "readOnly": True} in c["volumeMounts"]
    scripts = next(v for v in spec["volumes"] if v["name"] == "scripts")["configMap"]
    assert set(r.one("ConfigMap", scripts["name"])["data"]) == {"dump.sh", "upload.sh"}
    creds = next(v for v in spec["volumes"] if v["name"] == "credentials")["secret"]
    assert creds["secretName"] == "trading-secrets"
    assert {i["key"] for i in creds["items"]} == {"POSTGRES_USER", "POSTGRES_PASSWORD"}
    redis = r.one("CronJob", "eafix-backup-redis")
    assert pod_spec(redis)["initContainers"][0]["command"] == ["/bin/sh", "/opt/eafix/backup/dump.sh", "redis"]
    pvc = r.one("PersistentVolumeClaim", "eafix-backups")
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert pvc["spec"]["storageClassName"] == "eafix-ssd-retain"


def test_backup_without_object_store_writes_to_the_claim_only():
    r = render_profile("eafix-infra:env-staging")
    spec = pod_spec(r.one("CronJob", "eafix-backup-postgres"))
    assert [c["name"] for c in spec["containers"]] == ["dump-postgres"] and "initContainers" not in spec
    backup = next(v for v in spec["volumes"] if v["name"] == "backup")
    assert backup["persistentVolumeClaim"]["claimName"] == "eafix-backups"


def test_backup_network_policy_allows_only_the_stores_dns_and_object_store():
    r = render_profile("eafix-infra:env-prod")
    np = r.one("NetworkPolicy", "eafix-backup")
    pods = [pod_spec(c) for c in r.select(kind="CronJob")]
    labels = [c["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"] for c in r.select(kind="CronJob")]
    assert pods and all(np["spec"]["podSelector"]["matchLabels"].items() <= lab.items() for lab in labels)
    ports = sorted(p["port"] for rule in np["spec"]["egress"] for p in rule["ports"])
    assert ports == [53, 53, 443, 5432, 6379]
    assert np["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_storage_class_and_namespace():
    r = render_profile("eafix-infra:ci-full")
    sc = r.one("StorageClass", "eafix-ssd-retain")
    assert (sc["reclaimPolicy"], sc["volumeBindingMode"], sc["parameters"]["type"]) == (
        "Retain", "WaitForFirstConsumer", "pd-ssd")
    ns = r.one("Namespace", "eafix-trading")
    labels = ns["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["istio-injection"] == "enabled"
    assert "namespace" not in ns["metadata"] and "namespace" not in sc["metadata"]
    assert not render_profile("eafix-infra:defaults").select(kind="Namespace")


def test_grafana_datasource_only_with_the_monitoring_stack():
    assert not render_profile("eafix-infra:defaults").select(kind="ConfigMap")
    cm = render_profile("eafix-infra:ci-full").one("ConfigMap", "eafix-grafana-datasource")
    assert cm["metadata"]["labels"]["grafana_datasource"] == "1"
    doc = yaml.safe_load(cm["data"]["eafix-datasource.yaml"])
    assert doc["datasources"][0]["uid"] == "eafix-prometheus"
    values = yaml.safe_load((INFRA / "values.yaml").read_text())
    # the URL is the Prometheus Service kube-prometheus-stack names after its fullnameOverride
    assert doc["datasources"][0]["url"] == f"http://{values['kube-prometheus-stack']['fullnameOverride']}-prometheus:9090"


def test_values_validation_of_backups():
    assert "backup.objectStore.bucket: required" in rejection(
        {"backup": {"postgres": {"enabled": True}, "objectStore": {"enabled": True}}})
    assert "persistence and objectStore both off" in rejection(
        {"backup": {"redis": {"enabled": True}, "persistence": {"enabled": False}}})


@pytest.mark.parametrize(("values", "where"), [
    ({"backup": {"postgres": {"schedul": "0 2 * * *"}}}, "/backup/postgres"),
    ({"secrets": {"provder": "plain"}}, "/secrets"),
    ({"storageClass": {"reclaim": "Retain"}}, "/storageClass"),
])
def test_schema_rejects_typos(values, where):
    message = rejection(values)
    assert f"at '{where}': additional properties" in message


@pytest.mark.parametrize(("values", "where"), [
    ({"secrets": {"provider": "vault"}}, "/secrets/provider"),
    ({"redis": {"enabled": "yes"}}, "/redis/enabled"),
    ({"backup": {"retentionDays": 0}}, "/backup/retentionDays"),
    ({"storageClass": {"reclaimPolicy": "Recycle"}}, "/storageClass/reclaimPolicy"),
])
def test_schema_rejects_bad_values(values, where):
    assert f"at '{where}'" in rejection(values)


# --- policy gate, shapes, determinism on every profile -------------------------------------------------

@pytest.mark.parametrize("profile_id", INFRA_PROFILES)
def test_policy_and_strict_schemas(profile_id):
    r = render_profile(profile_id)
    findings = run_all(r.objects, kubernetes_versions=VERSIONS)
    assert not findings, format_table(findings)


def test_renders_are_deterministic():
    files = [INFRA / "ci" / "full-values.yaml"]
    assert infra(files=files).manifests == infra(files=files).manifests


@pytest.fixture(scope="module")
def checkov_infra() -> tuple[checkov.CheckovReport | Exception, list[dict]]:
    objects = render_profile("eafix-infra:env-prod").objects + render_profile("eafix-infra:ci-full").objects
    try:
        return checkov.run_checkov(objects), objects
    except checkov.CheckovNotInstalled as exc:  # reported as a failure, never a skip
        return exc, objects


def test_checkov_finds_nothing_and_honours_the_annotations(checkov_infra):
    report, objects = checkov_infra
    if isinstance(report, Exception):
        pytest.fail(str(report))
    assert not report.failed, format_table(report.failed)
    assert report.passed > 100
    skipped = {(s.check, s.kind, s.name) for s in report.skipped}
    annotated = {(e.check, e.kind, e.name) for e in exemptions(objects) if e.tool == "checkov"}
    assert skipped == annotated and skipped


def test_exemptions_are_documented_for_the_kinds_that_carry_them():
    text = (REPO / "docs" / "policy-exceptions.md").read_text().split("## Current exceptions", 1)[1]
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`"):
            rows[(cells[1], cells[0].strip("`"))] = cells[2]
    seen = {}
    for profile_id in INFRA_PROFILES:
        for e in exemptions(render_profile(profile_id).objects):
            seen.setdefault((e.tool, e.check), set()).add(e.kind)
    assert seen
    for key, kinds in seen.items():
        assert key in rows, f"document {key} in docs/policy-exceptions.md"
        for kind in kinds:
            assert kind in rows[key], f"{key}: name the {kind}s of eafix-infra in the Objects cell"


def test_an_exemption_disappears_with_its_reason():
    r = render_profile("eafix-infra:ci-full")  # digests, pull policy Always and a priority class are set
    ann = r.one("CronJob", "eafix-backup-postgres")["metadata"]["annotations"]
    assert not any(v.startswith(("CKV_K8S_15", "CKV_K8S_43")) for k, v in ann.items() if k.startswith("checkov"))
    assert "polaris.fairwinds.com/priorityClassNotSet-exempt" not in ann
    assert "polaris.fairwinds.com/pullPolicyNotAlways-exempt" not in ann


def test_subchart_sections_stay_open_for_documented_keys():
    # pass-through: a documented Bitnami key the chart does not type is accepted by the schema
    r = infra({"redis": {"master": {"podLabels": {"tier": "bus"}}},
               "postgresql": {"primary": {"priorityClassName": "db"}}})
    assert r.kinds() == {}
