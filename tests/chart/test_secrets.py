"""Secrets: no values in chart defaults or overlays, the three modes, files only, rotation."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import PROFILE_IDS, SERVICES, TRADING, render_profile
from eafix.platform.profiles import REPO
from eafix.platform.render import RenderError

CONTRACT = {
    "trading-secrets": [
        "ALERTMANAGER_WEBHOOK_SECRET",
        "BROKER_API_SECRET",
        "COMPLIANCE_GATEWAY_API_KEY",
        "GATEWAY_API_KEYS",
        "GATEWAY_BOOTSTRAP_ADMIN",
        "MT4_API_KEY",
        "POSTGRES_PASSWORD",
        "POSTGRES_USER",
        "REDIS_PASSWORD",
    ]
}
SENSITIVE = re.compile(r"(?i)(password|passwd|secret|token|api_?key|private_?key|credential)")
REFERENCE = re.compile(r"(existingSecret|secretName|credentialName|credentialNamespace|[a-z]Key)$")  # names, not values
CIPHERTEXT = {"encryptedData", "stringData"}
NAMED_BY_SECRET = {"remoteKeys", "remoteRefs", "versions", "secretStoreRef", "secretFiles"}  # keyed by Secret names


def _walk(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, (*path, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, (*path, str(i)))
    else:
        yield path, node


def secret_values(doc) -> list[str]:
    """Paths of non-empty values that look like credentials: under a sensitive key that is not a
    reference to a Secret, or any ciphertext."""
    out = []
    for path, value in _walk(doc):
        keys = [p for p in path if not p.isdigit()]
        if value in (None, "", False, True) or not keys:
            continue
        if (
            CIPHERTEXT & set(keys)
            or SENSITIVE.search(keys[-1])
            and not REFERENCE.search(keys[-1])
            and not NAMED_BY_SECRET & set(keys)
        ):
            out.append(".".join(path))
    return out


VALUES_FILES = [
    TRADING / "values.yaml",
    TRADING / "charts/eafix-service/values.yaml",
    *sorted((REPO / "values").glob("*/eafix-trading.yaml")),
]


@pytest.mark.parametrize("path", VALUES_FILES, ids=lambda p: str(Path(p).relative_to(REPO)))
def test_no_secret_value_in_chart_defaults_or_overlays(path):
    assert secret_values(yaml.safe_load(path.read_text())) == []


def test_the_secret_value_detector_works():
    assert secret_values({"db": {"password": "hunter2"}, "x": {"JWT_SECRET_KEY": "abc"}}) == [
        "db.password",
        "x.JWT_SECRET_KEY",
    ]
    assert secret_values({"secretManagement": {"sealedSecrets": {"encryptedData": {"s": {"K": "AgB"}}}}}) == [
        "secretManagement.sealedSecrets.encryptedData.s.K"
    ]
    assert secret_values({"global": {"redis": {"existingSecret": "s", "passwordKey": "P"}}}) == []


def test_existing_secret_mode_renders_no_secret_objects(profile_render):
    kinds = set(profile_render.kinds())
    assert "Secret" not in kinds


def test_the_contract_covers_every_credential(defaults):
    contract = json.loads(json.dumps(CONTRACT))
    staging = render_profile("eafix-trading:env-staging")
    (es,) = staging.select(kind="ExternalSecret")
    assert sorted(d["secretKey"] for d in es["spec"]["data"]) == contract["trading-secrets"]
    assert defaults.select(kind="ExternalSecret") == []


def test_staging_uses_external_secrets():
    es = render_profile("eafix-trading:env-staging").one("ExternalSecret", "trading-secrets")
    assert es["apiVersion"] == "external-secrets.io/v1"
    spec = es["spec"]
    assert spec["refreshInterval"] == "1h"
    assert spec["secretStoreRef"] == {"name": "eafix-secret-store", "kind": "ClusterSecretStore"}
    assert spec["target"]["name"] == "trading-secrets" and spec["target"]["creationPolicy"] == "Owner"
    assert {
        "secretKey": "MT4_API_KEY",
        "remoteRef": {"key": "eafix/staging/trading-secrets", "property": "MT4_API_KEY"},
    } in spec["data"]


def test_external_secret_per_secret_with_configurable_refs(render_with):
    r = render_with(
        {
            "secretManagement": {
                "mode": "externalSecrets",
                "externalSecrets": {
                    "refreshInterval": "15m",
                    "remoteRefs": {"broker": {"BROKER_API_SECRET": {"key": "vault/broker", "property": "s"}}},
                },
            },
            "execution-engine": {
                "secretFiles": {"BROKER_API_SECRET": {"secretName": "broker", "key": "BROKER_API_SECRET"}}
            },
        }
    )
    broker = r.one("ExternalSecret", "broker")["spec"]
    assert broker["refreshInterval"] == "15m"
    assert broker["data"] == [{"secretKey": "BROKER_API_SECRET", "remoteRef": {"key": "vault/broker", "property": "s"}}]
    main = r.one("ExternalSecret", "trading-secrets")["spec"]["data"]
    assert "BROKER_API_SECRET" not in [d["secretKey"] for d in main]
    assert main[0]["remoteRef"]["key"] == "eafix/trading-secrets"


def test_a_disabled_service_drops_its_keys(render_with):
    r = render_with(
        {
            "secretManagement": {"mode": "externalSecrets"},
            "execution-engine": {"enabled": False},
            "risk-manager": {"peers": []},
            "gui-gateway": {"peers": [s for s in SERVICES if s not in ("gui-gateway", "execution-engine")]},
            "flows": {"risk-to-execution": None},
        }
    )
    keys = [d["secretKey"] for d in r.one("ExternalSecret", "trading-secrets")["spec"]["data"]]
    assert "MT4_API_KEY" not in keys and "GATEWAY_API_KEYS" in keys


def test_sealed_secrets_mode():
    ss = render_profile("eafix-trading:ci-security").one("SealedSecret", "trading-secrets")
    assert ss["apiVersion"] == "bitnami.com/v1alpha1"
    assert sorted(ss["spec"]["encryptedData"]) == CONTRACT["trading-secrets"]
    assert ss["spec"]["template"]["metadata"] == {"name": "trading-secrets", "namespace": "eafix-trading"}
    assert "sealedsecrets.bitnami.com/cluster-wide" not in ss["metadata"].get("annotations", {})


def test_sealed_secrets_need_every_mounted_key(render_with):
    with pytest.raises(RenderError, match=r"encryptedData.trading-secrets.MT4_API_KEY: missing"):
        render_with(
            {
                "secretManagement": {
                    "mode": "sealedSecrets",
                    "sealedSecrets": {
                        "encryptedData": {"trading-secrets": {"REDIS_PASSWORD": "AgBy3i4OJSWK+PiTySYZZA9rO43cGDEq"}}
                    },
                }
            }
        )


@pytest.mark.parametrize("profile_id", PROFILE_IDS)
def test_secrets_are_read_only_files(profile_id):
    for d in render_profile(profile_id).select(kind="Deployment"):
        spec = d["spec"]["template"]["spec"]
        (c,) = spec["containers"]
        assert "secretKeyRef" not in json.dumps(c.get("env", [])) and "secretRef" not in json.dumps(c["envFrom"])
        mount = next(m for m in c["volumeMounts"] if m["name"] == "secrets")
        assert mount["readOnly"] is True and mount["mountPath"] == "/var/run/secrets/eafix"
        vol = next(v for v in spec["volumes"] if v["name"] == "secrets")
        assert vol["projected"]["defaultMode"] == 0o440
        assert all(set(s) == {"secret"} for s in vol["projected"]["sources"])


def _checksum(r, name):
    return r.one("Deployment", name)["spec"]["template"]["metadata"]["annotations"]["checksum/secret-refs"]


def test_rotating_a_secret_version_rolls_only_its_pods(defaults, render_with):
    r = render_with({"global": {"secrets": {"versions": {"trading-secrets": "2"}}}})
    assert _checksum(r, "reporter") != _checksum(defaults, "reporter")
    again = render_with({"global": {"secrets": {"versions": {"trading-secrets": "2"}}}})
    assert _checksum(again, "reporter") == _checksum(r, "reporter")
    three = render_with({"global": {"secrets": {"versions": {"trading-secrets": "3"}}}})
    assert _checksum(three, "reporter") != _checksum(r, "reporter")
    other = render_with(
        {
            "global": {"secrets": {"versions": {"broker-only": "9"}}},
            "execution-engine": {
                "secretFiles": {"BROKER_API_SECRET": {"secretName": "broker-only", "key": "BROKER_API_SECRET"}}
            },
        }
    )
    assert _checksum(other, "reporter") == _checksum(defaults, "reporter")  # reporter does not mount it
    assert _checksum(other, "execution-engine") != _checksum(
        render_with(
            {
                "execution-engine": {
                    "secretFiles": {"BROKER_API_SECRET": {"secretName": "broker-only", "key": "BROKER_API_SECRET"}}
                }
            }
        ),
        "execution-engine",
    )


def test_without_versions_the_checksum_covers_names_and_keys_only(defaults):
    items = {"trading-secrets": [{"key": "REDIS_PASSWORD", "path": "SERVICE_REDIS_PASSWORD"}]}
    want = hashlib.sha256(json.dumps(items, separators=(",", ":")).encode()).hexdigest()
    assert _checksum(defaults, "data-ingestor") == want
