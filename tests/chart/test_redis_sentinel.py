"""`global.redis.sentinel`: the services are told where the sentinels are, and the NetworkPolicies and
the flow matrix let them reach the sentinel port as well as the data port."""

from __future__ import annotations

import json

import pytest

from conftest import render_profile
from eafix.platform.render import RenderError

SENTINEL = {"global": {"redis": {"sentinel": {"enabled": True, "host": "redis", "port": 26379,
                                              "masterName": "mymaster"}}}}


def _egress_ports(r, service: str) -> set[int]:
    policy = r.one("NetworkPolicy", service)
    return {p["port"] for rule in policy["spec"].get("egress", []) for p in rule.get("ports", [])}


def test_services_get_the_sentinels_and_may_reach_them(render_with):
    r = render_with(SENTINEL)
    config = r.one("ConfigMap", "risk-manager-config")["data"]
    assert config["SERVICE_REDIS_SENTINELS"] == "redis:26379"
    assert config["SERVICE_REDIS_SENTINEL_MASTER"] == "mymaster"
    assert {6379, 26379} <= _egress_ports(r, "risk-manager")


def test_without_sentinel_nothing_changes(render_with):
    r = render_with()
    assert "SERVICE_REDIS_SENTINELS" not in r.one("ConfigMap", "risk-manager-config")["data"]
    assert 26379 not in _egress_ports(r, "risk-manager")


def test_a_bad_master_name_is_refused_naming_the_path(render_with):
    bad = {"global": {"redis": {"sentinel": {**SENTINEL["global"]["redis"]["sentinel"], "masterName": "a b"}}}}
    with pytest.raises(RenderError, match="masterName"):
        render_with(bad)


def test_prod_runs_redis_under_three_sentinels_and_the_services_use_them():
    """values/prod: eafix-infra's Bitnami Redis is three nodes with a sentinel each, one node per host;
    eafix-trading asks those sentinels, under the master set name they monitor, and waits for a
    replica on order-flow publishes. Staging stays one standalone Redis."""
    from eafix.platform.summary import infra_values

    redis = infra_values("prod")["redis"]
    assert redis["architecture"] == "replication" and redis["sentinel"]["enabled"] is True
    assert redis["replica"]["replicaCount"] == 3 and redis["sentinel"]["quorum"] == 2
    assert redis["replica"]["podAntiAffinityPreset"] == "hard"
    assert redis["sentinel"]["image"]["repository"].startswith("bitnamilegacy/")
    # the services may reach the sentinel port through Bitnami's NetworkPolicy
    assert {26379, 6379} <= {p["port"] for rule in redis["networkPolicy"]["extraIngress"] for p in rule["ports"]}
    config = render_profile("eafix-trading:env-prod").one("ConfigMap", "execution-engine-config")["data"]
    # Bitnami names the Service of the sentinels after the release's fullname (`redis`)
    assert config["SERVICE_REDIS_SENTINELS"] == f"{redis['fullnameOverride']}:26379"
    assert config["SERVICE_REDIS_SENTINEL_MASTER"] == redis["sentinel"]["masterSet"]
    assert json.loads(config["SERVICE_BUS_REPLICATION"])["replicas"] == 1
    notes = render_profile("eafix-infra:env-prod").notes or ""
    assert "Sentinel at redis:26379, master set mymaster" in notes and "statefulset/redis-node" in notes

    staging = infra_values("staging")["redis"]
    assert staging["architecture"] == "standalone" and not (staging.get("sentinel") or {}).get("enabled")
    assert "SERVICE_REDIS_SENTINELS" not in render_profile("eafix-trading:env-staging").one(
        "ConfigMap", "execution-engine-config")["data"]
