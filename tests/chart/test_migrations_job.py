"""The migration hook Job (`templates/migrations-job.yaml`): `eafix migrate` before the services roll."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict

from conftest import PROFILE_IDS, SERVICES, catalogue, render_profile
from eafix import cli
from eafix.platform.render import RenderError
from eafix.runtime.store.command import MigrateSettings

JOB = "eafix-migrations"
POSTGRES_USERS = [s.name for s in catalogue.SERVICES if s.uses_postgres]
DIGEST = "sha256:" + "c" * 64


def pod(job: dict) -> dict:
    return job["spec"]["template"]["spec"]


def container(job: dict) -> dict:
    (c,) = pod(job)["containers"]
    return c


def test_a_helm_hook_before_install_and_upgrade(defaults):
    ann = defaults.one("Job", JOB)["metadata"]["annotations"]
    assert ann["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert ann["helm.sh/hook-weight"] == "-5"
    assert ann["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    # any argocd.argoproj.io/hook* annotation would make Argo CD ignore the Helm hook annotations
    assert not [k for k in ann if k.startswith("argocd.argoproj.io/")]


@pytest.mark.parametrize("profile_id", PROFILE_IDS)
def test_every_profile_migrates_once(profile_id):
    r = render_profile(profile_id)
    (job,) = r.select(kind="Job", template="templates/migrations-job.yaml")
    assert container(job)["args"] == ["migrate"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"


def test_the_args_are_the_cli_migrate_command(defaults):
    args = cli.build_parser().parse_args(container(defaults.one("Job", JOB))["args"])
    assert args.command == "migrate" and args.dry_run is False and args.dir is None  # the packaged migrations


def test_job_limits_come_from_values(defaults, render_with):
    spec = defaults.one("Job", JOB)["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) == (2, 900, 86400)
    assert pod(defaults.one("Job", JOB))["restartPolicy"] == "Never"
    spec = render_with({"migrations": {"backoffLimit": 0, "activeDeadlineSeconds": 120,
                                       "ttlSecondsAfterFinished": 0}}).one("Job", JOB)["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) == (0, 120, 0)


def test_resources_come_from_values(defaults, render_with):
    assert container(defaults.one("Job", JOB))["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
    sized = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}
    assert container(render_with({"migrations": {"resources": sized}}).one("Job", JOB))["resources"] == sized


def test_restricted_security_context_and_no_token(defaults, render_with):
    spec = pod(defaults.one("Job", JOB))
    assert spec["automountServiceAccountToken"] is False and spec["enableServiceLinks"] is False
    assert "serviceAccountName" not in spec
    assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                       "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}}
    sc = container(defaults.one("Job", JOB))["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False and sc["runAsNonRoot"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
    # the same contexts as the services, from global
    deploy = defaults.one("Deployment", "risk-manager")["spec"]["template"]["spec"]
    assert spec["securityContext"] == deploy["securityContext"]
    assert sc == deploy["containers"][0]["securityContext"]
    tighter = render_with({"global": {"containerSecurityContext": {"runAsUser": 20002}}}).one("Job", JOB)
    assert container(tighter)["securityContext"]["runAsUser"] == 20002


def test_credentials_are_files_from_the_postgres_secret(defaults):
    job = defaults.one("Job", JOB)
    c = container(job)
    assert c["env"] == [{"name": "SERVICE_POSTGRES_URL",
                         "value": "postgresql://postgresql:5432/eafix_trading?sslmode=prefer"}]
    assert "envFrom" not in c  # a pre-install hook runs before the release's ConfigMaps exist
    assert {"name": "secrets", "mountPath": "/var/run/secrets/eafix", "readOnly": True} in c["volumeMounts"]
    volumes = {v["name"]: v for v in pod(job)["volumes"]}
    assert volumes["secrets"]["projected"]["defaultMode"] == 0o440
    assert volumes["secrets"]["projected"]["sources"] == [{"secret": {"name": "trading-secrets", "items": [
        {"key": "POSTGRES_USER", "path": "SERVICE_POSTGRES_USER"},
        {"key": "POSTGRES_PASSWORD", "path": "SERVICE_POSTGRES_PASSWORD"}]}}]  # nothing else, no Redis password


def test_postgres_settings_match_the_services(render_with):
    r = render_with({"global": {"postgres": {
        "host": "pg.db.svc", "port": 6432, "database": "trading", "sslmode": "verify-full",
        "existingSecret": "pg-creds", "usernameKey": "username", "passwordKey": "password"}}})
    job = r.one("Job", JOB)
    url = container(job)["env"][0]["value"]
    assert url == "postgresql://pg.db.svc:6432/trading?sslmode=verify-full"
    assert url == r.one("ConfigMap", "risk-manager-config")["data"]["SERVICE_POSTGRES_URL"]
    (source,) = {v["name"]: v for v in pod(job)["volumes"]}["secrets"]["projected"]["sources"]
    assert source == {"secret": {"name": "pg-creds", "items": [
        {"key": "username", "path": "SERVICE_POSTGRES_USER"},
        {"key": "password", "path": "SERVICE_POSTGRES_PASSWORD"}]}}
    assert MigrateSettings(postgres_url=url).postgres_url == url  # what `eafix migrate` accepts


def test_prod_requires_tls_to_postgres():
    job = render_profile("eafix-trading:env-prod").one("Job", JOB)
    url = container(job)["env"][0]["value"]
    assert conninfo_to_dict(url)["sslmode"] == "require", url


def test_image_defaults_to_the_first_enabled_service_and_can_be_set(defaults, render_with):
    assert container(defaults.one("Job", JOB))["image"] == "ghcr.io/eafix/gui-gateway:0.1.0"
    assert container(defaults.one("Job", JOB))["imagePullPolicy"] == "IfNotPresent"
    r = render_with({"gui-gateway": {"enabled": False}, "global": {"image": {"tag": "2.0.0", "digest": DIGEST}}})
    assert container(r.one("Job", JOB))["image"] == f"ghcr.io/eafix/data-ingestor:2.0.0@{DIGEST}"
    r = render_with({"migrations": {"image": {"repository": "ops/eafix-tools", "tag": "7.1"}},
                     "global": {"image": {"pullPolicy": "Always"}}})
    assert container(r.one("Job", JOB))["image"] == "ghcr.io/ops/eafix-tools:7.1"
    assert container(r.one("Job", JOB))["imagePullPolicy"] == "Always"
    # a service's own image settings do not apply (the CLI is in every image)
    r = render_with({"gui-gateway": {"image": {"tag": "9.9.9"}}})
    assert container(r.one("Job", JOB))["image"] == "ghcr.io/eafix/gui-gateway:0.1.0"


def test_pinned_profile_digest_pull_secrets_priority_and_names():
    r = render_profile("eafix-trading:ci-pinned")
    job = r.one("Job", JOB)
    spec = pod(job)
    assert spec["imagePullSecrets"] == [{"name": "registry-creds"}, {"name": "ops-creds"}]  # global only
    assert spec["priorityClassName"] == "trading-critical"
    assert container(job)["image"] == (
        "registry.example.internal/trading/eafix/gui-gateway:0.1.0@sha256:"
        "0b5e2b3a1c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7")
    ann = job["metadata"]["annotations"]
    assert "polaris.fairwinds.com/priorityClassNotSet-exempt" not in ann  # exemptions follow the values
    assert not any(v.startswith("CKV_K8S_43=") for k, v in ann.items() if k.startswith("checkov.io/skip"))
    assert ann["owner"] == "trading-platform@example.internal"


def test_no_pull_secrets_key_without_pull_secrets(defaults):
    assert "imagePullSecrets" not in pod(defaults.one("Job", JOB))


def test_release_prefix_in_the_name(render_with):
    from eafix.platform.profiles import CHARTS
    from eafix.platform.render import render

    r = render(CHARTS / "eafix-trading", values={"global": {"prefixNames": True}}, release="blue")
    assert [j["metadata"]["name"] for j in r.select(kind="Job")] == ["blue-migrations"]
    r = render(CHARTS / "eafix-trading", release="blue")
    assert [j["metadata"]["name"] for j in r.select(kind="Job")] == ["eafix-migrations"]


def test_scheduling_from_global(render_with):
    r = render_with({"global": {"nodeSelector": {"pool": "batch"},
                                "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}]}})
    spec = pod(r.one("Job", JOB))
    assert spec["nodeSelector"] == {"pool": "batch"}
    assert spec["tolerations"] == [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}]


# --- when there is no Job ----------------------------------------------------------------------------

def test_switched_off(render_with):
    r = render_with({"migrations": {"enabled": False}})
    assert r.select(kind="Job") == []
    assert len(r.select(kind="Deployment")) == len(SERVICES)


def test_no_job_without_an_enabled_postgres_service(render_with):
    r = render_with({svc: {"enabled": False} for svc in POSTGRES_USERS})
    assert len(r.select(kind="Deployment")) == len(SERVICES) - len(POSTGRES_USERS) and r.select(kind="Job") == []
    r = render_with({svc: {"backends": {"postgres": False}} for svc in POSTGRES_USERS})
    assert len(r.select(kind="Deployment")) == len(SERVICES) and r.select(kind="Job") == []


@pytest.mark.parametrize("svc", POSTGRES_USERS)
def test_one_postgres_service_is_enough(render_with, svc):
    r = render_with({other: {"enabled": False} for other in POSTGRES_USERS if other != svc})
    (job,) = r.select(kind="Job")
    assert container(job)["args"] == ["migrate"]


# --- values schema -----------------------------------------------------------------------------------

@pytest.mark.parametrize("values", [
    {"migrations": {"ttlSecondAfterFinished": 600}},  # typo
    {"migrations": {"image": {"registry": "quay.io"}}},  # registry comes from global.image
    {"migrations": {"enabled": "yes"}},
    {"migrations": {"backoffLimit": -1}},
    {"migrations": {"activeDeadlineSeconds": 0}},
    {"migrations": {"ttlSecondsAfterFinished": "1d"}},
    {"migrations": {"image": {"digest": "sha256:short"}}},
    {"migrations": {"resources": {"requests": {"cpu": "1Gi"}}}},
    {"migrations": None},  # Helm drops the key; the section is required
], ids=["typo", "registry", "enabled-string", "negative-backoff", "zero-deadline", "ttl-string", "bad-digest",
        "memory-unit-cpu", "null"])
def test_schema_rejects(render_with, values):
    with pytest.raises(RenderError) as err:
        render_with(values)
    assert "don't meet the specifications of the schema" in str(err.value), str(err.value)
    assert "migrations" in str(err.value)
