"""`global.redis.sentinel`: the services are told where the sentinels are, and the NetworkPolicies and
the flow matrix let them reach the sentinel port as well as the data port."""

from __future__ import annotations

import pytest

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
