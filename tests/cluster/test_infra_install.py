"""eafix-infra's own objects installed with the real Helm 4 (its Bitnami Redis/PostgreSQL and
kube-prometheus-stack dependencies disabled and not fetched), with values/dev plus both backups on:
the Secret contract eafix-trading reads, the backup CronJobs and their claim. The throwaway cluster
has no StorageClass and no volume provisioner, so the `eafix-backups` claim stays Pending (hence no
--wait: Helm would wait for it to bind); uninstall keeps it, as backup.yaml documents."""

from __future__ import annotations

import base64

import yaml
from kubernetes import client

from control_plane import REPO
from eafix.platform.render import offline_copy
from kube import api_client, release_secrets, restricted_namespace, still_there

CHART = REPO / "charts" / "eafix-infra"
WITHOUT_DEPENDENCIES = ["--set", "redis.enabled=false", "--set", "postgresql.enabled=false",
                        "--set", "monitoring.enabled=false"]
BACKUPS = ["--set", "backup.postgres.enabled=true", "--set", "backup.redis.enabled=true"]
# the keys values/dev/eafix-infra.yaml gives trading-secrets (the Secret contract)
SECRET_KEYS = {"REDIS_PASSWORD", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_ADMIN_PASSWORD", "MT4_API_KEY",
               "BROKER_API_SECRET", "ALERTMANAGER_WEBHOOK_SECRET", "GATEWAY_API_KEYS", "GATEWAY_BOOTSTRAP_ADMIN",
               "COMPLIANCE_GATEWAY_API_KEY"}


def test_infra_installs_its_own_objects_and_uninstall_keeps_only_the_backup_claim(cluster, helm, tmp_path):
    namespace = restricted_namespace(cluster, "eafix-infra")
    chart = offline_copy(CHART, tmp_path)  # Chart.yaml without the absent dependencies: helm refuses them
    dev = REPO / "values" / "dev" / "eafix-infra.yaml"
    done = helm("install", "infra", str(chart), "-n", namespace, "-f", str(dev), *WITHOUT_DEPENDENCIES, *BACKUPS,
                "--timeout", "120s")
    assert done.returncode == 0, done.stdout + done.stderr
    objects = [o for o in yaml.safe_load_all(helm("get", "manifest", "infra", "-n", namespace).stdout) if o]
    assert sorted((o["kind"], o["metadata"]["name"]) for o in objects) == [
        ("ConfigMap", "eafix-backup-scripts"), ("CronJob", "eafix-backup-postgres"), ("CronJob", "eafix-backup-redis"),
        ("NetworkPolicy", "eafix-backup"), ("PersistentVolumeClaim", "eafix-backups"), ("Secret", "trading-secrets"),
        ("ServiceAccount", "eafix-backup")]
    core, batch = client.CoreV1Api(api_client(cluster)), client.BatchV1Api(api_client(cluster))
    secret = core.read_namespaced_secret("trading-secrets", namespace)
    assert set(secret.data) == SECRET_KEYS
    assert base64.b64decode(secret.data["POSTGRES_USER"]).decode() == "eafix"
    assert {c.metadata.name: c.spec.schedule for c in batch.list_namespaced_cron_job(namespace).items} == {
        "eafix-backup-postgres": "0 2 * * *", "eafix-backup-redis": "30 2 * * *"}
    # no StorageClass names the claim and the cluster has none (nor a provisioner): it cannot bind
    claim = core.read_namespaced_persistent_volume_claim("eafix-backups", namespace)
    assert client.StorageV1Api(api_client(cluster)).list_storage_class().items == []
    assert (claim.status.phase, claim.spec.storage_class_name) == ("Pending", None)

    gone = helm("uninstall", "infra", "-n", namespace, "--timeout", "120s")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "eafix-backups" in gone.stdout + gone.stderr  # helm names what the keep policy left behind
    assert release_secrets(cluster, namespace, "infra") == []
    assert still_there(cluster, namespace, objects) == ["PersistentVolumeClaim/eafix-backups"]
